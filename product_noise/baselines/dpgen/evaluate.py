"""Evaluation of synthetic images: downstream accuracy, a small-CNN "FID", an image grid.

* :func:`downstream_accuracy` (gen2real): a :class:`~.models.SmallCNN` trained on generated
  labelled images, tested on real test images.
* :class:`FeatureFID`: Fréchet distance between Gaussian fits of the 64-dimensional penultimate
  features of a :class:`~.models.SmallCNN` **trained in this package on the real training
  split** (no downloaded Inception weights). Its scale is not comparable with Inception-FID
  (pytorch-fid, 2048 features, ImageNet network): only compare numbers computed with the same
  feature extractor (same data, seed and training settings).
* :func:`save_image_grid`: a PNG grid (matplotlib).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import linalg
from torch import nn

from product_noise.training.loop import fit_minibatch
from product_noise.validation import check_positive_int

from .generator import as_images
from .models import SmallCNN

__all__ = [
    "train_classifier",
    "accuracy",
    "downstream_accuracy",
    "frechet_distance",
    "FeatureFID",
    "save_image_grid",
]


def _labels(y: Any, n: int, name: str = "labels") -> torch.Tensor:
    t = torch.as_tensor(np.asarray(y)).long().view(-1)
    if t.shape[0] != n:
        raise ValueError(f"{name} has {t.shape[0]} entries for {n} images")
    return t


def train_classifier(
    images: Any,
    labels: Any,
    *,
    num_classes: int = 10,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> SmallCNN:
    """Train a :class:`SmallCNN` (Adam, cross-entropy) on images in [0, 1]."""
    x = as_images(images)
    y = _labels(labels, x.shape[0])
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    torch.manual_seed(seed)
    model = SmallCNN(x.shape[2], num_classes)
    fit_minibatch(
        model,
        x,
        lambda logits, idx: nn.functional.cross_entropy(logits, y[idx]),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
    )
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, images: Any, labels: Any) -> float:
    """Fraction of correctly classified images."""
    x = as_images(images)
    y = _labels(labels, x.shape[0])
    model.eval()
    correct = 0
    for s in range(0, x.shape[0], 2048):
        correct += int((model(x[s : s + 2048]).argmax(1) == y[s : s + 2048]).sum())
    return correct / x.shape[0]


def downstream_accuracy(
    synthetic: Any,
    synthetic_labels: Any,
    test_images: Any,
    test_labels: Any,
    *,
    num_classes: int = 10,
    epochs: int = 5,
    seed: int = 0,
) -> float:
    """gen2real: train on synthetic labelled images, return accuracy on real test images."""
    model = train_classifier(
        synthetic, synthetic_labels, num_classes=num_classes, epochs=epochs, seed=seed
    )
    return accuracy(model, test_images, test_labels)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """``‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2(Σ1Σ2)^{1/2})`` (real part; tiny ridge if singular)."""
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular covariances (dead units)
        covmean = linalg.sqrtm(cov1 @ cov2)
        if not np.isfinite(covmean).all():
            eye = np.eye(cov1.shape[0]) * 1e-6
            covmean = linalg.sqrtm((cov1 + eye) @ (cov2 + eye))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


class FeatureFID:
    """FID on the penultimate features of a small CNN trained on real training images.

    Parameters
    ----------
    epochs, seed : int
        Training of the feature CNN (non-private: an evaluation tool, like the lineage's
        MNIST-trained Inception-Score classifier; it does not touch the released model).
    """

    def __init__(self, *, num_classes: int = 10, epochs: int = 3, seed: int = 0) -> None:
        self.num_classes = int(num_classes)
        self.epochs = check_positive_int("epochs", epochs)
        self.seed = int(seed)
        self.model_: SmallCNN | None = None
        self.accuracy_: float | None = None

    def fit(self, images: Any, labels: Any) -> FeatureFID:
        self.model_ = train_classifier(
            images, labels, num_classes=self.num_classes, epochs=self.epochs, seed=self.seed
        )
        return self

    @torch.no_grad()
    def features(self, images: Any) -> np.ndarray:
        if self.model_ is None:
            raise RuntimeError("call fit() first")
        x = as_images(images)
        out = [self.model_.features(x[s : s + 2048]) for s in range(0, x.shape[0], 2048)]
        return torch.cat(out).double().numpy()

    def statistics(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        f = self.features(images)
        if f.shape[0] < 2:
            raise ValueError("FID needs at least 2 images per set")
        return f.mean(0), np.cov(f, rowvar=False)

    def score(self, images_a: Any, images_b: Any) -> float:
        """FID between two image sets (lower is closer)."""
        return frechet_distance(*self.statistics(images_a), *self.statistics(images_b))


def save_image_grid(images: Any, path: str | Path, *, nrow: int = 10, title: str = "") -> Path:
    """Save images ``(n, 1, H, H)`` in [0, 1] as a grid PNG with ``nrow`` images per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = as_images(np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)).numpy()[:, 0]
    nrow = check_positive_int("nrow", nrow)
    n, h = x.shape[0], x.shape[1]
    rows = -(-n // nrow)
    canvas = np.ones((rows * (h + 1) + 1, nrow * (h + 1) + 1), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, nrow)
        canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (h + 1) : 1 + c * (h + 1) + h] = x[i]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(max(2.0, nrow * 0.5), max(2.0, rows * 0.5)))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
