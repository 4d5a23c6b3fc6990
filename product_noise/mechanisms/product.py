"""Product noise (Liu, Ji, Fang, Wei, Li, SIGMOD 2026, arXiv 2512.06253), exactly as the official
code draws it, with the paper's claimed δ and the verified truth next to it.

Sampler (as in the paper and its official code): one scalar ``z ~ N(0, 1)`` and one direction
``h`` uniform on the unit sphere of R^M (over all tensors jointly)::

    n = σ · |z| · h,       σ = Δ · t / ε

so ``‖n‖ = σ|z|`` is half-normal; this is the SGG law with ``α = 0, p = 2, β = 1/(2σ²)``.

The paper's calibration (code's "formula in Theorem 3"), for a moment order
``1 ≤ q < M − 3/2`` (default ``q = M/2``) and a constant ``k > 1``::

    t_q   = √2 · k^{1/q} · ((q+3)/2)^{1/2 + 1/q} · exp(−(1/2 + 1/(2q)))
    λ     = ε / t_q
    δ(q)  = e^{−λ²/2} / (k √π) · [ ₁F₁((q+1)/2; 1/2; λ²/2) + √2 λ ₁F₁((q+2)/2; 3/2; λ²/2) ]
            · √(M−1) / √((M − q − 3/2)(q + 3/4))

With ``q = M/2`` this is ``t² = 2 k^{4/M} (M/4 + 3/2)^{1+4/M} / e^{1+2/M}``.

**This claimed δ is false for the noise the code adds**: at the paper's MNIST DPSGD setting
(M = 26010, k = 40000, ε₀ = 0.3) the claimed δ is 1.98e-7 while the exact δ at ε₀ is 0.42.
:meth:`ProductNoise.claimed` therefore returns a figure labelled ``claimed``;
:meth:`ProductNoise.delta` is the exact (verified) profile.

References
----------
.. [1] L. Liu, Y. Ji, Y. Fang, X. Wei and Z. Li, SIGMOD 2026,
       arXiv:2512.06253.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize, special

from ..privacy import CLAIMED, PrivacyFigure, PrivacyWarning
from ..validation import InputError, check_delta, check_dimension, check_epsilon, check_positive
from .base import SeedLike, SphericalMechanism
from .spherical import MIN_EXACT_DIM, SGG, _gauss_legendre

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "ProductNoise",
    "revealed_scale_delta",
    "paper_t",
    "claimed_delta",
    "solve_k",
    "optimal_q",
]


def _check_paper_args(
    dim: int, k: float | None, q: float | None
) -> tuple[int, float | None, float]:
    dim = check_dimension(dim)
    if dim <= 3:
        raise InputError(f"the paper's formula needs M > 3, got M={dim}")
    if k is not None:
        k = check_positive("k", k)
        if k <= 1.0:
            raise InputError(f"the paper's constant k must be > 1, got k={k!r}")
    q = dim / 2.0 if q is None else float(q)
    if not (1.0 <= q < dim - 1.5) or not math.isfinite(q):
        raise InputError(f"the moment order q must satisfy 1 <= q < M - 3/2 = {dim - 1.5}, got {q}")
    return dim, k, q


def paper_t(dim: int, k: float, q: float | None = None) -> float:
    """The paper's constant ``t_q`` (``σ = Δ t / ε``); ``q`` defaults to ``M/2``.

    Parameters
    ----------
    dim : int
        Noise dimension M > 3.
    k : float
        The paper's constant ``k > 1``.
    q : float, optional
        Moment order, ``1 ≤ q < M − 3/2``; default ``M/2``.

    Returns
    -------
    t : float
        ``t_q`` (dimensionless: the scale in units of Δ/ε).

    Raises
    ------
    ValueError
        If ``M <= 3``, ``k <= 1`` or ``q`` is outside ``[1, M − 3/2)``.
    """
    dim, k, q = _check_paper_args(dim, k, q)
    log_t = (
        0.5 * math.log(2.0)
        + math.log(k) / q
        + (0.5 + 1.0 / q) * math.log((q + 3.0) / 2.0)
        - (0.5 + 0.5 / q)
    )
    return math.exp(log_t)


def claimed_delta(epsilon: float, dim: int, k: float, q: float | None = None) -> float:
    """The paper's claimed δ for per-release budget ``epsilon`` (Kummer ₁F₁ form).

    Parameters
    ----------
    epsilon : float
        Per-release ε > 0.
    dim : int
        Noise dimension M > 3.
    k : float
        The paper's constant ``k > 1``.
    q : float, optional
        Moment order, ``1 ≤ q < M − 3/2``; default ``M/2``.

    Returns
    -------
    delta : float
        The **claimed** δ (not a valid bound for the noise; see the module docstring).

    Raises
    ------
    ValueError
        On out-of-range arguments, as :func:`paper_t`.
    """
    epsilon = check_epsilon(epsilon)
    dim, k, q = _check_paper_args(dim, k, q)
    t = paper_t(dim, k, q)
    lam = epsilon / t
    z = lam * lam / 2.0
    bracket = special.hyp1f1((q + 1.0) / 2.0, 0.5, z) + math.sqrt(2.0) * lam * special.hyp1f1(
        (q + 2.0) / 2.0, 1.5, z
    )
    log_delta = (
        -z
        - math.log(k)
        - 0.5 * math.log(math.pi)
        + math.log(bracket)
        + 0.5 * math.log(dim - 1.0)
        - 0.5 * math.log((dim - q - 1.5) * (q + 0.75))
    )
    return math.exp(log_delta)


def solve_k(epsilon: float, dim: int, target_delta: float, q: float | None = None) -> float:
    """The constant ``k`` for which the paper's claimed δ equals ``target_delta``.

    Bisection (Brent) on ``ln k``; the claimed δ is decreasing in ``k``.

    Parameters
    ----------
    epsilon : float
        Per-release ε > 0.
    dim : int
        Noise dimension M > 3.
    target_delta : float
        Claimed δ to reach, in (0, 1).
    q : float, optional
        Moment order, ``1 ≤ q < M − 3/2``; default ``M/2``.

    Returns
    -------
    k : float
        The constant ``k > 1``.

    Raises
    ------
    ValueError
        On out-of-range arguments, if the claimed δ is already below ``target_delta`` as
        ``k → 1``, or if no finite ``k`` (``ln k ≤ 700``) reaches it.
    """
    epsilon = check_epsilon(epsilon)
    target_delta = check_delta(target_delta, "target_delta")
    _check_paper_args(dim, None, q)

    def f(log_k: float) -> float:
        return math.log(claimed_delta(epsilon, dim, math.exp(log_k), q)) - math.log(target_delta)

    lo = math.log1p(1e-12)
    if f(lo) < 0:
        raise InputError(
            f"the claimed delta is already below {target_delta:g} at k -> 1; no k > 1 solves it"
        )
    hi = 1.0
    while f(hi) > 0:
        hi *= 2.0
        if hi > 700:
            raise InputError("no finite k reaches this target delta")
    return math.exp(optimize.brentq(f, lo, hi, xtol=1e-13, rtol=1e-13))


def optimal_q(epsilon: float, dim: int, k: float, grid: int = 1000) -> tuple[float, float]:
    """The moment order minimising the claimed δ, and that δ: ``(q*, δ(q*))``.

    A grid over ``[1, M − 3/2)`` as the official ``get_min_delta.py`` does, refined by a bounded
    scalar minimisation around the best grid point.

    Parameters
    ----------
    epsilon : float
        Per-release ε > 0.
    dim : int
        Noise dimension M > 3.
    k : float
        The paper's constant ``k > 1``.
    grid : int, default 1000
        Number of grid points in ``[1, M − 3/2)``.

    Returns
    -------
    q : float
        The minimising moment order.
    delta : float
        The claimed δ at ``q``.
    """
    epsilon = check_epsilon(epsilon)
    dim, k, _ = _check_paper_args(dim, k, None)
    qs = np.linspace(1.0, dim - 1.5, grid, endpoint=False)
    vals = np.array([claimed_delta(epsilon, dim, k, float(q)) for q in qs])
    i = int(np.nanargmin(vals))
    lo = qs[max(i - 1, 0)]
    hi = qs[min(i + 1, len(qs) - 1)]
    res = optimize.minimize_scalar(
        lambda q: math.log(claimed_delta(epsilon, dim, k, q)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-6 * dim},
    )
    q_best = float(res.x) if res.fun <= math.log(vals[i]) else float(qs[i])
    return q_best, claimed_delta(epsilon, dim, k, q_best)


def revealed_scale_delta(
    epsilon: float | np.ndarray,
    dim: int,
    sigma: float,
    shift: float = 1.0,
    *,
    hmax: float = 0.5,
    order: int = 24,
    chunk: int = 256,
) -> float | np.ndarray:
    """Upper bound on product noise's δ(ε) that is monotone in the shift by construction.

    Product noise is a Gaussian scale mixture: ``σ|z|h =ᵈ σ √B · G`` with ``G ~ N(0, I_M)`` and
    ``B ~ Beta(1/2, (M−1)/2)`` independent (since ``z² = χ²_M · B``). Revealing ``B`` to the
    adversary can only help it, so (joint convexity of the hockey-stick divergence)::

        δ(ε) ≤ E_B[ δ_Gauss(ε; μ_B) ],     μ_B = shift / (σ √B).

    Each term increases with the shift, so the bound at ``shift = Δ`` covers every shift ≤ Δ:
    no numerical check over shift norms is needed. At M = 26010 it exceeds the exact spherical
    profile by 2e-5 to 4e-4 relative. Vectorised over ε (the accounting layer evaluates
    thousands of points at once).

    Parameters
    ----------
    epsilon : float or ndarray
        ε ≥ 0 (finite), a scalar or a 1-D array.
    dim : int
        Noise dimension M ≥ 2.
    sigma : float
        Absolute scale σ of the noise (``‖n‖ = σ|z|``).
    shift : float, default 1.0
        Shift norm (normally the sensitivity Δ).
    hmax : float, default 0.5
        Largest step of the quadrature over ``ln B`` (smaller is more accurate).
    order : int, default 24
        Gauss–Legendre order per quadrature panel.
    chunk : int, default 256
        Number of ε evaluated per vectorised block (memory only).

    Returns
    -------
    delta : float or ndarray of shape (n_eps,)
        The upper bound on δ(ε), a float for scalar ``epsilon``.

    Raises
    ------
    ValueError
        If an ε is negative or not finite, or another argument is out of range.
    """
    dim = check_dimension(dim, minimum=2)
    sigma = check_positive("sigma", sigma)
    shift = check_positive("shift", shift)
    eps = np.atleast_1d(np.asarray(epsilon, dtype=float))
    if np.any(eps < 0) or not np.all(np.isfinite(eps)):
        raise ValueError("epsilon must be finite and >= 0 for the privacy profile")
    bb, weights, dropped = _beta_nodes(0.5, 0.5 * (dim - 1.0), hmax, order)
    mu = shift / (sigma * np.sqrt(bb))
    out = np.empty_like(eps)
    for i in range(0, len(eps), chunk):
        e = eps[i : i + chunk, None]
        vals = np.exp(special.log_ndtr(mu / 2 - e / mu)) - np.exp(
            e + special.log_ndtr(-mu / 2 - e / mu)
        )
        out[i : i + chunk] = np.clip(vals, 0.0, 1.0) @ weights
    out = np.clip(out + dropped, 0.0, 1.0)
    return float(out[0]) if np.ndim(epsilon) == 0 else out


_BETA_CUT = 1e-20
_BETA_LEVELS = np.array([1e-16, 1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.2, 0.3, 0.4])


def _half_nodes(
    a: float, b: float, mass: float, hmax: float, order: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes ``t = ln x`` and weights for ``x ~ Beta(a, b)`` on
    ``(x_cut, 1/2]``, where ``P[x <= x_cut] = 1e-20`` and ``mass = P[x <= 1/2]``; panels are split
    at quantiles of ``x`` and are at most ``hmax`` wide in ``t``."""
    levels = np.concatenate([[_BETA_CUT], _BETA_LEVELS[_BETA_LEVELS < mass]])
    pts = np.log(special.betaincinv(a, b, levels))
    pts = np.unique(
        np.concatenate([pts[np.isfinite(pts) & (pts < -math.log(2.0))], [-math.log(2)]])
    )
    edges = [pts[0]]
    for e in pts[1:]:
        n = max(1, int(math.ceil((e - edges[-1]) / hmax)))
        edges.extend(np.linspace(edges[-1], e, n + 1)[1:])
    edges_arr = np.asarray(edges)
    x, w = _gauss_legendre(order)
    half = 0.5 * (edges_arr[1:, None] - edges_arr[:-1, None])
    t = (edges_arr[:-1, None] + half * (x[None, :] + 1.0)).ravel()
    wt = (half * w[None, :]).ravel()
    # density of ln x: x^a (1 - x)^(b-1) / B(a, b), with 1 - x = -expm1(t) accurate near x = 1/2
    log_pdf = a * t + (b - 1.0) * np.log(-np.expm1(t)) - special.betaln(a, b)
    return t, wt * np.exp(log_pdf)


def _beta_nodes(
    a: float, b: float, hmax: float, order: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Nodes ``B`` and weights for ``E[h(B)]``, ``B ~ Beta(a, b)``, and the probability left out.

    The lower half ``B <= 1/2`` is integrated in ``ln B`` and the upper half in ``ln(1 − B)``
    (``1 − B ~ Beta(b, a)``), so both endpoint singularities (``b < 1`` at M = 2) are smooth in
    their variable. Each half loses ``1e-20`` at its far end; a half whose whole mass is below
    that (the upper half for large M) is left out. The mass left out is returned so that the
    caller can add it to δ (the integrand lies in [0, 1]).
    """
    lower_mass = float(special.betainc(a, b, 0.5))
    upper_mass = float(special.betainc(b, a, 0.5))
    nodes, weights, dropped = [], [], 0.0
    for first, second, mass, upper in ((a, b, lower_mass, False), (b, a, upper_mass, True)):
        if mass <= _BETA_CUT:
            dropped += mass
            continue
        t, w = _half_nodes(first, second, mass, hmax, order)
        nodes.append(-np.expm1(t) if upper else np.exp(t))
        weights.append(w)
        dropped += _BETA_CUT
    return np.concatenate(nodes), np.concatenate(weights), dropped


class ProductNoise(SphericalMechanism):
    """``n = σ |z| h`` with one half-normal radius and one uniform direction over all M values.

    Parameters
    ----------
    dim : int
        M, the total number of values the noise covers (e.g. all trainable parameters).
    sigma : float
        The absolute scale σ (already includes the sensitivity, as in the official code). It
        scales the norm, ``‖n‖ = σ|z|``; the per-coordinate root-mean-square is ``σ/√M``.
    sensitivity : float, default 1.0
        Δ, the L2 sensitivity the privacy figures refer to.

    Use :meth:`from_paper` for the paper's calibration (its ``claimed`` figure is then known)
    and :meth:`calibrate` for a *verified* calibration from the exact profile.
    """

    name = "product"
    scale_name = "sigma"
    min_dim = 2

    def __init__(self, dim: int, sigma: float, sensitivity: float = 1.0) -> None:
        super().__init__(dim, sigma, sensitivity)
        self.paper: dict[str, float] | None = None

    @property
    def sigma(self) -> float:
        return self.scale

    @classmethod
    def _unit_law(cls, dim: int) -> SGG:
        return SGG(dim, 0.0, 0.5, 2.0)

    @classmethod
    def from_paper(
        cls,
        dim: int,
        epsilon0: float,
        k: float | None = None,
        *,
        sensitivity: float = 1.0,
        q: float | None = None,
        target_delta: float | None = None,
    ) -> ProductNoise:
        """The paper's calibration ``σ = Δ t_q(M, k) / ε₀``.

        Exactly one of ``k`` and ``target_delta`` must be given: neither has a default (the
        registry's ``calibrate("product_paper", ε, δ, M)`` is what defaults ``target_delta`` to
        its ``δ``). The resulting mechanism's :meth:`claimed` is the paper's (ε₀, δ); its
        :meth:`delta` is the truth.

        Parameters
        ----------
        dim : int
            Dimension M of the noise (M > 3).
        epsilon0 : float
            The paper's per-release ε₀.
        k : float, optional
            The paper's constant ``k > 1``, fixed by hand as in the paper (e.g. 40000 for its
            MNIST setting). Required unless ``target_delta`` is given.
        sensitivity : float, default 1.0
            L2 sensitivity Δ.
        q : float, optional
            Moment order of the paper's bound, ``1 ≤ q < M − 3/2`` (default ``M/2``).
        target_delta : float, optional
            Solve ``k`` so that the paper's *claimed* δ at ε₀ equals ``target_delta`` (the true
            δ is far larger). Required unless ``k`` is given.

        Returns
        -------
        ProductNoise
            With :attr:`paper` set (ε₀, k, q, t and the claimed δ).

        Raises
        ------
        ValueError
            If neither or both of ``k`` and ``target_delta`` are given, or on bad arguments.
        """
        epsilon0 = check_epsilon(epsilon0, "epsilon0")
        if (k is None) == (target_delta is None):
            raise InputError(
                "ProductNoise.from_paper: give exactly one of k= or target_delta= ("
                + (
                    "neither was given, and neither has a default: k is the paper's constant "
                    "k > 1; with target_delta, k is solved so that the paper's claimed delta "
                    "equals it)"
                    if k is None
                    else "both were given)"
                )
            )
        _, _, q_used = _check_paper_args(dim, k, q)
        if k is None:
            k = solve_k(epsilon0, dim, target_delta, q)
        sigma = sensitivity * paper_t(dim, k, q) / epsilon0
        mech = cls(dim, sigma, sensitivity)
        mech.paper = {
            "epsilon0": epsilon0,
            "k": float(k),
            "q": q_used,
            "t": paper_t(dim, k, q),
            "claimed_delta": claimed_delta(epsilon0, dim, k, q),
        }
        return mech

    def delta(self, epsilon: float | np.ndarray) -> float | np.ndarray:
        """Verified δ(ε): the exact spherical profile for M ≥ 4; below, where that integral is
        not resolved, the revealed-scale bound (exact for its own law, never optimistic).

        Parameters
        ----------
        epsilon : float or ndarray
            ε ≥ 0, a scalar or an array.

        Returns
        -------
        delta : float or ndarray
            δ(ε), with the shape of ``epsilon``.
        """
        if self.dim < MIN_EXACT_DIM:
            return revealed_scale_delta(epsilon, self.dim, self.sigma, self.sensitivity)
        return super().delta(epsilon)

    def delta_at_shift(self, epsilon: float | np.ndarray, shift: float) -> float | np.ndarray:
        """δ(ε) at one shift norm (exact profile, or the revealed-scale bound for M < 4).

        Parameters
        ----------
        epsilon : float or ndarray
            ε ≥ 0, a scalar or an array.
        shift : float
            Shift norm > 0 (same units as Δ).

        Returns
        -------
        delta : float or ndarray
            δ(ε), with the shape of ``epsilon``.
        """
        if self.dim < MIN_EXACT_DIM:
            return revealed_scale_delta(epsilon, self.dim, self.sigma, shift)
        return super().delta_at_shift(epsilon, shift)

    @classmethod
    def _delta_for_scale(
        cls, epsilon: float, dim: int, sensitivity: float, scale: float, sup: bool
    ) -> float:
        if dim < MIN_EXACT_DIM:
            return float(revealed_scale_delta(epsilon, dim, scale, sensitivity))
        return super()._delta_for_scale(epsilon, dim, sensitivity, scale, sup)

    def privacy_profile(self):
        """Profile for composition: the revealed-scale bound (rigorous for every shift ≤ Δ and
        fast for thousands of ε at once; see :func:`revealed_scale_delta`).

        Returns
        -------
        profile : callable
            ``profile(eps) -> ndarray``: the bound at each ε of the array ``eps`` (at least 1-D).
        """

        def profile(eps: np.ndarray) -> np.ndarray:
            return np.atleast_1d(revealed_scale_delta(eps, self.dim, self.sigma, self.sensitivity))

        return profile

    def claimed(self) -> PrivacyFigure | None:
        """The paper's (ε₀, claimed δ) if built by :meth:`from_paper`, else ``None``.

        Returns
        -------
        figure : PrivacyFigure or None
            Labelled ``"claimed"``; known not to hold for this noise.
        """
        if self.paper is None:
            return None
        return PrivacyFigure(
            self.paper["epsilon0"],
            self.paper["claimed_delta"],
            CLAIMED,
            f"product-noise paper formula (k={self.paper['k']:.6g}, q={self.paper['q']:.6g}); "
            "known not to hold for this noise",
        )

    def warn_if_claim_false(self) -> None:
        """Emit a :class:`PrivacyWarning` stating the true δ at the claimed ε."""
        claim = self.claimed()
        if claim is None:
            return
        true_delta = float(self.delta(claim.epsilon))
        if true_delta > claim.delta:
            warnings.warn(
                f"product noise at the paper's calibration claims (eps={claim.epsilon:g}, "
                f"delta={claim.delta:.3g}) per release, but its verified delta at that epsilon "
                f"is {true_delta:.3g}",
                PrivacyWarning,
                stacklevel=2,
            )

    def _torch_radius(self, generator: torch.Generator | None) -> float:
        import torch

        # exactly as the official code: |N(0,1)| times sigma
        return self.sigma * abs(float(torch.randn((), generator=generator, dtype=torch.float64)))

    def sample(self, size: int | None = None, *, rng: SeedLike = None) -> np.ndarray:
        """Draw ``σ |z| h`` vectors as the official code does.

        Parameters
        ----------
        size : int, optional
            Number of vectors; ``None`` draws one vector of shape ``(M,)``.
        rng : int, SeedSequence, BitGenerator, Generator or None
            Anything :func:`numpy.random.default_rng` accepts.

        Returns
        -------
        noise : ndarray of shape (M,) or (size, M), dtype float64
            Each row has norm ``σ|z|`` (half-normal) and a uniform direction.
        """
        rng = self._rng(rng)
        shape = (self.dim,) if size is None else (size, self.dim)
        g = rng.standard_normal(shape)
        g /= np.linalg.norm(g, axis=-1, keepdims=True)
        z = np.abs(rng.standard_normal(size))
        return self.sigma * (z if size is None else z[:, None]) * g

    def config(self) -> dict[str, Any]:
        """JSON-able parameters that rebuild this mechanism with :func:`from_config`.

        Returns
        -------
        config : dict
            ``name``, ``dim``, ``sensitivity``, ``sigma`` and, if set, :attr:`paper`.
        """
        cfg = super().config()
        if self.paper is not None:
            cfg["paper"] = dict(self.paper)
        return cfg
