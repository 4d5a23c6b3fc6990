"""Small networks of the DP generator: conditional generator with noise injection, conditional
critics (discriminators), the reconstruction encoder and the evaluation CNN.

All of them work for 1×H×W images with ``H = W`` divisible by 4 (8×8 digits, 28×28 MNIST).
The critics have **no** batch-coupling layer (no batch norm), so the gradient of the summed
critic output with respect to generated image ``i`` depends on image ``i`` only: it is the
per-sample gradient ``∂L_G/∂x̃_i`` that the sanitiser clips.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NoiseInjection", "Generator", "Discriminator", "Encoder", "SmallCNN"]


def _check_side(side: int) -> int:
    if not isinstance(side, int) or side < 4 or side % 4:
        raise ValueError(f"image side must be an integer >= 4 divisible by 4, got {side!r}")
    return side


class NoiseInjection(nn.Module):
    """``h + w_c · n`` with ``n ~ N(0, 1)`` per pixel (shared over channels) and a learned
    per-channel scale ``w`` (StyleGAN-style). Utility only: the generator reads no private data,
    so this noise plays no part in the privacy guarantee."""

    def __init__(self, channels: int, init: float = 0.05) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((1, channels, 1, 1), float(init)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n = torch.randn(h.shape[0], 1, h.shape[2], h.shape[3], device=h.device, dtype=h.dtype)
        return h + self.weight * n


class _UpBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, noise: bool) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.noise = NoiseInjection(c_out) if noise else nn.Identity()
        self.act = nn.LeakyReLU(0.2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.act(self.noise(self.conv(self.up(h))))


class Generator(nn.Module):
    """Conditional generator ``(z, y) → 1×H×W`` in [0, 1].

    ``[z, embed(y)] → linear → width×(H/4)×(H/4) → two upsampling blocks (nearest ×2, 3×3
    conv, noise injection, LeakyReLU) → 3×3 conv → sigmoid``.
    """

    def __init__(
        self,
        side: int = 28,
        num_classes: int = 10,
        latent_dim: int = 32,
        width: int = 32,
        noise_injection: bool = True,
    ) -> None:
        super().__init__()
        self.side = _check_side(side)
        self.num_classes = int(num_classes)
        self.latent_dim = int(latent_dim)
        self.width = int(width)
        s = side // 4
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.fc = nn.Sequential(nn.Linear(2 * latent_dim, width * s * s), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(
            _UpBlock(width, width, noise_injection), _UpBlock(width, width // 2, noise_injection)
        )
        self.out = nn.Conv2d(width // 2, 1, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s = self.side // 4
        h = self.fc(torch.cat([z, self.embed(y)], dim=1)).view(-1, self.width, s, s)
        return torch.sigmoid(self.out(self.blocks(h)))


def _conv_trunk(width: int) -> list[nn.Module]:
    """Two stride-2 3×3 convolutions with LeakyReLU, flattened: ``side → side/4`` (critic and
    encoder share it)."""
    return [
        nn.Conv2d(1, width, 3, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
    ]


class Discriminator(nn.Module):
    """Conditional WGAN critic with a projection head; no batch norm (per-sample independent)."""

    def __init__(self, side: int = 28, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        _check_side(side)
        self.features = nn.Sequential(*_conv_trunk(width))
        feat = 2 * width * (side // 4) ** 2
        self.head = nn.Linear(feat, 1)
        self.embed = nn.Embedding(num_classes, feat)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.head(h).squeeze(1) + (self.embed(y) * h).sum(1) / h.shape[1] ** 0.5


class Encoder(nn.Module):
    """Reconstruction encoder ``x̃ → ẑ`` (used on generated images only)."""

    def __init__(self, side: int = 28, latent_dim: int = 32, width: int = 16) -> None:
        super().__init__()
        _check_side(side)
        self.net = nn.Sequential(
            *_conv_trunk(width), nn.Linear(2 * width * (side // 4) ** 2, latent_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Evaluation CNN: two 3×3 conv + max-pool stages (16, 32 channels), a 64-unit hidden
    layer (the FID feature layer, :meth:`features`) and a linear classifier."""

    def __init__(self, side: int = 28, num_classes: int = 10, feature_dim: int = 64) -> None:
        super().__init__()
        _check_side(side)
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * (side // 4) ** 2, feature_dim),
            nn.ReLU(),
        )
        self.fc = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))
