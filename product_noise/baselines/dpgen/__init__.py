"""DP image generation with error-feedback DP-SGD (DP-EFSGD; Ma & Zhang, arXiv 2601.15061, 2026).

The paper's method section is not public: only its abstract and secondary summaries are. It
extends DP-GAN-DPAC (CVPR 2023), itself built on GS-WGAN, with (1) clipped error-feedback
DP-SGD, (2) noise injection in the generator's upsampling and (3) a VAE-style L2
reconstruction loss. This module is a reduced-scale reconstruction; every choice below is
ours and is stated here.

Design choices
--------------
Framework
    GS-WGAN / DPAC structure: ``ndis`` conditional WGAN-GP critics on disjoint shards of the
    private data (a seeded permutation split into ``ndis`` parts), each warm-started
    non-privately on its own shard; one critic chosen uniformly per generator step. DPAC's
    auxiliary classifier C1 (an extra, unaccounted release in DPAC's code) is **left out**.
Privacy barrier (:mod:`.sanitize`)
    ``∂L_G/∂x̃`` of the ``B`` generated images at the chosen critic's input: per-sample clip to
    ``C1``, plus the clipped error-feedback tensor ``clip(e_k, C2)`` (DiceSGD) **before** the
    Gaussian noise; one error state per shard, updated ``e_k ← e_k + g − v`` only when shard
    ``k`` is chosen, so a record influences the release only at its shard's steps. Error
    feedback acts on the per-image gradient tensor; generated images change every step, so
    batch positions carry fixed labels (``i mod K``) and the error at position ``i`` is fed back
    into an image of the same class. ``C2`` clips the whole ``B × d`` tensor.
Sensitivity
    ``‖S − S'‖_F ≤ Δ = 2(C1√B + C2)`` for the noiseless release ``S`` (proof in
    :mod:`.accounting`); noise std ``σ_n = σ·Δ``.
Accounting (:mod:`.accounting`)
    **verified**: one Poisson-subsampled Gaussian per generator step (``q = 1/ndis``,
    multiplier ``σ``, substitution relation: the other shards' outputs are a shared component)
    composed over ``T`` steps with ``dp_accounting``'s PLD accountant.
    **claimed**: the lineage's accountant (``B·T`` independent per-sample Gaussians with
    ``σ_ps = σ_n/(2C1)``, WBK Thm 9 via the same formula as autodp, classic conversion); it
    reproduces DPAC's ε = 9.99 and ignores the error feedback. The paper's own privacy theorem
    was not retrieved; we do not inflate the noise by DiceSGD's ``√(1 + 2C2/C1)`` because the
    joint sensitivity above already covers the error term.
Reconstruction loss
    ``λ·‖E(G(z, y)) − z‖²`` on generated images only (encoder ``E`` trained with ``G``); it
    touches no private data.
Noise injection
    Per-pixel Gaussian noise with a learned per-channel scale after each upsampling conv of
    ``G``; utility only (``G`` never reads private data).
Evaluation (:mod:`.evaluate`)
    gen2real accuracy of a small CNN; "FID" on the penultimate features of a small CNN trained
    in the package on the real training split (not comparable in scale with Inception-FID); a
    PNG grid.

Not reproduced: DPAC's ResNet architectures and C1 branch, the EMA of ``G``, the paper's
hyperparameters (unknown), training resume from a checkpoint (``state_dict`` saves the
released generator and its privacy figures, not the critics).
"""

from __future__ import annotations

from .accounting import (
    calibrate_noise_multiplier,
    claimed_epsilon,
    claimed_figure,
    claimed_floor,
    joint_sensitivity,
    lineage_noise_multiplier,
    verified_epsilon,
    verified_figure,
)
from .evaluate import (
    FeatureFID,
    accuracy,
    downstream_accuracy,
    frechet_distance,
    save_image_grid,
    train_classifier,
)
from .generator import DPGenConfig, DPGenerator, as_images
from .models import Discriminator, Encoder, Generator, NoiseInjection, SmallCNN
from .sanitize import ErrorFeedbackSanitizer, clip_rows, clip_tensor, error_feedback_step

__all__ = [
    "DPGenConfig",
    "DPGenerator",
    "as_images",
    "ErrorFeedbackSanitizer",
    "clip_rows",
    "clip_tensor",
    "error_feedback_step",
    "joint_sensitivity",
    "lineage_noise_multiplier",
    "verified_epsilon",
    "verified_figure",
    "claimed_epsilon",
    "claimed_figure",
    "claimed_floor",
    "calibrate_noise_multiplier",
    "FeatureFID",
    "accuracy",
    "downstream_accuracy",
    "frechet_distance",
    "save_image_grid",
    "train_classifier",
    "Generator",
    "Discriminator",
    "Encoder",
    "NoiseInjection",
    "SmallCNN",
]
