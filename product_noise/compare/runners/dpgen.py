"""The DP image generator adapter: publish a DP-EFSGD synthetic set, train on it, for the
comparison."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...baselines.dpgen.accounting import claimed_floor
from ...baselines.dpgen.evaluate import downstream_accuracy
from ...baselines.dpgen.generator import DPGenConfig, DPGenerator
from ...privacy import CLAIMED, VERIFIED
from ...validation import check_delta, check_epsilon, check_positive_int

__all__ = ["quick_config", "run_for_compare"]


def quick_config(n: int, side: int, *, steps: int | None = None, seed: int = 0) -> DPGenConfig:
    """Reduced-scale settings for ``n`` private images of side ``side`` (CPU, ~1 min at 8×8).

    ``ndis = clip(n // 150, 2, 100)`` shards (≈ 150 records each), batch 16, 400 generator
    steps (default), two critic steps per generator step, 50 warm-start steps per critic,
    reconstruction weight 0.1, ``C1 = 1``, ``C2 = 1``.
    """
    n = check_positive_int("n", n, minimum=2)
    return DPGenConfig(
        num_discriminators=int(np.clip(n // 150, 2, 100)),
        batch_size=16,
        steps=400 if steps is None else check_positive_int("steps", steps),
        clip_norm=1.0,
        error_clip=1.0,
        target_epsilon=1.0,  # replaced by the caller's target
        critic_steps=2,
        warm_start_steps=50,
        recon_weight=0.1,
        latent_dim=16 if side <= 8 else 32,
        g_width=32,
        d_width=16,
        seed=seed,
    )


def run_for_compare(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    image_shape: tuple[int, ...],
    epsilon: float,
    delta: float,
    target: str,
    seed: int,
    steps: int | None = None,
) -> dict[str, Any]:
    """Train the DP generator at ``(epsilon, delta)``, publish ``len(X_train)`` labelled
    images, train a small CNN on them and test it on ``(X_test, y_test)``.

    ``target="verified"`` calibrates the joint noise multiplier on the joint (verified)
    accountant; ``target="claimed"`` on the GS-WGAN/DPAC accountant (then the verified ε is far
    larger than ``epsilon``). Rows of ``X_*`` are images (flat or shaped) with pixels in
    [0, 1]; ``image_shape`` is ``(1, H, H)`` or ``(H, H)``.

    Returns
    -------
    dict
        ``accuracy``, ``claimed`` and ``verified`` (:class:`~product_noise.privacy.PrivacyFigure`),
        ``noise_scale`` (joint noise multiplier σ = σ_n/Δ), ``steps``, ``notes`` (list of str).
    """
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    if target not in ("verified", "claimed"):
        raise ValueError(f"target must be 'verified' or 'claimed', got {target!r}")
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] % 4:
        raise ValueError(
            f"image_shape must be (1, H, H) or (H, H) with H divisible by 4, got {image_shape!r}"
        )
    Xtr = np.asarray(X_train, dtype=np.float32).reshape(-1, 1, *shape)
    Xte = np.asarray(X_test, dtype=np.float32).reshape(-1, 1, *shape)
    ytr, yte = np.asarray(y_train, dtype=np.int64), np.asarray(y_test, dtype=np.int64)
    k = int(max(ytr.max(), yte.max())) + 1
    cfg = quick_config(len(Xtr), shape[0], steps=steps, seed=seed)
    cfg.target_epsilon, cfg.target_delta, cfg.target = epsilon, delta, target
    notes: list[str] = []
    if target == "claimed":
        # WBK Thm 9 (the lineage's accountant) has a floor as σ → ∞ (2γ^j C(α, j) terms): use
        # more, smaller shards (smaller γ = 1/ndis) until the claimed target is reachable
        base_ndis = cfg.num_discriminators
        while claimed_floor(cfg) >= 0.99 * epsilon:
            if 2 * cfg.num_discriminators > len(Xtr) // 8:
                raise ValueError(
                    f"claimed target epsilon={epsilon} is below the floor "
                    f"{claimed_floor(cfg):.4g} of the GS-WGAN/DPAC accountant for "
                    f"B*T={cfg.batch_size}*{cfg.steps} with at least 8 records per shard"
                )
            cfg.num_discriminators *= 2
        if cfg.num_discriminators != base_ndis:
            notes.append(
                f"ndis raised from {base_ndis} to {cfg.num_discriminators}: the claimed "
                f"accountant's floor at {base_ndis} shards exceeds the target"
            )
    t0 = time.perf_counter()
    gen = DPGenerator(cfg).fit(Xtr, ytr, num_classes=k)
    t_fit = time.perf_counter() - t0
    Xs, ys = gen.sample(len(Xtr), seed=seed)
    acc = downstream_accuracy(Xs, ys, Xte, yte, num_classes=k, epochs=10, seed=seed)
    c = gen.config
    notes = notes + [
        f"DP-EFSGD (GS-WGAN structure): ndis={c.num_discriminators}, B={c.batch_size}, "
        f"T={c.steps}, C1={c.clip_norm:g}, C2={c.error_clip:g}, "
        f"joint sigma={gen.noise_multiplier_:.4g} (noise std {gen.noise_std_:.4g}), "
        f"calibrated on the {target} accountant",
        f"{len(Xs)} synthetic images; SmallCNN trained 10 epochs on them; fit {t_fit:.1f}s",
    ]
    return {
        "accuracy": acc,
        "claimed": gen.privacy_[CLAIMED],
        "verified": gen.privacy_[VERIFIED],
        "noise_scale": gen.noise_multiplier_,
        "steps": c.steps,
        "notes": notes,
    }
