"""The privacy barrier: per-sample clipping, clipped error feedback (DiceSGD), Gaussian noise.

:class:`ErrorFeedbackSanitizer` turns the per-sample gradients ``g = [g_i]`` (``B × d``) of the
critic's loss with respect to the generated images into

    v = [clip(g_i, C1)]_i + clip(e_k, C2)          (noiseless, ‖v‖_F ≤ C1√B + C2)
    V = v + σ_n · N(0, I)                          (released)
    e_k ← e_k + g − v                              (DiceSGD: e ← e − clip(e, C2) + g − clip(g))

with one error state ``e_k`` per shard/discriminator, updated only when shard ``k`` is chosen.
The error is added **before** the noise, so it is covered by the noise (see
:mod:`~product_noise.baselines.dpgen.accounting` for the sensitivity bound). ``clip(e, C2)``
clips the whole ``B × d`` tensor (Frobenius norm), which keeps its share of the joint
sensitivity at ``2·C2``; ``C2 = 0`` disables error feedback (plain GS-WGAN sanitisation).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from product_noise.validation import check_positive, check_positive_int

__all__ = ["clip_rows", "clip_tensor", "error_feedback_step", "ErrorFeedbackSanitizer"]


def clip_rows(g: torch.Tensor, bound: float) -> torch.Tensor:
    """Rescale each sample ``g[i]`` (all dimensions after the first) to norm ≤ ``bound``."""
    norms = g.flatten(1).norm(dim=1)
    scale = torch.clamp(bound / (norms + 1e-12), max=1.0)
    return g * scale.view(-1, *([1] * (g.dim() - 1)))


def clip_tensor(e: torch.Tensor, bound: float) -> torch.Tensor:
    """Rescale the whole tensor to Frobenius norm ≤ ``bound`` (0 gives zeros)."""
    if bound == 0:
        return torch.zeros_like(e)
    n = float(e.norm())
    return e if n <= bound else e * (bound / n)


def error_feedback_step(
    g: torch.Tensor, error: torch.Tensor | None, clip_norm: float, error_clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DiceSGD step on per-sample gradients: ``(v, e_new)`` with
    ``v = clip_rows(g, C1) + clip(e, C2)`` and ``e_new = e + g − v`` (``e = 0`` if ``None``)."""
    e = torch.zeros_like(g) if error is None else error
    if e.shape != g.shape:
        raise ValueError(f"error state has shape {tuple(e.shape)}, gradients {tuple(g.shape)}")
    v = clip_rows(g, clip_norm) + clip_tensor(e, error_clip)
    return v, e + g - v


class ErrorFeedbackSanitizer:
    """Per-shard error feedback and Gaussian noise on ``∂L_G/∂x̃`` (see module docstring).

    Parameters
    ----------
    clip_norm : float
        ``C1``.
    error_clip : float
        ``C2 ≥ 0`` (0: no error feedback).
    noise_std : float
        ``σ_n``, standard deviation of every released coordinate.
    generator : torch.Generator, optional
        Source of the Gaussian noise (reproducible runs).
    scale : float
        Multiplies the released tensor (e.g. ``1/B`` for a batch mean); post-processing.
    """

    def __init__(
        self,
        clip_norm: float,
        error_clip: float,
        noise_std: float,
        *,
        generator: torch.Generator | None = None,
        scale: float = 1.0,
    ) -> None:
        self.clip_norm = check_positive("clip_norm", clip_norm)
        if not error_clip >= 0:
            raise ValueError(f"error_clip must be >= 0, got {error_clip!r}")
        self.error_clip = float(error_clip)
        if not noise_std >= 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
        self.noise_std = float(noise_std)
        self.generator = generator
        self.scale = float(scale)
        self.errors: dict[int, torch.Tensor] = {}
        self.releases = 0
        self.last_noiseless_norm = 0.0

    def sanitize(self, g: torch.Tensor, shard: int) -> torch.Tensor:
        """Release for shard ``shard``: ``scale · (v + σ_n N(0, I))``; updates ``e_shard``."""
        check_positive_int("shard", shard, minimum=0)
        g = g.detach()
        v, e_new = error_feedback_step(g, self.errors.get(shard), self.clip_norm, self.error_clip)
        if self.error_clip > 0:
            self.errors[shard] = e_new
        self.last_noiseless_norm = float(v.norm())
        noise = torch.randn(g.shape, generator=self.generator, dtype=g.dtype, device=g.device)
        self.releases += 1
        return (v + self.noise_std * noise) * self.scale

    def hook(self, shard: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """A ``Tensor.register_hook`` callable that replaces the gradient by its release."""
        return lambda grad: self.sanitize(grad, shard)

    def state_dict(self) -> dict:
        return {"errors": {k: v.clone() for k, v in self.errors.items()}, "releases": self.releases}

    def load_state_dict(self, state: dict) -> None:
        self.errors = {int(k): v.clone() for k, v in state["errors"].items()}
        self.releases = int(state["releases"])
