"""What every runner shares: the :class:`Outcome` row, the accounting-mismatch error, test
accuracy and model inputs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import special
from torch import nn

from ...privacy import PrivacyFigure, PrivacyReport
from ..config import CompareConfig
from ..data import ClassificationData


class AccountingMismatch(RuntimeError):
    """The engine recorded a different history than the cached accounting assumed."""


@dataclass
class Outcome:
    """What one run produced.

    ``claimed``/``verified`` are the run's final privacy figures (``None`` when not applicable);
    ``epochs`` the per-epoch rows (test accuracy and labelled ε); times in seconds.
    """

    accuracy: float
    claimed: PrivacyFigure | None = None
    verified: PrivacyFigure | None = None
    expected_noise_norm: float = math.nan
    drawn_noise_norm: float = math.nan
    noise_scale: float = math.nan
    dim: int = 0
    steps: int = 0
    train_seconds: float = 0.0
    accounting_seconds: float = 0.0
    epochs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def report(self) -> PrivacyReport:
        """The run's final figures (:attr:`verified`, :attr:`claimed`) as one
        :class:`~product_noise.privacy.PrivacyReport`."""
        return PrivacyReport(
            self.verified,
            () if self.claimed is None else (self.claimed,),
            source="product_noise.compare",
        )


def _inputs(cfg: CompareConfig, data: ClassificationData, X: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    if data.input_dtype == "int64":  # ids (tokens, users, items): exact below 2**24
        t = t.to(torch.int64)
    if data.input_shape is not None:  # a user's task: its model's input shape
        return t.reshape(-1, *data.input_shape)
    if cfg.model == "cnn" and data.image_shape is not None:
        t = t.reshape(-1, *data.image_shape)
    return t


def expected_chi(m: int) -> float:
    """E‖z‖ for z ~ N(0, I_m)."""
    return float(math.sqrt(2.0) * math.exp(special.gammaln((m + 1) / 2) - special.gammaln(m / 2)))


@torch.no_grad()
def task_metric(
    model: nn.Module, data: ClassificationData, X: torch.Tensor, y: torch.Tensor
) -> float:
    """The task's test metric: accuracy, or a user task's ``metric(logits, y)`` on the whole
    test set."""
    if data.metric == "accuracy":
        return _accuracy(model, X, y)
    model.eval()
    logits = torch.cat([model(X[s : s + 2048]) for s in range(0, X.shape[0], 2048)])
    return float(data.metric(logits, y))  # type: ignore[operator]


@torch.no_grad()
def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = 0
    for s in range(0, X.shape[0], 2048):
        correct += int((model(X[s : s + 2048]).argmax(1) == y[s : s + 2048]).sum())
    return correct / max(1, X.shape[0])
