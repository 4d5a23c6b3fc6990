"""Privacy accounting of the DP generator: the joint **verified** figure and the lineage's
**claimed** figure, and calibration of the noise multiplier on either.

The release of one generator step
---------------------------------
At step ``t`` one shard ``k`` (of ``ndis``) is chosen uniformly at random, independently of
everything else. Its discriminator ``D_k`` returns the per-sample gradients
``g_i = ∂L_G/∂x̃_i`` (``i = 1..B``) of the ``B`` generated images; the sanitiser releases the
``B × d`` tensor

    V = [clip(g_i, C1)]_i + clip(e_k, C2) + σ_n · N(0, I_{B×d}),      σ_n = σ · Δ,

where ``e_k`` is the error-feedback state of shard ``k`` and ``clip`` rescales a tensor to
Frobenius norm at most the bound. The generator only ever sees ``V``.

Per-step sensitivity (joint)
----------------------------
Let ``S = [clip(g_i, C1)]_i + clip(e_k, C2)`` be the noiseless part. Then

    ‖S‖_F ≤ ‖[clip(g_i, C1)]_i‖_F + ‖clip(e_k, C2)‖_F ≤ √B·C1 + C2 =: R

for *any* discriminator and any error state. Adding or removing one record changes only the
shard that holds it (the shard assignment of the other records is fixed), hence only ``D_k``
and ``e_k`` of that shard, arbitrarily. Both noiseless tensors lie in the ball of radius ``R``,
so the joint shift is ``‖S − S'‖_F ≤ 2R = 2(C1√B + C2) =: Δ`` (:func:`joint_sensitivity`).
A record can influence the release only at the steps where its shard is chosen (probability
``q = 1/ndis``, independently per step): ``D_k`` and ``e_k`` are updated only then, from the
shard and the released history. With ``A`` the output law when another shard is chosen, one
step gives the pair ``((1-q)A + q N(S, σ_n²), (1-q)A + q N(S', σ_n²))``. ``A`` is a mixture of
Gaussians ``N(a_j, σ_n²)`` whose centres, like ``S`` and ``S'``, lie in the ball of radius
``R``; the hockey-stick divergence is jointly convex, so the pair is dominated (at every
``α = e^ε``, ε of either sign) by the worst of the pairs
``((1-q)N(a) + qN(S), (1-q)N(a) + qN(S'))`` with ``‖S − a‖, ‖S' − a‖ ≤ Δ``: the
Poisson-subsampled Gaussian under the *substitution* relation with sensitivity ``Δ``, whose
dominating pair is ``((1-q)N(0) + qN(−Δ), (1-q)N(0) + qN(Δ))`` (``dp_accounting``'s
``REPLACE_ONE``; its sampled centres are ``2Δ`` apart although ``‖S − S'‖ ≤ Δ`` here, so the
figure is conservative). The tighter REMOVE curve of the add/remove relation would follow from
advanced joint convexity for ε ≥ 0 only, which does not by itself give a dominating pair for
composition; it is not used.

Figures
-------
**verified** (:func:`verified_figure`): ``PoissonSampledDpEvent(q, GaussianDpEvent(σ))``,
``σ = σ_n/Δ``, composed over the ``T`` generator steps with ``dp_accounting``'s PLD accountant
(pessimistic, ``REPLACE_ONE``), ε at δ. One release per step: the whole ``B × d`` tensor.

**claimed** (:func:`claimed_figure`): the GS-WGAN / DP-GAN-DPAC accountant
(``evaluation/privacy_analysis.py``: autodp ``compose_subsampled_mechanism(RDP_gaussian(σ_ps),
prob=1/ndis, coeff=T·B)``), i.e. ``B·T`` *independent* per-sample Gaussians, each subsampled
without replacement with ``γ = 1/ndis`` (Wang-Balle-Kasiviswanathan Thm 9), classic RDP
conversion. The per-sample multiplier is the lineage's ``σ_ps = σ_n/(2·C1)`` (per-sample
sensitivity ``2·C1``, ``SENSITIVITY = 2``); the lineage's accountant has no term for the error
feedback. It reproduces ε = 9.99 for σ_ps = 1.07, ndis = 1000, B = 32, T = 20000, where the
joint verified figure is ε ≈ 347 (PLD, substitution; the add/remove REMOVE curve would give
329, and dp_accounting's add/remove RDP accountant 366, the reference note's figure).
It is **not** a guarantee: all ``B`` per-sample releases of a step come from the same shard.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import dp_accounting
from dp_accounting import NeighboringRelation
from dp_accounting.pld import PLDAccountant

from product_noise.accounting.calibrate import smallest_noise
from product_noise.privacy import CLAIMED, VERIFIED, PrivacyFigure
from product_noise.validation import (
    check_delta,
    check_epsilon,
    check_positive,
    check_positive_int,
)

if TYPE_CHECKING:  # the generator imports this module
    from .generator import DPGenConfig

__all__ = [
    "CLAIMED_ORDERS",
    "MIN_NOISE_MULTIPLIER",
    "joint_sensitivity",
    "lineage_noise_multiplier",
    "verified_epsilon",
    "verified_figure",
    "claimed_epsilon",
    "claimed_figure",
    "calibrate_noise_multiplier",
    "claimed_floor",
]

#: integer orders of the claimed (lineage) accountant
CLAIMED_ORDERS: tuple[int, ...] = tuple(range(2, 257))
_DISC = 1e-3
#: smallest positive joint noise multiplier the PLD accountant is asked about
MIN_NOISE_MULTIPLIER = (
    0.05  # PLD value discretization (pessimistic, so any grid gives an upper bound)
)

Target = Literal["verified", "claimed"]


def joint_sensitivity(batch_size: int, clip_norm: float, error_clip: float = 0.0) -> float:
    """``Δ = 2(C1·√B + C2)``: largest Frobenius distance between two noiseless releases.

    Parameters
    ----------
    batch_size : int
        ``B``, generated images per step.
    clip_norm : float
        ``C1``, per-sample clip norm of ``∂L_G/∂x̃_i``.
    error_clip : float
        ``C2 ≥ 0``, clip norm of the (whole ``B × d``) error-feedback tensor; 0 disables it.
    """
    b = check_positive_int("batch_size", batch_size)
    c1 = check_positive("clip_norm", clip_norm)
    if not (isinstance(error_clip, (int, float)) and math.isfinite(error_clip) and error_clip >= 0):
        raise ValueError(f"error_clip must be a finite number >= 0, got {error_clip!r}")
    return 2.0 * (c1 * math.sqrt(b) + float(error_clip))


def lineage_noise_multiplier(
    noise_multiplier: float, batch_size: int, clip_norm: float, error_clip: float = 0.0
) -> float:
    """The GS-WGAN per-sample multiplier ``σ_ps = σ_n/(2·C1)`` of the same noise ``σ_n = σΔ``.

    With ``C2 = 0`` this is ``σ·√B``.
    """
    s = 0.0 if noise_multiplier == 0 else check_positive("noise_multiplier", noise_multiplier)
    c1 = check_positive("clip_norm", clip_norm)
    return s * joint_sensitivity(batch_size, clip_norm, error_clip) / (2.0 * c1)


def _check_common(num_discriminators: int, steps: int, delta: float) -> tuple[int, int, float]:
    ndis = check_positive_int("num_discriminators", num_discriminators)
    steps = check_positive_int("steps", steps)
    return ndis, steps, check_delta(delta)


def verified_epsilon(
    noise_multiplier: float,
    num_discriminators: int,
    steps: int,
    delta: float,
    *,
    value_discretization_interval: float = _DISC,
) -> float:
    """Joint ε: ``PoissonSampledDpEvent(1/ndis, GaussianDpEvent(σ))`` composed ``steps`` times
    (``dp_accounting`` PLD, ``REPLACE_ONE``, pessimistic; see the module docstring for why).
    ``σ = σ_n/Δ``.

    ``noise_multiplier = 0`` (no noise, a non-private reference run) gives ``inf``;
    multipliers in ``(0, MIN_NOISE_MULTIPLIER)`` are refused (the PLD grid would not fit in
    memory, and ε is in the hundreds or more there anyway).
    """
    ndis, steps, delta = _check_common(num_discriminators, steps, delta)
    if noise_multiplier == 0:
        return math.inf
    s = check_positive("noise_multiplier", noise_multiplier)
    if s < MIN_NOISE_MULTIPLIER:
        raise ValueError(
            f"noise_multiplier must be 0 (no privacy) or >= {MIN_NOISE_MULTIPLIER}, got {s!r}"
        )
    acc = PLDAccountant(
        NeighboringRelation.REPLACE_ONE,
        value_discretization_interval=value_discretization_interval,
    )
    event = dp_accounting.PoissonSampledDpEvent(1.0 / ndis, dp_accounting.GaussianDpEvent(s))
    acc.compose(event, steps)
    return float(acc.get_epsilon(delta))


def verified_figure(
    noise_multiplier: float,
    num_discriminators: int,
    steps: int,
    delta: float,
    *,
    batch_size: int | None = None,
    clip_norm: float | None = None,
    error_clip: float | None = None,
) -> PrivacyFigure:
    """The **verified** figure of :func:`verified_epsilon` (sanitiser constants in ``extra``)."""
    eps = verified_epsilon(noise_multiplier, num_discriminators, steps, delta)
    q = 1.0 / int(num_discriminators)
    src = (
        f"joint per-step release: Poisson-subsampled Gaussian, q=1/ndis={q:.4g}, noise "
        f"multiplier σ_n/Δ={noise_multiplier:.4g} with Δ=2(C1√B+C2), {steps} steps, "
        "dp_accounting PLD (substitution, sensitivity Δ, pessimistic)"
    )
    extra = {
        "noise_multiplier": float(noise_multiplier),
        "sampling_prob": q,
        "steps": int(steps),
        "accountant": "dp_accounting PLD",
    }
    if batch_size is not None and clip_norm is not None:
        extra.update(
            batch_size=int(batch_size),
            clip_norm=float(clip_norm),
            error_clip=float(error_clip or 0.0),
            sensitivity=joint_sensitivity(batch_size, clip_norm, error_clip or 0.0),
        )
    return PrivacyFigure(eps, float(delta), VERIFIED, src, extra=extra)


def claimed_epsilon(
    per_sample_multiplier: float,
    num_discriminators: int,
    batch_size: int,
    steps: int,
    delta: float,
) -> tuple[float, int]:
    """The lineage's ε and optimal order: ``B·T`` per-sample Gaussians ``σ_ps``, each subsampled
    without replacement with ``γ = 1/ndis`` (WBK Thm 9, as autodp's default), classic RDP
    conversion over :data:`CLAIMED_ORDERS`."""
    from dpmix.accounting import epsilon_from_rdp, rdp_native

    ndis, steps, delta = _check_common(num_discriminators, steps, delta)
    b = check_positive_int("batch_size", batch_size)
    if ndis == 1:
        raise ValueError("num_discriminators must be >= 2 for the lineage's subsampled accountant")
    if per_sample_multiplier == 0:
        return math.inf, 0
    s = check_positive("per_sample_multiplier", per_sample_multiplier)
    rdp = rdp_native(CLAIMED_ORDERS, ndis, 1, s, bound="thm9") * (b * steps)
    return epsilon_from_rdp(CLAIMED_ORDERS, rdp, delta, conversion="classic")


def claimed_figure(
    noise_multiplier: float,
    num_discriminators: int,
    batch_size: int,
    steps: int,
    delta: float,
    *,
    clip_norm: float = 1.0,
    error_clip: float = 0.0,
) -> PrivacyFigure:
    """The **claimed** (GS-WGAN / DP-GAN-DPAC accountant) figure of the same noise.

    ``noise_multiplier`` is the joint ``σ = σ_n/Δ``; the lineage's per-sample multiplier is
    :func:`lineage_noise_multiplier`.
    """
    sps = lineage_noise_multiplier(noise_multiplier, batch_size, clip_norm, error_clip)
    eps, order = claimed_epsilon(sps, num_discriminators, batch_size, steps, delta)
    src = (
        "GS-WGAN/DP-GAN-DPAC accountant (autodp compose_subsampled_mechanism): "
        f"B·T={batch_size}·{steps} independent per-sample Gaussians σ_ps={sps:.4g}, "
        f"prob 1/ndis={1.0 / num_discriminators:.4g} (WBK Thm 9), classic RDP conversion, "
        f"order {order}; per-sample composition, error feedback not counted; not a guarantee"
    )
    extra = {"per_sample_multiplier": sps, "order": order}
    return PrivacyFigure(eps, float(delta), CLAIMED, src, extra=extra)


def calibrate_noise_multiplier(
    target_epsilon: float,
    delta: float,
    *,
    num_discriminators: int,
    steps: int,
    batch_size: int,
    clip_norm: float = 1.0,
    error_clip: float = 0.0,
    target: Target = "verified",
    rtol: float = 5e-3,
) -> float:
    """Smallest joint noise multiplier ``σ = σ_n/Δ`` (up to ``rtol``) whose ε is ≤ the target.

    ``target="verified"`` bisects on :func:`verified_epsilon` (the joint accountant);
    ``target="claimed"`` on the lineage's accountant (:func:`claimed_epsilon` at
    ``σ_ps = σΔ/(2C1)``). Bisection on ``ln σ``; ε is decreasing in σ. The returned σ is on
    the safe (larger) side of the bracket; never below :data:`MIN_NOISE_MULTIPLIER`.

    Raises
    ------
    ValueError
        On bad input, or if no σ ≤ 1e4 reaches the target.
    """
    target_epsilon = check_epsilon(target_epsilon, "target_epsilon")
    ndis, steps, delta = _check_common(num_discriminators, steps, delta)
    b = check_positive_int("batch_size", batch_size)
    ratio = joint_sensitivity(b, clip_norm, error_clip) / (2.0 * float(clip_norm))
    if target not in ("verified", "claimed"):
        raise ValueError(f"target must be 'verified' or 'claimed', got {target!r}")

    def eps(s: float) -> float:
        if target == "verified":
            return verified_epsilon(s, ndis, steps, delta)
        return claimed_epsilon(s * ratio, ndis, b, steps, delta)[0]

    return smallest_noise(
        eps,
        target_epsilon,
        rtol=rtol,
        low=MIN_NOISE_MULTIPLIER,
        high=1e4,
        what=f"ndis={ndis}, steps={steps}, delta={delta}, {target} accountant",
    )


def claimed_floor(cfg: DPGenConfig) -> float:
    """Limit of the lineage's (claimed) ε as the noise grows (WBK Thm 9 never reaches 0)."""
    return claimed_epsilon(
        1e6, cfg.num_discriminators, cfg.batch_size, cfg.steps, cfg.target_delta
    )[0]
