"""The Gaussian mechanism ``n ~ N(0, σ² I_M)``: classic and analytic calibration.

* **Classic** (Dwork & Roth, Thm 3.22 / A.1): ``σ = Δ √(2 ln(1.25/δ)) / ε``. The theorem holds
  only for ``ε < 1``. This package *warns* (:class:`~product_noise.privacy.PrivacyWarning`) when it
  is used with ``ε ≥ 1`` — the paper's baselines do so — and always reports the *verified* δ of the
  resulting σ next to the claimed one, so nothing is hidden.
* **Analytic** (Balle & Wang 2018, Thm 8): the exact profile
  ``δ(ε) = Φ(μ/2 − ε/μ) − e^ε Φ(−μ/2 − ε/μ)``, ``μ = Δ/σ``, independent of M; calibration is the
  smallest σ with ``δ(ε) ≤ δ`` (Brent search on ``ln σ``, safe end).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from ..accounting.calibrate import GrowingBracket, smallest_scale
from ..privacy import CLAIMED, PrivacyFigure, PrivacyWarning
from ..validation import InputError, check_delta, check_dimension, check_epsilon, check_positive
from .base import MIN_DELTA, SeedLike, SphericalMechanism
from .spherical import SGG

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Gaussian", "gaussian_delta", "classic_gaussian_sigma", "analytic_gaussian_sigma"]


def gaussian_delta(epsilon: float | np.ndarray, mu: float) -> float | np.ndarray:
    """Exact hockey-stick divergence of ``N(μ, 1)`` vs ``N(0, 1)`` at ``ε`` (Balle & Wang Thm 8).

    ``e^ε Φ(b)`` is evaluated as ``exp(ε + log Φ(b))`` so that large ε neither overflows nor
    cancels.

    Parameters
    ----------
    epsilon : float or ndarray
        ε, a scalar or an array of any shape.
    mu : float
        Shift in units of the per-coordinate σ, ``μ = Δ/σ > 0``.

    Returns
    -------
    delta : float or ndarray
        ``Φ(μ/2 − ε/μ) − e^ε Φ(−μ/2 − ε/μ)`` clipped to [0, 1], with the shape of ``epsilon``.

    Raises
    ------
    ValueError
        If ``mu <= 0``.

    References
    ----------
    .. [1] B. Balle and Y.-X. Wang, "Improving the Gaussian mechanism for differential privacy:
           analytical calibration and optimal denoising", ICML 2018.
    """
    eps = np.asarray(epsilon, dtype=float)
    mu = float(mu)
    if mu <= 0:
        raise ValueError(f"mu must be > 0, got {mu}")
    val = np.exp(special.log_ndtr(mu / 2 - eps / mu)) - np.exp(
        eps + special.log_ndtr(-mu / 2 - eps / mu)
    )
    val = np.clip(val, 0.0, 1.0)
    return float(val) if val.ndim == 0 else val


def classic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """``σ = Δ √(2 ln(1.25/δ)) / ε`` (Dwork & Roth; a theorem only for ε < 1).

    Parameters
    ----------
    epsilon : float
        ε > 0 (the theorem needs ε < 1; no check or warning here).
    delta : float
        δ, strictly inside (0, 1).
    sensitivity : float, default 1.0
        L2 sensitivity Δ.

    Returns
    -------
    sigma : float
        Per-coordinate standard deviation (absolute, already multiplied by Δ).

    References
    ----------
    .. [1] C. Dwork and A. Roth, "The algorithmic foundations of differential privacy",
           Foundations and Trends in Theoretical Computer Science 9(3-4), 2014.
    """
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    sensitivity = check_positive("sensitivity", sensitivity)
    return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def analytic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """Smallest σ with exact δ(ε) ≤ ``delta`` (Balle & Wang 2018), rounded to the safe side.

    Parameters
    ----------
    epsilon : float
        Target ε > 0.
    delta : float
        Target δ in [:data:`~product_noise.mechanisms.base.MIN_DELTA`, 1).
    sensitivity : float, default 1.0
        L2 sensitivity Δ.

    Returns
    -------
    sigma : float
        Per-coordinate standard deviation (absolute); independent of the dimension.

    Raises
    ------
    ValueError
        If an argument is out of range or ``delta < MIN_DELTA``.

    References
    ----------
    .. [1] B. Balle and Y.-X. Wang, "Improving the Gaussian mechanism for differential privacy:
           analytical calibration and optimal denoising", ICML 2018.
    """
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    if delta < MIN_DELTA:
        raise InputError(f"delta must be >= {MIN_DELTA:g} for numerical calibration, got {delta!r}")
    sensitivity = check_positive("sensitivity", sensitivity)

    # the unit-sensitivity σ; the bracket e^±10 grows by e^10 per step
    ten = math.exp(10.0)
    bracket = GrowingBracket(1.0 / ten, ten, factor=ten)
    s = smallest_scale(lambda s: gaussian_delta(epsilon, 1.0 / s), delta, bracket)
    return s * sensitivity


class Gaussian(SphericalMechanism):
    """Isotropic Gaussian noise ``N(0, σ² I_M)``; ``sigma`` is the per-coordinate standard
    deviation (absolute, i.e. already multiplied by the sensitivity)."""

    name = "gaussian"
    scale_name = "sigma"
    min_dim = 1

    def __init__(self, dim: int, sigma: float, sensitivity: float = 1.0) -> None:
        super().__init__(dim, sigma, sensitivity)
        self._claim: PrivacyFigure | None = None

    @property
    def sigma(self) -> float:
        return self.scale

    @classmethod
    def _unit_law(cls, dim: int) -> SGG:
        return SGG(dim, dim - 1.0, 0.5, 2.0)

    # ------------------------------------------------------------- calibrations
    @classmethod
    def classic(cls, epsilon: float, delta: float, dim: int, sensitivity: float = 1.0) -> Gaussian:
        """The classic calibration. Warns when ``ε ≥ 1`` (outside Dwork–Roth's theorem).

        Parameters
        ----------
        epsilon : float
            Claimed ε > 0.
        delta : float
            Claimed δ in (0, 1).
        dim : int
            Noise dimension M.
        sensitivity : float, default 1.0
            L2 sensitivity Δ.

        Returns
        -------
        mechanism : Gaussian
            σ from :func:`classic_gaussian_sigma`; its :meth:`claimed` is (ε, δ) labelled
            ``"claimed"``.

        Warns
        -----
        PrivacyWarning
            If ``epsilon >= 1``, with the verified δ at ``epsilon``.
        """
        dim = check_dimension(dim)
        sigma = classic_gaussian_sigma(epsilon, delta, sensitivity)
        mech = cls(dim, sigma, sensitivity)
        if epsilon >= 1.0:
            true_delta = mech.delta(epsilon)
            warnings.warn(
                f"classic Gaussian calibration used at epsilon={epsilon:g} >= 1, outside the "
                f"Dwork-Roth theorem (valid for epsilon < 1); its claimed delta={delta:g} is not "
                f"a theorem here. Verified delta at this epsilon: {true_delta:.3g}. "
                "Use Gaussian.calibrate (analytic) for a sound calibration.",
                PrivacyWarning,
                stacklevel=2,
            )
        mech._claim = PrivacyFigure(
            float(epsilon),
            float(delta),
            CLAIMED,
            "classic Gaussian calibration (Dwork-Roth Thm A.1"
            + ("; outside its validity eps<1)" if epsilon >= 1 else ")"),
        )
        return mech

    @classmethod
    def calibrate_scale(
        cls, epsilon: float, delta: float, dim: int, sensitivity: float = 1.0
    ) -> float:
        """Analytic σ (:func:`analytic_gaussian_sigma`); the dimension only is checked.

        Parameters
        ----------
        epsilon : float
            Target ε > 0.
        delta : float
            Target δ in [:data:`~product_noise.mechanisms.base.MIN_DELTA`, 1).
        dim : int
            Noise dimension M ≥ 1 (σ does not depend on it).
        sensitivity : float, default 1.0
            L2 sensitivity Δ.

        Returns
        -------
        sigma : float
            Per-coordinate standard deviation (absolute).

        Raises
        ------
        ValueError
            If an argument is out of range or ``delta < MIN_DELTA``.
        """
        check_dimension(dim)
        if check_delta(delta) < MIN_DELTA:
            raise InputError(
                f"delta must be >= {MIN_DELTA:g} for numerical calibration, got {delta!r}"
            )
        return analytic_gaussian_sigma(epsilon, delta, sensitivity)

    def claimed(self) -> PrivacyFigure | None:
        """The classic calibration's (ε, δ) if built by :meth:`classic`, else ``None``.

        Returns
        -------
        figure : PrivacyFigure or None
            Labelled ``"claimed"``.
        """
        return self._claim

    # ------------------------------------------------------------- privacy
    def delta(self, epsilon: float | np.ndarray) -> float | np.ndarray:
        """Exact δ(ε) at the full shift Δ (:func:`gaussian_delta` with ``μ = Δ/σ``).

        Parameters
        ----------
        epsilon : float or ndarray
            ε ≥ 0, a scalar or an array.

        Returns
        -------
        delta : float or ndarray
            δ(ε), with the shape of ``epsilon``.

        Raises
        ------
        ValueError
            If any ε is negative.
        """
        eps = np.asarray(epsilon, dtype=float)
        if np.any(eps < 0):
            raise ValueError("epsilon must be >= 0 for the privacy profile")
        return gaussian_delta(epsilon, self.sensitivity / self.sigma)

    def delta_at_shift(self, epsilon: float | np.ndarray, shift: float) -> float | np.ndarray:
        """Exact δ(ε) at one shift norm (``μ = shift/σ``).

        Parameters
        ----------
        epsilon : float or ndarray
            ε, a scalar or an array.
        shift : float
            Shift norm > 0 (same units as Δ).

        Returns
        -------
        delta : float or ndarray
            δ(ε), with the shape of ``epsilon``.
        """
        return gaussian_delta(epsilon, shift / self.sigma)

    # ------------------------------------------------------------- sampling
    def sample(self, size: int | None = None, *, rng: SeedLike = None) -> np.ndarray:
        """Draw ``N(0, σ² I_M)`` vectors.

        Parameters
        ----------
        size : int, optional
            Number of vectors; ``None`` draws one vector of shape ``(M,)``.
        rng : int, SeedSequence, BitGenerator, Generator or None
            Anything :func:`numpy.random.default_rng` accepts.

        Returns
        -------
        noise : ndarray of shape (M,) or (size, M), dtype float64
            Independent coordinates with standard deviation σ.
        """
        rng = self._rng(rng)
        shape = (self.dim,) if size is None else (size, self.dim)
        return self.sigma * rng.standard_normal(shape)

    def sample_like(
        self, tensors: Sequence[torch.Tensor], *, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Draw ``N(0, σ²)`` noise for every entry of ``tensors``.

        Parameters
        ----------
        tensors : sequence of torch.Tensor
            Templates whose ``numel()`` sum to M.
        generator : torch.Generator, optional
            Source of randomness.

        Returns
        -------
        noise : list of torch.Tensor
            Tensors shaped like ``tensors`` (same dtype and device).

        Raises
        ------
        ValueError
            If the tensors do not hold exactly M values in total.
        """
        return [g.mul_(self.sigma) for g in self._normals_like(tensors, generator)]

    def config(self) -> dict[str, Any]:
        """JSON-able parameters that rebuild this mechanism with :func:`from_config`.

        Returns
        -------
        config : dict
            ``name``, ``dim``, ``sensitivity`` and ``sigma``.
        """
        return {**super().config()}
