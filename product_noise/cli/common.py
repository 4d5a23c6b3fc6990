"""What ``calibrate`` and ``audit`` share: building a mechanism by name and printing figures."""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Sequence

from ..mechanisms import Mechanism, ProductNoise, calibrate
from ..mechanisms.registry import mechanism_names, mechanism_specs
from ..privacy import PrivacyFigure, PrivacyWarning
from .command import CLIError, warn
from .types import DIM, EPSILON, SENSITIVITY, K

#: ``--mechanism`` of ``calibrate`` and ``audit``: the names core ``calibrate`` accepts
MECHANISM_CHOICES = mechanism_names("table")
MECHANISM_HELP = "; ".join(spec.help_text for spec in mechanism_specs("table"))


def build_mechanism(
    name: str, epsilon: float, delta: float | None, dim: int, sensitivity: float, k: float | None
) -> Mechanism:
    """Calibrate by registry name; privacy warnings become one ``warning:`` line each."""
    if k is not None and name != "product_paper":
        raise CLIError("-k applies only to --mechanism product_paper")
    if delta is None and k is None:
        raise CLIError("--delta is required (except for --mechanism product_paper with -k)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PrivacyWarning)
        if k is not None:  # the paper's formula with a hand-set k fixes the claimed delta
            mech: Mechanism = ProductNoise.from_paper(dim, epsilon, k, sensitivity=sensitivity)
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
    p.add_argument("--mechanism", required=True, choices=MECHANISM_CHOICES, help=MECHANISM_HELP)
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
