"""The calibration module: brackets, the safe-side rule, edge cases, errors, closed forms."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from product_noise.accounting import calibrate as cal
from product_noise.accounting.calibrate import (
    MAX_EPSILON,
    TOL,
    CalibrationError,
    ExplicitBracket,
    GrowingBracket,
    NoBracketFoundError,
    calibrate,
    ensure_safe,
    invert_profile,
    smallest_noise,
    smallest_scale,
)
from product_noise.mechanisms.gaussian import analytic_gaussian_sigma, gaussian_delta


class Recorder:
    """A metric that records where it was evaluated."""

    def __init__(self, fn: Callable[[float], float]) -> None:
        self.fn, self.seen = fn, []

    def __call__(self, x: float) -> float:
        self.seen.append(x)
        return self.fn(x)


# ------------------------------------------------------------------ brackets
def test_growing_bracket_upwards_log_scale() -> None:
    """The upper end grows by the factor; the last miss becomes the lower end."""
    m = Recorder(lambda s: 1.0 / s)
    s = calibrate(m, 1e-3, GrowingBracket(1.0, 1.0, factor=2.0), increasing=False, log_scale=True)
    assert 1.0 / s <= 1e-3 and s == pytest.approx(1e3, rel=1e-9)
    assert m.seen[:11] == [2.0**k for k in range(11)]  # 1, 2, …, 1024 (the first safe end)
    assert min(m.seen[11:]) >= 512.0  # then nothing below the last miss


def test_growing_bracket_downwards_and_linear() -> None:
    m = Recorder(lambda s: 1.0 / s)
    s = calibrate(m, 1e3, GrowingBracket(1.0, 1.0, factor=10.0), increasing=False, log_scale=True)
    assert s == pytest.approx(1e-3, rel=1e-9) and 1.0 / s <= 1e3
    assert m.seen[:4] == [1.0, 0.1, 0.01, 0.001]
    # linear: the distance from the initial lower end doubles (J + 1, J + 2, J + 4, …)
    m = Recorder(lambda e: max(0.0, 1.0 - (e - 3.0) / 40.0))
    e = calibrate(m, 0.5, GrowingBracket(3.0, 4.0), increasing=False)
    assert m.seen[:6] == [4.0, 5.0, 7.0, 11.0, 19.0, 35.0]  # the upper end only
    assert 3.0 not in m.seen  # the last miss (19) is the lower end
    assert e == pytest.approx(23.0, rel=1e-9)


def test_bracket_limits_are_the_domain() -> None:
    # the optimal limit meets the target: it is the answer
    b = GrowingBracket(1.0, 1.0, min_value=0.25, max_value=8.0)
    assert calibrate(lambda s: 1.0 / s, 100.0, b, increasing=False, log_scale=True) == 0.25
    assert calibrate(lambda s: s, 100.0, b, increasing=True, log_scale=True) == 8.0
    assert calibrate(lambda s: s, 100.0, ExplicitBracket(1.0, 8.0), increasing=True) == 8.0
    # no point of the domain meets it: named error, with the values in the message
    with pytest.raises(NoBracketFoundError, match=r"upper limit.*0\.125 at x = 8.*target 0\.01"):
        calibrate(lambda s: 1.0 / s, 0.01, b, increasing=False, log_scale=True)
    with pytest.raises(NoBracketFoundError, match="lower limit"):
        calibrate(lambda s: s, 0.01, b, increasing=True, log_scale=True)
    with pytest.raises(NoBracketFoundError, match="float range"):
        calibrate(lambda s: 1.0, 0.5, GrowingBracket(1.0, 1.0), increasing=False, log_scale=True)


def test_brackets_are_frozen_and_checked() -> None:
    b = GrowingBracket(1.0, 2.0)
    with pytest.raises(AttributeError):
        b.factor = 3.0  # type: ignore[misc]
    for bad in [
        lambda: ExplicitBracket(2.0, 1.0),
        lambda: ExplicitBracket(0.0, math.inf),
        lambda: GrowingBracket(2.0, 1.0),
        lambda: GrowingBracket(1.0, 2.0, factor=1.0),
        lambda: GrowingBracket(1.0, 2.0, min_value=1.5),
        lambda: GrowingBracket(1.0, 2.0, max_value=1.5),
    ]:
        with pytest.raises(CalibrationError):
            bad()


def test_invalid_arguments() -> None:
    f = lambda x: x  # noqa: E731
    with pytest.raises(CalibrationError, match="tol"):
        calibrate(f, 1.0, ExplicitBracket(0.0, 2.0), increasing=True, tol=0.0)
    with pytest.raises(CalibrationError, match="method"):
        calibrate(f, 1.0, ExplicitBracket(0.0, 2.0), increasing=True, method="newton")  # type: ignore[arg-type]
    with pytest.raises(CalibrationError, match="positive"):
        calibrate(f, 1.0, ExplicitBracket(0.0, 2.0), increasing=True, log_scale=True)
    with pytest.raises(CalibrationError, match="target"):
        calibrate(f, 0.0, ExplicitBracket(0.5, 2.0), increasing=True, log_metric=True)
    with pytest.raises(CalibrationError, match="lower < upper"):
        calibrate(f, 1.0, GrowingBracket(1.0, 1.0), increasing=True)
    with pytest.raises(TypeError, match="bracket"):
        calibrate(f, 1.0, (0.0, 2.0), increasing=True)  # type: ignore[arg-type]


def test_exceptions_are_value_errors() -> None:
    """Callers that catch ValueError keep working."""
    assert issubclass(NoBracketFoundError, CalibrationError)
    assert issubclass(CalibrationError, ValueError)
    from product_noise.baselines.input_noise import GaussianInputPerturbation

    with pytest.raises(ValueError, match="leaves no room for the images") as info:
        GaussianInputPerturbation._mu_total_for(1.0, 1e-5, 5.0, 10)
    assert isinstance(info.value, NoBracketFoundError)
    with pytest.raises(ValueError, match="not reachable with noise <= 10"):
        smallest_noise(lambda s: 1.0 / s, 0.01, rtol=1e-3, low=1e-3, high=10)


# ------------------------------------------------------------------ the safe side
def _metrics() -> dict[str, tuple[Callable[[float], float], bool]]:
    """name -> (metric, increasing); each monotone on (0, inf)."""
    return {
        "smooth decreasing": (lambda x: math.exp(-x), False),
        "power decreasing": (lambda x: x**-2.5, False),
        "smooth increasing": (lambda x: math.log1p(x), True),
        "steps decreasing": (lambda x: 1.0 / math.ceil(x * 7.0), False),
        "steps increasing": (lambda x: math.floor(x * 3.0) / 3.0, True),
        "flat then decreasing": (lambda x: 1.0 if x < 2.0 else 1.0 / (x - 1.0), False),
        "flat then increasing": (lambda x: 0.0 if x < 2.0 else x - 2.0, True),
        "clipped at zero": (lambda x: max(0.0, 1.0 - x / 5.0), False),
    }


@pytest.mark.parametrize("method", ["brentq", "bisect"])
@pytest.mark.parametrize("log_scale", [False, True])
@pytest.mark.parametrize("name", sorted(_metrics()))
def test_result_meets_the_target_and_is_near_optimal(name: str, log_scale: bool, method) -> None:
    fn, increasing = _metrics()[name]
    grid = np.geomspace(0.01, 100.0, 8001)
    for target in [0.9, 0.5, 0.3, 0.1, 0.02]:
        if increasing:
            target = 4.0 * target
        m = Recorder(fn)
        bracket = GrowingBracket(1.0, 1.0 if log_scale else 2.0, min_value=0.01, max_value=100.0)
        tol = 1e-6 if method == "bisect" else TOL
        x = calibrate(
            m, target, bracket, increasing=increasing, log_scale=log_scale, method=method, tol=tol
        )
        assert fn(x) <= target, (name, target, x)
        assert x in m.seen  # the result is a point where the metric was evaluated
        # near-optimal: no grid point noticeably beyond x on the unsafe side meets the target
        ok = grid[[fn(g) <= target for g in grid]]
        best = ok.max() if increasing else ok.min()
        assert x == pytest.approx(best, rel=3e-3)


def test_log_metric_safe_side_is_on_raw_values() -> None:
    """ln δ rounds: the check is on δ itself, so δ(x) <= target holds to the last bit."""
    for mu in [0.3, 1.0, 3.0, 10.0]:
        for delta in [1e-3, 1e-7, 1e-12]:
            eps = invert_profile(lambda e, mu=mu: gaussian_delta(e, mu), delta)
            assert gaussian_delta(eps, mu) <= delta


def test_non_monotone_metric_still_meets_the_target() -> None:
    """Not monotone: the search cannot promise the optimum, but the result meets the target."""
    wiggly = lambda x: 1.0 / x + 0.3 * math.sin(7.0 * x)  # noqa: E731
    for target in [0.2, 0.5, 1.0]:
        for method in ["brentq", "bisect"]:
            x = calibrate(
                wiggly,
                target,
                ExplicitBracket(0.1, 30.0),
                increasing=False,
                method=method,
                tol=1e-9,
            )
            assert wiggly(x) <= target
    spiky = lambda x: 0.0 if abs(x - 1.0) < 1e-3 else 1.0 / x  # noqa: E731
    x = calibrate(spiky, 0.25, ExplicitBracket(0.5, 10.0), increasing=False)
    assert spiky(x) <= 0.25


def test_ensure_safe() -> None:
    m = Recorder(lambda s: 1.0 / s)
    assert ensure_safe(m, 2.0, 1.0, increasing=False) == 2.0 and m.seen == [2.0]
    s = ensure_safe(lambda s: 1.0 / s, 1.0, 1.0 - 3.5e-9, increasing=False)
    assert s == pytest.approx(1.0 * (1 + 1e-9) ** 4) and 1.0 / s <= 1.0 - 3.5e-9
    s = ensure_safe(lambda s: s, 1.0, 0.9, increasing=True, step=0.01)
    assert s <= 0.9 and s == pytest.approx(0.99**11)
    with pytest.raises(CalibrationError, match=r"after 3 steps of 0\.01"):
        ensure_safe(lambda s: 1.0 / s, 1.0, 0.5, increasing=False, step=0.01, max_nudges=3)


# ------------------------------------------------------------------ invert_profile
def test_invert_profile_edges() -> None:
    # δ(0) already meets the target: 0 (or the given lower end), nothing else evaluated
    m = Recorder(lambda e: 1e-6 * math.exp(-e))
    assert invert_profile(m, 1e-5) == 0.0 and m.seen == [0.0]
    assert invert_profile(lambda e: 0.5 if e < 2.0 else 0.0, 0.1, lower=2.0) == 2.0
    # the cap is not reached: inf (after looking at 0 and the cap only)
    m = Recorder(lambda e: 0.5 / (1.0 + e))
    assert invert_profile(m, 1e-6) == math.inf and m.seen == [0.0, MAX_EPSILON]
    assert invert_profile(lambda e: 0.5 / (1.0 + e), 1e-3, max_epsilon=100.0) == math.inf
    assert invert_profile(lambda e: 0.5, 1e-3, max_epsilon=math.inf) == math.inf
    # a profile that is 0 past a point (pure DP beyond it) is inverted at that point
    eps = invert_profile(lambda e: max(0.0, 1.0 - e / 3.0) ** 4, 1e-300)
    assert eps == pytest.approx(3.0, rel=1e-6) and max(0.0, 1.0 - eps / 3.0) ** 4 <= 1e-300
    with pytest.raises(CalibrationError, match="delta"):
        invert_profile(lambda e: 0.5, 0.0)
    with pytest.raises(CalibrationError, match="guess"):
        invert_profile(lambda e: 0.5, 0.1, lower=1.0, guess=1.0)


def test_invert_profile_uncapped_reaches_large_epsilon() -> None:
    """GDP with μ = 1e4 has ε ≈ 5e7: found with max_epsilon=inf, inf with the default cap."""
    mu = 1e4
    eps = invert_profile(lambda e: gaussian_delta(e, mu), 1e-5, max_epsilon=math.inf, guess=1.0)
    assert gaussian_delta(eps, mu) <= 1e-5 and eps == pytest.approx(5.0042647908e7, rel=1e-9)
    assert invert_profile(lambda e: gaussian_delta(e, mu), 1e-5) == math.inf


# ------------------------------------------------------------------ closed forms
def test_laplace_profile_closed_form() -> None:
    """Laplace(b), sensitivity 1: δ(ε) = 1 − e^{(ε − 1/b)/2} below 1/b, so
    ε(δ) = 1/b + 2 ln(1 − δ)."""
    for b in [0.1, 0.5, 2.0]:
        for delta in [1e-2, 1e-5, 1e-9]:

            def profile(e: float, b: float = b) -> float:
                return 0.0 if e >= 1.0 / b else -math.expm1((e - 1.0 / b) / 2.0)

            eps = invert_profile(profile, delta)
            exact = 1.0 / b + 2.0 * math.log1p(-delta)
            assert profile(eps) <= delta
            assert eps == pytest.approx(exact, rel=1e-9, abs=1e-9)


def test_analytic_gaussian_sigma_round_trip() -> None:
    """Balle & Wang (2018): σ ≈ 3.7305 at ε = 1, δ = 1e-5, Δ = 1; ε(δ) of that σ is 1."""
    sigma = analytic_gaussian_sigma(1.0, 1e-5)
    assert sigma == pytest.approx(3.7305, rel=1e-4)
    assert gaussian_delta(1.0, 1.0 / sigma) <= 1e-5
    # the smallest such σ: a slightly smaller one misses the target
    assert gaussian_delta(1.0, 1.0 / (sigma * (1 - 1e-8))) > 1e-5
    eps = invert_profile(lambda e: gaussian_delta(e, 1.0 / sigma), 1e-5)
    assert eps <= 1.0 and eps == pytest.approx(1.0, rel=1e-8)
    # the same through smallest_scale with an explicit bracket, and through calibrate on μ
    s = smallest_scale(lambda s: gaussian_delta(1.0, 1.0 / s), 1e-5, ExplicitBracket(0.1, 100.0))
    assert s == pytest.approx(sigma, rel=1e-9) and gaussian_delta(1.0, 1.0 / s) <= 1e-5
    mu = calibrate(
        lambda mu: gaussian_delta(1.0, mu),
        1e-5,
        GrowingBracket(1.0, 1.0),
        increasing=True,
        log_scale=True,
        log_metric=True,
    )
    assert mu == pytest.approx(1.0 / sigma, rel=1e-9) and gaussian_delta(1.0, mu) <= 1e-5


def test_smallest_noise_is_the_bisection_form() -> None:
    """smallest_noise keeps its contract (and stays importable from accounting.search)."""
    from product_noise.accounting.search import smallest_noise as old

    assert old is smallest_noise
    s = smallest_noise(lambda s: 2.0 / s, 0.5, rtol=1e-4, low=1e-3, high=1e3)
    assert 2.0 / s <= 0.5 and s == pytest.approx(4.0, rel=1e-4)
    with pytest.raises(NoBracketFoundError, match="not reachable"):
        smallest_noise(lambda s: 2.0 / s, 1e-4, rtol=1e-4, low=1e-3, high=1e3)


def test_max_epsilon_is_shared() -> None:
    from product_noise.mechanisms import base

    assert base.MAX_EPSILON is cal.MAX_EPSILON == 1e4


def test_paper_calibration_refuses_an_unreachable_claimed_target() -> None:
    """The paper's ε₀ search used to return its bracket's end (1e-6) even when that missed the
    target; now the miss is an input error naming no point that meets it."""
    from product_noise.opacus.calibration import calibrate_paper_epsilon0
    from product_noise.validation import InputError

    kw = dict(target_delta=1e-5, dim=500, batch_size=64, num_samples=1797, steps=100, k=40_000)
    eps0, k = calibrate_paper_epsilon0(1.0, **kw)
    assert 0.37 < eps0 < 0.39 and k == 40_000  # 0.37858... at these settings
    with pytest.raises(InputError):
        calibrate_paper_epsilon0(1e-9, **kw)
