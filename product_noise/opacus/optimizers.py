"""DP optimizers that add one *joint* noise vector over all parameters per step.

Opacus' optimizers draw iid Gaussian noise per tensor. Noise that is not iid Gaussian (product
noise, the ℓ2 mechanism, a user's registered mechanism) must be drawn once over the whole
flattened parameter vector, ``M = Σ p.numel()`` over trainable parameters: the mechanism's
``sample_like`` gives one joint draw on the parameters' device and dtype, from the optimizer's
generator (for spherical noise one radius and one direction in R^M).

:class:`JointNoiseMixin` overrides ``add_noise`` and is combined with each Opacus optimizer class
through the explicit table :data:`OPTIMIZER_TABLE`. Any class not in the table is rejected —
never silently left with Gaussian noise. The MRO of each combination is chosen so that Opacus'
own distributed logic (noise on rank 0 only) still runs around the joint draw.

Noise scale follows Opacus' convention: the absolute scale of the step's noise is
``noise_multiplier × max_grad_norm`` (so noise and clip schedulers work unchanged) and the
mechanism family turns that scale into a law (``σ`` of product noise, ``θ`` of the ℓ2 mechanism,
the ``scale`` of a user's mechanism).
"""

from __future__ import annotations

import torch
from opacus.optimizers import (
    AdaClipDPOptimizer,
    DistributedDPOptimizer,
    DistributedDPOptimizerFastGradientClipping,
    DPOptimizer,
    DPOptimizerFastGradientClipping,
    DPPerLayerOptimizer,
    FSDPOptimizerFastGradientClipping,
    SimpleDistributedPerLayerOptimizer,
)
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

from ..mechanisms import ScaledMechanism

__all__ = [
    "check_finite_gradients",
    "JointNoiseMixin",
    "JointDPOptimizer",
    "JointDPPerLayerOptimizer",
    "JointDistributedDPOptimizer",
    "JointSimpleDistributedPerLayerOptimizer",
    "JointDPOptimizerFastGradientClipping",
    "JointDistributedDPOptimizerFastGradientClipping",
    "OPTIMIZER_TABLE",
    "REJECTED_OPTIMIZERS",
    "joint_optimizer_class",
]


def check_finite_gradients(params: list[torch.Tensor]) -> None:
    """Raise ``FloatingPointError`` if a clipped, summed gradient (``p.summed_grad``) is NaN/inf.

    Called before any noise is drawn, so a failed step changes neither the parameters, the
    noise generator nor the accountant.
    """
    pairs = [(p, p.summed_grad) for p in params if getattr(p, "summed_grad", None) is not None]
    if not pairs:
        return
    # NaN/inf anywhere propagates into the sum of the sums: one cheap check per step
    if not bool(torch.isfinite(torch.stack([s.sum() for _, s in pairs]).sum())):
        bad = [tuple(p.shape) for p, s in pairs if not torch.isfinite(s).all()]
        raise FloatingPointError(
            f"non-finite (NaN or inf) clipped gradient for parameters of shape {bad}: the "
            "loss or a per-sample gradient is NaN/inf. Noise was not added and the step was "
            "not taken; check the loss and the input data."
        )


class JointNoiseMixin:
    """Replaces Opacus' per-tensor Gaussian ``add_noise`` with one joint draw.

    Attributes set by the engine after construction
    ------------------------------------------------
    noise_family:
        A :class:`~product_noise.mechanisms.ScaledMechanism` subclass (e.g. ``ProductNoise``
        or a registered user mechanism). The step's mechanism is
        ``noise_family(M, noise_multiplier × max_grad_norm, C)``.
    noise_name:
        Its registry name, recorded by the accountant (default: ``noise_family.name``).
    """

    noise_family: type[ScaledMechanism] | None = None
    noise_name: str | None = None

    @property
    def noise_dim(self) -> int:
        """M, the number of values one joint draw covers (all trainable parameters)."""
        return sum(int(p.numel()) for p in self.params)  # type: ignore[attr-defined]

    def current_mechanism(self) -> ScaledMechanism:
        """The mechanism of the next step (its scale follows the noise/clip schedulers)."""
        if self.noise_family is None:
            raise RuntimeError("no noise family attached to this optimizer")
        scale = self.noise_multiplier * self.max_grad_norm  # type: ignore[attr-defined]
        return self.noise_family(self.noise_dim, scale, self.max_grad_norm)  # type: ignore[attr-defined]

    def add_noise(self) -> None:
        """Add one joint noise vector to the clipped, summed gradients (``p.grad``)."""
        params = self.params  # type: ignore[attr-defined]
        summed = [p.summed_grad for p in params]
        for s in summed:
            _check_processed_flag(s)
        check_finite_gradients(params)
        scale = self.noise_multiplier * self.max_grad_norm  # type: ignore[attr-defined]
        if scale == 0:
            noises = [torch.zeros_like(s) for s in summed]
        else:
            noises = self.current_mechanism().sample_like(
                summed,
                generator=self.generator,  # type: ignore[attr-defined]
            )
        for p, s, n in zip(params, summed, noises):
            p.grad = (s + n).view_as(p)
            _mark_as_processed(s)


class JointDPOptimizer(JointNoiseMixin, DPOptimizer):
    """``DPOptimizer`` (flat clipping) with joint spherical noise."""


class JointDPPerLayerOptimizer(JointNoiseMixin, DPPerLayerOptimizer):
    """``DPPerLayerOptimizer`` with joint noise; the sensitivity is ‖(C_1, …, C_L)‖₂."""


class JointDistributedDPOptimizer(DistributedDPOptimizer, JointDPOptimizer):
    """``DistributedDPOptimizer``: rank 0 draws the joint noise, other ranks add none."""


class JointSimpleDistributedPerLayerOptimizer(SimpleDistributedPerLayerOptimizer, JointDPOptimizer):
    """``SimpleDistributedPerLayerOptimizer``: rank 0 draws the joint noise."""


class JointDPOptimizerFastGradientClipping(JointNoiseMixin, DPOptimizerFastGradientClipping):
    """Ghost clipping (``grad_sample_mode="ghost"``) with joint noise."""


class JointDistributedDPOptimizerFastGradientClipping(
    DistributedDPOptimizerFastGradientClipping, JointDPOptimizerFastGradientClipping
):
    """Distributed ghost clipping: rank 0 draws the joint noise."""


#: Opacus optimizer class → our joint-noise class. Anything not here is rejected.
OPTIMIZER_TABLE: dict[type, type] = {
    DPOptimizer: JointDPOptimizer,
    DPPerLayerOptimizer: JointDPPerLayerOptimizer,
    DistributedDPOptimizer: JointDistributedDPOptimizer,
    SimpleDistributedPerLayerOptimizer: JointSimpleDistributedPerLayerOptimizer,
    DPOptimizerFastGradientClipping: JointDPOptimizerFastGradientClipping,
    DistributedDPOptimizerFastGradientClipping: JointDistributedDPOptimizerFastGradientClipping,
}

#: Opacus classes that cannot carry one joint draw, with the reason given to the user.
REJECTED_OPTIMIZERS: dict[type, str] = {
    AdaClipDPOptimizer: (
        "adaptive clipping splits the budget between Gaussian noise on the gradient and on the "
        "clipped count (Andrew et al. Thm 1); that split is Gaussian-specific"
    ),
    FSDPOptimizerFastGradientClipping: (
        "FSDP draws noise per shard on every rank; a joint spherical draw would need the norm of "
        "every shard and one shared radius"
    ),
}


def joint_optimizer_class(opacus_class: type) -> type:
    """Map the class Opacus would build to ours, or raise ``NotImplementedError``."""
    if opacus_class in OPTIMIZER_TABLE:
        return OPTIMIZER_TABLE[opacus_class]
    reason = REJECTED_OPTIMIZERS.get(opacus_class, "it is not in the joint-noise table")
    raise NotImplementedError(
        f"{opacus_class.__name__} is not supported with non-Gaussian joint noise: {reason}. "
        "Use noise='gaussian' for this mode, or flat/per-layer clipping with hooks, functorch, "
        "ew or ghost grad-sample modes."
    )
