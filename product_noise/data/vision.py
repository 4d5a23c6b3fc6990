"""MNIST, Fashion-MNIST and CIFAR-10 files read through ``torchvision.datasets`` (no download).

The loaders of :mod:`product_noise.data.dpsgd` and :mod:`product_noise.data.loaders` read image
files here. Every accepted layout, and which reader handles it:

=====================================================  ==================================
layout under ``root``                                  reader
=====================================================  ==================================
``MNIST/raw/`` or ``FashionMNIST/raw/`` holding the    ``torchvision.datasets.MNIST`` /
four uncompressed IDX files (torchvision's layout)     ``FashionMNIST`` (``download=False``)
the same folders holding gzipped files, or the four    :func:`~product_noise.data.loaders.
IDX files (plain or ``.gz``) directly in ``root``      read_idx` (adapter, see below)
``cifar-10-batches-py/`` or the six batch files        ``torchvision.datasets.CIFAR10``
directly in ``root``                                   (one batch at a time, see below)
=====================================================  ==================================

Why an adapter for some MNIST layouts (torchvision 0.29.1, ``torchvision/datasets/mnist.py``):
``MNIST._check_exists`` looks only in ``<root>/<class name>/raw/`` and only for the four
*uncompressed* names (it strips ``.gz`` from its resource names, and requires all four files
even for ``train=False``), and ``read_sn3_pascalvincent_tensor`` opens the file with plain
``open``. A flat folder, or one holding only the ``.gz`` files as the upstream sites serve them
(Debian's ``dataset-fashion-mnist`` installs exactly that: a flat, gzipped
``/usr/share/datasets/fashion-mnist``), is "Dataset not found" there, so those layouts are read
by :func:`~product_noise.data.loaders.read_idx`, which returns the same uint8 arrays
(``tests/test_data_vision.py`` checks the equality). torchvision's reader also fails on a
malformed file with a bare ``AssertionError`` or a reshape error that names no file; the file
is then re-read with ``read_idx`` to name it and the fault.

Why a subclass for CIFAR-10 (torchvision 0.29.1, ``torchvision/datasets/cifar.py``):
``CIFAR10`` checks the md5 of each batch file and of ``batches.meta`` against the official
archive, requires ``batches.meta``, looks only in ``<root>/cifar-10-batches-py/`` and reads all
batches in one loop, so a malformed batch is reported without its file name. The subclass reads
one named batch per instance, in whatever folder holds it, without the md5 check (the files
are validated by their structure instead, as before: same-format fixtures must load) and without
requiring ``batches.meta`` (torchvision's class names are used when it is absent).

Nothing here downloads anything: every torchvision dataset is built with ``download=False``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..validation import InputError
from .loaders import DatasetNotFoundError, read_idx

__all__ = [
    "IDX_FILES",
    "IDX_SUBDIRS",
    "MNIST_SOURCES",
    "CIFAR10_FILES",
    "CIFAR10_SOURCE",
    "IDXSplit",
    "find_idx_files",
    "read_idx_splits",
    "read_cifar10_batches",
]

#: the two file stems (images, labels) of each split of an MNIST-format data set
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: where under ``root`` the IDX files are looked for, in this order
IDX_SUBDIRS = ("MNIST/raw", "FashionMNIST/raw", ".")
#: where the IDX files come from (for the missing-file message)
MNIST_SOURCES = (
    "MNIST: http://yann.lecun.com/exdb/mnist/ (mirror https://ossci-datasets.s3.amazonaws.com/"
    "mnist/); Fashion-MNIST: https://github.com/zalandoresearch/fashion-mnist (Debian's package "
    "dataset-fashion-mnist installs the four .gz files in /usr/share/datasets/fashion-mnist)"
)
#: the six CIFAR-10 python batches (``cifar-10-python.tar.gz`` unpacks them into
#: ``cifar-10-batches-py/``)
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR10_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

_TV_CLASS = {"MNIST/raw": "MNIST", "FashionMNIST/raw": "FashionMNIST"}


@dataclass
class IDXSplit:
    """One split of an MNIST-format data set.

    Attributes
    ----------
    images : ndarray of shape (n, rows, cols), uint8
        The images as stored (a writable array).
    labels : ndarray of shape (n,), int64
        The labels as stored.
    files : tuple of Path
        The image file and the label file read.
    reader : str
        ``"torchvision.datasets.MNIST"``, ``"torchvision.datasets.FashionMNIST"`` or
        ``"read_idx"`` (the adapter for layouts torchvision cannot read).
    """

    images: np.ndarray
    labels: np.ndarray
    files: tuple[Path, Path]
    reader: str


def _resolve(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):  # the uncompressed file first: torchvision reads it
        p = directory / name
        if p.is_file():
            return p
    return None


def find_idx_files(
    root: str | Path,
    splits: tuple[str, ...] = ("train", "test"),
    *,
    dataset: str = "MNIST",
    hint: str = "",
) -> tuple[Path, dict[str, Path]]:
    """The first folder of :data:`IDX_SUBDIRS` under ``root`` that holds every file of ``splits``.

    Parameters
    ----------
    root : str or Path
        Data directory.
    splits : tuple of {"train", "test"}
        The splits needed.
    dataset : str
        Name used in the error message.
    hint : str
        Appended to the error message (e.g. a flag to use when the training images are absent).

    Returns
    -------
    directory : Path
        The folder (``root/MNIST/raw``, ``root/FashionMNIST/raw`` or ``root``).
    files : dict
        Stem → file (plain preferred over ``.gz``) for every stem of ``splits``.

    Raises
    ------
    DatasetNotFoundError
        Naming the first missing file of the most complete folder, every folder searched with
        what it lacks, the expected layout and where the files come from.
    """
    root = Path(root)
    for s in splits:
        if s not in IDX_FILES:
            raise InputError(f"splits must be drawn from ('train', 'test'), got {s!r}")
    stems = [stem for s in splits for stem in IDX_FILES[s]]
    found: list[tuple[Path, dict[str, Path], list[str]]] = []
    for sub in IDX_SUBDIRS:
        d = root if sub == "." else root / sub
        files = {stem: p for stem in stems if (p := _resolve(d, stem)) is not None}
        missing = [stem for stem in stems if stem not in files]
        if not missing:
            return d, files
        found.append((d, files, missing))
    best = min(found, key=lambda t: len(t[2]))  # ties: the first (torchvision's layout)
    first = best[0] / best[2][0]
    searched = "; ".join(
        f"{d} lacks {', '.join(m)}" if d.is_dir() else f"{d} is not a directory"
        for d, _, m in found
    )
    raise DatasetNotFoundError(
        f"{dataset}: file {str(first)!r} not found (nor {str(first) + '.gz'!r}). Searched: "
        f"{searched}. Expected layout: the IDX files "
        + ", ".join(f"{s}[.gz]" for s in stems)
        + " in <root>/MNIST/raw/ or <root>/FashionMNIST/raw/ (torchvision's layout) or directly "
        f"in <root>, plain or gzipped. Upstream: {MNIST_SOURCES}. Nothing is downloaded."
        + (f" {hint}" if hint else "")
    )


def _read_with_torchvision(root: Path, cls_name: str, split: str, img: Path, lab: Path):
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:
        ds = cls(str(root), train=split == "train", download=False)
        return ds.data.numpy(), ds.targets.numpy().astype(np.int64)
    except (AssertionError, RuntimeError, ValueError, TypeError, OSError, IndexError) as err:
        # torchvision names no file: re-read each with read_idx, which names it and the fault
        read_idx(img, ndim=3)
        read_idx(lab, ndim=1)
        raise InputError(
            f"{img.parent}: torchvision.datasets.{cls_name} could not read the {split} files "
            f"({type(err).__name__}: {err})"
        ) from err


def read_idx_splits(
    root: str | Path,
    splits: tuple[str, ...] = ("train", "test"),
    *,
    dataset: str = "MNIST",
    hint: str = "",
) -> dict[str, IDXSplit]:
    """Read MNIST-format splits: through torchvision where its layout applies, else the adapter.

    ``torchvision.datasets.MNIST`` (or ``FashionMNIST``, after the folder) reads the files when
    they are in ``<root>/MNIST/raw/`` (``<root>/FashionMNIST/raw/``) and all four are there
    uncompressed, which is what torchvision itself requires; every other accepted layout is read
    by :func:`~product_noise.data.loaders.read_idx` (see the module docstring for why).

    Parameters
    ----------
    root : str or Path
        Data directory.
    splits : tuple of {"train", "test"}
        The splits to read.
    dataset, hint : str
        For the missing-file message (see :func:`find_idx_files`).

    Returns
    -------
    dict
        Split → :class:`IDXSplit`.

    Raises
    ------
    DatasetNotFoundError
        If a file is missing (the message names the files expected and where they come from).
    ValueError
        If a file is malformed (one line naming the file), or a split's images and labels
        differ in number.
    """
    root = Path(root)
    directory, files = find_idx_files(root, splits, dataset=dataset, hint=hint)
    sub = directory.relative_to(root).as_posix() if directory != root else "."
    cls_name = _TV_CLASS.get(sub)
    if cls_name is not None:  # torchvision needs the four uncompressed files, whatever the split
        if not all((directory / stem).is_file() for pair in IDX_FILES.values() for stem in pair):
            cls_name = None
    out = {}
    for split in splits:
        img_f, lab_f = (files[stem] for stem in IDX_FILES[split])
        if cls_name is not None:
            images, labels = _read_with_torchvision(root, cls_name, split, img_f, lab_f)
            reader = f"torchvision.datasets.{cls_name}"
        else:
            images = read_idx(img_f, ndim=3).copy()  # writable, as torchvision's arrays
            labels = read_idx(lab_f, ndim=1).astype(np.int64)
            reader = "read_idx"
        if images.shape[0] != labels.shape[0]:
            raise InputError(
                f"{lab_f}: {labels.shape[0]} labels do not match the {images.shape[0]} images "
                f"of {img_f}"
            )
        out[split] = IDXSplit(images, labels, (img_f, lab_f), reader)
    return out


# ----------------------------------------------------------------------------- CIFAR-10
def _cifar_batch_class():
    import torchvision.datasets as tvd

    class CIFAR10Batch(tvd.CIFAR10):
        """One CIFAR-10 python batch ``directory/name`` read by ``torchvision.datasets.CIFAR10``.

        ``train_list`` is that one file with no md5 (so same-format files other than the
        official ones load, as before), ``base_folder`` is the folder holding it, and a missing
        ``batches.meta`` gives torchvision's class names instead of an error.
        """

        meta = {**tvd.CIFAR10.meta, "md5": None}

        def __init__(self, directory: Path, name: str) -> None:
            self.base_folder = directory.name
            self.train_list = [[name, None]]
            self.test_list = []
            super().__init__(str(directory.parent), train=True, download=False)

        def _load_meta(self) -> None:
            if (Path(self.root) / self.base_folder / self.meta["filename"]).is_file():
                super()._load_meta()
            else:
                self.classes = list(_CIFAR10_CLASSES)
                self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return CIFAR10Batch


_CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _cifar_layout() -> str:
    return (
        "<root>/cifar-10-batches-py/{data_batch_1..data_batch_5,test_batch} (python pickles of "
        "{'data': uint8 (N, 3072), 'labels': [int]}, as unpacked from "
        f"{CIFAR10_SOURCE}; torchvision's layout) or those files directly in <root>"
    )


def read_cifar10_batches(root: str | Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], Path]:
    """The six CIFAR-10 batches read by ``torchvision.datasets.CIFAR10`` (one batch at a time).

    Parameters
    ----------
    root : str or Path
        ``<root>/cifar-10-batches-py/`` or a directory holding the six batch files.

    Returns
    -------
    batches : dict
        Batch name (:data:`CIFAR10_FILES`) → (uint8 images of shape (N, 3, 32, 32), int64
        labels of shape (N,)).
    directory : Path
        The folder read.

    Raises
    ------
    DatasetNotFoundError
        If a batch is missing (the message gives the expected layout and the upstream archive).
    ValueError
        If a batch is malformed (one line naming the file), or a label is not in 0..9.
    """
    root = Path(root).resolve()
    dirs = [root / "cifar-10-batches-py", root]
    directory = next((d for d in dirs if all((d / n).is_file() for n in CIFAR10_FILES)), None)
    if directory is None:
        d = max(dirs, key=lambda d: sum((d / n).is_file() for n in CIFAR10_FILES))
        missing = [n for n in CIFAR10_FILES if not (d / n).is_file()]
        others = [str(o / missing[0]) for o in dirs if o != d]
        raise DatasetNotFoundError(
            f"CIFAR-10: file {str(d / missing[0])!r} not found (also looked for "
            f"{', '.join(repr(o) for o in others)}"
            + (f"; {d} also lacks {', '.join(missing[1:])}" if missing[1:] else "")
            + f"). Expected layout: {_cifar_layout()}. Nothing is downloaded."
        )
    cls = _cifar_batch_class()
    out = {}
    for name in CIFAR10_FILES:
        path = directory / name
        try:
            ds = cls(directory, name)
        except KeyError as err:
            if err.args and err.args[0] in ("data", "fine_labels"):
                raise InputError(
                    f"{path}: expected a pickled dict with keys 'data' and 'labels' (str keys, as "
                    f"in {CIFAR10_SOURCE}); key {err.args[0]!r} is missing"
                ) from None
            raise InputError(f"{path}: not a CIFAR-10 python pickle (KeyError: {err})") from None
        except ValueError as err:
            if "reshape" in str(err):  # torchvision's reshape of 'data' to (N, 3, 32, 32)
                raise InputError(
                    f"{path}: expected 'data' of shape (N, 3072) and N labels ({err})"
                ) from None
            raise InputError(f"{path}: not a CIFAR-10 python pickle ({err})") from None
        except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError) as err:
            raise InputError(f"{path}: not a CIFAR-10 python pickle ({err})") from None
        # torchvision stores HWC; back to the CHW rows of the file
        images = np.ascontiguousarray(np.asarray(ds.data, dtype=np.uint8).transpose(0, 3, 1, 2))
        labels = np.asarray(ds.targets, dtype=np.int64)
        if images.shape[0] != labels.shape[0]:
            raise InputError(
                f"{path}: expected 'data' of shape (N, 3072) and N labels, got {images.shape[0]} "
                f"images and {labels.shape[0]} labels"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise InputError(
                f"{path}: CIFAR-10 labels must lie in 0..9, found {labels.min()}..{labels.max()}"
            )
        out[name] = (images, labels)
    return out, directory
