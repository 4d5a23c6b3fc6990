"""One MNIST epoch with product noise vs the same epoch with Gaussian noise (same process).

Both runs use the example's model, data, seed, batch size and clip norm; only the noise
differs (product at the paper's ε₀ = 0.3, k = 40,000; Gaussian σ = 1.3). Runs alternate
(product, Gaussian, Gaussian, product, …) to spread machine load evenly, and the ratio of the
median epoch times (training + evaluation, privacy accounting excluded) is printed; target
≤ 1.05.

Data: the MNIST IDX files in ``<data root>/mnist``, the data root being ``--data-root`` or
``$PRODUCT_NOISE_DATA`` (see ``_data.py``); without training images the 10,000 test images are
split 80/20 (as ``examples/mnist.py --train-on-test-split``).

Usage::

    PYTHONPATH=. python benchmarks/bench_examples.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from _data import add_data_root_argument, dataset_dir  # noqa: E402  (this script's folder is on sys.path)

from product_noise.data.dpsgd import load_mnist_dpsgd  # noqa: E402
from product_noise.data.loaders import DatasetNotFoundError  # noqa: E402
from product_noise.training.loop import TrainConfig, train  # noqa: E402
from product_noise.training.models import SampleConvNet  # noqa: E402


def epoch_seconds(noise: str, data, batch_size: int, seed: int) -> float:
    """Wall time of one training epoch (plus evaluation) with ``noise``."""
    kw = {"sigma": 1.3} if noise == "gaussian" else {}
    cfg = TrainConfig(noise=noise, epochs=1, batch_size=batch_size, seed=seed, **kw)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # privacy is computed after the timed part of the epoch (row["seconds"])
        (row,) = train(SampleConvNet(), data.train, data.test, cfg, progress=False)
    return float(row["seconds"])


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_root_argument(p)
    p.add_argument("--repeats", type=int, default=3, help="epochs per noise (alternating)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = p.parse_args(argv)
    try:
        folder = dataset_dir(args.data_root, "mnist")
    except FileNotFoundError as err:
        p.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        data = load_mnist_dpsgd(folder)
        what = "MNIST train/test"
    except DatasetNotFoundError:
        data = load_mnist_dpsgd(folder, train_on_test_split=True)
        what = "MNIST test images split 80/20"
    print(f"data: {what} ({data.n_train} train), batch {args.batch_size}")
    times: dict[str, list[float]] = {"product": [], "gaussian": []}
    order = ["product", "gaussian"]
    t0 = time.perf_counter()
    for i in range(args.repeats):
        for noise in order if i % 2 == 0 else order[::-1]:
            s = epoch_seconds(noise, data, args.batch_size, seed=i)
            times[noise].append(s)
            print(f"  repeat {i + 1}: {noise:8s} {s:7.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["product"] / med["gaussian"]
    best = min(times["product"]) / min(times["gaussian"])
    # adjacent runs share the machine's load best: the median of the per-repeat ratios
    pairs = [p / g for p, g in zip(times["product"], times["gaussian"])]
    pair = statistics.median(pairs)
    print(
        f"median epoch: product {med['product']:.2f} s, gaussian {med['gaussian']:.2f} s → "
        f"ratio {ratio:.3f}; min/min {best:.3f}; median of per-repeat ratios {pair:.3f} "
        f"({', '.join(f'{r:.3f}' for r in pairs)}); target ≤ 1.05: "
        f"{'PASS' if pair <= 1.05 else 'FAIL'} (per-repeat median) "
        f"[{time.perf_counter() - t0:.0f} s total]"
    )
    return pair


if __name__ == "__main__":
    main()
