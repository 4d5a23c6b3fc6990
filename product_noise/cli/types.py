"""Argument types shared by every subcommand: each converts the text and applies one of the
package's checks, so bad input is one clear ``error:`` line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..validation import (
    check_delta,
    check_dimension,
    check_epsilon,
    check_positive,
    check_positive_int,
    check_probability,
)


# ---------------------------------------------------------------- argument types
def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def checked(
    check: Callable[[Any], Any], convert: Callable[[str], Any] = number
) -> Callable[[str], Any]:
    """An argparse ``type=`` that converts ``text`` and applies one of the package's checks."""

    def parse(text: str) -> Any:
        try:
            return check(convert(text))
        except (ValueError, TypeError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def integer(text: str) -> int | float:
    """``"1000000"`` as an int; ``"1e6"`` as a float, which the integer checks accept when it is
    integer-valued (1e3) and reject otherwise (1.5): one rule for every integer option."""
    try:
        return int(text)
    except ValueError:
        return number(text)


def positive_int(name: str, *, minimum: int = 1) -> Callable[[str], int]:
    """An integer option ≥ ``minimum`` (integer-valued floats such as ``1e3`` accepted)."""
    parse = checked(lambda v: check_positive_int(name, v, minimum=minimum), integer)

    def parse_int(text: str) -> int:
        return int(parse(text))

    return parse_int


def nonnegative_int(name: str) -> Callable[[str], int]:
    """An integer option ≥ 0 (a seed, a worker count)."""
    return positive_int(name, minimum=0)


def positive_float(name: str) -> Callable[[str], float]:
    """A finite number > 0."""
    return checked(lambda v: check_positive(name, v))


def probability(name: str, *, allow_zero: bool = False) -> Callable[[str], float]:
    """A probability in (0, 1] (or [0, 1] with ``allow_zero``)."""
    return checked(lambda v: check_probability(name, v, allow_zero=allow_zero))


EPSILON = checked(check_epsilon)
DELTA = checked(check_delta)
SENSITIVITY = positive_float("sensitivity")
DIM = checked(lambda v: check_dimension(v, name="dimension"), integer)
SAMPLES = positive_int("samples")
K = positive_float("k")
#: a seed: an integer ≥ 0 (``1e3`` accepted, ``1.5`` and ``-1`` refused)
SEED = nonnegative_int("seed")


def confidence(text: str) -> float:
    value = probability("confidence")(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"confidence must be < 1, got {text}")
    return value


def seed(text: str) -> int:
    return SEED(text)
