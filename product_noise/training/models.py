"""The per-dataset networks of the product-noise paper's DP-SGD experiments.

Architectures and parameter counts follow the official scripts of the product-noise paper (Liu,
Ji, Fang, Wei, Li, SIGMOD 2026, arXiv:2512.06253);
the parameter count M matters because it sets the product-noise constant ``t(M, k)``.

=============  ==========================================================  =========
dataset        model                                                       M
=============  ==========================================================  =========
MNIST          :class:`SampleConvNet` (Opacus' example network)            26,010
CIFAR-10       :class:`CifarConvNet` (4 conv + AvgPool, Opacus' example)   131,466
Adult          :class:`AdultMLP` ``d → 16 → 2``                            16d + 50
IMDB           :class:`ImdbNet` Embedding(V, 16) → mean → 16 → 2           16V + 306
MovieLens      :class:`NeuMF` MF (5) + MLP embeddings (10+10) → Linear(25, 5)  15(U+I) + 130
=============  ==========================================================  =========

(IMDB with V = 28,996, the bert-base-cased vocabulary: 464,242; MovieLens-1M with 6,040 users and
3,706 movies: 146,320.)
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "SampleConvNet",
    "CifarConvNet",
    "AdultMLP",
    "ImdbNet",
    "NeuMF",
    "count_parameters",
]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (the noise dimension M).

    Parameters
    ----------
    model : torch.nn.Module
        The network.

    Returns
    -------
    M : int
        Total ``numel()`` of the parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class SampleConvNet(nn.Module):
    """Opacus' MNIST ``SampleConvNet``: 26,010 parameters for 1×28×28 inputs."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 8, 2, padding=3)
        self.conv2 = nn.Conv2d(16, 32, 4, 2)
        self.fc1 = nn.Linear(32 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, 1, 28, 28)
            Float images.

        Returns
        -------
        logits : torch.Tensor of shape (batch, num_classes)
            Unnormalised class scores.
        """
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2, 1)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2, 1)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class CifarConvNet(nn.Module):
    """Four 3×3 convolutions (32-64-64-128) with ReLU, AvgPool after the first three,
    global average pooling and Linear(128, 10): 131,466 parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, 3, 32, 32)
            Float images.

        Returns
        -------
        logits : torch.Tensor of shape (batch, num_classes)
            Unnormalised class scores.
        """
        return self.fc(self.features(x).flatten(1))


class AdultMLP(nn.Module):
    """``d → 16 → 2`` with ReLU (16d + 50 parameters)."""

    def __init__(self, in_features: int, hidden: int = 16, num_classes: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, in_features)
            Float features.

        Returns
        -------
        logits : torch.Tensor of shape (batch, num_classes)
            Unnormalised class scores.
        """
        return self.net(x)


class ImdbNet(nn.Module):
    """Embedding(V, 16) → mean over tokens → Linear(16, 16) → ReLU → Linear(16, 2).

    Token id 0 is padding and is excluded from the mean (the official script pools over the
    padded length; masking keeps short reviews from being diluted and does not change M).
    """

    def __init__(self, vocab_size: int = 28_996, embed_dim: int = 16, num_classes: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.fc1 = nn.Linear(embed_dim, 16)
        self.fc2 = nn.Linear(16, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Parameters
        ----------
        tokens : torch.Tensor of shape (batch, seq_len)
            Long token ids, 0 = padding.

        Returns
        -------
        logits : torch.Tensor of shape (batch, num_classes)
            Unnormalised class scores.
        """
        mask = (tokens != 0).unsqueeze(-1).to(self.embedding.weight.dtype)
        emb = self.embedding(tokens) * mask
        pooled = emb.sum(1) / mask.sum(1).clamp_min(1.0)
        return self.fc2(torch.relu(self.fc1(pooled)))


class NeuMF(nn.Module):
    """The paper's NeuMF-like rating classifier: 5 rating classes.

    MF embeddings (dim 5) of user and item multiplied elementwise, concatenated with MLP
    embeddings (dim 10 each), then Linear(25, 5). Input: ``(batch, 2)`` long tensor of
    (user, item) indices. 15·(users + items) + 130 parameters.
    """

    def __init__(self, num_users: int, num_items: int, mf_dim: int = 5, mlp_dim: int = 10) -> None:
        super().__init__()
        self.user_mf = nn.Embedding(num_users, mf_dim)
        self.item_mf = nn.Embedding(num_items, mf_dim)
        self.user_mlp = nn.Embedding(num_users, mlp_dim)
        self.item_mlp = nn.Embedding(num_items, mlp_dim)
        self.out = nn.Linear(mf_dim + 2 * mlp_dim, 5)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Parameters
        ----------
        pairs : torch.Tensor of shape (batch, 2)
            Long ``(user, item)`` indices.

        Returns
        -------
        logits : torch.Tensor of shape (batch, 5)
            Unnormalised class scores.
        """
        u, i = pairs[:, 0], pairs[:, 1]
        mf = self.user_mf(u) * self.item_mf(i)
        mlp = torch.cat([self.user_mlp(u), self.item_mlp(i)], dim=-1)
        return self.out(torch.cat([mf, mlp], dim=-1))
