"""``DPGenerator``: GS-WGAN / DP-GAN-DPAC structure with error-feedback sanitisation (DP-EFSGD).

Training loop (one generator step ``t = 1..T``):

1. choose a shard ``k`` uniformly among ``ndis`` (independently of everything else);
2. ``critic_steps`` WGAN-GP updates of ``D_k`` on shard ``k``'s real images against detached
   fakes of the current generator (non-private, never released);
3. generate ``B`` images ``x̃_i = G(z_i, y_i)`` with the fixed labels ``y_i = i mod K`` (so the
   error-feedback state at position ``i`` always belongs to class ``y_i``); a hook at ``D_k``'s
   input replaces ``∂L_G/∂x̃`` (``L_G = −Σ_i D_k(x̃_i, y_i)``) by the sanitised release of
   :class:`~product_noise.baselines.dpgen.sanitize.ErrorFeedbackSanitizer` (divided by ``B``);
4. add the reconstruction loss ``λ·mean_i ‖E(x̃_i) − z_i‖²`` (generated data only, no private
   data) and take one Adam step on ``G`` and ``E``.

Only the sanitised tensors reach ``G``; ``G`` and ``E`` are post-processing of them.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from product_noise.privacy import CLAIMED, VERIFIED, PrivacyFigure, PrivacyReport
from product_noise.validation import (
    check_delta,
    check_epsilon,
    check_positive,
    check_positive_int,
)

from .accounting import (
    calibrate_noise_multiplier,
    claimed_figure,
    joint_sensitivity,
    verified_figure,
)
from .models import Discriminator, Encoder, Generator
from .sanitize import ErrorFeedbackSanitizer

__all__ = ["DPGenConfig", "DPGenerator", "as_images"]


@dataclass
class DPGenConfig:
    """Hyperparameters of :class:`DPGenerator` (defaults: reduced-scale MNIST)."""

    num_discriminators: int = 100
    batch_size: int = 32
    steps: int = 2000
    clip_norm: float = 1.0
    error_clip: float = 1.0
    noise_multiplier: float | None = None  # joint σ = σ_n/Δ; 0: non-private reference (ε = inf)
    target_epsilon: float | None = None
    target_delta: float = 1e-5
    target: str = "verified"
    critic_steps: int = 2
    warm_start_steps: int = 50
    gp_weight: float = 10.0
    recon_weight: float = 0.1
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    latent_dim: int = 32
    g_width: int = 32
    d_width: int = 16
    noise_injection: bool = True
    seed: int = 0

    def validate(self) -> DPGenConfig:
        check_positive_int("num_discriminators", self.num_discriminators, minimum=2)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("steps", self.steps)
        check_positive("clip_norm", self.clip_norm)
        if not (math.isfinite(self.error_clip) and self.error_clip >= 0):
            raise ValueError(f"error_clip must be a finite number >= 0, got {self.error_clip!r}")
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise ValueError("give exactly one of noise_multiplier or target_epsilon")
        if self.noise_multiplier is not None and self.noise_multiplier != 0:
            check_positive("noise_multiplier", self.noise_multiplier)
        if self.target_epsilon is not None:
            check_epsilon(self.target_epsilon, "target_epsilon")
        check_delta(self.target_delta, "target_delta")
        if self.target not in ("verified", "claimed"):
            raise ValueError(f"target must be 'verified' or 'claimed', got {self.target!r}")
        check_positive_int("critic_steps", self.critic_steps, minimum=0)
        check_positive_int("warm_start_steps", self.warm_start_steps, minimum=0)
        for name in ("gp_weight", "recon_weight"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        check_positive("lr_g", self.lr_g)
        check_positive("lr_d", self.lr_d)
        for name in ("latent_dim", "g_width", "d_width"):
            check_positive_int(name, getattr(self, name), minimum=2)
        return self


def as_images(images: Any, name: str = "images") -> torch.Tensor:
    """``(n, H, W)`` or ``(n, 1, H, W)`` pixels in [0, 1] as a float32 ``(n, 1, H, W)`` tensor."""
    t = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() != 4 or t.shape[1] != 1 or t.shape[2] != t.shape[3]:
        raise ValueError(f"{name} must have shape (n, H, H) or (n, 1, H, H), got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1:
        raise ValueError(f"{name} must be finite pixels in [0, 1]")
    return t


def _gradient_penalty(d: nn.Module, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor):
    a = torch.rand(real.shape[0], 1, 1, 1)
    x = (a * real + (1 - a) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(d(x, y).sum(), x, create_graph=True)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


@dataclass
class _Training:
    """The models, optimisers, shards and sanitiser of one :meth:`DPGenerator.fit` run."""

    c: DPGenConfig
    x: torch.Tensor
    y: torch.Tensor
    rng: np.random.Generator
    shards: list[torch.Tensor]
    G: Generator
    E: Encoder
    Ds: list[Discriminator]
    d_opts: list[torch.optim.Optimizer]
    g_opt: torch.optim.Optimizer
    delta_joint: float
    san: ErrorFeedbackSanitizer
    y_fixed: torch.Tensor

    @classmethod
    def start(
        cls, c: DPGenConfig, x: torch.Tensor, y: torch.Tensor, k_cls: int, sigma: float
    ) -> _Training:
        """Seed, shard the records and build everything (in this order: it fixes the draws)."""
        n, side = x.shape[0], x.shape[2]
        torch.manual_seed(c.seed)
        rng = np.random.default_rng(c.seed)
        noise_gen = torch.Generator().manual_seed(c.seed + 1)
        shards = [
            torch.from_numpy(s) for s in np.array_split(rng.permutation(n), c.num_discriminators)
        ]
        G = Generator(side, k_cls, c.latent_dim, c.g_width, c.noise_injection)
        E = Encoder(side, c.latent_dim, c.d_width)
        Ds = [Discriminator(side, k_cls, c.d_width) for _ in range(c.num_discriminators)]
        d_opts = [torch.optim.Adam(d.parameters(), lr=c.lr_d, betas=(0.5, 0.9)) for d in Ds]
        g_opt = torch.optim.Adam(
            list(G.parameters()) + list(E.parameters()), lr=c.lr_g, betas=(0.5, 0.9)
        )
        delta_joint = joint_sensitivity(c.batch_size, c.clip_norm, c.error_clip)
        san = ErrorFeedbackSanitizer(
            c.clip_norm,
            c.error_clip,
            sigma * delta_joint,
            generator=noise_gen,
            scale=1.0 / c.batch_size,
        )
        y_fixed = torch.arange(c.batch_size) % k_cls
        return cls(c, x, y, rng, shards, G, E, Ds, d_opts, g_opt, delta_joint, san, y_fixed)

    def critic_step(self, k: int) -> float:
        """One WGAN-GP update of ``D_k`` on shard ``k`` (non-private, never released)."""
        c, shard = self.c, self.shards[k]
        idx = shard[torch.randint(len(shard), (c.batch_size,))]
        real, yr = self.x[idx], self.y[idx]
        with torch.no_grad():
            fake = self.G(torch.randn(c.batch_size, c.latent_dim), yr)
        d = self.Ds[k]
        loss = d(fake, yr).mean() - d(real, yr).mean()
        if c.gp_weight > 0:
            loss = loss + c.gp_weight * _gradient_penalty(d, real, fake, yr)
        self.d_opts[k].zero_grad(set_to_none=True)
        loss.backward()
        self.d_opts[k].step()
        return float(loss.detach())

    def generator_step(self, k: int) -> tuple[float, float]:
        """One step of ``G`` and ``E`` through ``D_k``'s sanitised input gradient: returns
        (generator loss per example, reconstruction loss)."""
        c = self.c
        z = torch.randn(c.batch_size, c.latent_dim)
        fake = self.G(z, self.y_fixed)
        x_in = fake.view_as(fake)  # the discriminator input: only D's gradient is hooked
        x_in.register_hook(self.san.hook(k))
        loss_g = -self.Ds[k](x_in, self.y_fixed).sum()
        loss_rec = ((self.E(fake) - z) ** 2).sum(1).mean()
        self.g_opt.zero_grad(set_to_none=True)
        (loss_g + c.recon_weight * loss_rec).backward()
        self.g_opt.step()
        self.Ds[k].zero_grad(set_to_none=True)  # D's parameter gradients of L_G are discarded
        return float(loss_g.detach()) / c.batch_size, float(loss_rec.detach())


class DPGenerator:
    """Conditional image generator trained with error-feedback DP-SGD (DP-EFSGD baseline).

    Parameters
    ----------
    config : DPGenConfig, optional
        Hyperparameters; keyword arguments override its fields (``DPGenerator(steps=500)``).
    progress : bool
        tqdm progress bar over generator steps.

    Attributes (after :meth:`fit`)
    ------------------------------
    generator_, encoder_ : nn.Module
        The trained generator and reconstruction encoder.
    noise_multiplier_ : float
        Joint ``σ = σ_n/Δ``; ``noise_std_`` is ``σ_n``, ``sensitivity_`` is ``Δ``.
    privacy_ : dict
        ``{"verified": PrivacyFigure, "claimed": PrivacyFigure}`` at ``target_delta``.
    history_ : list of dict
        Per-100-step losses, noiseless release norms and elapsed time.
    """

    def __init__(
        self, config: DPGenConfig | None = None, *, progress: bool = False, **overrides: Any
    ) -> None:
        base = asdict(config) if config is not None else asdict(DPGenConfig())
        unknown = set(overrides) - set(base)
        if unknown:
            raise TypeError(f"unknown DPGenerator parameter(s): {', '.join(sorted(unknown))}")
        base.update(overrides)
        self.config = DPGenConfig(**base).validate()
        self.progress = bool(progress)
        self.generator_: Generator | None = None
        self.encoder_: Encoder | None = None
        self.privacy_: dict[str, PrivacyFigure] = {}
        self.history_: list[dict[str, float]] = []

    # ------------------------------------------------------------------ privacy
    def resolve_noise_multiplier(self) -> float:
        """The joint noise multiplier: given, or calibrated on the chosen accountant."""
        c = self.config
        if c.noise_multiplier is not None:
            return float(c.noise_multiplier)
        assert c.target_epsilon is not None
        return calibrate_noise_multiplier(
            c.target_epsilon,
            c.target_delta,
            num_discriminators=c.num_discriminators,
            steps=c.steps,
            batch_size=c.batch_size,
            clip_norm=c.clip_norm,
            error_clip=c.error_clip,
            target=c.target,  # type: ignore[arg-type]
        )

    @property
    def privacy_report_(self) -> PrivacyReport:
        """``privacy_`` as a :class:`~product_noise.privacy.PrivacyReport` (empty before
        :meth:`fit`; ``privacy_`` itself is unchanged)."""
        return PrivacyReport.from_figures(
            self.privacy_.values(),
            source="product_noise.baselines.DPGenerator",
            what=f"DP-EFSGD generator, {self.config.steps} steps",
        )

    def privacy_figures(
        self, noise_multiplier: float, delta: float | None = None
    ) -> dict[str, PrivacyFigure]:
        """Verified (joint) and claimed (lineage) figures for this configuration."""
        c = self.config
        delta = c.target_delta if delta is None else check_delta(delta)
        return {
            VERIFIED: verified_figure(
                noise_multiplier,
                c.num_discriminators,
                c.steps,
                delta,
                batch_size=c.batch_size,
                clip_norm=c.clip_norm,
                error_clip=c.error_clip,
            ),
            CLAIMED: claimed_figure(
                noise_multiplier,
                c.num_discriminators,
                c.batch_size,
                c.steps,
                delta,
                clip_norm=c.clip_norm,
                error_clip=c.error_clip,
            ),
        }

    # ------------------------------------------------------------------ fit
    def fit(self, images: Any, labels: Any, *, num_classes: int | None = None) -> DPGenerator:
        """Train on private ``images`` (``(n, H, H)`` or ``(n, 1, H, H)``, pixels in [0, 1])
        with integer ``labels`` ``0..K-1``. Checks everything before any state changes."""
        c = self.config
        x, y, k_cls = self._check_fit_data(images, labels, num_classes)
        side = x.shape[2]
        sigma = self.resolve_noise_multiplier()
        figures = self.privacy_figures(sigma)

        run = _Training.start(c, x, y, k_cls, sigma)
        # warm start: each critic on its own shard only (non-private, never released)
        for k in range(c.num_discriminators):
            for _ in range(c.warm_start_steps):
                run.critic_step(k)
        history = self._train(run)
        if run.san.releases != c.steps:  # pragma: no cover - one release per step by construction
            raise RuntimeError(
                f"{run.san.releases} releases for {c.steps} steps: accounting invalid"
            )

        self.generator_, self.encoder_ = run.G.eval(), run.E.eval()
        self.num_classes_, self.side_ = k_cls, side
        self.noise_multiplier_ = sigma
        self.sensitivity_ = run.delta_joint
        self.noise_std_ = sigma * run.delta_joint
        self.privacy_ = figures
        self.history_ = history
        return self

    def _check_fit_data(
        self, images: Any, labels: Any, num_classes: int | None
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``fit``'s data checks: (images, labels, number of classes)."""
        c = self.config
        x = as_images(images)
        y = torch.as_tensor(np.asarray(labels)).long().view(-1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"labels has {y.shape[0]} entries for {x.shape[0]} images")
        if y.min() < 0:
            raise ValueError("labels must be integers >= 0")
        k_cls = int(y.max()) + 1 if num_classes is None else int(num_classes)
        if k_cls <= int(y.max()):
            raise ValueError(f"num_classes={num_classes} but labels go up to {int(y.max())}")
        n, side = x.shape[0], x.shape[2]
        if side % 4:
            raise ValueError(f"image side must be divisible by 4, got {side}")
        if n < c.num_discriminators:
            raise ValueError(
                f"num_discriminators={c.num_discriminators} exceeds the {n} records: every "
                "shard needs at least one record"
            )
        return x, y, k_cls

    def _train(self, run: _Training) -> list[dict[str, float]]:
        """The ``steps`` private generator steps (with a progress bar if asked); the history."""
        c = run.c
        it: Any = range(c.steps)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(it, desc="DP-EFSGD generator steps", unit="step")
            it = bar
        t0 = time.perf_counter()
        history: list[dict[str, float]] = []
        d_loss = g_loss = rec = 0.0
        for t in it:
            k = int(run.rng.integers(c.num_discriminators))
            for _ in range(c.critic_steps):
                d_loss = run.critic_step(k)
            g_loss, rec = run.generator_step(k)
            if (t + 1) % 100 == 0 or t + 1 == c.steps:
                history.append(
                    {
                        "step": t + 1,
                        "d_loss": d_loss,
                        "g_loss": g_loss,
                        "recon_loss": rec,
                        "noiseless_norm": run.san.last_noiseless_norm,
                        "seconds": time.perf_counter() - t0,
                    }
                )
                if bar is not None:
                    bar.set_postfix(d=f"{d_loss:.3g}", g=f"{g_loss:.3g}", rec=f"{rec:.3g}")
        if bar is not None:
            bar.close()
        return history

    # ------------------------------------------------------------------ sample
    @torch.no_grad()
    def sample(
        self, n: int, labels: Any | None = None, *, seed: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` images ``(n, 1, H, H)`` float32 in [0, 1] and their labels (default:
        ``i mod K``, balanced)."""
        if self.generator_ is None:
            raise RuntimeError("call fit() (or load_state_dict()) before sample()")
        n = check_positive_int("n", n)
        if labels is None:
            y = torch.arange(n) % self.num_classes_
        else:
            y = torch.as_tensor(np.asarray(labels)).long().view(-1)
            if y.shape[0] != n or y.min() < 0 or y.max() >= self.num_classes_:
                raise ValueError(f"labels must be {n} integers in [0, {self.num_classes_})")
        g = torch.Generator().manual_seed(self.config.seed + 2 if seed is None else seed)
        state = torch.random.get_rng_state()
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=g)))
        out = []
        for s in range(0, n, 1024):
            yb = y[s : s + 1024]
            out.append(
                self.generator_(torch.randn(len(yb), self.config.latent_dim, generator=g), yb)
            )
        torch.random.set_rng_state(state)
        return torch.cat(out).numpy(), y.numpy()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Generator/encoder weights, configuration and privacy figures (a release checkpoint)."""
        if self.generator_ is None or self.encoder_ is None:
            raise RuntimeError("nothing to save: call fit() first")
        return {
            "config": asdict(self.config),
            "generator": self.generator_.state_dict(),
            "encoder": self.encoder_.state_dict(),
            "num_classes": self.num_classes_,
            "side": self.side_,
            "noise_multiplier": self.noise_multiplier_,
            "privacy": {k: f.to_dict() for k, f in self.privacy_.items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], *, progress: bool = False) -> DPGenerator:
        """A fitted generator restored from :meth:`state_dict`."""
        obj = cls.__new__(cls)
        obj.progress = bool(progress)
        obj.history_ = []
        return obj.load_state_dict(state)

    def load_state_dict(self, state: dict[str, Any]) -> DPGenerator:
        """Restore a :meth:`state_dict` (sampling and privacy figures; not the critics)."""
        cfg = DPGenConfig(**state["config"]).validate()
        c = cfg
        G = Generator(
            state["side"], state["num_classes"], c.latent_dim, c.g_width, c.noise_injection
        )
        E = Encoder(state["side"], c.latent_dim, c.d_width)
        G.load_state_dict(state["generator"])
        E.load_state_dict(state["encoder"])
        self.config = cfg
        self.generator_, self.encoder_ = G.eval(), E.eval()
        self.num_classes_, self.side_ = int(state["num_classes"]), int(state["side"])
        self.noise_multiplier_ = float(state["noise_multiplier"])
        self.sensitivity_ = joint_sensitivity(c.batch_size, c.clip_norm, c.error_clip)
        self.noise_std_ = self.noise_multiplier_ * self.sensitivity_
        self.privacy_ = {k: PrivacyFigure(**d) for k, d in state["privacy"].items()}
        return self
