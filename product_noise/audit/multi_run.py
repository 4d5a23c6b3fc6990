"""A multi-run audit of a user's own training loop: train it many times with and without one
canary, score the canary each time, and bound ε from the two samples of scores.

::

    def train_once(present: bool, seed: int) -> float:
        ...   # build the engine and model, add the canary when ``present``, train as usual
        return score                     # e.g. minus the canary's loss on the final model

    audit = audit_multi_run(train_once, trials=1000, delta=1e-5, gaussian=True)
    print(audit.report(engine.get_privacy_report(1e-5)))   # the engine of one such run

The loop, the canary, the threat model and the score are the user's: the adversary sees what
``train_once`` reads to compute its score (all iterates, the final model, ...). What this
module adds is the statistics, with the validity argument of
:func:`~product_noise.audit.bounds.epsilon_lower_bound` (Jagielski, Ullman, Oprea 2020; Nasr,
Song, Thakurta, Papernot, Carlini 2021): the runs must be independent (a fresh seed each, given
here), their order unrelated to their scores; the first half of each world's runs chooses the
test and the second half evaluates it. ``gaussian=True`` adds the μ-GDP bound of Nasr et al.
2023 (:mod:`~product_noise.audit.gdp_bound`), valid as a bound on ε only if the trained
mechanism's trade-off curve is exactly Gaussian (full-batch Gaussian noise).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..privacy import EmpiricalBound, PrivacyReport
from ..validation import InputError, check_confidence, check_delta, check_positive_int
from .bounds import MIN_TRIALS, EpsilonLowerBound, check_enough_trials, epsilon_lower_bound
from .gdp_bound import GDPLowerBound, gdp_lower_bound
from .result import score_estimate

__all__ = ["MultiRunAudit", "audit_multi_run"]


@dataclass(frozen=True)
class MultiRunAudit:
    """What :func:`audit_multi_run` measured.

    Attributes
    ----------
    bound : EpsilonLowerBound
        The (ε, δ) empirical lower bound (any mechanism).
    gdp_bound : GDPLowerBound or None
        With ``gaussian=True``: the μ-GDP bound (Gaussian trade-off assumed).
    estimate : GDPEstimate or None
        The Gaussian-fit ε estimate of the scores (never a bound).
    scores_in, scores_out : numpy.ndarray, shape (trials,)
        The canary's score in each run with and without it.
    seconds : float
        Wall time of the runs.
    """

    bound: EpsilonLowerBound
    gdp_bound: GDPLowerBound | None
    estimate: Any
    scores_in: np.ndarray
    scores_out: np.ndarray
    seconds: float

    def report(self, base: PrivacyReport) -> PrivacyReport:
        """``base`` (the privacy report of one run, e.g. its engine's) with these bounds as
        empirical figures and the estimate as an estimate."""
        bounds = [self.bound] + ([] if self.gdp_bound is None else [self.gdp_bound])
        out = base.with_empirical(*(EmpiricalBound.from_lower_bound(b) for b in bounds))
        if self.estimate is None:
            return out
        return replace(
            out,
            estimates=out.estimates + (self.estimate.to_figure(),),
            what=f"{out.what}; audited over {self.scores_in.size} runs per world",
        )

    def __str__(self) -> str:
        parts = [str(self.bound)]
        if self.gdp_bound is not None:
            parts.append(str(self.gdp_bound))
        if self.estimate is not None:
            parts.append(str(self.estimate))
        return "\n".join(parts)


def audit_multi_run(
    train_once: Callable[[bool, int], float],
    trials: int,
    *,
    delta: float = 1e-5,
    confidence: float = 0.95,
    gaussian: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> MultiRunAudit:
    """Run ``train_once(present, seed)`` ``trials`` times per world and bound ε at ``delta``.

    Parameters
    ----------
    train_once : callable
        ``train_once(present: bool, seed: int) -> float``: one independent training run with
        the canary (``present``) or without it, seeded by ``seed``; returns the canary's score
        (higher or lower when present: either orientation is found by the audit).
    trials : int
        Runs per world, at least 20 and enough for ``confidence`` (checked before any run).
    delta : float, default 1e-5
    confidence : float, default 0.95
    gaussian : bool, default False
        Also the μ-GDP bound (only meaningful for an exactly Gaussian trade-off curve).
    seed : int, default 0
        Run ``i`` of the world with the canary gets seed ``seed + 2 i``, without it
        ``seed + 2 i + 1``.
    progress : bool, default False
        A tqdm bar over the runs.

    Returns
    -------
    MultiRunAudit

    Raises
    ------
    InputError
        Too few trials for the confidence, bad δ or confidence (before any run), or a score
        that is not a finite number.
    """
    delta, confidence = check_delta(delta), check_confidence(confidence)
    trials = check_positive_int("trials", trials, minimum=MIN_TRIALS)
    check_enough_trials(trials, delta, confidence)
    t0 = time.perf_counter()
    scores = {True: np.empty(trials), False: np.empty(trials)}
    bar = tqdm(total=2 * trials, desc="audit runs", disable=not progress)
    for i in range(trials):  # interleaved: a drift over time hits both worlds alike
        for present in (True, False):
            s = train_once(present, seed + 2 * i + (0 if present else 1))
            try:
                value = np.asarray(s, dtype=float) if not isinstance(s, bool) else np.array([])
            except (TypeError, ValueError):
                value = np.array([])
            if value.ndim != 0 or not np.isfinite(value):
                raise InputError(f"train_once must return one finite score, got {s!r}")
            scores[present][i] = float(value)
            bar.update(1)
    bar.close()
    s_in, s_out = scores[True], scores[False]
    return MultiRunAudit(
        bound=epsilon_lower_bound(s_in, s_out, delta=delta, confidence=confidence),
        gdp_bound=gdp_lower_bound(s_in, s_out, delta=delta, confidence=confidence)
        if gaussian
        else None,
        estimate=score_estimate(s_in, s_out, delta),
        scores_in=s_in,
        scores_out=s_out,
        seconds=time.perf_counter() - t0,
    )
