"""The multi-run μ-GDP lower bound: refute μ-GDP from two worlds' scores, then read ε off the
Gaussian trade-off curve.

The method of Nasr, Hayes, Steinke, Balle, Tramèr, Jagielski, Carlini, Terzis ("Tight auditing
of differentially private machine learning", USENIX Security 2023, arXiv:2302.07956), which is
also the figure Annamalai and De Cristofaro report ("Nearly tight black-box auditing of
differentially private machine learning", NeurIPS 2024, arXiv:2405.14106). For a threshold
test ``{s ≥ c}`` (or ``{s ≤ c}``) with false-positive rate ``FPR`` and false-negative rate
``FNR``, μ-GDP (Dong, Roth, Su, "Gaussian differential privacy", JRSS-B 2022) implies
``FNR ≥ G_μ(FPR) = Φ(Φ⁻¹(1 − FPR) − μ)``. ``G_μ`` decreases in ``FPR``, so with one-sided
Clopper–Pearson upper bounds ``FPR ≤ p̄`` and ``FNR ≤ q̄`` (each at level ``α/2``, jointly at
``1 − α``)::

    μ ≥ μ_lb = Φ⁻¹(1 − p̄) − Φ⁻¹(q̄).

The threshold and its orientation are chosen on a selection split (as in
:func:`~product_noise.audit.bounds.epsilon_lower_bound`) and the counts come from the other
trials only, so the bound is valid at the stated confidence.

What it refutes is μ-GDP, not (ε, δ)-DP: ``gdp_epsilon(μ_lb, δ)`` is a lower bound on ε at δ
only for a mechanism whose trade-off curve is Gaussian (full-batch DP-SGD with Gaussian
noise is exactly μ-GDP). A mechanism can be (ε, δ)-DP with a smaller ε without being μ-GDP
for the matching μ, so this figure is computed for Gaussian noise only, printed with its
assumption, and never compared with a non-Gaussian mechanism's verified ε. Its advantage is
power: it uses the whole middle of the trade-off curve, where binomial counts are accurate,
instead of the far tail a direct (ε, δ) bound needs, and extrapolates along the assumed
curve, so it can exceed the direct bound's finite-sample ceiling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import special

from ..validation import check_confidence, check_delta
from .bounds import _counts, clopper_pearson_upper, split_scores
from .one_run import EPS_MAX, LOWER_BOUND, gdp_epsilon

__all__ = ["GDPLowerBound", "gdp_lower_bound"]


@dataclass(frozen=True)
class GDPLowerBound:
    """A multi-run lower bound on μ (μ-GDP refuted below it) and its ε at δ.

    Attributes
    ----------
    epsilon : float
        ``gdp_epsilon(mu_lower, delta)`` (capped at 100): a lower bound on ε at ``delta`` for
        a mechanism with a Gaussian trade-off curve, at ``confidence``.
    mu_lower : float
        μ-GDP is refuted for every μ below it (0 when nothing is refuted).
    delta, confidence : float
        δ at which ``epsilon`` is read; the joint confidence.
    region : str
        The chosen test, e.g. ``"in: s >= 0.31"`` ("in" is the world the test rejects into).
    fpr_upper, fnr_upper : float
        The Clopper–Pearson upper bounds ``p̄`` and ``q̄`` on the evaluation trials.
    n_in, n_out, n_selection : int
        Evaluation trials per world, and trials used to choose the test.
    method : str
        ``"gdp"``.
    label : str
        ``"empirical lower bound (μ-GDP, Gaussian trade-off assumed)"``: never mistaken for
        the (ε, δ) bound of :func:`~product_noise.audit.bounds.epsilon_lower_bound`.
    """

    epsilon: float
    mu_lower: float
    delta: float
    confidence: float
    region: str
    fpr_upper: float
    fnr_upper: float
    n_in: int
    n_out: int
    n_selection: int
    method: str = "gdp"
    label: str = f"{LOWER_BOUND} (μ-GDP, Gaussian trade-off assumed)"

    @property
    def epsilon_lower(self) -> float:
        """``epsilon``, under the name :class:`~product_noise.audit.EpsilonLowerBound` uses."""
        return self.epsilon

    def __str__(self) -> str:
        return (
            f"{self.label} (ε ≥ {self.epsilon:.4g} at δ = {self.delta:.3g}, "
            f"{100 * self.confidence:g}% confidence) [multi-run, μ-GDP refuted below "
            f"μ = {self.mu_lower:.4g}; {self.region}, FPR ≤ "
            f"{self.fpr_upper:.4g}, FNR ≤ {self.fnr_upper:.4g} on {self.n_in}+{self.n_out} runs]"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy of every field."""
        return asdict(self)


def _mu_lower(fpr_hi: np.ndarray, fnr_hi: np.ndarray) -> np.ndarray:
    """``Φ⁻¹(1 − p̄) − Φ⁻¹(q̄)`` (−inf where a rate bound is 1: nothing refuted)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return special.ndtri(1.0 - fpr_hi) - special.ndtri(fnr_hi)


def _rates(pos: np.ndarray, neg: np.ndarray, c: np.ndarray, ge: bool, alpha2: float):
    """Upper bounds on FPR (``neg`` in the rejection region) and FNR (``pos`` outside it)."""
    k_fp = _counts(neg, c, ge)
    k_fn = pos.size - _counts(pos, c, ge)
    return clopper_pearson_upper(k_fp, neg.size, alpha2), clopper_pearson_upper(
        k_fn, pos.size, alpha2
    )


def gdp_lower_bound(
    scores_in: Any,
    scores_out: Any,
    *,
    delta: float,
    confidence: float = 0.95,
    selection_fraction: float = 0.5,
) -> GDPLowerBound:
    """The μ-GDP lower bound of two worlds' scores (module docstring), read as ε at ``delta``.

    Parameters
    ----------
    scores_in, scores_out : array-like of float, shape (n,)
        One score per independent trial with and without the canary (any orientation), in an
        order unrelated to their values; at least 4 each.
    delta : float
        δ in (0, 1) at which μ is read as ε.
    confidence : float, default 0.95
        Joint confidence in (0, 1).
    selection_fraction : float, default 0.5
        Fraction of each sample that chooses the test, in (0, 1).

    Returns
    -------
    GDPLowerBound

    Raises
    ------
    ValueError
        On δ or confidence outside (0, 1), a bad ``selection_fraction``, NaN scores or fewer
        than 4 scores per world.
    """
    delta = check_delta(delta)
    confidence = check_confidence(confidence)
    split = split_scores(scores_in, scores_out, selection_fraction)
    sel, ev, cand = split.sel, split.ev, split.candidates
    alpha2 = (1.0 - confidence) / 2.0
    best = (-np.inf, float(cand[0]), True, "in")
    for ge in (True, False):
        for a, b in (("in", "out"), ("out", "in")):  # a: the world the test rejects into
            mu = _mu_lower(*_rates(sel[a], sel[b], cand, ge, alpha2))
            i = int(np.argmax(mu))
            if mu[i] > best[0]:
                best = (float(mu[i]), float(cand[i]), ge, a)
    _, c, ge, a = best
    b = "out" if a == "in" else "in"
    fpr_hi, fnr_hi = (
        float(np.ravel(x)[0]) for x in _rates(ev[a], ev[b], np.array([c]), ge, alpha2)
    )
    mu_lb = float(_mu_lower(np.array(fpr_hi), np.array(fnr_hi)))
    mu_lb = mu_lb if np.isfinite(mu_lb) and mu_lb > 0 else 0.0
    eps = min(gdp_epsilon(mu_lb, delta), EPS_MAX) if mu_lb > 0 else 0.0
    return GDPLowerBound(
        epsilon=eps,
        mu_lower=mu_lb,
        delta=delta,
        confidence=confidence,
        region=f"{a}: s {'>=' if ge else '<='} {c:.6g}",
        fpr_upper=fpr_hi,
        fnr_upper=fnr_hi,
        n_in=int(ev["in"].size),
        n_out=int(ev["out"].size),
        n_selection=split.n_selection,
    )
