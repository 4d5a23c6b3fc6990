"""A user's own task in a comparison: a DP-SGD task (data, model, loss, metric, training
settings) or a convex-ERM task (arrays and a declared data bound).

Both are checked as a whole before anything is trained and lowered onto the harness'
:class:`~product_noise.compare.data.ClassificationData`, the form the built-in datasets take:
from there on a user's task and a built-in dataset go through the same planning, runners,
accounting and writers.

A DP-SGD task's datasets are read once (each item ``(x, y)``), stacked into tensors and trained
on as a :class:`torch.utils.data.TensorDataset`, exactly like the built-in datasets; item
transforms are therefore applied once, not per epoch.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import ConfigError
from .data import ClassificationData

__all__ = [
    "DPSGDTask",
    "ERMTask",
    "Task",
    "load_task",
    "check_tasks",
    "apply_tasks",
    "lower_dpsgd_task",
    "lower_erm_task",
    "check_bound",
]

#: integer inputs (token, user or item ids) must stay below this: float32 holds them exactly
_MAX_ID = 2**24
#: what DPMix may assume of the features: entries in [0, 1], or rows of ℓ2 norm ≤ 1
BOUNDS = ("pixel", "l2")


@dataclass
class DPSGDTask:
    """A network trained with DP-SGD (and, when the task says what they need, with DPMix and
    the seed baselines).

    Parameters
    ----------
    name : str
        Dataset name written in ``results.csv`` (no ``|``).
    train, test : torch Dataset or (X, y)
        A :class:`torch.utils.data.Dataset` whose items are ``(x, y)``, or a pair of tensors or
        arrays ``X`` (one row per example, any item shape) and ``y`` (integer class labels).
    model : callable
        Zero-argument factory returning a fresh :class:`torch.nn.Module` per run; its output
        on a batch is ``(batch, K)`` logits with ``K`` ≥ the number of classes.
    loss : "cross_entropy" or callable
        ``loss(logits, y) -> scalar tensor``, averaged over the batch (Opacus' ``mean``
        reduction).
    metric : "accuracy" or callable
        ``metric(logits, y) -> float`` on the whole test set (reported in ``accuracy``).
    optimizer : {"sgd", "adam"}
        The base optimizer (SGD with ``momentum``, or Adam), the same for every row.
    lr, momentum, batch_size, epochs, max_grad_norm :
        Learning rate, SGD momentum, expected (Poisson) batch size, epochs and the
        per-example clipping norm C.
    delta : float, optional
        δ of DP-SGD and DPMix; ``None``: the harness' rule (``CompareConfig.delta``, 1e-5).
    image_shape : (C, H, W), optional
        The shape of an item as an image: AdLM and the DP generator run only when it is given.
    bound : {"pixel", "l2"}, optional
        What DPMix may assume of the (flattened) features: entries in [0, 1] (``pixel``) or
        rows of ℓ2 norm ≤ 1 (``l2``); checked on the data. Default: ``pixel`` when
        ``image_shape`` is given, else none (then DPMix cannot run).
    model_name : str, optional
        Model name written in ``results.csv`` (default: the factory's ``__name__``).
    """

    name: str
    train: Any
    test: Any
    model: Callable[[], Any]
    loss: str | Callable[[Any, Any], Any] = "cross_entropy"
    metric: str | Callable[[Any, Any], float] = "accuracy"
    lr: float = 0.1
    momentum: float = 0.0
    optimizer: str = "sgd"
    batch_size: int = 64
    epochs: int = 2
    max_grad_norm: float = 1.0
    delta: float | None = None
    image_shape: tuple[int, int, int] | None = None
    bound: str | None = None
    model_name: str | None = None


@dataclass
class ERMTask:
    """Private logistic regression on a user's arrays.

    Parameters
    ----------
    name : str
        Dataset name written in ``results.csv`` (no ``|``).
    X_train, y_train, X_test, y_test : array-like
        Features (2-D, dense or SciPy sparse) and labels (1-D).
    data_norm : float or None
        Required: the *declared* bound on the rows' ℓ2 norm; rows above it are clipped to it
        (and the rows say so). ``None`` computes it from the private data, which leaks privacy: a
        :class:`~product_noise.erm.PrivacyLeakWarning` is raised.
    lam : float, optional
        Regularisation λ (default: ``CompareConfig.erm_lam``).
    delta : float, optional
        δ (default: ``1/n²``).
    """

    name: str
    X_train: Any
    y_train: Any
    X_test: Any
    y_test: Any
    data_norm: float | None
    lam: float | None = None
    delta: float | None = None


Task = DPSGDTask | ERMTask


# ====================================================================== loading
def load_task(spec: str) -> list[Task]:
    """The task(s) returned by ``"package.module:callable"`` (a TOML ``task = ...``).

    The callable is run with no argument and returns a :class:`DPSGDTask`, an
    :class:`ERMTask` or a list of them (at most one of each kind).

    Raises
    ------
    ConfigError
        If the module or callable cannot be found, or it returns something else.
    """
    module, sep, attr = str(spec).partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"task must be 'package.module:callable', got {spec!r}")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"cannot import task {spec!r}: {err}") from None
    if not callable(fn):
        raise ConfigError(f"task {spec!r} is not callable")
    got = fn()
    tasks = list(got) if isinstance(got, (list, tuple)) else [got]
    return check_tasks(tasks, where=f"task {spec!r}")


def check_tasks(tasks: Sequence[Any], where: str = "task") -> list[Task]:
    """At most one :class:`DPSGDTask` and one :class:`ERMTask`; anything else is an error."""
    out: list[Task] = []
    for t in tasks:
        if not isinstance(t, (DPSGDTask, ERMTask)):
            raise ConfigError(f"{where}: expected a DPSGDTask or an ERMTask, got {t!r:.80}")
        if any(type(o) is type(t) for o in out):
            raise ConfigError(f"{where}: more than one {type(t).__name__}")
        if not isinstance(t.name, str) or not t.name or "|" in t.name:
            raise ConfigError(
                f"{where}: name must be a non-empty string without '|', got {t.name!r}"
            )
        out.append(t)
    if not out:
        raise ConfigError(f"{where}: no task given")
    return out


def apply_tasks(cfg: Any, tasks: Sequence[Task]) -> None:
    """Put the tasks' names and settings into the configuration ``cfg`` (a
    :class:`~product_noise.compare.config.CompareConfig`), so that planning, accounting, the
    resume check and the report see them as they see a built-in dataset's."""
    for t in tasks:
        if isinstance(t, DPSGDTask):
            cfg.dataset = None
            cfg.nn_dataset = t.name
            cfg.model = t.model_name or getattr(t.model, "__name__", "model")
            if cfg.model == "<lambda>":
                cfg.model = "model"
            for name in ("lr", "momentum", "optimizer", "batch_size", "epochs", "max_grad_norm"):
                setattr(cfg, name, getattr(t, name))
            if t.delta is not None:
                cfg.delta = t.delta
        else:
            cfg.dataset = None
            cfg.erm_dataset = t.name
            if t.lam is not None:
                cfg.erm_lam = t.lam
            if t.delta is not None:
                cfg.erm_delta = t.delta


# ====================================================================== DP-SGD tasks
def _stack_dataset(ds: Any, what: str) -> tuple[Any, Any]:
    """``(X, y)`` tensors from a pair or from a Dataset of ``(x, y)`` items."""
    import torch

    if isinstance(ds, (tuple, list)):
        if len(ds) != 2:
            raise ConfigError(f"{what}: give a Dataset or a pair (X, y), got {len(ds)} items")
        X, y = ds
        if y is None:
            raise ConfigError(f"{what}: no labels (y is None)")
        return torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X), torch.as_tensor(
            np.asarray(y) if not torch.is_tensor(y) else y
        )
    try:
        n = len(ds)
    except TypeError:
        raise ConfigError(f"{what}: a Dataset must have a length (map-style)") from None
    if n == 0:
        raise ConfigError(f"{what} is empty")
    xs, ys = [], []
    for i in range(n):
        item = ds[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2 or item[1] is None:
            raise ConfigError(f"{what}: item {i} has no label (items must be (x, y) pairs)")
        xs.append(torch.as_tensor(item[0]))
        ys.append(torch.as_tensor(item[1]))
        if xs[-1].shape != xs[0].shape:
            raise ConfigError(
                f"{what}: item {i} has shape {tuple(xs[-1].shape)}, item 0 {tuple(xs[0].shape)}"
            )
        if ys[-1].numel() != 1:
            raise ConfigError(f"{what}: item {i}'s label is not one class index")
    return torch.stack(xs), torch.stack([y.reshape(()) for y in ys])


def _check_xy(X: Any, y: Any, what: str) -> tuple[Any, Any]:
    """Lengths, emptiness, finiteness and integer labels ≥ 0 of one split."""
    import torch

    if X.ndim < 2:
        raise ConfigError(f"{what}: X must have one row per example (2-D or more), got {X.ndim}-D")
    if y.ndim != 1:
        raise ConfigError(f"{what}: y must be 1-D class labels, got shape {tuple(y.shape)}")
    if len(X) != len(y):
        raise ConfigError(f"{what}: X has {len(X)} rows but y has {len(y)} labels")
    if len(X) == 0:
        raise ConfigError(f"{what} is empty")
    if not X.is_floating_point():
        if bool((X < 0).any()) or bool((X >= _MAX_ID).any()):
            raise ConfigError(f"{what}: integer inputs (ids) must lie in [0, 2**24)")
    X = X.to(torch.float32)
    if not bool(torch.isfinite(X).all()):
        raise ConfigError(f"{what}: X has NaN or infinite values")
    if y.is_floating_point():
        if not bool((y == y.round()).all()):
            raise ConfigError(f"{what}: y must be integer class labels")
    if bool((y < 0).any()):
        raise ConfigError(f"{what}: class labels must be >= 0")
    return X.contiguous(), y.to(torch.int64)


def _check_model(task: DPSGDTask, X: Any, num_classes: int) -> int:
    """Build one model, check trainable parameters and its output on two examples; returns
    the number of trainable parameters."""
    import torch

    from ..training.models import count_parameters

    if not callable(task.model):
        raise ConfigError(f"task {task.name!r}: model must be a zero-argument factory")
    model = task.model()
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(
            f"task {task.name!r}: model() must return a torch.nn.Module, got {type(model).__name__}"
        )
    dim = count_parameters(model)
    if dim == 0:
        raise ConfigError(f"task {task.name!r}: the model has no trainable parameters")
    with torch.no_grad():
        try:
            out = model.eval()(X[:2])
        except Exception as err:
            raise ConfigError(
                f"task {task.name!r}: the model fails on inputs of shape {tuple(X[:2].shape)}: "
                f"{type(err).__name__}: {err}"
            ) from None
    if not torch.is_tensor(out) or out.ndim != 2 or out.shape[0] != min(2, len(X)):
        raise ConfigError(
            f"task {task.name!r}: the model must return (batch, K) logits, got "
            f"{tuple(out.shape) if torch.is_tensor(out) else type(out).__name__}"
        )
    if task.loss == "cross_entropy" and out.shape[1] < num_classes:
        raise ConfigError(
            f"task {task.name!r}: the model gives {out.shape[1]} logits for {num_classes} classes"
        )
    return dim


def _check_settings(task: DPSGDTask) -> None:
    for name in ("loss", "metric"):
        v = getattr(task, name)
        default = "cross_entropy" if name == "loss" else "accuracy"
        if not (v == default or callable(v)):
            raise ConfigError(f"task {task.name!r}: {name} must be {default!r} or a callable")
    if task.image_shape is not None:
        shape = tuple(task.image_shape)
        if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ConfigError(f"task {task.name!r}: image_shape must be (C, H, W), got {shape!r}")
    if task.bound is not None and task.bound not in BOUNDS:
        raise ConfigError(f"task {task.name!r}: bound must be one of {BOUNDS}, got {task.bound!r}")


def _fingerprint(*arrays: Any) -> str:
    """A short hash of the data (a resumed comparison must train on the same data)."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a.numpy() if hasattr(a, "numpy") else a)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def lower_dpsgd_task(task: DPSGDTask) -> ClassificationData:
    """Check a DP-SGD task and turn it into the harness' data (flat float32 features for
    DPMix and the baselines, the model inputs in their own shape, the model factory).

    Raises
    ------
    ConfigError
        One line naming the first problem: no labels, wrong or mismatched shapes, empty data,
        non-finite values, a model with no trainable parameters or the wrong output.
    """
    _check_settings(task)
    where = f"task {task.name!r}"
    raw_tr, raw_ytr = _stack_dataset(task.train, f"{where}: train")
    raw_te, raw_yte = _stack_dataset(task.test, f"{where}: test")
    integer = not raw_tr.is_floating_point()
    if integer != (not raw_te.is_floating_point()):
        raise ConfigError(f"{where}: train and test inputs must both be floats or both ids")
    Xtr, ytr = _check_xy(raw_tr, raw_ytr, f"{where}: train")
    Xte, yte = _check_xy(raw_te, raw_yte, f"{where}: test")
    if Xtr.shape[1:] != Xte.shape[1:]:
        raise ConfigError(
            f"task {task.name!r}: train items have shape {tuple(Xtr.shape[1:])}, test items "
            f"{tuple(Xte.shape[1:])}"
        )
    item = tuple(int(s) for s in Xtr.shape[1:])
    if task.image_shape is not None and math.prod(task.image_shape) != math.prod(item):
        raise ConfigError(
            f"task {task.name!r}: image_shape {tuple(task.image_shape)} does not hold an item "
            f"of shape {item}"
        )
    num_classes = int(max(int(ytr.max()), int(yte.max())) + 1)
    dim = _check_model(task, Xtr.long() if integer else Xtr, num_classes)
    bound = task.bound or ("pixel" if task.image_shape is not None else None)
    data = ClassificationData(
        task.name,
        Xtr.reshape(len(Xtr), -1).numpy(),
        ytr.numpy(),
        Xte.reshape(len(Xte), -1).numpy(),
        yte.numpy(),
        image_shape=None if task.image_shape is None else tuple(task.image_shape),  # type: ignore[arg-type]
        bound=bound or "",
    )
    data.input_shape = item
    data.input_dtype = "int64" if integer else "float32"
    data.model_factory = task.model
    data.loss = task.loss
    data.metric = task.metric
    data.info.update(
        n_train=data.n_train,
        n_test=int(len(Xte)),
        dim=data.n_features,
        parameters=dim,
        fingerprint=_fingerprint(Xtr, ytr, Xte, yte),
    )
    return data


def check_bound(data: ClassificationData) -> str | None:
    """Why DPMix cannot run on ``data`` (no declared bound, or data outside it), else None."""
    if data.bound not in BOUNDS:
        return (
            f"DPMix needs a declared feature bound: give task {data.name!r} image_shape= "
            "(entries in [0, 1]) or bound='pixel' / bound='l2'"
        )
    X = data.X_train
    if data.bound == "pixel" and (X.min() < 0 or X.max() > 1):
        return f"task {data.name!r} declares bound='pixel' but has features outside [0, 1]"
    if data.bound == "l2" and np.linalg.norm(X, axis=1).max() > 1.0 + 1e-5:
        return f"task {data.name!r} declares bound='l2' but has rows of ℓ2 norm > 1"
    return None


# ====================================================================== ERM tasks
def _erm_array(X: Any, what: str) -> Any:
    from scipy import sparse

    if X is None:
        raise ConfigError(f"{what} is missing")
    if sparse.issparse(X):
        X = sparse.csr_matrix(X, dtype=np.float64)
        finite = np.all(np.isfinite(X.data))
    else:
        X = np.asarray(X, dtype=np.float64)
        finite = bool(np.all(np.isfinite(X))) if X.size else True
    if X.ndim != 2:
        raise ConfigError(f"{what} must be 2-D (one row per example), got {X.ndim}-D")
    if X.shape[0] == 0:
        raise ConfigError(f"{what} is empty")
    if not finite:
        raise ConfigError(f"{what} has NaN or infinite values")
    return X


def _erm_labels(y: Any, n: int, what: str) -> np.ndarray:
    if y is None:
        raise ConfigError(f"{what}: no labels (y is None)")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ConfigError(f"{what}: y must be 1-D, got shape {y.shape}")
    if len(y) != n:
        raise ConfigError(f"{what}: X has {n} rows but y has {len(y)} labels")
    return y


def _row_norms(X: Any) -> np.ndarray:
    from scipy import sparse

    if sparse.issparse(X):
        return np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return np.linalg.norm(X, axis=1)


def lower_erm_task(task: ERMTask) -> ClassificationData:
    """Check an ERM task and turn it into the harness' data.

    ``data_norm=None`` is computed from the training rows with a
    :class:`~product_noise.erm.PrivacyLeakWarning`; rows above the declared norm are counted
    (the estimators clip them to it) and every ERM row of the results says so.

    Raises
    ------
    ConfigError
        Missing labels, mismatched lengths or feature counts, empty or non-finite data, fewer
        than two classes, a bad ``data_norm``.
    """
    from ..erm import PrivacyLeakWarning

    Xtr = _erm_array(task.X_train, f"task {task.name!r}: X_train")
    Xte = _erm_array(task.X_test, f"task {task.name!r}: X_test")
    ytr = _erm_labels(task.y_train, Xtr.shape[0], f"task {task.name!r}: train")
    yte = _erm_labels(task.y_test, Xte.shape[0], f"task {task.name!r}: test")
    if Xtr.shape[1] != Xte.shape[1]:
        raise ConfigError(
            f"task {task.name!r}: X_train has {Xtr.shape[1]} features, X_test {Xte.shape[1]}"
        )
    classes = np.unique(np.concatenate([ytr, yte]))
    if len(np.unique(ytr)) < 2:
        raise ConfigError(f"task {task.name!r}: the training labels hold fewer than two classes")
    norms = _row_norms(Xtr)
    if task.data_norm is None:
        warnings.warn(
            f"task {task.name!r}: data_norm computed from the private data (max row norm "
            f"{norms.max():.4g}); this leaks privacy: declare data_norm",
            PrivacyLeakWarning,
            stacklevel=3,
        )
        norm = float(norms.max()) or 1.0
    else:
        norm = float(task.data_norm)
        if not (math.isfinite(norm) and norm > 0):
            raise ConfigError(f"task {task.name!r}: data_norm must be finite and > 0")
    data = ClassificationData(
        task.name,
        Xtr,
        np.searchsorted(classes, ytr).astype(np.int64),
        Xte,
        np.searchsorted(classes, yte).astype(np.int64),
        bound="l2",
        data_norm=norm,
    )
    clipped = int((norms > norm * (1 + 1e-9)).sum())
    data.info.update(n_train=data.n_train, n_test=int(Xte.shape[0]), dim=data.n_features)
    if task.data_norm is None:
        data.info["erm_note"] = "data_norm computed from the private data (privacy leak)"
    elif clipped:
        data.info["erm_note"] = (
            f"{clipped} of {data.n_train} training rows exceed the declared data_norm={norm:g} "
            "and were clipped to it"
        )
    data.info["fingerprint"] = _fingerprint(
        Xtr.toarray() if hasattr(Xtr, "toarray") else Xtr, np.asarray(ytr).astype("U")
    )
    return data
