"""Image files through ``torchvision.datasets`` (MNIST, FashionMNIST, CIFAR10; no download).

Every test builds small same-format fixtures from a seed (the writers of
``tests/test_dpsgd_data.py``) and checks that the torchvision path gives exactly the arrays the
hand-written readers gave before, that the layouts torchvision cannot read still load through
the adapter, and that a missing file is named with where it comes from.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from test_dpsgd_data import py2_pickle, write_cifar, write_idx

from product_noise.data.dpsgd import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    MNIST_MEAN_STD,
    load_cifar10,
    load_mnist_dpsgd,
)
from product_noise.data.loaders import DatasetNotFoundError, load_mnist, normalize_rows
from product_noise.data.vision import IDX_FILES, read_cifar10_batches, read_idx_splits

STEMS = [stem for pair in IDX_FILES.values() for stem in pair]


def _fixture_arrays(n_train: int = 36, n_test: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def _write(root: Path, sub: str, gz: bool, arrays: dict[str, np.ndarray]) -> Path:
    d = root / sub if sub != "." else root
    for stem, arr in arrays.items():
        write_idx(d / stem, arr, gz)
    return root


def _old_dpsgd_tensors(images: np.ndarray) -> torch.Tensor:
    """The formula of the hand-written loader before torchvision (commit c00b6fe)."""
    mean, std = MNIST_MEAN_STD
    return ((torch.from_numpy(images.astype(np.float32) / 255.0) - mean) / std).unsqueeze(1)


# ----------------------------------------------------------------------------- MNIST
@pytest.mark.parametrize(
    ("sub", "gz", "reader"),
    [
        ("MNIST/raw", False, "torchvision.datasets.MNIST"),
        ("FashionMNIST/raw", False, "torchvision.datasets.FashionMNIST"),
        ("MNIST/raw", True, "read_idx"),  # torchvision reads only the uncompressed files
        (".", True, "read_idx"),  # flat and gzipped, as Debian's dataset-fashion-mnist
        (".", False, "read_idx"),
    ],
)
def test_idx_reader_per_layout_gives_the_stored_arrays(
    tmp_path: Path, sub: str, gz: bool, reader: str
) -> None:
    arrays = _fixture_arrays()
    _write(tmp_path, sub, gz, arrays)
    got = read_idx_splits(tmp_path)
    for split, (img_stem, lab_stem) in IDX_FILES.items():
        assert got[split].reader == reader
        assert got[split].images.dtype == np.uint8 and got[split].labels.dtype == np.int64
        assert np.array_equal(got[split].images, arrays[img_stem])
        assert np.array_equal(got[split].labels, arrays[lab_stem].astype(np.int64))


def test_torchvision_path_equals_the_adapter_and_the_old_loader(tmp_path: Path) -> None:
    arrays = _fixture_arrays()
    tv_root, flat_root = tmp_path / "tv", tmp_path / "flat"
    _write(tv_root, "MNIST/raw", False, arrays)
    _write(flat_root, ".", True, arrays)
    tv, flat = load_mnist_dpsgd(tv_root), load_mnist_dpsgd(flat_root)
    assert tv.info["reader"] == "torchvision.datasets.MNIST" and flat.info["reader"] == "read_idx"
    for part, stem in (("train", "train"), ("test", "t10k")):
        x_tv, y_tv = getattr(tv, part).tensors
        x_flat, y_flat = getattr(flat, part).tensors
        assert torch.equal(x_tv, x_flat) and torch.equal(y_tv, y_flat)
        assert torch.equal(x_tv, _old_dpsgd_tensors(arrays[f"{stem}-images-idx3-ubyte"]))
        assert torch.equal(y_tv, torch.from_numpy(arrays[f"{stem}-labels-idx1-ubyte"]).long())
    # torchvision's own dataset object reads the same pixels
    direct = torchvision.datasets.MNIST(str(tv_root), train=True, download=False)
    assert np.array_equal(direct.data.numpy(), arrays["train-images-idx3-ubyte"])
    # the seeded 80/20 split of the test images is the same through both readers
    a = load_mnist_dpsgd(tv_root, train_on_test_split=True, seed=4)
    b = load_mnist_dpsgd(flat_root, train_on_test_split=True, seed=4)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])  # type: ignore[attr-defined]


def test_erm_mnist_loader_same_through_torchvision(tmp_path: Path) -> None:
    arrays = _fixture_arrays()
    _write(tmp_path / "tv", "MNIST/raw", False, arrays)
    _write(tmp_path / "flat", ".", True, arrays)
    tv, flat = load_mnist(tmp_path / "tv", seed=3), load_mnist(tmp_path / "flat", seed=3)
    assert tv.meta["reader"] == "torchvision.datasets.MNIST" and flat.meta["reader"] == "read_idx"
    assert np.array_equal(tv.X_train, flat.X_train) and np.array_equal(tv.y_test, flat.y_test)
    X = np.vstack(
        [arrays[f"{p}-images-idx3-ubyte"].reshape(-1, 784) / 255.0 for p in ("train", "t10k")]
    )
    y = np.concatenate([arrays[f"{p}-labels-idx1-ubyte"] for p in ("train", "t10k")])
    perm = np.random.default_rng(3).permutation(len(y))
    assert np.array_equal(tv.X_train, normalize_rows(X[perm])[: len(tv.y_train)])
    assert np.array_equal(tv.y_train, y[perm][: len(tv.y_train)])


def test_torchvision_layout_needs_all_four_files(tmp_path: Path) -> None:
    """torchvision requires the training files even for ``train=False``; the adapter does not."""
    arrays = _fixture_arrays()
    del arrays["train-images-idx3-ubyte"]
    _write(tmp_path, "MNIST/raw", False, arrays)
    test = read_idx_splits(tmp_path, ("test",))["test"]
    assert test.reader == "read_idx"
    assert np.array_equal(test.images, arrays["t10k-images-idx3-ubyte"])


def test_missing_idx_files_are_named_with_their_source(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as exc:
        read_idx_splits(tmp_path)
    msg = str(exc.value)
    assert f"{tmp_path / 'MNIST' / 'raw' / 'train-images-idx3-ubyte'}" in msg
    for stem in STEMS:
        assert f"{stem}[.gz]" in msg
    for where in ("MNIST/raw", "FashionMNIST/raw", "yann.lecun.com", "fashion-mnist"):
        assert where in msg
    assert "Nothing is downloaded" in msg
    # a partial flat folder: the most complete folder's missing file is named first
    arrays = _fixture_arrays()
    _write(tmp_path, ".", True, {k: v for k, v in arrays.items() if k != "t10k-labels-idx1-ubyte"})
    with pytest.raises(DatasetNotFoundError, match=r"t10k-labels-idx1-ubyte' not found"):
        load_mnist_dpsgd(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"train-images-idx3-ubyte"):
        load_mnist(tmp_path / "nowhere")


def test_malformed_file_in_torchvision_layout_is_named(tmp_path: Path) -> None:
    _write(tmp_path, "MNIST/raw", False, _fixture_arrays())
    bad = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    bad.write_bytes(b"\x08\x08\x08\x08" + bad.read_bytes()[4:])
    with pytest.raises(ValueError, match=rf"^{bad}: not an unsigned-byte IDX file"):
        load_mnist_dpsgd(tmp_path)
    _write(tmp_path, "MNIST/raw", False, _fixture_arrays())
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(ValueError, match=rf"^{bad}: header says \(20, 28, 28\) but holds"):
        load_mnist_dpsgd(tmp_path)


# ----------------------------------------------------------------------------- CIFAR-10
def _old_cifar_arrays(directory: Path) -> tuple[np.ndarray, ...]:
    """The hand-written pickle reader before torchvision (commit c00b6fe), abridged."""
    parts = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with (directory / name).open("rb") as fh:
            d = pickle.load(fh, encoding="bytes")
        d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}
        parts.append((np.asarray(d["data"], np.uint8), np.asarray(d["labels"], np.int64)))
    xtr = np.concatenate([p[0] for p in parts[:5]])
    ytr = np.concatenate([p[1] for p in parts[:5]])
    return xtr, ytr, parts[5][0], parts[5][1]


def _old_cifar_tensor(data: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@pytest.mark.parametrize("py2_keys", [True, False])
def test_cifar_torchvision_path_equals_the_old_reader(tmp_path: Path, py2_keys: bool) -> None:
    write_cifar(tmp_path, bytes_keys=py2_keys)
    d = tmp_path / "cifar-10-batches-py"
    xtr, ytr, xte, yte = _old_cifar_arrays(d)
    data = load_cifar10(tmp_path)
    assert data.info["reader"] == "torchvision.datasets.CIFAR10"
    assert torch.equal(data.train.tensors[0], _old_cifar_tensor(xtr))  # type: ignore[attr-defined]
    assert torch.equal(data.train.tensors[1], torch.from_numpy(ytr))  # type: ignore[attr-defined]
    assert torch.equal(data.test.tensors[0], _old_cifar_tensor(xte))  # type: ignore[attr-defined]
    assert torch.equal(data.test.tensors[1], torch.from_numpy(yte))  # type: ignore[attr-defined]
    batches, where = read_cifar10_batches(d)  # the six files directly in root
    assert where == d.resolve() and np.array_equal(batches["test_batch"][0].reshape(-1, 3072), xte)


def test_cifar_with_batches_meta(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship"]
    meta = {"label_names": [*names, "truck"], "num_cases_per_batch": 8, "num_vis": 3072}
    (tmp_path / "cifar-10-batches-py" / "batches.meta").write_bytes(py2_pickle(meta))
    assert load_cifar10(tmp_path).n_train == 40


def test_cifar_missing_and_py3_bytes_keys(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as exc:
        load_cifar10(tmp_path)
    msg = str(exc.value)
    assert "cifar-10-batches-py/data_batch_1" in msg and "cifar-10-python.tar.gz" in msg
    assert "Nothing is downloaded" in msg
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"data_batch_4' not found"):
        load_cifar10(tmp_path)
    shutil.rmtree(tmp_path / "cifar-10-batches-py")
    write_cifar(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    with bad.open("wb") as fh:  # Python 3 bytes keys: not the official format
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, fh)
    with pytest.raises(ValueError, match=r"data_batch_2: expected a pickled dict with keys"):
        load_cifar10(tmp_path)


def test_no_download_is_attempted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", refuse)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", refuse)
    _write(tmp_path, "MNIST/raw", False, _fixture_arrays())
    write_cifar(tmp_path)
    assert load_mnist_dpsgd(tmp_path).info["reader"] == "torchvision.datasets.MNIST"
    assert load_cifar10(tmp_path).n_test == 8
    with pytest.raises(DatasetNotFoundError):
        load_mnist_dpsgd(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_mnist_loader_takes_a_torchvision_transform(tmp_path: Path) -> None:
    from torchvision.transforms import v2

    arrays = _fixture_arrays()
    _write(tmp_path, "MNIST/raw", False, arrays)
    data = load_mnist_dpsgd(tmp_path, transform=v2.ToDtype(torch.float32, scale=True))
    x = data.train.tensors[0]  # type: ignore[attr-defined]
    expect = torch.from_numpy(arrays["train-images-idx3-ubyte"].astype(np.float32) / 255.0)
    assert x.shape == (36, 1, 28, 28) and x.dtype == torch.float32
    assert torch.allclose(x[:, 0], expect, rtol=0, atol=1e-7)  # ×(1/255) vs ÷255: ≤ 1 ulp
    with pytest.raises(ValueError, match="one row per image"):
        load_mnist_dpsgd(tmp_path, transform=lambda t: t[:3])
