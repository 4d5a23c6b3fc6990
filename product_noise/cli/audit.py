"""``product-noise audit``: an empirical lower bound on δ(ε) by sampling the noise."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from ..mechanisms import Mechanism
from ..privacy import UNVERIFIED, PrivacyFigure
from .command import Command
from .common import (
    add_mechanism_arguments,
    build_mechanism,
    calibration_text,
    claim_verdict,
    is_unverified,
    print_rows,
)
from .types import DELTA, EPSILON, SAMPLES, confidence, seed


def _add_audit_arguments(p: argparse.ArgumentParser) -> None:
    add_mechanism_arguments(p, epsilon_help="the ε at which δ(ε) is audited")
    p.add_argument(
        "--epsilon0",
        type=EPSILON,
        default=None,
        metavar="E0",
        help="the ε the mechanism is calibrated for (default: --epsilon)",
    )
    p.add_argument(
        "--delta",
        type=DELTA,
        default=1e-5,
        metavar="D",
        help="the δ the mechanism is calibrated for; ignored for product_paper with -k "
        "(default: %(default)g)",
    )
    p.add_argument(
        "--samples",
        type=SAMPLES,
        default=20_000,
        metavar="N",
        help="noise draws per hypothesis in each of the audit's two splits, so 4N draws of M "
        "values in all (default: %(default)d)",
    )
    p.add_argument(
        "--confidence",
        type=confidence,
        default=0.95,
        help="confidence level of the lower bound (default: %(default)g)",
    )
    p.add_argument("--seed", type=seed, default=None, help="random seed (default: fresh, printed)")


def _conclusion(mech: Mechanism, claim: PrivacyFigure | None, lower: float, args: Any) -> str:
    """Plain words: the lower bound against the claim and against the verified δ (if any)."""
    level = f"{100 * args.confidence:g}% confidence"
    lines = []
    if claim is not None:
        lines.append(
            claim_verdict(claim, args.epsilon, lower, f"the empirical lower bound ({level})")
        )
    if is_unverified(mech):
        lines.append(
            f"{args.mechanism} is {UNVERIFIED}: the empirical lower bound is the only privacy "
            "evidence for it; no upper bound is proven."
        )
        return " ".join(lines)
    verified = mech.verified(epsilon=args.epsilon)
    if lower > float(verified.delta) * (1 + 1e-9):
        lines.append(
            f"The lower bound exceeds the verified δ = {verified.delta:.3g}: at this confidence "
            "one of the two is wrong (a 1 - confidence chance of a false alarm). Please report it."
        )
    elif claim is None:
        lines.append(f"The lower bound is consistent with the verified δ = {verified.delta:.3g}.")
    return " ".join(lines)


def _run_audit(args: argparse.Namespace) -> int:
    import numpy as np

    eps0 = args.epsilon if args.epsilon0 is None else args.epsilon0
    delta = None if (args.mechanism == "product_paper" and args.k is not None) else args.delta
    mech = build_mechanism(
        args.mechanism, eps0, delta, args.dim, args.sensitivity, args.k, match_unverified=True
    )
    from ..audit import audit_mechanism

    seed = int(np.random.SeedSequence().entropy) if args.seed is None else args.seed
    print(f"auditing {mech.describe()} at ε = {args.epsilon:g} (seed {seed})", flush=True)
    print_rows([("calibration", calibration_text(mech))])
    result = audit_mechanism(
        mech,
        args.epsilon,
        n_samples=args.samples,
        confidence=args.confidence,
        rng=np.random.default_rng(seed),
        progress=True,
    )
    claim = mech.claimed()
    verified = (
        f"none: {UNVERIFIED} (a sampler without a proven privacy profile)"
        if is_unverified(mech)
        else str(mech.verified(epsilon=args.epsilon))
    )
    print_rows(
        [
            ("audit", str(result)),
            ("verified", verified),
            (
                "claimed",
                "none (no paper claim for this calibration)" if claim is None else str(claim),
            ),
        ]
    )
    print()
    print(textwrap.fill(_conclusion(mech, claim, float(result.delta_lower), args), width=100))
    return 0


COMMAND = Command(
    name="audit",
    help="empirical lower bound on δ(ε) by sampling the noise, vs claimed and verified δ",
    description=textwrap.dedent(
        """\
        Sample the mechanism's noise and compute a statistical lower bound on its δ(ε)
        (a hypothesis test between neighbouring outputs, valid at --confidence). Prints it
        next to the verified δ at that ε and the claimed (ε₀, δ₀), and says plainly when the
        lower bound exceeds the claim (then the claim is false, at that confidence).

        The mechanism is calibrated first as in `product-noise calibrate`, at (--epsilon0,
        --delta); product_paper uses the paper's k for --delta unless -k is given. A user's
        unverified mechanism (a sampler only, --plugin) is audited at its claimed formula if
        it has one, else at the noise multiplier of the verified Gaussian for the same
        target; it gets the lower bound only, never a verified figure."""
    ),
    epilog=textwrap.dedent(
        """\
        examples:
          product-noise audit --mechanism product_paper --dim 26010 --epsilon 0.3 -k 40000
          product-noise audit --mechanism gaussian --dim 100 --epsilon 1 --samples 200000"""
    ),
    add_arguments=_add_audit_arguments,
    run=_run_audit,
)
