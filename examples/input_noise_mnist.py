"""Local-DP Gaussian input perturbation on MNIST: the blog's recipe and the honest variant.

Each training image is scaled to unit L2 norm and released once with Gaussian noise; a small
MLP (784 → 64 → 10, Adam) is trained on the noisy records and tested on clean unit-norm test
images. Two settings:

* ``--faithful``: the blog (``maxfieldEland/dp_nueral_nets``): classic σ with Δ = 1,
  δ = 1/784², clip at 0, labels public; its ε is printed as *claimed*, next to the *verified*
  ε of the record (inf: the label is released as it is) and of the images alone (Δ = √2,
  exact Gaussian-DP curve; 1019 for the blog's ε = 150).
* default: the honest variant: σ calibrated so that the *verified* ε of the whole record equals
  ``--epsilon`` (analytic Gaussian, Δ = √2), labels by 10-ary randomized response at
  ``--label-share``·ε, composed with dp_accounting.

Examples::

    python examples/input_noise_mnist.py --data-root $PRODUCT_NOISE_DATA/mnist \\
        --train-on-test-split --faithful --epsilon 150
    python examples/input_noise_mnist.py --data-root /usr/share/datasets/fashion-mnist \\
        --epsilon 8
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import entry  # noqa: E402

from product_noise.baselines.input_noise import (  # noqa: E402
    BLOG_DELTA,
    BLOG_LABEL_Q,
    unary_encoding_epsilon,
)
from product_noise.compare.runners.input_noise import run_for_compare  # noqa: E402
from product_noise.data.dpsgd import load_mnist_dpsgd  # noqa: E402

#: torchvision transform: the uint8 images → float32 pixels in [0, 1]
PIXELS = v2.ToDtype(torch.float32, scale=True)


def _pixels(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flattened pixels in [0, 1] (the loader ran :data:`PIXELS`) and int64 labels."""
    x, y = dataset.tensors
    return x.reshape(x.shape[0], -1).numpy(), y.numpy().astype(np.int64)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--faithful",
        action="store_true",
        help="the blog's calibration (classic formula, Δ = 1, δ = 1/784², labels public); "
        "--epsilon is then its claimed ε",
    )
    p.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="target ε: verified (default 8), or claimed with --faithful (default 150)",
    )
    p.add_argument(
        "--delta",
        type=float,
        default=None,
        help="target δ (default 1e-5; with --faithful the blog's 1/784²)",
    )
    p.add_argument(
        "--label-share",
        type=float,
        default=0.5,
        help="honest variant: the labels' randomized-response ε as a share of --epsilon",
    )
    p.add_argument("-n", "--epochs", type=int, default=15, help="epochs of the classifier")
    p.add_argument("-b", "--batch-size", type=int, default=128, help="classifier batch size")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument(
        "--data-root", default="data/mnist", help="directory of the IDX files (no download)"
    )
    p.add_argument(
        "--train-on-test-split",
        action="store_true",
        help="train on a seeded 80%% of the 10,000 test images and test on the rest "
        "(when train-images-idx3-ubyte is not available)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the noise, init and split")
    p.add_argument("--out", default="runs/input_noise_mnist", help="directory for the JSON")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, perturb, train, print the labelled figures, write the JSON."""
    parser = build_parser()
    args = parser.parse_args(argv)
    eps = args.epsilon if args.epsilon is not None else (150.0 if args.faithful else 8.0)
    delta = args.delta if args.delta is not None else (BLOG_DELTA if args.faithful else 1e-5)
    if not eps > 0:
        parser.error(f"--epsilon must be > 0, got {eps}")
    if not 0 < delta < 1:
        parser.error(f"--delta must be in (0, 1), got {delta}")
    if not 0 < args.label_share < 1:
        parser.error(f"--label-share must be in (0, 1), got {args.label_share}")
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value < 1:
            parser.error(f"{flag} must be ≥ 1, got {value}")
    if not args.lr > 0:
        parser.error(f"--lr must be > 0, got {args.lr}")
    torch.set_num_threads(1)

    data = load_mnist_dpsgd(
        args.data_root,
        train_on_test_split=args.train_on_test_split,
        seed=args.seed,
        transform=PIXELS,
    )
    Xtr, ytr = _pixels(data.train)
    Xte, yte = _pixels(data.test)
    mode = "faithful" if args.faithful else "honest"
    print(f"MNIST-format data: {len(ytr):,} train / {len(yte):,} test ({data.info['source']})")
    if data.info.get("note"):
        print(f"NOTE: {data.info['note']}")
    r = run_for_compare(
        Xtr,
        ytr,
        Xte,
        yte,
        image_shape=(1, 28, 28),
        epsilon=eps,
        delta=delta,
        target="claimed" if args.faithful else "verified",
        seed=args.seed,
        epochs=args.epochs,
        label_share=args.label_share,
        batch_size=args.batch_size,
        lr=args.lr,
        progress=not args.no_progress,
    )
    print(f"{mode}: σ = {r['noise_scale']:.4g} per pixel of a unit-norm image")
    for note in r["notes"]:
        print(f"  - {note}")
    if r["claimed"] is not None:
        print(r["claimed"])
    print(r["verified"])
    images_only = r["verified"].extra.get("images_only")
    if images_only is not None:
        print(f"images alone: {images_only}")
    label_claim = None
    if args.faithful:
        label_claim = unary_encoding_epsilon(BLOG_LABEL_Q)
        print(
            f"blog's CNN pipeline (not run here): labels by unary encoding with q = "
            f"{BLOG_LABEL_Q:g}, p = 1 − q: claimed label ε = {label_claim:.4g} (its total "
            f"'2000' = 1925 + {label_claim:.3g}); in float64 p rounds to 1, so no label is "
            "randomized: its verified label ε is inf"
        )
    print(f"test accuracy {r['accuracy']:.4f} (clean test images; {r['steps']} steps)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"input_noise_mnist_{mode}.json"
    result = {
        "mode": mode,
        "epsilon": eps,
        "delta": delta,
        "accuracy": r["accuracy"],
        "claimed": r["claimed"].to_dict() if r["claimed"] else None,
        "verified": r["verified"].to_dict(),
        "verified_images_only": images_only.to_dict() if images_only is not None else None,
        "noise_scale": r["noise_scale"],
        "steps": r["steps"],
        "notes": r["notes"],
        "blog_label_claimed_epsilon": label_claim,
        "n_train": len(ytr),
        "n_test": len(yte),
        "data": data.info,
    }
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {path}")
    return {**result, "json": path}


if __name__ == "__main__":
    entry(main)
