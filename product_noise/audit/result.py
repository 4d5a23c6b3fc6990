"""The result of a training audit: one row of the report (:class:`TrainingAuditResult`), the
mechanism names the audit accepts (:func:`audit_mechanisms`), and the data the canary audits
train on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..mechanisms.registry import mechanism_names
from ..privacy import CLAIMED, UNVERIFIED, VERIFIED, PrivacyFigure
from .bounds import EpsilonLowerBound

if TYPE_CHECKING:  # one_run loads dp_accounting: imported by the one-run audit only
    from .gdp_bound import GDPLowerBound
    from .one_run import GDPEstimate, OneRunBound

__all__ = [
    "audit_mechanisms",
    "DIGITS_ROWS",
    "MATCHED",
    "METHODS",
    "TrainingAuditResult",
    "digits_sample",
    "score_estimate",
]

#: the calibration-target label of an unverified mechanism run at the noise of the verified
#: Gaussian for the target (:data:`~product_noise.mechanisms.MATCHED_TO_GAUSSIAN`)
MATCHED = "Gaussian-matched"
#: the two audit methods of :func:`~product_noise.audit.audit_training` (many runs per world)
#: and :func:`~product_noise.audit.audit_training_one_run` (one run, many canaries)
METHODS = ("multi-run", "one-run")


def audit_mechanisms() -> tuple[str, ...]:
    """The mechanisms :func:`~product_noise.audit.audit_training` can audit, read now: the
    registry's audited noises (harness order, dash spelling; user mechanisms included) and
    DPMix."""
    return (*mechanism_names("audit", spelling="dash", order="harness"), "dpmix")


def __getattr__(name: str) -> Any:
    # ``MECHANISMS``, formerly an import-time constant: now a live view of the registry
    if name == "MECHANISMS":
        return audit_mechanisms()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class TrainingAuditResult:
    """One audit: the empirical lower bound next to the verified and (if any) claimed figure.

    Attributes
    ----------
    mechanism : str
        One of :func:`audit_mechanisms`.
    bound : EpsilonLowerBound or OneRunBound
        The empirical lower bound at ``delta`` (multi-run: Clopper–Pearson; one-run: Steinke,
        Nasr, Jagielski 2023).
    verified : PrivacyFigure or None
        The verified (ε, δ) of exactly what was run, at ``delta``; ``None`` for an unverified
        mechanism (a user's sampler without a proven profile), never a stand-in figure.
    claimed : PrivacyFigure or None
        The claimed figure (product noise at the paper's calibration, DPMix' thesis formula).
    trials, steps : int
        Trials per world; optimizer steps per DP-SGD run (DPMix: releases per run).
    threat_model, statistic : str
        What the adversary sees and the score it computes.
    settings : dict
        Everything needed to reproduce the run (noise multiplier, dimension, seed, ...); with a
        calibrated noise also ``target_epsilon`` and its ``target_label`` (see :attr:`target`).
    seconds : float
        Wall-clock time of the audit.
    unverified : str
        Why there is no verified figure (set exactly when ``verified`` is ``None``).
    method : str
        ``"multi-run"`` or ``"one-run"`` (:data:`METHODS`).
    estimate : GDPEstimate or None
        The Gaussian-fit ε **estimate** of the scores (Nasr et al., USENIX Security 2023):
        never a bound; ``None`` when the fit is undefined (e.g. scores of zero variance).
    fdp_bound : OneRunBound or GDPLowerBound or None
        Gaussian noise only: the f-DP lower bound, which refutes μ-GDP and is an ε bound only
        for an exactly Gaussian trade-off curve (full-batch Gaussian DP-SGD; with Poisson
        sampling only approximately, so then not a proven ε bound). One-run: Mahloujifar,
        Melis, Chaudhuri 2025; multi-run: Nasr et al. 2023
        (:func:`~product_noise.audit.gdp_bound.gdp_lower_bound`).
    bound_at_claimed_delta : float or None
        One-run: the bound recomputed at the claimed figure's δ (a multi-run bound is valid at
        every δ at once, :meth:`EpsilonLowerBound.epsilon_at`).
    """

    mechanism: str
    bound: EpsilonLowerBound
    verified: PrivacyFigure
    claimed: PrivacyFigure | None
    trials: int
    steps: int
    threat_model: str
    statistic: str
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0
    unverified: str = ""
    method: str = "multi-run"
    estimate: GDPEstimate | None = None
    fdp_bound: OneRunBound | GDPLowerBound | None = None
    bound_at_claimed_delta: float | None = None

    def __post_init__(self) -> None:
        if (self.verified is None) != bool(self.unverified):
            raise ValueError(
                "an audit has a verified figure or says why not (unverified), not both"
            )

    @property
    def privacy_label(self) -> str:
        """``verified`` (the row has a verified ε) or ``unverified`` (it has none)."""
        return UNVERIFIED if self.verified is None else VERIFIED

    @property
    def delta(self) -> float:
        return self.bound.delta

    @property
    def confidence(self) -> float:
        return self.bound.confidence

    @property
    def target(self) -> str:
        """The calibration target of the row, e.g. ``"verified ε = 2"``, ``"Gaussian-matched ε =
        2"`` (an unverified mechanism at the verified Gaussian's noise for ε = 2) or ``"given
        noise"``."""
        if "target_text" in self.settings:  # e.g. one-run product-paper: the per-step ε₀
            return str(self.settings["target_text"])
        eps = self.settings.get("target_epsilon")
        if eps is None:
            return "given noise"
        return f"{self.settings.get('target_label', VERIFIED)} ε = {eps:g}"

    @property
    def claimed_bound(self) -> float | None:
        """The lower bound at the claimed figure's δ (``None`` without a usable claim)."""
        if self.claimed is None or not 0 < self.claimed.delta < 1:
            return None
        if not hasattr(self.bound, "epsilon_at"):  # a one-run bound: recomputed at that δ
            return self.bound_at_claimed_delta
        return self.bound.epsilon_at(self.claimed.delta)

    @property
    def verdict(self) -> str:
        """A plain sentence on the row."""
        lb = self.bound.epsilon_lower
        conf = f"{100 * self.confidence:g}%"
        if self.verified is None:
            parts = [
                f"{UNVERIFIED}: no verified ε; the empirical lower bound is the only privacy "
                "evidence (no upper bound is proven)"
            ]
        elif lb > self.verified.epsilon:
            parts = [
                f"lower bound > verified at {conf} confidence: INCONSISTENT, the accounting or "
                "the training code is wrong"
            ]
        else:
            parts = ["lower bound ≤ verified: consistent"]
        cb = self.claimed_bound
        if cb is not None and math.isfinite(self.claimed.epsilon):  # type: ignore[union-attr]
            if cb > self.claimed.epsilon:  # type: ignore[union-attr]
                parts.append(
                    f"lower bound > claimed: the claim is false on a real training run "
                    f"(at {conf} confidence)"
                )
            else:
                parts.append("lower bound ≤ claimed: this audit does not refute the claim")
                est = self.estimate
                if est is not None and est.epsilon > self.claimed.epsilon:  # type: ignore[union-attr]
                    parts.append("the estimate (not a bound) exceeds the claimed ε")
        return "; ".join(parts)

    def to_row(self) -> dict[str, Any]:
        """One flat row for the CSV/Markdown table (every ε column named by its kind)."""
        one_run, dpmix = self.method == "one-run", self.mechanism == "dpmix"
        return {
            "mechanism": self.mechanism,
            "method": self.method,
            "steps": self.steps,
            "trials_per_world": None if one_run else self.trials,
            "canaries": self.settings.get("canaries"),
            "sample_rate": self.settings.get("sample_rate", None if dpmix else 1.0),
            "verified_target_epsilon": self._target_of(VERIFIED),
            "claimed_target_epsilon": self._target_of(CLAIMED),
            "delta": self.delta,
            "confidence": self.confidence,
            "empirical_lower_bound_epsilon": self.bound.epsilon_lower,
            "estimated_epsilon": None if self.estimate is None else self.estimate.epsilon,
            "fdp_lower_bound_epsilon": None if self.fdp_bound is None else self.fdp_bound.epsilon,
            "privacy_label": self.privacy_label,
            "verified_epsilon": None if self.verified is None else self.verified.epsilon,
            "claimed_epsilon": None if self.claimed is None else self.claimed.epsilon,
            "claimed_delta": None if self.claimed is None else self.claimed.delta,
            "lower_bound_at_claimed_delta": self.claimed_bound,
            "finite_sample_ceiling": getattr(self.bound, "ceiling", None),
            "region": getattr(self.bound, "region", None),
            "p_hat_A": getattr(self.bound, "p_a_hat", None),
            "p_hat_B": getattr(self.bound, "p_b_hat", None),
            "threat_model": self.settings.get("threat_model", ""),
            "statistic": self.statistic,
            "noise_multiplier": self.settings.get("noise_multiplier"),
            "dim": self.settings.get("dim"),
            "seconds": round(self.seconds, 2),
            "verdict": self.verdict,
        }

    def _target_of(self, label: str) -> float | None:
        if self.settings.get("target_label") != label:
            return None
        return self.settings.get("target_epsilon")

    def __str__(self) -> str:
        claimed = "" if self.claimed is None else f"; {self.claimed}"
        upper = f"{UNVERIFIED} ({self.unverified})" if self.verified is None else self.verified
        what = [self.settings.get("threat_model", ""), self.target, f"T = {self.steps}"]
        if self.method == "one-run":
            what.append(f"one run, {self.settings.get('canaries')} canaries")
        head = f"{self.mechanism} ({', '.join(w for w in what if w)})"
        extra = "" if self.fdp_bound is None else f"; {self.fdp_bound}"
        est = "" if self.estimate is None else f"; {self.estimate}"
        return f"{head}: {self.bound}{extra}{est}; {upper}{claimed} => {self.verdict}"


def score_estimate(scores_in: Any, scores_out: Any, delta: float) -> GDPEstimate | None:
    """The Gaussian-fit ε **estimate** of two samples of audit scores (Nasr, Hayes, Steinke,
    Balle, Tramèr, Jagielski, Carlini, Terzis, USENIX Security 2023), or ``None`` when the fit
    is undefined (non-finite scores, zero variance). Never a bound."""
    from ..validation import InputError
    from .one_run import gdp_epsilon_estimate

    try:
        return gdp_epsilon_estimate(scores_in, scores_out, delta)
    except InputError:
        return None


#: rows of scikit-learn's digits data set, the largest ``n_records`` of an audit
DIGITS_ROWS = 1797


def digits_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` of the digits (no repeats, chosen by ``seed``), pixels scaled to [0, 1], and
    their labels."""
    (X, y), _ = digits_split(n, 0, seed)
    return X, y


def digits_split(
    n: int, m: int, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(digits_sample(n, seed), m other digits)``: the same ``n`` records, and ``m`` of the
    remaining ones (chosen by ``seed``, none of them among the ``n``), each as ``(X, y)``."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), size=n, replace=False)
    rest = np.setdiff1d(np.arange(len(y)), idx)
    other = rng.choice(rest, size=m, replace=False) if m else rest[:0]
    return (X[idx] / 16.0, y[idx]), (X[other] / 16.0, y[other])
