"""One-run privacy audits: canary guesses or scores turned into ε lower bounds and estimates.

In a one-run audit, ``m`` canaries are each included in the training set independently with
probability ½; after the single run the auditor guesses, for ``r`` of them, whether they were
included (abstaining on the rest), and ``v`` guesses are correct. Under (ε, δ)-DP the number of
correct guesses is stochastically dominated (up to a δ term) by ``Bin(r, e^ε / (1 + e^ε))``, so
many correct guesses refute small ε.

``steinke_epsilon_lower_bound``      the (ε, δ)-DP bound of Steinke, Nasr, Jagielski (2023)
``fdp_one_run_epsilon_lower_bound``  the f-DP bound of Mahloujifar, Melis, Chaudhuri (2025),
                                     Gaussian trade-off family
``steinke_best_threshold``           guesses from canary scores, a fixed grid of guess counts
                                     swept with a Bonferroni correction
``gdp_epsilon_estimate``             the Gaussian-fit ε **estimate** of Nasr et al. (2023), not a
                                     bound
``gdp_epsilon``                      ε at δ of μ-GDP

The bounds are "empirical lower bound"s: with probability ≥ ``confidence`` over the canaries'
inclusion (and the run's randomness), the true ε at δ is at least the returned value.

References
----------
.. [1] T. Steinke, M. Nasr, M. Jagielski. "Privacy auditing with one (1) training run."
   NeurIPS 2023. arXiv:2305.08846.
.. [2] S. Mahloujifar, L. Melis, K. Chaudhuri. "Auditing f-differential privacy in one run."
   ICML 2025. arXiv:2410.22235.
.. [3] M. Nasr, J. Hayes, T. Steinke, B. Balle, F. Tramèr, M. Jagielski, N. Carlini,
   A. Terzis. "Tight auditing of differentially private machine learning." USENIX Security
   2023. arXiv:2302.07956.
.. [4] J. Dong, A. Roth, W. J. Su. "Gaussian differential privacy." JRSS-B 2022.
   arXiv:1905.02383 (Corollary 2.13: ε(δ) of μ-GDP).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from numbers import Integral
from typing import Any

import dp_accounting
import numpy as np
from scipy import special, stats

from ..privacy import ESTIMATE, EmpiricalBound, PrivacyFigure
from ..validation import InputError, check_confidence, check_delta

__all__ = [
    "OneRunBound",
    "GDPEstimate",
    "steinke_p_value",
    "steinke_epsilon_lower_bound",
    "fdp_one_run_epsilon_lower_bound",
    "steinke_best_threshold",
    "default_k_grid",
    "min_canaries",
    "check_enough_canaries",
    "gdp_epsilon",
    "gdp_epsilon_estimate",
]

#: ε is searched in [0, EPS_MAX]; a bound is never reported above it
EPS_MAX = 100.0
#: the label of every bound of this module (the package's wording)
LOWER_BOUND = "empirical lower bound"
METHODS = ("steinke", "fdp")
_GRID = 48  # coarse scan points before bisection
_XTOL = 1e-12  # relative width at which the bracket search stops
_SPLIT = 15  # points per step of the vectorised (Steinke) search


# --------------------------------------------------------------------------------------------
# argument checks


def _count(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError(f"{name} must be an integer count, got {value!r}")
    v = int(value)
    if v < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return v


def _check_counts(m: object, r: object, v: object) -> tuple[int, int, int]:
    m = _count("m (number of canaries)", m, minimum=1)
    r = _count("r (number of guesses)", r)
    v = _count("v (number of correct guesses)", v)
    if r > m:
        raise InputError(f"r (number of guesses) must be <= m = {m}, got {r}")
    if v > r:
        raise InputError(f"v (number of correct guesses) must be <= r = {r}, got {v}")
    return m, r, v


def _check_delta0(delta: object) -> float:
    """δ in [0, 1): the one-run bounds accept δ = 0 (pure DP)."""
    if isinstance(delta, (int, float)) and not isinstance(delta, bool) and float(delta) == 0.0:
        return 0.0
    return check_delta(delta)


def _check_scores(name: str, scores: Any, minimum: int = 1) -> np.ndarray:
    arr = np.asarray(scores, dtype=float)
    if arr.ndim != 1:
        raise InputError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size < minimum:
        raise InputError(f"{name} needs at least {minimum} values, got {arr.size}")
    if np.isnan(arr).any():
        raise InputError(f"{name} contains NaN")
    return arr


# --------------------------------------------------------------------------------------------
# the search shared by both bounds


def _largest_rejected(
    rejects: Callable[[np.ndarray], np.ndarray], hi: float, split: int = 1
) -> float:
    """Largest ``x`` in ``[0, hi]`` found with ``rejects(x)``, or 0.0 if none is found.

    ``rejects`` maps an array of parameters to an array of bools. A coarse scan of ``[0, hi]``,
    then a search of the bracket between the last rejected scan point ``lo`` and the next one
    ``up``: each step tests ``split`` equally spaced interior points (``split = 1`` is
    bisection) and keeps the invariant ``rejects(lo)``, ``not rejects(up)``. The returned point
    is always one at which the test rejects, so the result is valid even where the rejection
    region is not an interval: every hypothesis tested here (ε-DP or μ-GDP) is implied by the
    one at any smaller parameter, so rejecting at ``x`` rejects every smaller value too.
    """
    grid = np.linspace(0.0, hi, _GRID + 1)
    hits = np.flatnonzero(rejects(grid))
    if hits.size == 0:
        return 0.0
    i = int(hits[-1])
    if i == _GRID:
        return float(hi)
    lo, up = float(grid[i]), float(grid[i + 1])
    while up - lo > _XTOL * max(1.0, hi):
        pts = np.linspace(lo, up, split + 2)
        inner = pts[1:-1]
        if inner.size == 0 or inner[0] <= lo or inner[-1] >= up:
            break  # no representable point left inside the bracket
        ok = np.flatnonzero(rejects(inner))
        j = int(ok[-1]) + 1 if ok.size else 0  # index in pts of the last rejected point
        lo, up = float(pts[j]), float(pts[j + 1])
    return lo


# --------------------------------------------------------------------------------------------
# Steinke, Nasr, Jagielski (2023)


def steinke_p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """Upper bound on ``P[W ≥ v]`` under (ε, δ)-DP, ``W`` the number of correct guesses.

    Steinke, Nasr, Jagielski [1]_, Theorem 3.1 (δ = 0) and Proposition 5.2 / Algorithm 2
    (δ > 0): with ``q = e^ε / (1 + e^ε)`` and ``X ~ Bin(r, q)``,

    ``P[W ≥ v] ≤ P[X ≥ v] + 2 m δ · max_{1 ≤ i ≤ v} P[v − i ≤ X < v] / i``

    (clipped to 1). For ``i ≥ v`` the window ``P[v − i ≤ X < v] = P[X < v]`` no longer grows,
    so the maximum over ``i ≤ v`` is the maximum over all ``i ≥ 1``.

    Parameters
    ----------
    m, r, v : int
        Canaries, guesses and correct guesses, ``0 ≤ v ≤ r ≤ m``, ``m ≥ 1``.
    epsilon : float
        ε ≥ 0 of the null hypothesis.
    delta : float
        δ in [0, 1) of the null hypothesis.

    Returns
    -------
    p : float
        A valid p-value for the hypothesis "the mechanism is (ε, δ)-DP".
    """
    m, r, v = _check_counts(m, r, v)
    delta = _check_delta0(delta)
    return float(_p_values(m, r, v, np.array([float(epsilon)]), delta)[0])


def _p_values(m: int, r: int, v: int, eps: np.ndarray, delta: float) -> np.ndarray:
    """:func:`steinke_p_value` at each ε of ``eps`` (shape (n,)), arguments already checked."""
    if v == 0:
        return np.ones_like(eps)
    q = special.expit(eps)
    beta = stats.binom.sf(v - 1, r, q)
    if delta == 0.0:
        return beta
    # window[:, i-1] = P[v - i <= X <= v - 1] for i = 1..v
    window = np.cumsum(stats.binom.pmf(np.arange(v - 1, -1, -1), r, q[:, None]), axis=1)
    alpha = np.max(window / np.arange(1, v + 1), axis=1)
    return np.minimum(1.0, beta + 2.0 * m * delta * alpha)


def steinke_epsilon_lower_bound(
    m: int, r: int, v: int, delta: float, confidence: float = 0.95
) -> float:
    """ε lower bound of a one-run audit with ``v`` correct guesses out of ``r`` (``m`` canaries).

    Steinke, Nasr, Jagielski [1]_, Algorithm 2: the largest ε in [0, 100] at which the
    (ε, δ)-DP hypothesis is rejected at level ``1 − confidence`` by :func:`steinke_p_value`.
    Each canary must have been included independently with probability ½, and the guesses
    (which canaries, and which answer) may depend on the run's output only.

    Parameters
    ----------
    m : int
        Number of canaries, ``m ≥ 1``.
    r : int
        Number of guesses made (abstentions excluded), ``0 ≤ r ≤ m``.
    v : int
        Number of correct guesses, ``0 ≤ v ≤ r``.
    delta : float
        δ in [0, 1) of the bound.
    confidence : float, default 0.95
        Confidence in (0, 1).

    Returns
    -------
    epsilon : float
        The bound, 0.0 when even ε = 0 explains the data (too few guesses or correct ones).

    Raises
    ------
    InputError
        If ``m < 1``, ``r > m``, ``v > r``, δ is not in [0, 1) or confidence not in (0, 1).
    """
    m, r, v = _check_counts(m, r, v)
    delta = _check_delta0(delta)
    alpha = 1.0 - check_confidence(confidence)
    if v == 0:
        return 0.0

    # P[X >= v] alone is increasing in ε, and the δ term only adds to it: the δ = 0 answer
    # (by bisection on a monotone function) bounds the search interval of the δ > 0 one
    hi = _largest_rejected(lambda e: _p_values(m, r, v, e, 0.0) <= alpha, EPS_MAX, _SPLIT)
    if delta == 0.0 or hi == 0.0:
        return hi
    return _largest_rejected(lambda e: _p_values(m, r, v, e, delta) <= alpha, hi, _SPLIT)


# --------------------------------------------------------------------------------------------
# Mahloujifar, Melis, Chaudhuri (2025), Gaussian trade-off family


def _gdp_falsified(m: int, r: int, v: int, mu: float, alpha: float) -> bool:
    """Whether ``v`` correct out of ``r`` guesses (``m`` canaries) refutes μ-GDP at level α.

    The recursion of Mahloujifar, Melis, Chaudhuri [2]_ (their Algorithm for auditing with
    abstentions, "audit_rh_with_cap"), for the Gaussian trade-off ``f(x) = Φ(Φ⁻¹(1 − x) − μ)``:
    starting from the masses ``a = α v / m`` (correct) and ``b = α (r − v) / m`` (incorrect),
    for ``i = v − 1, …, 0``: ``b' = max(b, f(1 − a))``, ``a' = min(1, a + i/(r − i) (b' − b))``.
    The claim is refuted when the final ``a + b`` exceeds ``r / m``.
    """
    a, b = alpha * v / m, alpha * (r - v) / m
    for i in range(v - 1, -1, -1):
        b_new = max(b, float(special.ndtr(special.ndtri(a) - mu)))
        if b_new == b:  # a fixed point: neither mass changes again
            break
        a = min(a + i / (r - i) * (b_new - b), 1.0)
        b = b_new
    return a + b > r / m


def fdp_one_run_epsilon_lower_bound(
    m: int, r: int, v: int, delta: float, confidence: float = 0.95
) -> float:
    """ε lower bound of a one-run audit from the f-DP analysis, Gaussian trade-off family.

    Mahloujifar, Melis, Chaudhuri [2]_: the largest μ such that ``v`` correct out of ``r``
    guesses refutes μ-GDP at level ``1 − confidence`` (the recursion of their algorithm for
    audits with abstentions, run with the Gaussian trade-off curve ``G_μ`` as the hypothesised
    f), converted to ε at δ by :func:`gdp_epsilon`. jax_privacy's ``epsilon_one_run_fdp``
    computes the same number, parametrised by ε through the σ of the Gaussian mechanism with
    that (ε, δ) (the same curve).

    What it refutes is μ-GDP, not (ε, δ)-DP: it is a lower bound on ε at δ only for a
    mechanism whose trade-off curve is Gaussian (the claim audited is "μ-GDP", as for
    full-batch DP-SGD with Gaussian noise, where it is much tighter than
    :func:`steinke_epsilon_lower_bound`; Poisson-subsampled Gaussian DP-SGD is only
    approximately μ-GDP, so there it refutes μ-GDP without bounding its (ε, δ)).
    A mechanism can be (ε, δ)-DP with ε below this value without being μ-GDP for the matching
    μ; for a bound on arbitrary (ε, δ)-DP mechanisms use :func:`steinke_epsilon_lower_bound`.

    Implemented: the Gaussian family only, not the paper's algorithm for a general trade-off
    f. Like jax_privacy, :func:`steinke_best_threshold` uses it with one-sided guesses only
    (all ``r`` guesses "in", ``k_minus = 0``).

    Parameters
    ----------
    m, r, v : int
        Canaries (``m ≥ 1``), guesses (``r ≤ m``) and correct guesses (``v ≤ r``).
    delta : float
        δ in (0, 1) at which the μ bound is expressed as ε.
    confidence : float, default 0.95
        Confidence in (0, 1).

    Returns
    -------
    epsilon : float
        ``gdp_epsilon(μ̂, δ)`` capped at 100, 0.0 when no μ > 0 is refuted.

    Raises
    ------
    InputError
        On bad counts, δ or confidence (see :func:`steinke_epsilon_lower_bound`).
    """
    m, r, v = _check_counts(m, r, v)
    delta = check_delta(delta)
    alpha = 1.0 - check_confidence(confidence)
    if v == 0:
        return 0.0
    mu_hi = 1.0 / dp_accounting.get_sigma_gaussian(EPS_MAX, delta)
    mu = _largest_rejected(
        lambda mus: np.array([_gdp_falsified(m, r, v, float(x), alpha) for x in mus]), mu_hi
    )
    return min(gdp_epsilon(mu, delta), EPS_MAX) if mu > 0 else 0.0


# --------------------------------------------------------------------------------------------
# guesses from scores


@dataclass(frozen=True)
class OneRunBound:
    """An empirical lower bound on ε from a one-run audit, with the guesses that gave it.

    Attributes
    ----------
    epsilon : float
        With probability ≥ ``confidence`` the true ε at ``delta`` is at least this.
    r, v : int
        Guesses and correct guesses of the chosen ``(k_plus, k_minus)``.
    k_plus, k_minus : int
        Canaries guessed "in" (top scores) and "out" (bottom scores).
    m : int
        Canaries.
    delta, confidence : float
        δ of the bound and its confidence (over all hypotheses together).
    n_hypotheses : int
        Number of ``(k_plus, k_minus)`` pairs tried; each was tested at level
        ``(1 − confidence) / n_hypotheses``.
    method : str
        ``"steinke"`` or ``"fdp"`` (:data:`METHODS`).
    label : str
        ``"empirical lower bound"``.
    """

    epsilon: float
    r: int
    v: int
    k_plus: int
    k_minus: int
    m: int
    delta: float
    confidence: float
    n_hypotheses: int
    method: str
    label: str = LOWER_BOUND

    @property
    def epsilon_lower(self) -> float:
        """``epsilon``, under the name :class:`~product_noise.audit.EpsilonLowerBound` uses."""
        return self.epsilon

    def __str__(self) -> str:
        hyp = "μ-GDP refuted, Gaussian trade-off assumed" if self.method == "fdp" else "(ε, δ)-DP"
        return (
            f"{self.label} (ε ≥ {self.epsilon:.4g} at δ = {self.delta:.3g}, "
            f"{100 * self.confidence:g}% confidence) [one run, {self.method}, {hyp}: "
            f"{self.v}/{self.r} guesses correct (k+ = {self.k_plus}, k- = {self.k_minus}) of "
            f"{self.m} canaries, Bonferroni over {self.n_hypotheses}]"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy of every field."""
        return asdict(self)

    def to_empirical(self, source: str | None = None) -> EmpiricalBound:
        """This bound as an :class:`~product_noise.privacy.EmpiricalBound` (``source``
        defaults to ``str(self)``)."""
        return EmpiricalBound.from_lower_bound(self, source)


def default_k_grid(m: int) -> list[int]:
    """Powers of two below ``m``, and ``m``: the default ``k_plus`` values of
    :func:`steinke_best_threshold` (``⌈log₂ m⌉ + 1`` values at most, fixed before the data)."""
    m = _count("m", m, minimum=1)
    return sorted({2**j for j in range(max(m.bit_length(), 1)) if 2**j < m} | {m})


def min_canaries(confidence: float = 0.95) -> int:
    """The fewest canaries with which a one-run audit can certify any ε > 0 at ``confidence``.

    The best outcome of ``m`` canaries is every one included and every "in" guess of
    ``k_plus = m`` right; its p-value at ε = 0 is ``2^{-m}``, tested at level
    ``(1 − confidence)/H`` with ``H = len(default_k_grid(m))`` (the Bonferroni sweep of
    :func:`steinke_best_threshold`; Steinke, Nasr, Jagielski 2023, Theorem 3.1 at ε = 0). With
    fewer canaries no outcome gives a bound above 0, so the audits refuse them before
    training (7 at 95%, 9 at 99%). Just above it a positive bound needs luck (most canaries
    included); useful audits need hundreds or thousands.
    """
    alpha = 1.0 - check_confidence(confidence)
    m = 1
    while 2.0**-m > alpha / len(default_k_grid(m)):
        m += 1
    return m


def check_enough_canaries(m: int, confidence: float) -> None:
    """Refuse, before training, fewer canaries than :func:`min_canaries` of ``confidence``.

    Raises
    ------
    InputError
        ``m`` canaries too few for ``confidence``.
    """
    least = min_canaries(confidence)
    if m < least:
        raise InputError(
            f"{m} canaries are too few for {100 * confidence:g}% confidence: no outcome of the "
            f"audit could give a bound above 0; use at least {least} canaries"
        )


def _k_list(name: str, ks: int | Sequence[int] | None, default: list[int], m: int) -> list[int]:
    if ks is None:
        return default
    seq = [ks] if isinstance(ks, Integral) else list(ks)
    if not seq:
        raise InputError(f"{name} must not be empty")
    out = sorted({_count(name, k) for k in seq})
    if out[-1] > m:
        raise InputError(f"{name} must be <= m = {m} canaries, got {out[-1]}")
    return out


def _k_pairs(k_plus: Any, k_minus: Any, m: int, method: str) -> list[tuple[int, int]]:
    minus = _k_list("k_minus", k_minus, [0], m)
    if method == "fdp" and max(minus) > 0:
        raise InputError('method "fdp" takes one-sided guesses only: k_minus must be 0')
    pairs = [
        (kp, km)
        for kp in _k_list("k_plus", k_plus, default_k_grid(m), m)
        for km in minus
        if 0 < kp + km <= m
    ]
    if not pairs:
        raise InputError("no (k_plus, k_minus) pair makes at least one and at most m guesses")
    return pairs


def _check_membership(scores: Any, included: Any) -> tuple[np.ndarray, np.ndarray]:
    s = _check_scores("scores", scores)
    inc = np.asarray(included)
    if inc.ndim != 1 or inc.size != s.size:
        raise InputError(
            f"included must be a 1-D array of {s.size} membership bits, got shape {inc.shape}"
        )
    if inc.dtype != bool and not (inc.dtype.kind in "iuf" and np.isin(inc, (0, 1)).all()):
        raise InputError("included must hold membership bits (True/False or 1/0)")
    return s, inc.astype(bool)


def steinke_best_threshold(
    scores: Sequence[float] | np.ndarray,
    included: Sequence[bool] | np.ndarray,
    delta: float,
    confidence: float = 0.95,
    k_plus: int | Sequence[int] | None = None,
    k_minus: int | Sequence[int] | None = None,
    *,
    method: str = "steinke",
) -> OneRunBound:
    """Best one-run bound over a fixed grid of guess counts, Bonferroni-corrected.

    The auditor guesses "in" for the ``k_plus`` highest scores, "out" for the ``k_minus``
    lowest, and abstains on the rest, as in Steinke et al. [1]_. Steinke et al. report the best
    ``k_plus`` of a sweep; taking a maximum over bounds computed on the same data at the full
    level ``1 − confidence`` is not valid. As in jax_privacy's ``epsilon_one_run``, whose
    default ``Bonferroni()`` strategy divides the significance by the number of thresholds,
    each of the ``H`` pairs ``(k_plus, k_minus)`` tried is tested at level
    ``(1 − confidence) / H``, so that all ``H`` bounds, and hence their maximum, hold together
    with probability ≥ ``confidence`` (a union bound). Unlike jax_privacy, which corrects by
    the number of convex-hull ROC thresholds of the data, the grid here is fixed before the
    data are seen; keep it short, since every extra value costs confidence.

    Parameters
    ----------
    scores : array-like of float, shape (m,)
        One score per canary, higher meaning "included". NaN not allowed; ties are broken by
        position (keep the canaries' order unrelated to their membership).
    included : array-like of bool, shape (m,)
        The true membership bits (each drawn independently with probability ½).
    delta : float
        δ of the bound ([0, 1) for ``"steinke"``, (0, 1) for ``"fdp"``).
    confidence : float, default 0.95
        Joint confidence in (0, 1).
    k_plus : int or sequence of int, optional
        Numbers of "in" guesses to try; default :func:`default_k_grid` of ``m``.
    k_minus : int or sequence of int, optional
        Numbers of "out" guesses to try; default ``0`` only (one-sided, as jax_privacy).
        Pairs with ``k_plus + k_minus > m`` are skipped. Must be 0 for ``"fdp"``.
    method : {"steinke", "fdp"}, default "steinke"
        :func:`steinke_epsilon_lower_bound` (a bound for any (ε, δ)-DP mechanism) or
        :func:`fdp_one_run_epsilon_lower_bound` (refutes μ-GDP: a bound on ε only for a
        mechanism with a Gaussian trade-off curve, see there).

    Returns
    -------
    OneRunBound
        The best pair's bound (the first pair tried on ties, ``epsilon = 0`` if none > 0).

    Raises
    ------
    InputError
        On NaN scores, mismatched lengths, an empty grid, a ``k`` above ``m`` or an unknown
        method; on bad δ or confidence.
    """
    s, inc = _check_membership(scores, included)
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    delta = _check_delta0(delta) if method == "steinke" else check_delta(delta)
    confidence = check_confidence(confidence)
    m = s.size
    pairs = _k_pairs(k_plus, k_minus, m, method)
    level = 1.0 - (1.0 - confidence) / len(pairs)
    bound = steinke_epsilon_lower_bound if method == "steinke" else fdp_one_run_epsilon_lower_bound
    # one ordering for both ends, so that "in" and "out" guesses never share a canary on ties
    order = np.argsort(-s, kind="stable")
    correct_in = np.cumsum(inc[order])
    correct_out = np.cumsum(~inc[order[::-1]])
    best = None
    for kp, km in pairs:
        v = int(correct_in[kp - 1] if kp else 0) + int(correct_out[km - 1] if km else 0)
        eps = bound(m, kp + km, v, delta, level)
        if best is None or eps > best[0]:
            best = (eps, kp + km, v, kp, km)
    eps, r, v, kp, km = best
    return OneRunBound(eps, r, v, kp, km, m, delta, confidence, len(pairs), method)


# --------------------------------------------------------------------------------------------
# Gaussian DP


def gdp_epsilon(mu: float, delta: float) -> float:
    """ε at δ of μ-GDP: the root of ``δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2)``.

    Dong, Roth, Su [4]_, Corollary 2.13. μ-GDP is the privacy of the Gaussian mechanism with
    sensitivity 1 and noise σ = 1/μ, so this is ``dp_accounting.get_epsilon_gaussian(1/μ, δ)``
    (Balle and Wang's exact analysis, arXiv:1805.06530, the same relation).

    Parameters
    ----------
    mu : float
        μ ≥ 0 (finite).
    delta : float
        δ in (0, 1).

    Returns
    -------
    epsilon : float
        ε ≥ 0; 0.0 when ``μ = 0`` or μ-GDP is already (0, δ)-DP.
    """
    delta = check_delta(delta)
    if isinstance(mu, bool) or not isinstance(mu, (int, float, np.floating, np.integer)):
        raise InputError(f"mu must be a number >= 0, got {mu!r}")
    mu = float(mu)
    if not (math.isfinite(mu) and mu >= 0.0):
        raise InputError(f"mu must be a finite number >= 0, got {mu!r}")
    if mu == 0.0:
        return 0.0
    return float(dp_accounting.get_epsilon_gaussian(1.0 / mu, delta))


@dataclass(frozen=True)
class GDPEstimate:
    """A Gaussian-fit **estimate** of ε at δ, never a bound.

    The scores are assumed Gaussian with a common variance and no confidence is attached:
    this must never be printed or recorded as a bound (neither "empirical lower bound" nor
    "verified"); its ``label`` is ``"estimate"``.

    Attributes
    ----------
    epsilon : float
        ``gdp_epsilon(mu_hat, delta)``.
    mu_hat : float
        ``|mean_in − mean_out| / pooled std``.
    delta : float
        The δ of the estimate.
    n_in, n_out : int
        Sample sizes.
    label : str
        ``"estimate"``.
    """

    epsilon: float
    mu_hat: float
    delta: float
    n_in: int
    n_out: int
    label: str = ESTIMATE

    def __str__(self) -> str:
        return (
            f"{self.label} (ε ≈ {self.epsilon:.4g} at δ = {self.delta:.3g}, Gaussian fit "
            f"μ̂ = {self.mu_hat:.4g} from {self.n_in}/{self.n_out} scores; not a bound)"
        )

    def to_figure(self) -> PrivacyFigure:
        """This estimate as the :class:`~product_noise.privacy.PrivacyFigure` a privacy report
        holds among its estimates (label ``"estimate"``)."""
        return PrivacyFigure(self.epsilon, self.delta, ESTIMATE, str(self), self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy of every field."""
        return asdict(self)


def gdp_epsilon_estimate(
    scores_in: Sequence[float] | np.ndarray,
    scores_out: Sequence[float] | np.ndarray,
    delta: float,
) -> GDPEstimate:
    """Estimate ε at δ by fitting Gaussians to the scores of included and excluded canaries.

    Nasr et al. [3]_: ``μ̂ = |mean_in − mean_out| / s``, ``s`` the pooled standard
    deviation ``sqrt(((n_in − 1) s_in² + (n_out − 1) s_out²) / (n_in + n_out − 2))``, then
    ε = :func:`gdp_epsilon` ``(μ̂, δ)``. An **estimate**: no confidence, biased upward for
    small samples and wrong when the scores are not Gaussian. Never print it as a bound.

    Parameters
    ----------
    scores_in : array-like of float, shape (n_in,)
        Scores of included canaries, ``n_in ≥ 2``, finite.
    scores_out : array-like of float, shape (n_out,)
        Scores of excluded canaries, ``n_out ≥ 2``, finite.
    delta : float
        δ in (0, 1).

    Returns
    -------
    GDPEstimate
        ``label == "estimate"``.

    Raises
    ------
    InputError
        On NaN or infinite scores, fewer than 2 scores per sample, zero pooled variance or a
        bad δ.
    """
    delta = check_delta(delta)
    s_in = _check_scores("scores_in", scores_in, minimum=2)
    s_out = _check_scores("scores_out", scores_out, minimum=2)
    if not (np.isfinite(s_in).all() and np.isfinite(s_out).all()):
        raise InputError("scores_in and scores_out must be finite for a Gaussian fit")
    n_in, n_out = s_in.size, s_out.size
    pooled = ((n_in - 1) * s_in.var(ddof=1) + (n_out - 1) * s_out.var(ddof=1)) / (n_in + n_out - 2)
    if not pooled > 0:
        raise InputError("the scores have zero variance: a Gaussian fit is undefined")
    mu_hat = abs(float(s_in.mean() - s_out.mean())) / math.sqrt(pooled)
    return GDPEstimate(gdp_epsilon(mu_hat, delta), mu_hat, delta, n_in, n_out)
