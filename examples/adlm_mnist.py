"""AdLM (Phan et al., ICDM 2017) on MNIST, as the authors' code runs it, with both privacy figures.

Defaults are the code's (``AdLM/MNIST/AdLM.py``): ε1 = 0.075, ε2 = 0.075, ε3 = 0.15, batch 1800,
Adam lr 3e-4, 2400 epochs, hk = 25, input noise redrawn every step and shared by the batch,
relevance model trained on the training data, raw labels. The script prints the test accuracy,
the *claimed* figures (the paper's ε1+ε2+ε3 and its per-step claim composed over the redraws)
and the *verified* figure (``inf`` for the code's configuration, with the reason), and writes
``<out>/adlm_mnist.json``. Any IDX set of 28×28 images works (e.g. Fashion-MNIST).

Examples::

    PYTHONPATH=. python examples/adlm_mnist.py --data-root /usr/share/datasets/fashion-mnist -n 5
    PYTHONPATH=. python examples/adlm_mnist.py --data-root $PRODUCT_NOISE_DATA/mnist \\
        --train-on-test-split -n 20 -b 800                          # no training images here
    PYTHONPATH=. python examples/adlm_mnist.py --data-root ~/data -n 20 --noise-sharing example \\
        --redraw once --relevance public --label-privacy randomized_response --label-epsilon 2
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

from product_noise.baselines.adlm import AdLMClassifier  # noqa: E402
from product_noise.data.dpsgd import load_mnist_dpsgd  # noqa: E402

#: torchvision transform: the uint8 images → float32 pixels in [0, 1] (AdLM's input range)
PIXELS = v2.ToDtype(torch.float32, scale=True)


def build_parser() -> argparse.ArgumentParser:
    """The script's flags (defaults: the authors' MNIST code)."""
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data-root", default="data/mnist", help="MNIST IDX files (no download)")
    p.add_argument(
        "--train-on-test-split",
        action="store_true",
        help="train on a seeded 80%% of the 10,000 test images and test on the rest",
    )
    p.add_argument("--epsilon1", type=float, default=0.075, help="dpLRP budget ε1")
    p.add_argument("--epsilon2", type=float, default=0.075, help="input-noise budget ε2")
    p.add_argument("--epsilon3", type=float, default=0.15, help="functional-mechanism budget ε3")
    p.add_argument("-n", "--epochs", type=int, default=2400, help="epochs")
    p.add_argument("-b", "--batch-size", type=int, default=1800, help="batch size |L|")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate")
    p.add_argument("--hk", type=int, default=25, help="hidden units before the output layer")
    p.add_argument("--redraw", choices=("step", "once"), default="step", help="input noise draw")
    p.add_argument(
        "--noise-sharing", choices=("batch", "example"), default="batch", help="input noise"
    )
    p.add_argument(
        "--relevance",
        choices=("private", "public", "uniform"),
        default="private",
        help="relevance model on the training data (code), on a declared public split, or "
        "β ≡ 1 (ILM)",
    )
    p.add_argument(
        "--public-fraction",
        type=float,
        default=0.1,
        help="with --relevance public: fraction of the training set declared public (not "
        "trained on)",
    )
    p.add_argument(
        "--dplrp-n",
        choices=("dataset", "averaged"),
        default="dataset",
        help="N of the dpLRP noise 2d/(ε1 N): dataset size (code) or number averaged",
    )
    p.add_argument("--lrp-samples", type=int, default=2000, help="examples averaged by dpLRP")
    p.add_argument(
        "--label-privacy",
        choices=("none", "public", "randomized_response"),
        default="none",
        help="labels as they are (code), declared public, or randomized response",
    )
    p.add_argument("--label-epsilon", type=float, default=None, help="randomized-response ε")
    p.add_argument("--delta", type=float, default=1e-5, help="δ of the verified ε")
    p.add_argument("--seed", type=int, default=0, help="seed of init, batches, noise, splits")
    p.add_argument("--out", default="runs/adlm_mnist", help="directory of the JSON result")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, train AdLM, print accuracy and the labelled figures, write JSON."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.public_fraction < 1:
        parser.error(f"--public-fraction must be in (0, 1), got {args.public_fraction}")
    torch.set_num_threads(1)
    data = load_mnist_dpsgd(
        args.data_root,
        train_on_test_split=args.train_on_test_split,
        seed=args.seed,
        transform=PIXELS,
    )
    xtr, ytr = data.train.tensors
    xte, yte = data.test.tensors
    X, y = xtr.numpy(), ytr.numpy()
    public = None
    if args.relevance == "public":
        perm = np.random.default_rng(args.seed).permutation(len(X))
        n_pub = max(1, int(round(args.public_fraction * len(X))))
        public = (X[perm[:n_pub]], y[perm[:n_pub]])
        X, y = X[perm[n_pub:]], y[perm[n_pub:]]
    clf = AdLMClassifier(
        args.epsilon1,
        args.epsilon2,
        args.epsilon3,
        image_shape=(1, 28, 28),
        hk=args.hk,
        batch_size=args.batch_size,
        epochs=args.epochs,
        lr=args.lr,
        redraw=args.redraw,
        noise_sharing=args.noise_sharing,
        relevance=args.relevance,
        public_data=public,
        dplrp_n=args.dplrp_n,
        lrp_samples=args.lrp_samples,
        label_privacy=args.label_privacy,
        label_epsilon=args.label_epsilon,
        delta=args.delta,
        seed=args.seed,
        progress=not args.no_progress,
    ).fit(X, y)
    accuracy = clf.score(xte.numpy(), yte.numpy())
    print(f"AdLM test accuracy {accuracy:.4f} ({len(X)} train, {len(yte)} test images)")
    print(
        f"Δ_h0 = {clf.delta_h0_:g}, input Laplace scale at β = 1: {clf.input_noise_scale_:.4g}, "
        f"Δ_F = {clf.delta_f_:g}, steps {clf.steps_}"
    )
    for fig in clf.privacy_:
        print(fig)
    result = {
        "accuracy": accuracy,
        "args": vars(args),
        "data": data.info,
        "n_train": len(X),
        "n_public": 0 if public is None else len(public[0]),
        "delta_h0": clf.delta_h0_,
        "delta_f": clf.delta_f_,
        "input_noise_scale": clf.input_noise_scale_,
        "steps": clf.steps_,
        "privacy": [f.to_dict() for f in clf.privacy_],
        "history": clf.history_,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "adlm_mnist.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out / 'adlm_mnist.json'}")
    return result


if __name__ == "__main__":
    from _common import entry

    entry(main)
