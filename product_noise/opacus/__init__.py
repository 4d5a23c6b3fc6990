"""Opacus integration: a drop-in ``PrivacyEngine`` with joint product / ℓ2 / user-registered
noise and the claimed, verified and unverified accountants (registered with Opacus' accountant
registry on import)."""

from .accountants import (
    JointNoiseAccountant,
    NoiseStep,
    PaperClaimedAccountant,
    ProductVerifiedAccountant,
    SphericalStep,
    SphericalVerifiedAccountant,
    UnverifiedNoiseAccountant,
    VerifiedNoiseAccountant,
    register_accountants,
)
from .calibration import (
    calibrate_paper_epsilon0,
    calibrate_verified_noise_multiplier,
    gaussian_noise_multiplier,
)
from .engine import (
    NOISE_CHOICES,
    SENSITIVITY_CONVENTIONS,
    PrivacyEngine,
)
from .families import noise_choices, noise_family
from .optimizers import OPTIMIZER_TABLE, REJECTED_OPTIMIZERS, JointNoiseMixin, joint_optimizer_class

__all__ = [
    "PrivacyEngine",
    "NOISE_CHOICES",
    "noise_choices",
    "noise_family",
    "SENSITIVITY_CONVENTIONS",
    "NoiseStep",
    "SphericalStep",
    "JointNoiseAccountant",
    "VerifiedNoiseAccountant",
    "UnverifiedNoiseAccountant",
    "PaperClaimedAccountant",
    "ProductVerifiedAccountant",
    "SphericalVerifiedAccountant",
    "register_accountants",
    "calibrate_paper_epsilon0",
    "calibrate_verified_noise_multiplier",
    "gaussian_noise_multiplier",
    "OPTIMIZER_TABLE",
    "REJECTED_OPTIMIZERS",
    "JointNoiseMixin",
    "joint_optimizer_class",
]
