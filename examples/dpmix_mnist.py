"""DPMix on MNIST: the thesis' single run and its three sweeps (accuracy vs σ, l, T).

Reproduces Mahmud (BUET 2025) §4 with this package's publisher and accountant:

* ``single`` (§4.1): global mixing, l = 256, T = 10,000, σ_x = σ_y = 0.0711, negatives clamped
  to 0 (the thesis' post-processing), CNN trained with the KL loss on the noisy soft labels
  (50 epochs, Adam 1e-4 halved every 10). Thesis: 68.35 % test accuracy, "ε = 15".
* ``sigma`` / ``l`` / ``T`` (§4.2): class-conditional mixing, T = 12,000 (1,200 per class),
  l = 128 (σ sweep: σ = 0.2 … 3.0), σ = 0.7 (l sweep: 32 … 512; T sweep). As in App. B the
  labels are noised (σ_y = σ_x), turned into hard labels by ``argmax`` and the CNN is trained
  with cross-entropy and early stopping (patience 3). The thesis averaged 10 releases per point
  (``--repeats``).

Every point is written to ``<out>/<sweep>.csv`` with its **verified** ε (WBK Thm 27, improved
conversion, δ = 1/n; class-conditional: max over classes, same-label neighbours) and the
thesis' **claimed** ε (its code; per class it took n = 6000); ``<out>/<sweep>.png`` plots the
accuracy with both ε on a second axis.

``--epsilon E`` runs every point at a verified ε instead of the thesis' σ: σ_x = σ_y is
calibrated (``dpmix.accounting.calibrate_noise_multiplier``, through ``DPMix(target_epsilon=E,
target_delta=1/n)``) as the smallest noise whose verified ε at δ = 1/n is ≤ E, and the σ used is
written to the CSV. Not with ``--sigma`` or ``--sweep sigma``.

Data: MNIST IDX files under ``--data-root`` (``MNIST/raw/``, ``FashionMNIST/raw/`` or the
four files in the folder, plain or ``.gz``), read through ``torchvision.datasets.MNIST`` where
its layout applies (:mod:`product_noise.data.vision`); pixels to [0, 1] by the torchvision
transform ``v2.ToDtype(torch.float32, scale=True)``.
Without the training images, ``--private-from-test N`` uses the first N test images as the
private set and the remaining test images for evaluation (a demonstration, not the thesis).

Examples::

    PYTHONPATH=. python examples/dpmix_mnist.py --data-root ~/data --sweep single
    PYTHONPATH=. python examples/dpmix_mnist.py --data-root ~/data --sweep single --epsilon 8
    PYTHONPATH=. python examples/dpmix_mnist.py --data-root $PRODUCT_NOISE_DATA/mnist \\
        --private-from-test 8000 --sweep sigma --quick
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dpmix import DPMix, one_hot, thesis_figure  # noqa: E402
from dpmix.train import train_on_release  # noqa: E402
from product_noise.data.vision import read_idx_splits  # noqa: E402

SIGMA_GRID = [round(0.2 + 0.1 * i, 1) for i in range(29)]  # 0.2 … 3.0
L_GRID = [32, 64, 128, 256, 512]
T_GRID = [2500, 5000, 7500, 10000, 12000]
QUICK = {"sigma": [0.2, 0.7, 1.5, 3.0], "l": [32, 128, 512], "T": [2500, 12000]}

#: torchvision transform: the uint8 images → float32 pixels in [0, 1]
PIXELS = v2.ToDtype(torch.float32, scale=True)


def load_pixels(root, splits: tuple[str, ...], hint: str = "") -> list[tuple[np.ndarray, ...]]:
    """(pixels in [0, 1] of shape (n, 28, 28), int64 labels) per split, in order."""
    read = read_idx_splits(root, splits, hint=hint)
    return [(PIXELS(torch.from_numpy(read[s].images)).numpy(), read[s].labels) for s in splits]


def _load(args: argparse.Namespace):
    if args.private_from_test:
        ((X, y),) = load_pixels(args.data_root, ("test",))
        k = args.private_from_test
        if not 0 < k < X.shape[0]:
            raise ValueError(f"--private-from-test must be in (0, {X.shape[0]}), got {k}")
        name = Path(args.data_root).resolve().name
        return X[:k], y[:k], X[k:], y[k:], f"{name}: first {k} t10k images (demo split)"
    hint = "(use --private-from-test N to run on the test set)"
    (Xtr, ytr), (Xte, yte) = load_pixels(args.data_root, ("train", "test"), hint)
    return Xtr, ytr, Xte, yte, f"{Path(args.data_root).resolve().name} train"


def _point(args, X, y, Xte, yte, *, mixing, l, T, sigma, loss, patience, rep):
    Y = one_hot(y, 10)
    if args.epsilon is None:
        noise = {"sigma_x": sigma}
    else:  # σ solved at publish time: verified ε at δ = 1/n (the δ reported below) ≤ --epsilon
        noise = {"target_epsilon": args.epsilon, "target_delta": 1.0 / X.shape[0]}
    mix = DPMix(l, T, **noise, mixing=mixing, clamp_negative=True, seed=args.seed + rep)
    Xs, Ys = mix.publish(X[:, None], Y)
    sigma = mix.release_.sigma_x
    if mixing == "class":  # App. B: labels noised like the thesis, then argmax (hard labels)
        rng = np.random.default_rng(10_000 + args.seed + rep)
        Ys = one_hot((Ys + sigma * rng.standard_normal(Ys.shape)).argmax(1), 10)
    res = train_on_release(
        Xs, Ys, Xte, yte, loss=loss, epochs=args.epochs, patience=patience, seed=args.seed + rep
    )
    return res.test_accuracy, mix


def _privacy(mix: DPMix, n: int, mixing: str, l: int, T: int, sigma: float):
    ver = mix.privacy(1.0 / n, backend="native")
    if mixing == "class":
        claimed = thesis_figure(6000, l, T // 10, sigma, sigma, 784, 10, variant="code")
    else:
        claimed = thesis_figure(n, l, T, sigma, sigma, 784, 10, variant="code")
    return ver, claimed


def run(args: argparse.Namespace) -> int:
    X, y, Xte, yte, source = _load(args)
    n = X.shape[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sweeps = ["sigma", "l", "T"] if args.sweep == "all" else [args.sweep]
    for sweep in sweeps:
        if sweep == "single":
            points = [dict(mixing="global", l=256, T=10_000, sigma=args.sigma or 0.0711)]
            loss, patience = "kl", None
        else:
            grid = (
                QUICK[sweep]
                if args.quick
                else {"sigma": SIGMA_GRID, "l": L_GRID, "T": T_GRID}[sweep]
            )
            base = dict(mixing="class", l=128, T=12_000, sigma=0.7)
            points = [{**base, sweep: v} for v in grid]
            loss, patience = "ce", 3
        rows = []
        for p in points:
            t0 = time.perf_counter()
            accs, mix = [], None
            for rep in range(args.repeats):
                acc, mix = _point(args, X, y, Xte, yte, loss=loss, patience=patience, rep=rep, **p)
                accs.append(acc)
            p = {**p, "sigma": mix.release_.sigma_x}  # the σ used (calibrated with --epsilon)
            ver, claimed = _privacy(mix, n, **p)
            row = {
                **p,
                "target_epsilon_verified": args.epsilon,
                "n_private": n,
                "data": source,
                "repeats": args.repeats,
                "epochs": args.epochs,
                "accuracy_mean": float(np.mean(accs)),
                "accuracy_std": float(np.std(accs)),
                "epsilon_verified": ver.epsilon,
                "delta_verified": ver.delta,
                "epsilon_claimed_thesis": claimed.epsilon,
                "delta_claimed_thesis": claimed.delta,
                "seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            print(
                f"[{sweep}] l={p['l']} T={p['T']} σ={p['sigma']:g}: accuracy "
                f"{row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f}; {ver}; {claimed}",
                flush=True,
            )
        path = out / f"{sweep}.csv"
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {path}")
        if sweep != "single":
            _plot(rows, sweep, out / f"{sweep}.png", source)
            print(f"wrote {out / f'{sweep}.png'}")
    return 0


def _plot(rows: list[dict], key: str, path: Path, source: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r[key] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.errorbar(
        x,
        [100 * r["accuracy_mean"] for r in rows],
        yerr=[100 * r["accuracy_std"] for r in rows],
        marker="o",
        color="C0",
        label="test accuracy",
    )
    ax.set_xlabel({"sigma": "σ_x = σ_y", "l": "mixture degree l", "T": "T (releases)"}[key])
    ax.set_ylabel("test accuracy (%)", color="C0")
    if key == "l":
        ax.set_xscale("log", base=2)
    ax2 = ax.twinx()
    ax2.plot(x, [r["epsilon_verified"] for r in rows], "s-", color="C3", label="ε verified")
    ax2.plot(
        x,
        [r["epsilon_claimed_thesis"] for r in rows],
        "^--",
        color="C1",
        label="ε claimed (thesis code)",
    )
    ax2.set_ylabel("ε")
    if all(r["epsilon_verified"] > 0 for r in rows):
        ax2.set_yscale("log")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="best", fontsize=8)
    ax.set_title(f"DPMix, class-conditional mixing ({source}; δ_verified = 1/n)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", required=True, type=Path)
    p.add_argument("--sweep", choices=["single", "sigma", "l", "T", "all"], default="single")
    p.add_argument("--sigma", type=float, default=None, help="σ of the single run (0.0711)")
    p.add_argument(
        "--epsilon",
        type=float,
        default=None,
        metavar="E",
        help="calibrate σ_x = σ_y of every point to a verified ε ≤ E at δ = 1/n (instead of the "
        "thesis' σ; not with --sigma or --sweep sigma)",
    )
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--repeats", type=int, default=1, help="releases per point (thesis: 10)")
    p.add_argument("--quick", action="store_true", help="coarse sweep grids")
    p.add_argument("--private-from-test", type=int, default=0, metavar="N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/dpmix_mnist")
    args = p.parse_args(argv)
    if args.sigma is not None and not (math.isfinite(args.sigma) and args.sigma > 0):
        p.error("--sigma must be > 0")
    if args.epsilon is not None:
        if not (math.isfinite(args.epsilon) and args.epsilon > 0):
            p.error("--epsilon must be a finite number > 0")
        if args.sigma is not None:
            p.error("--epsilon calibrates σ: it cannot be combined with --sigma")
        if args.sweep in ("sigma", "all"):
            p.error("--epsilon fixes ε, so σ cannot be swept: use --sweep single, l or T")
    try:
        return run(args)
    except (FileNotFoundError, ValueError) as err:  # missing or bad data: bad input
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
