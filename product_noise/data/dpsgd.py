"""Offline loaders for the DP-SGD experiments (MNIST, CIFAR-10, Adult, IMDB, MovieLens).

Every loader reads upstream files from a local ``root`` (nothing is downloaded) and returns a
:class:`DPSGDData`: torch train/test datasets plus an ``info`` dictionary (sizes, layout, the
numbers a model needs such as ``in_features`` or ``num_users``, and notes on any deviation from
the official scripts).

==========  =====================================================  ============================
dataset     files under ``root``                                   preprocessing
==========  =====================================================  ============================
MNIST       ``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}``   /255, normalize (0.1307,
            ``-ubyte[.gz]`` (or ``FashionMNIST/raw/``), or the     0.3081); shape 1×28×28
            four files directly in root (torchvision.datasets.MNIST
            where its layout applies)
CIFAR-10    ``cifar-10-batches-py/data_batch_1..5``, ``test_batch`` /255, per-channel mean/std
            (python pickles), or the files directly in root        (Opacus' constants)
            (torchvision.datasets.CIFAR10)
Adult       ``adult.data`` (``adult.test`` for ``split="uci"``)    one-hot of every categorical
                                                                   incl. ``?``, StandardScaler
                                                                   (fit on train); official
                                                                   split: adult.data 80/20,
                                                                   ``random_state=42``
IMDB        ``aclImdb/{train,test}/{pos,neg}/*.txt``, or           lowercase regex words,
            ``imdb_labelled.txt`` (sentence<TAB>label)             vocabulary from train text,
                                                                   pad 0, unk 1, length ≤ 256
MovieLens   ``ml-1m/ratings.dat`` (``::``) or ``ml-100k/u.data``   ids 0-indexed; label =
            (tab), or the file directly in root                    rating − 1 (5 classes)
==========  =====================================================  ============================

A missing file raises :class:`~product_noise.data.loaders.DatasetNotFoundError` naming the file
and the expected layout; a malformed file raises :class:`ValueError` naming the file.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..validation import InputError
from .loaders import DatasetNotFoundError
from .vision import CIFAR10_FILES, IDXSplit, read_cifar10_batches, read_idx_splits

__all__ = [
    "DPSGDData",
    "MNIST_MEAN_STD",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMDB_VOCAB_SIZE",
    "IMDB_MAX_LENGTH",
    "ML1M_NUM_ITEMS",
    "ML1M_TRAIN_SIZE",
    "load_mnist_dpsgd",
    "load_cifar10",
    "load_adult_dpsgd",
    "load_imdb",
    "load_movielens",
    "tokenize",
    "build_vocab",
    "encode",
]

MNIST_MEAN_STD = (0.1307, 0.3081)
#: Opacus' CIFAR-10 example constants (per channel)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
#: bert-base-cased's vocabulary size, which the paper's ImdbNet (464,242 parameters) assumes
IMDB_VOCAB_SIZE = 28_996
IMDB_MAX_LENGTH = 256
PAD, UNK = 0, 1
#: the official MovieLens script keeps movie ids < 3706 (0-indexed) and trains on the first
#: 800,000 shuffled ratings
ML1M_NUM_ITEMS = 3706
ML1M_TRAIN_SIZE = 800_000


@dataclass
class DPSGDData:
    """Train/test torch datasets and what the model needs to know about them.

    Attributes
    ----------
    name : str
        Dataset name, e.g. ``"mnist"`` or ``"movielens-1m"``.
    train, test : torch.utils.data.Dataset
        ``TensorDataset`` of ``(inputs, labels)``; shapes are given by each loader.
    info : dict
        Source path, layout, sizes the model needs (``in_features``, ``num_users``, ...) and a
        ``"note"`` on any deviation from the official scripts.
    """

    name: str
    train: Dataset
    test: Dataset
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return len(self.train)  # type: ignore[arg-type]

    @property
    def n_test(self) -> int:
        return len(self.test)  # type: ignore[arg-type]


def _first_file(candidates: Sequence[Path], dataset: str, layout: str) -> Path:
    for p in candidates:
        if p.is_file():
            return p
    raise DatasetNotFoundError(
        f"{dataset}: file {str(candidates[0])!r} not found"
        + (
            f" (also looked for {', '.join(repr(str(c)) for c in candidates[1:])})"
            if len(candidates) > 1
            else ""
        )
        + f". Expected layout: {layout}. Nothing is downloaded."
    )


def _seeded_split(n: int, train_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = int(round(train_frac * n))
    return perm[:k], perm[k:]


# ----------------------------------------------------------------------------- MNIST
_MNIST_HINT = (
    "Without the training images, pass --train-on-test-split (train_on_test_split=True) to "
    "split the 10,000 test images 80/20."
)


def _mnist_tensors(
    split: IDXSplit, transform: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    img, lab = split.images, split.labels
    img_path, lab_path = split.files
    if img.ndim != 3 or img.shape[1:] != (28, 28):
        raise InputError(f"{img_path}: expected IDX images of shape (N, 28, 28), got {img.shape}")
    if lab.ndim != 1 or lab.shape[0] != img.shape[0]:
        raise InputError(f"{lab_path}: labels {lab.shape} do not match images {img.shape}")
    if lab.size and int(lab.max()) > 9:
        raise InputError(f"{lab_path}: labels must be digits 0..9, found {int(lab.max())}")
    y = torch.from_numpy(lab.astype(np.int64))
    if transform is not None:
        x = transform(torch.from_numpy(img).unsqueeze(1))
        if not isinstance(x, torch.Tensor) or x.shape[0] != img.shape[0]:
            raise InputError(
                f"transform must return a tensor with one row per image ({img.shape[0]}), got "
                f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}"
            )
        return x, y
    mean, std = MNIST_MEAN_STD
    x = (torch.from_numpy(img.astype(np.float32) / 255.0) - mean) / std
    return x.unsqueeze(1), y


def load_mnist_dpsgd(
    root: str | Path,
    *,
    train_on_test_split: bool = False,
    seed: int = 0,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> DPSGDData:
    """MNIST (or any IDX dataset of 28×28 digits, e.g. Fashion-MNIST) as 1×28×28 tensors.

    The files are read by ``torchvision.datasets.MNIST`` / ``FashionMNIST`` (``download=False``)
    where torchvision's layout applies, else by the thin adapter of
    :mod:`product_noise.data.vision` (flat or gzipped folders); ``info["reader"]`` says which.

    Parameters
    ----------
    root : path
        ``<root>/MNIST/raw/`` or ``<root>/FashionMNIST/raw/`` (torchvision's layout) or a
        directory holding the four files, plain or gzipped.
    train_on_test_split : bool
        Use only the 10,000 test images: a seeded 80/20 split into train and test (for machines
        that lack ``train-images-idx3-ubyte``). Recorded in ``info["note"]``.
    seed : int
        Seed of that split.
    transform : callable, optional
        Applied once to the stacked uint8 images of each split, shape (n, 1, 28, 28), in place
        of the default normalisation: a torchvision transform such as
        ``torchvision.transforms.v2.ToDtype(torch.float32, scale=True)`` (pixels in [0, 1]).
        It must return one row per image.

    Returns
    -------
    data : DPSGDData
        Inputs (default ``transform``): float32 tensors of shape (n, 1, 28, 28), pixels/255
        normalised with :data:`MNIST_MEAN_STD` (the values of ``ToTensor`` then
        ``Normalize(*MNIST_MEAN_STD)`` up to rounding, and bit for bit those of the earlier
        hand-written reader); labels: int64 tensors of shape (n,) with values 0–9.

    Raises
    ------
    DatasetNotFoundError
        If an upstream file is missing (the message gives the expected layout).
    ValueError
        If a file is malformed.
    """
    root = Path(root)
    if train_on_test_split:
        test = read_idx_splits(root, ("test",))["test"]
        x, y = _mnist_tensors(test, transform)
        tr, te = _seeded_split(len(y), 0.8, seed)
        info = {
            "source": str(test.files[0].parent),
            "reader": test.reader,
            "train_on_test_split": True,
            "note": (
                f"trained on {len(tr)} of the {len(y)} test images and evaluated on the other "
                f"{len(te)} (seeded 80/20 split, seed {seed}); the training images were not used"
            ),
        }
        return DPSGDData("mnist", TensorDataset(x[tr], y[tr]), TensorDataset(x[te], y[te]), info)
    splits = read_idx_splits(root, ("train", "test"), hint=_MNIST_HINT)
    xtr, ytr = _mnist_tensors(splits["train"], transform)
    xte, yte = _mnist_tensors(splits["test"], transform)
    info = {
        "source": str(splits["train"].files[0].parent),
        "reader": splits["train"].reader,
        "train_on_test_split": False,
    }
    return DPSGDData("mnist", TensorDataset(xtr, ytr), TensorDataset(xte, yte), info)


# ----------------------------------------------------------------------------- CIFAR-10
def _cifar_tensor(data: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def load_cifar10(root: str | Path) -> DPSGDData:
    """CIFAR-10 python batches → normalized 3×32×32 tensors (no augmentation, as under DP).

    The batches are read by ``torchvision.datasets.CIFAR10`` (``download=False``; one batch at
    a time and without its md5 check, see :mod:`product_noise.data.vision`).

    Parameters
    ----------
    root : str or Path
        ``<root>/cifar-10-batches-py/`` or a directory holding the six batch files.

    Returns
    -------
    data : DPSGDData
        Inputs: float32 tensors of shape (50000, 3, 32, 32) / (10000, 3, 32, 32), normalised
        per channel with :data:`CIFAR10_MEAN` / :data:`CIFAR10_STD`; labels: int64 tensors of
        shape (n,) with values 0–9.

    Raises
    ------
    DatasetNotFoundError
        If an upstream file is missing (the message gives the expected layout).
    ValueError
        If a file is malformed.
    """
    batches, directory = read_cifar10_batches(root)
    train = [batches[n] for n in CIFAR10_FILES[:5]]
    xtr = np.concatenate([b[0] for b in train])
    ytr = np.concatenate([b[1] for b in train])
    xte, yte = batches["test_batch"]
    info = {"source": str(directory), "reader": "torchvision.datasets.CIFAR10"}
    return DPSGDData(
        "cifar10",
        TensorDataset(_cifar_tensor(xtr), torch.from_numpy(ytr)),
        TensorDataset(_cifar_tensor(xte), torch.from_numpy(yte)),
        info,
    )


# ----------------------------------------------------------------------------- Adult
_ADULT_LAYOUT = (
    "<root>/adult.data (and <root>/adult.test for split='uci'): UCI headerless CSV, 15 fields "
    "separated by ', '; https://archive.ics.uci.edu/dataset/2/adult"
)
_ADULT_CONT = (0, 2, 4, 10, 11, 12)
_ADULT_CAT = (1, 3, 5, 6, 7, 8, 9, 13)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_adult_rows(path: Path) -> list[list[str]]:
    rows = []
    with path.open(encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("|"):
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 15:
                raise InputError(
                    f"{path}, line {lineno}: expected 15 comma-separated fields, got {len(parts)}"
                    f". Expected layout: {_ADULT_LAYOUT}"
                )
            bad = [i for i in _ADULT_CONT if not _is_number(parts[i])]
            if bad or parts[14].rstrip(".") not in ("<=50K", ">50K"):
                what = (
                    f"non-numeric value {parts[bad[0]]!r} in column {bad[0] + 1}"
                    if bad
                    else f"label {parts[14]!r} is neither '<=50K' nor '>50K'"
                )
                raise InputError(f"{path}, line {lineno}: {what}. Expected layout: {_ADULT_LAYOUT}")
            rows.append(parts)
    if not rows:
        raise InputError(f"{path}: no data rows. Expected layout: {_ADULT_LAYOUT}")
    return rows


def _adult_matrix(rows: list[list[str]], categories: list[list[str]]) -> np.ndarray:
    cols = list(zip(*rows))
    try:
        cont = np.array([[float(v) for v in cols[i]] for i in _ADULT_CONT]).T
    except ValueError as err:
        raise InputError(f"Adult: non-numeric value in a continuous column ({err})") from None
    blocks = [cont]
    for i, cats in zip(_ADULT_CAT, categories):
        index = {c: j for j, c in enumerate(cats)}
        oh = np.zeros((len(rows), len(cats)))
        for r, v in enumerate(cols[i]):
            if v in index:
                oh[r, index[v]] = 1.0
        blocks.append(oh)
    return np.hstack(blocks)


def load_adult_dpsgd(
    root: str | Path, *, split: str = "official", seed: int = 42, test_size: float = 0.2
) -> DPSGDData:
    """UCI Adult as the official DP-SGD script prepares it (``in_features`` in ``info``).

    Every categorical column is one-hot encoded over its values including ``?`` (pandas
    ``get_dummies``: sorted categories), the 6 continuous columns are kept, and all columns are
    standardized with a scaler fitted on the training part. Label: ``>50K`` → 1.

    Parameters
    ----------
    root : str or Path
        Directory with ``adult.data`` (and ``adult.test`` for ``split="uci"``).
    split : {"official", "uci"}
        ``"official"``: ``adult.data`` only, ``train_test_split(test_size=0.2,
        random_state=42)`` (scikit-learn's permutation, as the official script). ``"uci"``:
        train on ``adult.data``, test on ``adult.test`` (categories from both files).
    seed : int, default 42
        ``random_state`` of the official split.
    test_size : float, default 0.2
        Test fraction of the official split.

    Returns
    -------
    data : DPSGDData
        Inputs: float32 tensors of shape (n, in_features) (``info["in_features"]``); labels:
        int64 tensors of shape (n,), 1 for ``>50K`` and 0 otherwise.

    Raises
    ------
    DatasetNotFoundError
        If an upstream file is missing (the message gives the expected layout).
    ValueError
        If a file is malformed, or ``split`` is unknown.
    """
    from sklearn.model_selection import train_test_split

    root = Path(root)
    f_train = _first_file([root / "adult.data"], "Adult", _ADULT_LAYOUT)
    rows = _read_adult_rows(f_train)
    if split == "official":
        test_rows: list[list[str]] = []
    elif split == "uci":
        f_test = _first_file([root / "adult.test"], "Adult", _ADULT_LAYOUT)
        test_rows = _read_adult_rows(f_test)
    else:
        raise InputError(f"split must be 'official' or 'uci', got {split!r}")
    all_rows = rows + test_rows
    categories = [sorted({r[i] for r in all_rows}) for i in _ADULT_CAT]
    X = _adult_matrix(all_rows, categories)
    y = np.array([1 if r[14].rstrip(".") == ">50K" else 0 for r in all_rows], dtype=np.int64)
    if split == "official":
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=seed)
    else:
        X_tr, X_te, y_tr, y_te = X[: len(rows)], X[len(rows) :], y[: len(rows)], y[len(rows) :]
    mu = X_tr.mean(axis=0)
    sd = X_tr.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    X_tr, X_te = (X_tr - mu) / sd, (X_te - mu) / sd
    info = {"in_features": int(X.shape[1]), "split": split, "seed": seed, "source": str(root)}
    return DPSGDData(
        "adult",
        TensorDataset(torch.tensor(X_tr, dtype=torch.float32), torch.from_numpy(y_tr)),
        TensorDataset(torch.tensor(X_te, dtype=torch.float32), torch.from_numpy(y_te)),
        info,
    )


# ----------------------------------------------------------------------------- IMDB
_IMDB_LAYOUT = (
    "<root>/aclImdb/{train,test}/{pos,neg}/*.txt (Maas et al., "
    "https://ai.stanford.edu/~amaas/data/sentiment/) or <root>/imdb_labelled.txt "
    "(UCI Sentiment Labelled Sentences: sentence<TAB>label per line)"
)
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)


def tokenize(text: str) -> list[str]:
    """Lowercase words: ``[a-z0-9]+`` with an optional ``'suffix`` (HTML line breaks removed).

    Parameters
    ----------
    text : str
        Raw text.

    Returns
    -------
    tokens : list of str
        The words in order.
    """
    return _TOKEN_RE.findall(_BR_RE.sub(" ", text).lower())


def build_vocab(texts: Sequence[str], vocab_size: int = IMDB_VOCAB_SIZE) -> dict[str, int]:
    """Word → id for the ``vocab_size − 2`` most frequent words (ties alphabetical).

    Ids 0 and 1 are padding and unknown; ids beyond the corpus' distinct words stay unused.

    Parameters
    ----------
    texts : sequence of str
        Training texts.
    vocab_size : int, default IMDB_VOCAB_SIZE
        Size of the id space including pad and unk, ≥ 3.

    Returns
    -------
    vocab : dict of str to int
        Word → id in ``2 .. vocab_size − 1``.

    Raises
    ------
    ValueError
        If ``vocab_size < 3``.
    """
    if vocab_size < 3:
        raise InputError(f"vocab_size must be ≥ 3 (pad, unk and one word), got {vocab_size}")
    counts = Counter(w for t in texts for w in tokenize(t))
    words = sorted(counts, key=lambda w: (-counts[w], w))[: vocab_size - 2]
    return {w: i + 2 for i, w in enumerate(words)}


def encode(texts: Sequence[str], vocab: dict[str, int], max_length: int) -> torch.Tensor:
    """Token ids, truncated to ``max_length`` and right-padded with 0 (empty text → all pad).

    Parameters
    ----------
    texts : sequence of str
        Texts to encode.
    vocab : dict of str to int
        Word → id (e.g. from :func:`build_vocab`); other words map to 1 (unk).
    max_length : int
        Sequence length.

    Returns
    -------
    ids : torch.Tensor of shape (len(texts), max_length), dtype int64
        Token ids.
    """
    out = torch.zeros((len(texts), max_length), dtype=torch.long)
    for r, t in enumerate(texts):
        ids = [vocab.get(w, UNK) for w in tokenize(t)][:max_length]
        if ids:
            out[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def _read_aclimdb(base: Path, part: str) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for lab, sub in ((0, "neg"), (1, "pos")):
        d = base / part / sub
        if not d.is_dir():
            raise DatasetNotFoundError(
                f"IMDB: folder {str(d)!r} not found. Expected layout: {_IMDB_LAYOUT}"
            )
        files = sorted(d.glob("*.txt"))
        if not files:
            raise DatasetNotFoundError(
                f"IMDB: no *.txt reviews in {str(d)!r}. Expected layout: {_IMDB_LAYOUT}"
            )
        for f in files:
            texts.append(f.read_text(encoding="utf-8", errors="replace"))
            labels.append(lab)
    return texts, labels


def _read_labelled(path: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            sentence, tab, label = line.rpartition("\t")
            if not tab or label.strip() not in ("0", "1"):
                raise InputError(
                    f"{path}, line {lineno}: expected 'sentence<TAB>0' or 'sentence<TAB>1', "
                    f"got {line[:60]!r}. Expected layout: {_IMDB_LAYOUT}"
                )
            texts.append(sentence)
            labels.append(int(label))
    if not texts:
        raise InputError(f"{path}: no labelled lines. Expected layout: {_IMDB_LAYOUT}")
    return texts, labels


def load_imdb(
    root: str | Path,
    *,
    layout: str = "auto",
    vocab_size: int = IMDB_VOCAB_SIZE,
    max_length: int = IMDB_MAX_LENGTH,
    seed: int = 0,
    test_frac: float = 0.2,
) -> DPSGDData:
    """IMDB sentiment as padded token ids (``(N, max_length)`` long tensors, pad = 0, unk = 1).

    Parameters
    ----------
    root : path
        Holds ``aclImdb/`` (or is that folder) or ``imdb_labelled.txt``.
    layout : {"auto", "aclimdb", "labelled"}
        ``"auto"`` prefers aclImdb when present.
    vocab_size : int
        Size of the id space including pad and unk (28,996 keeps ImdbNet at 464,242
        parameters); the vocabulary is built from the training text only.
    max_length : int, default IMDB_MAX_LENGTH
        Sequence length (truncate / pad).
    seed : int, default 0
        Seed of the split of ``imdb_labelled.txt`` (aclImdb has its own train/test).
    test_frac : float, default 0.2
        Test fraction of that split.

    Returns
    -------
    data : DPSGDData
        Inputs: int64 tensors of shape (n, max_length); labels: int64 tensors of shape (n,),
        1 = positive, 0 = negative.

    Raises
    ------
    DatasetNotFoundError
        If an upstream file is missing (the message gives the expected layout).
    ValueError
        If a file is malformed, or ``layout`` is unknown.
    """
    root = Path(root)
    acl = next((b for b in (root / "aclImdb", root) if (b / "train").is_dir()), None)
    labelled = root / "imdb_labelled.txt"
    if layout == "auto":
        layout = "aclimdb" if acl is not None else "labelled"
    if layout == "aclimdb":
        base = acl if acl is not None else root / "aclImdb"
        tr_text, tr_lab = _read_aclimdb(base, "train")
        te_text, te_lab = _read_aclimdb(base, "test")
        source = str(base)
    elif layout == "labelled":
        f = _first_file([labelled], "IMDB", _IMDB_LAYOUT)
        texts, labels = _read_labelled(f)
        tr, te = _seeded_split(len(texts), 1.0 - test_frac, seed)
        tr_text, tr_lab = [texts[i] for i in tr], [labels[i] for i in tr]
        te_text, te_lab = [texts[i] for i in te], [labels[i] for i in te]
        source = str(f)
    else:
        raise InputError(f"layout must be 'auto', 'aclimdb' or 'labelled', got {layout!r}")
    vocab = build_vocab(tr_text, vocab_size)
    info = {
        "layout": layout,
        "source": source,
        "vocab_size": vocab_size,
        "words_in_vocab": len(vocab),
        "unused_ids": vocab_size - 2 - len(vocab),
        "max_length": max_length,
    }
    return DPSGDData(
        "imdb",
        TensorDataset(encode(tr_text, vocab, max_length), torch.tensor(tr_lab)),
        TensorDataset(encode(te_text, vocab, max_length), torch.tensor(te_lab)),
        info,
    )


# ----------------------------------------------------------------------------- MovieLens
_ML_LAYOUT = (
    "<root>/ml-1m/ratings.dat ('UserID::MovieID::Rating::Timestamp') or <root>/ml-100k/u.data "
    "('user<TAB>item<TAB>rating<TAB>timestamp'), or either file directly in <root>; GroupLens, "
    "https://grouplens.org/datasets/movielens/"
)


def _read_ratings(path: Path, sep: str) -> np.ndarray:
    rows = []
    with path.open(encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(sep)
            try:
                if len(parts) != 4:
                    raise InputError(f"{len(parts)} fields")
                u, i, r = int(parts[0]), int(parts[1]), int(parts[2])
            except ValueError as err:
                raise InputError(
                    f"{path}, line {lineno}: expected 4 integer fields separated by {sep!r} "
                    f"({err}). Expected layout: {_ML_LAYOUT}"
                ) from None
            if not 1 <= r <= 5 or u < 1 or i < 1:
                raise InputError(
                    f"{path}, line {lineno}: ids must be ≥ 1 and ratings in 1..5, got {parts[:3]}"
                )
            rows.append((u - 1, i - 1, r - 1))
    if not rows:
        raise InputError(f"{path}: no ratings. Expected layout: {_ML_LAYOUT}")
    return np.asarray(rows, dtype=np.int64)


def load_movielens(root: str | Path, *, variant: str = "auto", seed: int = 0) -> DPSGDData:
    """GroupLens ratings as ``(user, item)`` pairs with label ``rating − 1``.

    ``ml-1m`` (official): movie ids ≥ 3706 (0-indexed) dropped, shuffled, first 800,000 ratings
    train and the rest test; ``num_items`` = 3706 and ``num_users`` = largest user id. If the
    file has ≤ 800,000 ratings after the filter (not the real ML-1M), a seeded 80/20 split is
    used instead and noted. ``ml-100k``: seeded 80/20 split; users and items counted from the
    data (largest ids).

    Parameters
    ----------
    root : str or Path
        Directory with ``ml-1m/ratings.dat`` or ``ml-100k/u.data``, or holding either file directly.
    variant : {"auto", "1m", "100k"}
        ``"auto"`` takes ratings.dat when present, else u.data.
    seed : int
        Shuffle seed (the official script does not seed).

    Returns
    -------
    data : DPSGDData
        Inputs: int64 tensors of shape (n, 2) holding 0-indexed ``(user, item)``; labels: int64
        tensors of shape (n,) with values 0–4; ``info`` has ``num_users`` and ``num_items``.

    Raises
    ------
    DatasetNotFoundError
        If an upstream file is missing (the message gives the expected layout).
    ValueError
        If a file is malformed, or ``variant`` is unknown.
    """
    root = Path(root)
    c1m = [root / "ml-1m" / "ratings.dat", root / "ratings.dat"]
    c100k = [root / "ml-100k" / "u.data", root / "u.data"]
    if variant == "auto":
        variant = "1m" if any(p.is_file() for p in c1m) else "100k"
    if variant == "1m":
        path = _first_file(c1m, "MovieLens-1M", _ML_LAYOUT)
        data = _read_ratings(path, "::")
        kept = data[:, 1] < ML1M_NUM_ITEMS
        dropped = int((~kept).sum())
        data = data[kept]
        perm = np.random.default_rng(seed).permutation(len(data))
        data = data[perm]
        n_train = ML1M_TRAIN_SIZE if len(data) > ML1M_TRAIN_SIZE else int(round(0.8 * len(data)))
        num_users, num_items = int(data[:, 0].max()) + 1, ML1M_NUM_ITEMS
        info: dict[str, Any] = {"dropped_ratings": dropped}
        if n_train != ML1M_TRAIN_SIZE:
            info["note"] = (
                f"only {len(data)} ratings after the filter: seeded 80/20 split instead of the "
                "official first 800,000"
            )
        tr, te = np.arange(n_train), np.arange(n_train, len(data))
    elif variant == "100k":
        path = _first_file(c100k, "MovieLens-100K", _ML_LAYOUT)
        data = _read_ratings(path, "\t")
        num_users, num_items = int(data[:, 0].max()) + 1, int(data[:, 1].max()) + 1
        tr, te = _seeded_split(len(data), 0.8, seed)
        info = {}
    else:
        raise InputError(f"variant must be 'auto', '1m' or '100k', got {variant!r}")
    pairs = torch.from_numpy(data[:, :2].copy())
    labels = torch.from_numpy(data[:, 2].copy())
    info.update(
        {
            "variant": variant,
            "source": str(path),
            "num_users": num_users,
            "num_items": num_items,
            "seed": seed,
        }
    )
    return DPSGDData(
        f"movielens-{variant}",
        TensorDataset(pairs[tr], labels[tr]),
        TensorDataset(pairs[te], labels[te]),
        info,
    )
