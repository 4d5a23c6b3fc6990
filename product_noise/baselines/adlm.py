"""Adaptive Laplace Mechanism (AdLM; Phan, Wu, Hu, Dou, ICDM 2017, arXiv 1709.05750).

Reproduced from the authors' code (``haiphanNJIT/PrivateDeepLearning`` @77fb357,
``AdLM/MNIST/AdLM.py``, ``AdLM/MNIST/dpLRP_MNIST.py``, ``AdLM/Cifar10/*``) and accounted twice:
the figure the paper *claims* and the figure *verified* for what is actually run.

The mechanism
-------------
1. **dpLRP** (budget ε1). A relevance model (LeNet-5-like, inputs in [-1, 1]) is trained
   non-privately; LRP-ε (ε = 1, Bach et al. 2015 Eq. 58, starting from all output scores) gives
   per-feature relevances, averaged over ``lrp_samples`` (code: 2000) examples, normalised as
   ``(R̄ - min)^4 / (max - min)^4`` and perturbed with ``Lap(2d/(ε1 N))`` (code: N = 60000, the
   dataset size; ``dplrp_n="averaged"`` uses the number of averaged examples instead).
2. **Adaptive Laplace input noise** (budget ε2). ``β_j = d·R̄_j/Σ_k R̄_k`` (R̄ and β floored at
   1e-5, so mean β = 1) and ``x̃_j = x_j + (1/|L|)·Lap(Δ_h0/(β_j ε2))``, then ``x̃`` is clipped to
   [-10, 10]. ``Δ_h0 = 2·C_in·|feature map|·|patch|`` is computed from the first block of the
   actual network (MNIST net: 2·1·14·14·25 = 9800; CIFAR net: 2·3·10·10·9 = 5400). ILM is
   ``relevance="uniform"`` (β ≡ 1).
3. The rest of the network (MNIST: conv5×5(32) → pool → conv5×5(64) → pool → FC(hk = 25) → BN →
   ReLU → clip[-1, 1]; CIFAR: a compact version of the code's net, see :class:`AdLMNet`).
4. **Functional mechanism** on the output layer (budget ε3): per-class sigmoid loss with
   ``log(1 + e^{-|x|}) ≈ log 2 - |x|/2 + x²/8`` and ``- Σ N∘W`` with
   ``N ~ Lap(Δ_F/ε3)/|L|``, ``Δ_F = K(hk + hk²/4)``, drawn once; Adam (code: lr 3e-4).

Input-noise policies: ``redraw="step"`` (MNIST code: fresh noise every step) or ``"once"``
(what the paper's claim needs; CIFAR code), and ``noise_sharing="batch"`` (code: one noise
vector for the whole batch) or ``"example"`` (independent noise per example).

Which assumptions of the paper's proof this implementation meets
----------------------------------------------------------------
The claim is (ε1 + ε2 + ε3)-DP, "independent of the number of training steps".

* Met: the per-feature Laplace scales, Δ_h0 and Δ_F as in the code; the functional-mechanism
  noise drawn once; clipping of h_k to [-1, 1]; inputs in [0, 1] (checked).
* Not met by the code, hence not by the faithful configuration
  (``redraw="step"``, ``noise_sharing="batch"``, ``relevance="private"``, ``label_privacy="none"``):

  - the input noise is redrawn every step, so each record is released once per epoch; the
    per-step claim composed over the redraws is ``ε1 + epochs·ε2 + ε3`` (MNIST code:
    0.075 + 2400·0.075 + 0.15 ≈ 180.2), reported as a second *claimed* figure;
  - one noise vector is shared by the batch and then passes through a nonlinear network:
    differences ``x_i - x_j`` are released noise-free, so no finite ε can be proven;
  - the relevance model is trained non-privately on the private data, and the min/max
    normalisation is applied before the dpLRP noise: β leaks the data without bound;
  - the labels enter the gradients of all lower layers unperturbed (the functional mechanism
    only perturbs the output layer's label coefficient, for fixed h_k): no finite ε.
  - the dpLRP noise assumes N = 60000 while averaging 2000 examples (sensitivity 30× too small).

Verified figure
---------------
It is ``inf`` (with the reasons in ``source``) in every configuration above: that is the honest
figure, not a failure. It is finite only when the input noise is per example
(``noise_sharing="example"``), β does not depend on the private data (``relevance="public"``: the
relevance model is trained and averaged on a declared public split, or ``"uniform"``), and the
labels are declared public (``label_privacy="public"``) or released by K-ary randomized response
(``"randomized_response"``). Then training is post-processing of a local release of each record:
``releases`` (1 for ``redraw="once"``, ``epochs`` for ``"step"``) Laplace releases of the image
with per-coordinate scales ``b_j = Δ_h0/(|L| β_j ε2)`` on coordinates with range 1, plus the
label release. Pure ε = releases·Σ_j 1/b_j + ε_label; the reported (ε, δ) composes the exact
per-coordinate Laplace PLDs (scales rounded down to a 1% grid: pessimistic) and the
randomized-response PLD with ``dp_accounting``. Neighbouring relation: replace one record.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..accounting.calibrate import GrowingBracket, calibrate
from ..privacy import CLAIMED, VERIFIED, PrivacyFigure, PrivacyReport
from ..validation import check_delta, check_epsilon, check_positive, check_positive_int

__all__ = [
    "AdLMNet",
    "RelevanceNet",
    "AdLMClassifier",
    "first_layer_sensitivity",
    "functional_mechanism_sensitivity",
    "dplrp_noise_scale",
    "lrp_epsilon",
    "train_relevance_model",
    "dp_lrp",
    "budget_weights",
    "input_noise_scales",
    "sample_input_noise",
    "taylor_sigmoid_loss",
    "exact_sigmoid_loss",
    "claimed_figures",
    "local_release_epsilon",
    "randomized_response_labels",
    "rr_keep_probability",
]

R_LOWER_BOUND = 1e-5  # floor of R̄ and β in the code
INPUT_CLIP = 10.0  # x̃ is clipped to [-10, 10] in the MNIST code
_SCALE_GRID = 1.01  # per-coordinate privacy ratios rounded up to this geometric grid
_PLD_DISC = 1e-3  # value discretisation of the verified PLD


# ----------------------------------------------------------------------------- networks
class AdLMNet(nn.Module):
    """The AdLM classifier network of the authors' code, for any image size.

    ``arch="mnist"``: conv5×5(32, SAME) → ReLU → maxpool 2 → conv5×5(64) → ReLU → maxpool 2 →
    FC(hk) → BN (batch statistics, eps 1e-3, as ``tf.nn.moments`` in the code) → ReLU →
    clip[-1, 1] → FC(K). ``arch="cifar"``: a compact version of the CIFAR code's net:
    conv3×3(128, stride 2) → BN → ReLU → [conv5×5(128) ⊕ input] → BN → ReLU → conv5×5(256) → BN →
    ReLU → global avgpool → FC(2·hk) → BN → maxout(2) → clip[-1, 1] → FC(K).

    The BN before the output layer always uses batch statistics (the code has no running
    averages), so :meth:`AdLMClassifier.predict` scores large batches.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        n_classes: int = 10,
        hk: int = 25,
        arch: Literal["mnist", "cifar"] = "mnist",
    ) -> None:
        super().__init__()
        c, h, w = _check_image_shape(image_shape)
        check_positive_int("n_classes", n_classes, minimum=2)
        check_positive_int("hk", hk)
        if arch not in ("mnist", "cifar"):
            raise ValueError(f"arch must be 'mnist' or 'cifar', got {arch!r}")
        self.image_shape = (c, h, w)
        self.arch = arch
        self.hk = int(hk)
        self.n_classes = int(n_classes)
        if arch == "mnist":
            self.conv1 = nn.Conv2d(c, 32, 5, padding=2)
            self.pool1: nn.Module = nn.MaxPool2d(2, ceil_mode=True)
            self.body = nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(32, 64, 5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.Flatten(),
            )
            width = 1
        else:
            self.conv1 = nn.Conv2d(c, 128, 3, stride=2, padding=1)
            self.pool1 = nn.Identity()
            self.body = _CifarBody()
            width = 2
        with torch.no_grad():
            n_flat = self.body(self.pool1(self.conv1(torch.zeros(1, c, h, w)))).shape[1]
        self.fc = nn.Linear(n_flat, width * self.hk)
        self.bn = nn.BatchNorm1d(width * self.hk, eps=1e-3, track_running_stats=False)
        self.out = nn.Linear(self.hk, self.n_classes)
        self._init_like_code()

    def _init_like_code(self) -> None:
        # weight_variable: truncated normal std 0.1; bias_variable: 0.1 (MNIST code)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.1, a=-0.2, b=0.2)
                nn.init.constant_(m.bias, 0.1)

    @property
    def feature_map_size(self) -> int:
        """Spatial size of the first block's output (after its pooling): |feature map|."""
        c, h, w = self.image_shape
        with torch.no_grad():
            out = self.pool1(self.conv1(torch.zeros(1, c, h, w)))
        return int(out.shape[-2] * out.shape[-1])

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """h_k in [-1, 1] (the input of the output layer)."""
        z = self.body(self.pool1(self.conv1(x)))
        z = self.bn(self.fc(z))
        if self.arch == "mnist":
            z = F.relu(z)
        else:
            z = z.view(z.shape[0], self.hk, 2).amax(dim=-1)  # maxout
        return z.clamp(-1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``h_k W + b`` (no noise: noise is added to ``x`` by the trainer)."""
        return self.out(self.hidden(x))


class _CifarBody(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(128)
        self.conv2 = nn.Conv2d(128, 128, 5, padding=2)
        self.bn2 = nn.BatchNorm2d(256)
        self.conv3 = nn.Conv2d(256, 256, 5, padding=2)
        self.bn3 = nn.BatchNorm2d(256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(x))
        x = F.relu(self.bn2(torch.cat([self.conv2(x), x], dim=1)))
        x = F.relu(self.bn3(self.conv3(x)))
        return x.mean(dim=(2, 3))


class RelevanceNet(nn.Module):
    """LeNet-5-like relevance model of the LRP toolbox (conv5×5(10) → ReLU → sumpool 2 →
    conv5×5(25) → ReLU → sumpool 2 → FC(100) → ReLU → FC(K)); inputs in [-1, 1]."""

    def __init__(self, image_shape: Sequence[int], n_classes: int = 10) -> None:
        super().__init__()
        c, h, w = _check_image_shape(image_shape)
        self.layers = nn.Sequential(
            nn.Conv2d(c, 10, 5, padding=2),
            nn.ReLU(),
            _SumPool(),
            nn.Conv2d(10, 25, 5, padding=2),
            nn.ReLU(),
            _SumPool(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.layers(torch.zeros(1, c, h, w)).shape[1]
        self.layers.append(nn.Linear(n_flat, 100))
        self.layers.append(nn.ReLU())
        self.layers.append(nn.Linear(100, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _SumPool(nn.Module):
    """2×2 sum pooling (SumPool 2 2 2 2 of the toolbox's LeNet-5)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2, ceil_mode=True) * 4.0


def lrp_epsilon(model: RelevanceNet, x: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """LRP-ε relevances (Bach et al. 2015, Eq. 58) of the inputs ``x``, shape of ``x``.

    Starts from all output scores (``nn.lrp(ypred, 'epsilon', 1.)`` in the code) and applies
    ``R_i = Σ_j a_i w_ij / (z_j + ε·sign(z_j)) R_j`` (sign(0) = +1) through every affine and
    sum-pooling layer; ReLU passes relevance unchanged.
    """
    acts = [x.detach()]
    with torch.no_grad():
        for layer in model.layers:
            acts.append(layer(acts[-1]))
    rel = acts[-1].clone()
    for layer, a in zip(reversed(model.layers), reversed(acts[:-1])):
        if isinstance(layer, nn.ReLU):
            continue
        if isinstance(layer, nn.Flatten):
            rel = rel.reshape(a.shape)
            continue
        a = a.clone().requires_grad_(True)
        with torch.enable_grad():
            z = layer(a)
            stab = torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))
            s = (rel / (z + eps * stab)).detach()
            (c,) = torch.autograd.grad(z, a, grad_outputs=s)
        rel = (a * c).detach()
    return rel


def train_relevance_model(
    X: torch.Tensor, y: torch.Tensor, n_classes: int, *, epochs: int = 5, seed: int = 0
) -> RelevanceNet:
    """Train :class:`RelevanceNet` non-privately (Adam 1e-3, batch 64) on ``2X - 1``."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = RelevanceNet(tuple(X.shape[1:]), n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs = 2.0 * X - 1.0
    for _ in range(epochs):
        perm = torch.randperm(len(xs), generator=gen)
        for i in range(0, len(xs), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            F.cross_entropy(model(xs[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def dplrp_noise_scale(d: int, epsilon1: float, n: int) -> float:
    """Laplace scale of dpLRP, ``2d/(ε1·N)`` (code: d = 784, N = 60000)."""
    d = check_positive_int("d", d)
    return 2.0 * d / (check_epsilon(epsilon1, "epsilon1") * check_positive_int("n", n))


def dp_lrp(
    model: RelevanceNet,
    X: torch.Tensor,
    epsilon1: float,
    *,
    n_noise: int,
    n_samples: int = 2000,
    inflation: float = 4.0,
    rng: np.random.Generator,
) -> np.ndarray:
    """dpLRP as in ``dpLRP_MNIST.py``: mean LRP-ε relevance of ``n_samples`` random rows of
    ``X`` (inputs in [0, 1], mapped to [-1, 1]), normalised ``((R̄-min)/(max-min))^inflation``,
    plus ``Lap(2d/(ε1·n_noise))`` per feature. Returns a flat array of length d = C·H·W."""
    idx = rng.permutation(len(X))[: min(int(n_samples), len(X))]
    rel = torch.zeros(X.shape[1:])
    for i in range(0, len(idx), 256):
        rel += lrp_epsilon(model, 2.0 * X[idx[i : i + 256]] - 1.0).sum(dim=0)
    avg = (rel / len(idx)).flatten().numpy().astype(np.float64)
    lo, hi = float(avg.min()), float(avg.max())
    norm = ((avg - lo) / (hi - lo)) ** inflation if hi > lo else np.ones_like(avg)
    return norm + rng.laplace(0.0, dplrp_noise_scale(avg.size, epsilon1, n_noise), avg.size)


def budget_weights(relevance: np.ndarray, *, inflation: float = 1.0) -> np.ndarray:
    """β_j = d·R̄_j^infl / Σ_k R̄_k^infl with R̄ and β floored at 1e-5 (``AdLM.py``): mean 1."""
    r = np.maximum(np.asarray(relevance, dtype=np.float64).ravel(), R_LOWER_BOUND) ** inflation
    return np.maximum(r.size * r / r.sum(), R_LOWER_BOUND)


# ----------------------------------------------------------------------------- constants
def first_layer_sensitivity(model: AdLMNet) -> float:
    """Δ_h0 = 2·C_in·|feature map|·|patch| from the network's first block.

    |feature map| is the spatial size of the first block's output after its pooling and
    |patch| the kernel area: MNIST net on 28×28: 2·1·14·14·25 = 9800 (``AdLM.py``); CIFAR net on
    20×20×3: 2·3·10·10·9 = 5400 (``AdLMCNN_CIFAR.py``).
    """
    kh, kw = model.conv1.kernel_size
    return float(2 * model.conv1.in_channels * model.feature_map_size * kh * kw)


def functional_mechanism_sensitivity(hk: int, n_classes: int = 10) -> float:
    """Δ_F = K·(hk + hk²/4) (code: ``10*(hk + 1/4*hk**2)``, "Lemma 5")."""
    hk = check_positive_int("hk", hk)
    return float(check_positive_int("n_classes", n_classes) * (hk + hk**2 / 4.0))


def input_noise_scales(
    beta: np.ndarray, delta_h0: float, epsilon2: float, batch_size: int
) -> np.ndarray:
    """Per-feature Laplace scales of x̃ - x: ``Δ_h0/(β_j·ε2·|L|)``."""
    beta = np.asarray(beta, dtype=np.float64)
    if beta.size == 0 or not np.all(beta > 0):
        raise ValueError("beta must be a non-empty array of positive weights")
    return check_positive("delta_h0", delta_h0) / (
        beta * check_epsilon(epsilon2, "epsilon2") * check_positive_int("batch_size", batch_size)
    )


def sample_input_noise(
    scales: np.ndarray, n: int, sharing: Literal["batch", "example"], rng: np.random.Generator
) -> torch.Tensor:
    """Laplace input noise for ``n`` examples: one vector repeated (``"batch"``, the code) or
    ``n`` independent vectors (``"example"``). Shape (n, d), float32."""
    scales = np.asarray(scales, dtype=np.float64)
    if sharing == "batch":
        noise = np.broadcast_to(rng.laplace(0.0, scales), (n, scales.size))
    elif sharing == "example":
        noise = rng.laplace(0.0, scales, size=(n, scales.size))
    else:
        raise ValueError(f"noise_sharing must be 'batch' or 'example', got {sharing!r}")
    return torch.from_numpy(np.ascontiguousarray(noise, dtype=np.float32))


def taylor_sigmoid_loss(logits: torch.Tensor, y_onehot: torch.Tensor) -> torch.Tensor:
    """Element-wise ``max(x,0) - x·y + log 2 - |x|/2 + x²/8`` (2nd-order Taylor, code)."""
    a = logits.abs()
    return F.relu(logits) - logits * y_onehot + math.log(2.0) - a / 2.0 + a**2 / 8.0


def exact_sigmoid_loss(logits: torch.Tensor, y_onehot: torch.Tensor) -> torch.Tensor:
    """Element-wise sigmoid cross-entropy ``max(x,0) - x·y + log(1 + e^{-|x|})``."""
    return F.relu(logits) - logits * y_onehot + torch.log1p(torch.exp(-logits.abs()))


# ----------------------------------------------------------------------------- accounting
def claimed_figures(
    epsilon1: float, epsilon2: float, epsilon3: float, *, releases: int, delta: float = 0.0
) -> list[PrivacyFigure]:
    """The paper's claim ε1+ε2+ε3, and its per-step claim composed over ``releases`` redraws.

    ``releases`` is the number of input-noise draws each record sees (epochs for
    ``redraw="step"``, 1 for ``"once"``). ``epsilon1 = 0`` for ILM (no dpLRP).
    """
    total = epsilon1 + epsilon2 + epsilon3
    out = [
        PrivacyFigure(
            total,
            delta,
            CLAIMED,
            "AdLM paper: ε1 + ε2 + ε3, independent of the number of steps (Phan et al. 2017)",
            {"epsilon1": epsilon1, "epsilon2": epsilon2, "epsilon3": epsilon3},
        )
    ]
    if releases > 1:
        out.append(
            PrivacyFigure(
                epsilon1 + releases * epsilon2 + epsilon3,
                delta,
                CLAIMED,
                f"paper's per-step claim composed (basic) over the {releases} input-noise "
                "redraws each record sees: ε1 + redraws·ε2 + ε3; still relies on the paper's "
                "unproven per-step argument",
                {"releases": releases},
            )
        )
    return out


def rr_keep_probability(epsilon: float, n_classes: int) -> float:
    """Probability that K-ary randomized response keeps the label: e^ε/(e^ε + K - 1)."""
    return 1.0 / (1.0 + (n_classes - 1) * math.exp(-epsilon))


def randomized_response_labels(
    y: np.ndarray, epsilon: float, n_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """K-ary randomized response (pure ε): with probability K/(e^ε+K-1) a uniform label."""
    check_epsilon(epsilon, "label_epsilon")
    y = np.asarray(y, dtype=np.int64)
    p_random = n_classes / (math.exp(epsilon) + n_classes - 1)
    redraw = rng.random(y.shape) < p_random
    return np.where(redraw, rng.integers(0, n_classes, size=y.shape), y)


def _bucket(ratios: np.ndarray) -> Counter:
    """Privacy ratios rounded up to the geometric grid 1.01^k (pessimistic)."""
    k = np.ceil(np.log(ratios) / math.log(_SCALE_GRID) - 1e-12).astype(np.int64)
    return Counter(k.tolist())


def local_release_epsilon(
    scales: np.ndarray,
    *,
    releases: int,
    delta: float,
    label_epsilon: float | None = None,
    n_classes: int = 10,
    sensitivity: float = 1.0,
) -> tuple[float, float]:
    """Verified ε of a local release: ``releases`` Laplace draws per coordinate (scale b_j,
    coordinate range ``sensitivity``) plus, optionally, one K-ary randomized response of the label.

    Returns ``(epsilon_at_delta, pure_epsilon)``: the first from the composed PLDs
    (``dp_accounting``; ratios Δ/b_j rounded up by at most 1%: pessimistic), the second
    ``releases·Σ_j Δ/b_j + label_epsilon``. Neighbouring relation: replace one record.
    """
    scales = np.asarray(scales, dtype=np.float64).ravel()
    if scales.size == 0 or not np.all(np.isfinite(scales) & (scales > 0)):
        raise ValueError("scales must be a non-empty array of finite positive Laplace scales")
    releases = check_positive_int("releases", releases)
    check_delta(delta)
    sens = check_positive("sensitivity", sensitivity)
    ratios = sens / scales
    pure = releases * float(ratios.sum())
    composed = None
    for k, count in sorted(_bucket(ratios).items()):
        r = _SCALE_GRID**k
        pld = pld_lib.from_laplace_mechanism(
            1.0 / r, sensitivity=1.0, value_discretization_interval=_PLD_DISC
        )
        pld = pld.self_compose(count * releases) if count * releases > 1 else pld
        composed = pld if composed is None else composed.compose(pld)
    if label_epsilon is not None:
        pure += check_epsilon(label_epsilon, "label_epsilon")
        p_random = n_classes / (math.exp(label_epsilon) + n_classes - 1)
        rr = pld_lib.from_randomized_response(
            p_random, n_classes, value_discretization_interval=_PLD_DISC
        )
        composed = composed.compose(rr)
    eps = float(composed.get_epsilon_for_delta(delta))
    return min(eps, pure), pure


# ----------------------------------------------------------------------------- trainer
_REDRAWS = ("step", "once")
_SHARINGS = ("batch", "example")
_RELEVANCES = ("private", "public", "uniform")
_LABELS = ("none", "public", "randomized_response")


class AdLMClassifier(ClassifierMixin, BaseEstimator):
    """Train an AdLM (or ILM) classifier on images in [0, 1] (a scikit-learn estimator).

    Parameters
    ----------
    epsilon1, epsilon2, epsilon3 : float
        Budgets of dpLRP, the input noise and the functional mechanism (MNIST code:
        0.075, 0.075, 0.15). ``epsilon1`` is not used with ``relevance="uniform"`` (ILM).
    image_shape : (C, H, W)
        Shape of one image; ``fit`` accepts ``(n, C, H, W)`` or ``(n, C·H·W)``.
    hk : int
        Hidden units before the output layer (code: 25 MNIST, 30 CIFAR).
    arch : {"mnist", "cifar"}
        Network of :class:`AdLMNet`.
    batch_size : int
        |L| (code: 1800). It enters the noise scales as 1/|L|.
    epochs : int
        Passes over the data (code: 2400); each record is in one batch per epoch.
    lr : float
        Adam learning rate (code: 3e-4).
    redraw : {"step", "once"}
        Input noise redrawn every step (MNIST code) or drawn once before training.
    noise_sharing : {"batch", "example"}
        One noise vector for the batch (code; with ``"once"``: for all records) or one per
        example (with ``"once"``: one fixed noisy copy of each record).
    relevance : {"private", "public", "uniform"}
        dpLRP relevance model trained and averaged on the training data (code), on
        ``public_data`` (declared public), or β ≡ 1 (ILM).
    public_data : (X, y), optional
        Declared public images and labels for ``relevance="public"``.
    dplrp_n : {"dataset", "averaged"}
        N of the dpLRP noise 2d/(ε1 N): the dataset size (code) or the number averaged.
    lrp_samples, relevance_epochs : int
        Examples averaged by dpLRP (code: 2000) and epochs of the relevance model.
    lrp_inflation : float
        Exponent of the dpLRP normalisation (MNIST code: 4).
    label_privacy : {"none", "public", "randomized_response"}
        Labels used as they are (code), declared public, or released once by K-ary randomized
        response at ``label_epsilon``.
    delta : float
        δ at which the verified ε is reported.
    seed : int
        Seed of the initialisation, batches, relevance model and every noise draw.
    progress : bool
        tqdm bar over epochs.

    Attributes
    ----------
    model_ : AdLMNet
        The trained network.
    classes_ : numpy.ndarray
        ``arange(n_classes)``.
    beta_, relevance_ : numpy.ndarray
        Budget weights β (mean 1) and the dpLRP relevances (``None`` for ILM).
    delta_h0_, delta_f_ : float
        Δ_h0 of the first layer and Δ_F of the output layer.
    input_noise_scale_, fm_noise_scale_ : float
        Per-feature input Laplace scale at β = 1, Δ_h0/(ε2·|L|), and Δ_F/(ε3·|L|).
    steps_, releases_ : int
        Optimizer steps, and input-noise draws each record sees.
    privacy_ : list of PrivacyFigure
        Claimed figures first (ε1+ε2+ε3, then the claim composed over redraws if any),
        the verified figure last.
    history_ : list of dict
        Per-epoch summed training loss.
    """

    def __init__(
        self,
        epsilon1: float = 0.075,
        epsilon2: float = 0.075,
        epsilon3: float = 0.15,
        *,
        image_shape: Sequence[int] = (1, 28, 28),
        n_classes: int = 10,
        hk: int = 25,
        arch: Literal["mnist", "cifar"] = "mnist",
        batch_size: int = 1800,
        epochs: int = 2400,
        lr: float = 3e-4,
        redraw: Literal["step", "once"] = "step",
        noise_sharing: Literal["batch", "example"] = "batch",
        relevance: Literal["private", "public", "uniform"] = "private",
        public_data: tuple[Any, Any] | None = None,
        dplrp_n: Literal["dataset", "averaged"] = "dataset",
        lrp_samples: int = 2000,
        relevance_epochs: int = 5,
        lrp_inflation: float = 4.0,
        label_privacy: Literal["none", "public", "randomized_response"] = "none",
        label_epsilon: float | None = None,
        delta: float = 1e-5,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self.epsilon1 = epsilon1
        self.epsilon2 = epsilon2
        self.epsilon3 = epsilon3
        self.image_shape = image_shape
        self.n_classes = n_classes
        self.hk = hk
        self.arch = arch
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr = lr
        self.redraw = redraw
        self.noise_sharing = noise_sharing
        self.relevance = relevance
        self.public_data = public_data
        self.dplrp_n = dplrp_n
        self.lrp_samples = lrp_samples
        self.relevance_epochs = relevance_epochs
        self.lrp_inflation = lrp_inflation
        self.label_privacy = label_privacy
        self.label_epsilon = label_epsilon
        self.delta = delta
        self.seed = seed
        self.progress = progress

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        if self.relevance != "uniform":
            check_epsilon(self.epsilon1, "epsilon1")
        check_epsilon(self.epsilon2, "epsilon2")
        check_epsilon(self.epsilon3, "epsilon3")
        _check_image_shape(self.image_shape)
        check_positive_int("n_classes", self.n_classes, minimum=2)
        check_positive_int("hk", self.hk)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("epochs", self.epochs)
        check_positive("lr", self.lr)
        check_positive_int("lrp_samples", self.lrp_samples)
        check_positive_int("relevance_epochs", self.relevance_epochs)
        check_positive("lrp_inflation", self.lrp_inflation)
        check_delta(self.delta)
        for name, value, allowed in (
            ("arch", self.arch, ("mnist", "cifar")),
            ("redraw", self.redraw, _REDRAWS),
            ("noise_sharing", self.noise_sharing, _SHARINGS),
            ("relevance", self.relevance, _RELEVANCES),
            ("dplrp_n", self.dplrp_n, ("dataset", "averaged")),
            ("label_privacy", self.label_privacy, _LABELS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.relevance == "public" and self.public_data is None:
            raise ValueError("relevance='public' needs public_data=(X_public, y_public)")
        if self.relevance != "public" and self.public_data is not None:
            raise ValueError("public_data is only used with relevance='public'")
        if self.label_privacy == "randomized_response":
            check_epsilon(self.label_epsilon, "label_epsilon")
        elif self.label_epsilon is not None:
            raise ValueError("label_epsilon applies to label_privacy='randomized_response' only")

    def _images(self, X: Any, name: str = "X") -> torch.Tensor:
        c, h, w = _check_image_shape(self.image_shape)
        x = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
        x = x.to(torch.float32)
        if x.ndim == 2 and x.shape[1] == c * h * w:
            x = x.reshape(-1, c, h, w)
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w):
            raise ValueError(
                f"{name} must have shape (n, {c}, {h}, {w}) or (n, {c * h * w}), got "
                f"{tuple(x.shape)}"
            )
        if len(x) == 0:
            raise ValueError(f"{name} is empty")
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise ValueError(f"{name} must hold finite values in [0, 1] (pixel range 1)")
        return x

    def _labels(self, y: Any, n: int, name: str = "y") -> torch.Tensor:
        t = torch.as_tensor(np.asarray(y)).to(torch.int64).reshape(-1)
        if len(t) != n:
            raise ValueError(f"{name} has {len(t)} labels for {n} images")
        if len(t) and (t.min() < 0 or t.max() >= self.n_classes):
            raise ValueError(f"{name} must hold integers in [0, {self.n_classes})")
        return t

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> AdLMClassifier:
        """Compute β (dpLRP), train with the AdLM noise, and set ``privacy_``."""
        self._validate()
        x = self._images(X)
        t = self._labels(y, len(x))
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        c, h, w = _check_image_shape(self.image_shape)
        d = c * h * w
        model = AdLMNet(self.image_shape, self.n_classes, self.hk, self.arch)
        delta_h0 = first_layer_sensitivity(model)
        delta_f = functional_mechanism_sensitivity(self.hk, self.n_classes)

        beta, relevance = self._budget_weights(x, t, d, rng)
        scales = input_noise_scales(beta, delta_h0, self.epsilon2, self.batch_size)
        fm_scale = delta_f / (self.epsilon3 * self.batch_size)
        onehot, fm_noise, fixed_noise = self._training_noise(t, scales, fm_scale, len(x), rng)
        history, steps = self._train(model, x, onehot, scales, fm_noise, fixed_noise, rng)

        releases = self.epochs if self.redraw == "step" else 1
        eps1 = 0.0 if self.relevance == "uniform" else float(self.epsilon1)
        figures = claimed_figures(
            eps1, float(self.epsilon2), float(self.epsilon3), releases=releases
        )
        figures.append(self._verified(scales, releases))

        self.model_ = model
        self.classes_ = np.arange(self.n_classes)
        self.beta_ = beta
        self.relevance_ = relevance
        self.delta_h0_ = delta_h0
        self.delta_f_ = delta_f
        self.input_noise_scale_ = delta_h0 / (float(self.epsilon2) * self.batch_size)
        self.fm_noise_scale_ = fm_scale
        self.steps_ = steps
        self.releases_ = releases
        self.privacy_ = figures
        self.history_ = history
        return self

    def _budget_weights(
        self, x: torch.Tensor, t: torch.Tensor, d: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """β and the dpLRP relevance it comes from (``None`` for uniform β)."""
        if self.relevance == "uniform":
            return np.ones(d), None
        if self.relevance == "public":
            xr = self._images(self.public_data[0], "public_data[0]")
            yr = self._labels(self.public_data[1], len(xr), "public_data[1]")
        else:
            xr, yr = x, t
        rel_model = train_relevance_model(
            xr, yr, self.n_classes, epochs=self.relevance_epochs, seed=self.seed
        )
        n_avg = min(self.lrp_samples, len(xr))
        relevance = dp_lrp(
            rel_model,
            xr,
            self.epsilon1,
            n_noise=len(xr) if self.dplrp_n == "dataset" else n_avg,
            n_samples=n_avg,
            inflation=self.lrp_inflation,
            rng=rng,
        )
        return budget_weights(relevance), relevance

    def _training_noise(
        self,
        t: torch.Tensor,
        scales: np.ndarray,
        fm_scale: float,
        n: int,
        rng: np.random.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The noise drawn before training, in this order: randomized-response labels (as
        one-hot targets), the functional mechanism's noise and, for ``redraw="once"``, the
        input noise of every record (else ``None``)."""
        t_train = t
        if self.label_privacy == "randomized_response":
            t_train = torch.from_numpy(
                randomized_response_labels(t.numpy(), self.label_epsilon, self.n_classes, rng)
            )
        onehot = F.one_hot(t_train, self.n_classes).to(torch.float32)
        # functional mechanism: N ~ Lap(Δ_F/ε3)/|L|, drawn once, shape of W_out (K, hk)
        fm_noise = torch.from_numpy(
            rng.laplace(0.0, fm_scale, size=(self.n_classes, self.hk)).astype(np.float32)
        )
        fixed_noise = None
        if self.redraw == "once":
            fixed_noise = sample_input_noise(scales, n, self.noise_sharing, rng)
        return onehot, fm_noise, fixed_noise

    def _train(
        self,
        model: AdLMNet,
        x: torch.Tensor,
        onehot: torch.Tensor,
        scales: np.ndarray,
        fm_noise: torch.Tensor,
        fixed_noise: torch.Tensor | None,
        rng: np.random.Generator,
    ) -> tuple[list[dict[str, float]], int]:
        """Adam on the Taylor loss of the noisy inputs plus the functional mechanism's term:
        (per-epoch history, optimizer steps)."""
        c, h, w = _check_image_shape(self.image_shape)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        n = len(x)
        history: list[dict[str, float]] = []
        steps = 0
        bar = tqdm(range(self.epochs), desc="AdLM", unit="epoch", disable=not self.progress)
        model.train()
        for epoch in bar:
            perm = torch.randperm(n, generator=gen)
            loss_sum = 0.0
            for i in range(0, n, self.batch_size):
                idx = perm[i : i + self.batch_size]
                if fixed_noise is None:
                    noise = sample_input_noise(scales, len(idx), self.noise_sharing, rng)
                else:
                    noise = fixed_noise[idx]
                xb = (x[idx] + noise.view(-1, c, h, w)).clamp(-INPUT_CLIP, INPUT_CLIP)
                opt.zero_grad()
                loss = taylor_sigmoid_loss(model(xb), onehot[idx]).sum()
                loss = loss - (fm_noise * model.out.weight).sum()
                loss.backward()
                opt.step()
                steps += 1
                loss_sum += loss.item()
            history.append({"epoch": epoch + 1, "loss": loss_sum})
            bar.set_postfix(loss=f"{loss_sum:.4g}")
        model.eval()
        return history, steps

    def unprovable_reasons(self) -> list[str]:
        """Why no finite ε can be proven for this configuration (empty if one can)."""
        reasons = []
        if self.noise_sharing == "batch":
            reasons.append(
                "one input-noise vector is shared by the batch and passes through a nonlinear "
                "network, so differences x_i - x_j are released noise-free"
            )
        if self.relevance == "private":
            reasons.append(
                "the relevance model behind β is trained non-privately on the private data "
                "(and min/max-normalised before the dpLRP noise)"
            )
        if self.label_privacy == "none":
            reasons.append(
                "labels enter the lower layers' gradients unperturbed (the functional "
                "mechanism covers only the output layer's label coefficient)"
            )
        return reasons

    def _verified(self, scales: np.ndarray, releases: int) -> PrivacyFigure:
        reasons = self.unprovable_reasons()
        if reasons:
            return PrivacyFigure(
                math.inf,
                float(self.delta),
                VERIFIED,
                "no finite ε can be proven: " + "; ".join(reasons),
                {"reasons": reasons},
            )
        label_eps = self.label_epsilon if self.label_privacy == "randomized_response" else None
        eps, pure = local_release_epsilon(
            scales,
            releases=releases,
            delta=float(self.delta),
            label_epsilon=label_eps,
            n_classes=self.n_classes,
        )
        labels = (
            "labels declared public (not protected)"
            if self.label_privacy == "public"
            else f"labels by {self.n_classes}-ary randomized response at ε = {label_eps:g}"
        )
        rel = "β ≡ 1 (ILM)" if self.relevance == "uniform" else "β from declared public data"
        return PrivacyFigure(
            eps,
            float(self.delta),
            VERIFIED,
            f"local release of each record: {releases} per-example Laplace input draw(s) "
            f"(pixel range 1), {labels}, {rel}; training is post-processing; per-coordinate "
            "Laplace PLDs + RR composed with dp_accounting (replace-one)",
            {"pure_epsilon": pure, "releases": releases, "label_epsilon": label_eps},
        )

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("this AdLMClassifier is not fitted yet: call fit(X, y) first")

    @torch.no_grad()
    def decision_function(self, X: Any) -> torch.Tensor:
        """Logits on noise-free inputs (the code evaluates with zero noise), in chunks of
        4096 (the BN before the output layer uses the chunk's statistics, as the code)."""
        self._check_fitted()
        x = self._images(X)
        return torch.cat([self.model_(x[i : i + 4096]) for i in range(0, len(x), 4096)])

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes (int64)."""
        return self.decision_function(X).argmax(dim=1).numpy()

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy on ``(X, y)`` (``sample_weight`` is not supported)."""
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported")
        pred = self.predict(X)
        t = self._labels(y, len(pred)).numpy()
        return float((pred == t).mean())

    @property
    def claimed_(self) -> PrivacyFigure:
        """The paper's headline claim ε1 + ε2 + ε3."""
        self._check_fitted()
        return self.privacy_[0]

    @property
    def verified_(self) -> PrivacyFigure:
        """The verified figure for what was run (``inf`` when no finite ε can be proven)."""
        self._check_fitted()
        return self.privacy_[-1]

    @property
    def privacy_report_(self) -> PrivacyReport:
        """``privacy_`` as a :class:`~product_noise.privacy.PrivacyReport`: the claimed figures
        in their order (headline, then composed over redraws) and the verified one."""
        self._check_fitted()
        return PrivacyReport.from_figures(
            self.privacy_,
            source="product_noise.baselines.AdLMClassifier",
            what=f"AdLM, {self.releases_} input-noise release(s) per record",
        )


def _check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W) of positive ints, got {image_shape!r}")
    return shape  # type: ignore[return-value]


# ----------------------------------------------------------------------------- harness
def _calibrate_epsilon2(
    beta: np.ndarray,
    delta_h0: float,
    batch_size: int,
    *,
    target: float,
    delta: float,
    label_epsilon: float,
    n_classes: int,
) -> tuple[float, float]:
    """Largest ε2 (bisection on log ε2, to a factor 1.002) whose verified local-release ε is
    ≤ ``target``, and that ε; the bracket starts at ``[1e-6, 1]`` and grows by factors of 4."""

    @functools.cache
    def eps_of(e2: float) -> float:
        scales = input_noise_scales(beta, delta_h0, e2, batch_size)
        return local_release_epsilon(
            scales, releases=1, delta=delta, label_epsilon=label_epsilon, n_classes=n_classes
        )[0]

    bracket = GrowingBracket(1e-6, 1.0, factor=4.0, min_value=1e-6)
    e2 = calibrate(
        eps_of, target, bracket, increasing=True, tol=0.002, log_scale=True, method="bisect"
    )
    return e2, eps_of(e2)
