"""The :class:`Mechanism` interface shared by the Opacus engine, the ERM estimators, DPMix and the
comparison.

A mechanism adds noise ``n ∈ R^M`` to a vector query of known L2 sensitivity Δ (or to a list of
tensors treated as one vector of dimension M) and knows its own privacy:

* :meth:`Mechanism.sample` / :meth:`Mechanism.sample_like` draw the noise (NumPy, with ``rng=``
  anything :func:`numpy.random.default_rng` accepts / PyTorch);
* :meth:`Mechanism.delta` is the **verified** privacy profile δ(ε) of the noise actually added,
  computed exactly (worst case over shift norms ≤ Δ);
* :meth:`Mechanism.calibrate` chooses the noise scale for a target (ε, δ) from that profile;
* :meth:`Mechanism.claimed` is the guarantee a paper states for the noise, reproduced exactly and
  labelled ``claimed`` (``None`` when no paper claim applies).

Every mechanism in the package is spherically symmetric (radius × uniform direction), so the
concrete base :class:`SphericalMechanism` implements all of this from a radial law
(:class:`~product_noise.mechanisms.spherical.SGG`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..accounting.calibrate import (
    MAX_EPSILON,
    GrowingBracket,
    NoBracketFoundError,
    invert_profile,
    smallest_scale,
)
from ..privacy import VERIFIED, PrivacyFigure
from ..validation import InputError, check_delta, check_dimension, check_epsilon, check_positive
from .spherical import MIN_EXACT_DIM, SGG, uniform_direction

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "Mechanism",
    "ScaledMechanism",
    "SphericalMechanism",
    "MIN_DELTA",
    "MAX_EPSILON",
    "SeedLike",
]

#: What ``rng=`` accepts, as :func:`numpy.random.default_rng` does: ``None`` (fresh entropy), an
#: ``int`` seed, a :class:`~numpy.random.SeedSequence`, a bit generator or a ``Generator``
#: (used as is).
SeedLike = int | np.random.SeedSequence | np.random.BitGenerator | np.random.Generator | None

#: Smallest δ the numerical profile resolves (radius mass below 1e-20 is added to δ as a bound).
MIN_DELTA = 1e-15
# MAX_EPSILON (re-exported): the largest ε :meth:`Mechanism.epsilon` searches; beyond it, ε(δ)
# is reported as ``inf``


class Mechanism(ABC):
    """Additive noise for a query of L2 sensitivity Δ in R^M, with its exact privacy."""

    #: short registry name, e.g. ``"product"``
    name: ClassVar[str] = "mechanism"
    #: what the verified figures are computed from (a user's profile mechanism: their proof)
    profile_source: ClassVar[str] = "exact privacy profile"

    def __init__(self, dim: int, sensitivity: float = 1.0) -> None:
        self.dim = check_dimension(dim)
        self.sensitivity = check_positive("sensitivity", sensitivity)

    # ---------------------------------------------------------------- sampling
    @abstractmethod
    def sample(self, size: int | None = None, *, rng: SeedLike = None) -> np.ndarray:
        """Draw noise vectors, shape ``(M,)`` or ``(size, M)`` (float64).

        Parameters
        ----------
        size : int, optional
            Number of vectors; ``None`` draws one vector of shape ``(M,)``.
        rng : int, SeedSequence, BitGenerator, Generator or None
            Anything :func:`numpy.random.default_rng` accepts (a ``Generator`` is used as is,
            ``None`` draws fresh entropy).

        Returns
        -------
        noise : ndarray of shape (M,) or (size, M), dtype float64
            One noise vector, or ``size`` independent vectors as rows.
        """

    @abstractmethod
    def sample_like(
        self, tensors: Sequence[torch.Tensor], *, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Draw one noise vector over all ``tensors`` jointly (their total size must be M).

        Returns a list of tensors with the shapes, dtypes and devices of ``tensors``.

        Parameters
        ----------
        tensors : sequence of torch.Tensor
            Templates (e.g. the parameters' gradients); their ``numel()`` must sum to M.
        generator : torch.Generator, optional
            Source of randomness; ``None`` uses PyTorch's default generator.

        Returns
        -------
        noise : list of torch.Tensor
            One tensor per template, same shape, dtype and device; together they form a single
            draw of the M-dimensional noise.

        Raises
        ------
        ValueError
            If the tensors do not hold exactly M values in total.
        """

    # ---------------------------------------------------------------- norms
    @property
    @abstractmethod
    def expected_norm(self) -> float:
        """``E‖n‖``."""

    @property
    @abstractmethod
    def expected_sq_norm(self) -> float:
        """``E‖n‖²``."""

    # ---------------------------------------------------------------- privacy
    @abstractmethod
    def delta(self, epsilon: float | np.ndarray) -> float | np.ndarray:
        """Verified privacy profile δ(ε) for ε ≥ 0 (worst case over shifts of norm ≤ Δ).

        Parameters
        ----------
        epsilon : float or ndarray
            ε ≥ 0, a scalar or an array of any shape.

        Returns
        -------
        delta : float or ndarray
            δ(ε), with the shape of ``epsilon``.
        """

    def privacy_profile(self) -> Callable[[np.ndarray], np.ndarray]:
        """The verified profile as a vectorised callable, for the accounting layer.

        Returns
        -------
        profile : callable
            ``profile(eps) -> ndarray``: δ at each ε of the array ``eps`` (at least 1-D, float).
        """

        def profile(eps: np.ndarray) -> np.ndarray:
            return np.atleast_1d(np.asarray(self.delta(np.asarray(eps, dtype=float))))

        return profile

    def epsilon(self, delta: float) -> float:
        """Smallest ε ≥ 0 with δ(ε) ≤ ``delta`` (``inf`` if none below 1e4).

        Parameters
        ----------
        delta : float
            Target δ, strictly inside (0, 1).

        Returns
        -------
        epsilon : float
            The verified ε of one release at ``delta``; ``inf`` if no ε ≤ :data:`MAX_EPSILON`
            reaches it.

        Raises
        ------
        ValueError
            If ``delta`` is not strictly inside (0, 1).
        """
        delta = check_delta(delta)
        return invert_profile(self.delta, delta, max_epsilon=MAX_EPSILON)

    def verified(
        self, *, epsilon: float | None = None, delta: float | None = None
    ) -> PrivacyFigure:
        """The verified (ε, δ) of one release: give ``delta`` (→ ε) or ``epsilon`` (→ δ).

        Parameters
        ----------
        epsilon : float, optional
            ε > 0; δ(ε) is computed from the verified profile.
        delta : float, optional
            δ in (0, 1); the smallest ε with δ(ε) ≤ ``delta`` is computed.

        Returns
        -------
        figure : PrivacyFigure
            The pair (ε, δ), labelled ``"verified"``, with its source.

        Raises
        ------
        ValueError
            If not exactly one of ``epsilon`` and ``delta`` is given, or it is out of range.
        """
        if (epsilon is None) == (delta is None):
            raise ValueError("give exactly one of epsilon= or delta=")
        src = f"{self.profile_source} of {self.describe()}"
        if delta is not None:
            return PrivacyFigure(self.epsilon(delta), float(delta), VERIFIED, src)
        eps = check_epsilon(epsilon)
        return PrivacyFigure(eps, float(self.delta(eps)), VERIFIED, src)

    def claimed(self) -> PrivacyFigure | None:
        """The guarantee a paper states for this noise (labelled ``claimed``), if any.

        Returns
        -------
        figure : PrivacyFigure or None
            The paper's (ε, δ), labelled ``"claimed"``; ``None`` when no paper claim applies.
        """
        return None

    # ---------------------------------------------------------------- calibration
    @classmethod
    @abstractmethod
    def calibrate(
        cls, epsilon: float, delta: float, dim: int, sensitivity: float = 1.0
    ) -> Mechanism:
        """The least-noise member of this family that is verified (ε, δ)-DP.

        Parameters
        ----------
        epsilon : float
            Target ε > 0.
        delta : float
            Target δ, strictly inside (0, 1).
        dim : int
            Noise dimension M.
        sensitivity : float, default 1.0
            L2 sensitivity Δ of the query (the largest shift norm).

        Returns
        -------
        mechanism : Mechanism
            An instance of this class whose verified δ(ε) is at most ``delta``.
        """

    # ---------------------------------------------------------------- description
    def describe(self) -> str:
        """A one-line description, e.g. ``"Gaussian(M=10, sigma=1.2, Δ=1)"``.

        Returns
        -------
        description : str
            Class name, dimension, scale (if any) and sensitivity.
        """
        return f"{type(self).__name__}(M={self.dim}, Δ={self.sensitivity:g})"

    def __repr__(self) -> str:
        return self.describe()

    def config(self) -> dict[str, Any]:
        """JSON-able parameters that rebuild this mechanism with :func:`from_config`.

        Returns
        -------
        config : dict
            ``name``, ``dim``, ``sensitivity`` and the family's own parameters.
        """
        return {"name": self.name, "dim": self.dim, "sensitivity": self.sensitivity}


class ScaledMechanism(Mechanism):
    """A family of mechanisms indexed by one scale: noise ``scale · N₁`` with ``N₁`` fixed.

    Privacy then depends on ``scale/Δ`` only (the *noise multiplier* of DP-SGD), which is what
    lets the DP-SGD engine, its accountant and every calibration treat the family generically:
    ``cls(dim, scale, sensitivity)`` builds a member and :meth:`calibrate_scale` finds the least
    scale whose verified δ(ε) meets a target. Subclasses give :meth:`_delta_for_scale` (the
    verified δ of a member) and the sampler; :class:`SphericalMechanism` does so from a radial
    law, :mod:`product_noise.mechanisms.custom` from a user's sampler and profile.
    """

    #: the name of the scale parameter (``sigma``, ``theta``, ...; a key of :meth:`config`)
    scale_name: ClassVar[str] = "scale"
    #: smallest dimension whose verified profile is resolved (the exact spherical integral
    #: needs M >= 4; families with a closed form or another exact bound lower it)
    min_dim: ClassVar[int] = MIN_EXACT_DIM

    def __init__(self, dim: int, scale: float, sensitivity: float = 1.0) -> None:
        super().__init__(dim, sensitivity)
        self.scale = check_positive(self.scale_name, scale)

    #: whether :meth:`delta` is a proven profile; ``False`` for a mechanism with a sampler only
    #: (its reports say ``unverified`` and it is never calibrated on a privacy profile)
    provable: ClassVar[bool] = True

    @property
    def noise_multiplier(self) -> float:
        """``scale/Δ``, Opacus' convention (privacy depends on it alone)."""
        return self.scale / self.sensitivity

    @classmethod
    def _needs_sup(cls, dim: int) -> bool:
        """Whether the scale search must take a supremum over shift norms (default: no)."""
        return False

    @classmethod
    @abstractmethod
    def _delta_for_scale(
        cls, epsilon: float, dim: int, sensitivity: float, scale: float, sup: bool
    ) -> float:
        """The verified δ(ε) of ``cls(dim, scale, sensitivity)`` (``sup``: over shift norms)."""

    @classmethod
    def calibrate_scale(
        cls, epsilon: float, delta: float, dim: int, sensitivity: float = 1.0
    ) -> float:
        """Smallest scale whose verified profile satisfies δ(ε) ≤ ``delta`` (conservative).

        Parameters
        ----------
        epsilon : float
            Target ε > 0.
        delta : float
            Target δ in [:data:`MIN_DELTA`, 1).
        dim : int
            Noise dimension M ≥ 2.
        sensitivity : float, default 1.0
            L2 sensitivity Δ.

        Returns
        -------
        scale : float
            The family's scale parameter (σ, θ, ...; see :attr:`scale_name`), on the safe side
            of the root: the mechanism at this scale satisfies δ(ε) ≤ ``delta``.

        Raises
        ------
        ValueError
            If an argument is out of range or ``delta < MIN_DELTA``.
        NoBracketFoundError
            If no finite scale reaches the target.
        """
        epsilon = check_epsilon(epsilon)
        delta = check_delta(delta)
        dim = check_dimension(dim, minimum=2)
        sensitivity = check_positive("sensitivity", sensitivity)
        if delta < MIN_DELTA:
            raise InputError(f"delta must be >= {MIN_DELTA:g} for numerical calibration")
        sup = cls._needs_sup(dim)

        def solve(use_sup: bool) -> float:
            def delta_of(s: float) -> float:
                return cls._delta_for_scale(epsilon, dim, sensitivity, s, use_sup)

            five = math.exp(5.0)
            bracket = GrowingBracket(
                sensitivity / five, sensitivity * five, factor=five, max_value=math.exp(200.0)
            )
            try:
                return smallest_scale(delta_of, delta, bracket)
            except NoBracketFoundError as err:
                raise NoBracketFoundError(
                    "no finite noise scale reaches this (epsilon, delta)"
                ) from err

        # solve at the full shift first (cheap), then check the supremum over shift norms
        s = solve(False)
        if sup and cls._delta_for_scale(epsilon, dim, sensitivity, s, True) > delta:
            s = solve(True)
        return s

    @classmethod
    def calibrate(
        cls, epsilon: float, delta: float, dim: int, sensitivity: float = 1.0
    ) -> ScaledMechanism:
        """The least-noise member of this family that is verified (ε, δ)-DP.

        Parameters
        ----------
        epsilon : float
            Target ε > 0.
        delta : float
            Target δ in [:data:`MIN_DELTA`, 1).
        dim : int
            Noise dimension M.
        sensitivity : float, default 1.0
            L2 sensitivity Δ.

        Returns
        -------
        mechanism : ScaledMechanism
            ``cls(dim, calibrate_scale(epsilon, delta, dim, sensitivity), sensitivity)``.
        """
        return cls(dim, cls.calibrate_scale(epsilon, delta, dim, sensitivity), sensitivity)

    def describe(self) -> str:
        """A one-line description with dimension, scale and sensitivity.

        Returns
        -------
        description : str
            E.g. ``"ProductNoise(M=100, sigma=2.5, Δ=1)"``.
        """
        return (
            f"{type(self).__name__}(M={self.dim}, {self.scale_name}={self.scale:.6g}, "
            f"Δ={self.sensitivity:g})"
        )

    def config(self) -> dict[str, Any]:
        """JSON-able parameters that rebuild this mechanism with :func:`from_config`.

        Returns
        -------
        config : dict
            The base keys plus the scale under :attr:`scale_name`.
        """
        return {**super().config(), self.scale_name: self.scale}


class SphericalMechanism(ScaledMechanism):
    """A mechanism whose noise is ``scale · R₁ · H`` with ``R₁`` from a unit-scale SGG law.

    Subclasses define :meth:`_unit_law` (the law at ``scale = 1``); ``scale`` is the family's
    natural scale parameter (σ for Gaussian and product noise, θ for the ℓ2 mechanism).
    """

    @classmethod
    @abstractmethod
    def _unit_law(cls, dim: int) -> SGG:
        """The radial law at scale 1."""

    @property
    def law(self) -> SGG:
        return self._unit_law(self.dim).scaled(self.scale)

    # ---------------------------------------------------------------- sampling
    def _rng(self, rng: SeedLike) -> np.random.Generator:
        """``rng`` as a ``Generator`` (see :data:`SeedLike`); a ``Generator`` is returned as is."""
        return np.random.default_rng(rng)

    def sample_radius(self, size: int | None = None, *, rng: SeedLike = None) -> np.ndarray | float:
        """Draw ``‖n‖`` (one float, or ``size`` of them); ``rng`` as in :meth:`sample`.

        Parameters
        ----------
        size : int, optional
            Number of radii; ``None`` draws one.
        rng : int, SeedSequence, BitGenerator, Generator or None
            As in :meth:`sample`.

        Returns
        -------
        radius : float or ndarray of shape (size,), dtype float64
            L2 norms of noise vectors (not per-coordinate scales).
        """
        return self.law.sample_radius(self._rng(rng), size)

    def sample(self, size: int | None = None, *, rng: SeedLike = None) -> np.ndarray:
        """Draw noise vectors ``radius · direction``, shape ``(M,)`` or ``(size, M)`` (float64).

        Parameters
        ----------
        size : int, optional
            Number of vectors; ``None`` draws one vector of shape ``(M,)``.
        rng : int, SeedSequence, BitGenerator, Generator or None
            Anything :func:`numpy.random.default_rng` accepts.

        Returns
        -------
        noise : ndarray of shape (M,) or (size, M), dtype float64
            Radius from the radial law times a direction uniform on the unit sphere.
        """
        rng = self._rng(rng)
        r = self.law.sample_radius(rng, size)
        h = uniform_direction(rng, size, self.dim)
        return h * (r if size is None else np.asarray(r)[:, None])

    def _torch_radius(self, generator: torch.Generator | None) -> float:
        """One radius draw from a torch generator (inverse CDF of a uniform)."""
        import torch

        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        u = min(max(u, 1e-300), 1 - 1e-16)
        return float(self.law.radius_ppf(np.array(u)))

    def _normals_like(
        self, tensors: Sequence[torch.Tensor], generator: torch.Generator | None
    ) -> list[torch.Tensor]:
        """Standard normals shaped like ``tensors`` (same dtype/device); checks their size is M."""
        import torch

        total = sum(int(t.numel()) for t in tensors)
        if total != self.dim:
            raise ValueError(
                f"the tensors hold {total} values but this mechanism has dimension M={self.dim}"
            )
        return [
            torch.randn(t.shape, dtype=t.dtype, device=t.device, generator=generator)
            for t in tensors
        ]

    def sample_like(
        self, tensors: Sequence[torch.Tensor], *, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Draw one noise vector over all ``tensors`` jointly (their total size must be M).

        Parameters
        ----------
        tensors : sequence of torch.Tensor
            Templates whose ``numel()`` sum to M.
        generator : torch.Generator, optional
            Source of randomness for the direction and the radius.

        Returns
        -------
        noise : list of torch.Tensor
            Tensors shaped like ``tensors`` (same dtype and device) whose joint L2 norm is one
            radius draw and whose joint direction is uniform.

        Raises
        ------
        ValueError
            If the tensors do not hold exactly M values in total.
        """
        import torch

        gs = self._normals_like(tensors, generator)
        # one global norm over all tensors (per-tensor norms combined in float64)
        norm = float(torch.stack([torch.linalg.vector_norm(g).double() for g in gs]).norm())
        radius = self._torch_radius(generator)
        factor = radius / norm
        return [g.mul_(factor) for g in gs]

    # ---------------------------------------------------------------- norms
    @property
    def expected_norm(self) -> float:
        return self.law.expected_norm

    @property
    def expected_sq_norm(self) -> float:
        return self.law.expected_sq_norm

    # ---------------------------------------------------------------- privacy
    @property
    def shift_monotone_proven(self) -> bool:
        return self.law.shift_monotone_proven

    def delta(self, epsilon: float | np.ndarray) -> float | np.ndarray:
        """Verified δ(ε): supremum over shift norms ≤ Δ of the exact spherical profile.

        Parameters
        ----------
        epsilon : float or ndarray
            ε ≥ 0, a scalar or an array.

        Returns
        -------
        delta : float or ndarray
            δ(ε), with the shape of ``epsilon``.
        """
        return self.law.delta_sup(epsilon, self.sensitivity)

    def delta_at_shift(self, epsilon: float | np.ndarray, shift: float) -> float | np.ndarray:
        """δ(ε) at one shift norm (no supremum).

        Parameters
        ----------
        epsilon : float or ndarray
            ε ≥ 0, a scalar or an array.
        shift : float
            Norm of the shift between neighbouring outputs (same units as Δ).

        Returns
        -------
        delta : float or ndarray
            δ(ε) for that shift, with the shape of ``epsilon``.
        """
        return self.law.delta(epsilon, shift)

    @classmethod
    def _needs_sup(cls, dim: int) -> bool:
        # δ is proved largest at the full shift only for the Gaussian; else take the supremum
        return not cls._unit_law(dim).shift_monotone_proven

    @classmethod
    def _delta_for_scale(
        cls, epsilon: float, dim: int, sensitivity: float, scale: float, sup: bool
    ) -> float:
        # evaluated exactly as ``cls(dim, scale, sensitivity).delta`` does (scaled law, shift Δ),
        # so the conservative end of calibrate_scale holds for the mechanism's own δ to the last
        # bit (the unit law at shift Δ/s agrees only up to rounding)
        law = cls._unit_law(dim).scaled(scale)
        if sup:
            return float(law.delta_sup(epsilon, sensitivity))
        return float(law.delta(epsilon, sensitivity))
