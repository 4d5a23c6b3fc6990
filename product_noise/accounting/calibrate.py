"""Calibration: monotone searches for the point where a privacy metric meets a target.

Every calibration in the package has the same shape: a privacy metric ``m(x)`` (a δ, or an ε)
is monotone in one parameter ``x`` (an ε, a noise scale, a noise multiplier, …), and the answer
is the extreme ``x`` with ``m(x) ≤ target``: the *smallest* ``x`` when ``m`` decreases
(more noise, less privacy loss), the *largest* when it increases. :func:`calibrate` solves that
problem once, in the style of ``dp_accounting.mechanism_calibration``; :func:`invert_profile`
(ε of a privacy profile δ(ε)), :func:`smallest_scale` and :func:`smallest_noise` are its
common forms.

Conventions
-----------
Bracket
    An :class:`ExplicitBracket` or a :class:`GrowingBracket` whose ends move outwards by a
    constant factor until they enclose the answer. The bracket is the *domain*: when the optimal
    end of the domain already meets the target it is the answer; when no point of the domain
    meets the target, :class:`NoBracketFoundError` is raised.
Tolerance
    One number ``tol``. With ``log_scale=True`` the result lies within a factor ``1 + tol`` of
    the exact crossing; otherwise within ``tol · (1 + |x|)`` of it.
Safe side
    The result is always a point at which the metric was *evaluated* and met the target
    (``m(x) ≤ target``, compared on the raw values). Brent's estimate is returned when it
    qualifies; otherwise the nearest evaluated point beyond it on the safe side (for a monotone
    metric, the far end of Brent's final bracket, within ``tol``). When a *second* accountant
    must also accept the result, :func:`ensure_safe` moves it by the relative step
    :data:`SAFE_STEP` until it does, at most :data:`MAX_NUDGES` times.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

from scipy import optimize

from ..validation import InputError

__all__ = [
    "MAX_EPSILON",
    "TOL",
    "SAFE_STEP",
    "MAX_NUDGES",
    "CalibrationError",
    "NoBracketFoundError",
    "ExplicitBracket",
    "GrowingBracket",
    "calibrate",
    "ensure_safe",
    "invert_profile",
    "smallest_scale",
    "smallest_noise",
]

#: Largest ε searched by :func:`invert_profile` by default: beyond it, ε(δ) is reported ``inf``.
MAX_EPSILON = 1e4
#: Default tolerance of :func:`calibrate` (see the module's conventions).
TOL = 1e-10
#: Default relative step of :func:`ensure_safe`.
SAFE_STEP = 1e-9
#: Default bound on the number of steps :func:`ensure_safe` takes.
MAX_NUDGES = 100
#: Bound on the growth steps of a :class:`GrowingBracket` and on bisection steps.
_MAX_STEPS = 2000
#: Floor of a metric before its logarithm is taken (``log_metric=True``).
_LOG_FLOOR = 1e-300
#: Bound on the magnitude of the gap handed to Brent's method (keeps it finite).
_GAP_CAP = 1e300


class CalibrationError(ValueError):
    """A calibration search failed."""


class NoBracketFoundError(CalibrationError, InputError):
    """No point of the search domain meets the target: the target asked for is out of reach,
    which is bad input (an :class:`~product_noise.validation.InputError`; exit 2 on the CLI)."""


@dataclass(frozen=True)
class ExplicitBracket:
    """The search domain ``[lower, upper]``, searched as given.

    Parameters
    ----------
    lower, upper : float
        Finite ends with ``lower < upper`` (both ``> 0`` for a log-scale search).
    """

    lower: float
    upper: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise CalibrationError(f"bracket ends must be finite, got {self}")
        if not self.lower < self.upper:
            raise CalibrationError(f"need lower < upper, got {self}")


@dataclass(frozen=True)
class GrowingBracket:
    """A first guess ``[lower, upper]`` whose ends grow until they enclose the answer.

    With ``log_scale=True`` an end moves by the factor ``factor`` (``upper · factor``,
    ``lower / factor``); otherwise its distance from the *initial* opposite end is multiplied by
    ``factor``. An evaluated end that lies on the wrong side becomes the new opposite end, so the
    final bracket is one growth step wide. ``lower == upper`` (one guess) is allowed on the log
    scale. The upper end is tried first.

    Parameters
    ----------
    lower, upper : float
        The first guess, ``lower <= upper``.
    factor : float
        Growth factor, ``> 1``.
    min_value, max_value : float, optional
        Limits of the search domain (``None``: unbounded). An end that reaches its limit stops
        there: that limit is the answer if it meets the target, otherwise
        :class:`NoBracketFoundError` is raised.
    """

    lower: float
    upper: float
    factor: float = 2.0
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise CalibrationError(f"bracket guesses must be finite, got {self}")
        if not self.lower <= self.upper:
            raise CalibrationError(f"need lower <= upper, got {self}")
        if not (math.isfinite(self.factor) and self.factor > 1.0):
            raise CalibrationError(f"factor must be finite and > 1, got {self.factor!r}")
        lo = -math.inf if self.min_value is None else self.min_value
        hi = math.inf if self.max_value is None else self.max_value
        if not lo <= self.lower <= self.upper <= hi:
            raise CalibrationError(f"need min_value <= lower <= upper <= max_value, got {self}")


Bracket = ExplicitBracket | GrowingBracket


class _Metric:
    """The metric with its evaluations recorded (each point is evaluated once)."""

    def __init__(self, fn: Callable[[float], float], target: float, log_metric: bool) -> None:
        self.fn, self.target, self.log_metric = fn, target, log_metric
        self.values: dict[float, float] = {}

    def __call__(self, x: float) -> float:
        if x not in self.values:
            self.values[x] = float(self.fn(x))
        return self.values[x]

    def safe(self, x: float) -> bool:
        return self(x) <= self.target

    def gap(self, x: float) -> float:
        """Signed distance to the target: ``< 0`` where ``safe(x)``, ``> 0`` elsewhere, never 0
        (so that Brent's method stops at the boundary of the safe set, not inside a flat part
        of it)."""
        v = self(x)
        if self.log_metric:
            g = math.log(max(v, _LOG_FLOOR)) - math.log(self.target)
        else:
            g = v - self.target
        if math.isnan(g):
            return _GAP_CAP  # an undefined metric counts as not meeting the target
        g = max(-_GAP_CAP, min(g, _GAP_CAP))
        return min(g, -1.0 / _GAP_CAP) if v <= self.target else max(g, 1.0 / _GAP_CAP)


def _describe(metric: _Metric, x: float) -> str:
    return f"the metric is {metric(x):.6g} at x = {x:.6g}, target {metric.target:.6g}"


def _edge(metric: _Metric, x: float, side: str) -> float:
    """End of the search at a limit of the domain: ``x`` if it meets the target, else raise."""
    if metric.safe(x):
        return float(x)
    raise NoBracketFoundError(
        f"no point up to the {side} limit of the search domain meets the target: "
        + _describe(metric, x)
    )


def _power(factor: float, k: int) -> float:
    try:
        return factor**k
    except OverflowError:
        return math.inf


def _grow(bracket: GrowingBracket, metric: _Metric, increasing: bool, log_scale: bool):
    """Grow ``bracket`` until it encloses the crossing: ``(lower, upper)``, or a float answer."""
    lo, hi = bracket.lower, bracket.upper
    lo_lim = -math.inf if bracket.min_value is None else bracket.min_value
    hi_lim = math.inf if bracket.max_value is None else bracket.max_value
    if log_scale and not lo > 0:
        raise CalibrationError(f"a log-scale bracket must be positive, got {bracket}")
    if not log_scale and not lo < hi:
        raise CalibrationError(f"a linear bracket needs lower < upper, got {bracket}")
    width, lo0, hi0 = hi - lo, lo, hi
    for k in range(1, _MAX_STEPS + 1):  # the upper end: safe iff the metric decreases
        if metric.safe(hi) != increasing:
            break
        if hi >= hi_lim:
            return _edge(metric, hi, "upper")
        lo = hi
        step = _power(bracket.factor, k)
        hi = hi0 * step if log_scale else lo0 + width * step
        if not math.isfinite(hi):
            raise NoBracketFoundError(
                "the bracket grew past the float range: " + _describe(metric, lo)
            )
        hi = min(hi, hi_lim)
    else:
        raise NoBracketFoundError(f"no bracket after {_MAX_STEPS} steps: " + _describe(metric, hi))
    for k in range(1, _MAX_STEPS + 1):  # the lower end: safe iff the metric increases
        if metric.safe(lo) == increasing:
            return lo, hi
        if lo <= lo_lim:
            return _edge(metric, lo, "lower")
        hi = lo
        step = _power(bracket.factor, k)
        lo = lo0 / step if log_scale else hi0 - width * step
        if not (math.isfinite(lo) and (lo > 0 or not log_scale)):
            raise NoBracketFoundError(
                "the bracket grew past the float range: " + _describe(metric, hi)
            )
        lo = max(lo, lo_lim)
    raise NoBracketFoundError(f"no bracket after {_MAX_STEPS} steps: " + _describe(metric, lo))


def _close(lo: float, hi: float, tol: float, log_scale: bool) -> bool:
    return hi / lo <= 1.0 + tol if log_scale else hi - lo <= tol * (1.0 + abs(lo))


def _bisect(metric: _Metric, lo: float, hi: float, increasing: bool, tol: float, log_scale: bool):
    """Bisection (geometric on the log scale) down to ``tol``; returns the safe end."""
    for _ in range(_MAX_STEPS):
        if _close(lo, hi, tol, log_scale):
            break
        if log_scale:
            prod = lo * hi
            mid = math.sqrt(prod) if 0 < prod < math.inf else math.sqrt(lo) * math.sqrt(hi)
        else:
            mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        if metric.safe(mid) == increasing:
            lo = mid
        else:
            hi = mid
    return lo if increasing else hi


def _brent(metric: _Metric, lo: float, hi: float, increasing: bool, tol: float, log_scale: bool):
    """Brent's method on the gap, then the safe-side rule of the module.

    Falls back to bisection if Brent's method does not converge (pathological metrics only).
    """
    opts = dict(full_output=True, disp=False)
    if log_scale:
        ends = {math.log(lo): lo, math.log(hi): hi}  # the evaluated ends, not exp(ln x)

        def gap(t: float) -> float:
            return metric.gap(ends.get(t, math.exp(t)))

        u, info = optimize.brentq(gap, math.log(lo), math.log(hi), xtol=math.log1p(tol), **opts)
        x = min(max(ends.get(u, math.exp(u)), lo), hi)
    else:
        rtol = max(tol, 4 * 2.0**-52)
        x, info = optimize.brentq(metric.gap, lo, hi, xtol=tol, rtol=rtol, **opts)
    if not info.converged:
        return _bisect(metric, lo, hi, increasing, tol, log_scale)
    if metric.safe(x):
        return x
    # beyond Brent's estimate on the safe side, the nearest point evaluated safe (the safe end
    # of the bracket always qualifies)
    beyond = [p for p in metric.values if (p < x if increasing else p > x) and metric.safe(p)]
    return max(beyond) if increasing else min(beyond)


def calibrate(
    fn: Callable[[float], float],
    target: float,
    bracket: Bracket,
    *,
    increasing: bool,
    tol: float = TOL,
    log_scale: bool = False,
    log_metric: bool = False,
    method: Literal["brentq", "bisect"] = "brentq",
) -> float:
    """The extreme ``x`` of the bracket's domain with ``fn(x) <= target``, for monotone ``fn``.

    Parameters
    ----------
    fn : callable
        The metric ``x -> m(x)``, monotone in ``x`` (non-strictly: steps and flat regions are
        fine).
    target : float
        The value ``m`` must not exceed (``> 0`` with ``log_metric=True``).
    bracket : ExplicitBracket or GrowingBracket
        Where to search (see the classes).
    increasing : bool
        ``True``: ``m`` increases with ``x`` and the *largest* ``x`` with ``m(x) <= target`` is
        returned; ``False``: ``m`` decreases and the *smallest* such ``x`` is returned.
    tol : float
        Tolerance (module conventions): a factor ``1 + tol`` with ``log_scale=True``, otherwise
        ``tol · (1 + |x|)``.
    log_scale : bool
        Search over ``ln x`` (``x > 0``), for scale-like parameters.
    log_metric : bool
        Solve ``ln m(x) = ln target`` (for a δ spanning many decades); the safe-side test is on
        the raw values in any case.
    method : {"brentq", "bisect"}
        Brent's method, or plain bisection (for coarse ``tol`` and costly ``fn``).

    Returns
    -------
    float
        A point at which ``fn`` was evaluated and met the target, within ``tol`` of the optimum
        when ``fn`` is monotone (for a non-monotone ``fn``: still a point meeting the target).

    Raises
    ------
    NoBracketFoundError
        If no point of the domain meets the target (or a growing bracket leaves the float range).
    CalibrationError
        On invalid arguments.
    """
    if not tol > 0:
        raise CalibrationError(f"tol must be > 0, got {tol!r}")
    if math.isnan(target) or (log_metric and not target > 0):
        raise CalibrationError(f"target must be a number (> 0 with log_metric), got {target!r}")
    if method not in ("brentq", "bisect"):
        raise CalibrationError(f"method must be 'brentq' or 'bisect', got {method!r}")
    metric = _Metric(fn, target, log_metric)
    if isinstance(bracket, ExplicitBracket):
        if log_scale and not bracket.lower > 0:
            raise CalibrationError(f"a log-scale bracket must be positive, got {bracket}")
        lo, hi = bracket.lower, bracket.upper
        if metric.safe(hi) == increasing:  # the optimal end of the domain
            return _edge(metric, hi, "upper")
        if metric.safe(lo) != increasing:
            return _edge(metric, lo, "lower")
    elif isinstance(bracket, GrowingBracket):
        found = _grow(bracket, metric, increasing, log_scale)
        if isinstance(found, float):
            return found
        lo, hi = found
    else:
        raise TypeError(f"bracket must be an ExplicitBracket or a GrowingBracket, got {bracket!r}")
    search = _brent if method == "brentq" else _bisect
    return float(search(metric, lo, hi, increasing, tol, log_scale))


def ensure_safe(
    fn: Callable[[float], float],
    x: float,
    target: float,
    *,
    increasing: bool,
    step: float = SAFE_STEP,
    max_nudges: int = MAX_NUDGES,
) -> float:
    """Move ``x`` towards the safe side until ``fn(x) <= target`` (for a second accountant).

    Each step multiplies ``x`` by ``1 + step`` (decreasing ``fn``) or ``1 - step`` (increasing
    ``fn``).

    Parameters
    ----------
    fn : callable
        The metric, monotone in ``x``.
    x : float
        The starting point, ``> 0``.
    target : float
        The value ``fn`` must not exceed.
    increasing : bool
        Whether ``fn`` increases with ``x`` (then ``x`` is lowered).
    step : float
        Relative step, in ``(0, 1)``.
    max_nudges : int
        Largest number of steps.

    Returns
    -------
    float
        The first point of the sequence at which ``fn`` meets the target.

    Raises
    ------
    CalibrationError
        If ``fn`` still exceeds the target after ``max_nudges`` steps, or on invalid arguments.
    """
    if not (0 < step < 1) or not x > 0:
        raise CalibrationError(f"need 0 < step < 1 and x > 0, got step={step!r}, x={x!r}")
    factor = 1.0 - step if increasing else 1.0 + step
    for _ in range(max_nudges + 1):
        value = float(fn(x))
        if value <= target:
            return x
        last, x = x, x * factor
    raise CalibrationError(
        f"the metric still exceeds the target after {max_nudges} steps of {step:g}: "
        f"{value:.6g} at x = {last:.6g}, target {target:.6g}"
    )


def invert_profile(
    delta_of_eps: Callable[[float], float],
    delta: float,
    *,
    lower: float = 0.0,
    guess: float | None = None,
    max_epsilon: float = MAX_EPSILON,
    tol: float = TOL,
) -> float:
    """Smallest ε ``>= lower`` with ``δ(ε) <= delta`` of a non-increasing privacy profile.

    Parameters
    ----------
    delta_of_eps : callable
        The profile ``ε -> δ(ε)``.
    delta : float
        Target δ, ``> 0``.
    lower : float
        Smallest ε considered (``0`` for a profile; a pure part of the loss otherwise).
    guess : float, optional
        First trial upper end of the search (default ``lower + 1``); the distance from
        ``lower`` doubles until the profile meets ``delta``.
    max_epsilon : float
        Largest ε searched (may be ``inf``).
    tol : float
        Tolerance: ``|ε − ε*| <= tol · (1 + ε*)``.

    Returns
    -------
    float
        ``lower`` if ``δ(lower) <= delta``; ``inf`` if no ε up to ``max_epsilon`` reaches
        ``delta``; otherwise an ε at which ``δ(ε) <= delta`` was evaluated, within ``tol`` of the
        smallest one. The search works on ``ln δ``.

    Raises
    ------
    CalibrationError
        If ``delta`` is not ``> 0`` or ``guess`` not above ``lower``.
    """
    if not delta > 0:
        raise CalibrationError(f"delta must be > 0, got {delta!r}")
    guess = lower + 1.0 if guess is None else guess
    if not lower < guess:
        raise CalibrationError(f"need lower < guess, got lower={lower!r}, guess={guess!r}")
    profile = cache(lambda e: float(delta_of_eps(e)))
    if profile(lower) <= delta:
        return float(lower)
    if math.isfinite(max_epsilon) and (lower >= max_epsilon or profile(max_epsilon) > delta):
        return math.inf
    bracket = GrowingBracket(lower, min(guess, max_epsilon), factor=2.0, max_value=max_epsilon)
    try:
        return calibrate(profile, delta, bracket, increasing=False, tol=tol, log_metric=True)
    except NoBracketFoundError:  # only for an infinite cap: δ does not reach delta
        return math.inf


def smallest_scale(
    metric_of_scale: Callable[[float], float],
    target: float,
    bracket: Bracket,
    *,
    tol: float = TOL,
    log_metric: bool = True,
) -> float:
    """Smallest noise scale ``s`` with ``metric(s) <= target``, for a metric decreasing in ``s``.

    A log-scale :func:`calibrate` (Brent's method); the result is on the safe (larger) side.

    Parameters
    ----------
    metric_of_scale : callable
        ``s -> δ`` (or ``s -> ε`` with ``log_metric=False``) at the calibration point.
    target : float
        The value the metric must not exceed.
    bracket : ExplicitBracket or GrowingBracket
        Where to search, in scale units (``> 0``).
    tol : float
        Relative tolerance on ``s``.
    log_metric : bool
        Solve on ``ln metric`` (the default, for δ).

    Returns
    -------
    float
        A scale at which the metric was evaluated and met the target.

    Raises
    ------
    NoBracketFoundError
        If no scale of the bracket's domain meets the target.
    """
    return calibrate(
        metric_of_scale,
        target,
        bracket,
        increasing=False,
        tol=tol,
        log_scale=True,
        log_metric=log_metric,
    )


def smallest_noise(
    epsilon_of: Callable[[float], float],
    target_epsilon: float,
    *,
    rtol: float,
    low: float,
    high: float,
    what: str = "",
) -> float:
    """Smallest noise level ``s`` in ``[low, high]`` with ``epsilon_of(s) <= target_epsilon``.

    For costly accountants (a PLD or RDP composition per call): the bracket grows from ``s = 1``
    by doubling (upwards first: small noise levels are the expensive ones for PLD grids), then
    bisection on ``ln s`` down to a factor ``1 + rtol``; the result is on the safe (larger) side.

    Parameters
    ----------
    epsilon_of : callable
        ``s -> ε``, non-increasing.
    target_epsilon : float
        The ε not to exceed.
    rtol : float
        Relative tolerance, in ``(0, 0.5)``.
    low, high : float
        The domain, ``0 < low <= 1 <= high``.
    what : str
        Names the setting in error messages.

    Returns
    -------
    float
        ``low`` when even ``low`` meets the target, else a noise level meeting the target within
        a factor ``1 + rtol`` of the smallest one.

    Raises
    ------
    NoBracketFoundError
        If ``high`` does not meet the target.
    CalibrationError
        On invalid ``rtol``, ``low`` or ``high``.
    """
    if not (0 < rtol < 0.5):
        raise CalibrationError(f"rtol must lie in (0, 0.5), got {rtol!r}")
    if not (0 < low <= 1.0 <= high):
        raise CalibrationError(f"need 0 < low <= 1 <= high, got low={low!r}, high={high!r}")
    bracket = GrowingBracket(1.0, 1.0, factor=2.0, min_value=low, max_value=high)
    try:
        return calibrate(
            epsilon_of,
            target_epsilon,
            bracket,
            increasing=False,
            tol=rtol,
            log_scale=True,
            method="bisect",
        )
    except NoBracketFoundError as err:
        raise NoBracketFoundError(
            f"target_epsilon={target_epsilon} is not reachable with noise <= {high:g}"
            + (f" ({what})" if what else "")
        ) from err
