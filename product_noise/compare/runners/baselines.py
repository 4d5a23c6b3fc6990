"""The seed baselines in a comparison: AdLM, local-DP input noise and the DP image generator.

Each baseline has an adapter module in :mod:`product_noise.compare.runners` exposing
``run_for_compare(X_train,
y_train, X_test, y_test, *, image_shape, epsilon, delta, target, seed)`` returning a dictionary
(accuracy, ``claimed`` and ``verified`` :class:`~product_noise.privacy.PrivacyFigure`, noise
scale, steps, notes). This module maps the comparison's mechanism names onto those functions and
turns the dictionaries into :class:`~product_noise.compare.runners.Outcome` rows.

Mechanism names
---------------
``adlm-paper``   AdLM as its code runs it; the *claimed* ε₁+ε₂+ε₃ hits the target (verified: inf)
``adlm``         AdLM's honest variant, calibrated so its *verified* ε hits the target
``ldp-paper``    the blog's local-DP input noise (classic formula, Δ = 1): *claimed* ε on target
``ldp``          local-DP input noise with Δ = √2, analytic calibration, labels by randomized
                 response: *verified* ε on target
``dpgen-paper``  DP generator (error-feedback DP-SGD) at the lineage's per-sample accounting
                 (*claimed* ε on target)
``dpgen``        DP generator calibrated on the joint per-step accountant (*verified* on target)
"""

from __future__ import annotations

import importlib
import math
import time
from typing import Any

from ..config import IMAGE_FAMILIES, CompareConfig
from ..data import ClassificationData

__all__ = ["MODULES", "run_baseline"]

#: family → module implementing ``run_for_compare``
MODULES: dict[str, str] = {
    "adlm": "product_noise.compare.runners.adlm",
    "ldp": "product_noise.compare.runners.input_noise",
    "dpgen": "product_noise.compare.runners.dpgen",
}


def run_baseline(
    cfg: CompareConfig, data: ClassificationData, mechanism: str, epsilon: float, seed: int
) -> Any:
    """Run one baseline at one target ε and seed; return an ``Outcome``."""
    from .common import Outcome

    fam, _, variant = mechanism.partition("-")
    if fam not in MODULES or variant not in ("", "paper"):
        raise ValueError(f"not a baseline mechanism: {mechanism!r}")
    target = "claimed" if variant == "paper" else "verified"
    if fam in IMAGE_FAMILIES and data.image_shape is None:
        raise ValueError(f"{mechanism} needs image data; dataset {data.name!r} has no image shape")
    module = importlib.import_module(MODULES[fam])
    length: dict[str, int] = {}
    if fam == "dpgen":
        if cfg.dpgen_steps is not None:
            length["steps"] = cfg.dpgen_steps
    elif cfg.baseline_epochs is not None:
        length["epochs"] = cfg.baseline_epochs
    t0 = time.perf_counter()
    res = module.run_for_compare(
        data.X_train,
        data.y_train,
        data.X_test,
        data.y_test,
        image_shape=data.image_shape,
        epsilon=float(epsilon),
        delta=float(cfg.delta),
        target=target,
        seed=int(seed),
        **length,
    )
    out = Outcome(accuracy=float(res["accuracy"]))
    out.claimed = res.get("claimed")
    out.verified = res.get("verified")
    out.noise_scale = float(res.get("noise_scale", math.nan))
    out.steps = int(res.get("steps", 0))
    out.dim = int(data.n_features)
    out.notes = [str(n) for n in res.get("notes", [])]
    out.train_seconds = time.perf_counter() - t0
    return out
