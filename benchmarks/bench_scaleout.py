"""Scale-out check: ``product-noise compare`` with N worker processes against one process.

Runs the same comparison (the default one, or ``--quick``) with ``--workers 1`` and then with
``--workers N`` (default 2) in this one invocation, each in a fresh subprocess and a fresh
output folder, and prints both wall times, their ratio, and whether the two ``results.csv``
agree on every accuracy and ε column (they must: each run seeds itself). The target of issue 20
is a ratio <= 0.6 for the default comparison with 2 workers on 2 cores. With ``--dask`` a third
invocation runs on a local Dask cluster of N workers.

The ratio is measured in one run, so a load on the machine slows both sides; for a clean figure
run it on an otherwise idle machine.

Usage::

    PYTHONPATH=. python benchmarks/bench_scaleout.py            # the default comparison
    PYTHONPATH=. python benchmarks/bench_scaleout.py --quick --dask
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.6
SAME = ("accuracy", "claimed_epsilon", "verified_epsilon", "noise_scale", "dim", "steps")


def _run(extra: list[str], out: Path) -> float:
    cmd = [sys.executable, "-m", "product_noise.cli", "compare", "--no-plots", "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run([*cmd, *extra, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _rows(out: Path) -> dict[str, dict[str, str]]:
    from product_noise.compare.report import read_results  # finished runs, not failed ones

    return {r["run_id"]: r for r in read_results(out / "results.csv")}


def _differences(a: Path, b: Path) -> int:
    ra, rb = _rows(a), _rows(b)
    if set(ra) != set(rb):
        return len(set(ra) ^ set(rb))
    return sum(ra[k][c] != rb[k][c] for k in ra for c in SAME)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the quick comparison (CI size)")
    p.add_argument("--workers", type=int, default=2, help="worker processes to compare (2)")
    p.add_argument("--dask", action="store_true", help="also run on a local Dask cluster")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = p.parse_args(argv)
    base = ["--quick"] if args.quick else []
    with tempfile.TemporaryDirectory() as tmp:
        one = _run([*base, "--workers", "1"], Path(tmp) / "w1")
        many = _run([*base, "--workers", str(args.workers)], Path(tmp) / "wn")
        figures = {
            "comparison": "quick" if args.quick else "default",
            "workers": args.workers,
            "seconds_one_process": round(one, 1),
            "seconds_workers": round(many, 1),
            "ratio": round(many / one, 3),
            "differing_cells": _differences(Path(tmp) / "w1", Path(tmp) / "wn"),
        }
        if args.dask:
            dask_args = ["--executor", "dask", "--scheduler", "local"]
            t = _run([*base, "--workers", str(args.workers), *dask_args], Path(tmp) / "dask")
            figures["seconds_dask_local"] = round(t, 1)
            figures["ratio_dask"] = round(t / one, 3)
            figures["differing_cells_dask"] = _differences(Path(tmp) / "w1", Path(tmp) / "dask")
    for k, v in figures.items():
        print(f"{k:24s} {v}")
    ok = figures["ratio"] <= TARGET and figures["differing_cells"] == 0
    print(f"target: ratio <= {TARGET} with identical results: {'PASS' if ok else 'FAIL'}")
    if args.out is not None:
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
