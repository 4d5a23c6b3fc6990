"""DP-SGD on MNIST with product noise, Gaussian noise or none (the paper's official defaults).

SampleConvNet (26,010 parameters), SGD lr 0.15, batch 256 (Poisson), 50 epochs, C = 1.0;
product noise ε₀ = 0.3, k = 40,000; Gaussian σ = 1.3.

Examples::

    PYTHONPATH=. python examples/mnist.py --data-root ~/data            # <root>/MNIST/raw/...
    PYTHONPATH=. python examples/mnist.py --noise gaussian --sigma 0.7 --lr 0.25 -c 1.5 -b 64 \\
        -n 1 --data-root /usr/share/datasets/fashion-mnist              # Opacus' CI settings
    PYTHONPATH=. python examples/mnist.py --data-root $PRODUCT_NOISE_DATA/mnist \\
        --train-on-test-split                                           # no training images
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _common import Defaults, build_parser, entry, parse, run

from product_noise.data.dpsgd import load_mnist_dpsgd
from product_noise.training.models import SampleConvNet

DEFAULTS = Defaults(
    dataset="mnist",
    epochs=50,
    batch_size=256,
    lr=0.15,
    optimizer="sgd",
    max_grad_norm=1.0,
    epsilon0=0.3,
    k=40_000,
    sigma=1.3,
    data_root="data/mnist",
)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, train, print per-epoch lines and write the results."""
    parser = build_parser(DEFAULTS, __doc__.splitlines()[0])
    parser.add_argument(
        "--train-on-test-split",
        action="store_true",
        help="train on a seeded 80%% of the 10,000 test images and test on the rest "
        "(when train-images-idx3-ubyte is not available)",
    )
    args = parse(parser, DEFAULTS, argv)
    data = load_mnist_dpsgd(
        args.data_root, train_on_test_split=args.train_on_test_split, seed=args.seed
    )
    return run(args, DEFAULTS, data, SampleConvNet, model_name="SampleConvNet")


if __name__ == "__main__":
    entry(main)
