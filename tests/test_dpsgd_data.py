"""Offline DP-SGD loaders on tiny same-format fixtures (every upstream layout).

The ``write_*`` helpers generate the fixtures from a fixed seed; ``tests/test_examples.py``
imports them to run the example scripts on the same files.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from product_noise.data.dpsgd import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMDB_VOCAB_SIZE,
    ML1M_NUM_ITEMS,
    MNIST_MEAN_STD,
    build_vocab,
    encode,
    load_adult_dpsgd,
    load_cifar10,
    load_imdb,
    load_mnist_dpsgd,
    load_movielens,
    tokenize,
)
from product_noise.data.loaders import DatasetNotFoundError


# ----------------------------------------------------------------------------- fixture writers
def write_idx(path: Path, arr: np.ndarray, gz: bool) -> Path:
    """Write a uint8 array as an IDX file (magic 0x0000 08 nd, big-endian dims)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    payload = bytes([0, 0, 8, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    payload += arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_mnist(
    root: Path, *, layout: str = "torchvision", gz: bool = True, n_train: int = 48, n_test: int = 30
) -> Path:
    """MNIST IDX files: ``layout="torchvision"`` → ``root/MNIST/raw``; ``"flat"`` → ``root``.

    ``n_train=0`` writes only the training labels (as on this machine: no training images).
    """
    rng = np.random.default_rng(0)
    d = root / "MNIST" / "raw" if layout == "torchvision" else root
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=max(n, 1) if prefix == "t10k" else max(n, 5))
        images = rng.integers(0, 256, size=(len(labels), 28, 28))
        if n:
            write_idx(d / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(d / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return root


def py2_pickle(obj: dict) -> bytes:
    """``obj`` pickled as Python 2 wrote the official CIFAR-10 batches: protocol 2, with the
    dict's keys as Python 2 ``str`` (SHORT_BINSTRING), which ``pickle.load(encoding="latin1")``
    returns as ``str`` and ``encoding="bytes"`` as ``bytes``."""
    raw = pickle.dumps(obj, protocol=2)
    for key in obj:
        kb = key.encode()
        unicode_key = b"X" + struct.pack("<I", len(kb)) + kb  # BINUNICODE
        assert raw.count(unicode_key) == 1
        raw = raw.replace(unicode_key, b"U" + bytes([len(kb)]) + kb)  # SHORT_BINSTRING
    return raw


def write_cifar(root: Path, *, per_batch: int = 8, bytes_keys: bool = True) -> Path:
    """CIFAR-10 python batches in ``root/cifar-10-batches-py``.

    ``bytes_keys=True``: Python 2 ``str`` keys as in the official archive (see
    :func:`py2_pickle`); ``False``: Python 3 ``str`` keys.
    """
    rng = np.random.default_rng(1)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = {
            "data": rng.integers(0, 256, size=(per_batch, 3072)).astype(np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, size=per_batch)],
            "batch_label": name,
            "filenames": [f"img{i}.png" for i in range(per_batch)],
        }
        (d / name).write_bytes(py2_pickle(obj) if bytes_keys else pickle.dumps(obj))
    return root


_WORKCLASS = ["Private", "State-gov", "?", "Self-emp-not-inc"]
_EDU = ["Bachelors", "HS-grad", "Masters"]
_COUNTRY = ["United-States", "?", "Mexico"]


def _adult_line(rng: np.random.Generator, test: bool) -> str:
    label = ">50K" if rng.random() < 0.3 else "<=50K"
    f = [
        str(int(rng.integers(17, 90))),
        _WORKCLASS[int(rng.integers(0, 4))],
        str(int(rng.integers(10_000, 500_000))),
        _EDU[int(rng.integers(0, 3))],
        str(int(rng.integers(1, 16))),
        ["Never-married", "Divorced"][int(rng.integers(0, 2))],
        ["Adm-clerical", "?"][int(rng.integers(0, 2))],
        ["Husband", "Wife", "Own-child"][int(rng.integers(0, 3))],
        ["White", "Black"][int(rng.integers(0, 2))],
        ["Male", "Female"][int(rng.integers(0, 2))],
        str(int(rng.integers(0, 5000))),
        "0",
        str(int(rng.integers(10, 60))),
        _COUNTRY[int(rng.integers(0, 3))],
        label + ("." if test else ""),
    ]
    return ", ".join(f)


def write_adult(root: Path, *, n_data: int = 60, n_test: int = 20) -> Path:
    """UCI ``adult.data`` / ``adult.test`` (test: header line, labels with a dot)."""
    rng = np.random.default_rng(2)
    root.mkdir(parents=True, exist_ok=True)
    lines = [_adult_line(rng, False) for _ in range(n_data)]
    # make sure every category value appears so the one-hot width is known
    for j, w in enumerate(_WORKCLASS):
        parts = lines[j].split(", ")
        parts[1] = w
        lines[j] = ", ".join(parts)
    for j, c in enumerate(_COUNTRY):
        parts = lines[10 + j].split(", ")
        parts[13] = c
        lines[10 + j] = ", ".join(parts)
    for j, e in enumerate(_EDU):
        parts = lines[20 + j].split(", ")
        parts[3] = e
        lines[20 + j] = ", ".join(parts)
    (root / "adult.data").write_text("\n".join(lines) + "\n\n")
    test = ["|1x3 Cross validator"] + [_adult_line(rng, True) for _ in range(n_test)]
    (root / "adult.test").write_text("\n".join(test) + "\n")
    return root


#: one-hot width of the fixture: 6 continuous + 4 workclass + 3 education + 2 marital
#: + 2 occupation + 3 relationship + 2 race + 2 sex + 3 countries
ADULT_FIXTURE_D = 6 + 4 + 3 + 2 + 2 + 3 + 2 + 2 + 3

_POS = ["great wonderful film", "loved it", "a brilliant, moving story", "best acting ever"]
_NEG = ["terrible boring movie", "hated it", "awful plot and worse acting", "a waste of time"]


def write_aclimdb(root: Path, *, per_class: int = 6) -> Path:
    """``root/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` reviews."""
    for part in ("train", "test"):
        for sub, texts in (("pos", _POS), ("neg", _NEG)):
            d = root / "aclImdb" / part / sub
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                text = f"{texts[i % len(texts)]}<br /><br />Review number {i} of {part}."
                (d / f"{i}_{8 if sub == 'pos' else 2}.txt").write_text(text)
    return root


def write_imdb_labelled(root: Path, *, n: int = 40) -> Path:
    """``root/imdb_labelled.txt``: ``sentence<TAB>label``; one sentence holds a tab and an
    unbalanced quote (split on the LAST tab; no quote handling)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        pos = i % 2 == 0
        text = (_POS if pos else _NEG)[i % 4]
        lines.append(f"{text} number {i}\t{int(pos)}")
    lines[0] = 'A "quoted\tand tabbed great film\t1'
    (root / "imdb_labelled.txt").write_text("\n".join(lines) + "\n")
    return root


def write_ratings_dat(root: Path, *, n: int = 300, folder: bool = True) -> Path:
    """ML-1M ``ratings.dat`` (``::``): user ids up to 6,040, some movie ids ≥ 3707 (dropped)."""
    rng = np.random.default_rng(3)
    d = root / "ml-1m" if folder else root
    d.mkdir(parents=True, exist_ok=True)
    users = rng.integers(1, 6041, size=n)
    users[0] = 6040
    movies = rng.integers(1, 3953, size=n)
    movies[1] = 3706  # 0-indexed 3705: kept
    movies[2] = 3707  # 0-indexed 3706: dropped
    ratings = rng.integers(1, 6, size=n)
    lines = [
        f"{u}::{m}::{r}::97830{i:04d}" for i, (u, m, r) in enumerate(zip(users, movies, ratings))
    ]
    (d / "ratings.dat").write_text("\n".join(lines) + "\n")
    return root


def write_u_data(root: Path, *, n: int = 200, folder: bool = True) -> Path:
    """ML-100K ``u.data`` (tab-separated), 30 users and 50 items."""
    rng = np.random.default_rng(4)
    d = root / "ml-100k" if folder else root
    d.mkdir(parents=True, exist_ok=True)
    users = rng.integers(1, 31, size=n)
    items = rng.integers(1, 51, size=n)
    users[0], items[0] = 30, 50
    ratings = rng.integers(1, 6, size=n)
    lines = [
        f"{u}\t{m}\t{r}\t8812{i:05d}" for i, (u, m, r) in enumerate(zip(users, items, ratings))
    ]
    (d / "u.data").write_text("\n".join(lines) + "\n")
    return root


# ----------------------------------------------------------------------------- MNIST
@pytest.mark.parametrize(("layout", "gz"), [("torchvision", True), ("flat", False)])
def test_mnist_layouts(tmp_path: Path, layout: str, gz: bool) -> None:
    write_mnist(tmp_path, layout=layout, gz=gz)
    data = load_mnist_dpsgd(tmp_path)
    assert (data.n_train, data.n_test) == (48, 30)
    x, y = data.train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    raw = np.frombuffer(
        (gzip.open if gz else open)(
            (tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path)
            / ("train-images-idx3-ubyte" + (".gz" if gz else "")),
            "rb",
        ).read()[16:],
        dtype=np.uint8,
    ).reshape(-1, 28, 28)
    mean, std = MNIST_MEAN_STD
    expect = (torch.from_numpy(raw[0].astype(np.float32)) / 255.0 - mean) / std
    assert torch.allclose(x[0], expect)


def test_mnist_train_on_test_split(tmp_path: Path) -> None:
    write_mnist(tmp_path, n_train=0, n_test=50)
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte.*--train-on-test"):
        load_mnist_dpsgd(tmp_path)
    data = load_mnist_dpsgd(tmp_path, train_on_test_split=True, seed=3)
    assert (data.n_train, data.n_test) == (40, 10)
    assert "test images" in data.info["note"]
    again = load_mnist_dpsgd(tmp_path, train_on_test_split=True, seed=3)
    assert torch.equal(data.train.tensors[1], again.train.tensors[1])  # type: ignore[attr-defined]


def test_mnist_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"MNIST/raw.*Expected layout"):
        load_mnist_dpsgd(tmp_path)
    write_mnist(tmp_path, layout="flat", gz=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x08\x03\x00\x00garbage")
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.*IDX"):
        load_mnist_dpsgd(tmp_path)


# ----------------------------------------------------------------------------- CIFAR-10
@pytest.mark.parametrize("bytes_keys", [True, False])
def test_cifar_batches(tmp_path: Path, bytes_keys: bool) -> None:
    write_cifar(tmp_path, bytes_keys=bytes_keys)
    data = load_cifar10(tmp_path)
    assert (data.n_train, data.n_test) == (40, 8)
    x, _ = data.train[0]
    assert x.shape == (3, 32, 32)
    with (tmp_path / "cifar-10-batches-py" / "data_batch_1").open("rb") as fh:
        d = pickle.load(fh, encoding="bytes")  # Python 2 str keys → bytes
    row = np.asarray(d[b"data" if bytes_keys else "data"][0], dtype=np.float32) / 255.0
    red = (torch.from_numpy(row[:1024].reshape(32, 32)) - CIFAR10_MEAN[0]) / CIFAR10_STD[0]
    assert torch.allclose(x[0], red, atol=1e-6)
    # the files directly in root are accepted too
    flat = load_cifar10(tmp_path / "cifar-10-batches-py")
    assert flat.n_train == 40


def test_cifar_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"data_batch_1.*cifar-10-batches-py"):
        load_cifar10(tmp_path)
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="test_batch.*pickle"):
        load_cifar10(tmp_path)
    with (tmp_path / "cifar-10-batches-py" / "test_batch").open("wb") as fh:
        pickle.dump({"data": np.zeros((2, 100), dtype=np.uint8), "labels": [0, 1]}, fh)
    with pytest.raises(ValueError, match=r"test_batch.*\(N, 3072\)"):
        load_cifar10(tmp_path)


# ----------------------------------------------------------------------------- Adult
def test_adult_official_split(tmp_path: Path) -> None:
    write_adult(tmp_path)
    data = load_adult_dpsgd(tmp_path)
    assert data.info["in_features"] == ADULT_FIXTURE_D  # '?' is a category of its own
    assert (data.n_train, data.n_test) == (48, 12)
    X = data.train.tensors[0]  # type: ignore[attr-defined]
    assert torch.allclose(X.mean(0), torch.zeros(X.shape[1]), atol=1e-5)
    from sklearn.model_selection import train_test_split

    _, _, y_tr, _ = train_test_split(np.arange(60), np.arange(60), test_size=0.2, random_state=42)
    labels = [
        int(ln.rsplit(", ", 1)[1] == ">50K")
        for ln in (tmp_path / "adult.data").read_text().splitlines()
        if ln
    ]
    assert data.train.tensors[1].tolist() == [labels[i] for i in y_tr]  # type: ignore[attr-defined]


def test_adult_uci_split_and_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="adult.data.*Expected layout"):
        load_adult_dpsgd(tmp_path)
    write_adult(tmp_path)
    data = load_adult_dpsgd(tmp_path, split="uci")
    assert (data.n_train, data.n_test) == (60, 20)
    with pytest.raises(ValueError, match="split"):
        load_adult_dpsgd(tmp_path, split="nope")
    (tmp_path / "adult.data").write_text("39, State-gov, 77516\n")
    with pytest.raises(ValueError, match=r"adult.data, line 1: expected 15"):
        load_adult_dpsgd(tmp_path)


# ----------------------------------------------------------------------------- IMDB
def test_tokenizer_and_vocab() -> None:
    assert tokenize("It's GREAT!<br />Loved   it, 10/10") == [
        "it's",
        "great",
        "loved",
        "it",
        "10",
        "10",
    ]
    vocab = build_vocab(["b a a", "c b a"], vocab_size=4)
    assert vocab == {"a": 2, "b": 3}  # ids 0/1 = pad/unk; most frequent first
    ids = encode(["a c b a a", ""], vocab, max_length=4)
    assert ids.tolist() == [[2, 1, 3, 2], [0, 0, 0, 0]]


def test_imdb_aclimdb(tmp_path: Path) -> None:
    write_aclimdb(tmp_path)
    data = load_imdb(tmp_path, max_length=16)
    assert data.info["layout"] == "aclimdb"
    assert (data.n_train, data.n_test) == (12, 12)
    x, _ = data.train[0]
    assert x.shape == (16,) and x.dtype == torch.long
    assert int(data.train.tensors[0].max()) < IMDB_VOCAB_SIZE  # type: ignore[attr-defined]
    assert data.info["unused_ids"] == IMDB_VOCAB_SIZE - 2 - data.info["words_in_vocab"]
    assert sorted(data.train.tensors[1].tolist()) == [0] * 6 + [1] * 6  # type: ignore[attr-defined]
    # pointing at the aclImdb folder itself also works
    assert load_imdb(tmp_path / "aclImdb", max_length=16).n_train == 12


def test_imdb_labelled_last_tab(tmp_path: Path) -> None:
    write_imdb_labelled(tmp_path)
    data = load_imdb(tmp_path, seed=1)
    assert data.info["layout"] == "labelled"
    assert (data.n_train, data.n_test) == (32, 8)
    from product_noise.data.dpsgd import _read_labelled

    texts, labels = _read_labelled(tmp_path / "imdb_labelled.txt")
    assert texts[0] == 'A "quoted\tand tabbed great film' and labels[0] == 1
    assert len(texts) == 40


def test_imdb_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"imdb_labelled.txt.*aclImdb"):
        load_imdb(tmp_path)
    (tmp_path / "imdb_labelled.txt").write_text("no tab here\n")
    with pytest.raises(ValueError, match=r"imdb_labelled.txt, line 1"):
        load_imdb(tmp_path)
    (tmp_path / "aclImdb" / "train" / "pos").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match=r"aclImdb/train/neg"):
        load_imdb(tmp_path)


# ----------------------------------------------------------------------------- MovieLens
@pytest.mark.parametrize("folder", [True, False])
def test_movielens_1m(tmp_path: Path, folder: bool) -> None:
    write_ratings_dat(tmp_path, folder=folder)
    data = load_movielens(tmp_path)
    info = data.info
    assert info["variant"] == "1m"
    assert info["num_users"] == 6040 and info["num_items"] == ML1M_NUM_ITEMS
    pairs = torch.cat([data.train.tensors[0], data.test.tensors[0]])  # type: ignore[attr-defined]
    assert int(pairs[:, 1].max()) < ML1M_NUM_ITEMS
    assert data.n_train + data.n_test + info["dropped_ratings"] == 300
    assert info["dropped_ratings"] >= 1 and "80/20" in info["note"]
    labels = data.train.tensors[1]  # type: ignore[attr-defined]
    assert int(labels.min()) >= 0 and int(labels.max()) <= 4


@pytest.mark.parametrize("folder", [True, False])
def test_movielens_100k(tmp_path: Path, folder: bool) -> None:
    write_u_data(tmp_path, folder=folder)
    data = load_movielens(tmp_path, seed=5)
    assert data.info["variant"] == "100k"
    assert (data.info["num_users"], data.info["num_items"]) == (30, 50)
    assert (data.n_train, data.n_test) == (160, 40)


def test_movielens_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"ml-100k/u.data.*ratings.dat"):
        load_movielens(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"ml-1m/ratings.dat"):
        load_movielens(tmp_path, variant="1m")
    (tmp_path / "u.data").write_text("1\t2\t9\t100\n")
    with pytest.raises(ValueError, match=r"u.data, line 1"):
        load_movielens(tmp_path)
    (tmp_path / "ratings.dat").write_text("1::2::3\n")
    with pytest.raises(ValueError, match=r"ratings.dat, line 1: expected 4 integer fields"):
        load_movielens(tmp_path)
