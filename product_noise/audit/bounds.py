"""Statistically valid lower bounds on ε from attack outcomes.

Clopper–Pearson intervals on binomial counts, and :func:`epsilon_lower_bound`, which turns the
scores of two worlds (with and without a canary) into an ε lower bound at a given δ by a
selection/evaluation split (Jagielski, Ullman, Oprea 2020; Nasr, Song, Thakurta, Papernot,
Carlini 2021).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from scipy import stats

from ..privacy import EmpiricalBound
from ..validation import (
    check_confidence,
    check_delta,
    check_positive_int,
)

__all__ = [
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "EpsilonLowerBound",
    "epsilon_lower_bound",
]

MIN_TRIALS = 20
_MAX_CANDIDATES = 4000


def _check_cp_args(k: Any, n: Any, alpha: Any) -> tuple[np.ndarray, int, float]:
    n = check_positive_int("n", n, minimum=1)
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not (0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    k_arr = np.asarray(k)
    if k_arr.dtype.kind not in "iuf" or np.any(k_arr != np.round(k_arr)):
        raise ValueError(f"k must be an integer count (or array of counts), got {k!r}")
    if np.any(k_arr < 0) or np.any(k_arr > n):
        raise ValueError(f"k must satisfy 0 <= k <= n = {n}, got {k!r}")
    return k_arr.astype(float), n, float(alpha)


def clopper_pearson_lower(k: int | np.ndarray, n: int, alpha: float) -> float | np.ndarray:
    """One-sided Clopper–Pearson lower confidence bound on a binomial proportion.

    Parameters
    ----------
    k : int or ndarray of int
        Number of successes, ``0 ≤ k ≤ n``.
    n : int
        Number of trials, ``n ≥ 1``.
    alpha : float
        Error probability in (0, 1): ``P(p < bound) ≤ alpha``.

    Returns
    -------
    float or ndarray
        ``Beta(alpha; k, n − k + 1)`` quantile, and 0 when ``k = 0``.
    """
    k_arr, n, alpha = _check_cp_args(k, n, alpha)
    with np.errstate(invalid="ignore"):
        lo = stats.beta.ppf(alpha, k_arr, n - k_arr + 1.0)
    lo = np.where(k_arr == 0, 0.0, lo)
    return float(lo) if lo.ndim == 0 else lo


def clopper_pearson_upper(k: int | np.ndarray, n: int, alpha: float) -> float | np.ndarray:
    """One-sided Clopper–Pearson upper confidence bound on a binomial proportion.

    Parameters
    ----------
    k : int or ndarray of int
        Number of successes, ``0 ≤ k ≤ n``.
    n : int
        Number of trials, ``n ≥ 1``.
    alpha : float
        Error probability in (0, 1): ``P(p > bound) ≤ alpha``.

    Returns
    -------
    float or ndarray
        ``Beta(1 − alpha; k + 1, n − k)`` quantile, and 1 when ``k = n``.
    """
    k_arr, n, alpha = _check_cp_args(k, n, alpha)
    with np.errstate(invalid="ignore"):
        hi = stats.beta.ppf(1.0 - alpha, k_arr + 1.0, n - k_arr)
    hi = np.where(k_arr == n, 1.0, hi)
    return float(hi) if hi.ndim == 0 else hi


@dataclass(frozen=True)
class EpsilonLowerBound:
    """A Clopper–Pearson lower bound on ε(δ) from two samples of attack scores.

    Attributes
    ----------
    epsilon_lower : float
        ``max(0, ln((p_lower − δ)/p_upper))``: with probability ≥ ``confidence`` the true
        ε at ``delta`` is at least this.
    delta, confidence : float
        The δ of the bound and its joint confidence.
    region : str
        The chosen set ``S`` and order, e.g. ``"in: s >= 1.3"`` (S is the set, the named world
        is ``A``, the more likely one on ``S``).
    threshold : float
        The threshold ``c`` of ``S``.
    p_a_hat, p_b_hat : float
        Empirical ``P_A(S)`` and ``P_B(S)`` on the evaluation split.
    p_lower, p_upper : float
        Clopper–Pearson lower bound on ``P_A(S)`` and upper bound on ``P_B(S)`` (level α/2 each).
    n_a, n_b : int
        Evaluation trials of worlds A and B.
    n_selection : int
        Trials (both worlds together) used only to choose ``S``.
    """

    epsilon_lower: float
    delta: float
    confidence: float
    region: str
    threshold: float
    p_a_hat: float
    p_b_hat: float
    p_lower: float
    p_upper: float
    n_a: int
    n_b: int
    n_selection: int

    def epsilon_at(self, delta: float) -> float:
        """The lower bound at another δ from the same confidence event (valid simultaneously).

        Parameters
        ----------
        delta : float
            δ strictly inside (0, 1).

        Returns
        -------
        epsilon_lower : float
            ``max(0, ln((p_lower − δ)/p_upper))`` (``inf`` if ``p_upper`` is 0 and
            ``p_lower > δ``).

        Raises
        ------
        ValueError
            If ``delta`` is not strictly inside (0, 1).
        """
        delta = check_delta(delta)
        return _log_ratio(self.p_lower, self.p_upper, delta)

    @property
    def ceiling(self) -> float:
        """The largest bound these trial counts can give (perfect separation of the worlds):
        how far a lower bound can reach at all, whatever the attack."""
        a2 = (1.0 - self.confidence) / 2.0
        lo = float(clopper_pearson_lower(self.n_a, self.n_a, a2))
        hi = float(clopper_pearson_upper(0, self.n_b, a2))
        return _log_ratio(lo, hi, self.delta)

    def __str__(self) -> str:
        return (
            f"empirical lower bound (ε ≥ {self.epsilon_lower:.4g} at δ = {self.delta:.3g}, "
            f"{100 * self.confidence:g}% confidence) [S = {{{self.region}}}, "
            f"P̂_A(S) = {self.p_a_hat:.4g}, P̂_B(S) = {self.p_b_hat:.4g}, "
            f"n = {self.n_a}/{self.n_b} evaluation trials]"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy of every field.

        Returns
        -------
        record : dict
            The dataclass fields by name.
        """
        return dict(self.__dict__)

    def to_empirical(self, source: str | None = None) -> EmpiricalBound:
        """This bound as an :class:`~product_noise.privacy.EmpiricalBound`, the record a
        :class:`~product_noise.privacy.PrivacyReport` holds (``report.with_empirical(b)``)."""
        return EmpiricalBound.from_lower_bound(self, source)


def evaluation_ceiling(trials: int, delta: float, confidence: float) -> float:
    """The largest bound :func:`epsilon_lower_bound` can give with ``trials`` per world (its
    default half evaluates): perfect separation of the evaluation trials. 0 means no outcome
    of the audit could certify any ε > 0 (too few trials for the confidence)."""
    n = trials - min(max(int(round(0.5 * trials)), 1), trials - 1)
    a2 = (1.0 - confidence) / 2.0
    lo = float(clopper_pearson_lower(n, n, a2))
    return _log_ratio(lo, float(clopper_pearson_upper(0, n, a2)), delta)


def check_enough_trials(trials: int, delta: float, confidence: float) -> None:
    """Refuse, before any run, a trial count whose :func:`evaluation_ceiling` is 0.

    Raises
    ------
    InputError
        ``trials`` per world too few for ``confidence``.
    """
    from ..validation import InputError

    if evaluation_ceiling(trials, delta, confidence) <= 0.0:
        raise InputError(
            f"trials = {trials} per world is too few for {100 * confidence:g}% confidence: even "
            "perfectly separated worlds could not give a bound above 0; use more trials"
        )


def _log_ratio(lo: float, hi: float, delta: float) -> float:
    if lo <= delta or hi <= 0:
        return 0.0 if lo <= delta else math.inf
    return max(0.0, math.log((lo - delta) / hi))


def _check_scores(name: str, scores: Any) -> np.ndarray:
    arr = np.asarray(scores, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of scores, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if arr.size < 4:
        raise ValueError(f"{name} needs at least 4 scores, got {arr.size}")
    return arr


def _counts(sorted_scores: np.ndarray, c: np.ndarray, ge: bool) -> np.ndarray:
    if ge:
        return sorted_scores.size - np.searchsorted(sorted_scores, c, side="left")
    return np.searchsorted(sorted_scores, c, side="right")


def _criterion(ka, na, kb, nb, alpha2: float, delta: float) -> np.ndarray:
    lo = np.asarray(clopper_pearson_lower(ka, na, alpha2))
    hi = np.asarray(clopper_pearson_upper(kb, nb, alpha2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lo > delta, np.log(np.maximum(lo - delta, 1e-300) / hi), -np.inf)


@dataclass(frozen=True)
class ScoreSplit:
    """Two worlds' scores split for an audit: ``sel`` chooses the test, ``ev`` evaluates it.

    Attributes
    ----------
    sel, ev : dict of str to numpy.ndarray
        ``{"in": ..., "out": ...}``, each sorted ascending.
    candidates : numpy.ndarray
        The distinct selection scores (at most ``_MAX_CANDIDATES`` evenly spaced order
        statistics of them): the thresholds tried.
    n_selection : int
        Trials used to choose the test.
    """

    sel: dict[str, np.ndarray]
    ev: dict[str, np.ndarray]
    candidates: np.ndarray
    n_selection: int


def split_scores(scores_in: Any, scores_out: Any, selection_fraction: float) -> ScoreSplit:
    """The first ``selection_fraction`` of each world's scores selects, the rest evaluates (at
    least one of each per world); shared by :func:`epsilon_lower_bound` and the μ-GDP bound.

    Raises
    ------
    ValueError
        On a ``selection_fraction`` outside (0, 1), NaN scores or fewer than 4 per world.
    """
    if isinstance(selection_fraction, bool) or not 0.0 < float(selection_fraction) < 1.0:
        raise ValueError(
            f"selection_fraction must lie strictly between 0 and 1, got {selection_fraction!r}"
        )
    sel, ev = {}, {}
    for name, scores in (("in", scores_in), ("out", scores_out)):
        x = _check_scores(f"scores_{name}", scores)
        m = min(max(int(round(selection_fraction * x.size)), 1), x.size - 1)
        sel[name], ev[name] = np.sort(x[:m]), np.sort(x[m:])
    cand = np.unique(np.concatenate([sel["in"], sel["out"]]))
    if cand.size > _MAX_CANDIDATES:
        # evenly spaced order statistics (not interpolated quantiles: ±inf stay, no NaN)
        cand = cand[np.unique(np.linspace(0, cand.size - 1, _MAX_CANDIDATES).round().astype(int))]
    return ScoreSplit(sel, ev, cand, sel["in"].size + sel["out"].size)


def epsilon_lower_bound(
    scores_in: Sequence[float] | np.ndarray,
    scores_out: Sequence[float] | np.ndarray,
    *,
    delta: float,
    confidence: float = 0.95,
    selection_fraction: float = 0.5,
) -> EpsilonLowerBound:
    """Lower bound on ε(δ) from attack scores of runs with (``in``) and without (``out``) canary.

    The first ``selection_fraction`` of each sample chooses a threshold set ``S = {s ≥ c}`` or
    ``{s ≤ c}`` and the order of the two worlds; the rest evaluates it with one-sided
    Clopper–Pearson bounds at level ``(1 − confidence)/2`` each (module docstring). Scores must
    come from independent trials, in an order unrelated to their values.

    Parameters
    ----------
    scores_in, scores_out : array-like of float
        One score per trial (any orientation; ±inf allowed, NaN not). At least 4 each.
    delta : float
        δ in (0, 1) of the bound.
    confidence : float, default 0.95
        Joint confidence in (0, 1).
    selection_fraction : float, default 0.5
        Fraction of each sample used to choose ``S``, in (0, 1).

    Returns
    -------
    EpsilonLowerBound

    Raises
    ------
    ValueError
        On δ or confidence outside (0, 1), a bad ``selection_fraction``, NaN scores or fewer
        than 4 scores per world (at least one per split).
    """
    delta = check_delta(delta)
    confidence = check_confidence(confidence)
    split = split_scores(scores_in, scores_out, selection_fraction)
    sel_in, sel_out = split.sel["in"], split.sel["out"]
    ev_in, ev_out = split.ev["in"], split.ev["out"]
    m_in, m_out = sel_in.size, sel_out.size
    alpha2 = (1.0 - confidence) / 2.0
    cand = split.candidates
    best = (-np.inf, float(cand[0]), True, "in")
    for ge in (True, False):
        k_in, k_out = _counts(sel_in, cand, ge), _counts(sel_out, cand, ge)
        for a in ("in", "out"):
            if a == "in":
                crit = _criterion(k_in, m_in, k_out, m_out, alpha2, delta)
            else:
                crit = _criterion(k_out, m_out, k_in, m_in, alpha2, delta)
            i = int(np.argmax(crit))
            if crit[i] > best[0]:
                best = (float(crit[i]), float(cand[i]), ge, a)
    _, c, ge, a = best
    ka_sorted, kb_sorted = (ev_in, ev_out) if a == "in" else (ev_out, ev_in)
    na, nb = ka_sorted.size, kb_sorted.size
    ka = int(_counts(ka_sorted, np.array([c]), ge)[0])
    kb = int(_counts(kb_sorted, np.array([c]), ge)[0])
    lo = float(clopper_pearson_lower(ka, na, alpha2))
    hi = float(clopper_pearson_upper(kb, nb, alpha2))
    return EpsilonLowerBound(
        epsilon_lower=_log_ratio(lo, hi, delta),
        delta=delta,
        confidence=confidence,
        region=f"{a}: s {'>=' if ge else '<='} {c:.6g}",
        threshold=c,
        p_a_hat=ka / na,
        p_b_hat=kb / nb,
        p_lower=lo,
        p_upper=hi,
        n_a=na,
        n_b=nb,
        n_selection=split.n_selection,
    )
