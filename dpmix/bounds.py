"""Declared data bounds and label checks for DPMix.

The privacy of DPMix rests on the **replace-one diameter** of the record space: the largest
distance between two admissible records. A bound is therefore declared explicitly, checked on
the data, and turned into ``D_x``:

* :class:`PixelBound` — every entry in ``[low, high]`` (raw pixels in [0, 1]):
  ``D_x = (high - low) √d``;
* :class:`L2NormBound` — every row has ``‖x‖₂ ≤ C``: ``D_x = 2C`` (the diameter, not the radius).

Labels must be one-hot (``D_y = √2``). Data outside the declared bound is **rejected** by default
(``on_violation="raise"``): silently clipping e.g. 0..255 pixels to [0, 1] would destroy the data.
``on_violation="clip"`` clips (per entry, or rescales rows to norm ``C``) and warns with the
number of records changed; clipping is a per-record map, so the accounting is unchanged.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "DataBound",
    "PixelBound",
    "L2NormBound",
    "DataBoundWarning",
    "OnViolation",
    "ONE_HOT_DIAMETER",
    "check_one_hot",
    "one_hot",
]

OnViolation = Literal["raise", "clip"]

#: ``‖e_i - e_j‖₂`` for two one-hot vectors
ONE_HOT_DIAMETER = math.sqrt(2.0)


class DataBoundWarning(UserWarning):
    """Records outside the declared bound were clipped."""


def _check_on_violation(on_violation: str) -> str:
    if on_violation not in ("raise", "clip"):
        raise ValueError(f"on_violation must be 'raise' or 'clip', got {on_violation!r}")
    return on_violation


class DataBound(ABC):
    """A declared bound on the feature vectors (rows of the flattened ``X``)."""

    @abstractmethod
    def diameter(self, dim: int) -> float:
        """Replace-one diameter ``D_x = max ‖x - x'‖₂`` in dimension ``dim``.

        Parameters
        ----------
        dim : int
            Feature dimension ``d`` (flattened record length).

        Returns
        -------
        D_x : float
            The L2 diameter of the record space.
        """

    @abstractmethod
    def enforce(self, X: np.ndarray, on_violation: OnViolation = "raise") -> np.ndarray:
        """Check ``X`` (``(n, d)``, float) against the bound; raise, or clip and warn.

        Returns ``X`` itself when nothing is outside the bound, otherwise a clipped copy.

        Parameters
        ----------
        X : ndarray of shape (n, d)
            Float records, one per row.
        on_violation : {"raise", "clip"}, default "raise"
            Reject, or clip and warn with :class:`DataBoundWarning`.

        Returns
        -------
        X : ndarray of shape (n, d)
            ``X`` itself when nothing is outside the bound, otherwise a clipped copy.

        Raises
        ------
        ValueError
            If records violate the bound and ``on_violation="raise"``, or ``on_violation`` is
            invalid.
        """

    @abstractmethod
    def describe(self) -> str:
        """One line for privacy-figure sources.

        Returns
        -------
        description : str
            E.g. ``"entries in [0, 1]"``.
        """


@dataclass(frozen=True)
class PixelBound(DataBound):
    """Every entry lies in ``[low, high]`` (default [0, 1], raw pixels).

    ``D_x = (high - low) √d``.
    """

    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.high > self.low):
            raise ValueError(
                f"PixelBound needs finite low < high, got low={self.low!r}, high={self.high!r}"
            )

    def diameter(self, dim: int) -> float:
        """``D_x = (high − low) √d``.

        Parameters
        ----------
        dim : int
            Feature dimension ``d`` (flattened record length).

        Returns
        -------
        D_x : float
            The L2 diameter of the box ``[low, high]^d``.
        """
        return (self.high - self.low) * math.sqrt(dim)

    def enforce(self, X: np.ndarray, on_violation: OnViolation = "raise") -> np.ndarray:
        """Check every entry of ``X`` lies in ``[low, high]``; raise, or clip per entry and warn.

        Parameters
        ----------
        X : ndarray of shape (n, d)
            Float records, one per row.
        on_violation : {"raise", "clip"}, default "raise"
            Reject, or clip and warn with :class:`DataBoundWarning`.

        Returns
        -------
        X : ndarray of shape (n, d)
            ``X`` itself when nothing is outside the bound, otherwise a clipped copy.

        Raises
        ------
        ValueError
            If records violate the bound and ``on_violation="raise"``, or ``on_violation`` is
            invalid.
        """
        _check_on_violation(on_violation)
        lo, hi = float(X.min()), float(X.max())
        if lo >= self.low and hi <= self.high:
            return X
        bad = int(np.count_nonzero(((X < self.low) | (X > self.high)).any(axis=1)))
        msg = (
            f"X has values outside the declared PixelBound [{self.low:g}, {self.high:g}] "
            f"(min {lo:g}, max {hi:g}; {bad} of {X.shape[0]} records)"
        )
        if on_violation == "raise":
            hint = " - rescale (e.g. X / 255 for 8-bit pixels)" if hi > 1.5 * self.high else ""
            raise ValueError(
                msg + hint + ", declare another bound, or pass on_violation='clip' to clip"
            )
        warnings.warn(msg + "; clipped to the bound", DataBoundWarning, stacklevel=3)
        return np.clip(X, self.low, self.high)

    def describe(self) -> str:
        """One line for privacy-figure sources.

        Returns
        -------
        description : str
            ``"entries in [low, high]"``.
        """
        return f"entries in [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class L2NormBound(DataBound):
    """Every row has ``‖x‖₂ ≤ radius``. ``D_x = 2·radius`` (replace-one diameter).

    A relative tolerance of ``1e-6`` absorbs round-off of already normalised data.
    """

    radius: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f"L2NormBound radius must be finite and > 0, got {self.radius!r}")

    def diameter(self, dim: int) -> float:
        """``D_x = 2·radius`` (independent of ``dim``).

        Parameters
        ----------
        dim : int
            Feature dimension ``d`` (flattened record length).

        Returns
        -------
        D_x : float
            Twice the radius.
        """
        return 2.0 * self.radius

    def enforce(self, X: np.ndarray, on_violation: OnViolation = "raise") -> np.ndarray:
        """Check every row has ``‖x‖₂ ≤ radius``; raise, or rescale long rows and warn.

        Parameters
        ----------
        X : ndarray of shape (n, d)
            Float records, one per row.
        on_violation : {"raise", "clip"}, default "raise"
            Reject, or clip and warn with :class:`DataBoundWarning`.

        Returns
        -------
        X : ndarray of shape (n, d)
            ``X`` itself when nothing is outside the bound, otherwise a clipped copy.

        Raises
        ------
        ValueError
            If records violate the bound and ``on_violation="raise"``, or ``on_violation`` is
            invalid.
        """
        _check_on_violation(on_violation)
        norms = np.linalg.norm(X, axis=1)
        over = norms > self.radius * (1 + 1e-6)
        if not over.any():
            return X
        msg = (
            f"{int(over.sum())} of {X.shape[0]} records have L2 norm above the declared "
            f"radius {self.radius:g} (max {float(norms.max()):g})"
        )
        if on_violation == "raise":
            raise ValueError(msg + "; normalise the rows or pass on_violation='clip'")
        warnings.warn(msg + "; rescaled to the radius", DataBoundWarning, stacklevel=3)
        scale = np.minimum(1.0, self.radius / np.maximum(norms, 1e-300)).astype(X.dtype)
        return X * scale[:, None]

    def describe(self) -> str:
        """One line for privacy-figure sources.

        Returns
        -------
        description : str
            ``"rows with L2 norm <= radius"``.
        """
        return f"rows with L2 norm <= {self.radius:g}"


def check_one_hot(Y: np.ndarray, n: int | None = None) -> np.ndarray:
    """Check that ``Y`` is a one-hot matrix ``(n, k)``, ``k ≥ 2``; return the class indices.

    Parameters
    ----------
    Y : ndarray of shape (n, k)
        Candidate one-hot labels (entries 0/1, one 1 per row).
    n : int, optional
        Expected number of rows (that of ``X``).

    Returns
    -------
    classes : ndarray of shape (n,), dtype int64
        The index of the 1 in each row.

    Raises
    ------
    ValueError
        With a message naming the first offending row.
    """
    if Y.ndim != 2:
        hint = (
            " (got class indices? convert with dpmix.one_hot(labels, num_classes))"
            if Y.ndim == 1
            else ""
        )
        raise ValueError(
            f"Y must be a 2-D one-hot matrix (n, num_classes), got shape {Y.shape}{hint}"
        )
    if n is not None and Y.shape[0] != n:
        raise ValueError(f"X has {n} records but Y has {Y.shape[0]} rows")
    if Y.shape[1] < 2:
        raise ValueError(f"Y must have at least 2 classes (columns), got {Y.shape[1]}")
    binary = (Y == 0) | (Y == 1)
    row_ok = binary.all(axis=1) & (Y.sum(axis=1) == 1)
    if not row_ok.all():
        i = int(np.argmin(row_ok))
        raise ValueError(
            f"Y must be one-hot (one 1 and zeros elsewhere per row); row {i} is {Y[i].tolist()}"
        )
    return np.argmax(Y, axis=1)


def one_hot(labels: np.ndarray, num_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """One-hot encode integer class labels ``(n,)`` → ``(n, num_classes)``.

    Parameters
    ----------
    labels : ndarray of shape (n,)
        Integer class labels ≥ 0.
    num_classes : int, optional
        Number of columns; default ``labels.max() + 1``.
    dtype : dtype, default float32
        Output dtype.

    Returns
    -------
    Y : ndarray of shape (n, num_classes)
        One-hot rows.

    Raises
    ------
    ValueError
        If ``labels`` is not a 1-D integer array, has negative entries or an entry
        ``>= num_classes``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be >= 0")
    k = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if labels.size and labels.max() >= k:
        raise ValueError(f"label {int(labels.max())} out of range for num_classes={k}")
    out = np.zeros((labels.size, k), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out
