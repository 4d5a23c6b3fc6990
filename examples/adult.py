"""DP-SGD on UCI Adult with product noise, Gaussian noise or none (the paper's official defaults).

MLP d → 16 → 2 on one-hot (every categorical, including '?') and standardized features
(d = 108 on the UCI files: 1,778 parameters), SGD lr 0.15, batch 256 (Poisson), 40 epochs,
C = 1.0; product noise ε₀ = 0.8, k = 150,000; Gaussian σ = 0.55. Official split: adult.data
80/20 with random_state 42.

Example::

    PYTHONPATH=. python examples/adult.py --data-root $PRODUCT_NOISE_DATA/adult
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _common import Defaults, build_parser, entry, parse, run

from product_noise.data.dpsgd import load_adult_dpsgd
from product_noise.training.models import AdultMLP

DEFAULTS = Defaults(
    dataset="adult",
    epochs=40,
    batch_size=256,
    lr=0.15,
    optimizer="sgd",
    max_grad_norm=1.0,
    epsilon0=0.8,
    k=150_000,
    sigma=0.55,
    data_root="data/adult",
)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, train, print per-epoch lines and write the results."""
    parser = build_parser(DEFAULTS, __doc__.splitlines()[0])
    parser.add_argument(
        "--split",
        choices=("official", "uci"),
        default="official",
        help="'official': adult.data 80/20 (random_state = --split-seed); "
        "'uci': train adult.data, test adult.test",
    )
    parser.add_argument("--split-seed", type=int, default=42, help="seed of the official split")
    args = parse(parser, DEFAULTS, argv)
    data = load_adult_dpsgd(args.data_root, split=args.split, seed=args.split_seed)
    d = data.info["in_features"]
    return run(args, DEFAULTS, data, lambda: AdultMLP(d), model_name=f"AdultMLP({d}→16→2)")


if __name__ == "__main__":
    entry(main)
