"""Local-DP Gaussian input perturbation (the blog baseline) against Gaussian DP-SGD on real data.

Datasets (nothing is downloaded):

* MNIST: only the 10,000 *test* images exist here (``<data root>/mnist``); a seeded
  8,000 / 2,000 split of them.
* Fashion-MNIST (``<data root>/fashion-mnist``): a seeded 20,000-image subset of the
  training set and 5,000 of the test set.

The data root is ``--data-root`` or ``$PRODUCT_NOISE_DATA`` (see ``_data.py``); the IDX files
are read by :mod:`product_noise.data.vision` (``torchvision.datasets`` where its layout applies).

Rows, for one small MLP (784 → 64 → 10) everywhere:

* ``blog``: the blog's recipe at its *claimed* ε ∈ {150, 2000, 200000}, δ = 1/784² (classic
  σ, Δ = 1, clip at 0, labels public), with the verified ε of the images (Δ = √2).
* ``input-noise``: the honest variant at *verified* ε ∈ {1, 8, 64, 1020}, δ = 1e-5: analytic
  σ with Δ = √2, labels by 10-ary randomized response at ε/2, composed (dp_accounting PLD).
* ``dpsgd``: Gaussian DP-SGD (the package's ``train`` with its ``PrivacyEngine``), the noise
  multiplier from ``calibrate_verified_noise_multiplier`` at the same verified (ε, 1e-5).
* ``blog-batch-bug``: the blog's IIC preprocessing bug (each 700-image batch scaled to unit
  norm *together*, per-image norm ≈ 0.038) at its claimed ε ∈ {150, 2000, 3000, 200000}.
* ``non-private-unit``: the input-noise pipeline without noise (clean unit-norm images);
  ``non-private``: the DP-SGD pipeline without noise (pixels in [0, 1]).

Input-noise models are trained on the noisy records and tested on clean unit-norm test images;
DP-SGD and the non-private model on pixels in [0, 1]. Results: a Markdown table on stdout and
JSON (``--out``). About 5 minutes on one core (``--quick``: MNIST only, fewer ε).

    python benchmarks/bench_input_noise.py [--quick] [--out runs/bench_input_noise.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _data import add_data_root_argument, dataset_dir  # noqa: E402  (this script's folder is on sys.path)

from product_noise.baselines.input_noise import (  # noqa: E402
    BLOG_DELTA,
    GaussianInputPerturbation,
    train_classifier,
)
from product_noise.compare.runners.input_noise import run_for_compare  # noqa: E402
from product_noise.data.vision import read_idx_splits  # noqa: E402
from product_noise.mechanisms import Gaussian  # noqa: E402
from product_noise.opacus import calibrate_verified_noise_multiplier  # noqa: E402
from product_noise.privacy import PrivacyWarning  # noqa: E402
from product_noise.training.loop import TrainConfig, train  # noqa: E402

DELTA = 1e-5
BLOG_EPS = (150.0, 2000.0, 200000.0)
BATCH_BUG_EPS = (150.0, 2000.0, 3000.0, 200000.0)
VERIFIED_EPS = (1.0, 8.0, 64.0, 1020.0)
HIDDEN = 64


def load(name: str, folder: Path, seed: int = 0) -> dict[str, Any]:
    """Flattened images in [0, 1] (float32) and int64 labels, seeded subsets."""
    rng = np.random.default_rng(seed)
    if name == "mnist":
        test = read_idx_splits(folder, ("test",))["test"]
        x, y = test.images.reshape(-1, 784), test.labels
        perm = rng.permutation(len(y))
        tr, te = perm[:8000], perm[8000:]
        xtr, ytr, xte, yte = x[tr], y[tr], x[te], y[te]
        note = "MNIST test set split 8,000/2,000 (the training images are not available)"
    else:
        read = read_idx_splits(folder, ("train", "test"), dataset="Fashion-MNIST")
        x, y = read["train"].images.reshape(-1, 784), read["train"].labels
        xt, yt = read["test"].images.reshape(-1, 784), read["test"].labels
        tr = rng.permutation(len(y))[:20000]
        te = rng.permutation(len(yt))[:5000]
        xtr, ytr, xte, yte = x[tr], y[tr], xt[te], yt[te]
        note = "Fashion-MNIST: 20,000 training / 5,000 test images (seeded subsets)"
    f = np.float32
    return {
        "X_train": (xtr / 255.0).astype(f),
        "y_train": ytr.astype(np.int64),
        "X_test": (xte / 255.0).astype(f),
        "y_test": yte.astype(np.int64),
        "note": note,
    }


def mlp(d: int = 784, k: int = 10) -> nn.Module:
    return nn.Sequential(nn.Linear(d, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, k))


def run_input_noise(data: dict[str, Any], eps: float, target: str, epochs: int) -> dict[str, Any]:
    delta = BLOG_DELTA if target == "claimed" else DELTA
    r = run_for_compare(
        data["X_train"],
        data["y_train"],
        data["X_test"],
        data["y_test"],
        image_shape=(1, 28, 28),
        epsilon=eps,
        delta=delta,
        target=target,
        seed=0,
        model_factory=lambda d, k: mlp(d, k),
        epochs=epochs,
        batch_size=128,
    )
    return {
        "accuracy": r["accuracy"],
        "claimed_epsilon": r["claimed"].epsilon if r["claimed"] else None,
        "claimed_delta": r["claimed"].delta if r["claimed"] else None,
        "verified_epsilon": r["verified"].epsilon,
        "verified_delta": r["verified"].delta,
        "verified_source": r["verified"].source,
        "noise_scale": r["noise_scale"],
        "seconds": r["train_seconds"],
    }


def run_batch_bug(data: dict[str, Any], eps: float, epochs: int) -> dict[str, Any]:
    """The blog's IIC preprocessing bug: each 700-image batch scaled to unit norm together."""
    t0 = time.perf_counter()
    tr = GaussianInputPerturbation(
        eps,
        BLOG_DELTA,
        calibration="classic",
        claimed_sensitivity=1.0,
        normalize="batch",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        tr.fit(data["X_train"])
    torch.manual_seed(0)
    acc, _ = train_classifier(
        mlp(),
        tr.transform(data["X_train"]),
        data["y_train"],
        tr.normalized(data["X_test"]),  # clean test images, batch-normalised the same way
        data["y_test"],
        epochs=epochs,
        batch_size=128,
        seed=0,
    )
    claimed, verified = tr.privacy_["claimed"], tr.privacy_["verified"]
    return {
        "accuracy": acc,
        "claimed_epsilon": claimed.epsilon,
        "claimed_delta": claimed.delta,
        "verified_epsilon": verified.epsilon,
        "verified_delta": verified.delta,
        "verified_source": verified.source,
        "noise_scale": tr.sigma_,
        "seconds": time.perf_counter() - t0,
    }


def run_clean(data: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The input-noise pipeline without noise: the MLP on clean unit-norm images."""
    t0 = time.perf_counter()

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    torch.manual_seed(0)
    acc, _ = train_classifier(
        mlp(),
        unit(data["X_train"]),
        data["y_train"],
        unit(data["X_test"]),
        data["y_test"],
        epochs=epochs,
        batch_size=128,
        seed=0,
    )
    return {
        "accuracy": acc,
        "claimed_epsilon": None,
        "claimed_delta": None,
        "verified_epsilon": None,
        "verified_delta": None,
        "verified_source": "non-private",
        "noise_scale": 0.0,
        "seconds": time.perf_counter() - t0,
    }


def run_dpsgd(
    data: dict[str, Any], eps: float | None, epochs: int, batch: int = 256
) -> dict[str, Any]:
    torch.manual_seed(0)
    model = mlp()
    dim = sum(p.numel() for p in model.parameters())
    n = data["X_train"].shape[0]
    q = batch / n
    steps = epochs * math.ceil(n / batch)
    t0 = time.perf_counter()
    nm = None
    if eps is not None:
        nm = calibrate_verified_noise_multiplier(
            Gaussian, eps, DELTA, dim=dim, sample_rate=q, steps=steps
        )
    calib = time.perf_counter() - t0
    cfg = TrainConfig(
        noise="gaussian" if eps is not None else "none",
        sigma=nm,
        epochs=epochs,
        batch_size=batch,
        lr=1e-3 if eps is not None else 1e-3,
        optimizer="adam",
        max_grad_norm=1.0,
        delta=DELTA,
        seed=0,
        privacy_every=epochs,
    )
    tr = TensorDataset(torch.from_numpy(data["X_train"]), torch.from_numpy(data["y_train"]))
    te = TensorDataset(torch.from_numpy(data["X_test"]), torch.from_numpy(data["y_test"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist = train(model, tr, te, cfg, progress=False)
    last = hist[-1]
    return {
        "accuracy": last["test_accuracy"],
        "claimed_epsilon": None,
        "claimed_delta": None,
        "verified_epsilon": last.get("verified_epsilon"),
        "verified_delta": last.get("verified_delta"),
        "verified_source": last.get("verified_source", "non-private"),
        "noise_scale": nm,
        "seconds": time.perf_counter() - t0,
        "calibration_seconds": calib,
        "steps": last["steps"],
    }


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        if math.isinf(x):
            return "inf"
        return f"{x:.4g}"
    return str(x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="MNIST only, ε ∈ {150, 8, 64}")
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion"])
    p.add_argument("--epochs", type=int, default=15, help="input-noise MLP epochs")
    p.add_argument("--dpsgd-epochs", type=int, default=5, help="DP-SGD epochs (batch 256)")
    p.add_argument("--out", default="runs/bench_input_noise.json")
    p.add_argument("--skip-dpsgd", action="store_true", help="input-noise rows only")
    add_data_root_argument(p)
    args = p.parse_args(argv)
    datasets = ["mnist"] if args.quick else args.datasets
    folders = {}
    for name in datasets:
        if name not in ("mnist", "fashion"):
            p.error(f"--datasets: {name!r} is not one of mnist, fashion")
        try:
            folders[name] = dataset_dir(
                args.data_root, "mnist" if name == "mnist" else "fashion-mnist"
            )
        except FileNotFoundError as err:
            p.error(str(err))
    torch.set_num_threads(1)
    blog_eps = (150.0,) if args.quick else BLOG_EPS
    ver_eps = (8.0, 64.0) if args.quick else VERIFIED_EPS
    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for name in datasets:
        data = load(name, folders[name])
        print(f"# {name}: {data['note']}", flush=True)

        def add(
            method: str, target: str, eps: float | None, res: dict[str, Any], name: str = name
        ) -> None:
            row = {"dataset": name, "method": method, "target": target, "target_epsilon": eps}
            row.update(res)
            rows.append(row)
            print(
                f"{name:8s} {method:12s} target {target:8s} ε={_fmt(eps):>8s}  "
                f"acc {res['accuracy']:.4f}  claimed ε {_fmt(res['claimed_epsilon'])}  "
                f"verified ε {_fmt(res['verified_epsilon'])} (δ {_fmt(res['verified_delta'])})  "
                f"σ {_fmt(res['noise_scale'])}  {res['seconds']:.1f} s",
                flush=True,
            )

        add("non-private-unit", "none", None, run_clean(data, args.epochs))
        if not args.skip_dpsgd:
            add("non-private", "none", None, run_dpsgd(data, None, args.dpsgd_epochs))
        for eps in blog_eps:
            add("blog", "claimed", eps, run_input_noise(data, eps, "claimed", args.epochs))
        for eps in () if args.quick else BATCH_BUG_EPS:
            add("blog-batch-bug", "claimed", eps, run_batch_bug(data, eps, args.epochs))
        for eps in ver_eps:
            add("input-noise", "verified", eps, run_input_noise(data, eps, "verified", args.epochs))
            if args.skip_dpsgd:
                continue
            try:
                res = run_dpsgd(data, eps, args.dpsgd_epochs)
            except ValueError as err:  # calibration out of range
                print(f"{name:8s} dpsgd ε={eps:g}: {err}", flush=True)
                continue
            add("dpsgd", "verified", eps, res)
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s\n")
    print("| dataset | method | target | ε target | accuracy | claimed ε | verified ε (δ) | σ |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['dataset']} | {r['method']} | {r['target']} | {_fmt(r['target_epsilon'])} | "
            f"{r['accuracy']:.3f} | {_fmt(r['claimed_epsilon'])} | "
            f"{_fmt(r['verified_epsilon'])} ({_fmt(r['verified_delta'])}) | "
            f"{_fmt(r['noise_scale'])} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
