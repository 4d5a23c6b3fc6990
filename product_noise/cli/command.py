"""The subcommand framework: :class:`Command`, the registry :data:`COMMANDS` and the
input-error type :class:`CLIError`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ..validation import InputError

__all__ = ["CLIError", "Command", "COMMANDS", "register", "FORMATTER", "Parser", "error", "warn"]


class CLIError(InputError):
    """Bad command-line input: reported as one ``error: ...`` line, exit status 2.

    An :class:`~product_noise.validation.InputError` (so also a ``ValueError``)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{message} (see '{self.prog} --help')")


FORMATTER = argparse.RawDescriptionHelpFormatter


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


# ---------------------------------------------------------------- output helpers
def error(message: str) -> None:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)


def warn(message: str) -> None:
    print("warning: " + " ".join(str(message).split()), file=sys.stderr)
