"""DPMix accounting against the anchors of ``seed_mechanisms.md`` §1.4 and the thesis setting.

Anchors (n = 60,000, δ = 1e-5, integer orders, ``dpmix_accountant_output.txt``), printed to 3-4
significant digits there and checked here to ±0.005 absolute:

* l = 10, s_eff = 0.8, T = 60,000: ε = 0.9992 (improved conversion), 1.360 (classic);
  the thesis formula: 1.063 (classic) - an under-count of the true 1.360;
* l = 100, s_eff = 2.0, T = 60,000: ε = 1.866 (improved), 2.193 (classic).

Thesis setting (Mahmud 2025 §4.1): n = 60,000, l = 256, T = 10,000, δ = 1/n, σ_x = σ_y = 0.0711,
"ε = 15". Its code's figure is reproduced exactly (15.00, only α = 2 survives); the verified ε of
that σ under the pixel bound (Δ² = 786/σ²) is 11.36.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from dpmix import (
    calibrate,
    calibrate_noise_multiplier,
    dpmix_epsilon,
    epsilon_from_rdp,
    rdp_dp_accounting,
    rdp_native,
    thesis_epsilon,
    thesis_figure,
    verified_figure,
    whitened_sensitivity,
)
from product_noise.privacy import PrivacyFigure

N = 60_000
DELTA = 1e-5
ANCHORS = [
    # l, s_eff, T, improved, classic
    (10, 0.8, 60_000, 0.9992, 1.360),
    (100, 2.0, 60_000, 1.866, 2.193),
]
ORDERS = tuple(range(2, 257))  # the anchors' orders


@pytest.mark.parametrize(("l", "s", "T", "improved", "classic"), ANCHORS)
def test_anchor_table(l: int, s: float, T: int, improved: float, classic: float) -> None:
    imp = dpmix_epsilon(N, l, T, s, DELTA, backend="native", orders=ORDERS)
    cla = dpmix_epsilon(N, l, T, s, DELTA, backend="native", conversion="classic", orders=ORDERS)
    assert imp.epsilon == pytest.approx(improved, abs=5e-3)
    assert cla.epsilon == pytest.approx(classic, abs=5e-3)
    assert f"{imp.epsilon:.2f}" == {10: "1.00", 100: "1.87"}[l]
    assert f"{cla.epsilon:.2f}" == {10: "1.36", 100: "2.19"}[l]


def test_dp_accounting_backend_matches_native() -> None:
    """The verified backend (dp_accounting) and the native Thm 27 agree (rel RDP ≤ 1e-8)."""
    orders = list(range(2, 41))
    for l, s in [(10, 0.8), (100, 2.0), (256, 0.65)]:
        ref = rdp_dp_accounting(orders, N, l, s, T=1)
        mine = rdp_native(orders, N, l, s)
        np.testing.assert_allclose(mine, ref, rtol=1e-8)
    acc = dpmix_epsilon(N, 10, 60_000, 0.8, DELTA, orders=orders)  # default backend
    assert acc.backend == "dp_accounting"
    assert acc.epsilon == pytest.approx(0.9992, abs=5e-4)


def test_thesis_formula_undercounts() -> None:
    """The thesis formula ((1/n)^j, B(2⌊j/2⌋)²) gives 1.06 where the true bound is 1.36."""
    l, s, T = 10, 0.8, 60_000
    claimed, _ = thesis_epsilon(N, l, T, (l / s) ** 2, DELTA, variant="formula", orders=ORDERS)
    true = dpmix_epsilon(N, l, T, s, DELTA, backend="native", conversion="classic", orders=ORDERS)
    assert claimed == pytest.approx(1.063, abs=5e-3)
    assert true.epsilon == pytest.approx(1.360, abs=5e-3)
    assert claimed < 0.8 * true.epsilon  # a 22 % under-count, not round-off
    # and the per-order RDP is below Theorem 27's at the orders that matter (j >= 3 terms)
    from dpmix import thesis_rdp

    orders = np.arange(3, 30)
    assert np.all(thesis_rdp(orders, N, l, (l / s) ** 2) < rdp_native(orders, N, l, s))


def test_thm9_dominates_thm27() -> None:
    r27 = rdp_native(ORDERS, N, 100, 2.0)
    r9 = rdp_native(ORDERS, N, 100, 2.0, bound="thm9")
    assert np.all(r9 >= r27 * (1 - 1e-12))
    e9 = dpmix_epsilon(
        N,
        100,
        60_000,
        2.0,
        DELTA,
        backend="native",
        conversion="classic",
        bound="thm9",
        orders=ORDERS,
    )
    assert e9.epsilon == pytest.approx(2.206, abs=5e-3)  # anchor table, Thm 9 column


def test_no_sampling_is_the_gaussian() -> None:
    """l = n: every release is the full mean; RDP = α/(2 s²)."""
    r = rdp_native([2, 5, 10], 50, 50, 2.0)
    np.testing.assert_allclose(r, np.array([2, 5, 10]) / 8.0)


def test_thesis_setting() -> None:
    n, l, T, sigma = 60_000, 256, 10_000, 0.0711
    delta = 1 / n
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the literal code's overflows must stay contained
        claimed = thesis_figure(n, l, T, sigma, sigma, 784, 10, variant="code")
    assert isinstance(claimed, PrivacyFigure) and claimed.label == "claimed"
    assert claimed.epsilon == pytest.approx(15.00, abs=5e-3)
    assert claimed.extra["order"] == 2
    formula = thesis_figure(n, l, T, sigma, sigma, 784, 10, variant="formula")
    assert formula.epsilon == pytest.approx(11.50, abs=5e-3)
    # verified, pixel bound: D_x² = 784, D_y² = 2 (one-hot)
    big_delta = whitened_sensitivity(sigma, 28.0, sigma, math.sqrt(2))
    assert big_delta**2 == pytest.approx(786 / sigma**2)
    ver = verified_figure(n, l, T, l / big_delta, delta, orders=range(2, 41))
    assert ver.label == "verified"
    assert ver.epsilon == pytest.approx(11.356, abs=5e-3)
    # the σ needed for a verified ε = 15
    s15 = calibrate(15.0, delta, l, T, n)
    assert s15 == pytest.approx(0.06672, abs=5e-5)
    eps15 = dpmix_epsilon(n, l, T, l * s15 / math.hypot(28, math.sqrt(2)), delta)
    assert 14.99 < eps15.epsilon <= 15.0


def test_calibration_inverts_the_accountant() -> None:
    s = calibrate_noise_multiplier(1.0, DELTA, 10, 60_000, N)
    e = dpmix_epsilon(N, 10, 60_000, s, DELTA, backend="native")
    assert 0.999 < e.epsilon <= 1.0
    assert s == pytest.approx(0.8, abs=2e-3)  # anchor: s_eff 0.8 gives 0.9992


def test_conversions() -> None:
    orders = np.arange(2, 50)
    rdp = orders * 0.5  # a Gaussian with μ = 1
    e_imp, _ = epsilon_from_rdp(orders, rdp, 1e-5)
    e_cla, _ = epsilon_from_rdp(orders, rdp, 1e-5, conversion="classic")
    assert e_imp < e_cla
    with pytest.raises(ValueError, match="conversion"):
        epsilon_from_rdp(orders, rdp, 1e-5, conversion="tight")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 10, "l": 11}, "l .* must be <= n"),
        ({"l": 0}, "l must be an integer >= 1"),
        ({"T": 0}, "T must be an integer >= 1"),
        ({"noise_multiplier": 0.0}, "noise_multiplier must be > 0"),
        ({"noise_multiplier": -1.0}, "noise_multiplier must be > 0"),
        ({"delta": 1.5}, "delta must lie strictly between 0 and 1"),
        ({"backend": "opacus"}, "backend"),
    ],
)
def test_accountant_bad_input(kwargs: dict, match: str) -> None:
    args = {"n": 100, "l": 10, "T": 5, "noise_multiplier": 1.0, "delta": 1e-5}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        dpmix_epsilon(**args)


def test_whitened_sensitivity_checks() -> None:
    assert whitened_sensitivity(0.5, 2.0) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="sigma_y is required"):
        whitened_sensitivity(0.5, 2.0, None, math.sqrt(2))
    with pytest.raises(ValueError, match="sigma_x must be > 0"):
        whitened_sensitivity(0.0, 2.0)


@pytest.mark.parametrize(
    "n, l, T, sigma, expected",
    [(60000, 16, 20000, 0.05, 1.22596e7), (10000, 4, 5000, 0.2, 3.06693e6)],
)
def test_thesis_formula_is_finite_when_delta_sq_over_l_sq_exceeds_700(n, l, T, sigma, expected):
    # issue 15, item 5: Δ²/l² > 700 overflowed e^{Δ²/l²} to inf; the printed formula is finite
    delta_sq = 794 / sigma**2
    assert delta_sq / l**2 > 700
    eps, _ = thesis_epsilon(n, l, T, delta_sq)
    assert eps == pytest.approx(expected, rel=1e-5)
