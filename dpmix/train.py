"""Training on a DPMix release: the thesis' CNN, soft-label KL loss, Adam with step decay.

Thesis (Mahmud 2025, Table 4.1 and §4.1): conv 32@5x5 ReLU → max-pool 2 → conv 48@5x5 ReLU →
max-pool 2 → FC 100 ReLU → FC 100 ReLU → FC 10 softmax; Keras ``KLDivergence`` loss on the noisy
soft labels; Adam, learning rate 1e-4 halved every 10 epochs, 50 epochs, 10 % validation split.
Training only post-processes the release, so the model inherits its (ε, δ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

__all__ = ["ThesisCNN", "kl_soft_label_loss", "TrainResult", "train_on_release", "evaluate"]

_KERAS_EPS = 1e-7


class ThesisCNN(nn.Module):
    """The thesis' CNN for 1x28x28 inputs (returns logits; softmax is in the loss)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 48, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(48 * 4 * 4, 100),
            nn.ReLU(),
            nn.Linear(100, 100),
            nn.ReLU(),
            nn.Linear(100, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def kl_soft_label_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras ``KLDivergence`` on (noisy) soft labels, batch mean.

    ``Σ_k t_k log(t_k / p_k)`` with ``t`` and ``p = softmax(logits)`` clipped to ``[1e-7, 1]``
    as Keras does (negative noisy labels thus count as 1e-7; no renormalisation).
    """
    t = target.clamp(_KERAS_EPS, 1.0)
    logp = torch.log_softmax(logits, dim=1).clamp(math.log(_KERAS_EPS), 0.0)
    return (t * (torch.log(t) - logp)).sum(dim=1).mean()


@dataclass
class TrainResult:
    """Outcome of :func:`train_on_release`.

    Attributes
    ----------
    test_accuracy : float
        Accuracy on the real test set (of the restored best model with early stopping).
    history : list of dict
        Per epoch: ``epoch``, ``lr``, ``train_loss``, ``val_accuracy``.
    """

    test_accuracy: float
    history: list[dict] = field(default_factory=list)


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on ``(X, y)`` (``y`` integer labels)."""
    model.eval()
    correct = 0
    for s in range(0, X.shape[0], batch_size):
        correct += int((model(X[s : s + batch_size]).argmax(1) == y[s : s + batch_size]).sum())
    return correct / max(1, X.shape[0])


def train_on_release(
    X_syn: np.ndarray | torch.Tensor,
    Y_syn: np.ndarray | torch.Tensor,
    X_test: np.ndarray | torch.Tensor,
    y_test: np.ndarray | torch.Tensor,
    *,
    loss: Literal["kl", "ce"] = "kl",
    epochs: int = 50,
    lr: float = 1e-4,
    halve_every: int = 10,
    batch_size: int = 32,
    val_split: float = 0.1,
    patience: int | None = None,
    seed: int = 0,
    progress: bool = False,
    num_threads: int | None = 1,
) -> TrainResult:
    """Train :class:`ThesisCNN` on a release and evaluate on the real test set.

    Parameters
    ----------
    X_syn, Y_syn
        The release: images ``(T, 1, 28, 28)`` (or ``(T, 784)``) and labels ``(T, K)``.
    X_test, y_test
        Real test images (same layout) and integer labels.
    loss : {"kl", "ce"}
        ``"kl"``: Keras KL divergence to the soft labels (thesis §4.1). ``"ce"``: cross-entropy
        to ``argmax`` of the labels (the thesis' sweeps, App. B).
    epochs, lr, halve_every, batch_size, val_split
        Thesis schedule: Adam at ``lr`` halved every ``halve_every`` epochs; Keras' default batch
        32; the last ``val_split`` of the (shuffled) release is held out for validation.
    patience : int, optional
        Early stopping on validation accuracy with the best weights restored (the sweeps used 3).
    seed : int
        Seed of the initialisation and shuffling.
    progress : bool
        tqdm bar over epochs.
    num_threads : int, optional
        torch intra-op threads during training (restored afterwards). Batches of 32 gain
        nothing from more threads and slow down badly on a loaded machine; ``None`` keeps the
        current setting.
    """
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        return _train(
            X_syn,
            Y_syn,
            X_test,
            y_test,
            loss,
            epochs,
            lr,
            halve_every,
            batch_size,
            val_split,
            patience,
            seed,
            progress,
        )
    finally:
        torch.set_num_threads(previous)


def _train(
    X_syn,
    Y_syn,
    X_test,
    y_test,
    loss,
    epochs,
    lr,
    halve_every,
    batch_size,
    val_split,
    patience,
    seed,
    progress,
) -> TrainResult:
    if loss not in ("kl", "ce"):
        raise ValueError(f"loss must be 'kl' or 'ce', got {loss!r}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    X = torch.as_tensor(np.asarray(X_syn) if not torch.is_tensor(X_syn) else X_syn).float()
    Y = torch.as_tensor(np.asarray(Y_syn) if not torch.is_tensor(Y_syn) else Y_syn).float()
    Xt = torch.as_tensor(np.asarray(X_test) if not torch.is_tensor(X_test) else X_test).float()
    yt = torch.as_tensor(np.asarray(y_test) if not torch.is_tensor(y_test) else y_test).long()
    X, Xt = X.reshape(-1, 1, 28, 28), Xt.reshape(-1, 1, 28, 28)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X_syn has {X.shape[0]} rows but Y_syn has {Y.shape[0]}")
    perm = torch.randperm(X.shape[0], generator=gen)
    n_val = int(round(val_split * X.shape[0]))
    val, tr = perm[:n_val], perm[n_val:]
    Xv, yv = X[val], Y[val].argmax(1)
    X, Y = X[tr], Y[tr]
    model = ThesisCNN(num_classes=Y.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=halve_every, gamma=0.5)
    hard = Y.argmax(1)
    best_acc, best_state, bad = -1.0, None, 0
    history = []
    epoch_iter = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc="train", unit="epoch", leave=False)
    for epoch in epoch_iter:
        model.train()
        order = torch.randperm(X.shape[0], generator=gen)
        total = 0.0
        for s in range(0, X.shape[0], batch_size):
            b = order[s : s + batch_size]
            logits = model(X[b])
            if loss == "kl":
                value = kl_soft_label_loss(logits, Y[b])
            else:
                value = nn.functional.cross_entropy(logits, hard[b])
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            total += value.item() * b.numel()
        val_acc = evaluate(model, Xv, yv) if n_val else float("nan")
        history.append(
            {
                "epoch": epoch + 1,
                "lr": opt.param_groups[0]["lr"],
                "train_loss": total / max(1, X.shape[0]),
                "val_accuracy": val_acc,
            }
        )
        sched.step()
        if patience is not None and n_val:
            if val_acc > best_acc:
                best_acc, bad = val_acc, 0
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(evaluate(model, Xt, yt), history)
