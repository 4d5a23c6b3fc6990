"""Opacus integration: a drop-in ``PrivacyEngine`` with joint product / ℓ2 noise and the
claimed and verified accountants (registered with Opacus' accountant registry on import)."""

from .accountants import (
    PaperClaimedAccountant,
    ProductVerifiedAccountant,
    SphericalVerifiedAccountant,
    register_accountants,
)
from .calibration import calibrate_paper_epsilon0, calibrate_verified_noise_multiplier
from .engine import (
    NOISE_CHOICES,
    SENSITIVITY_CONVENTIONS,
    PrivacyEngine,
)
from .optimizers import OPTIMIZER_TABLE, REJECTED_OPTIMIZERS, JointNoiseMixin, joint_optimizer_class

__all__ = [
    "PrivacyEngine",
    "NOISE_CHOICES",
    "SENSITIVITY_CONVENTIONS",
    "PaperClaimedAccountant",
    "ProductVerifiedAccountant",
    "SphericalVerifiedAccountant",
    "register_accountants",
    "calibrate_paper_epsilon0",
    "calibrate_verified_noise_multiplier",
    "OPTIMIZER_TABLE",
    "REJECTED_OPTIMIZERS",
    "JointNoiseMixin",
    "joint_optimizer_class",
]
