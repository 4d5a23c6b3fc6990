"""DP-SGD with a user task's own loss.

:func:`product_noise.training.loop.train` trains on the cross-entropy; a task with a callable
``loss(logits, y)`` is trained here instead, with the same engine call, the same seeding (the
model's, the loader's and the noise generator's) and the same rule for empty Poisson batches (a
noise-only step). Everything else of the run (calibration, accounting, the check of the
accountant's history) is the harness', as for the built-in loss.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ...training.loop import TrainConfig, make_optimizer, make_private_for

__all__ = ["train_with_loss"]


def _epoch(model: nn.Module, opt: Any, loader: DataLoader, loss: Callable, epoch: int) -> tuple:
    """One epoch of steps; returns (summed loss, examples, steps)."""
    model.train()
    total, n, steps = 0.0, 0, 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        for xb, yb in loader:
            opt.zero_grad()
            out = model(xb)
            value = loss(out, yb) if len(yb) else out.sum() * 0.0  # empty batch: noise only
            if not (torch.is_tensor(value) and value.ndim == 0 and torch.isfinite(value)):
                raise FloatingPointError(
                    f"the task's loss must return a finite scalar tensor; got {value!r:.60} at "
                    f"epoch {epoch}"
                )
            value.backward()
            opt.step()
            steps += 1
            total += float(value.detach()) * len(yb)
            n += len(yb)
    return total, n, steps


def train_with_loss(
    model: nn.Module,
    train_set: Dataset,
    test_set: Dataset,
    config: TrainConfig,
    *,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    engine: Any | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Train ``model`` with ``loss`` (the configured SGD or Adam; DP-SGD through ``engine`` unless
    ``config.noise == "none"``); returns the per-epoch rows (``epoch``, ``steps``,
    ``train_loss``, ``test_accuracy`` = NaN: the harness evaluates the task's metric).

    Parameters
    ----------
    model, train_set, test_set, config, on_epoch, engine, progress
        As for :func:`product_noise.training.loop.train` (``progress`` is ignored).
    loss : callable
        ``loss(logits, y) -> scalar tensor``, the batch mean.

    Returns
    -------
    history : list of dict
        One row per epoch.
    """
    config.validate()
    torch.manual_seed(config.seed)
    opt = make_optimizer(model, config)
    gen = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=gen)
    net = model
    if config.noise != "none":
        assert engine is not None
        net, opt, loader = make_private_for(engine, model, opt, loader, config)
    history: list[dict[str, Any]] = []
    steps = 0
    for epoch in range(1, config.epochs + 1):
        total, n, k = _epoch(net, opt, loader, loss, epoch)
        steps += k
        row = {"epoch": epoch, "steps": steps, "train_loss": total / max(n, 1)}
        row["test_accuracy"] = math.nan
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return history
