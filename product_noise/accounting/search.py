"""Calibration by search: the smallest noise level whose ε meets a target.

Every accountant in the package is decreasing in its noise level (a noise multiplier, σ or
``s_eff``), so one bracketing-and-bisection routine serves them all; each caller passes its own
ε function and limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..validation import InputError

__all__ = ["smallest_noise"]


def smallest_noise(
    epsilon_of: Callable[[float], float],
    target_epsilon: float,
    *,
    rtol: float,
    low: float,
    high: float,
    what: str = "",
) -> float:
    """Smallest noise level ``s`` in ``[low, high]``, up to a factor ``1 + rtol`` and on the
    safe (larger) side, with ``epsilon_of(s) <= target_epsilon``.

    The bracket grows from ``s = 1`` by doubling (upwards first: small noise levels are the
    expensive ones for PLD grids), then bisection on ``ln s``. Returns ``low`` when even
    ``low`` meets the target.

    Raises
    ------
    ValueError
        If ``high`` does not meet the target (``what`` names the setting in the message).
    """
    if not (0 < rtol < 0.5):
        raise ValueError(f"rtol must lie in (0, 0.5), got {rtol!r}")
    if not (0 < low <= 1.0 <= high):
        raise ValueError(f"need 0 < low <= 1 <= high, got low={low!r}, high={high!r}")
    hi = 1.0
    while epsilon_of(hi) > target_epsilon:
        if hi >= high:
            raise InputError(
                f"target_epsilon={target_epsilon} is not reachable with noise <= {high:g}"
                + (f" ({what})" if what else "")
            )
        hi = min(hi * 2.0, high)
    if hi > 1.0:
        lo = hi / 2.0  # known to miss the target
    else:
        lo = hi
        while epsilon_of(lo) <= target_epsilon:
            if lo <= low:
                return low
            hi, lo = lo, max(lo / 2.0, low)
    while hi / lo > 1.0 + rtol:
        mid = math.sqrt(lo * hi)
        if epsilon_of(mid) > target_epsilon:
            lo = mid
        else:
            hi = mid
    return hi
