"""IDX loading, the thesis CNN and loss, a tiny end-to-end run, and the ``dpmix`` subcommand."""

from __future__ import annotations

import argparse
import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dpmix import DPMix, one_hot
from dpmix.data import find_idx_dir, load_mnist, read_idx
from dpmix.train import ThesisCNN, kl_soft_label_loss, train_on_release
from product_noise.cli.dpmix import COMMAND, add_arguments, run


def _write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _fake_mnist(d: Path, n: int = 60, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, 28, 28))
    labs = np.arange(n) % 10
    for split in ("train", "t10k"):
        _write_idx(d / f"{split}-images-idx3-ubyte", imgs, gz)
        _write_idx(d / f"{split}-labels-idx1-ubyte", labs, gz)
    return imgs, labs


@pytest.mark.parametrize(("layout", "gz"), [("MNIST/raw", True), (".", False)])
def test_idx_layouts(tmp_path: Path, layout: str, gz: bool) -> None:
    imgs, labs = _fake_mnist(tmp_path / layout, gz=gz)
    X, y = load_mnist(tmp_path, "train")
    assert X.shape == (60, 28, 28) and X.dtype == np.float32
    np.testing.assert_allclose(X * 255, imgs, atol=1e-4)
    np.testing.assert_array_equal(y, labs)
    assert find_idx_dir(tmp_path) == (tmp_path / layout).resolve()


def test_idx_missing_files_named(tmp_path: Path) -> None:
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\[\.gz\].*MNIST/raw"):
        load_mnist(tmp_path, "train")
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)


@pytest.mark.parametrize("magic", [b"\x00\x00\x08\xff", b"\x00\x00\x08\x01"])
def test_idx_bad_magic_is_one_line_with_expected_and_found(tmp_path: Path, magic: bytes) -> None:
    # 0x000008ff was read as 255 dimensions and printed as an 800-character tuple of zeros
    _fake_mnist(tmp_path, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(magic + images.read_bytes()[4:])
    with pytest.raises(ValueError) as exc:
        load_mnist(tmp_path, "train")
    assert str(exc.value) == (
        f"{images} is not an IDX file of unsigned bytes (bad magic number): expected 00000803, "
        f"found {magic.hex()}"
    )


def test_cnn_and_kl_loss() -> None:
    torch.manual_seed(0)
    model = ThesisCNN()
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    # Table 4.1 parameter count: conv 32·25+32, conv 48·32·25+48, FC 768·100+100, 100·100+100,
    # 100·10+10
    expected = 832 + 38448 + 76900 + 10100 + 1010
    assert sum(p.numel() for p in model.parameters()) == expected
    logits = torch.randn(4, 10)
    target = torch.softmax(torch.randn(4, 10), 1)
    target[0, 3] = -0.2  # a negative noisy label counts as 1e-7 (Keras clipping)
    p = torch.softmax(logits, 1).clamp(1e-7, 1)
    t = target.clamp(1e-7, 1)
    ref = (t * torch.log(t / p)).sum(1).mean()
    assert kl_soft_label_loss(logits, target).item() == pytest.approx(ref.item(), rel=1e-5)


def test_tiny_end_to_end() -> None:
    """Publish a release of a learnable toy problem and train for a few epochs (smoke test)."""
    n = 200
    labels = np.arange(n) % 2
    X = np.zeros((n, 1, 28, 28), dtype=np.float32)
    X[labels == 0, :, :, :14] = 1.0  # class 0: left half bright, class 1: right half
    X[labels == 1, :, :, 14:] = 1.0
    Y = one_hot(labels, 2)
    Xs, Ys = DPMix(4, 320, 0.3, mixing="class", seed=0).publish(X, Y)
    res = train_on_release(Xs, Ys, X, labels, loss="kl", epochs=2, lr=1e-3, batch_size=32)
    assert res.test_accuracy > 0.9
    assert len(res.history) == 2 and res.history[0]["lr"] == 1e-3
    with pytest.raises(ValueError, match="loss must be"):
        train_on_release(Xs, Ys, X, labels, loss="mse", epochs=1)


def test_cli_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args("--n 60000 --l 256 --T 10000 --sigma 0.0711 --backend native".split())
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "verified (ε = 11.36" in out and "claimed (ε = 15," in out
    assert "Δ² = 155483" in out  # 786/σ²
    with pytest.raises(ValueError, match="--l must be <= --n"):
        run(p.parse_args("--n 10 --l 11 --T 1 --sigma 1".split()))
    with pytest.raises(SystemExit):
        p.parse_args("--n 10 --l 0 --T 1 --sigma 1".split())

    cmd = COMMAND
    assert cmd.name == "dpmix" and cmd.run is run and math.isfinite(len(cmd.description))
