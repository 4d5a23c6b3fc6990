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
    # accept "1000000" and "1e6"
    try:
        return int(text)
    except ValueError:
        return number(text)


EPSILON = checked(check_epsilon)
DELTA = checked(check_delta)
SENSITIVITY = checked(lambda v: check_positive("sensitivity", v))
DIM = checked(lambda v: check_dimension(v, name="dimension"), integer)
SAMPLES = checked(lambda v: check_positive_int("samples", v), integer)
K = checked(lambda v: check_positive("k", v))


def confidence(text: str) -> float:
    value = checked(lambda v: check_probability("confidence", v))(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"confidence must be < 1, got {text}")
    return value


def seed(text: str) -> int:
    value = checked(lambda v: check_positive_int("seed", v, minimum=0), integer)(text)
    return int(value)
