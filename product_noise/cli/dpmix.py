"""``product-noise dpmix``: DPMix accounting and calibration from the command line.

``dp_accounting``/``mpmath`` are imported only when the subcommand runs.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from .command import CLIError, Command
from .types import DELTA, EPSILON, positive_float, positive_int

__all__ = ["NAME", "add_arguments", "run", "COMMAND"]

NAME = "dpmix"
HELP = "DPMix (random mixing): verified ε of a release, thesis' claimed ε, or σ for a target ε"
DESCRIPTION = textwrap.dedent(
    """\
    DPMix releases T noisy means of l records drawn without replacement from n. Prints the
    whitened sensitivity Δ² = D_x²/σ_x² + D_y²/σ_y² of the declared data bound, the noise
    multiplier s_eff = l/Δ, and the privacy, labelled:

      verified  WBK Theorem 27 (sampling w/o replacement, replace-one), composed over T,
                improved RDP→(ε, δ) conversion, RDP from dp_accounting (or --backend native)
      claimed   the thesis' formula (Fig. 3.1) and code (App. A.3), Δ² = d_x/σ² + d_y/σ²;
                not a valid bound

    With --epsilon, solves the common σ = σ_x = σ_y for a verified (ε, δ) instead.
    Class-conditional mixing: pass the smallest class size as --n, T per class as --T and
    --no-label-noise (labels public and fixed)."""
)
EPILOG = textwrap.dedent(
    """\
    examples:
      product-noise dpmix --n 60000 --l 256 --T 10000 --sigma 0.0711
      product-noise dpmix --n 60000 --l 256 --T 10000 --epsilon 15
      product-noise dpmix --n 60000 --l 10 --T 60000 --sigma 0.4419 --delta 1e-5"""
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``product-noise dpmix``."""
    p.add_argument(
        "--n", type=positive_int("n"), required=True, help="records (per class: class size)"
    )
    p.add_argument(
        "--l", type=positive_int("l"), required=True, help="records per mix (1 <= l <= n)"
    )
    p.add_argument("--T", type=positive_int("T"), required=True, help="releases (per class)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--sigma", type=positive_float("sigma"), help="σ_x = σ_y")
    g.add_argument("--epsilon", type=EPSILON, help="target verified ε: solve σ")
    p.add_argument(
        "--sigma-y", type=positive_float("sigma-y"), default=None, help="σ_y if different from σ_x"
    )
    p.add_argument("--delta", type=DELTA, default=None, help="δ (default 1/n)")
    p.add_argument(
        "--dim", type=positive_int("dim"), default=784, help="feature dimension d_x (784)"
    )
    p.add_argument(
        "--classes", type=positive_int("classes"), default=10, help="one-hot label dimension (10)"
    )
    p.add_argument(
        "--bound",
        choices=["pixel", "l2"],
        default="pixel",
        help="pixel: entries in [0,1] (D_x = √d); l2: ‖x‖ <= --radius (D_x = 2·radius)",
    )
    p.add_argument(
        "--radius", type=positive_float("radius"), default=1.0, help="L2 radius for --bound l2"
    )
    p.add_argument(
        "--no-label-noise", action="store_true", help="labels released exactly (D_y = 0)"
    )
    p.add_argument("--backend", choices=["dp_accounting", "native"], default="dp_accounting")


def run(args: argparse.Namespace) -> int:
    """Run ``product-noise dpmix``; returns the exit status."""
    from dpmix.accounting import calibrate, thesis_figure, verified_figure, whitened_sensitivity
    from dpmix.bounds import ONE_HOT_DIAMETER, L2NormBound, PixelBound

    if args.l > args.n:
        raise CLIError(f"--l must be <= --n, got l={args.l}, n={args.n}")
    delta = 1.0 / args.n if args.delta is None else args.delta
    if not 0 < delta < 1:
        raise CLIError(f"--delta must lie strictly between 0 and 1, got {delta}")
    bound = PixelBound() if args.bound == "pixel" else L2NormBound(args.radius)
    dx = bound.diameter(args.dim)
    dy = 0.0 if args.no_label_noise else ONE_HOT_DIAMETER
    rows: list[tuple[str, Any]] = [
        ("setting", f"n={args.n}, l={args.l}, T={args.T}, δ={delta:.4g}"),
        ("data bound", f"{bound.describe()} (D_x = {dx:.6g}), labels D_y = {dy:.6g}"),
    ]
    if args.epsilon is not None:
        if args.sigma_y is not None:
            raise CLIError("--sigma-y cannot be combined with --epsilon (σ_y = σ_x)")
        sigma = calibrate(args.epsilon, delta, args.l, args.T, args.n, x_diameter=dx, y_diameter=dy)
        rows.append(("calibrated σ", f"σ_x = σ_y = {sigma:.6g} for verified ε <= {args.epsilon:g}"))
        sx, sy = sigma, sigma
    else:
        sx = args.sigma
        sy = args.sigma if args.sigma_y is None else args.sigma_y
    big = whitened_sensitivity(sx, dx, sy if dy > 0 else None, dy)
    s_eff = args.l / big
    rows.append(("Δ², s_eff", f"Δ² = {big**2:.6g}, s_eff = l/Δ = {s_eff:.6g}"))
    ver = verified_figure(args.n, args.l, args.T, s_eff, delta, backend=args.backend)
    rows.append(("verified", str(ver)))
    d_y = 0 if args.no_label_noise else args.classes
    for variant in ("code", "formula"):
        cl = thesis_figure(
            args.n, args.l, args.T, sx, sy, args.dim, d_y or 1, delta, variant=variant
        )
        rows.append(("claimed", str(cl)))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


COMMAND = Command(
    name=NAME,
    help=HELP,
    description=DESCRIPTION,
    add_arguments=add_arguments,
    run=run,
    epilog=EPILOG,
)
