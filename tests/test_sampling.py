"""Statistical tests of the noise samplers (NumPy and PyTorch).

Design (``opacus_internals.md`` §5.3–§5.4): fixed seeds; Kolmogorov–Smirnov tests accept at
p > 0.01; each law test comes with a *power check* showing that the same test on the same draws
rejects (p < 0.01) the law with a wrong scale (×1.5 and ×2/3), so a test that cannot fail is not
counted as evidence. The per-tensor energy-share test is shown to reject a sampler that normalises
each tensor separately — the bug that the total-norm and coordinate tests miss.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from product_noise.mechanisms import Gaussian, L2Mechanism, ProductNoise

ALPHA = 0.01  # KS acceptance threshold
WRONG_SCALES = (1.5, 2.0 / 3.0)

SHAPES = [(16, 8), (16,), (3, 16), (3,)]
SIZES = [int(np.prod(s)) for s in SHAPES]
M = sum(SIZES)  # 195
N_TORCH = 3000


def _ks(x, cdf) -> float:
    return float(stats.kstest(np.asarray(x, dtype=float), cdf).pvalue)


def _assert_law_with_power(x, law_factory, scale):
    """``x`` follows ``law_factory(scale)`` (KS p > ALPHA) and not ``law_factory(scale·f)``."""
    p = _ks(x, law_factory(scale).cdf)
    assert p > ALPHA, f"KS rejected the correct law: p = {p:.3g}"
    for f in WRONG_SCALES:
        p_wrong = _ks(x, law_factory(scale * f).cdf)
        assert p_wrong < ALPHA, f"KS failed to reject scale x{f:.3g}: p = {p_wrong:.3g}"


def _radius_law(mech):
    """Law of ‖n‖ as a function of the mechanism's scale."""
    if isinstance(mech, ProductNoise):
        return lambda s: stats.halfnorm(scale=s)
    if isinstance(mech, Gaussian):
        return lambda s: stats.chi(mech.dim, scale=s)
    if isinstance(mech, L2Mechanism):
        return lambda s: stats.gamma(mech.dim, scale=s)
    raise TypeError(type(mech))


def _torch_mechanisms():
    return [ProductNoise(M, 2.0), Gaussian(M, 0.7), L2Mechanism(M, 0.05)]


# =============================================================================================
# NumPy samplers
# =============================================================================================


def test_product_numpy_radius_half_normal():
    mech = ProductNoise(50, 3.0)
    n = mech.sample(4000, rng=np.random.default_rng(11))
    assert n.shape == (4000, 50) and n.dtype == np.float64
    norms = np.linalg.norm(n, axis=1)
    # ‖n‖/σ is half-normal; equivalently ‖n‖ ~ HalfNormal(σ)
    _assert_law_with_power(norms / mech.sigma, lambda s: stats.halfnorm(scale=s), 1.0)


def test_product_numpy_direction_uniform():
    dim = 50
    mech = ProductNoise(dim, 3.0)
    n = mech.sample(4000, rng=np.random.default_rng(12))
    u = n / np.linalg.norm(n, axis=1, keepdims=True)
    h = 0.5 * (dim - 1)
    for j in (0, dim - 1):
        p = _ks(0.5 * (u[:, j] + 1.0), stats.beta(h, h).cdf)
        assert p > ALPHA, (j, p)
    # power: the coordinate law of a sphere of another dimension (2M or M/2) is rejected
    for other in (2 * dim, dim // 2):
        ho = 0.5 * (other - 1)
        assert _ks(0.5 * (u[:, 0] + 1.0), stats.beta(ho, ho).cdf) < ALPHA
    # radius and direction are independent: |corr(‖n‖, u₀²)| small (4000 draws → SE ≈ 0.016)
    corr = np.corrcoef(np.linalg.norm(n, axis=1), u[:, 0] ** 2)[0, 1]
    assert abs(corr) < 0.07


def test_product_numpy_single_draw_and_reproducibility():
    mech = ProductNoise(20, 1.0)
    one = mech.sample(rng=np.random.default_rng(3))
    assert one.shape == (20,)
    np.testing.assert_array_equal(one, mech.sample(rng=np.random.default_rng(3)))
    assert not np.array_equal(one, mech.sample(rng=np.random.default_rng(4)))


def test_l2_numpy_radius_gamma():
    dim, theta = 30, 0.4
    mech = L2Mechanism(dim, theta)
    n = mech.sample(4000, rng=np.random.default_rng(21))
    assert n.shape == (4000, dim)
    _assert_law_with_power(np.linalg.norm(n, axis=1), lambda s: stats.gamma(dim, scale=s), theta)
    # the radius sampler itself
    r = mech.sample_radius(4000, rng=np.random.default_rng(22))
    _assert_law_with_power(r, lambda s: stats.gamma(dim, scale=s), theta)


def test_gaussian_numpy_coordinates():
    mech = Gaussian(40, 1.7)
    n = mech.sample(200, rng=np.random.default_rng(31))  # 8000 iid N(0, σ²) coordinates
    _assert_law_with_power(n.ravel(), lambda s: stats.norm(scale=s), mech.sigma)


# =============================================================================================
# PyTorch sample_like: one noise vector over several tensors jointly
# =============================================================================================


def _draw_torch(sampler, n_draws: int, seed: int, dtype=torch.float64):
    """Total norms and per-tensor energy shares of ``n_draws`` joint draws."""
    tensors = [torch.zeros(s, dtype=dtype) for s in SHAPES]
    gen = torch.Generator().manual_seed(seed)
    norms = np.empty(n_draws)
    shares = np.empty((n_draws, len(SHAPES)))
    for i in range(n_draws):
        out = sampler(tensors, gen)
        sq = np.array([float(torch.sum(o.double() ** 2)) for o in out])
        norms[i] = math.sqrt(sq.sum())
        shares[i] = sq / sq.sum()
    return norms, shares


def _share_pvalues(shares):
    return [_ks(shares[:, j], stats.beta(d / 2.0, (M - d) / 2.0).cdf) for j, d in enumerate(SIZES)]


@pytest.fixture(scope="module", params=["product", "gaussian", "l2"])
def torch_draws(request):
    mech = {type(m).name: m for m in _torch_mechanisms()}[request.param]
    norms, shares = _draw_torch(
        lambda ts, g: mech.sample_like(ts, generator=g), N_TORCH, seed=1000 + len(request.param)
    )
    return mech, norms, shares


def test_torch_total_norm_law(torch_draws):
    mech, norms, _ = torch_draws
    _assert_law_with_power(norms, _radius_law(mech), mech.scale)


def test_torch_energy_share_per_tensor(torch_draws):
    _, _, shares = torch_draws
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-12)
    pvals = _share_pvalues(shares)
    assert min(pvals) > ALPHA, pvals


def _per_tensor_normalised(mech, rng: np.random.Generator):
    """A *wrong* sampler: normalise each tensor separately, weight by √(d_k/M).

    Its total norm has exactly the right law (‖n‖ = R) and each tensor's energy share has the right
    mean d_k/M, but the share is deterministic instead of Beta(d_k/2, (M−d_k)/2).
    """

    def sampler(tensors, gen):
        radius = float(mech.sample_radius(rng=rng))
        out = []
        for t in tensors:
            g = torch.randn(t.shape, dtype=t.dtype, generator=gen)
            out.append(g / torch.linalg.vector_norm(g) * radius * math.sqrt(t.numel() / M))
        return out

    return sampler


def test_energy_share_test_rejects_per_tensor_normalisation():
    mech = ProductNoise(M, 2.0)
    norms, shares = _draw_torch(
        _per_tensor_normalised(mech, np.random.default_rng(5)), N_TORCH, seed=5
    )
    # the total-norm test cannot see the bug ...
    assert _ks(norms, stats.halfnorm(scale=mech.sigma).cdf) > ALPHA
    np.testing.assert_allclose(shares.mean(axis=0), np.array(SIZES) / M, rtol=1e-12)
    # ... the energy-share test rejects it for every tensor
    pvals = _share_pvalues(shares)
    assert max(pvals) < ALPHA, pvals


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("idx", range(3))
def test_torch_dtype_device_shape_preserved(dtype, idx):
    mech = _torch_mechanisms()[idx]
    tensors = [torch.ones(s, dtype=dtype) for s in SHAPES]
    out = mech.sample_like(tensors, generator=torch.Generator().manual_seed(0))
    assert len(out) == len(tensors)
    for o, t in zip(out, tensors, strict=True):
        assert o.shape == t.shape
        assert o.dtype == dtype
        assert o.device == t.device
        assert torch.isfinite(o).all()
        assert o.data_ptr() != t.data_ptr()  # fresh noise, the inputs are untouched
    assert all(torch.equal(t, torch.ones_like(t)) for t in tensors)


@pytest.mark.parametrize("idx", range(3))
def test_torch_reproducible_with_seed(idx):
    mech = _torch_mechanisms()[idx]
    tensors = [torch.zeros(s) for s in SHAPES]
    a = mech.sample_like(tensors, generator=torch.Generator().manual_seed(123))
    b = mech.sample_like(tensors, generator=torch.Generator().manual_seed(123))
    c = mech.sample_like(tensors, generator=torch.Generator().manual_seed(124))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("idx", range(3))
def test_torch_wrong_total_size_raises(idx):
    mech = _torch_mechanisms()[idx]
    too_few = [torch.zeros(s) for s in SHAPES[:-1]]
    with pytest.raises(ValueError, match=r"hold 192 values .* dimension M=195"):
        mech.sample_like(too_few)
    too_many = [*(torch.zeros(s) for s in SHAPES), torch.zeros(1)]
    with pytest.raises(ValueError, match="M=195"):
        mech.sample_like(too_many)


@pytest.mark.parametrize("idx", range(3))
def test_torch_mean_zero(idx):
    mech = _torch_mechanisms()[idx]
    tensors = [torch.zeros(s, dtype=torch.float64) for s in SHAPES]
    gen = torch.Generator().manual_seed(77)
    n_draws = 2000
    total = torch.zeros(M, dtype=torch.float64)
    for _ in range(n_draws):
        total += torch.cat([o.ravel() for o in mech.sample_like(tensors, generator=gen)])
    mean = total / n_draws
    # E‖mean‖² = E‖n‖²/N for zero-mean iid draws; ≈ χ²_M/M fluctuation (rel. SD ≈ 0.1 at M=195)
    ratio = float(mean @ mean) * n_draws / mech.expected_sq_norm
    assert 0.6 < ratio < 1.5, ratio
