"""``product-noise calibrate``: one mechanism for one (ε, δ, M)."""

from __future__ import annotations

import argparse
import math
import textwrap

from ..mechanisms import Mechanism
from ..mechanisms.base import MAX_EPSILON
from ..privacy import UNVERIFIED, PrivacyFigure
from .command import CLIError, Command
from .common import (
    add_mechanism_arguments,
    build_mechanism,
    calibration_text,
    claim_verdict,
    fmt,
    is_unverified,
    print_rows,
)
from .types import DELTA


def _add_calibrate_arguments(p: argparse.ArgumentParser) -> None:
    add_mechanism_arguments(
        p, epsilon_help=f"target ε ≤ {MAX_EPSILON:g} (for product_paper: the paper's ε₀)"
    )
    p.add_argument(
        "--delta",
        type=DELTA,
        default=None,
        metavar="D",
        help="target δ (required, except for product_paper with -k)",
    )


def _verified_rows(mech: Mechanism, args: argparse.Namespace) -> list[tuple[str, str]]:
    """The ``verified δ`` and ``verified ε`` rows (for an unverified mechanism: none, said so)."""
    if is_unverified(mech):
        return [
            (
                "verified",
                f"none: {UNVERIFIED} (a sampler without a proven privacy profile; audit it with "
                "'product-noise audit' for an empirical lower bound)",
            )
        ]
    at_eps = mech.verified(epsilon=args.epsilon)
    rows = [("verified δ", f"{at_eps}  (the exact δ(ε) at the target ε = {args.epsilon:g})")]
    if args.delta is not None:
        at_delta = mech.verified(delta=args.delta)
        what = (
            f"no ε ≤ {MAX_EPSILON:g} has exact δ(ε) ≤ the target δ = {args.delta:g}"
            if math.isinf(at_delta.epsilon)
            else f"the smallest ε whose exact δ(ε) ≤ the target δ = {args.delta:g}"
        )
        rows.append(("verified ε", f"{at_delta}  ({what})"))
    return rows


def _verdict(mech: Mechanism, claim: PrivacyFigure, mechanism: str) -> str:
    """Plain words on the claim: checked against the verified δ, or unverifiable."""
    if is_unverified(mech):
        return (
            f"The claim of {mechanism!r} is the user's formula for a sampler without a proven "
            "profile: nothing verifies it; an audit ('product-noise audit') can refute it."
        )
    verdict = claim_verdict(
        claim, claim.epsilon, float(mech.delta(claim.epsilon)), "the verified δ"
    )
    if mechanism == "classic_gaussian" and claim.epsilon >= 1.0:
        verdict = (
            "The classic formula is outside the Dwork-Roth theorem at ε ≥ 1, so its δ "
            "is only claimed. " + verdict
        )
    return verdict


def _run_calibrate(args: argparse.Namespace) -> int:
    if args.epsilon > MAX_EPSILON:  # ε(δ) is searched up to MAX_EPSILON only: it would be inf
        raise CLIError(
            f"--epsilon {args.epsilon:g} is beyond the largest ε the verified privacy profile "
            f"resolves ({MAX_EPSILON:g}); choose --epsilon ≤ {MAX_EPSILON:g}"
        )
    mech = build_mechanism(
        args.mechanism, args.epsilon, args.delta, args.dim, args.sensitivity, args.k
    )
    claim = mech.claimed()
    rows = [
        ("mechanism", f"{args.mechanism}: {mech.describe()}"),
        ("calibration", calibration_text(mech)),
        ("scale", f"{mech.scale_name} = {fmt(mech.scale)}"),
    ]
    if getattr(mech, "paper", None):
        rows.append(("paper k, t", f"k = {fmt(mech.paper['k'])}, t = {fmt(mech.paper['t'])}"))
    rows += [("E‖n‖", fmt(mech.expected_norm)), ("E‖n‖²", fmt(mech.expected_sq_norm))]
    rows += _verified_rows(mech, args)
    rows.append(
        ("claimed", "none (no paper claim for this calibration)" if claim is None else str(claim))
    )
    print_rows(rows)
    if claim is not None:
        print()
        print(textwrap.fill(_verdict(mech, claim, args.mechanism), width=100))
    return 0


COMMAND = Command(
    name="calibrate",
    help="calibrate one mechanism for a target (ε, δ) and print its noise and privacy",
    description=textwrap.dedent(
        """\
        Calibrate one mechanism for a target (ε, δ) in dimension M and print its noise
        scale, E‖n‖ and E‖n‖², its verified privacy (row "verified δ": the exact δ at the
        target ε of the noise actually added; row "verified ε", with --delta: the smallest ε
        whose exact δ(ε) is at most the target δ) and, for classic_gaussian and
        product_paper, the figure the textbook or paper claims, each with its label. The
        target ε must be at most 1e4, the largest ε the verified profile resolves.

        A user mechanism (--plugin) with a radial law or a proven profile is calibrated on
        it (verified); one with a sampler only is unverified: it is refused, unless it was
        registered with a claimed formula (then the figure is labelled claimed)."""
    ),
    epilog=textwrap.dedent(
        """\
        examples:
          product-noise calibrate --mechanism gaussian --epsilon 1 --delta 1e-5 --dim 1000
          product-noise calibrate --mechanism product_paper --dim 26010 --epsilon 0.3 -k 4e4"""
    ),
    add_arguments=_add_calibrate_arguments,
    run=_run_calibrate,
)
