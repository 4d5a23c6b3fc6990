"""The formulas of output perturbation, CMS11 objective perturbation and AMP, in one place.

Notation: ``n`` samples, rows ``‖x‖ ≤ R`` (after the optional constant
intercept feature), margin loss with ``|ℓ'| ≤ 1`` and ``ℓ'' ≤ c``; the *averaged* objective

    J(θ) = (1/n) Σ ℓ(y_i θᵀx_i) + (Λ/2) ‖θ‖².

With ``R = 1`` every formula below is exactly the published one (CMS11 [1]_, AMP [2]_); for
``R ≠ 1`` the Lipschitz constant is ``R`` and the per-sample Hessian bound is ``c R²`` (this
package's reading: diffprivlib uses ``c R``, which under-states the Jacobian term when ``R > 1``).

Neighbouring datasets differ in **one replaced record** throughout (CMS11's relation).

References
----------
.. [1] K. Chaudhuri, C. Monteleoni and A. D. Sarwate, "Differentially private empirical risk
       minimization", Journal of Machine Learning Research 12, 2011.
.. [2] R. Iyengar, J. P. Near, D. Song, O. Thakkar, A. Thakurta and L. Wang, "Towards practical
       differentially private convex optimization", IEEE S&P 2019.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..validation import check_epsilon, check_positive, check_positive_int

__all__ = [
    "output_sensitivity",
    "ppssgd_sensitivity",
    "CMS11Objective",
    "cms11_objective",
    "jacobian_term",
    "strategy1_fraction",
    "AMPPlan",
    "amp_plan",
    "amp_iyengar_sigma",
]


def output_sensitivity(n: int, lam: float, lipschitz: float = 1.0) -> float:
    """L2 sensitivity of ``argmin J``: ``2 L / (n Λ)`` (CMS11 Alg. 1; ``L = R``).

    Parameters
    ----------
    n : int
        Number of samples ≥ 1.
    lam : float
        Regularisation ``Λ > 0`` of the averaged objective.
    lipschitz : float, default 1.0
        Lipschitz constant ``L`` of the per-sample loss in θ (``R`` for margin losses).

    Returns
    -------
    sensitivity : float
        L2 sensitivity (a norm) of the minimiser under one replaced record.
    """
    n = check_positive_int("n", n)
    return 2.0 * check_positive("lipschitz", lipschitz) / (n * check_positive("lam", lam))


def ppssgd_sensitivity(n: int, lam: float, lipschitz: float, radius: float) -> float:
    """Strongly convex permutation SGD (Wu et al. 2017; dpml ``PPSSGD``): ``2(L + Λρ)/(Λ n)``.

    ``ρ`` is the radius of the L2 ball the iterates are projected on, so the regularised
    per-sample gradient is bounded by ``L + Λρ``.

    Parameters
    ----------
    n : int
        Number of samples ≥ 1.
    lam : float
        Regularisation ``Λ > 0``.
    lipschitz : float
        Lipschitz constant ``L`` of the per-sample loss.
    radius : float
        Projection radius ``ρ > 0``.

    Returns
    -------
    sensitivity : float
        L2 sensitivity of the final iterate.
    """
    n = check_positive_int("n", n)
    lam = check_positive("lam", lam)
    lreg = check_positive("lipschitz", lipschitz) + lam * check_positive("radius", radius)
    return 2.0 * lreg / (lam * n)


def jacobian_term(curvature: float, strong_convexity_sum: float) -> float:
    """``2 log(1 + c R² / Λ_Σ)``: bound on the log-ratio of the Jacobian determinants.

    ``Λ_Σ`` is the strong convexity of the *summed* objective (``n(Λ + Δ)`` for CMS11); one
    replaced record changes the summed Hessian by a rank-2 term with eigenvalues ``≤ c R²``.

    Parameters
    ----------
    curvature : float
        ``c R²``, the bound on the per-sample Hessian's eigenvalues.
    strong_convexity_sum : float
        ``Λ_Σ`` of the summed objective.

    Returns
    -------
    epsilon : float
        The pure ε spent on the Jacobian.
    """
    return 2.0 * math.log1p(curvature / strong_convexity_sum)


@dataclass(frozen=True)
class CMS11Objective:
    """Parameters of CMS11 Algorithm 2 for one binary model.

    Attributes
    ----------
    epsilon : float
        ``ε_p``, the budget of this model.
    epsilon_noise : float
        ``ε'_p``, the part left for the noise after the Jacobian term.
    extra_reg : float
        ``Δ`` added to the regulariser (0 unless the fallback fired).
    fallback : bool
        Whether step 2's fallback fired (``ε'_p ≤ 0`` before adjustment).
    jacobian : float
        ``ε_p − ε'_p = 2 log(1 + cR²/(n(Λ+Δ)))``.
    beta : float
        The Gamma-norm rate ``β = ε'_p / (2R)`` (CMS11's ``ε'_p/2`` at ``R = 1``).
    noise_shift : float
        ``2R``: bound on the change of the noise vector ``b`` between neighbours.
    """

    epsilon: float
    epsilon_noise: float
    extra_reg: float
    fallback: bool
    jacobian: float
    beta: float
    noise_shift: float


def cms11_objective(
    epsilon: float, n: int, lam: float, c: float, data_norm: float = 1.0
) -> CMS11Objective:
    """CMS11 Algorithm 2 steps 1–3.

    ``ε'_p = ε_p − 2 log(1 + cR²/(nΛ))``; if ``ε'_p > 0`` then ``Δ = 0``, else
    ``Δ = cR²/(n (e^{ε_p/4} − 1)) − Λ`` and ``ε'_p = ε_p/2``; ``β = ε'_p/(2R)``.

    Parameters
    ----------
    epsilon : float
        ``ε_p > 0``, the pure budget of this model.
    n : int
        Number of samples ≥ 1.
    lam : float
        Regularisation ``Λ > 0`` of the averaged objective.
    c : float
        Bound on ``ℓ''`` (:attr:`MarginLoss.c`).
    data_norm : float, default 1.0
        ``R``, bound on the row norms.

    Returns
    -------
    plan : CMS11Objective
        The noise budget, extra regulariser, Jacobian term and Gamma-norm rate.
    """
    epsilon = check_epsilon(epsilon)
    n = check_positive_int("n", n)
    lam = check_positive("lam", lam)
    c = check_positive("c", c)
    r = check_positive("data_norm", data_norm)
    q = c * r * r
    eps_p = epsilon - 2.0 * math.log1p(q / (n * lam))
    if eps_p > 0:
        extra, fallback = 0.0, False
    else:
        extra = q / (n * math.expm1(epsilon / 4.0)) - lam
        eps_p, fallback = epsilon / 2.0, True
    jac = jacobian_term(q, n * (lam + extra))
    return CMS11Objective(
        epsilon=epsilon,
        epsilon_noise=eps_p,
        extra_reg=extra,
        fallback=fallback,
        jacobian=jac,
        beta=eps_p / (2.0 * r),
        noise_shift=2.0 * r,
    )


def strategy1_fraction(epsilon: float) -> float:
    """AMP-NT's ``ε_p/ε_obj`` ("Strategy #1", dpml-benchmark):

    ``max(min(0.88671 + 0.0186607/ε^0.372906, 0.99), 1 − 1/ε + 0.001)``.

    Parameters
    ----------
    epsilon : float
        ε > 0.

    Returns
    -------
    fraction : float
        ``ε_p/ε_obj`` (exceeds 1 for ε ≥ 1000).
    """
    epsilon = check_epsilon(epsilon)
    return max(min(0.88671 + 0.0186607 / epsilon**0.372906, 0.99), 1.0 - 1.0 / epsilon + 0.001)


@dataclass(frozen=True)
class AMPPlan:
    """Budget split and constants of AMP (Iyengar et al. 2019) for one binary model.

    The perturbed objective is ``(1/n) Σ ℓ + (Λ_Σ/(2n)) ‖θ‖² + b₁ᵀθ``; the release is
    ``θ_approx + b₂`` with ``‖∇‖ ≤ γ`` at ``θ_approx``.
    """

    epsilon: float
    delta: float
    eps_out: float
    eps_obj: float
    eps_p: float
    delta_out: float
    delta_obj: float
    eps_frac: float
    reg_sum: float  #: Λ_Σ (summed-form regulariser)
    jacobian: float  #: 2 log(1 + cR²/Λ_Σ) ≤ ε_obj − ε_p
    gamma: float
    obj_shift: float  #: 2R/n, change of b₁ between neighbours
    out_sensitivity: float  #: 2nγ/Λ_Σ

    @property
    def reg(self) -> float:
        """The averaged-form regulariser ``Λ_Σ/n`` of the perturbed objective."""
        return self.reg_sum / self.n

    n: int = 1


def amp_plan(
    epsilon: float,
    delta: float,
    n: int,
    c: float,
    data_norm: float = 1.0,
    *,
    eps_frac: float | None = None,
    eps_out_frac: float = 0.01,
    gamma: float | None = None,
    min_reg: float = 0.0,
    hessian_rank: int = 2,
) -> AMPPlan:
    """AMP's budget split (Iyengar et al. 2019 [2]_).

    ``ε_out = f_out ε``, ``ε_obj = ε − ε_out``, ``ε_p = f ε_obj`` (``f`` = Strategy #1 when not
    given), ``δ_out = f_out δ``, ``δ_obj = δ − δ_out``; ``Λ_Σ = max(r β/(ε_obj − ε_p), n·min_reg)``
    with ``r = 2`` and smoothness ``β = cR²`` (dpml uses ``β = L²``, larger for the logistic loss);
    ``γ = 1/n²`` by default; output sensitivity ``2nγ/Λ_Σ``.

    The output sensitivity carries the factor 2 of Redberg et al. (``2τ/λ``): the approximate
    minimisers on neighbouring datasets each lie within ``nγ/Λ_Σ`` of the (common) exact minimiser
    they are compared through. dpml uses ``nγ/Λ_Σ``.

    Parameters
    ----------
    epsilon : float
        Total ε > 0.
    delta : float
        Total δ in (0, 1).
    n : int
        Number of samples ≥ 1.
    c : float
        Bound on ``ℓ''``.
    data_norm : float, default 1.0
        ``R``, bound on the row norms.
    eps_frac : float, optional
        ``f = ε_p/ε_obj`` in (0, 1); default :func:`strategy1_fraction`.
    eps_out_frac : float, default 0.01
        ``f_out`` in (0, 1): the share of ε and δ for the output noise.
    gamma : float, optional
        Gradient-norm tolerance ``γ > 0`` of the approximate minimiser; default ``1/n²``.
    min_reg : float, default 0.0
        Smallest averaged regulariser (``Λ_Σ ≥ n · min_reg``).
    hessian_rank : int, default 2
        ``r``, the rank of the Hessian change between neighbours.

    Returns
    -------
    plan : AMPPlan
        The budget split, regulariser, Jacobian term, γ and both sensitivities.

    Raises
    ------
    ValueError
        If an argument is out of range, ``eps_out_frac >= 1`` or ``eps_frac`` is not in (0, 1).
    """
    from ..validation import check_delta, check_probability

    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    n = check_positive_int("n", n)
    c = check_positive("c", c)
    r = check_positive("data_norm", data_norm)
    f_out = check_probability("eps_out_frac", eps_out_frac)
    if f_out >= 1.0:
        raise ValueError("eps_out_frac must be < 1 (the objective part needs a budget)")
    f = strategy1_fraction(epsilon) if eps_frac is None else float(eps_frac)
    if not (0.0 < f < 1.0):
        raise ValueError(
            f"AMP needs 0 < eps_frac < 1, got {f:g}"
            + (
                " from Strategy #1 (it exceeds 1 for epsilon >= 1000); pass amp_eps_frac"
                if eps_frac is None
                else ""
            )
        )
    eps_out = f_out * epsilon
    eps_obj = epsilon - eps_out
    eps_p = f * eps_obj
    delta_out = f_out * delta
    delta_obj = delta - delta_out
    smooth = c * r * r
    reg_sum = max(hessian_rank * smooth / (eps_obj - eps_p), n * float(min_reg))
    gamma = 1.0 / n**2 if gamma is None else check_positive("amp_gamma", gamma)
    return AMPPlan(
        epsilon=epsilon,
        delta=delta,
        eps_out=eps_out,
        eps_obj=eps_obj,
        eps_p=eps_p,
        delta_out=delta_out,
        delta_obj=delta_obj,
        eps_frac=f,
        reg_sum=reg_sum,
        jacobian=jacobian_term(smooth, reg_sum),
        gamma=gamma,
        obj_shift=2.0 * r / n,
        out_sensitivity=2.0 * n * gamma / reg_sum,
        n=n,
    )


def amp_iyengar_sigma(shift: float, epsilon: float, delta: float) -> float:
    """Iyengar et al.'s Gaussian scale ``σ = Δ (1 + √(2 ln(1/δ))) / ε`` (both AMP noises).

    Parameters
    ----------
    shift : float
        L2 sensitivity Δ of the perturbed quantity.
    epsilon : float
        ε > 0 of that noise.
    delta : float
        δ in (0, 1) of that noise.

    Returns
    -------
    sigma : float
        Per-coordinate standard deviation of the Gaussian noise.
    """
    return shift * (1.0 + math.sqrt(2.0 * math.log(1.0 / delta))) / epsilon
