"""What ``calibrate`` and ``audit`` share: the ``--mechanism`` option, building a mechanism by
name (user mechanisms included) and printing figures."""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Sequence
from typing import Any

from ..mechanisms import MATCHED_TO_GAUSSIAN, Gaussian, Mechanism, ProductNoise, calibrate
from ..mechanisms.registry import REGISTRY, get_mechanism, mechanism_names, mechanism_specs
from ..privacy import UNVERIFIED, PrivacyFigure, PrivacyWarning
from .command import CLIError, warn
from .types import DIM, EPSILON, SENSITIVITY, K

__all__ = [
    "mechanism_choices",
    "mechanism_help",
    "canonical_name",
    "build_mechanism",
    "is_unverified",
    "calibration_text",
    "add_mechanism_arguments",
]


def mechanism_choices() -> tuple[str, ...]:
    """``--mechanism`` of ``calibrate`` and ``audit``: every name core ``calibrate`` accepts,
    read from the registry now (user mechanisms included)."""
    return mechanism_names("table")


def mechanism_help() -> str:
    """``name = description (label)`` of every :func:`mechanism_choices` name."""
    return "; ".join(spec.help_text for spec in mechanism_specs("table"))


def __getattr__(name: str) -> Any:
    # the former import-time constants, now live views of the registry
    if name == "MECHANISM_CHOICES":
        return mechanism_choices()
    if name == "MECHANISM_HELP":
        return mechanism_help()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def canonical_name(text: str) -> str:
    """An argparse ``type=``: a registered spelling (``my-l2``) → its registry name (``my_l2``);
    anything else unchanged, for ``choices`` to refuse."""
    return get_mechanism(text).name if text in REGISTRY else text


def is_unverified(mech: Mechanism) -> bool:
    """Whether ``mech`` has no proven privacy (a user's sampler without a profile)."""
    return not getattr(mech, "provable", True)


def calibration_text(mech: Mechanism) -> str:
    """How ``mech``'s scale was chosen: ``verified``, ``claimed: <source>`` or ``unverified:
    <MATCHED_TO_GAUSSIAN>``."""
    claim = mech.claimed()
    if claim is not None:
        return f"claimed: {claim.source}"
    return f"{UNVERIFIED}: {MATCHED_TO_GAUSSIAN}" if is_unverified(mech) else "verified"


def _unverified_member(
    name: str, epsilon: float, delta: float, dim: int, sensitivity: float, match: bool
) -> Mechanism:
    """An unverified mechanism for a target: by the user's claim, else matched to the Gaussian
    (``match``), else a :class:`CLIError`."""
    cls = get_mechanism(name).load()
    if getattr(cls, "claim", None) is not None:
        return calibrate(name, epsilon, delta, dim, sensitivity)
    if not match:
        raise CLIError(
            f"mechanism {name!r} is unverified (a sampler without a proven privacy profile): it "
            "has no verified calibration; register it with claim= for a claimed one, or audit "
            "it with 'product-noise audit' for an empirical lower bound"
        )
    sigma = Gaussian.calibrate(epsilon, delta, dim, sensitivity).sigma
    return cls(dim, sigma, sensitivity)  # noise multiplier σ/Δ of the verified Gaussian


def build_mechanism(
    name: str,
    epsilon: float,
    delta: float | None,
    dim: int,
    sensitivity: float,
    k: float | None,
    *,
    match_unverified: bool = False,
) -> Mechanism:
    """Calibrate by registry name; privacy warnings become one ``warning:`` line each.

    Parameters
    ----------
    name : str
        A :func:`mechanism_choices` name.
    epsilon, delta : float
        The target (``delta`` may be ``None`` only for ``product_paper`` with ``k``).
    dim : int
        Dimension M.
    sensitivity : float
        L2 sensitivity Δ.
    k : float or None
        The paper's constant (``product_paper`` only).
    match_unverified : bool, default False
        For an unverified mechanism without a claimed formula: run it at the verified
        Gaussian's noise multiplier for the target (:data:`MATCHED_TO_GAUSSIAN`) instead of
        refusing.

    Returns
    -------
    mechanism : Mechanism
        The calibrated member.

    Raises
    ------
    CLIError
        On ``-k`` for another mechanism, a missing ``--delta``, or an unverified mechanism
        without a claim (unless ``match_unverified``).
    """
    if k is not None and name != "product_paper":
        raise CLIError("-k applies only to --mechanism product_paper")
    if delta is None and k is None:
        raise CLIError("--delta is required (except for --mechanism product_paper with -k)")
    unverified = get_mechanism(name).calibration == UNVERIFIED
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PrivacyWarning)
        if k is not None:  # the paper's formula with a hand-set k fixes the claimed delta
            mech: Mechanism = ProductNoise.from_paper(dim, epsilon, k, sensitivity=sensitivity)
        elif unverified:
            assert delta is not None
            mech = _unverified_member(name, epsilon, delta, dim, sensitivity, match_unverified)
        else:
            mech = calibrate(name, epsilon, delta, dim, sensitivity)
    for w in caught:
        if issubclass(w.category, PrivacyWarning):
            warn(str(w.message))
        else:  # pragma: no cover - pass other warnings on unchanged
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return mech


def fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.6g}"


def claim_verdict(claim: PrivacyFigure, epsilon: float, delta_at_eps: float, what: str) -> str:
    """Plain words comparing a claimed (ε₀, δ₀) with a δ measured or verified at ``epsilon``."""
    if epsilon < claim.epsilon:
        return (
            f"The claim is stated at ε = {claim.epsilon:g}; an (ε₀, δ₀) claim bounds δ(ε) only "
            f"for ε ≥ ε₀, so {what} at ε = {epsilon:g} cannot test it."
        )
    if delta_at_eps > claim.delta:
        return (
            f"The claim is false: {what} at ε = {epsilon:g} is {delta_at_eps:.3g}, "
            f"{delta_at_eps / claim.delta:.3g}× the claimed δ = {claim.delta:.3g}."
        )
    return (
        f"{what[0].upper() + what[1:]} at ε = {epsilon:g} ({delta_at_eps:.3g}) does not exceed "
        f"the claimed δ = {claim.delta:.3g}."
    )


def print_rows(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def add_mechanism_arguments(p: argparse.ArgumentParser, *, epsilon_help: str) -> None:
    p.add_argument(
        "--mechanism",
        required=True,
        type=canonical_name,
        choices=mechanism_choices(),
        help=(mechanism_help() + " (user mechanisms: --plugin before the command)").replace(
            "%", "%%"
        ),
    )
    p.add_argument("--epsilon", type=EPSILON, required=True, metavar="E", help=epsilon_help)
    p.add_argument("--dim", type=DIM, required=True, metavar="M", help="dimension M of the noise")
    p.add_argument(
        "--sensitivity",
        type=SENSITIVITY,
        default=1.0,
        metavar="S",
        help="L2 sensitivity Δ (default: %(default)g)",
    )
    p.add_argument(
        "-k",
        type=K,
        default=None,
        metavar="K",
        help="product_paper only: the paper's constant k > 1 (default: the k whose claimed δ "
        "equals --delta)",
    )
