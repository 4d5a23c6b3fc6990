"""Regression tests of issue 15, item 3: small dimensions (M = 2, 3) are exact or refused,
never optimistic.

Before: ``revealed_scale_delta`` returned NaN at M = 3 (``1 - 1e-300 == 1.0`` in float64, then
``0 · ln 0``), its quadrature missed ~1e-6 of the Beta(1/2, 1/2) mass at M = 2, and the exact
spherical profile was 0.9% low at M = 2 (product noise, σ = 10, ε = 5: 2.6774e-4 against
2.7016e-4 by nested quadrature).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate, special
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from product_noise import PrivacyEngine
from product_noise.mechanisms import SGG, L2Mechanism, ProductNoise
from product_noise.mechanisms.product import revealed_scale_delta


def _gauss_delta(eps: float, mu: float) -> float:
    return float(special.ndtr(mu / 2 - eps / mu) - math.exp(eps) * special.ndtr(-mu / 2 - eps / mu))


def _revealed_reference(eps: float, dim: int, sigma: float) -> float:
    """E_B[δ_Gauss(ε; 1/(σ√B))], B ~ Beta(1/2, (M−1)/2), by QUADPACK with the algebraic endpoint
    weight B^{a−1}(1−B)^{b−1} handled exactly (weight='alg')."""
    a, b = 0.5, 0.5 * (dim - 1)
    val, err = integrate.quad(
        lambda x: _gauss_delta(eps, 1.0 / (sigma * math.sqrt(max(x, 1e-300)))),
        0.0,
        1.0,
        weight="alg",
        wvar=(a - 1.0, b - 1.0),
        epsabs=1e-16,
        epsrel=1e-11,
        limit=500,
    )
    return val / math.exp(special.betaln(a, b))


@pytest.mark.parametrize("dim", [2, 3, 4, 6])
@pytest.mark.parametrize("sigma, eps", [(10.0, 5.0), (3.0, 1.0), (30.0, 0.5)])
def test_revealed_scale_bound_is_exact_at_small_dimension(dim: int, sigma: float, eps: float):
    got = revealed_scale_delta(eps, dim, sigma)
    ref = _revealed_reference(eps, dim, sigma)
    assert math.isfinite(got)
    assert got >= ref * (1 - 1e-9)  # never optimistic
    assert got <= ref * (1 + 1e-6) + 1e-18


def test_revealed_scale_bound_is_vectorised_and_monotone_at_m3():
    eps = np.linspace(0.0, 20.0, 401)
    vals = revealed_scale_delta(eps, 3, 5.0)
    assert np.all(np.isfinite(vals)) and np.all(np.diff(vals) <= 1e-15)


@pytest.mark.parametrize("dim", [2, 3])
def test_exact_spherical_profile_refuses_unresolved_dimensions(dim: int):
    with pytest.raises(ValueError, match="M >= 4"):
        SGG(dim, 0.0, 0.5, 2.0).delta(1.0)
    with pytest.raises(ValueError, match="M >= 4"):
        L2Mechanism(dim, 1.0).delta(1.0)
    # the Gaussian has a closed form in every dimension
    assert 0 < SGG(dim, dim - 1.0, 0.5, 2.0).delta(0.5) < 1


def test_product_noise_small_dimension_is_never_optimistic():
    # nested-quadrature value of the exact profile (issue 15): 2.7016e-4
    mech = ProductNoise(2, 10.0)
    assert mech.delta(5.0) >= 2.7016e-4
    assert math.isfinite(ProductNoise(3, 10.0).delta(5.0))
    # calibration at M = 3 works and meets its target on the profile it reports
    cal = ProductNoise.calibrate(2.0, 1e-5, 3)
    assert cal.delta(2.0) <= 1e-5 and cal.delta(2.0) >= 0.99e-5


def test_three_parameter_model_with_product_noise_accounts():
    # before: "profile returned non-finite values" from the accountant
    torch.manual_seed(0)
    model = nn.Linear(2, 1)  # M = 3
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(32, 2, generator=g), torch.randn(32, 1, generator=g))
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp_model, dp_opt, dp_loader = engine.make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=DataLoader(data, batch_size=8),
            noise="product",
            noise_multiplier=3e4,
            max_grad_norm=1.0,
            criterion=nn.MSELoss(),
        )
        for xb, yb in dp_loader:
            dp_opt.zero_grad()
            nn.functional.mse_loss(dp_model(xb), yb).backward()
            dp_opt.step()
    eps = engine.get_epsilon(1e-5)
    assert math.isfinite(eps) and eps > 0


def test_engine_refuses_l2_below_four_values():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)  # M = 3
    data = TensorDataset(torch.randn(16, 2), torch.randn(16, 1))
    with pytest.raises(ValueError, match="at least 4 trainable values"):
        PrivacyEngine().make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=DataLoader(data, batch_size=8),
            noise="l2",
            noise_multiplier=1.0,
            max_grad_norm=1.0,
        )
