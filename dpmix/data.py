"""Read MNIST-format IDX files (MNIST, Fashion-MNIST) from a local directory.

Accepted layouts under ``root`` (the first that holds all four files wins):

* ``root/MNIST/raw/`` or ``root/FashionMNIST/raw/`` (torchvision);
* ``root/`` itself (a plain directory with the four files).

Each file may be plain or gzip-compressed (``.gz``). Nothing is downloaded.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

__all__ = ["IDX_FILES", "find_idx_dir", "read_idx", "load_mnist"]

#: the four file stems of an MNIST-format data set
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SUBDIRS = ("MNIST/raw", "FashionMNIST/raw", ".")


def _resolve(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        p = directory / name
        if p.is_file():
            return p
    return None


def find_idx_dir(root: str | Path, splits: tuple[str, ...] = ("train", "test")) -> Path:
    """The directory under ``root`` that holds every IDX file of ``splits``.

    Raises
    ------
    FileNotFoundError
        Naming the expected files, the directories searched and what each one lacks.
    """
    root = Path(root)
    stems = [s for split in splits for s in IDX_FILES[split]]
    report = []
    for sub in _SUBDIRS:
        d = (root / sub).resolve()
        missing = [s for s in stems if _resolve(d, s) is None]
        if not missing:
            return d
        if d.is_dir():
            report.append(f"  {d}: missing {', '.join(missing)}")
        else:
            report.append(f"  {d}: not a directory")
    raise FileNotFoundError(
        f"MNIST-format IDX files not found under {root}. Expected the files "
        + ", ".join(f"{s}[.gz]" for s in stems)
        + " in <root>/MNIST/raw/ (torchvision layout), <root>/FashionMNIST/raw/ or <root>/. "
        "Searched:\n" + "\n".join(report)
    )


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (``idx1``/``idx3`` unsigned bytes, optionally gzipped).

    ``ndim`` (optional) is the number of dimensions the file must have (3 for images, 1 for
    labels). A bad magic number, a truncated file or a size mismatch raises one ``ValueError``
    line naming the file (with the expected and found magic for a bad magic).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    nd = data[3] if len(data) >= 4 else -1
    if data[:3] != b"\x00\x00\x08" or nd < 1 or (ndim is not None and nd != ndim):
        want = "000008nn (nn = the number of dimensions)" if ndim is None else f"000008{ndim:02x}"
        raise ValueError(
            f"{path} is not an IDX file of unsigned bytes (bad magic number): expected {want}, "
            f"found {data[:4].hex() or 'an empty file'}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd))
    offset = 4 + 4 * nd
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        shown = shape if nd <= 4 else f"{nd} dimensions"
        raise ValueError(
            f"{path}: header says {shown} ({expected} bytes) but file has {len(data) - offset}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def load_mnist(root: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 28, 28)`` as float32 in [0, 1] and integer labels ``(n,)`` of one split."""
    if split not in IDX_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    d = find_idx_dir(root, (split,))
    img_stem, lab_stem = IDX_FILES[split]
    images = read_idx(_resolve(d, img_stem), ndim=3)  # type: ignore[arg-type]
    labels = read_idx(_resolve(d, lab_stem), ndim=1)  # type: ignore[arg-type]
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{d}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)
