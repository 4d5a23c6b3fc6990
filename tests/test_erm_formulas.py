"""Every ERM formula against ``convex_erm_anchors.md`` (tolerances stated per test)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from product_noise.erm import (
    GammaNorm,
    HuberLoss,
    LogisticLoss,
    amp_iyengar_sigma,
    amp_plan,
    cms11_objective,
    objective_delta,
    objective_delta_gaussian,
    objective_epsilon,
    output_sensitivity,
    ppssgd_sensitivity,
    strategy1_fraction,
)
from product_noise.mechanisms import Gaussian


def test_output_sensitivity_is_2L_over_n_lambda():
    assert output_sensitivity(1000, 0.01) == pytest.approx(2.0 / (1000 * 0.01), rel=1e-15)
    assert output_sensitivity(50, 0.2, 3.0) == pytest.approx(6.0 / (50 * 0.2), rel=1e-15)
    assert ppssgd_sensitivity(100, 0.1, 1.0, 10.0) == pytest.approx(2 * (1 + 1.0) / (0.1 * 100))


@pytest.mark.parametrize("loss", [LogisticLoss(), HuberLoss(0.5), HuberLoss(0.1)])
def test_loss_bounds_and_derivatives(loss):
    z = np.linspace(-5, 5, 2001)
    assert np.all(np.abs(loss.deriv(z)) <= 1 + 1e-15)
    assert np.all(loss.second(z) <= loss.c + 1e-15)
    h = 1e-6
    fd = (loss.value(z + h) - loss.value(z - h)) / (2 * h)
    assert np.allclose(fd, loss.deriv(z), atol=1e-5)  # central difference at the kinks


def test_huber_curvature_constant():
    assert HuberLoss(0.5).c == 1.0 and HuberLoss(0.1).c == pytest.approx(5.0)
    assert LogisticLoss().c == 0.25


def test_cms11_no_fallback_matches_reference():
    n, lam, c, eps = 1000, 0.01, 0.25, 1.0
    p = cms11_objective(eps, n, lam, c)
    ref = eps - math.log(1 + 2 * c / (n * lam) + c**2 / (n**2 * lam**2))
    assert p.epsilon_noise == pytest.approx(ref, rel=1e-13)
    assert p.epsilon_noise == pytest.approx(eps - 2 * math.log(1 + c / (n * lam)), rel=1e-13)
    assert not p.fallback and p.extra_reg == 0.0
    assert p.beta == pytest.approx(ref / 2, rel=1e-13)  # β = ε'_p/2 at R = 1
    assert p.jacobian == pytest.approx(eps - ref, rel=1e-12)


def test_cms11_fallback_matches_reference():
    n, lam, c, eps = 10, 1e-3, 0.25, 0.1
    assert eps - 2 * math.log(1 + c / (n * lam)) <= 0
    p = cms11_objective(eps, n, lam, c)
    assert p.fallback
    assert p.extra_reg == pytest.approx(c / (n * (math.exp(eps / 4) - 1)) - lam, rel=1e-12)
    assert p.epsilon_noise == pytest.approx(eps / 2)
    assert p.beta == pytest.approx(eps / 4)
    # with Λ+Δ the Jacobian term is exactly ε/2
    assert p.jacobian == pytest.approx(eps / 2, rel=1e-12)


def test_cms11_general_norm_uses_c_R_squared():
    p = cms11_objective(1.0, 1000, 0.01, 0.25, data_norm=2.0)
    assert p.epsilon_noise == pytest.approx(1.0 - 2 * math.log1p(0.25 * 4 / 10), rel=1e-13)
    assert p.beta == pytest.approx(p.epsilon_noise / 4.0)
    assert p.noise_shift == 4.0


def test_gamma_norm_radius_law_and_pure_calibration():
    n, lam, eps, d = 500, 0.01, 0.5, 20
    sens = output_sensitivity(n, lam)
    mech = GammaNorm.pure(eps, d, sens)
    assert mech.beta == pytest.approx(n * lam * eps / 2, rel=1e-13)  # CMS11 Alg. 1
    rng = np.random.default_rng(0)
    r = np.linalg.norm(mech.sample(20000, rng=rng), axis=1)
    ks = stats.kstest(r, stats.gamma(d, scale=1 / mech.beta).cdf)
    assert ks.pvalue > 1e-3
    assert r.mean() == pytest.approx(d / mech.beta, rel=0.02)  # 20k draws: ~0.5 % s.e.
    assert mech.claimed().epsilon == eps and mech.claimed().delta == 0.0
    assert mech.pure_figure().epsilon == pytest.approx(eps) and mech.pure_figure().delta == 0.0


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.316, 1.0, 3.16, 10.0, 100.0])
def test_strategy1_fraction(eps):
    f = max(min(0.88671 + 0.0186607 / eps**0.372906, 0.99), 1 - 1 / eps + 0.001)
    assert strategy1_fraction(eps) == f


def test_amp_budget_split():
    n, eps, delta, c = 2000, 0.5, 1e-6, 0.25
    p = amp_plan(eps, delta, n, c)
    f = strategy1_fraction(eps)
    assert p.eps_out == pytest.approx(0.01 * eps) and p.eps_obj == pytest.approx(0.99 * eps)
    assert p.eps_p == pytest.approx(f * p.eps_obj)
    assert p.delta_out == pytest.approx(0.01 * delta) and p.delta_obj == pytest.approx(0.99 * delta)
    assert p.reg_sum == pytest.approx(2 * c / (p.eps_obj - p.eps_p))
    assert p.jacobian <= p.eps_obj - p.eps_p
    assert p.gamma == pytest.approx(1 / n**2)
    assert p.obj_shift == pytest.approx(2 / n)
    assert p.out_sensitivity == pytest.approx(2 * n * p.gamma / p.reg_sum)
    assert p.reg == pytest.approx(p.reg_sum / n)
    # explicit fraction and a floor on the regulariser
    q = amp_plan(eps, delta, n, c, eps_frac=0.5, min_reg=10.0)
    assert q.eps_p == pytest.approx(0.5 * q.eps_obj) and q.reg_sum == pytest.approx(n * 10.0)
    with pytest.raises(ValueError, match="Strategy #1"):
        amp_plan(2000.0, delta, n, c)
    assert amp_iyengar_sigma(2.0, 0.5, 1e-5) == pytest.approx(
        2.0 * (1 + math.sqrt(2 * math.log(1e5))) / 0.5
    )


@pytest.mark.parametrize("dim", [3, 50, 2000])
@pytest.mark.parametrize("sigma,jac", [(1.0, 0.0), (3.0, 0.2), (0.5, 0.1)])
def test_objective_bound_matches_gaussian_closed_form(dim, sigma, jac):
    law = Gaussian(dim, sigma, 1.0).law
    for eps in (0.5, 1.0, 3.0):
        num = objective_delta(law, 1.0, eps, jac)
        ref = objective_delta_gaussian(eps, sigma, 1.0, jac)
        # quadrature: relative 1e-4, plus the 2e-20 + 1e-30 truncated mass added on purpose
        assert num == pytest.approx(ref, rel=1e-4, abs=1e-19)


def test_iyengar_sigma_is_verified_by_the_bound():
    shift, eps, delta = 1e-3, 0.2, 1e-8
    sigma = amp_iyengar_sigma(shift, eps, delta)
    mech = Gaussian(30, sigma, shift)
    assert objective_epsilon(mech, shift, delta) <= eps


def test_gamma_objective_bound_is_pure():
    mech = GammaNorm(40, 2.0, 2.0)  # β = 1/2, shift 2 → pure ε = 1
    assert objective_delta(mech.law, 2.0, 1.0 + 0.3, 0.3) <= 1e-19
