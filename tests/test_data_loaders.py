"""Dataset loaders on tiny same-format fixtures written to tmp dirs (never the real files)."""

from __future__ import annotations

import bz2
import gzip
import re
import struct

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import dump_svmlight_file

from product_noise.data import (
    DatasetNotFoundError,
    load_adult,
    load_dataset,
    load_kddcup99,
    load_mnist,
    load_rcv1,
    load_realsim,
    load_synthetic_h,
    load_synthetic_l,
    read_idx,
)

ADULT_ROWS = [
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
    "Male, 2174, 0, 40, United-States, <=50K",
    "50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, "
    "White, Male, 0, 0, 13, United-States, >50K",
    "38, Private, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, White, Male, "
    "0, 0, 40, ?, <=50K",
    "53, Private, 234721, 11th, 7, Married-civ-spouse, Handlers-cleaners, Husband, Black, Male, "
    "0, 0, 40, United-States, <=50K",
    "28, Private, 338409, Bachelors, 13, Married-civ-spouse, Prof-specialty, Wife, Black, "
    "Female, 0, 0, 40, Cuba, >50K",
]
ADULT_TEST = [
    "|1x3 Cross validator",
    "25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, "
    "0, 0, 40, United-States, <=50K.",
    "44, Private, 160323, Some-college, 10, Married-civ-spouse, Machine-op-inspct, Husband, "
    "Black, Male, 7688, 0, 40, United-States, >50K.",
    "18, ?, 103497, Some-college, 10, Never-married, ?, Own-child, White, Female, 0, 0, 30, "
    "United-States, <=50K.",
]


@pytest.fixture()
def adult_root(tmp_path):
    (tmp_path / "adult.data").write_text("\n".join(ADULT_ROWS) + "\n\n")
    (tmp_path / "adult.test").write_text("\n".join(ADULT_TEST) + "\n")
    return tmp_path


def test_adult_parsing_and_preprocessing(adult_root, tmp_path):
    ds = load_adult(adult_root)
    X = np.vstack([ds.X_train, ds.X_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    assert X.shape[0] == 6  # two rows with "?" dropped, header line skipped
    # 6 continuous + one-hot over the kept rows: workclass 3, education 3, marital 2,
    # occupation 5, relationship 4, race 2, sex 2, country 2
    assert X.shape[1] == 6 + 3 + 3 + 2 + 5 + 4 + 2 + 2 + 2
    assert sorted(y) == [-1, -1, -1, 1, 1, 1]
    assert np.all(np.linalg.norm(X, axis=1) <= 1 + 1e-12)
    assert ds.X_train.shape[0] == 5  # 80 % of 6, rounded
    again = load_adult(adult_root)
    assert np.array_equal(again.X_train, ds.X_train)  # fixed seed


def test_adult_column_max_before_row_norm(adult_root):
    ds = load_adult(adult_root, row_norm=None)
    X = np.vstack([ds.X_train, ds.X_test])
    assert X[:, :6].max() == pytest.approx(1.0) and X[:, :6].min() >= 0
    assert np.allclose(X[:, 6:].sum(axis=1), 8)  # 8 one-hot groups


def test_cache_roundtrip_and_invalidation(adult_root, tmp_path):
    cache = tmp_path / "cache"
    a = load_adult(adult_root, cache_dir=cache)
    files = list(cache.glob("adult-*.npz"))
    assert len(files) == 1
    b = load_adult(adult_root, cache_dir=cache)
    assert b.meta["cache"] == str(files[0])
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_test, b.y_test)
    load_adult(adult_root, cache_dir=cache, seed=1)  # other parameters → another entry
    assert len(list(cache.glob("adult-*.npz"))) == 2


def test_missing_file_names_the_file_and_upstream(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"adult\.data.*UCI"):
        load_adult(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"kddcup\.data_10_percent\.gz.*kddcup99"):
        load_kddcup99(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"real-sim.*LIBSVM"):
        load_realsim(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"rcv1_train\.binary"):
        load_rcv1(tmp_path)


def _kdd_line(rng, label):
    proto = rng.choice(["tcp", "udp", "icmp"])
    service = rng.choice(["http", "smtp", "private", "ecr_i"])
    flag = rng.choice(["SF", "S0", "REJ"])
    nums = rng.integers(0, 1000, size=37).astype(str)  # 38 numeric with column 0
    return ",".join([str(rng.integers(0, 10)), proto, service, flag, *nums, label])


def test_kddcup99_gzip(tmp_path):
    rng = np.random.default_rng(0)
    lines = [_kdd_line(rng, lab) for lab in ["normal.", "smurf.", "neptune.", "normal."] * 25]
    with gzip.open(tmp_path / "kddcup.data_10_percent.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    ds = load_kddcup99(tmp_path, n_samples=None, seed=1)
    assert ds.n_samples == 100
    assert ds.n_features == 38 + 3 + 4 + 3
    assert set(np.unique(ds.y_train)) <= {-1.0, 1.0}
    assert (np.concatenate([ds.y_train, ds.y_test]) > 0).sum() == 50
    assert np.all(np.linalg.norm(ds.X_train, axis=1) <= 1 + 1e-12)
    sampled = load_kddcup99(tmp_path, n_samples=300)  # with replacement, as dpml
    assert sampled.n_samples == 300 and sampled.n_features == ds.n_features


def _write_idx(path, arr, gz):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    payload = struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    payload += arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(payload)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx(tmp_path, gz):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", 30), ("t10k", 10)):
        _write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)), gz
        )
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n), gz)
    img = read_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}")
    assert img.shape == (10, 28, 28) and img.dtype == np.uint8
    ds = load_mnist(tmp_path)
    assert ds.n_samples == 40 and ds.n_features == 784
    assert ds.X_train.min() >= 0 and np.all(np.linalg.norm(ds.X_train, axis=1) <= 1 + 1e-12)
    assert set(np.unique(ds.y_train)) <= set(range(10))
    only_test = load_mnist(tmp_path, parts=("test",))
    assert only_test.n_samples == 10


def test_idx_bad_magic(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x09\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="IDX"):
        read_idx(tmp_path / "bad")


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("magic", [b"\x00\x00\x08\xff", b"\x00\x00\x08\x01", b"\x50\x4b\x03\x04"])
def test_idx_bad_magic_is_one_line_with_expected_and_found(tmp_path, gz, magic):
    # a bad last magic byte (the number of dimensions) was read as 255 dimensions and printed
    # as an 800-character tuple of zeros
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    images = tmp_path / f"t10k-images-idx3-ubyte{suffix}"
    _write_idx(images, rng.integers(0, 256, (20, 28, 28)), gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", rng.integers(0, 10, 20), gz)
    raw = (gzip.decompress if gz else bytes)(images.read_bytes())
    with (gzip.open if gz else open)(images, "wb") as fh:
        fh.write(magic + raw[4:])
    with pytest.raises(ValueError) as exc:
        load_mnist(tmp_path, parts=("test",))
    msg = str(exc.value)
    assert msg == (
        f"{images}: not an unsigned-byte IDX file: expected magic 00000803, found {magic.hex()}"
    )
    if magic[:3] == b"\x00\x00\x08":  # without ndim=, nd ≥ 1 is accepted: still one short line
        shown = rf"(\(\d+,\)|{magic[3]} dimensions)"
        match = rf"^{re.escape(str(images))}: header says {shown} but holds \d+ values$"
        with pytest.raises(ValueError, match=match):
            read_idx(images)


def _libsvm_fixture(path, n, d, rng, labels=(-1, 1)):
    X = sparse.random(n, d, density=0.01, format="csr", random_state=rng, dtype=np.float64)
    X.data = np.abs(X.data) + 0.1
    w = rng.standard_normal(d)
    y = np.where(X @ w > 0, labels[1], labels[0])
    buf = path.parent / (path.name + ".txt")
    dump_svmlight_file(X, y, str(buf), zero_based=False)
    data = buf.read_bytes()
    buf.unlink()
    path.write_bytes(bz2.compress(data) if path.suffix == ".bz2" else data)
    return X, y


def test_realsim_libsvm_bz2_alignment(tmp_path):
    rng = np.random.default_rng(0)
    X, y = _libsvm_fixture(tmp_path / "real-sim.bz2", 60, 20958, rng)
    ds = load_realsim(tmp_path, row_norm=None)
    assert sparse.issparse(ds.X_train) and ds.n_features == 20958
    # every loaded row (values and indices together) is one of the original rows
    orig = {tuple(X[i].indices) + tuple(np.round(X[i].data, 6)) for i in range(X.shape[0])}
    Xl = sparse.vstack([ds.X_train, ds.X_test]).tocsr()
    Xl.sort_indices()
    for i in range(Xl.shape[0]):
        assert tuple(Xl[i].indices) + tuple(np.round(Xl[i].data, 6)) in orig


def test_rcv1_libsvm_subset_and_labels(tmp_path):
    rng = np.random.default_rng(1)
    _libsvm_fixture(tmp_path / "rcv1_train.binary", 80, 47236, rng, labels=(0, 1))
    ds = load_rcv1(tmp_path, n_samples=50, cache_dir=tmp_path / "c")
    assert ds.n_samples == 50 and ds.n_features == 47236
    assert set(np.unique(ds.y_train)) <= {-1.0, 1.0}
    again = load_rcv1(tmp_path, n_samples=50, cache_dir=tmp_path / "c")  # sparse cache
    assert sparse.issparse(again.X_train)
    assert (again.X_train != ds.X_train).nnz == 0


def test_synthetic_sets():
    lo = load_synthetic_l()
    assert lo.n_samples == 10000 and lo.n_features == 40 and lo.X_train.shape[0] == 8000
    assert set(np.unique(lo.y_train)) == {-1.0, 1.0}
    hi = load_synthetic_h()
    assert hi.n_samples == 2000 and hi.n_features == 2000
    assert np.array_equal(load_synthetic_l().X_test, lo.X_test)
    with pytest.raises(ValueError, match="variant"):
        load_synthetic_h(variant="x")
    assert load_dataset("synthetic_l").n_features == 40
    with pytest.raises(ValueError, match="root"):
        load_dataset("adult")
