"""One DP-SGD training loop shared by the example scripts and the comparison harness.

It wires a model and datasets to :class:`product_noise.PrivacyEngine` with the chosen noise
(``"product"`` at the paper's per-step calibration or at an explicit noise multiplier,
``"gaussian"`` with Opacus' noise multiplier, ``"l2"``, any mechanism registered for DP-SGD
(:func:`product_noise.register_mechanism`) at an explicit noise multiplier, or ``"none"`` for
non-private training), trains with tqdm progress, and logs per epoch:
train/test loss and metric (accuracy, or RMSE for rating models) and every privacy figure with its
label (``verified`` from the exact accountant; ``claimed`` from the paper's composition for product
noise). A mechanism without a proven profile has no figure: its rows carry ``unverified`` (the
reason) instead. Results are plain dictionaries, written as JSON and CSV by :func:`save_history`.
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..privacy import UNVERIFIED, PrivacyWarning
from ..validation import InputError, check_delta, check_positive, check_positive_int
from .models import count_parameters

__all__ = [
    "TrainConfig",
    "train",
    "evaluate",
    "fit_minibatch",
    "save_history",
    "NOISES",  # noqa: F822 - computed on access (module __getattr__)
    "noises",
    "make_private_for",
    "make_optimizer",
]


def _default_first(names: tuple[str, ...]) -> tuple[str, ...]:
    return ("product", *(n for n in names if n != "product"), "none")


def __getattr__(name: str) -> Any:
    # NOISES: the package's own DP-SGD noises, the default (product) first, and "none"
    # (backward compatibility; TrainConfig.validate uses noises(), which includes mechanisms
    # registered later). Computed on access: the registry queries live in product_noise.opacus,
    # which imports Opacus, so this module does not import it at import time.
    if name == "NOISES":
        from ..opacus.families import builtin_noise_choices

        return _default_first(builtin_noise_choices())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def noises() -> tuple[str, ...]:
    """The noises :class:`TrainConfig` accepts now (registry aliases resolve too).

    Returns
    -------
    names : tuple of str
        ``"product"`` (the default), every other DP-SGD noise of the registry — built-in and
        user-registered, verified or not — and ``"none"``.
    """
    from ..opacus.families import noise_choices

    return _default_first(noise_choices())


@dataclass
class TrainConfig:
    """Hyperparameters of one run (defaults: the official MNIST script).

    ``noise`` chooses the mechanism (:func:`noises`); ``sigma`` is the noise multiplier
    (scale/C): Opacus' σ/C for ``"gaussian"``, θ/C for ``"l2"``, scale/C for a registered
    mechanism (every noise but product noise needs it). Product noise is calibrated by the
    paper's per-step ``epsilon0``/``k``/``sensitivity`` unless ``sigma`` is given: then its
    scale is ``sigma``·C (e.g. from
    :func:`~product_noise.opacus.engine.calibrate_verified_noise_multiplier`) and
    ``epsilon0``/``k``/``sensitivity`` are not used (no claimed figure).

    ``privacy_every``: privacy figures every that many epochs (and after the last); 0 for
    none (when the caller accounts the run itself, e.g. from ``engine.accountant.history``).
    """

    noise: str = "product"
    epochs: int = 50
    batch_size: int = 256
    lr: float = 0.15
    optimizer: str = "sgd"
    momentum: float = 0.0
    lr_schedule: str | None = None
    max_grad_norm: float = 1.0
    sigma: float | None = None
    epsilon0: float = 0.3
    k: float = 40_000.0
    sensitivity: str = "paper"
    delta: float = 1e-5
    metric: str = "accuracy"
    seed: int = 0
    device: str = "cpu"
    poisson_sampling: bool = True
    privacy_every: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> TrainConfig:
        self._check_noise()
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive("lr", self.lr)
        check_positive("max_grad_norm", self.max_grad_norm)
        check_delta(self.delta)
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.metric not in ("accuracy", "rmse"):
            raise ValueError(f"metric must be 'accuracy' or 'rmse', got {self.metric!r}")
        if self.lr_schedule not in (None, "cos"):
            raise ValueError(f"lr_schedule must be None or 'cos', got {self.lr_schedule!r}")
        if self.noise not in ("product", "none") and self.sigma is None:
            raise ValueError(f"noise={self.noise!r} needs sigma (the noise multiplier)")
        if self.noise == "none" and self.sigma is not None:
            raise ValueError("sigma (the noise multiplier) does not apply to noise='none'")
        if self.sigma is not None:
            check_positive("sigma", self.sigma)
        if self.privacy_every < 0 or int(self.privacy_every) != self.privacy_every:
            raise ValueError(f"privacy_every must be an integer ≥ 0, got {self.privacy_every}")
        if self.noise == "product" and self.sigma is None:
            check_positive("epsilon0", self.epsilon0)
            if check_positive("k", self.k) <= 1:
                raise ValueError(f"k must be > 1, got {self.k}")
        return self

    def _check_noise(self) -> None:
        """``noise`` is ``"none"`` or a registered DP-SGD noise (name or alias), now."""
        if self.noise == "none":
            return
        from ..opacus.families import noise_family

        try:
            noise_family(self.noise)
        except InputError:
            raise InputError(
                f"unknown noise {self.noise!r}; choose one of {', '.join(noises())} (a "
                "mechanism of your own: register it first with product_noise.register_mechanism)"
            ) from None


def _metric(outputs: torch.Tensor, targets: torch.Tensor, metric: str) -> tuple[float, int]:
    """Sum of the per-example metric (correct count, or squared rating error) and the count."""
    pred = outputs.argmax(dim=-1)
    if metric == "accuracy":
        return float((pred == targets).sum()), int(targets.numel())
    return float(((pred - targets).float() ** 2).sum()), int(targets.numel())


def _finish(total: float, count: int, metric: str) -> float:
    if count == 0:
        return math.nan
    return total / count if metric == "accuracy" else math.sqrt(total / count)


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader, metric: str = "accuracy", device: str = "cpu"
) -> tuple[float, float]:
    """(mean loss, metric) of ``model`` on ``loader``."""
    model.eval()
    crit = nn.CrossEntropyLoss(reduction="sum")
    loss_sum, m_sum, n = 0.0, 0.0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        out = model(xb)
        loss_sum += float(crit(out, yb))
        s, c = _metric(out, yb, metric)
        m_sum += s
        n += c
    return (loss_sum / max(n, 1), _finish(m_sum, n, metric))


@dataclass
class _Run:
    """The objects one :func:`train` call works with, and its progress."""

    model: nn.Module
    opt: torch.optim.Optimizer
    train_loader: DataLoader
    test_loader: DataLoader
    gen: torch.Generator
    engine: Any
    scheduler: Any
    dim: int
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    first: int = 1
    distributed: bool = False
    rank: int = 0


def train(
    model: nn.Module,
    train_set: Dataset,
    test_set: Dataset,
    config: TrainConfig,
    *,
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    engine: Any | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    distributed: bool = False,
) -> list[dict[str, Any]]:
    """Train ``model`` with the configured noise and return the per-epoch history.

    ``on_epoch`` is called with each epoch's row as soon as it is complete. ``engine`` is the
    :class:`product_noise.PrivacyEngine` to attach (a new one by default): pass one to read its
    accountants and mechanism after training. Rows count optimizer ``steps`` cumulatively.

    ``checkpoint``: a file written (atomically: temporary file, then rename) after every epoch
    with the engine's checkpoint API: model, optimizer, accountants, noise generator, the
    sampling and global RNG states and the history so far. With ``resume=True`` and an existing
    ``checkpoint`` the run continues after its last finished epoch with the same privacy
    accounting, and gives the history an uninterrupted run gives (``seconds`` aside); without
    the file it starts at epoch 1. A checkpoint of another configuration raises
    :class:`ValueError` before anything is trained.

    ``distributed=True``: this process is one rank of an initialised ``torch.distributed``
    process group (e.g. started by torchrun), and every rank calls ``train`` with the same
    arguments and the whole ``train_set``. DP-SGD only (not ``noise="none"``), with Poisson
    sampling and no checkpoint. ``batch_size`` is the expected *global* batch: the sample rate
    and the steps per epoch are those of one process, each rank draws its share of the batch
    from its shard of ``train_set`` (:func:`_distributed_loader`), the model is wrapped in
    Opacus' ``DifferentiallyPrivateDistributedDataParallel`` and the engine's distributed
    optimizer draws the noise on rank 0 only, so the accounting is that of one process. The
    train loss and metric of a row are over the batches of all ranks; only rank 0's rows
    carry the privacy figures (the other ranks skip computing the same numbers).
    """
    saved = _validate_train(train_set, test_set, config, checkpoint, resume)
    if distributed:
        _check_distributed(config, checkpoint)
    run = _setup_run(model, train_set, test_set, config, engine, distributed)
    if saved is not None:
        assert checkpoint is not None
        _resume_run(run, saved, Path(checkpoint))
    tqdm = _tqdm_or_none() if progress else None
    for epoch in range(run.first, config.epochs + 1):
        row = _run_epoch(run, epoch, config, tqdm)
        run.history.append(row)
        if checkpoint is not None:
            state = _train_state(run, config, epoch)
            _save_checkpoint(Path(checkpoint), run.engine, run.model, run.opt, state)
        if on_epoch is not None:
            on_epoch(row)
    return run.history


def _validate_train(
    train_set: Dataset,
    test_set: Dataset,
    config: TrainConfig,
    checkpoint: str | Path | None,
    resume: bool,
) -> dict[str, Any] | None:
    """Check the arguments of :func:`train`; returns the training state to resume, if any."""
    config.validate()
    _check_sets(train_set, test_set)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint= (the file to continue from)")
    if resume and checkpoint is not None and Path(checkpoint).exists():
        return _read_train_state(Path(checkpoint), config)
    return None


def _check_distributed(config: TrainConfig, checkpoint: str | Path | None) -> None:
    """Refuse a ``distributed=True`` run that cannot be one (before anything is built)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise ValueError(
            "distributed=True needs an initialised torch.distributed process group "
            "(torchrun, then torch.distributed.init_process_group)"
        )
    if config.noise == "none":
        raise ValueError("distributed=True trains DP-SGD only, not noise='none'")
    if not config.poisson_sampling:
        raise ValueError("distributed=True needs poisson_sampling=True (sharded Poisson sampling)")
    if checkpoint is not None:
        raise ValueError(
            "distributed=True writes no checkpoint: the sampling generators of the other ranks "
            "would not be in it, so a resumed run could not continue them"
        )


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The base optimizer of ``config``: SGD with ``momentum``, or Adam (``optimizer="adam"``),
    at learning rate ``lr``, over the model's parameters (before ``make_private`` wraps it)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    return torch.optim.Adam(model.parameters(), lr=config.lr)


def _setup_run(
    model: nn.Module,
    train_set: Dataset,
    test_set: Dataset,
    config: TrainConfig,
    engine: Any,
    distributed: bool = False,
) -> _Run:
    """Seed, move the model (and wrap it in DPDDP when ``distributed``), build the optimizer and
    loaders, attach the privacy engine (none for ``noise="none"``) and the learning-rate
    schedule."""
    torch.manual_seed(config.seed)
    model = model.to(config.device)
    dim = count_parameters(model)
    rank = 0
    if distributed:
        from opacus.distributed import DifferentiallyPrivateDistributedDataParallel as DPDDP

        model = DPDDP(model)  # broadcasts rank 0's initial parameters
        rank = torch.distributed.get_rank()
    opt = make_optimizer(model, config)
    gen = torch.Generator().manual_seed(_sampling_seed(config.seed, rank, distributed))
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=gen)
    test_loader = DataLoader(test_set, batch_size=1024)
    if config.noise == "none":
        engine = None
    else:
        if engine is None:
            from ..opacus import PrivacyEngine

            engine = PrivacyEngine()
        model, opt, train_loader = make_private_for(engine, model, opt, train_loader, config)
        if distributed:
            train_loader = _distributed_loader(train_loader)
    return _Run(
        model=model,
        opt=opt,
        train_loader=train_loader,
        test_loader=test_loader,
        gen=gen,
        engine=engine,
        scheduler=_lr_scheduler(opt, config),
        dim=dim,
        distributed=distributed,
        rank=rank,
    )


def _sampling_seed(seed: int, rank: int, distributed: bool) -> int:
    """Seed of the Poisson sampling generator: ``seed`` in one process; under
    ``distributed``, one derived from ``(seed, rank)`` (numpy's ``SeedSequence``), so that the
    ranks draw independent inclusion masks (a shared seed would include the examples at the
    same local position of every shard together) and no rank reuses the noise seed
    ``seed + 1``."""
    if not distributed:
        return seed
    import numpy as np

    return int(np.random.SeedSequence((seed, rank)).generate_state(1, np.uint64)[0] >> 1)


def _distributed_loader(loader: DataLoader) -> DataLoader:
    """The sharded Poisson loader ``make_private`` returned for a DPDDP module, rebuilt on
    :class:`_EveryStepSampler` (same dataset, rate, steps, shards, generator and collate)."""
    return DataLoader(
        loader.dataset,
        batch_sampler=_EveryStepSampler(loader.batch_sampler),
        collate_fn=loader.collate_fn,  # Opacus' collate: empty batches keep their shapes
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
    )


class _EveryStepSampler(Sampler[list[int]]):
    """Opacus' sharded Poisson sampling, yielding every step's local batch, empty ones too.

    Opacus' ``DistributedUniformWithReplacementSampler`` skips a rank's empty local batch: that
    rank would take fewer optimizer steps than the others (its gradient all-reduce pairs with
    another rank's next step, and the last one waits forever) and its accountant would count
    fewer steps than were taken. This sampler draws as that one does (the same shards, rate,
    number of batches and generator) but yields all ``num_batches`` local batches, as the
    single-process sampler does, so every rank takes every step.

    Parameters
    ----------
    sharded : DistributedUniformWithReplacementSampler
        Opacus' sampler whose shards, rate, step count and generator are used.
    """

    def __init__(self, sharded: Any) -> None:
        self.sharded = sharded
        self.sample_rate: float = sharded.sample_rate

    def __len__(self) -> int:
        return int(self.sharded.num_batches)

    def __iter__(self) -> Iterator[list[int]]:
        s = self.sharded
        if s.shuffle:  # Opacus' split of the dataset into shards, as upstream
            g = torch.Generator().manual_seed(s.shuffle_seed + s.epoch)
            indices = torch.randperm(s.total_size, generator=g)
        else:
            indices = torch.arange(s.total_size)
        indices = indices[s.rank : s.total_size : s.num_replicas]
        for _ in range(s.num_batches):
            mask = torch.rand(s.num_samples, generator=s.generator) < s.sample_rate
            yield indices[mask].tolist()


def make_private_for(
    engine: Any,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    train_loader: DataLoader,
    config: TrainConfig,
) -> tuple[nn.Module, torch.optim.Optimizer, DataLoader]:
    """``engine.make_private`` with the configured noise (its routine warnings silenced).

    The one place a :class:`TrainConfig` becomes an engine call (also used by the comparison's
    runner of a task with its own loss).

    Parameters
    ----------
    engine : PrivacyEngine
        The engine to wrap with.
    model, opt, train_loader
        The module, its optimizer and the training loader.
    config : TrainConfig
        Noise (product noise at the paper's ε₀/k when ``sigma`` is None, else
        ``noise_multiplier=sigma``), clip norm, sampling and the noise generator's seed.

    Returns
    -------
    model, optimizer, loader
        As :meth:`PrivacyEngine.make_private` returns them.
    """
    kw: dict[str, Any] = {}
    if config.noise == "product" and config.sigma is None:
        kw = {"epsilon0": config.epsilon0, "k": config.k, "sensitivity": config.sensitivity}
    else:
        kw = {"noise_multiplier": config.sigma}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        return engine.make_private(
            module=model,
            optimizer=opt,
            data_loader=train_loader,
            max_grad_norm=config.max_grad_norm,
            noise=config.noise,
            poisson_sampling=config.poisson_sampling,
            noise_generator=torch.Generator().manual_seed(config.seed + 1),
            **kw,
        )


def _lr_scheduler(opt: torch.optim.Optimizer, config: TrainConfig) -> Any:
    """The cosine learning-rate schedule for ``lr_schedule="cos"``, else ``None``."""
    if config.lr_schedule != "cos":
        return None
    e_max = config.epochs

    def factor(e: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * e / (e_max + 1)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _resume_run(run: _Run, saved: dict[str, Any], checkpoint: Path) -> None:
    """Restore model, optimizer, accountants, schedule, RNG states and history from
    ``checkpoint`` (whose training state is ``saved``)."""
    _load_checkpoint(checkpoint, run.engine, run.model, run.opt)
    run.history = list(saved["history"])
    run.steps = int(saved["steps"])
    run.first = int(saved["epoch"]) + 1
    if run.scheduler is not None:
        run.scheduler.load_state_dict(saved["scheduler"])
    run.gen.set_state(saved["loader_rng"])
    torch.set_rng_state(saved["torch_rng"])


def _tqdm_or_none() -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm


def _run_epoch(run: _Run, epoch: int, config: TrainConfig, tqdm: Any) -> dict[str, Any]:
    """Train one epoch (with a tqdm bar unless ``tqdm`` is ``None``), step the schedule,
    evaluate; returns the epoch's history row."""
    t0 = time.perf_counter()
    loss_sum, m_sum, n = _train_epoch(run, epoch, config, tqdm)
    if run.distributed:
        loss_sum, m_sum, n = _sum_over_ranks(loss_sum, m_sum, n, config.device)
    if run.scheduler is not None:
        run.scheduler.step()
    test_loss, test_metric = evaluate(run.model, run.test_loader, config.metric, config.device)
    row: dict[str, Any] = {
        "epoch": epoch,
        "steps": run.steps,
        "noise": config.noise,
        "dim": run.dim,
        "train_loss": loss_sum / max(n, 1),
        f"train_{config.metric}": _finish(m_sum, n, config.metric),
        "test_loss": test_loss,
        f"test_{config.metric}": test_metric,
        "seconds": time.perf_counter() - t0,
    }
    if run.engine is not None and run.rank == 0:
        _add_privacy(row, run.engine, epoch, config)
    return row


def _sum_over_ranks(loss_sum: float, m_sum: float, n: int, device: str) -> tuple[float, float, int]:
    """The epoch's summed loss, summed metric and count over every rank (all-reduce)."""
    t = torch.tensor([loss_sum, m_sum, float(n)], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return float(t[0]), float(t[1]), int(t[2])


def _train_epoch(run: _Run, epoch: int, config: TrainConfig, tqdm: Any) -> tuple[float, float, int]:
    """The optimizer steps of one epoch; returns (summed loss, summed metric, count)."""
    device = config.device
    crit = nn.CrossEntropyLoss()
    run.model.train()
    loss_sum, m_sum, n = 0.0, 0.0, 0
    batches = run.train_loader
    if tqdm is not None:
        batches = tqdm(run.train_loader, desc=f"epoch {epoch}/{config.epochs}", leave=False)
    with warnings.catch_warnings():
        # Opacus' hooks on a first layer whose input needs no gradient (harmless)
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        for xb, yb in batches:
            # an empty Poisson batch still takes a (noise-only) step: skipping it would
            # reveal that the batch was empty, which depends on the data under add/remove
            # adjacency
            xb, yb = xb.to(device), yb.to(device)
            run.opt.zero_grad()
            out = run.model(xb)
            loss = crit(out, yb) if len(yb) else (out.sum() * 0.0)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite training loss at epoch {epoch}, step {run.steps + 1}: the data "
                    "or the model produce NaN/inf (no step taken with it; the checkpoint of "
                    "the last finished epoch, if any, is intact)"
                )
            loss.backward()
            run.opt.step()
            run.steps += 1
            loss_sum += float(loss.detach()) * len(yb)
            s, c = _metric(out.detach(), yb, config.metric)
            m_sum += s
            n += c
    return loss_sum, m_sum, n


def _add_privacy(row: dict[str, Any], engine: Any, epoch: int, config: TrainConfig) -> None:
    """The noise norm, δ and (every ``privacy_every`` epochs and after the last) every
    labelled privacy figure of the engine, into ``row``; for noise without a proven profile,
    instead of figures, ``row["unverified"]``: the reason there is none."""
    row["expected_noise_norm"] = engine.current_mechanism().expected_norm
    row["delta"] = config.delta
    reason = engine.unverified_reason()
    if reason:  # no figure exists: the row says so, every epoch (privacy_every or not)
        row[UNVERIFIED] = reason
        return
    every = config.privacy_every
    if every and (epoch % every == 0 or epoch == config.epochs):
        for fig in engine.get_privacy_report(config.delta):
            row[f"{fig.label}_epsilon"] = fig.epsilon
            row[f"{fig.label}_delta"] = fig.delta
            row[f"{fig.label}_source"] = fig.source


def _train_state(run: _Run, config: TrainConfig, epoch: int) -> dict[str, Any]:
    """What the checkpoint stores besides model, optimizer and engine, after ``epoch``."""
    return {
        "config": _identity(config),
        "epoch": epoch,
        "steps": run.steps,
        "history": run.history,
        "scheduler": None if run.scheduler is None else run.scheduler.state_dict(),
        "loader_rng": run.gen.get_state(),
        "torch_rng": torch.get_rng_state(),
    }


def _check_sets(train_set: Dataset, test_set: Dataset) -> None:
    """Empty sets and train/test examples of different shapes fail here, before training."""
    for name, ds in (("train_set", train_set), ("test_set", test_set)):
        try:
            n = len(ds)  # type: ignore[arg-type]
        except TypeError:
            raise ValueError(f"{name} must be a map-style dataset with a length") from None
        if n == 0:
            raise ValueError(f"{name} is empty")
    x_train, x_test = train_set[0][0], test_set[0][0]
    if isinstance(x_train, torch.Tensor) and isinstance(x_test, torch.Tensor):
        if x_train.shape != x_test.shape:
            raise ValueError(
                f"train_set examples have shape {tuple(x_train.shape)} but test_set examples "
                f"have shape {tuple(x_test.shape)}"
            )


def _identity(config: TrainConfig) -> dict[str, Any]:
    """The settings a resumed run must share with its checkpoint (all but the device)."""
    d = asdict(config)
    d.pop("device")
    return d


def _read_train_state(path: Path, config: TrainConfig) -> dict[str, Any]:
    """The training state stored in checkpoint ``path``, checked against ``config``."""
    try:
        ckpt = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as err:  # truncated or not a checkpoint
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err
    state = ckpt.get("train_state") if isinstance(ckpt, dict) else None
    keys = ("config", "epoch", "steps", "history", "scheduler", "loader_rng", "torch_rng")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise ValueError(f"checkpoint {path} has no training state (not written by train())")
    if state["config"] != _identity(config):
        old, new = state["config"], _identity(config)
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ValueError(
            f"checkpoint {path} was written with other settings ({', '.join(diff)}); "
            "resume with the same settings or remove it"
        )
    return state


def _save_checkpoint(
    path: Path, engine: Any, model: nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Write the checkpoint to a temporary file and rename it over ``path`` (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if engine is not None:
        engine.save_checkpoint(
            path=tmp, module=model, optimizer=opt, checkpoint_dict={"train_state": state}
        )
    else:
        torch.save(
            {
                "module_state_dict": model.state_dict(),
                "optimizer_state_dict": opt.state_dict(),
                "train_state": state,
            },
            tmp,
        )
    tmp.replace(path)


def _load_checkpoint(path: Path, engine: Any, model: nn.Module, opt: torch.optim.Optimizer) -> None:
    if engine is not None:
        engine.load_checkpoint(path=path, module=model, optimizer=opt)
        return
    ckpt = torch.load(path, weights_only=False, map_location="cpu")
    try:
        model.load_state_dict(ckpt["module_state_dict"])
        opt.load_state_dict(ckpt["optimizer_state_dict"])
    except (KeyError, RuntimeError, ValueError) as err:
        raise ValueError(f"checkpoint {path} does not fit this model/optimizer: {err}") from err


def fit_minibatch(
    model: nn.Module,
    X: torch.Tensor,
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool = False,
    desc: str = "train",
) -> int:
    """Non-private Adam over shuffled mini-batches of ``X``; returns the number of steps.

    Used on data that is already private (a release, noised records, synthetic images):
    post-processing, no privacy cost. ``loss_of(logits, idx)`` gives the loss of the batch
    ``X[idx]``; the shuffle comes from a generator seeded with ``seed`` (the caller seeds the
    model's initialisation).
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    epoch_iter: Any = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc=desc, leave=False)
    model.train()
    steps = 0
    for _ in epoch_iter:
        order = torch.randperm(X.shape[0], generator=gen)
        for s in range(0, X.shape[0], batch_size):
            idx = order[s : s + batch_size]
            loss = loss_of(model(X[idx]), idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
    return steps


def save_history(
    history: list[dict[str, Any]], out_dir: str | Path, name: str, config: TrainConfig
) -> tuple[Path, Path]:
    """Write ``<name>.json`` (config + history) and ``<name>.csv`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}.json"
    csv_path = out / f"{name}.csv"
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    # both files are written in full to temporary files first, then renamed: a failure leaves
    # the earlier results (a matching JSON/CSV pair) as they were
    tmp_json = json_path.with_suffix(".json.tmp")
    tmp_csv = csv_path.with_suffix(".csv.tmp")
    try:
        tmp_json.write_text(json.dumps({"config": asdict(config), "history": history}, indent=2))
        with tmp_csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)
    except BaseException:
        tmp_json.unlink(missing_ok=True)
        tmp_csv.unlink(missing_ok=True)
        raise
    tmp_json.replace(json_path)
    tmp_csv.replace(csv_path)
    return json_path, csv_path
