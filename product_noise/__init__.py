"""product-noise: product noise for DP-SGD and convex ERM, reproduced faithfully and accounted
honestly.

Every privacy figure the package reports is labelled **claimed** (a paper's formula, reproduced
exactly) or **verified** (computed from the exact privacy profile of the noise actually added and
composed with a numerical accountant). See :mod:`product_noise.privacy`. A user's own mechanism
(:func:`register_mechanism`) with a sampler but no proof is reported **unverified**.

Opacus users change one import::

    from product_noise import PrivacyEngine
"""

from __future__ import annotations

from typing import Any

from . import _compat
from .mechanisms import (
    Gaussian,
    L2Mechanism,
    Mechanism,
    ProductNoise,
    calibrate,
    claimed_delta,
    paper_t,
    register_mechanism,
    solve_k,
    unregister_mechanism,
)
from .privacy import EmpiricalBound, PrivacyFigure, PrivacyReport, PrivacyWarning

__version__ = "0.1.0"

_compat.install()

__all__ = [
    "__version__",
    "Mechanism",
    "Gaussian",
    "ProductNoise",
    "L2Mechanism",
    "calibrate",
    "claimed_delta",
    "paper_t",
    "solve_k",
    "register_mechanism",
    "unregister_mechanism",
    "PrivacyFigure",
    "PrivacyReport",
    "EmpiricalBound",
    "PrivacyWarning",
    "PrivacyEngine",
]


def __getattr__(name: str) -> Any:
    # torch/opacus are imported only when the engine is asked for (keeps the CLI fast)
    if name == "PrivacyEngine":
        from .opacus import PrivacyEngine

        return PrivacyEngine
    raise AttributeError(f"module 'product_noise' has no attribute {name!r}")
