"""Exact privacy of spherically symmetric additive noise.

Every mechanism in this package adds noise ``n = R · H`` to a vector query of L2 sensitivity Δ,
where ``H`` is uniform on the unit sphere of R^M and the radius ``R ≥ 0`` is independent of ``H``.
All radii used here belong to the *spherical generalized gamma* (SGG) family
(Wei, Bienstock, Polychroniadou 2026, Def. 4.1)::

    f_R(r) = p β^{(α+1)/p} r^α exp(-β r^p) / Γ((α+1)/p),     i.e.  β R^p ~ Gamma((α+1)/p, 1)

======================  ==========  ===  ===============
noise                   α           p    β
======================  ==========  ===  ===============
Gaussian N(0, σ² I_M)   M − 1       2    1 / (2σ²)
ℓ2 mechanism ∝ e^{-‖x‖/θ}  M − 1    1    1 / θ
product noise σ|z|·h    0           2    1 / (2σ²)
======================  ==========  ===  ===============

Exact privacy profile (the hockey-stick divergence as in Balle & Wang 2018 [1]; Joseph et al. 2025
§3; Wei et al. Lemma 4.1).
Write ``g(ρ) = ln f_R(ρ) − (M−1) ln ρ = −a ln ρ − β ρ^p`` (+ const) with ``a = M − 1 − α ≥ 0``, so
``g`` is non-increasing. For a shift ``v`` of norm ``c``, ``P = law(n + v)`` and ``Q = law(n)``, the
privacy loss at ``n = r H`` with ``u = ⟨H, v⟩ / c`` is::

    L(r, u) = g(r) − g(s),   s = ‖n + v‖ = sqrt(r² + 2 r c u + c²),

increasing in ``u``; ``(1 + u)/2 ~ Beta((M−1)/2, (M−1)/2)``; under ``Q``, ``L`` has the law of
``−L`` under ``P``. Hence the hockey-stick divergence is the one-dimensional integral::

    δ(ε) = P_P[L > ε] − e^ε P_P[L < −ε]
         = ∫ f_R(r) { P[U > u₊(r)] − e^ε P[U < u₋(r)] } dr,     L(r, u±(r)) = ±ε,

with the inner probabilities given by the regularized incomplete beta function. The thresholds
are found in ``w = ln(s/r)``, where ``L = a w + β r^p expm1(p w)``, which avoids cancellation in
``s − r`` at large M.

Numerics: Gauss–Legendre quadrature in ``ln r`` on panels split at quantiles of ``R`` from
``p_cut`` to ``1 − p_cut`` (and at ``ln c``), each panel at most ``hmax`` wide. The radius mass
outside the panels (``2 p_cut``) is *added* to δ, which keeps the result an upper bound up to
quadrature error (the integrand lies in [0, 1]).

Shift norms: DP needs the supremum of δ over shifts ``‖v‖ ≤ Δ``. It is attained at ``‖v‖ = Δ``
for the Gaussian (proved); for other members it is checked on a grid of shift norms by
:meth:`SGG.delta_sup` (a numerical check, not a proof — stated wherever it is used).

References
----------
.. [1] B. Balle and Y.-X. Wang, "Improving the Gaussian mechanism for differential privacy:
       analytical calibration and optimal denoising", ICML 2018.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import special

from ..validation import InputError, check_dimension, check_positive, check_positive_int

__all__ = ["SGG", "DEFAULT_SHIFT_FRACTIONS", "MIN_EXACT_DIM", "uniform_direction"]

#: Smallest dimension at which the one-dimensional privacy integral is resolved: at M = 2, 3 the
#: inner Beta((M−1)/2, (M−1)/2) probabilities have square-root kinks in r that the quadrature
#: does not converge on (0.9% low at M = 2), so :meth:`SGG.delta` refuses them (the Gaussian uses
#: its closed form there).
MIN_EXACT_DIM = 4

#: Shift norms (as fractions of Δ) on which the supremum over shifts is checked.
DEFAULT_SHIFT_FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0)

_P_CUT = 1e-20
_QUANTILE_LEVELS = np.array(
    [1e-16, 1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5]
)
_GL_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _gauss_legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    if order not in _GL_CACHE:
        _GL_CACHE[order] = np.polynomial.legendre.leggauss(order)
    return _GL_CACHE[order]


def uniform_direction(
    rng: np.random.Generator, size: int | None, dim: int, dtype=np.float64
) -> np.ndarray:
    """Directions uniform on the unit sphere of R^dim, shape ``(dim,)`` or ``(size, dim)``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    size : int or None
        Number of directions; ``None`` draws one.
    dim : int
        Dimension of the ambient space.
    dtype : dtype, default float64
        Floating dtype of the draw.

    Returns
    -------
    h : ndarray of shape (dim,) or (size, dim)
        Unit vectors (normalised standard normals).
    """
    shape = (dim,) if size is None else (size, dim)
    g = rng.standard_normal(shape, dtype=dtype)
    norm = np.linalg.norm(g, axis=-1, keepdims=True)
    return g / norm


@dataclass(frozen=True)
class SGG:
    """Spherical generalized-gamma noise law in R^M (radius ``β R^p ~ Gamma((α+1)/p)``).

    Parameters
    ----------
    dim : int
        Dimension M of the noise vector (M ≥ 4 for the exact profile, see
        :data:`MIN_EXACT_DIM`; the Gaussian uses its closed form in any dimension).
    alpha : float
        Radial shape, ``−1 < α ≤ M − 1`` (so that the density is non-increasing in the norm).
    beta : float
        Rate ``β > 0`` (``β R^p ~ Gamma((α+1)/p, 1)``).
    p : float
        Power ``p > 0``.

    Raises
    ------
    ValueError
        If ``β`` or ``p`` is not positive or ``α`` is outside ``(−1, M − 1]``.
    """

    dim: int
    alpha: float
    beta: float
    p: float

    def __post_init__(self) -> None:
        check_dimension(self.dim)
        check_positive("beta", self.beta)
        check_positive("p", self.p)
        if not (-1.0 < self.alpha <= self.dim - 1 + 1e-12):
            raise InputError(
                f"alpha must lie in (-1, M-1] = (-1, {self.dim - 1}] so that the noise density is "
                f"non-increasing in the norm, got {self.alpha}"
            )

    # ------------------------------------------------------------------ radius law
    @property
    def shape(self) -> float:
        """Gamma shape ``(α + 1)/p`` of ``β R^p``."""
        return (self.alpha + 1.0) / self.p

    @property
    def a(self) -> float:
        """``M − 1 − α`` (≥ 0): the weight of ``ln ρ`` in ``−g(ρ)``."""
        return max(self.dim - 1.0 - self.alpha, 0.0)

    def radius_ppf(self, q: np.ndarray, *, upper: bool = False) -> np.ndarray:
        """Quantile of R at lower-tail probability ``q`` (upper-tail if ``upper``).

        Parameters
        ----------
        q : array_like
            Probabilities in [0, 1], any shape.
        upper : bool, default False
            Treat ``q`` as upper-tail probabilities ``P[R > r]``.

        Returns
        -------
        r : ndarray
            Radii (norms), with the shape of ``q``.
        """
        q = np.asarray(q, dtype=float)
        y = special.gammainccinv(self.shape, q) if upper else special.gammaincinv(self.shape, q)
        return (y / self.beta) ** (1.0 / self.p)

    def radius_cdf(self, r: np.ndarray) -> np.ndarray:
        """``P[R ≤ r]``.

        Parameters
        ----------
        r : array_like
            Radii ≥ 0, any shape.

        Returns
        -------
        cdf : ndarray
            Probabilities, with the shape of ``r``.
        """
        return special.gammainc(self.shape, self.beta * np.asarray(r, dtype=float) ** self.p)

    def radius_logpdf(self, r: np.ndarray) -> np.ndarray:
        """``ln f_R(r)``, the log density of the radius.

        Parameters
        ----------
        r : array_like
            Radii > 0, any shape.

        Returns
        -------
        logpdf : ndarray
            Log densities, with the shape of ``r``.
        """
        r = np.asarray(r, dtype=float)
        k = self.shape
        return (
            math.log(self.p)
            + k * math.log(self.beta)
            + self.alpha * np.log(r)
            - self.beta * r**self.p
            - special.gammaln(k)
        )

    def sample_radius(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """Draw radii ``R = (Y/β)^{1/p}`` with ``Y ~ Gamma((α+1)/p, 1)``.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness.
        size : int, optional
            Number of radii; ``None`` draws one.

        Returns
        -------
        r : float or ndarray of shape (size,)
            Noise norms.
        """
        y = rng.gamma(self.shape, 1.0, size=size)
        return (y / self.beta) ** (1.0 / self.p)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """Noise vectors, shape ``(M,)`` or ``(size, M)``.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness.
        size : int, optional
            Number of vectors; ``None`` draws one.

        Returns
        -------
        noise : ndarray of shape (M,) or (size, M), dtype float64
            Radius times a uniform direction.
        """
        r = self.sample_radius(rng, size)
        h = uniform_direction(rng, size, self.dim)
        return h * (r if size is None else np.asarray(r)[:, None])

    @property
    def expected_norm(self) -> float:
        """``E‖n‖ = β^{-1/p} Γ((α+2)/p) / Γ((α+1)/p)``."""
        return float(
            np.exp(
                special.gammaln((self.alpha + 2) / self.p)
                - special.gammaln(self.shape)
                - math.log(self.beta) / self.p
            )
        )

    @property
    def expected_sq_norm(self) -> float:
        """``E‖n‖² = β^{-2/p} Γ((α+3)/p) / Γ((α+1)/p)``."""
        return float(
            np.exp(
                special.gammaln((self.alpha + 3) / self.p)
                - special.gammaln(self.shape)
                - 2 * math.log(self.beta) / self.p
            )
        )

    @property
    def is_gaussian(self) -> bool:
        return self.p == 2.0 and abs(self.alpha - (self.dim - 1)) < 1e-12

    @property
    def shift_monotone_proven(self) -> bool:
        """Whether δ is known to be largest at the full shift ‖v‖ = Δ (Gaussian only)."""
        return self.is_gaussian

    def scaled(self, factor: float) -> SGG:
        """The law of ``factor · n``.

        Parameters
        ----------
        factor : float
            Positive scale factor.

        Returns
        -------
        law : SGG
            Same ``α`` and ``p``, ``β · factor^{−p}``.
        """
        return SGG(self.dim, self.alpha, self.beta * factor ** (-self.p), self.p)

    # ------------------------------------------------------------------ privacy loss
    def _log_ratio_threshold(self, rp: np.ndarray, target: float | np.ndarray) -> np.ndarray:
        """Solve ``a w + β r^p expm1(p w) = target`` for ``w`` (elementwise, broadcasting
        ``rp = r^p`` against ``target``; all targets must have the same sign).

        Returns ``-inf`` where no solution exists (the loss never gets that low).
        """
        target = np.asarray(target, dtype=float)
        rp = np.broadcast_to(rp, np.broadcast_shapes(rp.shape, target.shape))
        a, b, p = self.a, self.beta, self.p
        brp = b * rp
        if a == 0.0:
            arg = 1.0 + target / brp
            with np.errstate(divide="ignore", invalid="ignore"):
                w = np.where(arg > 0, np.log1p(np.where(arg > 0, target / brp, 0.0)) / p, -np.inf)
            return w
        # bracket: for target >= 0, w in [0, min(target/a, log1p(target/brp)/p)];
        # for target < 0, w in [max(target/a, log(1 + target/brp)/p), 0].
        if np.all(target >= 0):
            lo = np.zeros_like(rp)
            hi = np.minimum(target / a, np.log1p(target / brp) / p)
        else:
            hi = np.zeros_like(rp)
            arg = 1.0 + target / brp
            with np.errstate(divide="ignore", invalid="ignore"):
                w0 = np.where(arg > 0, np.log(np.where(arg > 0, arg, 1.0)) / p, -np.inf)
            lo = np.maximum(target / a, w0)
        w = 0.5 * (lo + hi)
        # safeguarded Newton: monotone increasing, convex in w
        for _ in range(100):
            f = a * w + brp * np.expm1(p * w) - target
            fp = a + brp * p * np.exp(p * w)
            lo = np.where(f < 0, w, lo)
            hi = np.where(f > 0, w, hi)
            w_new = w - f / fp
            bad = ~((w_new > lo) & (w_new < hi))
            w_new = np.where(bad, 0.5 * (lo + hi), w_new)
            if np.all(np.abs(w_new - w) <= 1e-15 * np.maximum(np.abs(w), 1e-300)):
                w = w_new
                break
            w = w_new
        return w

    def privacy_loss(self, r: np.ndarray, u: np.ndarray, shift: float) -> np.ndarray:
        """``L(r, u) = g(r) − g(s)`` for the pair (n + v, n) with ‖v‖ = ``shift``.

        Parameters
        ----------
        r : array_like
            Noise norms ``‖n‖ > 0``.
        u : array_like
            Cosines ``⟨H, v⟩/‖v‖`` in [−1, 1], broadcast against ``r``.
        shift : float
            Shift norm ``‖v‖``.

        Returns
        -------
        loss : ndarray
            Privacy loss at each ``(r, u)``, broadcast shape of ``r`` and ``u``.
        """
        r = np.asarray(r, dtype=float)
        x = shift * (2.0 * r * np.asarray(u, dtype=float) + shift)
        lg = np.log1p(x / r**2)  # ln(s²/r²) = 2w
        return 0.5 * self.a * lg + self.beta * r**self.p * np.expm1(0.5 * self.p * lg)

    def _panels(self, shift: float, hmax: float) -> np.ndarray:
        lo_q = _QUANTILE_LEVELS
        r_lo = self.radius_ppf(np.concatenate([[_P_CUT], lo_q]))
        r_hi = self.radius_ppf(np.concatenate([[_P_CUT], lo_q[:-1]]), upper=True)
        pts = np.log(np.concatenate([r_lo, r_hi]))
        lo_end, hi_end = pts.min(), pts.max()
        extra = [math.log(shift)]
        pts = np.concatenate([pts, [e for e in extra if lo_end < e < hi_end]])
        pts = np.unique(pts[np.isfinite(pts)])
        out = [pts[0]]
        for b in pts[1:]:
            n = max(1, int(math.ceil((b - out[-1]) / hmax)))
            out.extend(np.linspace(out[-1], b, n + 1)[1:])
        return np.asarray(out)

    def _nodes(self, shift: float, hmax: float, order: int) -> tuple[np.ndarray, np.ndarray]:
        edges = self._panels(shift, hmax)
        x, w = _gauss_legendre(order)
        left, right = edges[:-1, None], edges[1:, None]
        half = 0.5 * (right - left)
        t = (left + half * (x[None, :] + 1.0)).ravel()
        wt = (half * w[None, :]).ravel()
        r = np.exp(t)
        # density of ln R: f_R(r) * r
        dens = np.exp(self.radius_logpdf(r) + t)
        return r, wt * dens

    def delta(
        self,
        epsilon: float | Sequence[float] | np.ndarray,
        shift: float = 1.0,
        *,
        hmax: float = 0.5,
        order: int = 24,
    ) -> np.ndarray | float:
        """Exact hockey-stick divergence δ(ε) at one shift norm (vectorised over ε ≥ 0).

        The result is an upper bound up to quadrature error (truncated radius mass is added).

        Parameters
        ----------
        epsilon : float, sequence of float or ndarray
            ε ≥ 0 (finite).
        shift : float, default 1.0
            Shift norm ``‖v‖ > 0``.
        hmax : float, default 0.5
            Largest panel width in ``ln r`` (tightened to 0.05 for M < 10).
        order : int, default 24
            Gauss–Legendre order per panel (at least 48 for M < 10).

        Returns
        -------
        delta : float or ndarray of shape (n_eps,)
            δ at each ε, a float for scalar ``epsilon``.

        Raises
        ------
        ValueError
            If an ε is negative or not finite, or M < :data:`MIN_EXACT_DIM` for a non-Gaussian
            law.
        """
        check_positive("shift", shift)
        if self.dim < MIN_EXACT_DIM:
            if self.is_gaussian:
                return self._gaussian_delta(epsilon, shift)
            raise InputError(
                f"the exact spherical privacy profile is resolved only for M >= {MIN_EXACT_DIM} "
                f"(got {self._describe}): at M = 2, 3 its quadrature does not converge. Use "
                "Gaussian noise (closed form) or product noise (its revealed-scale bound is "
                "exact in every dimension) for fewer than 4 values"
            )
        eps_arr = np.atleast_1d(np.asarray(epsilon, dtype=float))
        if np.any(eps_arr < 0) or np.any(~np.isfinite(eps_arr)):
            raise ValueError("epsilon must be finite and >= 0 for the privacy profile")
        if self.dim < 10:
            hmax, order = min(hmax, 0.05), max(order, 48)
        r, w = self._nodes(shift, hmax, order)
        rp = r**self.p
        h = 0.5 * (self.dim - 1.0)
        out = np.empty_like(eps_arr)
        r2, two_rs = r**2, 2.0 * r * shift
        chunk = max(1, 2**20 // max(len(r), 1))
        for i in range(0, len(eps_arr), chunk):
            e = eps_arr[i : i + chunk, None]
            wp = self._log_ratio_threshold(rp[None, :], e)
            u_p = (r2 * np.expm1(2.0 * wp) - shift**2) / two_rs
            upper = special.betainc(h, h, np.clip(0.5 * (1.0 - u_p), 0.0, 1.0)) @ w
            wm = self._log_ratio_threshold(rp[None, :], -e)
            with np.errstate(over="ignore", invalid="ignore"):
                u_m = np.where(
                    np.isfinite(wm), (r2 * np.expm1(2.0 * wm) - shift**2) / two_rs, -np.inf
                )
            lower = special.betainc(h, h, np.clip(0.5 * (1.0 + u_m), 0.0, 1.0)) @ w
            # e^ε · P[L < −ε] in log space: exp(ε) overflows for ε > 709 (epsilon() probes 1e4)
            with np.errstate(divide="ignore"):
                log_term = e[:, 0] + np.log(np.maximum(lower, 0.0))
            term = np.where(log_term < 700.0, np.exp(np.minimum(log_term, 700.0)), np.inf)
            val = upper - term + 2.0 * _P_CUT
            out[i : i + chunk] = np.clip(val, 0.0, 1.0)
        if np.ndim(epsilon) == 0:
            return float(out[0])
        return out

    def _gaussian_delta(
        self, epsilon: float | Sequence[float] | np.ndarray, shift: float
    ) -> np.ndarray | float:
        """The Gaussian's closed form at μ = shift/σ (Gaussian laws only)."""
        from .gaussian import gaussian_delta  # gaussian.py imports this module

        eps = np.asarray(epsilon, dtype=float)
        if np.any(eps < 0) or np.any(~np.isfinite(eps)):
            raise ValueError("epsilon must be finite and >= 0 for the privacy profile")
        return gaussian_delta(eps, shift * math.sqrt(2.0 * self.beta))

    def delta_sup(
        self,
        epsilon: float | Sequence[float] | np.ndarray,
        sensitivity: float = 1.0,
        fractions: Sequence[float] = DEFAULT_SHIFT_FRACTIONS,
        **kw,
    ) -> np.ndarray | float:
        """Maximum of :meth:`delta` over shift norms ``f · Δ`` for ``f`` in ``fractions``.

        For the Gaussian the full shift is provably the worst case and only it is evaluated.
        For other laws this is a numerical check over a grid, not a proof.

        Parameters
        ----------
        epsilon : float, sequence of float or ndarray
            ε ≥ 0 (finite).
        sensitivity : float, default 1.0
            Δ, the largest shift norm.
        fractions : sequence of float, default DEFAULT_SHIFT_FRACTIONS
            Shift norms as fractions of Δ.
        **kw
            Passed to :meth:`delta` (``hmax``, ``order``).

        Returns
        -------
        delta : float or ndarray of shape (n_eps,)
            The largest δ over the shifts, a float for scalar ``epsilon``.
        """
        if self.shift_monotone_proven:
            return self.delta(epsilon, sensitivity, **kw)
        vals = [np.atleast_1d(self.delta(epsilon, f * sensitivity, **kw)) for f in fractions]
        out = np.max(np.vstack(vals), axis=0)
        return float(out[0]) if np.ndim(epsilon) == 0 else out

    def delta_monte_carlo(
        self,
        epsilon: float,
        shift: float = 1.0,
        *,
        num_samples: int = 1_000_000,
        rng: np.random.Generator | None = None,
        batch: int = 1_000_000,
    ) -> tuple[float, float]:
        """Monte Carlo estimate of δ(ε) (mean, standard error), for cross-checks in tests.

        Samples ``(r, u)`` directly (``u = 2 Beta((M−1)/2, (M−1)/2) − 1``) and averages
        ``(1 − e^{ε − L})₊`` under ``P``.

        Parameters
        ----------
        epsilon : float
            ε ≥ 0.
        shift : float, default 1.0
            Shift norm.
        num_samples : int, default 1_000_000
            Number of Monte Carlo samples.
        rng : numpy.random.Generator, optional
            Source of randomness; default a fresh generator.
        batch : int, default 1_000_000
            Samples per vectorised batch (memory only).

        Returns
        -------
        mean : float
            Estimate of δ(ε).
        stderr : float
            Its standard error.
        """
        check_positive_int("num_samples", num_samples)
        rng = np.random.default_rng() if rng is None else rng
        h = 0.5 * (self.dim - 1.0)
        total = 0.0
        total_sq = 0.0
        n_done = 0
        while n_done < num_samples:
            n = min(batch, num_samples - n_done)
            r = self.sample_radius(rng, n)
            u = 2.0 * rng.beta(h, h, size=n) - 1.0
            loss = self.privacy_loss(r, u, shift)
            with np.errstate(over="ignore"):
                vals = -np.expm1(np.minimum(epsilon - loss, 0.0))
            total += vals.sum()
            total_sq += (vals**2).sum()
            n_done += n
        mean = total / n_done
        var = max(total_sq / n_done - mean**2, 0.0)
        return float(mean), float(math.sqrt(var / n_done))

    @cached_property
    def _describe(self) -> str:
        return f"SGG(M={self.dim}, alpha={self.alpha:g}, beta={self.beta:.6g}, p={self.p:g})"
