"""Noise mechanisms with exact (verified) privacy and, where a paper states one, its claim.

=====================  ====================================================================
name                   mechanism
=====================  ====================================================================
``gaussian``           :class:`Gaussian` calibrated analytically (Balle & Wang 2018)
``classic_gaussian``   :class:`Gaussian` with the classic σ = Δ√(2 ln(1.25/δ))/ε (ε < 1 only)
``product``            :class:`ProductNoise` (the paper's sampler, exact privacy)
``l2``                 :class:`L2Mechanism` (Joseph et al. 2025)
=====================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..privacy import CLAIMED
from ..validation import InputError
from .base import MIN_DELTA, Mechanism, ScaledMechanism, SphericalMechanism
from .custom import MATCHED_TO_GAUSSIAN, ProfileMechanism, RadialMechanism, UnverifiedMechanism
from .gaussian import (
    Gaussian,
    analytic_gaussian_sigma,
    classic_gaussian_sigma,
    gaussian_delta,
)
from .l2 import GammaNorm, L2Mechanism
from .product import ProductNoise, claimed_delta, optimal_q, paper_t, solve_k
from .registry import (
    ENTRY_POINT_GROUP,
    REGISTRY,
    MechanismSpec,
    get_mechanism,
    import_plugins,
    mechanism_names,
    mechanism_specs,
    register_mechanism,
    unregister_mechanism,
)
from .spherical import SGG, uniform_direction

__all__ = [
    "MIN_DELTA",
    "Mechanism",
    "ScaledMechanism",
    "SphericalMechanism",
    "RadialMechanism",
    "ProfileMechanism",
    "UnverifiedMechanism",
    "MATCHED_TO_GAUSSIAN",
    "Gaussian",
    "ProductNoise",
    "L2Mechanism",
    "GammaNorm",
    "SGG",
    "MECHANISMS",
    "MechanismSpec",
    "register_mechanism",
    "unregister_mechanism",
    "import_plugins",
    "REGISTRY",
    "ENTRY_POINT_GROUP",
    "get_mechanism",
    "mechanism_names",
    "mechanism_specs",
    "calibrate",
    "from_config",
    "gaussian_delta",
    "analytic_gaussian_sigma",
    "classic_gaussian_sigma",
    "paper_t",
    "claimed_delta",
    "solve_k",
    "optimal_q",
    "uniform_direction",
]


class _Families(Mapping[str, type[ScaledMechanism]]):
    """Registry name → class, read from :data:`~.registry.REGISTRY` at each use (live).

    The names calibrated by their class (verified, or a user's unverified sampler); the claimed
    calibrations (``classic_gaussian``, ``product_paper``) are :func:`calibrate` options.
    """

    def _specs(self) -> dict[str, MechanismSpec]:
        return {s.name: s for s in mechanism_specs("table") if s.calibration != CLAIMED}

    def __getitem__(self, name: str) -> type[ScaledMechanism]:
        spec = self._specs().get(name)
        if spec is None:
            raise KeyError(name)
        return spec.load()  # type: ignore[return-value]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs())

    def __len__(self) -> int:
        return len(self._specs())

    def __repr__(self) -> str:
        return f"MECHANISMS({', '.join(self)})"


#: registry name → class whose ``calibrate`` gives the least-noise member for a target; a live
#: view, so mechanisms registered later (:func:`register_mechanism`) appear in it
MECHANISMS: Mapping[str, type[ScaledMechanism]] = _Families()


def _all_names() -> tuple[str, ...]:
    """Every name :func:`calibrate` accepts: the class-calibrated ones, then the claimed ones."""
    return (*MECHANISMS, *mechanism_names("table", calibration=CLAIMED))


def calibrate(
    name: str,
    epsilon: float,
    delta: float,
    dim: int,
    sensitivity: float = 1.0,
    **kwargs: Any,
) -> Mechanism:
    """Build a mechanism by registry name for a target (ε, δ).

    ``gaussian``, ``product`` and ``l2`` are calibrated on their *verified* profile.
    ``classic_gaussian`` uses the classic formula (claimed; warns outside ε < 1) and
    ``product_paper`` the paper's formula (``k=`` or ``target_delta=`` defaults to ``delta``):
    both report their claim via :meth:`Mechanism.claimed` and their truth via ``delta``.
    A user-registered name (:func:`register_mechanism`) is calibrated by its class: on its
    exact or proven profile, or — for a sampler without one — on the user's claim (labelled
    claimed), else :class:`~product_noise.validation.UnverifiedError`.
    """
    if name == "classic_gaussian":
        return Gaussian.classic(epsilon, delta, dim, sensitivity)
    if name == "product_paper":
        if "k" not in kwargs and "target_delta" not in kwargs:
            kwargs["target_delta"] = delta
        return ProductNoise.from_paper(dim, epsilon, sensitivity=sensitivity, **kwargs)
    if name in REGISTRY:
        name = get_mechanism(name).name  # an alias (e.g. the dash spelling) → its name
    if name not in MECHANISMS:
        raise InputError(f"unknown mechanism {name!r}; choose one of {', '.join(_all_names())}")
    if kwargs:
        raise TypeError(f"unexpected arguments for {name!r}: {sorted(kwargs)}")
    return MECHANISMS[name].calibrate(epsilon, delta, dim, sensitivity)


def from_config(cfg: dict[str, Any]) -> Mechanism:
    """Rebuild a mechanism from :meth:`Mechanism.config` output (e.g. from a checkpoint)."""
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in MECHANISMS:
        raise ValueError(f"unknown mechanism {name!r} in config")
    cls = MECHANISMS[name]
    paper = cfg.pop("paper", None)
    mech = cls(cfg.pop("dim"), cfg.pop(cls.scale_name), cfg.pop("sensitivity", 1.0))
    if paper is not None and isinstance(mech, ProductNoise):
        mech.paper = dict(paper)
    if cfg:
        raise ValueError(f"unexpected keys in mechanism config: {sorted(cfg)}")
    return mech
