"""Datasets of a comparison: scikit-learn's bundled digits and breast-cancer sets, or any dataset
:func:`product_noise.data.load_dataset` reads from local upstream files.

Nothing is downloaded. The train/test split is fixed (seed 0) and independent of the run seeds,
so every seed of every mechanism sees the same data.

=============  ==============================================  ==================================
dataset        preprocessing                                   bound used by DPMix
=============  ==============================================  ==================================
digits         1,797 × 8×8, pixels / 16 in [0, 1]              pixels in [0, 1] (D_x = √64 = 8)
breast_cancer  569 × 30, standardised with the statistics of   ‖x‖ ≤ 1 (D_x = 2)
               a declared public split, rows clipped to ≤ 1
others         the loader's (rows projected to ≤ 1)            ‖x‖ ≤ 1 (D_x = 2)
=============  ==============================================  ==================================

Public statistics of ``breast_cancer``
--------------------------------------
Standardising a feature needs its mean and spread. Computed from the private training rows,
they would be a release of those rows that no privacy figure accounts for (a leak). Here they
come from a **declared public split**: a fixed :data:`PUBLIC_FRACTION` (20 %, 91 rows) of the
training rows, chosen by the fixed split seed, is treated as public data. Its per-feature mean
and standard deviation standardise every row (public, private training and test); the public
rows are then *left out* of training, so every mechanism, private or not, trains on the same
364 private rows and no statistic of those rows enters the preprocessing. Rows are finally
clipped to L2 norm ≤ 1, the ``data_norm`` every ERM estimator is given (it clips to it again,
a no-op). The digits scale (÷ 16: 4-bit pixels) is fixed a priori and needs no statistic.
The split is a modelling assumption (that 91 such records may be public), stated in the report;
it is not itself private.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import ConfigError

__all__ = ["ClassificationData", "load_nn_data", "load_erm_data", "PUBLIC_FRACTION"]

_SPLIT_SEED = 0
#: share of the ``breast_cancer`` training rows declared public (their statistics standardise
#: the features; they are not trained on)
PUBLIC_FRACTION = 0.2


@dataclass
class ClassificationData:
    """A fixed train/test split with integer class labels ``0..K-1``.

    Attributes
    ----------
    name : str
        Dataset name.
    X_train, X_test : ndarray
        Features, one row per example (float32 for networks, float64 for ERM).
    y_train, y_test : ndarray of int64
        Labels ``0..K-1``.
    image_shape : tuple, optional
        ``(channels, height, width)`` when the rows are square images.
    bound : {"pixel", "l2"}
        The data bound DPMix declares: entries in [0, 1], or rows of L2 norm ≤ 1.
    data_norm : float
        Row-norm bound given to the ERM estimators (never computed from the data without a
        :class:`~product_noise.erm.PrivacyLeakWarning`).
    info : dict
        Sizes and notes.
    input_shape : tuple, optional
        Shape of one model input (a user's task); ``None``: the rows, or ``image_shape`` for
        the CNN.
    model_factory : callable, optional
        A user task's zero-argument model factory; ``None``: the configured MLP or CNN.
    loss, metric : str or callable
        A user task's loss and test metric (``"cross_entropy"``, ``"accuracy"``: the
        built-in ones).
    input_dtype : {"float32", "int64"}
        What the model takes: float features, or integer ids (token or user/item ids, kept
        exactly: every id is below 2**24, so the float32 rows hold them exactly).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int, int] | None = None
    bound: str = "l2"
    data_norm: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None
    model_factory: Callable[[], Any] | None = None
    loss: str | Callable[[Any, Any], Any] = "cross_entropy"
    metric: str | Callable[[Any, Any], float] = "accuracy"
    input_dtype: str = "float32"

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()) + 1)


def _split(X: np.ndarray, y: np.ndarray, frac: float = 0.8) -> tuple[np.ndarray, ...]:
    perm = np.random.default_rng(_SPLIT_SEED).permutation(len(y))
    k = int(round(frac * len(y)))
    return X[perm[:k]], y[perm[:k]], X[perm[k:]], y[perm[k:]]


def _labels(y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    classes = np.unique(np.concatenate([y_train, y_test]))
    return (
        np.searchsorted(classes, y_train).astype(np.int64),
        np.searchsorted(classes, y_test).astype(np.int64),
    )


def _subset(data: ClassificationData, max_train: int | None) -> ClassificationData:
    if max_train is None or data.n_train <= max_train:
        return data
    idx = np.sort(np.random.default_rng(_SPLIT_SEED + 1).permutation(data.n_train)[:max_train])
    data.info["note"] = f"seeded subset of {max_train} of {data.n_train} training examples"
    data.X_train, data.y_train = data.X_train[idx], data.y_train[idx]
    return data


def _public_standardised(
    name: str, Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray
) -> ClassificationData:
    """Standardise with the mean and standard deviation of a declared public split (the first
    :data:`PUBLIC_FRACTION` of the seeded training rows, then left out of training) and clip
    every row to L2 norm ≤ 1; see the module docstring."""
    from ..data import normalize_rows

    k = int(round(PUBLIC_FRACTION * len(ytr)))
    public = Xtr[:k]
    mean, std = public.mean(axis=0), public.std(axis=0)
    std = np.where(std > 0, std, 1.0)

    def prep(A: np.ndarray) -> np.ndarray:
        return normalize_rows((A - mean) / std, "clip", 1.0)

    data = ClassificationData(
        name, prep(Xtr[k:]), ytr[k:], prep(Xte), yte, bound="l2", data_norm=1.0
    )
    data.info["preprocessing"] = (
        f"features standardised with the per-feature mean and standard deviation of a declared "
        f"public split ({k} of the {len(ytr)} training rows, seeded, then left out of training: "
        f"no statistic of the {len(ytr) - k} private training rows is used), rows clipped to "
        "L2 norm <= 1 (the data_norm of every ERM row)"
    )
    data.info["public_rows"] = k
    return data


def _load(name: str, root: Path | None) -> ClassificationData:
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        Xtr, ytr, Xte, yte = _split(X / 16.0, y.astype(np.int64))
        data = ClassificationData(
            "digits", Xtr, ytr, Xte, yte, image_shape=(1, 8, 8), bound="pixel", data_norm=8.0
        )
        data.info["preprocessing"] = (
            "pixels / 16 (a fixed scale: 4-bit pixels), entries in [0, 1], row norm <= 8; "
            "no statistic of the data is used"
        )
        return data
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
        Xtr, ytr, Xte, yte = _split(X, y.astype(np.int64))
        return _public_standardised("breast_cancer", Xtr, ytr, Xte, yte)
    from ..data import DatasetNotFoundError, load_dataset

    try:
        ds = load_dataset(name, root)
    except DatasetNotFoundError as err:
        raise ConfigError(f"dataset {name!r}: {err}") from None
    except FileNotFoundError as err:
        raise ConfigError(f"dataset {name!r}: {err}") from None
    Xtr, Xte = ds.X_train, ds.X_test
    ytr, yte = _labels(np.asarray(ds.y_train), np.asarray(ds.y_test))
    side = int(math.isqrt(int(Xtr.shape[1])))
    image = (1, side, side) if side * side == Xtr.shape[1] and name == "mnist" else None
    data = ClassificationData(name, Xtr, ytr, Xte, yte, image_shape=image, bound="l2")
    data.info["preprocessing"] = (
        f"the preprocessing of product_noise.data.load_dataset({name!r}); rows of norm <= 1"
    )
    return data


def load_nn_data(
    name: str, root: Path | None = None, max_train: int | None = None
) -> ClassificationData:
    """Dataset for the networks (DP-SGD, DPMix): dense float32 features."""
    data = _subset(_load(name, root), max_train)
    for attr in ("X_train", "X_test"):
        X = getattr(data, attr)
        if hasattr(X, "toarray"):
            if X.shape[0] * X.shape[1] > 50_000_000:
                raise ConfigError(
                    f"dataset {name!r} is sparse and too large for the networks; select only ERM "
                    "mechanisms for it"
                )
            X = X.toarray()
        setattr(data, attr, np.ascontiguousarray(X, dtype=np.float32))
    if data.bound == "l2":
        norms = np.linalg.norm(data.X_train, axis=1)
        if norms.max() > 1.0 + 1e-5:
            raise ConfigError(
                f"dataset {name!r}: rows must have L2 norm <= 1 for DPMix's declared bound "
                f"(max {norms.max():.4g})"
            )
    data.info.update(n_train=data.n_train, n_test=int(data.X_test.shape[0]), dim=data.n_features)
    return data


def load_erm_data(
    name: str, root: Path | None = None, max_train: int | None = None
) -> ClassificationData:
    """Dataset for convex ERM: float64 features (CSR kept sparse), rows of norm ≤ ``data_norm``."""
    data = _subset(_load(name, root), max_train)
    if not hasattr(data.X_train, "toarray"):
        data.X_train = np.asarray(data.X_train, dtype=np.float64)
        data.X_test = np.asarray(data.X_test, dtype=np.float64)
    data.info.update(n_train=data.n_train, n_test=int(data.X_test.shape[0]), dim=data.n_features)
    return data
