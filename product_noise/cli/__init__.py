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
(:mod:`product_noise.privacy`); a user's mechanism without a proof is ``unverified`` and gets no
verified figure. ``--plugin MODULE[:CALLABLE]`` (repeatable, before the subcommand; or the
``PRODUCT_NOISE_PLUGINS`` variable, comma-separated) imports user mechanisms first, so their
names work with ``--mechanism`` (:mod:`product_noise.cli.plugins`).

Bad input (:class:`~product_noise.validation.InputError`, which :class:`CLIError` and the
harness' ``ConfigError`` are) prints one ``error: ...`` line on stderr and exits 2. Any other
exception is an internal error: one ``error: internal error: ...`` line and a hint to rerun
with ``PRODUCT_NOISE_DEBUG=1`` for the traceback, exit status 1.

Adding a subcommand
-------------------
Write a module ``cli/<name>.py`` that defines ``COMMAND = Command(name, help=..., description=...,
add_arguments=..., run=...)`` with argument types from :mod:`product_noise.cli.types`, and add it
to the registrations below. Import heavy modules (torch, opacus, the comparison harness) inside
``run`` so that ``product-noise --help`` stays fast. Subcommands appear in ``--help`` in
registration order.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from collections.abc import Sequence

from .. import __version__
from ..validation import InputError
from . import audit, audit_training, calibrate, compare, dpmix, erm, mechanisms
from .command import COMMANDS, FORMATTER, CLIError, Command, Parser, error, register
from .plugins import PLUGINS_ENV, env_plugins, load_cli_plugins, plugin_arguments, registry_help

__all__ = [
    "main",
    "build_parser",
    "Command",
    "COMMANDS",
    "register",
    "CLIError",
    "DEBUG_ENV",
    "PLUGINS_ENV",
]

#: set to a non-empty value other than ``0`` to print the traceback of an internal error
DEBUG_ENV = "PRODUCT_NOISE_DEBUG"

for _command in (
    mechanisms.COMMAND,
    calibrate.COMMAND,
    audit.COMMAND,
    dpmix.COMMAND,
    compare.COMMAND,
    erm.PREPROCESS_COMMAND,
    erm.GRIDSEARCH_COMMAND,
    audit_training.COMMAND,
):
    register(_command)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per registered :class:`Command`.

    Built at use time: the ``--mechanism`` choices and the registry listing in ``--help`` are
    those registered when it is called (after the plugins are imported).

    Returns
    -------
    parser : argparse.ArgumentParser
        The ``product-noise`` parser.
    """
    parser = Parser(
        prog="product-noise",
        description=textwrap.fill(
            "Product noise reproduced faithfully and accounted honestly. Every privacy figure "
            "is labelled: verified (exact privacy of the noise actually added) or claimed "
            "(what a paper's formula states; not a guarantee).",
            width=80,
        ),
        epilog=registry_help()
        + "\n\nRun 'product-noise COMMAND --help' for the options of one command.",
        formatter_class=lambda prog: FORMATTER(prog, max_help_position=20),
        allow_abbrev=False,  # --plugin is read before parsing, by its full name only
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE[:CALLABLE]",
        help="import a module that registers mechanisms (or run its CALLABLE) before the "
        f"command; repeatable; also ${PLUGINS_ENV}, comma-separated",
    )
    sub = parser.add_subparsers(dest="command", title="commands")
    for cmd in COMMANDS.values():
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.description,
            epilog=cmd.epilog or None,
            formatter_class=FORMATTER,
        )
        cmd.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``product-noise`` command line; returns the exit status.

    Parameters
    ----------
    argv:
        Arguments without the program name (default: ``sys.argv[1:]``). The plugins of
        ``PRODUCT_NOISE_PLUGINS`` and of the ``--plugin`` options before the subcommand are
        imported before the parser is built.

    Returns
    -------
    int
        0 on success, 2 on bad input (:class:`~product_noise.validation.InputError`, a plugin
        that fails to import included: one ``error: ...`` line on stderr), 1 on other
        failures reported by a subcommand and on an internal error (any other exception:
        ``error: internal error: <type>: <message>`` and a hint; with ``PRODUCT_NOISE_DEBUG=1``
        the traceback too), 130 when interrupted by Ctrl-C, 143 by SIGTERM in a subcommand
        that handles it (``compare``): 128 + the signal's number.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        load_cli_plugins([*env_plugins(), *plugin_arguments(argv, COMMANDS)])
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return COMMANDS[args.command].run(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except InputError as exc:  # CLIError, ConfigError, DatasetNotFoundError, the check_* errors
        error(str(exc))
        return 2
    except KeyboardInterrupt as exc:  # compare raises a subclass for SIGTERM, with its signum
        signum = int(getattr(exc, "signum", 2))  # 2: SIGINT
        error("interrupted" if signum == 2 else f"interrupted (signal {signum})")
        return 128 + signum
    except Exception as exc:  # a bug (or an unforeseen failure), not the user's input
        return _internal_error(exc)


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def _internal_error(exc: Exception) -> int:
    if _debug():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    error(f"internal error: {type(exc).__name__}: {exc}")
    if not _debug():
        print(
            f"hint: not a problem with the input (a bug?); rerun with {DEBUG_ENV}=1 for the "
            "traceback",
            file=sys.stderr,
        )
    return 1
