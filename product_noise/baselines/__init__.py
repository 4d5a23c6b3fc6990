"""Baselines from the project's other source documents, reproduced faithfully, accounted honestly.

Each baseline reports its privacy twice, as everything in this package does: the figure its
source *claims* (label ``claimed``) and the figure computed for what the code actually does
(label ``verified``). Modules:

``adlm``          Adaptive Laplace Mechanism (Phan et al., ICDM 2017)
``input_noise``   local-DP Gaussian input perturbation (normalize, add noise once per record)
``dpgen``         DP image generation with error-feedback DP-SGD (Ma & Zhang, 2026)
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name → submodule (imported on first use: the modules pull in torch and scikit-learn)
_EXPORTS = {
    "AdLMClassifier": "adlm",
    "GaussianInputPerturbation": "input_noise",
    "DPGenerator": "dpgen",
}
__all__ = [*_EXPORTS, "adlm", "input_noise", "dpgen"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in ("adlm", "input_noise", "dpgen"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
