"""Canary audit of a DPMix release (black box, outlier canary, replace-one neighbours).

See :mod:`product_noise.audit.training` for the threat model and the validity argument.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..privacy import PrivacyWarning
from ..validation import (
    InputError,
    check_positive,
)
from .bounds import epsilon_lower_bound
from .result import TrainingAuditResult, digits_sample, score_estimate


def audit_dpmix(
    *,
    trials: int,
    releases: int,
    epsilon: float,
    sigma: float | None,
    delta: float,
    confidence: float,
    n_records: int,
    mix_size: int,
    seed: int,
    progress: bool,
) -> TrainingAuditResult:
    from dpmix import DPMix
    from dpmix.bounds import PixelBound

    if mix_size > n_records:
        raise InputError(f"dpmix_l={mix_size} exceeds n_records={n_records}")
    X, y = digits_sample(n_records - 1, seed)
    d = X.shape[1]
    sigma, how = _pixel_noise(sigma, epsilon, delta, mix_size, releases, n_records, d)
    Y = np.eye(10)[y]
    worlds = {
        False: (np.vstack([X, np.zeros(d)]), np.vstack([Y, np.eye(10)[0]])),
        True: (np.vstack([X, np.ones(d)]), np.vstack([Y, np.eye(10)[1]])),
    }
    u = np.ones(d) / math.sqrt(d)
    mix = DPMix(mix_size, releases, sigma_x=sigma, bound=PixelBound(), progress=False)
    scores = _release_scores(mix, worlds, u, trials=trials, seed=seed, progress=progress)
    verified = mix.privacy(delta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        claimed = mix.claimed_privacy(delta)
    bound = epsilon_lower_bound(scores[True], scores[False], delta=delta, confidence=confidence)
    return TrainingAuditResult(
        mechanism="dpmix",
        bound=bound,
        verified=verified,
        claimed=claimed,
        trials=trials,
        steps=releases,
        threat_model="black box: the T released mixes; replace-one (all-zeros record -> "
        "all-ones outlier canary at the full diameter)",
        statistic="max_t <x̃_t, 1/√d>",
        settings={
            "threat_model": "release",
            "noise_multiplier": float(sigma),
            "calibration": how,
            "dim": d,
            "n_records": n_records,
            "l": mix_size,
            "releases": releases,
            "seed": seed,
        },
        estimate=score_estimate(scores[True], scores[False], delta),
    )


def _pixel_noise(
    sigma: float | None,
    epsilon: float,
    delta: float,
    mix_size: int,
    releases: int,
    n_records: int,
    d: int,
) -> tuple[float, str]:
    """DPMix' pixel noise ``sigma_x`` (given, or calibrated to the verified ε) and how."""
    from dpmix.accounting import calibrate_noise_multiplier
    from dpmix.bounds import ONE_HOT_DIAMETER

    dx = math.sqrt(d)
    if sigma is None:
        s_eff = calibrate_noise_multiplier(epsilon, delta, mix_size, releases, n_records)
        sigma = s_eff * math.hypot(dx, ONE_HOT_DIAMETER) / mix_size
        return sigma, f"calibrated: verified ε = {epsilon:g} at δ = {delta:g}"
    return check_positive("noise_multiplier", sigma), "given"


def _release_scores(
    mix: Any,
    worlds: dict[bool, tuple[np.ndarray, np.ndarray]],
    u: np.ndarray,
    *,
    trials: int,
    seed: int,
    progress: bool,
) -> dict[bool, np.ndarray]:
    """The attack score ``max_t <x̃_t, u>`` of ``trials`` releases in each world (canary absent,
    present), each world with its own seed stream."""
    ss = np.random.SeedSequence(seed).spawn(2)
    pbar = None
    if progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=2 * trials, unit="release", desc="audit-training dpmix")
    scores = {}
    try:
        for (present, (Xw, Yw)), s in zip(worlds.items(), ss):
            trial_seeds = s.generate_state(trials, dtype=np.uint64)
            out = np.empty(trials)
            for i in range(trials):
                xt, _ = mix.publish(Xw, Yw, seed=int(trial_seeds[i]))
                out[i] = float(np.max(np.asarray(xt) @ u))
                if pbar is not None:
                    pbar.update(1)
            scores[present] = out
    finally:
        if pbar is not None:
            pbar.close()
    return scores
