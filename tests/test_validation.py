"""Bad input gives a clear error that names the argument (``product_noise/validation.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
    paper_t,
    solve_k,
)
from product_noise.privacy import PrivacyFigure

NAN, INF = float("nan"), float("inf")

# every public entry point that takes ε, as a callable of ε
EPSILON_TAKERS = {
    "claimed_delta": lambda e: claimed_delta(e, 100, 1000),
    "solve_k": lambda e: solve_k(e, 100, 1e-5),
    "classic_gaussian_sigma": lambda e: classic_gaussian_sigma(e, 1e-5),
    "analytic_gaussian_sigma": lambda e: analytic_gaussian_sigma(e, 1e-5),
    "Gaussian.calibrate": lambda e: Gaussian.calibrate(e, 1e-5, 10),
    "Gaussian.classic": lambda e: Gaussian.classic(e, 1e-5, 10),
    "ProductNoise.calibrate": lambda e: ProductNoise.calibrate(e, 1e-5, 10),
    "L2Mechanism.calibrate": lambda e: L2Mechanism.calibrate(e, 1e-5, 10),
    "calibrate(product)": lambda e: calibrate("product", e, 1e-5, 10),
    "verified": lambda e: Gaussian(10, 1.0).verified(epsilon=e),
}

# every public entry point that takes δ, as a callable of δ
DELTA_TAKERS = {
    "classic_gaussian_sigma": lambda d: classic_gaussian_sigma(1.0, d),
    "analytic_gaussian_sigma": lambda d: analytic_gaussian_sigma(1.0, d),
    "Gaussian.calibrate": lambda d: Gaussian.calibrate(1.0, d, 10),
    "ProductNoise.calibrate": lambda d: ProductNoise.calibrate(1.0, d, 10),
    "L2Mechanism.calibrate": lambda d: L2Mechanism.calibrate(1.0, d, 10),
    "calibrate(gaussian)": lambda d: calibrate("gaussian", 1.0, d, 10),
    "epsilon": lambda d: Gaussian(10, 1.0).epsilon(d),
    "verified": lambda d: Gaussian(10, 1.0).verified(delta=d),
}


# ------------------------------------------------------------------------------------- ε
@pytest.mark.parametrize("name", list(EPSILON_TAKERS))
@pytest.mark.parametrize("bad", [0.0, -0.5, -INF])
def test_epsilon_not_positive(name, bad):
    with pytest.raises(ValueError, match=r"epsilon must be > 0|epsilon must be a finite"):
        EPSILON_TAKERS[name](bad)


@pytest.mark.parametrize("name", list(EPSILON_TAKERS))
@pytest.mark.parametrize("bad", [NAN, INF])
def test_epsilon_not_finite(name, bad):
    with pytest.raises(ValueError, match="epsilon must be a finite positive number"):
        EPSILON_TAKERS[name](bad)


def test_epsilon0_named_in_from_paper():
    for bad in (0.0, -1.0, NAN):
        with pytest.raises(ValueError, match="epsilon0"):
            ProductNoise.from_paper(100, bad, k=1000)


def test_profile_rejects_negative_or_nan_epsilon():
    law = SGG(10, 0.0, 0.5, 2.0)
    for bad in (-0.1, NAN, INF):
        with pytest.raises(ValueError, match="epsilon must be finite and >= 0"):
            law.delta(bad)
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        Gaussian(10, 1.0).delta(-1.0)


# ------------------------------------------------------------------------------------- δ
@pytest.mark.parametrize("name", list(DELTA_TAKERS))
@pytest.mark.parametrize("bad", [0.0, 1.0, -1e-5, 1.5, NAN, INF])
def test_delta_outside_open_unit_interval(name, bad):
    with pytest.raises(ValueError, match=r"delta must lie strictly between 0 and 1"):
        DELTA_TAKERS[name](bad)


def test_target_delta_named():
    with pytest.raises(ValueError, match="target_delta must lie strictly between 0 and 1"):
        solve_k(1.0, 100, 0.0)
    with pytest.raises(ValueError, match="target_delta"):
        ProductNoise.from_paper(100, 1.0, target_delta=1.0)


def test_solve_k_unreachable_target():
    # the claimed δ at k → 1 is already below 0.99: no k > 1 gives it
    with pytest.raises(ValueError, match="no k > 1"):
        solve_k(0.3, 26010, 0.99)


@pytest.mark.parametrize(
    "call",
    [
        lambda d: Gaussian.calibrate(1.0, d, 10),
        lambda d: calibrate("gaussian", 1.0, d, 10),
        lambda d: ProductNoise.calibrate(1.0, d, 10),
        lambda d: L2Mechanism.calibrate(1.0, d, 10),
    ],
)
def test_delta_below_min_delta(call):
    for bad in (MIN_DELTA / 10, 1e-20, 1e-300):
        with pytest.raises(ValueError, match=r"delta must be >= 1e-15"):
            call(bad)


def test_min_delta_itself_accepted_by_gaussian():
    mech = Gaussian.calibrate(1.0, MIN_DELTA, 10)
    assert mech.delta(1.0) <= MIN_DELTA


# ------------------------------------------------------------------ paper formula: M, q, k
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_paper_formula_needs_m_above_3(dim):
    with pytest.raises(ValueError, match=r"needs M > 3, got M=" + str(dim)):
        paper_t(dim, 1000)
    with pytest.raises(ValueError, match="M > 3"):
        claimed_delta(1.0, dim, 1000)
    with pytest.raises(ValueError, match="M > 3"):
        solve_k(1.0, dim, 1e-5)
    with pytest.raises(ValueError, match="M > 3"):
        ProductNoise.from_paper(dim, 1.0, k=1000)


@pytest.mark.parametrize("dim", [0, -5])
def test_dimension_not_positive(dim):
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        paper_t(dim, 1000)
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        ProductNoise(dim, 1.0)


def test_dimension_not_integer():
    with pytest.raises(TypeError, match="dim must be an integer"):
        Gaussian(10.5, 1.0)
    assert Gaussian(10.0, 1.0).dim == 10  # an integral float is accepted


@pytest.mark.parametrize("q", [0.0, 0.999, 98.5, 98.6, 1e6, -3.0, NAN, INF])
def test_q_outside_range(q):
    # M = 100: q must lie in [1, 98.5)
    with pytest.raises(ValueError, match=r"moment order q must satisfy 1 <= q < M - 3/2 = 98\.5"):
        paper_t(100, 1000, q)
    with pytest.raises(ValueError, match="moment order q"):
        claimed_delta(1.0, 100, 1000, q)
    with pytest.raises(ValueError, match="moment order q"):
        ProductNoise.from_paper(100, 1.0, k=1000, q=q)


def test_q_edges_accepted():
    assert paper_t(100, 1000, 1.0) > 0
    assert paper_t(100, 1000, 98.49) > 0


@pytest.mark.parametrize("k", [1.0, 0.5, 1 - 1e-12])
def test_k_at_most_one(k):
    with pytest.raises(ValueError, match=r"constant k must be > 1"):
        paper_t(100, k)
    with pytest.raises(ValueError, match=r"k must be > 1"):
        claimed_delta(1.0, 100, k)
    with pytest.raises(ValueError, match=r"k must be > 1"):
        ProductNoise.from_paper(100, 1.0, k=k)


@pytest.mark.parametrize("k", [0.0, -2.0, NAN, INF])
def test_k_not_positive_or_not_finite(k):
    with pytest.raises(ValueError, match=r"^k must be"):
        paper_t(100, k)


def test_from_paper_needs_exactly_one_of_k_and_target():
    with pytest.raises(ValueError, match="exactly one of k= or target_delta="):
        ProductNoise.from_paper(100, 1.0)
    with pytest.raises(ValueError, match="exactly one of k= or target_delta="):
        ProductNoise.from_paper(100, 1.0, k=1000, target_delta=1e-5)


def test_from_paper_without_k_or_target_delta_says_neither_has_a_default():
    with pytest.raises(ValueError) as exc:
        ProductNoise.from_paper(100, 1.0)
    msg = str(exc.value)
    assert "k=" in msg and "target_delta=" in msg
    assert "neither was given, and neither has a default" in msg
    with pytest.raises(ValueError, match=r"\(both were given\)$"):
        ProductNoise.from_paper(100, 1.0, k=1000, target_delta=1e-5)


# -------------------------------------------------------------------------- sensitivity Δ
SENSITIVITY_TAKERS = {
    "Gaussian": lambda s: Gaussian(10, 1.0, sensitivity=s),
    "ProductNoise": lambda s: ProductNoise(10, 1.0, sensitivity=s),
    "L2Mechanism": lambda s: L2Mechanism(10, 1.0, sensitivity=s),
    "Gaussian.calibrate": lambda s: Gaussian.calibrate(1.0, 1e-5, 10, s),
    "ProductNoise.calibrate": lambda s: ProductNoise.calibrate(1.0, 1e-5, 10, s),
    "classic_gaussian_sigma": lambda s: classic_gaussian_sigma(1.0, 1e-5, s),
    "calibrate(l2)": lambda s: calibrate("l2", 1.0, 1e-5, 10, s),
}


@pytest.mark.parametrize("name", list(SENSITIVITY_TAKERS))
@pytest.mark.parametrize("bad", [INF, -INF, NAN])
def test_sensitivity_not_finite(name, bad):
    with pytest.raises(ValueError, match="sensitivity must be a finite positive number"):
        SENSITIVITY_TAKERS[name](bad)


@pytest.mark.parametrize("name", list(SENSITIVITY_TAKERS))
@pytest.mark.parametrize("bad", [-1.0, 0.0])
def test_sensitivity_not_positive(name, bad):
    with pytest.raises(ValueError, match=r"sensitivity must be > 0"):
        SENSITIVITY_TAKERS[name](bad)


@pytest.mark.parametrize(
    "make, arg",
    [
        (lambda v: Gaussian(10, v), "sigma"),
        (lambda v: ProductNoise(10, v), "sigma"),
        (lambda v: L2Mechanism(10, v), "theta"),
        (lambda v: SGG(10, 0.0, v, 2.0), "beta"),
    ],
)
def test_scale_not_positive(make, arg):
    for bad in (0.0, -1.0, INF, NAN):
        with pytest.raises(ValueError, match=arg):
            make(bad)


def test_sgg_alpha_range():
    with pytest.raises(ValueError, match=r"alpha must lie in \(-1, M-1\]"):
        SGG(10, 9.5, 1.0, 2.0)
    with pytest.raises(ValueError, match="alpha"):
        SGG(10, -1.0, 1.0, 2.0)


# --------------------------------------------------------------- bool passed as a number
@pytest.mark.parametrize(
    "call, arg",
    [
        (lambda: claimed_delta(True, 100, 1000), "epsilon"),
        (lambda: claimed_delta(1.0, 100, True), "k"),
        (lambda: classic_gaussian_sigma(1.0, True), "delta"),
        (lambda: analytic_gaussian_sigma(1.0, 1e-5, True), "sensitivity"),
        (lambda: Gaussian(True, 1.0), "dim"),
        (lambda: Gaussian(10, True), "sigma"),
        (lambda: ProductNoise(10, 1.0, sensitivity=True), "sensitivity"),
        (lambda: L2Mechanism(10, False), "theta"),
        (lambda: ProductNoise.from_paper(100, True, k=1000), "epsilon0"),
        (lambda: Gaussian(10, 1.0).verified(epsilon=True), "epsilon"),
        (lambda: Gaussian(10, 1.0).verified(delta=True), "delta"),
        (lambda: calibrate("gaussian", 1.0, 1e-5, 10, sensitivity=True), "sensitivity"),
        (lambda: SGG(10, 0.0, 1.0, 2.0).delta_monte_carlo(1.0, num_samples=True), "num_samples"),
    ],
)
def test_bool_is_not_a_number(call, arg):
    with pytest.raises(TypeError, match=rf"^{arg} must be an? "):
        call()


def test_non_numbers_rejected_numpy_scalars_accepted():
    with pytest.raises(TypeError, match="epsilon must be a real number"):
        claimed_delta("0.3", 100, 1000)
    with pytest.raises(TypeError, match="epsilon must be a real number"):
        claimed_delta(None, 100, 1000)
    # NumPy scalars are ordinary numbers
    ref = claimed_delta(0.3, 26010, 40000)
    assert claimed_delta(np.float64(0.3), np.int64(26010), np.float32(40000)) == pytest.approx(
        ref, rel=1e-12
    )
    assert Gaussian(np.int32(10), np.float32(2.0)).sigma == 2.0


# ------------------------------------------------------------------------- verified()
@pytest.mark.parametrize("mech", [Gaussian(10, 3.0), ProductNoise(10, 1e6), L2Mechanism(10, 5.0)])
def test_verified_needs_exactly_one_of_epsilon_delta(mech):
    with pytest.raises(ValueError, match=r"exactly one of epsilon= or delta="):
        mech.verified()
    with pytest.raises(ValueError, match=r"exactly one of epsilon= or delta="):
        mech.verified(epsilon=1.0, delta=1e-5)
    fig = mech.verified(epsilon=1.0)  # one of them is fine
    assert fig.label == "verified" and fig.epsilon == 1.0 and 0 <= fig.delta <= 1


def test_monte_carlo_sample_count():
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1"):
        SGG(10, 0.0, 1.0, 2.0).delta_monte_carlo(1.0, num_samples=0)
    with pytest.raises(TypeError, match="num_samples must be an integer"):
        SGG(10, 0.0, 1.0, 2.0).delta_monte_carlo(1.0, num_samples=10.5)


def test_profile_shift_positive():
    with pytest.raises(ValueError, match="shift"):
        SGG(10, 0.0, 1.0, 2.0).delta(1.0, shift=0.0)


def test_privacy_figure_label():
    with pytest.raises(ValueError, match="label must be one of"):
        PrivacyFigure(1.0, 1e-5, "proven", "nowhere")
    assert "claimed" in str(PrivacyFigure(1.0, 1e-5, "claimed", "paper"))
    assert math.isinf(PrivacyFigure(math.inf, 1e-5, "verified", "x").epsilon)
