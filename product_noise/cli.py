"""The ``product-noise`` command line.

Subcommands
-----------
``mechanisms``  every noise law at equal (ε, δ): E‖n‖, claimed and verified δ (CSV + Markdown)
``calibrate``   one mechanism for one (ε, δ, M): its scale, E‖n‖, E‖n‖², verified and claimed figure
``audit``       an empirical lower bound on δ(ε) by sampling, next to the claimed and verified δ
``dpmix``       DPMix: verified ε of a release next to the thesis' claimed ε, or σ for a target
``compare``     every mechanism trained side by side at equal target ε (the main job)
``preprocess``  load and cache the convex-ERM datasets from local upstream files
``gridsearch``  the paper's convex-ERM grid search (hyperparameters × ε)
``audit-training``  canary audits of real DP-SGD and DPMix runs: an ε lower bound next to the
                verified and claimed ε

Every privacy figure printed is labelled ``claimed`` or ``verified``
(:mod:`product_noise.privacy`); bad input prints one ``error: ...`` line on stderr and exits 2.

Adding a subcommand
-------------------
Write ``_add_<name>_arguments(parser)`` and ``_run_<name>(args) -> int`` and register them::

    register(Command("compare", help="...", description="...",
                     add_arguments=_add_compare_arguments, run=_run_compare))

Import heavy modules (torch, opacus, the comparison harness) inside ``run`` so that
``product-noise --help`` stays fast. Subcommands appear in ``--help`` in registration order.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from ._validation import (
    check_delta,
    check_dimension,
    check_epsilon,
    check_output_dir,
    check_positive,
    check_positive_int,
    check_probability,
)
from .mechanisms import Mechanism, ProductNoise, calibrate
from .mechanisms.base import MAX_EPSILON
from .privacy import PrivacyFigure, PrivacyWarning

__all__ = ["main", "build_parser", "Command", "COMMANDS", "register", "CLIError"]

MECHANISM_CHOICES = ("gaussian", "classic_gaussian", "product", "product_paper", "l2")
_MECHANISM_HELP = (
    "gaussian = analytic Gaussian (verified); classic_gaussian = Dwork-Roth formula (claimed, "
    "a theorem only for ε < 1); product = product noise calibrated on its exact profile "
    "(verified); product_paper = product noise at the paper's calibration (claimed, known "
    "false); l2 = ℓ2 mechanism (verified)"
)


class CLIError(Exception):
    """Bad command-line input: reported as one ``error: ...`` line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{message} (see '{self.prog} --help')")


_FORMATTER = argparse.RawDescriptionHelpFormatter


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, help texts, argument definitions and entry point.

    Attributes
    ----------
    name:
        The word typed after ``product-noise``.
    help:
        One line shown in ``product-noise --help``.
    description:
        The text shown at the top of ``product-noise <name> --help`` (kept verbatim).
    add_arguments:
        Adds the subcommand's options to its parser.
    run:
        Runs the subcommand on the parsed arguments and returns the exit status.
    epilog:
        Examples shown at the end of ``--help``.
    """

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str = ""


#: registered subcommands, in ``--help`` order
COMMANDS: dict[str, Command] = {}


def register(command: Command) -> Command:
    """Add a subcommand to :data:`COMMANDS` (names must be unique)."""
    if command.name in COMMANDS:
        raise ValueError(f"subcommand {command.name!r} is already registered")
    COMMANDS[command.name] = command
    return command


# ---------------------------------------------------------------- argument types
def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _checked(
    check: Callable[[Any], Any], convert: Callable[[str], Any] = _number
) -> Callable[[str], Any]:
    """An argparse ``type=`` that converts ``text`` and applies one of the package's checks."""

    def parse(text: str) -> Any:
        try:
            return check(convert(text))
        except (ValueError, TypeError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _integer(text: str) -> int | float:
    # accept "1000000" and "1e6"
    try:
        return int(text)
    except ValueError:
        return _number(text)


_EPSILON = _checked(check_epsilon)
_DELTA = _checked(check_delta)
_SENSITIVITY = _checked(lambda v: check_positive("sensitivity", v))
_DIM = _checked(lambda v: check_dimension(v, name="dimension"), _integer)
_SAMPLES = _checked(lambda v: check_positive_int("samples", v), _integer)
_K = _checked(lambda v: check_positive("k", v))


def _confidence(text: str) -> float:
    value = _checked(lambda v: check_probability("confidence", v))(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"confidence must be < 1, got {text}")
    return value


def _seed(text: str) -> int:
    value = _checked(lambda v: check_positive_int("seed", v, minimum=0), _integer)(text)
    return int(value)


# ---------------------------------------------------------------- output helpers
def _error(message: str) -> None:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)


def _warn(message: str) -> None:
    print("warning: " + " ".join(str(message).split()), file=sys.stderr)


def _build(
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
            _warn(str(w.message))
        else:  # pragma: no cover - pass other warnings on unchanged
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return mech


def _g(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.6g}"


def _claim_verdict(claim: PrivacyFigure, epsilon: float, delta_at_eps: float, what: str) -> str:
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


def _print_rows(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


# ---------------------------------------------------------------- mechanisms
def _add_mechanisms_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dims",
        nargs="+",
        type=_DIM,
        default=[10, 100, 10_000, 1_000_000],
        metavar="M",
        help="dimensions M of the noise vector (default: %(default)s)",
    )
    p.add_argument(
        "--epsilons",
        nargs="+",
        type=_EPSILON,
        default=[0.1, 1.0, 8.0],
        metavar="E",
        help="target ε values (default: %(default)s)",
    )
    p.add_argument("--delta", type=_DELTA, default=1e-5, help="target δ (default: %(default)g)")
    p.add_argument(
        "--sensitivity",
        type=_SENSITIVITY,
        default=1.0,
        help="L2 sensitivity Δ of the query (default: %(default)g)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory for mechanisms.csv and mechanisms.md "
        "(default: runs/mechanisms-<timestamp>)",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def _run_mechanisms(args: argparse.Namespace) -> int:
    from .tables import format_markdown, mechanism_table, summarize, write_table

    out = check_output_dir(
        args.out or Path("runs") / f"mechanisms-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    start = time.perf_counter()
    rows = mechanism_table(
        dims=args.dims,
        epsilons=args.epsilons,
        delta=args.delta,
        sensitivity=args.sensitivity,
        progress=not args.no_progress,
    )
    csv_path, md_path = write_table(rows, out)
    elapsed = time.perf_counter() - start
    print(format_markdown(rows))
    print()
    print("Labels: verified = exact privacy of the noise actually added; claimed = what a paper or")
    print("textbook formula states for that noise (not a guarantee unless its theorem holds).")
    print()
    print(f"wrote {csv_path}")
    print(f"wrote {md_path}")
    print(f"({len(rows)} rows in {elapsed:.1f} s)")
    print()
    print(textwrap.fill(summarize(rows), width=100))
    return 0


register(
    Command(
        name="mechanisms",
        help="compare every mechanism at equal (ε, δ): E‖n‖, claimed vs verified δ",
        description=textwrap.dedent(
            """\
            Calibrate each mechanism for every (M, ε) at the target δ and tabulate its noise
            scale, its expected noise norm E‖n‖ (and its ratio to the analytic Gaussian's),
            and its privacy, labelled:

              classic_gaussian  claimed (classic)  Dwork-Roth σ; "outside theorem" when ε ≥ 1
              gaussian          verified           analytic Gaussian (Balle & Wang 2018)
              l2                verified           ℓ2 mechanism, exact spherical profile
              product           verified           product noise, smallest σ with exact δ(ε) ≤ δ
              product_paper     claimed (paper)    product noise at the paper's calibration,
                                                   its claimed δ next to its TRUE (verified) δ

            Prints the table as Markdown and writes mechanisms.csv (full precision) and
            mechanisms.md into --out. Takes a few seconds on one CPU core."""
        ),
        epilog=textwrap.dedent(
            """\
            examples:
              product-noise mechanisms
              product-noise mechanisms --dims 100 26010 --epsilons 0.3 1 --out runs/table"""
        ),
        add_arguments=_add_mechanisms_arguments,
        run=_run_mechanisms,
    )
)


# ---------------------------------------------------------------- calibrate
def _add_mechanism_arguments(p: argparse.ArgumentParser, *, epsilon_help: str) -> None:
    p.add_argument("--mechanism", required=True, choices=MECHANISM_CHOICES, help=_MECHANISM_HELP)
    p.add_argument("--epsilon", type=_EPSILON, required=True, metavar="E", help=epsilon_help)
    p.add_argument("--dim", type=_DIM, required=True, metavar="M", help="dimension M of the noise")
    p.add_argument(
        "--sensitivity",
        type=_SENSITIVITY,
        default=1.0,
        metavar="S",
        help="L2 sensitivity Δ (default: %(default)g)",
    )
    p.add_argument(
        "-k",
        type=_K,
        default=None,
        metavar="K",
        help="product_paper only: the paper's constant k > 1 (default: the k whose claimed δ "
        "equals --delta)",
    )


def _add_calibrate_arguments(p: argparse.ArgumentParser) -> None:
    _add_mechanism_arguments(
        p, epsilon_help=f"target ε ≤ {MAX_EPSILON:g} (for product_paper: the paper's ε₀)"
    )
    p.add_argument(
        "--delta",
        type=_DELTA,
        default=None,
        metavar="D",
        help="target δ (required, except for product_paper with -k)",
    )


def _run_calibrate(args: argparse.Namespace) -> int:
    if args.epsilon > MAX_EPSILON:  # ε(δ) is searched up to MAX_EPSILON only: it would be inf
        raise CLIError(
            f"--epsilon {args.epsilon:g} is beyond the largest ε the verified privacy profile "
            f"resolves ({MAX_EPSILON:g}); choose --epsilon ≤ {MAX_EPSILON:g}"
        )
    mech = _build(args.mechanism, args.epsilon, args.delta, args.dim, args.sensitivity, args.k)
    claim = mech.claimed()
    at_eps = mech.verified(epsilon=args.epsilon)
    rows = [
        ("mechanism", f"{args.mechanism}: {mech.describe()}"),
        ("calibration", "verified" if claim is None else f"claimed: {claim.source}"),
        ("scale", f"{mech.scale_name} = {_g(mech.scale)}"),
    ]
    if getattr(mech, "paper", None):
        rows.append(("paper k, t", f"k = {_g(mech.paper['k'])}, t = {_g(mech.paper['t'])}"))
    rows += [
        ("E‖n‖", _g(mech.expected_norm)),
        ("E‖n‖²", _g(mech.expected_sq_norm)),
        ("verified δ", f"{at_eps}  (the exact δ(ε) at the target ε = {args.epsilon:g})"),
    ]
    if args.delta is not None:
        at_delta = mech.verified(delta=args.delta)
        what = (
            f"no ε ≤ {MAX_EPSILON:g} has exact δ(ε) ≤ the target δ = {args.delta:g}"
            if math.isinf(at_delta.epsilon)
            else f"the smallest ε whose exact δ(ε) ≤ the target δ = {args.delta:g}"
        )
        rows.append(("verified ε", f"{at_delta}  ({what})"))
    rows.append(
        ("claimed", "none (no paper claim for this calibration)" if claim is None else str(claim))
    )
    _print_rows(rows)
    if claim is not None:
        print()
        verdict = _claim_verdict(
            claim, claim.epsilon, float(mech.delta(claim.epsilon)), "the verified δ"
        )
        if args.mechanism == "classic_gaussian" and claim.epsilon >= 1.0:
            verdict = (
                "The classic formula is outside the Dwork-Roth theorem at ε ≥ 1, so its δ "
                "is only claimed. " + verdict
            )
        print(textwrap.fill(verdict, width=100))
    return 0


register(
    Command(
        name="calibrate",
        help="calibrate one mechanism for a target (ε, δ) and print its noise and privacy",
        description=textwrap.dedent(
            """\
            Calibrate one mechanism for a target (ε, δ) in dimension M and print its noise
            scale, E‖n‖ and E‖n‖², its verified privacy (row "verified δ": the exact δ at the
            target ε of the noise actually added; row "verified ε", with --delta: the smallest ε
            whose exact δ(ε) is at most the target δ) and, for classic_gaussian and
            product_paper, the figure the textbook or paper claims, each with its label. The
            target ε must be at most 1e4, the largest ε the verified profile resolves."""
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
)


# ---------------------------------------------------------------- audit
def _add_audit_arguments(p: argparse.ArgumentParser) -> None:
    _add_mechanism_arguments(p, epsilon_help="the ε at which δ(ε) is audited")
    p.add_argument(
        "--epsilon0",
        type=_EPSILON,
        default=None,
        metavar="E0",
        help="the ε the mechanism is calibrated for (default: --epsilon)",
    )
    p.add_argument(
        "--delta",
        type=_DELTA,
        default=1e-5,
        metavar="D",
        help="the δ the mechanism is calibrated for; ignored for product_paper with -k "
        "(default: %(default)g)",
    )
    p.add_argument(
        "--samples",
        type=_SAMPLES,
        default=20_000,
        metavar="N",
        help="noise draws per hypothesis in each of the audit's two splits, so 4N draws of M "
        "values in all (default: %(default)d)",
    )
    p.add_argument(
        "--confidence",
        type=_confidence,
        default=0.95,
        help="confidence level of the lower bound (default: %(default)g)",
    )
    p.add_argument("--seed", type=_seed, default=None, help="random seed (default: fresh, printed)")


def _run_audit(args: argparse.Namespace) -> int:
    import numpy as np

    eps0 = args.epsilon if args.epsilon0 is None else args.epsilon0
    delta = None if (args.mechanism == "product_paper" and args.k is not None) else args.delta
    mech = _build(args.mechanism, eps0, delta, args.dim, args.sensitivity, args.k)
    try:
        from .audit import audit_mechanism
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.audit":
            raise
        _error("the audit module (product_noise/audit.py) is not part of this installation")
        return 1
    seed = int(np.random.SeedSequence().entropy) if args.seed is None else args.seed
    print(f"auditing {mech.describe()} at ε = {args.epsilon:g} (seed {seed})", flush=True)
    result = audit_mechanism(
        mech,
        args.epsilon,
        n_samples=args.samples,
        confidence=args.confidence,
        rng=np.random.default_rng(seed),
        progress=True,
    )
    lower = float(result.delta_lower)
    verified = mech.verified(epsilon=args.epsilon)
    claim = mech.claimed()
    level = f"{100 * result.confidence:g}% confidence"
    _print_rows(
        [
            ("audit", str(result)),
            ("verified", str(verified)),
            (
                "claimed",
                "none (no paper claim for this calibration)" if claim is None else str(claim),
            ),
        ]
    )
    print()
    lines = []
    if claim is not None:
        lines.append(
            _claim_verdict(claim, args.epsilon, lower, f"the empirical lower bound ({level})")
        )
    if lower > float(verified.delta) * (1 + 1e-9):
        lines.append(
            f"The lower bound exceeds the verified δ = {verified.delta:.3g}: at this confidence "
            "one of the two is wrong (a 1 - confidence chance of a false alarm). Please report it."
        )
    elif claim is None:
        lines.append(f"The lower bound is consistent with the verified δ = {verified.delta:.3g}.")
    print(textwrap.fill(" ".join(lines), width=100))
    return 0


register(
    Command(
        name="audit",
        help="empirical lower bound on δ(ε) by sampling the noise, vs claimed and verified δ",
        description=textwrap.dedent(
            """\
            Sample the mechanism's noise and compute a statistical lower bound on its δ(ε)
            (a hypothesis test between neighbouring outputs, valid at --confidence). Prints it
            next to the verified δ at that ε and the claimed (ε₀, δ₀), and says plainly when the
            lower bound exceeds the claim (then the claim is false, at that confidence).

            The mechanism is calibrated first as in `product-noise calibrate`, at (--epsilon0,
            --delta); product_paper uses the paper's k for --delta unless -k is given."""
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
)


# DPMix lives in its own top-level package; its factory takes Command (no import cycle)
from dpmix.cli import make_command as _dpmix_command  # noqa: E402

register(_dpmix_command(Command))

# the comparison harness; its factory takes Command too (heavy imports happen in run)
from .compare.cli import make_command as _compare_command  # noqa: E402

register(_compare_command(Command))

# convex ERM: dataset preprocessing and the hyperparameter x epsilon grid search
from .erm.cli import make_gridsearch_command, make_preprocess_command  # noqa: E402

register(make_preprocess_command(Command))
register(make_gridsearch_command(Command))

# empirical canary audits of real training runs; heavy imports happen in run
from .training_audit import make_command as _audit_training_command  # noqa: E402

register(_audit_training_command(Command))


# ---------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per registered :class:`Command`."""
    parser = _Parser(
        prog="product-noise",
        description=textwrap.fill(
            "Product noise reproduced faithfully and accounted honestly. Every privacy figure "
            "is labelled: verified (exact privacy of the noise actually added) or claimed "
            "(what a paper's formula states; not a guarantee).",
            width=80,
        ),
        epilog="Run 'product-noise COMMAND --help' for the options of one command.",
        formatter_class=lambda prog: _FORMATTER(prog, max_help_position=20),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", title="commands")
    for cmd in COMMANDS.values():
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.description,
            epilog=cmd.epilog or None,
            formatter_class=_FORMATTER,
        )
        cmd.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``product-noise`` command line; returns the exit status.

    Parameters
    ----------
    argv:
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 on bad input (one ``error: ...`` line on stderr), 1 on other failures
        reported by a subcommand, 130 when interrupted by Ctrl-C, 143 by SIGTERM in a
        subcommand that handles it (``compare``): 128 + the signal's number.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return COMMANDS[args.command].run(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (CLIError, ValueError) as exc:
        _error(str(exc))
        return 2
    except KeyboardInterrupt as exc:  # compare raises a subclass for SIGTERM, with its signum
        signum = int(getattr(exc, "signum", 2))  # 2: SIGINT
        _error("interrupted" if signum == 2 else f"interrupted (signal {signum})")
        return 128 + signum


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
