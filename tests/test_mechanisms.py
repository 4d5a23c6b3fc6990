"""Mechanism core against the numbers of the reference notes.

Sources of every anchor (read-only notes in ``/work/shared/reference``):

* ``product_noise_paper.md`` §3.1 (general-q form, ``optimal_q``), §3.4 (table of the paper's
  settings), §4.1 (true δ of the MNIST DPSGD setting), §4.3 (honest calibration);
* ``mechanism_anchors.md`` §1 (classic Gaussian), §2 (analytic Gaussian), §3.1 (exact spherical
  profile), §5 (anchor table, δ = 1e-5, Δ = 1), §6 item 2 (SGG Monte Carlo anchor), §7 (product
  noise placed on the table).

Tolerances are stated next to each assertion; values printed with 4 significant digits in the notes
are checked to rel 1e-3 (half a unit in the last digit is 5e-4 relative or less at worst ~1e-3).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import optimize

from product_noise.mechanisms import (
    MIN_DELTA,
    SGG,
    Gaussian,
    L2Mechanism,
    ProductNoise,
    analytic_gaussian_sigma,
    calibrate,
    claimed_delta,
    classic_gaussian_sigma,
    from_config,
    gaussian_delta,
    optimal_q,
    paper_t,
    solve_k,
)
from product_noise.privacy import PrivacyFigure, PrivacyWarning

MNIST = dict(dim=26010, epsilon0=0.3, k=40000)  # product_noise_paper.md §3.4


@pytest.fixture(scope="module")
def mnist_product() -> ProductNoise:
    return ProductNoise.from_paper(MNIST["dim"], MNIST["epsilon0"], k=MNIST["k"])


# =============================================================================================
# 1. The paper's claimed δ (product_noise_paper.md §3.1, §3.2, §3.4)
# =============================================================================================


@pytest.mark.parametrize(
    "epsilon, dim, k, expected",
    [
        (0.3, 26010, 40000, 1.97797e-7),  # MNIST DPSGD (hard-coded 1.9779675e-7 in the code)
        (1.0, 464242, 40000, 1.11920e-7),  # IMDB DPSGD
        (0.8, 146320, 20000, 2.96743e-7),  # MovieLens DPSGD
        (1.0, 131466, 300000, 2.810e-8),  # CIFAR-10 DPSGD (§3.4, 4 digits)
        (0.1, 47236, 1000, 5.27e-6),  # RCV1 output perturbation (§3.4, 3 digits)
    ],
)
def test_claimed_delta_paper_settings(epsilon, dim, k, expected):
    # rel 1e-4 for the 6-digit anchors; the CIFAR/RCV1 rows are printed with 4/3 digits
    rel = 1e-4 if expected in (1.97797e-7, 1.11920e-7, 2.96743e-7) else 1e-3
    assert claimed_delta(epsilon, dim, k) == pytest.approx(expected, rel=rel)


def test_optimal_q_movielens():
    # §3.1: get_min_delta.py's grid search gives q ≈ 73,233 ≈ M/2 with δ₁ = 2.9674e-7
    q, d = optimal_q(0.8, 146320, 20000)
    assert q == pytest.approx(73200, rel=1e-2)
    assert d == pytest.approx(2.9674e-7, rel=1e-4)
    # it is the minimum: not above the default q = M/2 and below a far-away q
    assert d <= claimed_delta(0.8, 146320, 20000) * (1 + 1e-12)
    assert d < claimed_delta(0.8, 146320, 20000, q=1000.0)


def test_paper_t_mnist():
    assert paper_t(26010, 40000) == pytest.approx(69.2769, rel=1e-5)


@pytest.mark.parametrize("dim, k", [(26010, 40000), (146320, 20000), (1001, 1000), (10, 50)])
def test_general_q_form_at_half_m_equals_default(dim, k):
    # the q = M/2 closed form of §3.2 is the q = M/2 member of the general form of §3.1
    q = dim / 2.0
    assert paper_t(dim, k, q) == pytest.approx(paper_t(dim, k), rel=1e-14)
    # and the §3.2 closed form t² = 2 k^{4/M} (M/4 + 3/2)^{1+4/M} / e^{1+2/M}
    t2 = 2 * k ** (4 / dim) * (dim / 4 + 1.5) ** (1 + 4 / dim) / math.e ** (1 + 2 / dim)
    assert paper_t(dim, k) ** 2 == pytest.approx(t2, rel=1e-12)
    for eps in (0.1, 0.8, 2.0):
        assert claimed_delta(eps, dim, k, q) == pytest.approx(claimed_delta(eps, dim, k), rel=1e-14)
    # q matters: another order gives another value
    assert claimed_delta(0.8, dim, k, q=1.0) != pytest.approx(claimed_delta(0.8, dim, k), rel=1e-3)


def test_general_q_absurdity_anchor():
    # §4.3: q = 10, M = 146,320, ε = 0.8, k = 20,000 gives t = 6.75 and δ₁ = 1.07e-5
    assert paper_t(146320, 20000, 10) == pytest.approx(6.75, abs=0.005)
    assert claimed_delta(0.8, 146320, 20000, 10) == pytest.approx(1.07e-5, rel=5e-3)


@pytest.mark.parametrize(
    "epsilon, dim, target, q",
    [
        (0.3, 26010, 1.97797e-7, None),
        (1.0, 1000, 1e-5, None),
        (0.1, 10, 1e-5, None),
        (8.0, 10**6, 1e-5, None),
        (0.8, 146320, 1e-6, 500.0),
    ],
)
def test_solve_k_inverts_claimed_delta(epsilon, dim, target, q):
    k = solve_k(epsilon, dim, target, q)
    assert k > 1
    assert claimed_delta(epsilon, dim, k, q) == pytest.approx(target, rel=1e-8)


def test_solve_k_recovers_mnist_k():
    k = solve_k(0.3, 26010, claimed_delta(0.3, 26010, 40000))
    assert k == pytest.approx(40000, rel=1e-8)


@pytest.mark.parametrize(
    "dim, k, eps0, sigma_over_delta",
    [
        (26010, 40000, 0.3, 230.9),  # MNIST
        (464242, 40000, 1.0, 292.2),  # IMDB
        (146320, 20000, 0.8, 205.1),  # MovieLens
        (131466, 300000, 1.0, 155.6),  # CIFAR-10
        (47236, 1000, 0.1, 932.8),  # RCV1
    ],
)
def test_sigma_over_delta_table(dim, k, eps0, sigma_over_delta):
    # §3.4 column sigma/Delta (4 significant digits → ±0.05 absolute)
    assert paper_t(dim, k) / eps0 == pytest.approx(sigma_over_delta, abs=0.05)
    mech = ProductNoise.from_paper(dim, eps0, k=k, sensitivity=2.0)
    assert mech.sigma / mech.sensitivity == pytest.approx(sigma_over_delta, abs=0.05)


# =============================================================================================
# 2. The truth at the MNIST DPSGD setting (product_noise_paper.md §4.1)
# =============================================================================================

MNIST_TRUE = {0.3: 0.4188, 1.0: 0.3175, 3.0: 0.2094, 8.0: 0.1347}


def test_mnist_product_true_delta(mnist_product):
    eps = np.array(list(MNIST_TRUE))
    got = np.asarray(mnist_product.delta(eps))
    np.testing.assert_allclose(got, list(MNIST_TRUE.values()), rtol=0, atol=2e-3)
    # scalar and vector evaluation agree
    for e, d in zip(eps, got, strict=True):
        assert mnist_product.delta(float(e)) == pytest.approx(d, rel=1e-12)
    # against the claim: off by six orders of magnitude
    claim = mnist_product.claimed()
    assert claim.label == "claimed"
    assert claim.delta == pytest.approx(1.97797e-7, rel=1e-4)
    assert got[0] > 1e6 * claim.delta


@pytest.mark.parametrize("epsilon", list(MNIST_TRUE))
def test_mnist_product_exact_profile_matches_monte_carlo(mnist_product, epsilon):
    law = mnist_product.law
    exact = law.delta(epsilon, mnist_product.sensitivity)
    mc, se = law.delta_monte_carlo(
        epsilon,
        mnist_product.sensitivity,
        num_samples=1_000_000,
        rng=np.random.default_rng(20260 + int(10 * epsilon)),
    )
    assert 0 < se < 1e-3
    assert abs(mc - exact) < 4 * se, (mc, se, exact)


def test_mnist_warn_if_claim_false(mnist_product):
    with pytest.warns(PrivacyWarning, match="verified delta"):
        mnist_product.warn_if_claim_false()


# =============================================================================================
# 3. Spherical generalized gamma (mechanism_anchors.md §3.1, §6 item 2)
# =============================================================================================


def test_sgg_product_radius_anchor():
    # M = 100, σ = 300, ε = 1, product-noise radius SGG(α = 0, p = 2, β = 1/(2σ²)), shift 1
    law = SGG(100, 0.0, 1.0 / (2 * 300.0**2), 2.0)
    exact = law.delta(1.0, 1.0)
    assert exact == pytest.approx(0.015903, rel=1e-3)
    # the reference Monte Carlo value 0.015941 ± 6e-5 is within 4 of its standard errors
    assert abs(exact - 0.015941) < 4 * 6e-5
    # and our own Monte Carlo agrees within 4 standard errors
    mc, se = law.delta_monte_carlo(1.0, 1.0, num_samples=2_000_000, rng=np.random.default_rng(7))
    assert se < 1.5e-4
    assert abs(mc - exact) < 4 * se, (mc, se, exact)
    # same law through the mechanism class
    assert ProductNoise(100, 300.0).delta_at_shift(1.0, 1.0) == pytest.approx(exact, rel=1e-12)


# =============================================================================================
# 4. Gaussian (mechanism_anchors.md §1, §2, §5)
# =============================================================================================


@pytest.mark.parametrize("dim", [10, 100, 26010, 10**6])
def test_gaussian_sgg_integral_equals_closed_form(dim):
    eps = np.array([0.0, 0.1, 0.5, 1.0, 3.0, 8.0])
    for sigma in (0.3, 1.0, 3.0, 10.0):
        integral = np.asarray(SGG(dim, dim - 1.0, 1.0 / (2 * sigma**2), 2.0).delta(eps, 1.0))
        closed = np.asarray(gaussian_delta(eps, 1.0 / sigma))
        mask = closed > 1e-12
        assert mask.sum() >= 3
        np.testing.assert_allclose(integral[mask], closed[mask], rtol=1e-5)
        # where the closed form is tiny the integral is tiny too (it is an upper bound)
        assert np.all(integral[~mask] < 1e-11)


@pytest.mark.parametrize("epsilon, ratio", [(0.1, 1.58), (1.0, 1.30)])
def test_classic_over_analytic_sigma(epsilon, ratio):
    # §0 item 1: classic uses 1.58× (ε = 0.1) and 1.30× (ε = 1) the σ of aGM at δ = 1e-5
    r = classic_gaussian_sigma(epsilon, 1e-5) / analytic_gaussian_sigma(epsilon, 1e-5)
    assert r == pytest.approx(ratio, abs=0.01)


@pytest.mark.parametrize("epsilon, sigma", [(0.1, 30.75), (1.0, 3.731), (8.0, 0.6002)])
def test_analytic_sigma_anchors(epsilon, sigma):
    # §5 column "aGM σ" (4 significant digits)
    assert analytic_gaussian_sigma(epsilon, 1e-5) == pytest.approx(sigma, rel=2e-4)
    mech = Gaussian.calibrate(epsilon, 1e-5, 1000, sensitivity=2.0)
    assert mech.sigma == pytest.approx(2.0 * sigma, rel=2e-4)
    assert mech.noise_multiplier == pytest.approx(sigma, rel=2e-4)


@pytest.mark.parametrize(
    "epsilon, delta", [(0.1, 1e-5), (1.0, 1e-5), (8.0, 1e-5), (1.0, 1e-10), (0.5, 1e-3)]
)
def test_gaussian_calibration_is_sound_and_tight(epsilon, delta):
    mech = Gaussian.calibrate(epsilon, delta, 50, sensitivity=1.5)
    assert mech.delta(epsilon) <= delta
    smaller = Gaussian(50, mech.sigma * (1 - 1e-6), sensitivity=1.5)
    assert smaller.delta(epsilon) > delta


@pytest.mark.parametrize("cls", [ProductNoise, L2Mechanism])
def test_spherical_calibration_is_sound_and_tight(cls):
    mech = cls.calibrate(1.0, 1e-5, 100)
    assert mech.delta(1.0) <= 1e-5
    assert cls(100, mech.scale * (1 - 1e-6)).delta(1.0) > 1e-5


def test_classic_gaussian_warns_and_labels_claim():
    with pytest.warns(PrivacyWarning, match="outside the Dwork-Roth theorem"):
        mech = Gaussian.classic(1.0, 1e-5, 100)
    claim = mech.claimed()
    assert isinstance(claim, PrivacyFigure)
    assert claim.label == "claimed"
    assert (claim.epsilon, claim.delta) == (1.0, 1e-5)
    assert "outside its validity" in claim.source
    ver = mech.verified(epsilon=1.0)
    assert ver.label == "verified"
    # §1: its true δ at ε = 1 is 4.1e-8 (here it happens to be conservative)
    assert ver.delta == pytest.approx(4.11e-8, rel=5e-3)
    assert ver.delta == pytest.approx(gaussian_delta(1.0, 1.0 / mech.sigma), rel=1e-12)
    # inside the theorem (ε < 1): no warning, claim not marked as outside validity
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyWarning)
        inside = Gaussian.classic(0.5, 1e-5, 100)
    assert "outside" not in inside.claimed().source
    # analytic calibration carries no claim
    assert Gaussian.calibrate(1.0, 1e-5, 100).claimed() is None


def test_classic_gaussian_not_private_at_large_epsilon():
    # §1: stops being (ε, 1e-5)-DP at ε = 8.4198; true δ is 5.9e-5 at ε = 12
    with pytest.warns(PrivacyWarning, match="Verified delta"):
        mech = Gaussian.classic(12.0, 1e-5, 100)
    true12 = float(mech.delta(12.0))
    assert true12 > 1e-5
    assert true12 == pytest.approx(5.9e-5, rel=1e-2)
    assert mech.verified(epsilon=12.0).delta > mech.claimed().delta

    def excess(e):
        return math.log(gaussian_delta(e, 1.0 / classic_gaussian_sigma(e, 1e-5)) / 1e-5)

    assert optimize.brentq(excess, 5.0, 15.0) == pytest.approx(8.4198, abs=1e-3)


# =============================================================================================
# 5. ℓ2 mechanism (mechanism_anchors.md §5 column "ℓ2 E‖n‖")
# =============================================================================================


@pytest.mark.parametrize(
    "dim, epsilon, expected_norm", [(10, 1.0, 8.728), (100, 1.0, 36.12), (100, 0.1, 301.1)]
)
def test_l2_expected_norm(dim, epsilon, expected_norm):
    mech = L2Mechanism.calibrate(epsilon, 1e-5, dim)
    assert mech.expected_norm == pytest.approx(expected_norm, rel=2e-3)
    # radius Gamma(M, θ): E‖n‖ = Mθ, E‖n‖² = M(M+1)θ²
    assert mech.expected_norm == pytest.approx(dim * mech.theta, rel=1e-12)
    assert mech.expected_sq_norm == pytest.approx(dim * (dim + 1) * mech.theta**2, rel=1e-12)
    assert mech.delta(epsilon) <= 1e-5


# =============================================================================================
# 6. Honest calibration of product noise (product_noise_paper.md §4.3, mechanism_anchors.md §7)
# =============================================================================================


def test_product_honest_calibration_mnist_dimension():
    dim = 26010
    honest = ProductNoise.calibrate(1.0, 1e-5, dim)
    assert honest.delta(1.0) <= 1e-5
    assert honest.sigma == pytest.approx(7.8e6, rel=0.15)
    with pytest.warns(PrivacyWarning):
        classic = Gaussian.classic(1.0, 1e-5, dim)
    analytic = Gaussian.calibrate(1.0, 1e-5, dim)
    assert classic.expected_norm == pytest.approx(781, rel=1e-3)  # §4.3: E‖n‖ ≈ 781 Δ
    assert honest.expected_norm / classic.expected_norm == pytest.approx(8000, rel=0.15)
    assert honest.expected_norm / analytic.expected_norm == pytest.approx(1e4, rel=0.15)
    # E‖n‖ = σ √(2/π) and E‖n‖² = σ² for the half-normal radius (§2.3)
    assert honest.expected_norm == pytest.approx(honest.sigma * math.sqrt(2 / math.pi), rel=1e-12)
    assert honest.expected_sq_norm == pytest.approx(honest.sigma**2, rel=1e-12)


# (M, ε, k, paper E‖n‖, true δ of paper calibration, honest E‖n‖ ÷ aGM) — §7 table, δ = 1e-5
PAPER_ROWS = [
    (10, 0.1, 3.805e4, 134.7, 0.0174, 2471),
    (10, 1.0, 4.117e4, 13.68, 0.0746, 8881),
    (10, 8.0, 7.86e4, 1.947, 0.133, 1.38e4),
    (100, 0.1, 1.169e4, 44.92, 0.166, 2682),
    (100, 1.0, 2.464e4, 4.559, 0.634, 1.02e4),
    (100, 8.0, 2.698e7, 0.6555, 0.987, 2.45e4),
    (1000, 1.0, 9710, 11.17, 0.733, 1.04e4),
    (10**4, 1.0, 3083, 34.34, 0.743, 1.04e4),
    (10**5, 1.0, 967.2, 108.3, 0.744, 1.04e4),
    (10**6, 0.1, 114.4, 3422, 0.210, 2704),
    (10**6, 1.0, 304.8, 342.2, 0.744, 1.04e4),
    (10**6, 8.0, 3.021e7, 42.78, 0.999, 2.58e4),
]


@pytest.mark.parametrize("dim, epsilon, k, paper_norm, true_delta, honest_ratio", PAPER_ROWS)
def test_product_paper_rows(dim, epsilon, k, paper_norm, true_delta, honest_ratio):
    paper = ProductNoise.from_paper(dim, epsilon, target_delta=1e-5)
    assert paper.paper["k"] == pytest.approx(k, rel=1e-2)
    assert paper.claimed().delta == pytest.approx(1e-5, rel=1e-8)
    assert paper.expected_norm == pytest.approx(paper_norm, rel=1e-3)
    got = float(paper.delta(epsilon))
    assert got == pytest.approx(true_delta, rel=1e-2, abs=1e-3)
    assert got > 1000 * 1e-5  # the claim is false by at least three orders of magnitude
    honest = ProductNoise.calibrate(epsilon, 1e-5, dim)
    assert honest.delta(epsilon) <= 1e-5
    agm = Gaussian.calibrate(epsilon, 1e-5, dim).expected_norm
    assert honest.expected_norm / agm == pytest.approx(honest_ratio, rel=1e-2)


# =============================================================================================
# 7. Supremum over shift norms, and ε(δ) inverting δ(ε)
# =============================================================================================


def test_sup_over_shift_is_full_shift_mnist(mnist_product):
    law, sens = mnist_product.law, mnist_product.sensitivity
    eps = np.array([0.3, 1.0, 3.0, 8.0])
    sup = np.asarray(law.delta_sup(eps, sens))
    full = np.asarray(law.delta(eps, sens))
    np.testing.assert_allclose(sup, full, rtol=0, atol=1e-12)
    # strictly smaller at every smaller shift on the grid (the sup is attained at ‖v‖ = Δ)
    for f in (0.1, 0.5, 0.9):
        assert np.all(np.asarray(law.delta(eps, f * sens)) < full)
    assert not mnist_product.shift_monotone_proven
    assert Gaussian(10, 1.0).shift_monotone_proven


@pytest.mark.parametrize("epsilon", [0.3, 1.0, 3.0])
def test_epsilon_inverts_delta_product(mnist_product, epsilon):
    d = float(mnist_product.delta(epsilon))
    e = mnist_product.epsilon(d)
    assert e == pytest.approx(epsilon, rel=1e-6)
    assert mnist_product.delta(e) <= d  # conservative side


def test_epsilon_inverts_delta_other_mechanisms(mnist_product):
    # Gaussian: ε(δ) of the aGM calibration returns the target ε
    g = Gaussian.calibrate(1.0, 1e-5, 100)
    assert g.epsilon(1e-5) == pytest.approx(1.0, rel=1e-6)
    l2 = L2Mechanism.calibrate(1.0, 1e-5, 10)
    assert l2.epsilon(1e-5) == pytest.approx(1.0, rel=1e-6)
    # δ(1e4) of the MNIST product noise is still 3.2e-3: no finite ε reaches δ = 1e-3
    assert mnist_product.delta(1e4) > 1e-3
    assert mnist_product.epsilon(1e-3) == math.inf
    fig = mnist_product.verified(delta=0.2)
    assert fig.label == "verified"
    assert fig.delta == 0.2
    assert mnist_product.delta(fig.epsilon) <= 0.2
    assert mnist_product.delta(fig.epsilon * (1 - 1e-6)) > 0.2
    # δ(0) ≤ target → ε = 0
    assert ProductNoise(100, 1e9).epsilon(0.5) == 0.0


def test_delta_is_finite_at_huge_epsilon(mnist_product):
    # e^ε overflows a float above ε ≈ 709; the profile must stay a number in [0, 1]
    vals = np.asarray(mnist_product.delta(np.array([500.0, 709.0, 710.0, 1e3, 1e4])))
    assert np.all(np.isfinite(vals)) and np.all((vals >= 0) & (vals <= 1))
    assert np.all(np.diff(vals) <= 0)  # δ(ε) is non-increasing


# =============================================================================================
# 8. Config round trip and the registry
# =============================================================================================


def _mechanisms_for_config():
    return [
        Gaussian(100, 2.5, sensitivity=0.5),
        Gaussian.calibrate(1.0, 1e-5, 7),
        L2Mechanism(10, 0.87, sensitivity=3.0),
        ProductNoise(26010, 230.9),
        ProductNoise.from_paper(26010, 0.3, k=40000, sensitivity=2.0),
        ProductNoise.from_paper(1000, 1.0, target_delta=1e-5, q=100.0),
    ]


@pytest.mark.parametrize("idx", range(6))
def test_from_config_round_trip(idx):
    mech = _mechanisms_for_config()[idx]
    cfg = json.loads(json.dumps(mech.config()))  # JSON-able
    back = from_config(cfg)
    assert type(back) is type(mech)
    assert back.config() == mech.config()
    assert (back.dim, back.scale, back.sensitivity) == (mech.dim, mech.scale, mech.sensitivity)
    assert back.claimed() == mech.claimed()
    assert back.delta(1.0) == pytest.approx(mech.delta(1.0), rel=1e-12)
    if isinstance(mech, ProductNoise) and mech.paper is not None:
        assert back.paper == mech.paper
        assert back.claimed().label == "claimed"
        assert back.paper["q"] == mech.paper["q"]


@pytest.mark.parametrize("cls", [Gaussian, ProductNoise, L2Mechanism])
def test_sample_accepts_numpy_seeds(cls):
    # rng= takes what numpy.random.default_rng takes: an int, a SeedSequence, a Generator, None
    mech = cls(5, 0.7)
    ref = mech.sample(3, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(mech.sample(3, rng=42), ref)
    np.testing.assert_array_equal(mech.sample(3, rng=np.random.SeedSequence(42)), ref)
    np.testing.assert_array_equal(mech.sample(3, rng=np.random.PCG64(42)), ref)
    gen = np.random.default_rng(1)
    one, two = mech.sample(rng=gen), mech.sample(rng=gen)  # a Generator is used, not re-seeded
    assert one.shape == (5,) and not np.array_equal(one, two)
    assert mech.sample(2, rng=None).shape == (2, 5)
    assert np.shape(mech.sample_radius(4, rng=7)) == (4,)


def test_from_config_rejects_bad_configs():
    with pytest.raises(ValueError, match="unknown mechanism"):
        from_config({"name": "laplace", "dim": 3, "sigma": 1.0})
    with pytest.raises(ValueError, match="unexpected keys"):
        from_config({"name": "gaussian", "dim": 3, "sigma": 1.0, "bogus": 1})


def test_registry_each_name():
    eps, delta, dim, sens = 1.0, 1e-5, 100, 2.0
    g = calibrate("gaussian", eps, delta, dim, sens)
    assert type(g) is Gaussian
    assert g.sigma == pytest.approx(analytic_gaussian_sigma(eps, delta, sens), rel=1e-12)

    p = calibrate("product", eps, delta, dim, sens)
    assert type(p) is ProductNoise
    assert p.delta(eps) <= delta and p.claimed() is None

    l2 = calibrate("l2", eps, delta, dim, sens)
    assert type(l2) is L2Mechanism
    assert l2.delta(eps) <= delta

    with pytest.warns(PrivacyWarning):
        c = calibrate("classic_gaussian", eps, delta, dim, sens)
    assert type(c) is Gaussian
    assert c.sigma == pytest.approx(classic_gaussian_sigma(eps, delta, sens), rel=1e-12)
    assert c.claimed().label == "claimed"

    pp = calibrate("product_paper", eps, delta, dim, sens)
    assert type(pp) is ProductNoise
    assert pp.claimed().delta == pytest.approx(delta, rel=1e-8)  # target_delta defaults to δ
    assert pp.delta(eps) > 0.5  # §7 row M = 100, ε = 1: true δ 0.634
    pk = calibrate("product_paper", 0.3, delta, 26010, 1.0, k=40000)
    assert pk.paper["k"] == 40000
    assert pk.claimed().delta == pytest.approx(1.97797e-7, rel=1e-4)

    for mech in (g, p, l2, c, pp):
        assert mech.dim == dim and mech.sensitivity == sens


def test_registry_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="unknown mechanism 'laplace'") as info:
        calibrate("laplace", 1.0, 1e-5, 10)
    for name in ("gaussian", "classic_gaussian", "product", "product_paper", "l2"):
        assert name in str(info.value)
    with pytest.raises(TypeError, match="unexpected arguments"):
        calibrate("gaussian", 1.0, 1e-5, 10, k=3)


def test_min_delta_is_resolved():
    # the smallest δ the numerical calibration accepts still calibrates soundly
    mech = ProductNoise.calibrate(1.0, MIN_DELTA, 100)
    assert mech.delta(1.0) <= MIN_DELTA
