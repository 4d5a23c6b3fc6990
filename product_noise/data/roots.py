"""Where real data sets are found: ``--data-root`` or ``$PRODUCT_NOISE_DATA``.

No path is built in: the benchmark scripts and ``product-noise compare --preset`` take
``--data-root DIR`` and, without it, the environment variable ``PRODUCT_NOISE_DATA``. ``DIR``
holds one folder per data set in its upstream layout (nothing is downloaded):

==================  =====================================================================
folder              files
==================  =====================================================================
``mnist/``          ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]`` (and the
                    training files if present), or the same under ``MNIST/raw/``
``fashion-mnist/``  the four IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``
                    (Debian's ``dataset-fashion-mnist`` installs them in
                    ``/usr/share/datasets/fashion-mnist``: link that folder here), or the
                    same under ``FashionMNIST/raw/``
``adult/``          ``adult.data``, ``adult.test`` (UCI)
``kddcup99/``       ``kddcup.data_10_percent.gz`` (UCI KDD)
``imdb/``           ``imdb_labelled.txt`` (UCI Sentiment Labelled Sentences)
``movielens-100k/`` ``u.data`` (GroupLens ``ml-100k.zip``)
==================  =====================================================================

A missing root or data set is a :class:`~product_noise.data.loaders.DatasetNotFoundError` (bad
input: one ``error:`` line, exit 2) naming the files expected and where they come from.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .loaders import DatasetNotFoundError

__all__ = ["ENV", "DATASETS", "add_data_root_argument", "data_root", "dataset_dir"]

#: the one environment variable read for the data root
ENV = "PRODUCT_NOISE_DATA"

#: folder → (alternatives: each a tuple of files that must all be present, relative to the
#: folder, with ``[.gz]`` optional; description of the files and where they come from)
DATASETS: dict[str, tuple[tuple[tuple[str, ...], ...], str]] = {
    "mnist": (
        (
            ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
            ("MNIST/raw/t10k-images-idx3-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte"),
        ),
        "MNIST IDX files t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (the "
        "training files train-{images-idx3,labels-idx1}-ubyte[.gz] too, if you have them), "
        "directly in the folder or in MNIST/raw/; http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        (
            tuple(
                f"{p}-{k}-ubyte" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")
            ),
            tuple(
                f"FashionMNIST/raw/{p}-{k}-ubyte"
                for p in ("train", "t10k")
                for k in ("images-idx3", "labels-idx1")
            ),
        ),
        "Fashion-MNIST IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz], directly in "
        "the folder or in FashionMNIST/raw/; https://github.com/zalandoresearch/fashion-mnist "
        "(Debian's package dataset-fashion-mnist installs them in "
        "/usr/share/datasets/fashion-mnist: `ln -s /usr/share/datasets/fashion-mnist "
        "<data-root>/fashion-mnist`)",
    ),
    "adult": (
        (("adult.data", "adult.test"),),
        "UCI Adult adult.data and adult.test; https://archive.ics.uci.edu/dataset/2/adult",
    ),
    "kddcup99": (
        (("kddcup.data_10_percent",),),
        "KDD Cup 1999 kddcup.data_10_percent.gz; "
        "http://kdd.ics.uci.edu/databases/kddcup99/kddcup99.html",
    ),
    "imdb": (
        (("imdb_labelled.txt",),),
        "imdb_labelled.txt (sentence<TAB>label) from UCI 'Sentiment Labelled Sentences', "
        "https://archive.ics.uci.edu/dataset/331",
    ),
    "movielens-100k": (
        (("u.data",),),
        "MovieLens 100K u.data (from ml-100k.zip); https://grouplens.org/datasets/movielens/100k/",
    ),
}


def add_data_root_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-root`` (default: ``$PRODUCT_NOISE_DATA``) to ``parser``."""
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help=f"directory holding {', '.join(f'{n}/' for n in DATASETS)} in their upstream "
        f"layouts (default: ${ENV})",
    )


def _expected(names: tuple[str, ...] | list[str]) -> str:
    return "; ".join(f"{n}/: {DATASETS[n][1]}" for n in names)


def data_root(arg: str | Path | None = None, *, needs: tuple[str, ...] = ()) -> Path:
    """``arg`` (``--data-root``), else ``$PRODUCT_NOISE_DATA``.

    Raises
    ------
    DatasetNotFoundError
        If neither is given, or the directory does not exist; the message lists the folders
        and files expected (those of ``needs``, or all).
    """
    raw = arg if arg not in (None, "") else os.environ.get(ENV) or None
    names = list(needs) or list(DATASETS)
    if raw is None:
        raise DatasetNotFoundError(
            f"no data root: pass --data-root DIR or set {ENV}=DIR, where DIR holds "
            f"{_expected(names)}. Nothing is downloaded."
        )
    root = Path(raw).expanduser()
    if not root.is_dir():
        source = "--data-root" if arg not in (None, "") else f"${ENV}"
        raise DatasetNotFoundError(
            f"data root {str(root)!r} (from {source}) is not a directory; it should hold "
            f"{_expected(names)}. Nothing is downloaded."
        )
    return root


def _present(folder: Path, rel: str) -> bool:
    return (folder / rel).is_file() or (folder / (rel + ".gz")).is_file()


def dataset_dir(root: str | Path | None, name: str) -> Path:
    """``<data root>/name`` after checking that it holds the data set's files.

    Parameters
    ----------
    root : path or None
        ``--data-root`` as parsed (``None``: ``$PRODUCT_NOISE_DATA``).
    name : str
        A key of :data:`DATASETS`.

    Raises
    ------
    DatasetNotFoundError
        Naming the root, the folder, the files missing and where they come from.
    """
    base = data_root(root, needs=(name,))
    folder = base / name
    alternatives, description = DATASETS[name]
    if any(all(_present(folder, f) for f in alt) for alt in alternatives):
        return folder
    missing = [f for f in alternatives[0] if not _present(folder, f)]
    where = f"{folder} does not exist" if not folder.is_dir() else f"{folder} lacks"
    raise DatasetNotFoundError(
        f"{name}: {where} {', '.join(missing) if folder.is_dir() else ''}".rstrip()
        + f". Expected {name}/ under the data root {base}: {description}. Nothing is downloaded."
    )
