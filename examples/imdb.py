"""DP-SGD on IMDB sentiment with product noise, Gaussian noise or none (official defaults).

ImdbNet: Embedding(28,996, 16) → mean over tokens → 16 → 2 (464,242 parameters), Adam lr 0.02,
batch 512, 60 epochs, C = 1.0; product noise ε₀ = 1.0, k = 40,000; Gaussian σ = 0.56. Unlike
the official script, batches are Poisson-sampled (the amplification in every accountant
assumes it). Offline tokenizer: lowercase regex words, vocabulary from the training text
(ids 0 = pad, 1 = unknown), at most 256 tokens.

Examples::

    PYTHONPATH=. python examples/imdb.py --data-root ~/data           # <root>/aclImdb/...
    PYTHONPATH=. python examples/imdb.py --data-root $PRODUCT_NOISE_DATA/imdb  # imdb_labelled.txt
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _common import Defaults, build_parser, entry, parse, run

from product_noise.data.dpsgd import IMDB_MAX_LENGTH, IMDB_VOCAB_SIZE, load_imdb
from product_noise.training.models import ImdbNet

DEFAULTS = Defaults(
    dataset="imdb",
    epochs=60,
    batch_size=512,
    lr=0.02,
    optimizer="adam",
    max_grad_norm=1.0,
    epsilon0=1.0,
    k=40_000,
    sigma=0.56,
    data_root="data/imdb",
)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, train, print per-epoch lines and write the results."""
    parser = build_parser(DEFAULTS, __doc__.splitlines()[0])
    parser.add_argument(
        "--layout",
        choices=("auto", "aclimdb", "labelled"),
        default="auto",
        help="aclImdb folders or imdb_labelled.txt ('auto' prefers aclImdb)",
    )
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=IMDB_VOCAB_SIZE,
        help="token ids incl. pad and unk (28,996 keeps the paper's 464,242 parameters)",
    )
    parser.add_argument("--max-sequence-length", type=int, default=IMDB_MAX_LENGTH)
    parser.add_argument(
        "--test-frac", type=float, default=0.2, help="test share of imdb_labelled.txt"
    )
    args = parse(parser, DEFAULTS, argv)
    if args.max_sequence_length < 1:
        parser.error("--max-sequence-length must be ≥ 1")
    if not 0 < args.test_frac < 1:
        parser.error("--test-frac must be in (0, 1)")
    data = load_imdb(
        args.data_root,
        layout=args.layout,
        vocab_size=args.vocab_size,
        max_length=args.max_sequence_length,
        seed=args.seed,
        test_frac=args.test_frac,
    )
    v = args.vocab_size
    return run(args, DEFAULTS, data, lambda: ImdbNet(v), model_name=f"ImdbNet(V={v})")


if __name__ == "__main__":
    entry(main)
