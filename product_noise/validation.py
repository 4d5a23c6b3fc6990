"""Argument checks shared by every public entry point.

Each check raises :class:`InputError` (a :class:`ValueError`) or :class:`TypeError` with a message
that names the argument, the value received and the range expected, before any state is changed.

:class:`InputError` marks bad input from the user (an argument, a setting, a missing data file):
the command line reports it in one ``error: ...`` line with exit status 2, while any other
exception is an internal error (exit status 1). Raise it, not a bare ``ValueError``, where a
value the user chose is wrong.
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real
from pathlib import Path

__all__ = [
    "InputError",
    "UnverifiedError",
    "check_epsilon",
    "check_delta",
    "check_positive",
    "check_nonnegative",
    "check_dimension",
    "check_probability",
    "check_positive_int",
    "check_confidence",
    "check_output_dir",
]


class InputError(ValueError):
    """Bad input from the user: a message naming what to change (exit status 2 on the CLI)."""


class UnverifiedError(InputError):
    """A verified figure or a profile-based calibration was asked of an unverified mechanism
    (one registered with a sampler only): the package refuses rather than print a number."""


def _as_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    return float(value)


def check_positive(name: str, value: object, *, allow_inf: bool = False) -> float:
    """Return ``value`` as a float after checking it is finite (or +inf if allowed) and > 0."""
    v = _as_float(name, value)
    if math.isnan(v) or (math.isinf(v) and not (allow_inf and v > 0)):
        raise InputError(f"{name} must be a finite positive number, got {value!r}")
    if v <= 0:
        raise InputError(f"{name} must be > 0, got {value!r}")
    return v


def check_nonnegative(name: str, value: object) -> float:
    """Return ``value`` as a float after checking it is finite and >= 0."""
    v = _as_float(name, value)
    if not (math.isfinite(v) and v >= 0):
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_epsilon(value: object, name: str = "epsilon") -> float:
    """Check a privacy parameter ε: finite and strictly positive."""
    return check_positive(name, value)


def check_delta(value: object, name: str = "delta") -> float:
    """Check a privacy parameter δ: strictly inside (0, 1)."""
    v = _as_float(name, value)
    if not (0.0 < v < 1.0):
        raise InputError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return v


def check_probability(name: str, value: object, *, allow_zero: bool = False) -> float:
    """Check a probability in (0, 1] (or [0, 1] when ``allow_zero``)."""
    v = _as_float(name, value)
    lo_ok = v >= 0.0 if allow_zero else v > 0.0
    if math.isnan(v) or not lo_ok or v > 1.0:
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise InputError(f"{name} must lie in {interval}, got {value!r}")
    return v


def check_confidence(confidence: object) -> float:
    """Check a confidence level strictly inside (0, 1) (a ``ValueError`` for non-numbers too)."""
    if isinstance(confidence, bool) or not isinstance(confidence, Real):
        raise InputError(f"confidence must be a number in (0, 1), got {confidence!r}")
    c = float(confidence)
    if not (0.0 < c < 1.0):
        raise InputError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return c


def check_positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Check an integer ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if v < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return v


def check_dimension(value: object, *, minimum: int = 1, name: str = "dim") -> int:
    """Check the noise dimension M (number of coordinates the noise vector has)."""
    return check_positive_int(name, value, minimum=minimum)


def check_output_dir(path: str | os.PathLike[str], name: str = "--out") -> Path:
    """Create the output directory ``path`` (with parents) and return it, or raise one clear
    :class:`ValueError` if it is an existing file, cannot be created or is not writable.

    Called before any work starts, so that a bad ``--out`` loses nothing.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{name} {str(p)!r} is an existing file, not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{name} {str(p)!r}: cannot create the directory ({reason})") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise InputError(f"{name} {str(p)!r}: the directory is not writable")
    return p
