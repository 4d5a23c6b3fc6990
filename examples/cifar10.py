"""DP-SGD on CIFAR-10 with product noise, Gaussian noise or none (the paper's official defaults).

CifarConvNet (131,466 parameters), SGD lr 0.25, momentum 0.9, cosine schedule, batch 512
(Poisson), 5 epochs, C = 1.5; product noise ε₀ = 1.0, k = 300,000; Gaussian σ = 0.5. No
augmentation (DP training).

Example::

    PYTHONPATH=. python examples/cifar10.py --data-root ~/data   # <root>/cifar-10-batches-py/
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _common import Defaults, build_parser, entry, parse, run

from product_noise.data.dpsgd import load_cifar10
from product_noise.training.models import CifarConvNet

DEFAULTS = Defaults(
    dataset="cifar10",
    epochs=5,
    batch_size=512,
    lr=0.25,
    optimizer="sgd",
    momentum=0.9,
    lr_schedule="cos",
    max_grad_norm=1.5,
    epsilon0=1.0,
    k=300_000,
    sigma=0.5,
    data_root="data/cifar10",
)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, train, print per-epoch lines and write the results."""
    parser = build_parser(DEFAULTS, __doc__.splitlines()[0])
    args = parse(parser, DEFAULTS, argv)
    data = load_cifar10(args.data_root)
    return run(args, DEFAULTS, data, CifarConvNet, model_name="CifarConvNet")


if __name__ == "__main__":
    entry(main)
