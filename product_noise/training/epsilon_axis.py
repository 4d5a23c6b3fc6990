"""One way to draw accuracy against privacy: verified ε filled, claimed ε hollow.

Used by ``product-noise compare`` and ``product-noise gridsearch``, so that no plot puts a
claimed ε on an axis without the verified ε of the same run beside it. A verified ε of ``inf``
is drawn at the right edge of the axis (``▶``, tick label ``∞``), never left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["epsilon_limits", "draw_claimed_verified", "finish_epsilon_axis", "X_LABEL"]

#: the x-axis label of every accuracy-vs-ε plot
X_LABEL = "verified ε (filled); claimed ε (hollow, dotted to verified)"


def epsilon_limits(values: Iterable[Any]) -> tuple[float, float]:
    """``(lo, inf_x)``: the left end of a log ε axis and the position drawn for ε = ∞."""
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v) and v > 0]
    lo = min(finite) / 1.6 if finite else 0.1
    return lo, (max(finite) if finite else 10.0) * 3.0


def draw_claimed_verified(
    ax: Any,
    verified: Sequence[float],
    claimed: Sequence[float | None],
    y: Sequence[float],
    yerr: Sequence[float],
    *,
    color: str,
    label: str,
    inf_x: float,
    marker: str = "o",
) -> bool:
    """Draw one series: filled markers at the verified ε (a line through the finite ones), and
    for each point whose claimed ε differs from it by more than 1%, a hollow marker at the
    claimed ε joined to it by a dotted line. Returns whether a verified ε was infinite."""
    xs = np.asarray(verified, dtype=float)
    ys = np.asarray(y, dtype=float)
    plot_x = np.where(np.isinf(xs), inf_x, xs)
    fin = np.isfinite(xs)
    ax.plot(plot_x[fin], ys[fin], "-", color=color, lw=1.4)
    ax.errorbar(plot_x, ys, yerr=yerr, fmt=marker, color=color, ms=5, capsize=2, label=label)
    if (~fin).any():
        ax.plot(plot_x[~fin], ys[~fin], marker=">", ls="none", color=color, ms=9)
    for c, v, px, yy in zip(claimed, xs, plot_x, ys):
        if not (isinstance(c, float) and math.isfinite(c) and c > 0):
            continue
        if math.isfinite(v) and abs(c - v) <= 0.01 * max(v, 1e-12):
            continue  # claimed = verified: one marker
        ax.plot([c, px], [yy, yy], ":", color=color, lw=1)
        ax.plot(c, yy, marker, mfc="none", mec=color, ms=7)
    return bool((~fin).any())


def finish_epsilon_axis(ax: Any, lo: float, inf_x: float, any_inf: bool) -> None:
    """Log x-axis from ``lo`` with the ∞ column marked when a verified ε was infinite."""
    import matplotlib.ticker

    if any_inf:
        ax.axvline(inf_x, color="0.6", lw=0.8, ls="--")
        ax.text(
            inf_x / 1.15,
            0.04,
            "verified ε = ∞ ▶",
            rotation=90,
            va="bottom",
            ha="right",
            fontsize=8,
            color="0.25",
        )
    ax.set_xscale("log")
    ax.set_xlim(lo, inf_x * 1.6)
    if any_inf:
        ticks = [t for t in (0.01, 0.1, 1, 10, 100, 1000) if lo <= t < inf_x / 2]
        ax.set_xticks([*ticks, inf_x], [f"{t:g}" for t in ticks] + ["∞"])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(X_LABEL)
