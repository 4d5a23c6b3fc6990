"""Where the benchmark scripts find their local data (nothing is downloaded).

``$PRODUCT_NOISE_DATA`` names the directory that holds the upstream layouts (``mnist/``,
``adult/``, ``kddcup99/``, ``movielens-100k/``, ``imdb/``); without it, ``../shared/data`` beside
the repository is used. Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package
(``$FASHION_MNIST_ROOT`` overrides its location).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_root", "FASHION_MNIST"]

_REPO = Path(__file__).resolve().parents[1]

#: Debian's dataset-fashion-mnist IDX files
FASHION_MNIST = Path(os.environ.get("FASHION_MNIST_ROOT", "/usr/share/datasets/fashion-mnist"))


def data_root(name: str = "") -> Path:
    """``$PRODUCT_NOISE_DATA/name`` (default: ``<repository>/../shared/data/name``)."""
    base = os.environ.get("PRODUCT_NOISE_DATA")
    root = Path(base) if base else _REPO.parent / "shared" / "data"
    return root / name if name else root
