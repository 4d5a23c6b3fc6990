"""Benchmark of the DPMix publisher (one run prints everything).

Setting (issue): publish T = 10,000 mixes of l = 256 records from a 60,000 x 784 float32 matrix
(pixels in [0, 1], 10 one-hot classes). Targets: <= 5 s, >= 20x faster than a straightforward
per-sample Python loop measured in the same run, peak memory <= 2 GB.

Baselines (each timed on a subset and extrapolated to T):

* ``thesis loop`` - the thesis' App. A.1 code: per sample ``np.random.choice(n, l,
  replace=False)``, a dense weight vector ``C_t`` and ``X.T @ C_t`` (float64 promotion of X);
* ``gather loop`` - a careful per-sample loop: ``rng.choice`` + ``X[idx].mean(0)``.

Memory: peak RSS of the process (``resource``; includes X, the output and torch) measured right
after the vectorised run and before the baselines, and the tracemalloc peak of Python/NumPy
allocations during the publish (torch's own buffers are not traced by tracemalloc).

Run: ``PYTHONPATH=. python benchmarks/bench_dpmix.py``
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
import torch

from dpmix import DPMix, one_hot


def _thesis_loop(X: np.ndarray, Y: np.ndarray, l: int, sigma: float, count: int) -> float:
    n, d = X.shape
    t0 = time.perf_counter()
    for _ in range(count):
        idx = np.random.choice(n, l, replace=False)  # noqa: NPY002 - verbatim thesis code
        c = np.zeros(n)
        c[idx] = 1 / l
        _x = X.T @ c + np.random.normal(0, sigma, d)  # noqa: NPY002
        _y = Y.T @ c + np.random.normal(0, sigma, Y.shape[1])  # noqa: NPY002
    return (time.perf_counter() - t0) / count


def _gather_loop(X: np.ndarray, Y: np.ndarray, l: int, sigma: float, count: int) -> float:
    n, d = X.shape
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(count):
        idx = rng.choice(n, l, replace=False)
        _x = X[idx].mean(axis=0) + sigma * rng.standard_normal(d, dtype=np.float32)
        _y = Y[idx].mean(axis=0) + sigma * rng.standard_normal(Y.shape[1], dtype=np.float32)
    return (time.perf_counter() - t0) / count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60_000)
    p.add_argument("--dim", type=int, default=784)
    p.add_argument("--l", type=int, default=256)
    p.add_argument("--T", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--thesis-samples", type=int, default=10)
    p.add_argument("--gather-samples", type=int, default=1000)
    args = p.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.random((args.n, args.dim), dtype=np.float32)
    Y = one_hot(rng.integers(0, 10, args.n), 10)
    sigma = 0.0711
    print(
        f"DPMix publish: n={args.n}, d={args.dim} float32, l={args.l}, T={args.T}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB (Linux: KB)

    mix = DPMix(args.l, args.T, sigma, seed=0, progress=False)
    mix.publish(X[: 2 * args.l], Y[: 2 * args.l])  # warm-up (imports, thread pool)
    times = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        Xs, Ys = mix.publish(X, Y, seed=r)
        times.append(time.perf_counter() - t0)
        del Xs, Ys
    tracemalloc.start()  # separate run: tracing slows allocations down
    Xs, Ys = mix.publish(X, Y, seed=args.repeats)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del Xs, Ys
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best, med = min(times), float(np.median(times))

    t_thesis = _thesis_loop(X, Y, args.l, sigma, args.thesis_samples) * args.T
    t_gather = _gather_loop(X, Y, args.l, sigma, args.gather_samples) * args.T

    print()
    print(f"{'method':<34}{'time for T (s)':>16}{'speed-up of DPMix':>20}")
    print(f"{'DPMix.publish (vectorised), best':<34}{best:>16.3f}{'':>20}")
    print(f"{'DPMix.publish, median of ' + str(args.repeats):<34}{med:>16.3f}{'':>20}")
    print(
        f"{'thesis loop (App. A.1), extrap.':<34}{t_thesis:>16.1f}{t_thesis / med:>19.0f}x"
        f"   ({args.thesis_samples} samples timed)"
    )
    print(
        f"{'gather loop, extrapolated':<34}{t_gather:>16.2f}{t_gather / med:>19.1f}x"
        f"   ({args.gather_samples} samples timed)"
    )
    print()
    print(f"peak RSS of the process after the publishes: {rss:.0f} MB (before: {rss0:.0f} MB;")
    print(
        f"  input X = {X.nbytes / 2**20:.0f} MB, output = {args.T * args.dim * 4 / 2**20:.0f} MB)"
    )
    print(f"tracemalloc peak (NumPy/Python) during publish: {traced_peak / 2**20:.0f} MB")
    ok_time = med <= 5.0
    ok_speed = t_thesis / med >= 20
    ok_mem = rss <= 2048
    print()
    print(
        f"targets: time <= 5 s: {'PASS' if ok_time else 'FAIL'}; >= 20x the straightforward "
        f"(thesis) loop: {'PASS' if ok_speed else 'FAIL'}; peak <= 2 GB: "
        f"{'PASS' if ok_mem else 'FAIL'}"
    )
    if t_gather / med < 20:
        print(
            f"note: against the careful gather loop the speed-up is only {t_gather / med:.1f}x; "
            "the work is memory-bound (T*l*d*4 bytes = "
            f"{args.T * args.l * args.dim * 4 / 1e9:.1f} GB of row reads)"
        )
    return 0 if (ok_time and ok_speed and ok_mem) else 1


if __name__ == "__main__":
    raise SystemExit(main())
