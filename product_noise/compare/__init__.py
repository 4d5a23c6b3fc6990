"""The comparison harness behind ``product-noise compare``.

DP-SGD (Gaussian, product noise at the paper's calibration and honestly calibrated, ℓ2), DPMix
and convex ERM (output / objective perturbation, AMP with Gaussian, Gamma-norm and product noise)
at a grid of target ε, repeated over seeds, with every privacy figure labelled ``claimed`` or
``verified`` (a user's sampler-only noise: ``unverified``, never verified). See
:mod:`product_noise.compare.config` for the mechanism names, :func:`run_compare` for the
outputs and :func:`run_comparison` (with :class:`DPSGDTask`, :class:`ERMTask`) to compare
mechanisms, built-in or registered, on a user's own data and model.

Attributes are imported on first use, so that ``product-noise --help`` (which imports
:mod:`product_noise.compare.cli`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CompareConfig",
    "ConfigError",
    "CompareResult",
    "RunSpec",
    "default_config",
    "quick_config",
    "load_toml",
    "plan_runs",
    "run_compare",
    "run_comparison",
    "DPSGDTask",
    "ERMTask",
]

_WHERE = {
    "CompareConfig": "config",
    "ConfigError": "config",
    "default_config": "config",
    "quick_config": "config",
    "load_toml": "config",
    "CompareResult": "harness",
    "RunSpec": "harness",
    "plan_runs": "harness",
    "run_compare": "harness",
    "run_comparison": "api",
    "DPSGDTask": "tasks",
    "ERMTask": "tasks",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
