"""Compare mechanisms on your own dataset and model: Fashion-MNIST and a small CNN.

The data are read the way a user reads their own: here the four Fashion-MNIST IDX files
(``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
``t10k-labels-idx1-ubyte.gz``, gzipped or not) from ``--data-root`` — for instance Debian's
``apt-get install dataset-fashion-mnist``, which puts them in /usr/share/datasets/fashion-mnist —
or from ``$PRODUCT_NOISE_DATA/fashion-mnist``. When the files are absent the script says so and
falls back to scikit-learn's 8×8 digits, so it always runs.

The task is a :class:`product_noise.compare.DPSGDTask` (train/test tensors, a model factory,
training settings); :func:`product_noise.compare.run_comparison` trains the analytic Gaussian,
product noise and the ℓ2 mechanism, each calibrated on its exact profile, and the non-private
reference at equal target ε, and writes ``results.csv``, ``report.md`` and plots.

Examples::

    PYTHONPATH=. python examples/custom_task.py --quick --out runs/custom-task
    PYTHONPATH=. python examples/custom_task.py --data-root /usr/share/datasets/fashion-mnist \\
        --epsilons 1 4 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from product_noise.compare import CompareConfig, DPSGDTask, run_comparison  # noqa: E402
from product_noise.data.loaders import read_idx  # noqa: E402

MECHANISM_ROWS = ("dpsgd-gaussian", "dpsgd-product", "dpsgd-l2", "nonprivate-nn")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# ---------------------------------------------------------------- the user's data
def _idx(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def load_fashion_mnist(root: Path, n_train: int | None, n_test: int | None):
    """``(X_train, y_train, X_test, y_test)`` as 1×28×28 float tensors in [0, 1] and int64
    labels, or ``None`` if a file is missing (the missing names are printed)."""
    parts = {}
    missing = [s for pair in IDX_FILES.values() for s in pair if _idx(root, s) is None]
    if missing:
        print(f"{root}: no {', '.join(missing)} (gzipped or not)", file=sys.stderr)
        return None
    for part, (img, lab) in IDX_FILES.items():
        X = torch.from_numpy(read_idx(_idx(root, img), ndim=3).astype(np.float32) / 255.0)
        y = torch.from_numpy(read_idx(_idx(root, lab), ndim=1).astype(np.int64))
        keep = n_train if part == "train" else n_test
        parts[part] = (X[:keep].unsqueeze(1), y[:keep])
    return (*parts["train"], *parts["test"])


def load_digits_images():
    """scikit-learn's digits as 1×8×8 images in [0, 1] (80/20 split by a seeded permutation)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y, dtype=torch.int64)
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    cut = int(0.8 * len(y))
    return X[perm[:cut]], y[perm[:cut]], X[perm[cut:]], y[perm[cut:]]


# ---------------------------------------------------------------- the user's model
class SmallCNN(nn.Module):
    """conv 5×5 (8 maps, stride 2) → tanh → conv 3×3 (16 maps, stride 2) → tanh → linear."""

    def __init__(self, side: int, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 5, stride=2, padding=2),
            nn.Tanh(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.Tanh(),
            nn.Flatten(),
        )
        side = (side + 1) // 2
        side = (side + 1) // 2
        self.head = nn.Linear(16 * side * side, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_task(args: argparse.Namespace) -> DPSGDTask:
    """The task: Fashion-MNIST if its files are found, else digits."""
    data, name = None, "digits"
    if args.data_root:
        data = load_fashion_mnist(Path(args.data_root), args.n_train, args.n_test)
        name = "fashion-mnist"
    if data is None:
        print("falling back to scikit-learn's digits (1×8×8)", file=sys.stderr)
        data, name = load_digits_images(), "digits"
    X_tr, y_tr, X_te, y_te = data
    side = int(X_tr.shape[-1])
    return DPSGDTask(
        name=name,
        train=(X_tr, y_tr),
        test=(X_te, y_te),
        model=lambda: SmallCNN(side),
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
        max_grad_norm=1.0,
        image_shape=(1, side, side),
        model_name=f"small-cnn-{side}",
    )


# ---------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get("PRODUCT_NOISE_DATA")
    p = argparse.ArgumentParser(
        description="Compare DP-SGD mechanisms on your own data and model (here Fashion-MNIST "
        "and a small CNN; digits when the files are absent).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--data-root",
        default=str(Path(env) / "fashion-mnist") if env else None,
        help="folder of the Fashion-MNIST IDX files (default: $PRODUCT_NOISE_DATA/fashion-mnist)",
    )
    p.add_argument("--mechanisms", nargs="+", default=list(MECHANISM_ROWS), help="what to compare")
    p.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 4.0], help="target ε grid")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds per run")
    p.add_argument("--epochs", type=int, default=5, help="DP-SGD epochs")
    p.add_argument("--lr", type=float, default=0.5, help="SGD learning rate")
    p.add_argument("--batch-size", type=int, default=256, help="expected (Poisson) batch size")
    p.add_argument("--n-train", type=int, default=None, help="first N training images only")
    p.add_argument("--n-test", type=int, default=None, help="first N test images only")
    p.add_argument("--quick", action="store_true", help="ε = 2, one seed, 1 epoch, 6k/1k images")
    p.add_argument("--out", default="runs/custom-task", help="results folder")
    return p


def main(argv: Sequence[str] | None = None) -> list[dict[str, str]]:
    """Build the task, compare, print the labelled figures; ``<out>/results.csv`` holds them."""
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epsilons, args.seeds, args.epochs = [2.0], [0], 1
        args.n_train, args.n_test = args.n_train or 6_000, args.n_test or 1_000
    rows = run_comparison(
        task=make_task(args),
        mechanisms=args.mechanisms,
        epsilons=args.epsilons,
        seeds=args.seeds,
        out=args.out,
        config=CompareConfig(workers=1),
    )
    print(f"{'mechanism':22} {'seed':>4}  {'claimed ε':>10}  {'verified ε':>10}  {'accuracy':>8}")
    for r in sorted(rows, key=lambda r: (r["mechanism"], r["seed"])):
        claimed = f"{float(r['claimed_epsilon']):.3g}" if r["claimed_epsilon"] else "—"
        verified = f"{float(r['verified_epsilon']):.3g}" if r["verified_epsilon"] else "—"
        print(
            f"{r['mechanism']:22} {r['seed']:>4}  {claimed:>10}  {verified:>10}  "
            f"{float(r['accuracy']):8.3f}"
        )
    print(f"wrote {Path(args.out) / 'results.csv'} and {Path(args.out) / 'report.md'}")
    return rows


if __name__ == "__main__":
    main()
