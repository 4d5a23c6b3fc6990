"""The DP-SGD noise families, read from the mechanism registry at each use.

A mechanism registered after import (:func:`product_noise.register_mechanism`, a plugin) is a
DP-SGD noise as soon as it is registered with the ``dpsgd`` consumer: the engine, its
accountants, its checkpoints and the training loop resolve names here, never from a list fixed
at import time. The claimed calibrations (``product_paper``) are not noise families: the
engine reaches the paper's calibration through ``noise="product"`` with ``epsilon0=``.
"""

from __future__ import annotations

from typing import Any

from ..mechanisms import ScaledMechanism
from ..mechanisms.registry import REGISTRY, MechanismSpec, get_mechanism, mechanism_specs
from ..privacy import CLAIMED, VERIFIED
from ..validation import InputError

__all__ = ["noise_choices", "builtin_noise_choices", "noise_family", "family_name"]

#: the noise that goes through Opacus' own (per-tensor Gaussian) path, unchanged
GAUSSIAN = "gaussian"


def _dpsgd_specs() -> tuple[MechanismSpec, ...]:
    return tuple(s for s in mechanism_specs("dpsgd") if s.calibration != CLAIMED)


def noise_choices() -> tuple[str, ...]:
    """The noise names the DP-SGD engine accepts now, in registry order.

    Returns
    -------
    names : tuple of str
        Every ``dpsgd`` mechanism calibrated by its class: the verified built-ins and every
        registered user mechanism (verified or unverified); aliases resolve too.
    """
    return tuple(s.name for s in _dpsgd_specs())


def builtin_noise_choices() -> tuple[str, ...]:
    """The package's own verified DP-SGD noises (``gaussian``, ``product``, ``l2``).

    Returns
    -------
    names : tuple of str
        Built-in names only (what :data:`product_noise.opacus.NOISE_CHOICES` holds).
    """
    return tuple(s.name for s in _dpsgd_specs() if s.builtin and s.calibration == VERIFIED)


def _unknown(why: str, hint: str = "") -> InputError:
    return InputError(f"{why}; choose one of {', '.join(noise_choices())}{hint}")


#: how a user makes a name of their own valid
_REGISTER_HINT = (
    " (a mechanism of your own: register it first with product_noise.register_mechanism or a "
    "plugin)"
)


def noise_family(name: str) -> type[ScaledMechanism]:
    """The mechanism class of the DP-SGD noise ``name`` (a registry name or alias).

    Parameters
    ----------
    name : str
        A registered name or alias with the ``dpsgd`` consumer.

    Returns
    -------
    cls : type of ScaledMechanism
        The registered class (noise ``noise_multiplier × C`` is ``cls(M, scale, C)``).

    Raises
    ------
    InputError
        If ``name`` is not registered (register it first), is not offered to DP-SGD, or is a
        claimed calibration; the message lists the valid names.
    """
    if not isinstance(name, str) or name not in REGISTRY:
        raise _unknown(f"unknown noise {name!r}", _REGISTER_HINT)
    spec = get_mechanism(name)
    if "dpsgd" not in spec.consumers or spec.calibration == CLAIMED:
        raise _unknown(f"noise {name!r} is not a DP-SGD noise family")
    cls = spec.load()
    if not (isinstance(cls, type) and issubclass(cls, ScaledMechanism)):
        raise InputError(
            f"noise {name!r} is registered with {cls!r}, not a ScaledMechanism subclass"
        )
    return cls


def _registers(registered: type, cls: type) -> bool:
    """Whether ``registered`` is ``cls`` or the renamed subclass that
    ``register_mechanism(name, factory=cls)`` makes of it under another name."""
    return registered is cls or (
        registered.__bases__ == (cls,) and registered.__name__ == cls.__name__
    )


def family_name(noise: Any) -> str:
    """The registry name of a DP-SGD noise given as a name, an alias or a class.

    Parameters
    ----------
    noise : str or type of ScaledMechanism
        A registered name or alias, or a class registered for DP-SGD.

    Returns
    -------
    name : str
        The canonical registry name (what accountants and checkpoints record).

    Raises
    ------
    InputError
        An unknown name, a class that is not registered (the accountant and checkpoints refer
        to mechanisms by name: register it first), or anything else.
    """
    if isinstance(noise, str):
        noise_family(noise)
        return get_mechanism(noise).name
    if isinstance(noise, type) and issubclass(noise, ScaledMechanism):
        owners = [s for s in _dpsgd_specs() if _registers(s.load(), noise)]
        owners.sort(key=lambda s: (s.load() is not noise, s.name != noise.name))
        if not owners:
            raise _unknown(
                f"noise class {noise.__name__} is not registered for DP-SGD (accountants and "
                "checkpoints refer to noise by name): register it first with "
                f"register_mechanism({noise.name!r}, factory={noise.__name__})",
            )
        return owners[0].name
    raise _unknown(
        f"noise must be a registered name, a ScaledMechanism subclass or instance, got "
        f"{type(noise).__name__} {noise!r}",
    )
