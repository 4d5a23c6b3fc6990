"""Noise for ERM: the CMS11 Gamma-norm law, and the calibration of any core mechanism for output
perturbation and for objective perturbation.

Which noises
------------
``noise=`` is resolved when it is used (:func:`resolve_noise`), from the registry's ``erm``
names (:func:`noise_choices`, live: a mechanism registered after import works) or a
:class:`~product_noise.mechanisms.base.ScaledMechanism` subclass. Output perturbation is generic:
a verified class is calibrated by its own ``calibrate`` (exact profile of a spherical law, or a
user's proven profile); a sampler-only (*unverified*) class is scaled by its user's claim, else
at the verified Gaussian's σ for the same target, and gets no verified figure. Objective
perturbation (and AMP's objective part) needs the density of a spherical law (below), so it
takes :class:`~product_noise.mechanisms.base.SphericalMechanism` classes only — a user's radial
law among them — and refuses other laws (:func:`check_noise_for_method`).

Objective perturbation with general spherical noise (verified bound)
--------------------------------------------------------------------
The perturbed problem ``min J_D(θ) + bᵀθ`` (``b`` in the units of the averaged objective) has the
unique solution θ with ``b = B_D(θ) := −∇J_D(θ)``. For a GLM and one replaced record,
``B_{D'}(θ) − B_D(θ) = v(θ)`` lies in the **fixed** 2-dimensional span ``S`` of the two differing
records, with ``‖v‖ ≤ s_b`` (``s_b = 2R`` for CMS11's ``bᵀθ/n``, ``2R/n`` for AMP's ``b₁ᵀθ``). For
noise of density ``∝ exp(g(‖b‖))`` with ``g`` non-increasing, the privacy loss at output θ is

    L(θ) = g(‖b‖) − g(‖b + v‖) + log det-ratio
         ≤ J + g(r) − g(√(r² + 2 s_b r ς + s_b²)) =: J + L*(r, ς),

where ``r = ‖b‖``, ``ς = ‖P_S b‖/‖b‖`` (``ς² ~ Beta(1, (M−2)/2)``, independent of ``r``) and
``J`` is the Jacobian bound. Hence, with ``b ~`` noise under D,

    δ(ε) ≤ E[(1 − e^{ε − J − L*(r, ς)})₊],

a two-dimensional integral computed by quadrature (:func:`objective_delta`); the same bound holds
with D and D' swapped. For the Gaussian ``L* = μ χ₂ + μ²/2`` (``μ = s_b/σ``) and the integral has a
closed form (:func:`objective_delta_gaussian`, used as a check); for the Gamma-norm law
``L* ≤ s_b β``, which is CMS11's pure-ε argument. Iyengar et al.'s σ satisfies this bound.

References
----------
.. [1] K. Chaudhuri, C. Monteleoni and A. D. Sarwate, "Differentially private empirical risk
       minimization", Journal of Machine Learning Research 12, 2011.
.. [2] R. Iyengar, J. P. Near, D. Song, O. Thakkar, A. Thakurta and L. Wang, "Towards practical
       differentially private convex optimization", IEEE S&P 2019.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from ..accounting.calibrate import (
    MAX_EPSILON,
    GrowingBracket,
    NoBracketFoundError,
    invert_profile,
    smallest_scale,
)
from ..mechanisms import GammaNorm, Gaussian, Mechanism, ProductNoise, calibrate
from ..mechanisms.base import ScaledMechanism, SphericalMechanism
from ..mechanisms.custom import MATCHED_TO_GAUSSIAN
from ..mechanisms.product import claimed_delta, paper_t
from ..mechanisms.registry import REGISTRY, mechanism_names, mechanism_specs
from ..mechanisms.spherical import SGG
from ..privacy import CLAIMED, UNVERIFIED, VERIFIED, PrivacyFigure, PrivacyWarning
from ..validation import InputError, check_delta, check_dimension, check_epsilon, check_positive
from .objective import amp_iyengar_sigma

__all__ = [
    "GammaNorm",
    "NOISES",
    "ErmNoise",
    "noise_choices",
    "resolve_noise",
    "check_noise_for_method",
    "output_noise",
    "unverified_reason",
    "objective_noise",
    "objective_delta",
    "objective_delta_gaussian",
    "objective_epsilon",
    "release_figures",
]

#: the package's own ERM noises (built-in, import time); what the estimators accept is the live
#: :func:`noise_choices`, which includes mechanisms registered later
NOISES: tuple[str, ...] = tuple(s.name for s in mechanism_specs("erm") if s.builtin)
#: the methods whose noise enters the objective (they need the noise's density)
OBJECTIVE_METHODS = ("objective", "amp")

_P_CUT = 1e-20
_V_MIN = 1e-30


def noise_choices() -> tuple[str, ...]:
    """The noise names the ERM estimators accept now: the registry's ``erm`` consumer.

    Read at each call, so a mechanism registered after import (:func:`register_mechanism`) is
    included.

    Returns
    -------
    names : tuple of str
        Registry names in registration order (aliases, e.g. dash spellings, are accepted too).
    """
    return mechanism_names("erm")


class ErmNoise(NamedTuple):
    """A resolved ``noise=``: its registry name, its class and the label of its calibration."""

    #: registry name (or the class' own ``name`` for an unregistered class)
    name: str
    #: the mechanism class
    cls: type[Mechanism]
    #: ``verified``, ``claimed`` (a built-in formula) or ``unverified`` (a sampler only)
    calibration: str


def resolve_noise(noise: object) -> ErmNoise:
    """Resolve an estimator's ``noise``: a registered name or alias, or a mechanism class.

    Parameters
    ----------
    noise : str or type of ScaledMechanism
        A name (or alias) registered for the ``erm`` consumer, or a
        :class:`~product_noise.mechanisms.base.ScaledMechanism` subclass (registered or not; its
        calibration label follows its :attr:`~ScaledMechanism.provable`).

    Returns
    -------
    resolved : ErmNoise
        Name, class and calibration label.

    Raises
    ------
    InputError
        An unknown name, a name not offered to ERM, an instance, or another type.
    """
    if isinstance(noise, str):
        if noise in REGISTRY:
            spec = REGISTRY.get(noise)
            if "erm" in spec.consumers:
                return ErmNoise(spec.name, spec.load(), spec.calibration)
        raise InputError(f"noise must be one of {', '.join(noise_choices())}; got {noise!r}")
    if isinstance(noise, type) and issubclass(noise, ScaledMechanism):
        for spec in mechanism_specs("erm"):
            if spec.calibration != CLAIMED and spec.mechanism is noise:
                return ErmNoise(spec.name, noise, spec.calibration)
        return ErmNoise(noise.name, noise, VERIFIED if noise.provable else UNVERIFIED)
    if isinstance(noise, Mechanism):
        raise InputError(
            f"noise must be a mechanism name or class, not an instance ({noise!r}): the "
            "estimator calibrates the scale for its own epsilon, delta and sensitivity"
        )
    raise InputError(
        f"noise must be one of {', '.join(noise_choices())} or a ScaledMechanism subclass; "
        f"got {noise!r}"
    )


def _spherical_only(method: str, resolved: ErmNoise) -> None:
    """Refuse a non-spherical law for a method whose privacy proof needs its density."""
    if issubclass(resolved.cls, SphericalMechanism):
        return
    has = (
        "only a sampler"
        if resolved.calibration == UNVERIFIED
        else "a sampler and a privacy profile, no radial law"
    )
    raise InputError(
        f"method={method!r} needs a spherically symmetric noise law with a known density (its "
        "privacy loss is a density ratio at a data-dependent shift, which a privacy profile "
        f"does not bound); mechanism {resolved.name!r} has {has}: use method='output' or "
        "'ppssgd', or register the law with radial="
    )


def check_noise_for_method(noise: object, method: str, params: dict[str, Any] | None) -> ErmNoise:
    """Resolve ``noise`` and check it can serve ``method`` with ``params`` (before any fit).

    Parameters
    ----------
    noise : str or type of ScaledMechanism
        As :func:`resolve_noise`.
    method : str
        The estimator's method (``output``, ``objective``, ``amp``, ``ppssgd``).
    params : dict or None
        The estimator's ``noise_params`` (only the built-in claimed formulas take any).

    Returns
    -------
    resolved : ErmNoise
        As :func:`resolve_noise`.

    Raises
    ------
    InputError
        An unknown noise; ``noise_params`` for a mechanism without parameters; a noise law
        without a density for ``objective``/``amp``.
    """
    resolved = resolve_noise(noise)
    if params and not _is_builtin(resolved):
        raise InputError(
            f"noise_params are for the built-in formulas; mechanism {resolved.name!r} takes "
            f"none, got {sorted(params)}"
        )
    if method in OBJECTIVE_METHODS:
        _spherical_only(method, resolved)
    return resolved


def _is_builtin(resolved: ErmNoise) -> bool:
    return resolved.name in REGISTRY and REGISTRY.get(resolved.name).builtin


# ------------------------------------------------------------------------- output perturbation
def output_noise(
    name: str | type[ScaledMechanism],
    epsilon: float,
    delta: float,
    dim: int,
    sensitivity: float,
    params: dict[str, Any] | None = None,
) -> Mechanism:
    """The mechanism added to a query of L2 sensitivity ``sensitivity`` for target (ε, δ).

    A verified class (``gaussian``, ``product``, ``l2``, a user's radial law or proven profile)
    is its own least-noise member (its ``calibrate``); ``classic_gaussian`` is Dwork–Roth's σ
    (claimed; warns for ε ≥ 1); ``product_paper`` is the paper's ``σ = Δ t/ε`` with ``k`` from
    ``params`` (default ``k = 1000``, as the official ERM code); ``gamma`` is pure ε-DP (δ
    unused). An unverified sampler is scaled by its user's claim when it has one, else at the
    verified Gaussian's σ for the same target (:data:`MATCHED_TO_GAUSSIAN`), with a
    :class:`PrivacyWarning` either way (:func:`unverified_reason` says which).

    Parameters
    ----------
    name : str or type of ScaledMechanism
        A name of :func:`noise_choices` (or an alias), or a mechanism class.
    epsilon : float
        Target ε > 0.
    delta : float
        Target δ in (0, 1) (checked but unused for ``gamma``).
    dim : int
        Number of model coordinates M.
    sensitivity : float
        L2 sensitivity Δ of the released vector (e.g. :func:`output_sensitivity`).
    params : dict, optional
        Extra keyword arguments of the family's calibration (``k``, ``q``, ``target_delta`` for
        ``product_paper``); must be empty otherwise.

    Returns
    -------
    mechanism : Mechanism
        The calibrated noise.

    Raises
    ------
    InputError
        If ``name`` is unknown or an argument is out of range.
    TypeError
        If ``params`` are given to a family without parameters.

    Warns
    -----
    PrivacyWarning
        For an unverified mechanism: nothing about its privacy is proven.
    """
    resolved = resolve_noise(name)
    params = dict(params or {})
    if resolved.calibration == CLAIMED:
        if resolved.name == "product_paper" and "k" not in params and "target_delta" not in params:
            params["k"] = 1000.0
        return calibrate(resolved.name, epsilon, delta, dim, sensitivity, **params)
    if params:
        raise TypeError(f"unexpected noise_params for {resolved.name!r}: {sorted(params)}")
    cls: type[ScaledMechanism] = resolved.cls  # type: ignore[assignment]
    if resolved.calibration != UNVERIFIED:
        return cls.calibrate(epsilon, delta, dim, sensitivity)
    if getattr(cls, "claim", None) is not None:
        mech = cls.calibrate(epsilon, delta, dim, sensitivity)
    else:
        sigma = Gaussian.calibrate_scale(epsilon, delta, dim, sensitivity)
        mech = cls(dim, sigma, sensitivity)
    warnings.warn(
        f"unverified output noise: {unverified_reason(mech)}",
        PrivacyWarning,
        stacklevel=2,
    )
    return mech


def unverified_reason(mech: Mechanism) -> str:
    """Why ``mech`` (an unverified mechanism) has no verified figure, and how it was scaled.

    Parameters
    ----------
    mech : Mechanism
        A member of a class with ``provable = False``.

    Returns
    -------
    reason : str
        One line for :attr:`~product_noise.privacy.PrivacyReport.unverified`.
    """
    how = (
        "scaled by its user's claimed formula (unproven)"
        if mech.claimed() is not None
        else MATCHED_TO_GAUSSIAN
    )
    return (
        f"mechanism {mech.name!r} is a sampler without a proven privacy profile; {how} "
        f"({mech.describe()}); audit it for an empirical lower bound"
    )


def release_figures(mech: Mechanism, epsilon: float, delta: float) -> tuple[PrivacyFigure, ...]:
    """(claimed, verified) figures of one release of ``mech`` (a provable mechanism).

    The claim is the mechanism's own (classic Gaussian, paper formula, Gamma pure) or, for a
    verified calibration, the target it was calibrated to. The verified figure is ε at the
    claimed δ from the exact profile (δ at ε for a pure claim).

    Parameters
    ----------
    mech : Mechanism
        The released noise.
    epsilon, delta : float
        The calibration target, used as the claim when ``mech`` has none.

    Returns
    -------
    claimed : PrivacyFigure
        Labelled ``"claimed"``.
    verified : PrivacyFigure
        Labelled ``"verified"``.

    Raises
    ------
    UnverifiedError
        If ``mech`` is unverified (it has no verified figure; see :func:`unverified_reason`).
    """
    claim = mech.claimed()
    if claim is None:
        claim = PrivacyFigure(
            float(epsilon), float(delta), CLAIMED, f"target of verified calibration of {mech}"
        )
    if isinstance(mech, GammaNorm):
        return claim, mech.pure_figure()
    if claim.delta <= 0.0 or claim.delta >= 1.0:
        return claim, mech.verified(epsilon=claim.epsilon)
    return claim, mech.verified(delta=claim.delta)


# ------------------------------------------------------------------------- objective perturbation
def _law_of(mech: Mechanism) -> SGG:
    if not isinstance(mech, SphericalMechanism):
        raise InputError(
            f"objective perturbation needs a spherically symmetric law with a known density; "
            f"mechanism {mech.name!r} has no radial law"
        )
    return mech.law


def objective_delta(
    law: SGG,
    shift: float,
    epsilon: float | np.ndarray,
    jacobian: float = 0.0,
    *,
    hmax: float = 0.5,
    order: int = 24,
    inner_order: int = 48,
) -> float | np.ndarray:
    """Verified bound on δ(ε) of objective perturbation with spherical noise of radial law ``law``.

    See the module docstring. ``shift`` is the bound on the change of the noise vector between
    neighbours (the change lies in a fixed 2-dimensional subspace), ``jacobian`` the bound ``J``
    on the log-determinant ratio. Truncated probability mass (``2·10⁻²⁰`` of the radius,
    ``10⁻³⁰`` of ``ς``) is added, so the value is an upper bound up to quadrature error.

    Parameters
    ----------
    law : SGG
        Radial law of the noise vector ``b`` (at its actual scale).
    shift : float
        ``s_b > 0``, bound on the norm of the change of ``b`` between neighbours.
    epsilon : float or ndarray
        ε (finite), a scalar or a 1-D array.
    jacobian : float, default 0.0
        ``J``, the bound on the log-determinant ratio.
    hmax : float, default 0.5
        Largest panel width in ``ln r`` of the outer quadrature.
    order : int, default 24
        Gauss–Legendre order per outer panel.
    inner_order : int, default 48
        Gauss–Legendre order of the inner integral over ``ς``.

    Returns
    -------
    delta : float or ndarray of shape (n_eps,)
        The bound at each ε, a float for scalar ``epsilon``.

    Raises
    ------
    ValueError
        If an ε is not finite or ``shift <= 0``.
    """
    check_positive("shift", shift)
    eps_arr = np.atleast_1d(np.asarray(epsilon, dtype=float))
    if np.any(~np.isfinite(eps_arr)):
        raise ValueError("epsilon must be finite")
    m = law.dim
    if m < 10:
        hmax, order = min(hmax, 0.05), max(order, 48)
    r, wr = law._nodes(shift, hmax, order)
    rp = r**law.p
    x, wx = np.polynomial.legendre.leggauss(inner_order)
    k = 0.5 * (m - 2.0)
    out = np.empty_like(eps_arr)
    for i, e in enumerate(eps_arr):
        en = e - jacobian
        if m <= 2:
            loss = law.privacy_loss(r, np.ones_like(r), shift)
            with np.errstate(over="ignore"):
                inner = np.clip(-np.expm1(en - loss), 0.0, 1.0)
            out[i] = min(float(np.dot(wr, inner)) + 2 * _P_CUT, 1.0)
            continue
        if en > 0:
            w = law._log_ratio_threshold(rp, en)
            s_star = (r**2 * np.expm1(2.0 * w) - shift**2) / (2.0 * r * shift)
            s_star = np.clip(np.nan_to_num(s_star, nan=1.0, posinf=1.0), 0.0, 1.0)
        else:
            s_star = np.zeros_like(r)
        # tail variable v = P(ς > s) = (1 − s²)^k = e^{−τ²}; integrate over τ in [τ*, τ_max]
        # (τ removes the square-root endpoint singularity of s at v = 1)
        with np.errstate(divide="ignore"):
            log_vstar = k * np.log1p(-(s_star**2))
        tau_max = math.sqrt(-math.log(_V_MIN))
        tau_lo = np.sqrt(np.clip(-log_vstar, 0.0, tau_max**2))
        half = 0.5 * (tau_max - tau_lo)
        tau = tau_lo[:, None] + half[:, None] * (x[None, :] + 1.0)  # (n_r, inner)
        sig = np.sqrt(np.clip(-np.expm1(-(tau**2) / k), 0.0, 1.0))
        loss = law.privacy_loss(r[:, None], sig, shift)
        with np.errstate(over="ignore"):
            phi = np.clip(-np.expm1(en - loss), 0.0, 1.0)
        inner = half * ((phi * 2.0 * tau * np.exp(-(tau**2))) @ wx)
        out[i] = min(float(np.dot(wr, inner)) + 2 * _P_CUT + _V_MIN, 1.0)
    return float(out[0]) if np.ndim(epsilon) == 0 else out


def objective_delta_gaussian(
    epsilon: float, sigma: float, shift: float, jacobian: float = 0.0
) -> float:
    """Closed form of :func:`objective_delta` for Gaussian noise (``L* = μχ₂ + μ²/2``).

    ``δ = e^{−a²/2} − e^{ε'} [e^{−(a+μ)²/2} − μ√(2π) Φ(−(a+μ))]``, ``ε' = ε − J``,
    ``a = max(0, (ε' − μ²/2)/μ)``.

    Parameters
    ----------
    epsilon : float
        ε.
    sigma : float
        Per-coordinate standard deviation σ of the Gaussian noise.
    shift : float
        ``s_b``, bound on the change of the noise vector (``μ = s_b/σ``).
    jacobian : float, default 0.0
        ``J``, the bound on the log-determinant ratio.

    Returns
    -------
    delta : float
        The bound, clipped to [0, 1].
    """
    mu = shift / sigma
    en = epsilon - jacobian
    a = max(0.0, (en - mu * mu / 2.0) / mu)
    b = a + mu
    tail = math.exp(-b * b / 2.0) - mu * math.sqrt(2 * math.pi) * special.ndtr(-b)
    return float(min(max(math.exp(-a * a / 2.0) - math.exp(en) * tail, 0.0), 1.0))


def objective_epsilon(
    mech: SphericalMechanism, shift: float, delta: float, jacobian: float = 0.0
) -> float:
    """Smallest ε with :func:`objective_delta` ≤ ``delta`` (``inf`` if none up to MAX_EPSILON).

    Parameters
    ----------
    mech : SphericalMechanism
        The objective noise (its :attr:`~SphericalMechanism.law` is used).
    shift : float
        ``s_b``, bound on the change of the noise vector.
    delta : float
        Target δ > 0.
    jacobian : float, default 0.0
        ``J``; the search starts at ε = J.

    Returns
    -------
    epsilon : float
        The verified ε of the objective-perturbation step (≥ ``jacobian``), or ``inf``.
    """
    law = _law_of(mech)
    # ε below the Jacobian term J is never met: the search starts at J (J + 1, J + 2, J + 4, …)
    return invert_profile(
        lambda e: objective_delta(law, shift, e, jacobian),
        delta,
        lower=jacobian,
        max_epsilon=MAX_EPSILON,
    )


def _calibrate_objective_scale(
    cls: type[SphericalMechanism],
    epsilon: float,
    delta: float,
    dim: int,
    shift: float,
    jacobian: float,
) -> float:
    """Smallest scale with ``objective_delta(ε) ≤ δ`` (Brent search on the log-scale, safe end)."""
    unit = cls(dim, 1.0, shift).law

    def delta_of(scale: float) -> float:
        return float(objective_delta(unit.scaled(scale), shift, epsilon, jacobian))

    five = math.exp(5.0)
    bracket = GrowingBracket(
        shift / five, shift * five, factor=five, max_value=shift * math.exp(200.0)
    )
    try:
        return smallest_scale(delta_of, delta, bracket)
    except NoBracketFoundError as err:
        raise NoBracketFoundError("no finite noise scale reaches this (epsilon, delta)") from err


def objective_noise(
    name: str | type[ScaledMechanism],
    epsilon: float,
    delta: float,
    dim: int,
    shift: float,
    jacobian: float,
    params: dict[str, Any] | None = None,
) -> tuple[SphericalMechanism, PrivacyFigure]:
    """The objective-perturbation noise for total budget (ε, δ) of this part, and its claim.

    The noise itself gets ``ε − J`` (``J`` = Jacobian bound already paid by the regulariser).

    * ``gamma``: ``β = (ε − J)/shift`` — CMS11's pure ε-DP (claim (ε, 0));
    * ``classic_gaussian``: Iyengar et al.'s ``σ = shift (1 + √(2 ln(1/δ)))/(ε − J)``
      (claim (ε, δ));
    * ``product_paper``: the paper's ``σ = shift · t/(ε − J)`` (``k`` default 1000), claim
      ``(ε, paper δ(ε − J))``, as the official AMP code;
    * any other spherical law (``gaussian``, ``l2``, ``product``, a user's radial law): least
      scale whose :func:`objective_delta` ≤ δ at ε.

    A law without a radial density (a user's sampler, with or without a profile) is refused:
    the bound of the module docstring needs the density.

    Parameters
    ----------
    name : str or type of ScaledMechanism
        A name of :func:`noise_choices` (or an alias), or a mechanism class.
    epsilon : float
        Budget ε > 0 of the objective part (including ``J``).
    delta : float
        δ in (0, 1) of the objective part.
    dim : int
        Number of model coordinates M.
    shift : float
        ``s_b``, bound on the change of the noise vector between neighbours.
    jacobian : float
        ``J``, the Jacobian bound (must be < ε).
    params : dict, optional
        ``k`` and ``q`` for ``product_paper``; must be empty otherwise.

    Returns
    -------
    mechanism : SphericalMechanism
        The noise ``b``.
    claim : PrivacyFigure
        The claimed (ε, δ) of this part, labelled ``"claimed"``.

    Raises
    ------
    InputError
        If ``name`` is unknown or not spherical, an argument is out of range or ``J ≥ ε``.
    TypeError
        On unexpected ``params``.
    NoBracketFoundError
        If no finite scale reaches the target.
    """
    resolved = check_noise_for_method(name, "objective", None)
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    dim = check_dimension(dim)
    params = dict(params or {})
    en = epsilon - jacobian
    if en <= 0:
        raise InputError(
            f"the Jacobian term {jacobian:.4g} uses the whole budget {epsilon:.4g}; "
            "increase lam or epsilon"
        )
    cls: type[SphericalMechanism] = resolved.cls  # type: ignore[assignment]
    if resolved.calibration == CLAIMED:
        return _objective_claimed(resolved.name, epsilon, delta, dim, shift, en, params)
    if params:
        raise TypeError(f"unexpected noise_params for {resolved.name!r}: {sorted(params)}")
    if issubclass(cls, GammaNorm):
        mech: SphericalMechanism = cls(dim, shift / en, shift)
        return mech, PrivacyFigure(
            epsilon, 0.0, CLAIMED, "objective perturbation with Gamma-norm noise (CMS11 Alg. 2)"
        )
    scale = _calibrate_objective_scale(cls, epsilon, delta, dim, shift, jacobian)
    mech = cls(dim, scale, shift)
    return mech, PrivacyFigure(
        epsilon,
        delta,
        CLAIMED,
        f"target of verified objective-perturbation calibration of {mech}",
    )


def _objective_claimed(
    name: str,
    epsilon: float,
    delta: float,
    dim: int,
    shift: float,
    en: float,
    params: dict[str, Any],
) -> tuple[SphericalMechanism, PrivacyFigure]:
    """The built-in claimed formulas of objective noise (``en = ε − J``); see
    :func:`objective_noise`."""
    if name == "classic_gaussian":
        if params:
            raise TypeError(f"unexpected noise_params for {name!r}: {sorted(params)}")
        mech: SphericalMechanism = Gaussian(dim, amp_iyengar_sigma(shift, en, delta), shift)
        return mech, PrivacyFigure(
            epsilon, delta, CLAIMED, "Gaussian objective noise, Iyengar et al. 2019 sigma"
        )
    if name != "product_paper":
        raise InputError(f"no objective-perturbation formula for the claimed mechanism {name!r}")
    k = float(params.pop("k", 1000.0))
    q = params.pop("q", None)
    if params:
        raise TypeError(f"unexpected noise_params for 'product_paper': {sorted(params)}")
    sigma = shift * paper_t(dim, k, q) / en
    prod = ProductNoise(dim, sigma, shift)
    prod.paper = {
        "epsilon0": en,
        "k": k,
        "q": dim / 2.0 if q is None else float(q),
        "t": paper_t(dim, k, q),
        "claimed_delta": claimed_delta(en, dim, k, q),
    }
    return prod, PrivacyFigure(
        epsilon,
        prod.paper["claimed_delta"],
        CLAIMED,
        f"product-noise paper formula at eps_p={en:.4g}, k={k:g} (official AMP code)",
    )


def objective_verified(
    mech: SphericalMechanism, shift: float, jacobian: float, delta: float
) -> PrivacyFigure:
    """Verified figure of the objective-perturbation step (pure for Gamma-norm noise)."""
    if isinstance(mech, GammaNorm):
        return mech.pure_figure(jacobian, shift)
    eps = objective_epsilon(mech, shift, delta, jacobian)
    return PrivacyFigure(
        eps,
        float(delta),
        VERIFIED,
        f"objective-perturbation bound (2-D shift subspace, Jacobian {jacobian:.3g}) for {mech}",
    )
