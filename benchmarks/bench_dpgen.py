"""DP image generation (DP-EFSGD baseline) against DPMix and DP-SGD at the same verified ε.

For each data set (reduced size, CPU) and verified (ε, δ) = (10, 1e-5) by default:

* **DP-EFSGD** (:class:`product_noise.baselines.dpgen.DPGenerator`): joint noise multiplier
  calibrated on the verified (joint) accountant; its claimed (GS-WGAN/DPAC accountant) ε is
  printed next to it. Two references of the same structure: ``noise_multiplier = 0`` (no
  privacy, ε = inf: the ceiling of this reduced-scale GAN) and σ calibrated on the *claimed*
  accountant (the lineage's "ε = 10"; its verified ε is printed).
* **DPMix** (:class:`dpmix.DPMix`, class-conditional mixing, verified WBK accountant at the
  same ε; δ as given).
* **DP-SGD**: the classifier trained directly with :func:`product_noise.training.loop.train` and the
  package's PrivacyEngine (Gaussian noise, Poisson sampling), σ calibrated so that the
  ``dp_accounting`` PLD ε of the run is the target (no synthetic images, so no FID).
* **real data** (non-private reference): the classifier trained on the real training split,
  and the FID between real training and real test images (the floor of the metric).

Metrics: gen2real accuracy of :class:`~product_noise.baselines.dpgen.models.SmallCNN` (trained
on as many synthetic images as there are private ones, tested on real test images) and
"FID" = Fréchet distance of the 64-dimensional penultimate features of a SmallCNN trained on the
real training split, 2,000 synthetic vs 2,000 real test images. This FID is **not** comparable
in scale with Inception-FID (the paper reports Inception-FID 49.41 MNIST, 83.48 Fashion-MNIST at
its claimed ε = 10).

Data sets: ``fashion-mnist`` (``<data root>/fashion-mnist``: a seeded ``--n-train`` subset of
the 60k training images, the first 2,000 test images) and ``mnist-test-split`` (``<data
root>/mnist``; only the MNIST t10k files exist here: a seeded 8,000/2,000 split; the training
images are not used). The data root is ``--data-root`` or ``$PRODUCT_NOISE_DATA`` (see
``_data.py``); a data set whose files are missing is skipped with a message naming them.

Example::

    PYTHONPATH=. python benchmarks/bench_dpgen.py --out runs/bench_dpgen
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _data import add_data_root_argument, data_root, dataset_dir  # noqa: E402  (this script's folder is on sys.path)

from product_noise.baselines.dpgen import (  # noqa: E402
    DPGenConfig,
    DPGenerator,
    FeatureFID,
    calibrate_noise_multiplier,
    downstream_accuracy,
    save_image_grid,
)
from product_noise.data.loaders import DatasetNotFoundError  # noqa: E402
from product_noise.data.vision import read_idx_splits  # noqa: E402


def _pixels(root, splits: tuple[str, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    read = read_idx_splits(root, splits)
    return [(read[s].images.astype(np.float32) / 255.0, read[s].labels) for s in splits]


def load(name: str, data_root_arg, n_train: int, seed: int):
    rng = np.random.default_rng(seed)
    if name == "fashion-mnist":
        (X, y), (Xt, yt) = _pixels(dataset_dir(data_root_arg, "fashion-mnist"), ("train", "test"))
        idx = rng.permutation(len(y))[:n_train]
        return X[idx], y[idx], Xt[:2000], yt[:2000]
    ((X, y),) = _pixels(dataset_dir(data_root_arg, "mnist"), ("test",))
    perm = rng.permutation(len(y))
    tr, te = perm[: min(n_train, 8000)], perm[8000:]
    return X[tr], y[tr], X[te], y[te]


def run_dpgen(cfg, X, y, Xt, yt, fid, args, label, out):
    t0 = time.perf_counter()
    g = DPGenerator(cfg, progress=args.progress).fit(X, y, num_classes=10)
    fit_s = time.perf_counter() - t0
    Xs, ys = g.sample(len(X), seed=args.seed)
    acc = downstream_accuracy(Xs, ys, Xt, yt, epochs=args.clf_epochs, seed=args.seed)
    f = fid.score(Xs[:2000], Xt)
    save_image_grid(Xs[:100], out / f"{label}.png", nrow=10, title=label)
    return {
        "method": label,
        "accuracy": acc,
        "fid_smallcnn": f,
        "verified": g.privacy_["verified"].to_dict(),
        "claimed": g.privacy_["claimed"].to_dict(),
        "noise_multiplier": g.noise_multiplier_,
        "noise_std": g.noise_std_,
        "seconds": time.perf_counter() - t0,
        "fit_seconds": fit_s,
    }


def run_dpmix(X, y, Xt, yt, fid, args, out):
    from dpmix import DPMix, one_hot

    t0 = time.perf_counter()
    mix = DPMix(
        args.dpmix_l,
        len(X),
        target_epsilon=args.epsilon,
        target_delta=args.delta,
        mixing="class",
        clamp_negative=True,
        seed=args.seed,
    )
    Xs, Ys = mix.publish(X.reshape(len(X), -1), one_hot(y, 10).astype(np.float32))
    ys = np.asarray(Ys).argmax(1)
    Xs = np.clip(np.asarray(Xs).reshape(-1, 1, 28, 28), 0.0, 1.0)  # post-processing
    acc = downstream_accuracy(Xs, ys, Xt, yt, epochs=args.clf_epochs, seed=args.seed)
    f = fid.score(Xs[np.random.default_rng(0).permutation(len(Xs))[:2000]], Xt)
    save_image_grid(Xs[:: max(1, len(Xs) // 100)][:100], out / "dpmix.png", title="DPMix")
    return {
        "method": f"DPMix class l={args.dpmix_l}",
        "accuracy": acc,
        "fid_smallcnn": f,
        "verified": mix.privacy(args.delta).to_dict(),
        "claimed": mix.claimed_privacy(args.delta).to_dict(),
        "noise_multiplier": mix.release_.sigma_x,
        "seconds": time.perf_counter() - t0,
    }


def run_dpsgd(X, y, Xt, yt, args):
    from torch.utils.data import TensorDataset

    from product_noise.baselines.dpgen.models import SmallCNN
    from product_noise.training.loop import TrainConfig, train

    t0 = time.perf_counter()
    n = len(X)
    q = args.dpsgd_batch / n
    steps = args.dpsgd_epochs * math.ceil(n / args.dpsgd_batch)
    # the Poisson-subsampled Gaussian DP-SGD step has the same accountant as one DP-EFSGD step:
    # verified_epsilon(σ, ndis=1/q, ...) needs an integer 1/q, so calibrate directly here
    import dp_accounting
    from dp_accounting.pld import PLDAccountant

    def eps(s: float) -> float:
        acc = PLDAccountant(value_discretization_interval=1e-3)
        acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(s)), steps)
        return float(acc.get_epsilon(args.delta))

    lo, hi = 0.3, 1.0
    while eps(hi) > args.epsilon:
        lo, hi = hi, 2 * hi
    while hi / lo > 1.005:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if eps(mid) > args.epsilon else (lo, mid)
    sigma = hi
    torch.manual_seed(args.seed)
    model = SmallCNN(28, 10)
    tr = TensorDataset(torch.from_numpy(X[:, None]), torch.from_numpy(y))
    te = TensorDataset(torch.from_numpy(Xt[:, None]), torch.from_numpy(yt))
    cfg = TrainConfig(
        noise="gaussian",
        sigma=sigma,
        epochs=args.dpsgd_epochs,
        batch_size=args.dpsgd_batch,
        optimizer="adam",
        lr=2e-3,
        max_grad_norm=1.0,
        delta=args.delta,
        seed=args.seed,
        privacy_every=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist = train(model, tr, te, cfg, progress=False)
    got_steps = hist[-1]["steps"]
    acc = PLDAccountant(value_discretization_interval=1e-3)
    acc.compose(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), got_steps
    )
    return {
        "method": "DP-SGD (SmallCNN, Gaussian, Poisson)",
        "accuracy": hist[-1]["test_accuracy"],
        "fid_smallcnn": None,
        "verified": {
            "epsilon": float(acc.get_epsilon(args.delta)),
            "delta": args.delta,
            "label": "verified",
            "source": f"Poisson-subsampled Gaussian q={q:.4g}, σ={sigma:.4g}, {got_steps} steps, "
            "dp_accounting PLD",
        },
        "claimed": None,
        "noise_multiplier": sigma,
        "seconds": time.perf_counter() - t0,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--datasets",
        nargs="+",
        default=["fashion-mnist", "mnist-test-split"],
        choices=["fashion-mnist", "mnist-test-split"],
    )
    p.add_argument("--n-train", type=int, default=6000, help="private training images")
    p.add_argument("--epsilon", type=float, default=10.0)
    p.add_argument("--delta", type=float, default=1e-5)
    p.add_argument("--steps", type=int, default=1500, help="DP-EFSGD generator steps")
    p.add_argument("--ndis", type=int, default=60, help="DP-EFSGD discriminators/shards")
    p.add_argument("--batch", type=int, default=32, help="DP-EFSGD generated images per step")
    p.add_argument("--clf-epochs", type=int, default=5, help="gen2real classifier epochs")
    p.add_argument("--dpmix-l", type=int, default=64)
    p.add_argument("--dpsgd-epochs", type=int, default=10)
    p.add_argument("--dpsgd-batch", type=int, default=256)
    p.add_argument(
        "--methods",
        nargs="+",
        default=["verified", "claimed", "nonprivate", "dpmix", "dpsgd"],
        choices=["verified", "claimed", "nonprivate", "dpmix", "dpsgd"],
        help="DP-EFSGD runs (verified / claimed target, non-private) and the comparators",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--out", default="runs/bench_dpgen")
    add_data_root_argument(p)
    args = p.parse_args(argv)
    try:
        data_root(args.data_root, needs=("fashion-mnist", "mnist"))
    except FileNotFoundError as err:
        p.error(str(err))
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.datasets:
        try:
            X, y, Xt, yt = load(name, args.data_root, args.n_train, args.seed)
        except (FileNotFoundError, DatasetNotFoundError) as err:
            print(f"[{name}] skipped: {err}")
            continue
        X, Xt = X.astype(np.float32), Xt.astype(np.float32)
        print(f"[{name}] {len(X)} private / {len(Xt)} test images", flush=True)
        d = out / name
        d.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        fid = FeatureFID(epochs=3, seed=args.seed).fit(X, y)
        rows = [
            {
                "method": "real data (non-private reference)",
                "accuracy": downstream_accuracy(
                    X, y, Xt, yt, epochs=args.clf_epochs, seed=args.seed
                ),
                "fid_smallcnn": fid.score(X[:2000], Xt),
                "verified": None,
                "claimed": None,
                "seconds": time.perf_counter() - t0,
            }
        ]
        base = dict(
            num_discriminators=args.ndis,
            batch_size=args.batch,
            steps=args.steps,
            target_delta=args.delta,
            seed=args.seed,
        )
        kw = dict(
            num_discriminators=args.ndis,
            steps=args.steps,
            batch_size=args.batch,
            clip_norm=1.0,
            error_clip=1.0,
        )
        runs = []
        if "verified" in args.methods:
            sig = calibrate_noise_multiplier(args.epsilon, args.delta, target="verified", **kw)
            runs.append(("dpefsgd_verified", sig))
        if "claimed" in args.methods:
            try:
                sig = calibrate_noise_multiplier(args.epsilon, args.delta, target="claimed", **kw)
                runs.append(("dpefsgd_claimed_target", sig))
            except ValueError as err:  # the lineage's accountant has a floor (WBK Thm 9)
                print(f"claimed target skipped: {err}", flush=True)
        if "nonprivate" in args.methods:
            runs.append(("dpefsgd_nonprivate", 0.0))
        for label, sig in runs:
            cfg = DPGenConfig(noise_multiplier=sig, **base)
            rows.append(run_dpgen(cfg, X, y, Xt, yt, fid, args, label, d))
            print(json.dumps(rows[-1]["method"]), f"{rows[-1]['seconds']:.0f}s", flush=True)
        if "dpmix" in args.methods:
            rows.append(run_dpmix(X, y, Xt, yt, fid, args, d))
            print("dpmix done", flush=True)
        if "dpsgd" in args.methods:
            rows.append(run_dpsgd(X, y, Xt, yt, args))
            print("dpsgd done", flush=True)
        for r in rows:
            r["dataset"] = name
        results.extend(rows)
        print(f"\n== {name}: verified target ε = {args.epsilon}, δ = {args.delta} ==")
        print(
            f"{'method':40s} {'acc':>6s} {'FID(SmallCNN)':>13s} {'verified ε':>11s} "
            f"{'claimed ε':>10s} {'s':>6s}"
        )
        for r in rows:
            ve = "—" if r["verified"] is None else f"{r['verified']['epsilon']:.4g}"
            ce = "—" if r["claimed"] is None else f"{r['claimed']['epsilon']:.4g}"
            fd = "—" if r["fid_smallcnn"] is None else f"{r['fid_smallcnn']:.2f}"
            print(
                f"{r['method']:40s} {r['accuracy']:6.3f} {fd:>13s} {ve:>11s} {ce:>10s} "
                f"{r['seconds']:6.0f}"
            )
        (out / "results.json").write_text(
            json.dumps({"args": vars(args), "rows": results}, indent=1)
        )
    print(f"\nwrote {out / 'results.json'} and image grids under {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
