"""Labelled privacy figures.

The package never prints a bare ε. Every figure carries a label:

``claimed``
    what a paper states, computed exactly as the paper (or its code) computes it. Not a guarantee
    unless the paper's theorem is correct for the noise actually added.
``verified``
    computed from the exact privacy profile of the noise actually added (and composed with a
    numerical accountant); an upper bound on the true privacy loss up to stated numerical error.
``estimate``
    an approximation that is not a bound in either direction (e.g. the Gaussian-DP central limit
    approximation of Opacus' ``gdp`` accountant). Shown for comparison only; never verified.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = ["PrivacyFigure", "Label", "CLAIMED", "VERIFIED", "ESTIMATE", "PrivacyWarning"]

Label = Literal["claimed", "verified", "estimate"]
CLAIMED: Label = "claimed"
VERIFIED: Label = "verified"
ESTIMATE: Label = "estimate"
_LABELS = (CLAIMED, VERIFIED, ESTIMATE)


class PrivacyWarning(UserWarning):
    """A privacy statement is weaker than it looks (e.g. a claimed bound known to be false)."""


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf"
    return f"{x:.4g}"


@dataclass(frozen=True)
class PrivacyFigure:
    """An (ε, δ) pair with its provenance.

    Attributes
    ----------
    epsilon, delta:
        The privacy parameters. ``epsilon`` may be ``inf`` (no finite ε at this δ).
    label:
        ``"claimed"``, ``"verified"`` or ``"estimate"`` (see module docstring).
    source:
        One line saying how the figure was obtained.
    """

    epsilon: float
    delta: float
    label: Label
    source: str
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.label not in _LABELS:
            raise ValueError(f"label must be one of {_LABELS}, got {self.label!r}")

    def __str__(self) -> str:
        return f"{self.label} (ε = {_fmt(self.epsilon)}, δ = {self.delta:.3g}) [{self.source}]"

    def to_dict(self) -> dict:
        return asdict(self)
