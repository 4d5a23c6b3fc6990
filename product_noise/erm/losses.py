"""Margin losses ``ℓ(z)``, ``z = y θᵀx``, with the constants the privacy analyses need.

Both losses satisfy ``|ℓ'(z)| ≤ 1`` (so the per-sample loss is ``R``-Lipschitz in θ when
``‖x‖ ≤ R``) and ``0 ≤ ℓ''(z) ≤ c`` (so the per-sample Hessian ``ℓ'' x xᵀ`` has eigenvalue
``≤ c R²``):

=============  ====================================================  ===========
loss           ℓ(z)                                                  c
=============  ====================================================  ===========
logistic       ``log(1 + e^{−z})``                                   ``1/4``
Huber-SVM      ``0`` (z > 1+h), ``(1+h−z)²/(4h)`` (|1−z| ≤ h),       ``1/(2h)``
               ``1 − z`` (z < 1−h)
=============  ====================================================  ===========

References
----------
.. [1] K. Chaudhuri, C. Monteleoni and A. D. Sarwate, "Differentially private empirical risk
       minimization", Journal of Machine Learning Research 12, 2011.
.. [2] L. Liu, Y. Ji, Y. Fang, X. Wei and Z. Li, SIGMOD 2026,
       arXiv:2512.06253.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from ..validation import check_positive

__all__ = ["MarginLoss", "LogisticLoss", "HuberLoss", "make_loss"]


class MarginLoss:
    """A convex margin loss with ``|ℓ'| ≤ 1`` and ``ℓ'' ≤ c``."""

    name: str = "loss"

    @property
    def c(self) -> float:
        """Upper bound on ``ℓ''``."""
        raise NotImplementedError

    def value(self, z: np.ndarray) -> np.ndarray:
        """The loss ``ℓ(z)``.

        Parameters
        ----------
        z : ndarray
            Margins ``y θᵀx``, any shape.

        Returns
        -------
        loss : ndarray
            ``ℓ(z)``, with the shape of ``z``.
        """
        raise NotImplementedError

    def deriv(self, z: np.ndarray) -> np.ndarray:
        """The derivative ``ℓ'(z)`` (in [−1, 0]).

        Parameters
        ----------
        z : ndarray
            Margins ``y θᵀx``, any shape.

        Returns
        -------
        deriv : ndarray
            ``ℓ'(z)``, with the shape of ``z``.
        """
        raise NotImplementedError

    def second(self, z: np.ndarray) -> np.ndarray:
        """The second derivative ``ℓ''(z)`` (in [0, c]).

        Parameters
        ----------
        z : ndarray
            Margins ``y θᵀx``, any shape.

        Returns
        -------
        second : ndarray
            ``ℓ''(z)``, with the shape of ``z``.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class LogisticLoss(MarginLoss):
    """``ℓ(z) = log(1 + e^{−z})``; ``ℓ' = −σ(−z)``; ``ℓ'' = σ(z)σ(−z) ≤ 1/4``."""

    name = "logistic"

    @property
    def c(self) -> float:
        return 0.25

    def value(self, z: np.ndarray) -> np.ndarray:
        """``log(1 + e^{−z})``, computed stably.

        Parameters
        ----------
        z : ndarray
            Margins ``y θᵀx``, any shape.

        Returns
        -------
        loss : ndarray
            ``ℓ(z)``, with the shape of ``z``.
        """
        return np.logaddexp(0.0, -z)

    def deriv(self, z: np.ndarray) -> np.ndarray:
        """``ℓ'(z) = −σ(−z)``.

        Parameters
        ----------
        z : ndarray
            Margins ``y θᵀx``, any shape.

        Returns
        -------
        deriv : ndarray
            ``ℓ'(z)``, with the shape of ``z``.
        """
        return -special.expit(-z)

    def second(self, z: np.ndarray) -> np.ndarray:
        """``ℓ''(z) = σ(z)σ(−z)``.

        Parameters
        ----------
        z : ndarray
            Margins ``y θᵀx``, any shape.

        Returns
        -------
        second : ndarray
            ``ℓ''(z)``, with the shape of ``z``.
        """
        s = special.expit(z)
        return s * (1.0 - s)


@dataclass(frozen=True)
class HuberLoss(MarginLoss):
    """Huber-smoothed hinge loss with parameter ``h`` (CMS11 Eq. 7; ``c = 1/(2h)``)."""

    h: float = 0.5
    name = "huber"

    def __post_init__(self) -> None:
        check_positive("huber_h", self.h)

    @property
    def c(self) -> float:
        return 1.0 / (2.0 * self.h)

    def value(self, z: np.ndarray) -> np.ndarray:
        """The Huber-hinge loss (see the module table).

        Parameters
        ----------
        z : ndarray
            Margins ``y θᵀx``, any shape.

        Returns
        -------
        loss : ndarray
            ``ℓ(z)``, with the shape of ``z``.
        """
        h = self.h
        mid = (1.0 + h - z) ** 2 / (4.0 * h)
        return np.where(z > 1.0 + h, 0.0, np.where(z < 1.0 - h, 1.0 - z, mid))

    def deriv(self, z: np.ndarray) -> np.ndarray:
        """``ℓ'(z)``: 0, ``−(1+h−z)/(2h)`` or −1.

        Parameters
        ----------
        z : ndarray
            Margins ``y θᵀx``, any shape.

        Returns
        -------
        deriv : ndarray
            ``ℓ'(z)``, with the shape of ``z``.
        """
        h = self.h
        mid = -(1.0 + h - z) / (2.0 * h)
        return np.where(z > 1.0 + h, 0.0, np.where(z < 1.0 - h, -1.0, mid))

    def second(self, z: np.ndarray) -> np.ndarray:
        """``ℓ''(z)``: ``1/(2h)`` on ``|1 − z| ≤ h``, else 0.

        Parameters
        ----------
        z : ndarray
            Margins ``y θᵀx``, any shape.

        Returns
        -------
        second : ndarray
            ``ℓ''(z)``, with the shape of ``z``.
        """
        h = self.h
        return np.where(np.abs(1.0 - z) <= h, 1.0 / (2.0 * h), 0.0)


def make_loss(name: str, huber_h: float = 0.5) -> MarginLoss:
    """``"logistic"`` or ``"huber"``.

    Parameters
    ----------
    name : {"logistic", "huber"}
        The loss.
    huber_h : float, default 0.5
        Huber parameter ``h > 0`` (ignored for the logistic loss).

    Returns
    -------
    loss : MarginLoss
        A :class:`LogisticLoss` or :class:`HuberLoss`.

    Raises
    ------
    ValueError
        If ``name`` is unknown or ``huber_h <= 0``.
    """
    if name == "logistic":
        return LogisticLoss()
    if name == "huber":
        return HuberLoss(float(huber_h))
    raise ValueError(f"loss must be 'logistic' or 'huber', got {name!r}")
