"""Real-data DP-SGD runs with the example scripts (not CI): accuracy and labelled privacy.

Experiments (each calls an example script's ``main`` in-process and records its last epoch):

``mnist-ci``
    Opacus' CI check for its MNIST example: Gaussian noise, lr 0.25, σ 0.7, C 1.5, batch 64,
    1 epoch; the test accuracy must lie in [0.78, 0.95]. Run on every MNIST-format dataset that
    exists here: the real MNIST test images split 80/20 (``--train-on-test-split``; no training
    images on this machine) and Fashion-MNIST (``<data root>/fashion-mnist``, e.g. a link to
    Debian's ``dataset-fashion-mnist``) if present.
``mnist-ci-steps``
    The same settings on the 8,000-image split for as many steps as Opacus' CI epoch
    (60,000 / 64 ≈ 937 steps: 8 epochs of 125 steps), since one epoch of the split is only
    125 steps.
``mnist``, ``adult``, ``movielens``, ``imdb``
    The paper's defaults with product noise (claimed ε' and verified ε side by side), Gaussian
    noise at the script's σ, and the non-private baseline. ``--max-epochs`` caps the epochs
    (the table says when a cap applied).

Data: ``<data root>/{mnist,fashion-mnist,adult,movielens-100k,imdb}``, the data root being
``--data-root`` or ``$PRODUCT_NOISE_DATA`` (see ``_data.py``); an experiment whose files are
missing is skipped with a message naming them, and the others still run.

Usage::

    PYTHONPATH=. python benchmarks/real_runs.py --only mnist-ci adult --max-epochs 10
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
for p in (ROOT, EXAMPLES):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from _data import (  # noqa: E402  (the benchmarks folder is on sys.path)
    add_data_root_argument,
    data_root,
    dataset_dir,
)

CI_BAND = (0.78, 0.95)
EXPERIMENTS = ("mnist-ci", "mnist-ci-steps", "mnist", "adult", "movielens", "imdb")
#: Opacus' CI epoch on the 60,000 MNIST training images at batch 64
CI_STEPS = 60_000 // 64


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fmt(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return format(x, spec)


def _row(label: str, data: str, res: dict[str, Any], capped: str) -> dict[str, Any]:
    last = res["history"][-1]
    metric = "rmse" if "train_rmse" in last else "accuracy"
    secs = [r["seconds"] for r in res["history"]]
    return {
        "run": label,
        "data": data,
        "noise": last["noise"],
        "epochs": f"{last['epoch']}{capped}",
        "metric": metric,
        "train": last[f"train_{metric}"],
        "test": last[f"test_{metric}"],
        "claimed_epsilon": last.get("claimed_epsilon"),
        "claimed_delta": last.get("claimed_delta"),
        "verified_epsilon": last.get("verified_epsilon"),
        "verified_delta": last.get("verified_delta"),
        "s_per_epoch": sum(secs) / len(secs),
        "dim": last["dim"],
        "json": str(res["json"]),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| run | data | noise | epochs | M | train | test | claimed ε' (δ') | verified ε (δ) "
        "| s/epoch |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        m = "acc" if r["metric"] == "accuracy" else "RMSE"
        claimed = (
            f"{_fmt(r['claimed_epsilon'])} ({_fmt(r['claimed_delta'], '.3g')})"
            if r["claimed_epsilon"] is not None
            else "–"
        )
        verified = (
            f"{_fmt(r['verified_epsilon'])} ({_fmt(r['verified_delta'], '.3g')})"
            if r["verified_epsilon"] is not None
            else "– (non-private)"
        )
        lines.append(
            f"| {r['run']} | {r['data']} | {r['noise']} | {r['epochs']} | {r['dim']:,} "
            f"| {m} {r['train']:.4f} | {m} {r['test']:.4f} | {claimed} | {verified} "
            f"| {r['s_per_epoch']:.1f} |"
        )
    return "\n".join(lines)


def run_mnist_ci(
    root: Path, out: Path, progress: bool, matched_steps: bool = False
) -> list[dict[str, Any]]:
    """Opacus' CI settings on each available MNIST-format dataset; checks the band."""
    mnist = _script("mnist")
    ci = ["--noise", "gaussian", "--lr", "0.25", "--sigma", "0.7", "-c", "1.5", "-b", "64"]
    ci += ["--seed", "0"]
    sources = []
    try:
        split = ("MNIST test images 80/20", dataset_dir(root, "mnist"), ["--train-on-test-split"])
    except FileNotFoundError as err:
        print(f"mnist-ci on MNIST skipped: {err}")
        split = None
    if matched_steps:
        epochs = math.ceil(CI_STEPS / (8_000 // 64))
        ci += ["--epochs", str(epochs), "--privacy-every", str(epochs)]
        if split is not None:
            sources = [(f"{split[0]}, {epochs} epochs ≈ {CI_STEPS} steps", *split[1:])]
    else:
        ci += ["--epochs", "1"]
        sources = [] if split is None else [split]
        try:
            sources.append(("Fashion-MNIST 60k/10k", dataset_dir(root, "fashion-mnist"), []))
        except FileNotFoundError as err:
            print(f"mnist-ci on Fashion-MNIST skipped: {err}")
    rows = []
    for label, root, extra in sources:
        sub = f"mnist-ci{'-steps' if matched_steps else ''}-{root.name}"
        argv = [*ci, "--data-root", str(root), "--out", str(out / sub)]
        argv += extra + ([] if progress else ["--no-progress"])
        row = _row("mnist-ci", label, mnist.main(argv), "")
        lo, hi = CI_BAND
        row["in_band"] = lo <= row["test"] <= hi
        print(
            f"Opacus CI band [{lo}, {hi}] on {label}: test acc {row['test']:.4f} → "
            f"{'PASS' if row['in_band'] else 'FAIL'}"
        )
        rows.append(row)
    return rows


def run_defaults(
    name: str,
    data: Path,
    out: Path,
    max_epochs: int | None,
    progress: bool,
    privacy_every: int,
) -> list[dict[str, Any]]:
    """product, gaussian and none at the script's defaults on the real data here."""
    script, folder, extra, label = {
        "mnist": ("mnist", "mnist", ["--train-on-test-split"], "MNIST test 80/20"),
        "adult": ("adult", "adult", [], "UCI Adult (adult.data 80/20, seed 42)"),
        "movielens": ("movielens", "movielens-100k", [], "MovieLens-100K 80/20"),
        "imdb": ("imdb", "imdb", [], "IMDB 1,000 labelled sentences 80/20"),
    }[name]
    try:
        root = dataset_dir(data, folder)
    except FileNotFoundError as err:
        print(f"{name} skipped: {err}")
        return []
    mod = _script(script)
    epochs = mod.DEFAULTS.epochs
    capped = ""
    if max_epochs is not None and max_epochs < epochs:
        epochs, capped = max_epochs, f" (of {mod.DEFAULTS.epochs})"
    rows = []
    for noise in ("product", "gaussian", "none"):
        argv = ["--noise", noise, "--data-root", str(root), "--out", str(out / name)]
        argv += ["--epochs", str(epochs), "--privacy-every", str(privacy_every)] + extra
        argv += [] if progress else ["--no-progress"]
        if noise == "none":
            argv.append("--plot")
        rows.append(_row(name, label, mod.main(argv), capped))
    return rows


def summarize(dirs: list[str]) -> list[dict[str, Any]]:
    """Rows for every result JSON under ``dirs`` (runs that finished, even if a job did not)."""
    rows = []
    for d in dirs:
        for f in sorted(Path(d).rglob("*_*.json")):
            if f.name == "summary.json":
                continue
            saved = json.loads(f.read_text())
            extra = saved["config"].get("extra", {})
            info = extra.get("data_info", {})
            src = Path(info.get("source", "")).name
            label = f"{src} (test images 80/20)" if info.get("train_on_test_split") else src
            res = {"history": saved["history"], "json": f}
            rows.append(_row(extra.get("dataset", f.stem), label, res, ""))
    print(_table(rows))
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    p.add_argument("--max-epochs", type=int, default=None, help="cap the paper's epochs")
    p.add_argument("--privacy-every", type=int, default=1)
    p.add_argument("--out", default="runs/real")
    p.add_argument("--no-progress", action="store_true")
    add_data_root_argument(p)
    p.add_argument(
        "--summarize", nargs="+", metavar="DIR", help="only print the table of the JSONs in DIRs"
    )
    args = p.parse_args(argv)
    if args.summarize:
        return summarize(args.summarize)
    try:
        root = data_root(args.data_root)
    except FileNotFoundError as err:
        p.error(str(err))
    out = Path(args.out)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for exp in args.only:
        if exp in ("mnist-ci", "mnist-ci-steps"):
            rows += run_mnist_ci(root, out, not args.no_progress, exp == "mnist-ci-steps")
        else:
            rows += run_defaults(
                exp, root, out, args.max_epochs, not args.no_progress, args.privacy_every
            )
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(rows, indent=2, default=str))
        (out / "summary.md").write_text(_table(rows) + "\n")
        print(_table(rows), flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s")
    return rows


if __name__ == "__main__":
    main()
