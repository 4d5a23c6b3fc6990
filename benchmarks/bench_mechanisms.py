"""Speed of the exact (verified) privacy profile and of calibration in high dimension.

Measured in one run, each against the closed-form analytic Gaussian as the same-run baseline:

* δ(ε) of spherical product noise and of the ℓ2 mechanism at M = 10⁶, one ε per call
  (target ≤ 50 ms per point), baseline: the closed-form aGM δ(ε) (Balle & Wang, Thm 8);
* calibration to a target (ε, δ) at M = 10⁶ for product noise and the ℓ2 mechanism
  (target ≤ 1 s), baseline: analytic-Gaussian calibration.

Each figure is the median over ``--repeats`` timed runs after a first run, whose time is shown
too. Pass/fail uses the median.

Usage::

    python benchmarks/bench_mechanisms.py [--dim 1000000] [--repeats 5]

Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from product_noise.mechanisms import Gaussian, L2Mechanism, Mechanism, ProductNoise

DELTA_TARGET_S = 0.050
CALIBRATE_TARGET_S = 1.0


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timings(fn: Callable[[], object], repeats: int, per: int = 1) -> tuple[float, float]:
    """``(first, median of the next repeats)`` wall time of ``fn()`` in seconds, divided by
    ``per`` (the number of points one call evaluates)."""
    first = _timed(fn)
    return first / per, statistics.median(_timed(fn) for _ in range(repeats)) / per


def per_point(mech: Mechanism, epsilons: np.ndarray) -> Callable[[], None]:
    """One scalar ``delta(ε)`` call per ε (the way calibration and accounting query it)."""

    def run() -> None:
        for e in epsilons:
            mech.delta(float(e))

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=1_000_000, help="M (default: %(default)d)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default: %(default)d)")
    parser.add_argument("--epsilon", type=float, default=1.0, help="target ε for calibration")
    parser.add_argument("--delta", type=float, default=1e-5, help="target δ for calibration")
    args = parser.parse_args(argv)
    dim, reps, eps, delta = args.dim, args.repeats, args.epsilon, args.delta
    grid = np.geomspace(0.1, 8.0, 16)

    # the mechanisms whose profile is timed: product noise at the paper's calibration (the
    # noise the official code adds) and the verified ℓ2 / analytic Gaussian at (ε, δ)
    product = ProductNoise.from_paper(dim, eps, target_delta=delta)
    l2 = L2Mechanism.calibrate(eps, delta, dim)
    gauss = Gaussian.calibrate(eps, delta, dim)

    n = len(grid)
    _, t_gauss_delta = timings(per_point(gauss, grid), reps, n)
    _, t_gauss_cal = timings(lambda: Gaussian.calibrate(eps, delta, dim), reps)
    rows = [
        (
            f"δ(ε) product noise (sup over shifts), M={dim:g}, per point",
            timings(per_point(product, grid), reps, n),
            t_gauss_delta,
            DELTA_TARGET_S,
        ),
        (
            f"δ(ε) ℓ2 mechanism (sup over shifts), M={dim:g}, per point",
            timings(per_point(l2, grid), reps, n),
            t_gauss_delta,
            DELTA_TARGET_S,
        ),
        (
            f"calibrate product noise to (ε={eps:g}, δ={delta:g}), M={dim:g}",
            timings(lambda: ProductNoise.calibrate(eps, delta, dim), reps),
            t_gauss_cal,
            CALIBRATE_TARGET_S,
        ),
        (
            f"calibrate ℓ2 mechanism to (ε={eps:g}, δ={delta:g}), M={dim:g}",
            timings(lambda: L2Mechanism.calibrate(eps, delta, dim), reps),
            t_gauss_cal,
            CALIBRATE_TARGET_S,
        ),
    ]

    print(
        f"baseline (same run): closed-form aGM δ(ε) {1e3 * t_gauss_delta:.4f} ms per point, "
        f"aGM calibration {1e3 * t_gauss_cal:.3f} ms"
    )
    print(f"times: first call, then the median of {reps} more; δ(ε) over {n} ε in [0.1, 8]")
    print()
    width = max(len(r[0]) for r in rows)
    cols = f"{'first':>10}  {'median':>10}  {'÷ aGM':>7}  {'target':>9}  result"
    print(f"{'benchmark':<{width}}  {cols}")
    failed = False
    for name, (first, t), base, target in rows:
        ok = t <= target
        failed |= not ok
        print(
            f"{name:<{width}}  {1e3 * first:>7.2f} ms  {1e3 * t:>7.2f} ms  {t / base:>6.0f}×  "
            f"≤ {1e3 * target:>4.0f} ms  {'PASS' if ok else 'FAIL'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
