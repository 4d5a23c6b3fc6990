"""DP image generation (DP-EFSGD baseline) on MNIST or Fashion-MNIST, with honest accounting.

Trains :class:`product_noise.baselines.dpgen.DPGenerator` (GS-WGAN structure, error-feedback
sanitisation of ∂L_G/∂x̃, reconstruction loss, noise injection) with its joint noise multiplier
calibrated so that the **verified** ε (joint per-step accounting, dp_accounting PLD) is
``--epsilon`` (or, with ``--target claimed``, so that the GS-WGAN/DPAC accountant's **claimed**
ε is; the verified ε is then printed too). Writes

* ``<out>/grid.png``: 100 generated images (10 per class);
* ``<out>/metrics.json``: both privacy figures, the settings, gen2real accuracy of a small CNN
  and the small-CNN "FID" (not comparable in scale with Inception-FID);
* ``<out>/generator.pt``: the released generator (:meth:`DPGenerator.state_dict`).

Data: the IDX files under ``--data-root`` (``MNIST/raw/``, ``FashionMNIST/raw/`` or the four
files directly, plain or ``.gz``), read through ``torchvision.datasets.MNIST`` / ``FashionMNIST``
where their layout applies (:mod:`product_noise.data.vision`); pixels to [0, 1] by the
torchvision transform ``v2.ToDtype(torch.float32, scale=True)``. Without the training images
(as on this machine for MNIST), ``--private-from-test N`` uses N test images as the private set
and the rest for evaluation.

Examples::

    PYTHONPATH=. python examples/dpgen_mnist.py --data-root /usr/share/datasets/fashion-mnist \\
        --n-train 6000 --epsilon 10 --steps 1000 --out runs/dpgen_fmnist
    PYTHONPATH=. python examples/dpgen_mnist.py --data-root $PRODUCT_NOISE_DATA/mnist \\
        --private-from-test 8000 --steps 300 --out runs/dpgen_mnist
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from product_noise.baselines.dpgen import (  # noqa: E402
    DPGenConfig,
    DPGenerator,
    FeatureFID,
    downstream_accuracy,
    save_image_grid,
)
from product_noise.data.loaders import DatasetNotFoundError  # noqa: E402
from product_noise.data.vision import read_idx_splits  # noqa: E402


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return v


def _positive_float(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data-root", required=True, help="directory with the MNIST-format IDX files")
    p.add_argument("--epsilon", type=_positive_float, default=10.0, help="target ε")
    p.add_argument("--delta", type=_positive_float, default=1e-5, help="δ")
    p.add_argument(
        "--target",
        choices=("verified", "claimed"),
        default="verified",
        help="calibrate σ on the joint (verified) or the GS-WGAN/DPAC (claimed) accountant",
    )
    p.add_argument("--steps", type=_positive_int, default=1000, help="generator steps T")
    p.add_argument("--ndis", type=_positive_int, default=50, help="discriminators (shards)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="images per step B")
    p.add_argument("--error-clip", type=float, default=1.0, help="C2 (0: no error feedback)")
    p.add_argument("--n-train", type=_positive_int, default=None, help="private subset size")
    p.add_argument(
        "--private-from-test",
        type=_positive_int,
        default=None,
        help="use this many test images as the private set (no training files needed)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/dpgen", help="output directory")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return p


#: torchvision transform: the uint8 images → float32 pixels in [0, 1]
PIXELS = v2.ToDtype(torch.float32, scale=True)


def load_pixels(root, splits: tuple[str, ...], hint: str = "") -> list[tuple[np.ndarray, ...]]:
    """(pixels in [0, 1] of shape (n, 28, 28), int64 labels) per split, in order."""
    read = read_idx_splits(root, splits, hint=hint)
    return [(PIXELS(torch.from_numpy(read[s].images)).numpy(), read[s].labels) for s in splits]


def load(args: argparse.Namespace):
    rng = np.random.default_rng(args.seed)
    if args.private_from_test:
        ((X, y),) = load_pixels(args.data_root, ("test",))
        if args.private_from_test >= len(y):
            raise ValueError(f"--private-from-test must be < {len(y)}")
        perm = rng.permutation(len(y))
        tr, te = perm[: args.private_from_test], perm[args.private_from_test :]
        return X[tr], y[tr], X[te], y[te]
    hint = "(pass --private-from-test N if only the t10k files are present)"
    (X, y), (Xt, yt) = load_pixels(args.data_root, ("train", "test"), hint)
    if args.n_train is not None and args.n_train < len(y):
        idx = rng.permutation(len(y))[: args.n_train]
        X, y = X[idx], y[idx]
    return X, y, Xt, yt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    try:
        X, y, Xt, yt = load(args)
    except (DatasetNotFoundError, ValueError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    cfg = DPGenConfig(
        num_discriminators=args.ndis,
        batch_size=args.batch_size,
        steps=args.steps,
        error_clip=args.error_clip,
        target_epsilon=args.epsilon,
        target_delta=args.delta,
        target=args.target,
        seed=args.seed,
    )
    try:
        gen = DPGenerator(cfg, progress=not args.no_progress).fit(X, y, num_classes=10)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for fig in gen.privacy_.values():
        print(fig)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    Xs, ys = gen.sample(len(X), seed=args.seed)
    save_image_grid(
        Xs[np.argsort(ys % 10, kind="stable")][:: max(1, len(Xs) // 100)][:100],
        out / "grid.png",
        nrow=10,
    )
    acc = downstream_accuracy(Xs, ys, Xt, yt, epochs=3, seed=args.seed)
    fid = FeatureFID(epochs=3, seed=args.seed).fit(X, y)
    m = min(2000, len(Xs), len(Xt))
    metrics = {
        "privacy": {k: f.to_dict() for k, f in gen.privacy_.items()},
        "settings": vars(args),
        "noise_multiplier": gen.noise_multiplier_,
        "noise_std": gen.noise_std_,
        "gen2real_accuracy": acc,
        "fid_smallcnn": fid.score(Xs[:m], Xt[:m]),
        "fid_smallcnn_real_floor": fid.score(X[:m], Xt[:m]),
        "fid_note": "Fréchet distance of SmallCNN penultimate features (trained on the real "
        "training split); not comparable with Inception-FID",
        "history": gen.history_,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    torch.save(gen.state_dict(), out / "generator.pt")
    print(
        f"gen2real accuracy {acc:.3f}, FID(SmallCNN) {metrics['fid_smallcnn']:.3f} "
        f"(real-data floor {metrics['fid_smallcnn_real_floor']:.3f}); wrote {out}/"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
