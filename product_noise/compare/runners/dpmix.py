"""The DPMix runner: publish a release, train the network on it, test on real data."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from ...training.loop import fit_minibatch
from ..accounting import figure_from_dict
from ..config import CompareConfig
from ..data import ClassificationData
from .common import AccountingMismatch, Outcome, _inputs, expected_chi, task_metric
from .dpsgd import make_model


def _train_on_release(
    cfg: CompareConfig,
    data: ClassificationData,
    Xs: np.ndarray,
    Ys: np.ndarray,
    soft: bool,
    seed: int,
) -> float:
    from dpmix.train import kl_soft_label_loss

    torch.manual_seed(seed)
    model = make_model(cfg, data)
    X = _inputs(cfg, data, Xs)
    Y = torch.from_numpy(np.ascontiguousarray(Ys, dtype=np.float32))
    hard = Y.argmax(1)

    def loss_of(logits: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if soft:
            return kl_soft_label_loss(logits, Y[b])
        if data.loss != "cross_entropy":  # a user task's loss
            return data.loss(logits, hard[b])  # type: ignore[operator]
        return nn.functional.cross_entropy(logits, hard[b])

    fit_minibatch(
        model,
        X,
        loss_of,
        epochs=cfg.dpmix_epochs,
        batch_size=cfg.batch_size,
        lr=cfg.dpmix_lr,
        seed=seed,
    )
    X_test = _inputs(cfg, data, data.X_test)
    return task_metric(model, data, X_test, torch.from_numpy(data.y_test))


def run_dpmix(
    cfg: CompareConfig, data: ClassificationData, mixing: str, seed: int, calib: dict[str, Any]
) -> Outcome:
    """Publish a DPMix release at the cached σ and train the network on it."""
    from dpmix import DPMix, L2NormBound, PixelBound, one_hot

    t0 = time.perf_counter()
    key = calib["key"]
    bound = PixelBound() if data.bound == "pixel" else L2NormBound(1.0)
    mix = DPMix(key["l"], key["T"], calib["sigma_x"], mixing=mixing, bound=bound, seed=seed)  # type: ignore[arg-type]
    Xs, Ys = mix.publish(data.X_train, one_hot(data.y_train, data.num_classes).astype(np.float32))
    t_pub = time.perf_counter()
    r = mix.release_
    assert r is not None
    rel = calib["release"]
    same = (
        r.n == rel["n"]
        and {str(c): v for c, v in r.class_counts.items()} == rel["class_counts"]
        and {str(c): v for c, v in r.class_releases.items()} == rel["class_releases"]
        and math.isclose(r.x_diameter, rel["x_diameter"])
        and math.isclose(r.y_diameter, rel["y_diameter"])
        and r.sigma_x == calib["sigma_x"]
        and r.sigma_y == calib["sigma_y"]
    )
    if not same:
        raise AccountingMismatch(
            "the DPMix release differs from the one its privacy was computed for"
        )
    soft = mixing == "global"
    acc = _train_on_release(
        cfg, data, np.asarray(Xs).reshape(len(Xs), -1), np.asarray(Ys), soft, seed
    )
    out = Outcome(accuracy=acc, dim=data.n_features, steps=key["T"])
    out.verified = figure_from_dict(calib["verified"])
    out.claimed = figure_from_dict(calib["claimed"])
    out.noise_scale = float(r.sigma_x)
    if r.sigma_y is None:
        out.expected_noise_norm = r.sigma_x * expected_chi(r.dim)
    else:  # σ_x = σ_y: one Gaussian over the d + K released values
        out.expected_noise_norm = r.sigma_x * expected_chi(r.dim + r.num_classes)
    out.train_seconds = time.perf_counter() - t0
    out.notes.append(
        f"l={key['l']}, T={key['T']}, sigma={r.sigma_x:.4g}, publish {t_pub - t0:.2f}s; "
        "E||n|| per released record"
    )
    return out
