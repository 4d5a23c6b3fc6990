"""The DP-SGD runner (and the non-private network): the digits CNN, the training settings and
the check that the engine recorded what the cached accounting assumed."""

from __future__ import annotations

import math
import time
import warnings
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ...training.loop import TrainConfig, train
from ...training.models import count_parameters
from ..accounting import figure_from_dict
from ..config import CompareConfig
from ..data import ClassificationData
from .common import AccountingMismatch, Outcome, _inputs, task_metric
from .task_loss import train_with_loss


class DigitsCNN(nn.Module):
    """A small CNN for 1×s×s inputs (s divisible by 4): two 3×3 convolutions (8, 16 channels)
    with max-pooling, then a linear layer (1,898 parameters for 8×8 digits)."""

    def __init__(self, side: int = 8, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Linear(16 * (side // 4) ** 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


def make_model(cfg: CompareConfig, data: ClassificationData) -> nn.Module:
    """The comparison's network: a user task's factory, else an MLP ``d → hidden → K`` or
    :class:`DigitsCNN`."""
    if data.model_factory is not None:
        return data.model_factory()
    k = data.num_classes
    if cfg.model == "cnn":
        if data.image_shape is None or data.image_shape[1] % 4:
            raise ValueError(f"model 'cnn' needs square images; dataset {data.name!r} has none")
        return DigitsCNN(data.image_shape[1], k)
    return nn.Sequential(
        nn.Linear(data.n_features, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, k)
    )


def _check_history(engine: Any, calib: dict[str, Any]) -> None:
    """The engine's accountant history must be the one the cached figures were computed for
    (for an unverified noise, which no accountant records: the noise and its multiplier)."""
    want = calib["history"]
    if want is None:
        mech, noise = engine.current_mechanism(), calib["noise"]
        nm = float(engine._optimizer.noise_multiplier)
        if mech.name != noise["noise"] or not math.isclose(nm, noise["noise_multiplier"]):
            raise AccountingMismatch(
                f"the engine ran {mech.name!r} at noise multiplier {nm}, not the planned {noise}"
            )
        return
    got = [list(h) for h in engine.accountant.history]
    ok = len(got) == len(want) and all(
        len(g) == len(w)
        and all(
            (a == b) if isinstance(b, (str, int)) else math.isclose(a, b, rel_tol=1e-9)
            for a, b in zip(g, w)
        )
        for g, w in zip(got, want)
    )
    if not ok:
        raise AccountingMismatch(f"accountant history {got} differs from the calibrated {want}")
    paper = calib.get("paper")
    if paper is not None:
        claimed = engine.claimed_accountant
        steps = want[0][-1]
        if claimed is None or claimed.num_steps != steps:
            raise AccountingMismatch("the paper's claimed accountant did not record every step")
        for k, v in paper.items():
            if not math.isclose(float(claimed.config[k]), float(v), rel_tol=1e-9):
                raise AccountingMismatch(f"claimed accountant {k}={claimed.config[k]} != {v}")


def _train_config(cfg: CompareConfig, seed: int, calib: dict[str, Any] | None) -> TrainConfig:
    """The :class:`~product_noise.training.loop.TrainConfig` of one run (``calib`` None: the
    non-private network).

    One rule for every network row (:data:`~product_noise.compare.config.SETTINGS_RULE`):
    private and non-private runs share the model, optimiser, learning rate, momentum, batch
    size and epochs; the non-private run only drops the noise and the per-example clipping.
    """
    common = dict(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        momentum=cfg.momentum,
        optimizer=cfg.optimizer,
        max_grad_norm=cfg.max_grad_norm,
        seed=seed,
        privacy_every=0,  # the privacy per epoch comes from the cached accounting
    )
    if calib is None:
        return TrainConfig(noise="none", lr=cfg.lr, **common)
    n0 = calib["noise"]
    if "epsilon0" in n0:  # the paper's calibration
        return TrainConfig(
            noise=n0["noise"],
            lr=cfg.lr,
            epsilon0=n0["epsilon0"],
            k=n0["k"],
            sensitivity=n0["sensitivity"],
            **common,
        )
    return TrainConfig(noise=n0["noise"], lr=cfg.lr, sigma=n0["noise_multiplier"], **common)


def run_dpsgd(
    cfg: CompareConfig,
    data: ClassificationData,
    seed: int,
    calib: dict[str, Any] | None,
    *,
    progress: bool = False,
    desc: str = "",
) -> Outcome:
    """Train the network with DP-SGD (``calib`` from :func:`~.accounting.compute_dpsgd`), or
    without noise when ``calib`` is None, by :func:`product_noise.training.loop.train`; test
    accuracy after every epoch."""
    from ...opacus import PrivacyEngine

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = make_model(cfg, data)
    dim = count_parameters(model)
    train_set = TensorDataset(_inputs(cfg, data, data.X_train), torch.from_numpy(data.y_train))
    test_set = TensorDataset(_inputs(cfg, data, data.X_test), torch.from_numpy(data.y_test))
    engine = None
    if calib is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            engine = PrivacyEngine()
    bar: Any = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, desc=desc or "epochs", unit="epoch", leave=False)
    metrics: list[float] = []

    custom = data.loss != "cross_entropy"  # a user's loss: its own loop (same engine, seeds)

    def on_epoch(_row: dict[str, Any]) -> None:
        if custom or data.metric != "accuracy":  # the task's metric, on the model trained
            metrics.append(task_metric(model, data, test_set.tensors[0], test_set.tensors[1]))
        if bar is not None:
            bar.update(1)

    trainer = partial(train_with_loss, loss=data.loss) if custom else train
    history = trainer(
        model,
        train_set,
        test_set,
        _train_config(cfg, seed, calib),
        progress=False,
        on_epoch=on_epoch,
        engine=engine,
    )
    if bar is not None:
        bar.close()
    epochs = [{k: row[k] for k in ("epoch", "train_loss", "test_accuracy")} for row in history]
    for row, value in zip(epochs, metrics):
        row["test_accuracy"] = value
    steps = history[-1]["steps"]
    outcome = Outcome(accuracy=epochs[-1]["test_accuracy"], dim=dim, steps=steps, epochs=epochs)
    outcome.train_seconds = time.perf_counter() - t0
    if engine is None:
        return outcome
    t1 = time.perf_counter()
    assert calib is not None
    _check_history(engine, calib)
    mech = engine.current_mechanism()
    outcome.expected_noise_norm = float(mech.expected_norm)
    outcome.noise_scale = float(engine._optimizer.noise_multiplier)  # scale / C
    for row, cal in zip(epochs, calib["curve"]):
        row["verified_epsilon"] = cal["verified"]["epsilon"] if cal["verified"] else math.nan
        row["claimed_epsilon"] = cal["claimed"]["epsilon"] if cal.get("claimed") else math.nan
    last = calib["curve"][-1]
    outcome.verified = figure_from_dict(last["verified"])
    outcome.claimed = figure_from_dict(last.get("claimed"))
    if calib.get("unverified"):
        outcome.notes.append(calib["unverified"])
    if calib["noise"]["noise"] == "product" and "epsilon0" in calib["noise"]:
        n0 = calib["noise"]
        outcome.notes.append(
            f"paper calibration eps0={n0['epsilon0']:.4g}, k={n0['k']:.4g}, "
            f"sensitivity={n0['sensitivity']}"
        )
    outcome.accounting_seconds = time.perf_counter() - t1
    return outcome
