"""Statistical tests of the noise that ``product_noise.PrivacyEngine`` really adds to ``p.grad``.

Set-up (``opacus_internals.md`` §5.3–§5.4): a two-layer MLP ``Linear(8,16) → Tanh → Linear(16,3)``
has four parameter tensors of sizes 128, 16, 48 and 3, so one joint draw covers ``M = 195``
values. The loss ``(model(x) * 0).sum()`` makes every per-sample gradient, hence the clipped sum,
exactly zero, and ``loss_reduction="sum"`` switches off the division by the batch size, so after a
real ``optimizer.step()`` the concatenated ``p.grad`` *is* the noise vector ``n``. We collect
``N_STEPS = 2000`` such vectors from a seeded ``noise_generator`` (scale ``s = noise_multiplier × C
= 2``) and test, each with a fixed seed:

* radius law: ``‖n‖/σ`` half-normal (product), ``‖n‖/θ ~ Gamma(M)`` (ℓ2), ``‖n‖/σ ~ χ_M``
  (Gaussian path); KS p > ``ALPHA``, and the same KS test *rejects* the law at scale ×1.5 and ×2/3
  (p < ``POWER_P``), so a wrong scale cannot pass;
* per-tensor energy share ``‖n_k‖²/‖n‖² ~ Beta(d_k/2, (M−d_k)/2)`` (KS, every tensor) — the test
  that distinguishes one joint direction from per-tensor draws; its power is shown on the same data
  with the tensors' pieces taken from different steps (independent radii), which it rejects;
* mean zero: the standardised coordinate means ``z_j`` give ``Σ z_j² ~ χ²_M`` (two-sided p > ALPHA)
  and ``max |z_j| < 4.5``; a bias of one standard error per coordinate is rejected;
* exactly one radius per step: the noise is recomputed from a copy of the generator (M standard
  normals for the direction, then one radius draw); ``‖n‖ = σ|z|`` and the whole vector match, and
  the generator has advanced by exactly that one joint draw — for every supported variant;
* reproducibility: same seed → bit-identical noise; another seed → different noise;
* the Gaussian path is Opacus': bit-for-bit the same parameters as ``opacus.PrivacyEngine``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from opacus import PrivacyEngine as OpacusPrivacyEngine
from scipy import stats
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from product_noise import PrivacyEngine
from product_noise.opacus import JointNoiseMixin

pytestmark = pytest.mark.filterwarnings(
    "ignore:Secure RNG turned off",
    "ignore:Full backward hook is firing",
    "ignore:Using a non-full backward hook",
)

SIZES = (128, 16, 48, 3)  # Linear(8,16).weight, .bias, Linear(16,3).weight, .bias
M = sum(SIZES)  # 195
NOISE_MULTIPLIER = 2.0
CLIP = 1.0
SCALE = NOISE_MULTIPLIER * CLIP  # σ (product, Gaussian) or θ (ℓ2)
N_STEPS = 2000
ALPHA = 0.01  # acceptance threshold of every goodness-of-fit test
POWER_P = 1e-6  # a wrong law must be rejected at least this strongly


def _data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))


def _private(noise: str, seed: int, **kwargs):
    """(engine, model, optimizer, loader) with the noise generator seeded with ``seed``."""
    x, y = _data()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    engine = PrivacyEngine()
    args = dict(
        module=model,
        optimizer=opt,
        data_loader=loader,
        noise=noise,
        noise_multiplier=NOISE_MULTIPLIER,
        max_grad_norm=CLIP,
        loss_reduction="sum",
        noise_generator=torch.Generator().manual_seed(seed),
    )
    args.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = engine.make_private(**args)
    return engine, out[0], out[1], out[-1]


def _zero_loss_step(model: nn.Module, opt, x: torch.Tensor) -> np.ndarray:
    """One real step whose clipped gradient sum is exactly 0; returns the concatenated p.grad."""
    opt.zero_grad()
    (model(x) * 0.0).sum().backward()
    opt.step()
    return torch.cat([p.grad.detach().double().ravel() for p in opt.params]).numpy()


def _collect(noise: str, n_steps: int, seed: int) -> tuple[np.ndarray, object]:
    _, model, opt, _ = _private(noise, seed)
    x = _data(8, seed=1)[0]
    out = np.empty((n_steps, M))
    for i in range(n_steps):
        out[i] = _zero_loss_step(model, opt, x)
        if i == 0:  # the set-up is valid: the clipped sum is exactly zero
            assert all(bool((p.summed_grad == 0).all()) for p in opt.params)
    return out, opt


@pytest.fixture(scope="module", params=["product", "l2", "gaussian"])
def draws(request):
    seed = {"product": 11, "l2": 12, "gaussian": 13}[request.param]
    noise, opt = _collect(request.param, N_STEPS, seed)
    return request.param, noise, opt


def _ks(x: np.ndarray, cdf) -> float:
    return float(stats.kstest(x, cdf).pvalue)


def _radius_dist(noise: str, scale: float):
    """Law of ‖n‖ at the given scale."""
    if noise == "product":
        return stats.halfnorm(scale=scale)
    if noise == "l2":
        return stats.gamma(M, scale=scale)
    return stats.chi(M, scale=scale)


def _shares(noise: np.ndarray) -> np.ndarray:
    bounds = np.cumsum((0, *SIZES))
    sq = np.stack([(noise[:, a:b] ** 2).sum(axis=1) for a, b in zip(bounds[:-1], bounds[1:])], 1)
    return sq / sq.sum(axis=1, keepdims=True)


def _share_pvalues(shares: np.ndarray) -> list[float]:
    return [_ks(shares[:, k], stats.beta(d / 2, (M - d) / 2).cdf) for k, d in enumerate(SIZES)]


# ------------------------------------------------------------------------------ set-up
def test_dimension_and_optimizer(draws):
    noise, sample, opt = draws
    assert [p.numel() for p in opt.params] == list(SIZES)
    assert sample.shape == (N_STEPS, M)
    if noise == "gaussian":
        assert not isinstance(opt, JointNoiseMixin)
    else:
        assert isinstance(opt, JointNoiseMixin)
        assert opt.noise_dim == M
        assert opt.noise_family.name == noise
    assert np.all(np.isfinite(sample))


# ------------------------------------------------------------------------------ radius law
def test_radius_law_with_power(draws):
    """‖n‖/scale follows the family's radial law; scales ×1.5 and ×2/3 are rejected, and for joint
    noise so is the Gaussian radius χ_M·σ (the engine did not fall back to Opacus' noise)."""
    noise, sample, _ = draws
    radius = np.linalg.norm(sample, axis=1)
    p = _ks(radius, _radius_dist(noise, SCALE).cdf)
    assert p > ALPHA, (noise, p)
    for factor in (1.5, 2.0 / 3.0):
        p_wrong = _ks(radius, _radius_dist(noise, factor * SCALE).cdf)
        assert p_wrong < POWER_P, (noise, factor, p_wrong)
    if noise != "gaussian":
        assert _ks(radius, stats.chi(M, scale=SCALE).cdf) < POWER_P


# ------------------------------------------------------------------------------ energy share
def test_energy_share_per_tensor(draws):
    """‖n_k‖²/‖n‖² ~ Beta(d_k/2, (M−d_k)/2) for every tensor (one joint direction)."""
    _, sample, _ = draws
    shares = _shares(sample)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-12)
    pvals = _share_pvalues(shares)
    assert min(pvals) > ALPHA, pvals


def test_energy_share_rejects_independent_radii():
    """Power of the share test on real engine output: taking each tensor's piece from a different
    step (as if every tensor had its own product-noise radius) is rejected for every tensor."""
    sample, _ = _collect("product", N_STEPS, seed=21)
    assert min(_share_pvalues(_shares(sample))) > ALPHA
    rng = np.random.default_rng(0)
    bounds = np.cumsum((0, *SIZES))
    mixed = sample.copy()
    for a, b in zip(bounds[:-1], bounds[1:]):
        mixed[:, a:b] = sample[rng.permutation(N_STEPS), a:b]
    pvals = _share_pvalues(_shares(mixed))
    assert max(pvals) < 1e-4, pvals


# ------------------------------------------------------------------------------ mean zero
def _mean_stats(sample: np.ndarray, second_moment: float) -> tuple[float, float]:
    """(p-value of Σ z_j² against χ²_M, two-sided; max |z_j|) of the standardised means."""
    n = sample.shape[0]
    z = sample.mean(axis=0) / math.sqrt(second_moment / M / n)
    chi2 = float(np.sum(z**2))
    p = 2 * min(stats.chi2(M).cdf(chi2), stats.chi2(M).sf(chi2))
    return float(p), float(np.abs(z).max())


def test_mean_zero(draws):
    """Coordinate means are 0 within their standard error (E n_j² = E‖n‖²/M for spherical noise);
    a bias of one standard error per coordinate is rejected."""
    noise, sample, _ = draws
    second = float(_radius_dist(noise, SCALE).moment(2))  # E‖n‖²
    p, zmax = _mean_stats(sample, second)
    assert p > ALPHA, (noise, p)
    assert zmax < 4.5, (noise, zmax)
    se = math.sqrt(second / M / sample.shape[0])
    p_biased, _ = _mean_stats(sample + se, second)
    assert p_biased < POWER_P, p_biased


# ------------------------------------------------------------------------------ one radius per step
def _replay(gen: torch.Generator, opt, noise: str) -> tuple[list[torch.Tensor], float]:
    """Recompute the joint draw of one step from a copy of the generator, independently of the
    mechanisms' code: M standard normals (tensor by tensor) for the direction, then one radius
    (|N(0,1)|·σ for product noise, the Gamma(M, θ) quantile of one uniform for ℓ2)."""
    gs = [torch.randn(p.shape, dtype=p.dtype, generator=gen) for p in opt.params]
    norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in gs))
    scale = opt.noise_multiplier * opt.max_grad_norm
    if noise == "product":
        radius = scale * abs(float(torch.randn((), dtype=torch.float64, generator=gen)))
    else:
        u = float(torch.rand((), dtype=torch.float64, generator=gen))
        radius = float(stats.gamma(M, scale=scale).ppf(u))
    return [g.double() * (radius / norm) for g in gs], radius


VARIANTS = [
    ("flat", "hooks"),
    ("flat", "functorch"),
    ("flat", "ew"),
    ("flat", "ghost"),
    ("per_layer", "hooks"),
    ("per_layer", "functorch"),
    ("per_layer", "ew"),
]


@pytest.mark.parametrize("noise", ["product", "l2"])
@pytest.mark.parametrize(("clipping", "mode"), VARIANTS)
def test_one_joint_draw_per_step_replayed_from_generator(noise, clipping, mode):
    """For every supported variant, on a real (non-zero) loss: p.grad − clipped sum is the joint
    draw recomputed from the generator, ‖n‖ equals the single radius, and the generator advanced by
    exactly one joint draw (M normals + one radius), i.e. one radius and one direction per step."""
    clip = [0.3, 0.2, 0.4, 0.1] if clipping == "per_layer" else CLIP
    gen = torch.Generator().manual_seed(5)
    x, y = _data(32, seed=2)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = engine.make_private(
            module=model,
            optimizer=opt,
            data_loader=DataLoader(TensorDataset(x, y), batch_size=8),
            noise=noise,
            noise_multiplier=NOISE_MULTIPLIER,
            max_grad_norm=clip,
            clipping=clipping,
            grad_sample_mode=mode,
            loss_reduction="sum",
            noise_generator=gen,
            criterion=nn.CrossEntropyLoss(reduction="sum"),
        )
    model, dp_opt = out[0], out[1]
    criterion = out[2] if mode == "ghost" else nn.CrossEntropyLoss(reduction="sum")
    assert isinstance(dp_opt, JointNoiseMixin)
    if clipping == "per_layer":  # the joint sensitivity is ‖(C_1, …, C_L)‖₂
        assert dp_opt.max_grad_norm == pytest.approx(math.sqrt(sum(c * c for c in clip)), 1e-6)
    for step in range(3):
        xb, yb = x[8 * step : 8 * step + 8], y[8 * step : 8 * step + 8]
        replica = torch.Generator()
        replica.set_state(gen.get_state())
        expected, radius = _replay(replica, dp_opt, noise)
        dp_opt.zero_grad()
        criterion(model(xb), yb).backward()
        dp_opt.step()
        summed = [p.summed_grad.detach().double() for p in dp_opt.params]
        added = [p.grad.detach().double() - s for p, s in zip(dp_opt.params, summed)]
        assert any(float(s.abs().max()) > 0 for s in summed)  # a real gradient was clipped
        norm = math.sqrt(sum(float((a**2).sum()) for a in added))
        # float32 storage of s + n: absolute error ≲ 1e-6 (|s| + |n|) per coordinate
        assert norm == pytest.approx(radius, rel=1e-4)
        for a, e in zip(added, expected):
            torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4 * max(radius, 1.0) / math.sqrt(M))
        assert torch.equal(gen.get_state(), replica.get_state()), "generator used more than once"


# ------------------------------------------------------------------------------ reproducibility
@pytest.mark.parametrize("noise", ["product", "l2"])
def test_same_seed_same_noise(noise):
    x = _data(8, seed=1)[0]

    def run(seed: int) -> np.ndarray:
        _, model, opt, _ = _private(noise, seed)
        return np.stack([_zero_loss_step(model, opt, x) for _ in range(5)])

    a, b, c = run(7), run(7), run(8)
    assert np.array_equal(a, b)  # bit for bit
    assert not np.array_equal(a, c)
    assert len({float(np.linalg.norm(r)) for r in a}) == 5  # fresh noise at every step


# ------------------------------------------------------------------------------ Gaussian path
def _train_gaussian(engine_cls, *, seed: int, steps: int = 6) -> tuple[list[torch.Tensor], float]:
    x, y = _data(128, seed=3)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    loader = DataLoader(
        TensorDataset(x, y), batch_size=16, generator=torch.Generator().manual_seed(seed)
    )
    engine = engine_cls()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, opt, loader = engine.make_private(
            module=model,
            optimizer=opt,
            data_loader=loader,
            noise_multiplier=1.1,
            max_grad_norm=0.7,
            noise_generator=torch.Generator().manual_seed(seed + 1),
        )
    crit = nn.CrossEntropyLoss()
    it = iter(loader)
    for _ in range(steps):
        xb, yb = next(it)
        opt.zero_grad()
        crit(model(xb), yb).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()], float(
        engine.accountant.get_epsilon(1e-5)
    )


def test_gaussian_path_is_opacus_bit_for_bit():
    ours, eps_ours = _train_gaussian(PrivacyEngine, seed=4)
    theirs, eps_theirs = _train_gaussian(OpacusPrivacyEngine, seed=4)
    initial = [p.detach() for p in _model().parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(ours, initial))  # training happened
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert eps_ours == eps_theirs
    other, _ = _train_gaussian(PrivacyEngine, seed=5)  # the comparison can fail
    assert any(not torch.equal(a, b) for a, b in zip(ours, other))
