"""Benchmark of ``product-noise compare`` (one run prints everything).

Targets (issue): the default comparison ≤ 5 minutes and ``--quick`` ≤ 1 minute on a 2-core
machine; the per-run overhead of the harness (everything but training and calibration or
accounting: planning, bookkeeping, CSV rows, progress bars) ≤ 5 % of the run time.

Measured per preset, in process through :func:`product_noise.compare.run_compare` into a
temporary directory:

* wall time of the whole command (planning, runs, report and plots) against its budget;
* time in training, time the runs waited for calibration/accounting (computed in worker
  processes, once per key), harness overhead summed over runs and its share of the run time,
  and the time of the report and plots;
* the machine's load average before and after, and the CPU time of the process and its worker
  processes: on a shared machine the wall time grows with the load, the CPU time and the
  overhead share do not (CPU time / 2 cores is what the wall time approaches when idle).

Run: ``PYTHONPATH=. python benchmarks/bench_compare.py [--quick-only]``
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import tempfile
import time
from pathlib import Path

from product_noise.compare import default_config, quick_config, run_compare

BUDGETS = {"quick": 60.0, "default": 300.0}


def _cpu() -> float:
    """User + system CPU seconds of this process and its finished children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _bench(name: str, workers: int) -> bool:
    cfg = quick_config() if name == "quick" else default_config()
    cfg.workers = workers
    load0 = os.getloadavg()[0]
    cpu0 = _cpu()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        t0 = time.perf_counter()
        result = run_compare(cfg, out, progress=False)
        wall = time.perf_counter() - t0
        with (out / "results.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    load1 = os.getloadavg()[0]
    cpu = _cpu() - cpu0
    per_run = sum(float(r["seconds"]) for r in rows)
    train = sum(float(r["train_seconds"]) for r in rows)
    acct = sum(float(r["accounting_seconds"]) for r in rows)
    overhead = sum(
        max(0.0, float(r["seconds"]) - float(r["train_seconds"]) - float(r["accounting_seconds"]))
        for r in rows
    )
    share = overhead / per_run if per_run else 0.0
    t = result.timings
    ok_wall = wall <= BUDGETS[name]
    ok_share = share <= 0.05
    print(f"== {name}: {len(rows)} runs, {os.cpu_count()} CPUs, workers={workers or 'auto'}")
    print(f"   load average (1 min) before {load0:.1f}, after {load1:.1f}")
    cores = os.cpu_count() or 1
    print(
        f"   CPU time (this process + workers) {cpu:.1f} s: on an idle machine the wall time is "
        f"about {cpu / min(cores, 2):.1f} s or more ({min(cores, 2)} busy cores)"
    )
    print(f"   wall {wall:7.1f} s   budget {BUDGETS[name]:.0f} s   {'OK' if ok_wall else 'OVER'}")
    print(f"   runs (wall)            {t['runs (wall)']:7.1f} s")
    print(f"     training             {train:7.1f} s")
    print(f"     calibration/account. {acct:7.1f} s (waiting for workers + checks)")
    print(
        f"     harness overhead     {overhead:7.2f} s = {100 * share:.2f} % of run time "
        f"(budget 5 %)   {'OK' if ok_share else 'OVER'}"
    )
    print(f"   report and plots       {t['report and plots']:7.1f} s")
    return ok_wall and ok_share


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick-only", action="store_true", help="benchmark --quick only")
    p.add_argument("--workers", type=int, default=0, help="calibration processes (0: auto)")
    args = p.parse_args()
    ok = _bench("quick", args.workers)
    if not args.quick_only:
        ok = _bench("default", args.workers) and ok
    print("all targets met" if ok else "some targets missed (see OVER above; check the load)")


if __name__ == "__main__":
    main()
