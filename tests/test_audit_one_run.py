"""One-run audit statistics (product_noise.audit.one_run): closed forms, published numbers,
monotonicity, coverage by simulation, and the Gaussian-fit estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from product_noise.audit.one_run import (
    OneRunBound,
    default_k_grid,
    fdp_one_run_epsilon_lower_bound,
    gdp_epsilon,
    gdp_epsilon_estimate,
    steinke_best_threshold,
    steinke_epsilon_lower_bound,
    steinke_p_value,
)
from product_noise.validation import InputError


def _gdp_delta(eps: float, mu: float) -> float:
    """δ(ε) of μ-GDP, Dong, Roth, Su (arXiv:1905.02383), Corollary 2.13, written out."""
    return stats.norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * stats.norm.cdf(-eps / mu - mu / 2)


# ---------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("r", [1, 5, 10, 100, 1000])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_steinke_all_correct_pure_dp_closed_form(r, confidence):
    # δ = 0, v = r: P[Bin(r, q) = r] = q^r = 1 − confidence ⇒ ε = logit((1 − c)^{1/r}), or 0
    q = (1.0 - confidence) ** (1.0 / r)
    expected = max(0.0, math.log(q / (1.0 - q)))
    got = steinke_epsilon_lower_bound(m=2 * r, r=r, v=r, delta=0.0, confidence=confidence)
    assert got == pytest.approx(expected, abs=1e-6)


def test_steinke_pure_dp_matches_binomial_tail_inversion():
    # δ = 0: the bound is the q at which P[Bin(r, q) ≥ v] = α, solved independently here
    m, r, v, alpha = 1000, 200, 150, 0.05
    q = optimize.brentq(lambda q: stats.binom.sf(v - 1, r, q) - alpha, 0.5, 1 - 1e-12, xtol=1e-14)
    got = steinke_epsilon_lower_bound(m, r, v, 0.0, 1 - alpha)
    assert got == pytest.approx(math.log(q / (1 - q)), abs=1e-6)


def test_too_few_canaries_gives_zero_not_error():
    # one correct guess cannot reach 95% confidence: q^1 = 0.05 means ε < 0
    assert steinke_epsilon_lower_bound(1, 1, 1, 1e-5, 0.95) == 0.0
    assert fdp_one_run_epsilon_lower_bound(1, 1, 1, 1e-5, 0.95) == 0.0
    # no correct guess, or half correct: ε = 0 explains it
    assert steinke_epsilon_lower_bound(100, 10, 0, 1e-5) == 0.0
    assert steinke_epsilon_lower_bound(1000, 1000, 500, 1e-5) == 0.0
    assert fdp_one_run_epsilon_lower_bound(1000, 1000, 500, 1e-5) == 0.0


def test_p_value_definition_small_case():
    # Proposition 5.2 of Steinke et al. written out for m = 50, r = 4, v = 3, ε = 0.5, δ = 1e-3
    m, r, v, eps, delta = 50, 4, 3, 0.5, 1e-3
    q = math.exp(eps) / (1 + math.exp(eps))
    pmf = [math.comb(r, k) * q**k * (1 - q) ** (r - k) for k in range(r + 1)]
    beta = pmf[3] + pmf[4]
    alpha = max(pmf[2] / 1, (pmf[2] + pmf[1]) / 2, (pmf[2] + pmf[1] + pmf[0]) / 3)
    expected = beta + 2 * m * delta * alpha
    assert steinke_p_value(m, r, v, eps, delta) == pytest.approx(expected, rel=1e-12)
    assert steinke_p_value(m, r, v, eps, 0.0) == pytest.approx(beta, rel=1e-12)
    assert steinke_p_value(m, r, v, eps, 0.5) == 1.0  # clipped


# ---------------------------------------------------------------------------- published numbers

# jax_privacy (github.com/google-deepmind/jax_privacy, commit 8967688), tests/auditing_test.py,
# test_epsilon_one_run_close: 10,000 in- and 10,000 out-canary scores, deterministic N(shift, 1)
# and N(0, 1) quantiles, significance 0.05, δ = 1e-6, Bonferroni over the H convex-hull ROC
# thresholds. The expected ε are that test's; (r, v, H) are the guess counts at the threshold
# jax_privacy's CanaryScoreAuditor chooses (read off by running it on the same scores).
_JAX_CASES = [
    # (fdp, expected ε, r, v, H)
    (False, 1.13346, 3376, 2807, 386),  # shift 1
    (False, 2.311945, 4666, 4499, 374),  # shift 2
    (True, 2.164749, 406, 379, 386),  # shift 1
    (True, 4.7218075, 938, 934, 374),  # shift 2
]


@pytest.mark.parametrize(("fdp", "expected", "r", "v", "h"), _JAX_CASES)
def test_matches_jax_privacy_published_values(fdp, expected, r, v, h):
    bound = fdp_one_run_epsilon_lower_bound if fdp else steinke_epsilon_lower_bound
    got = bound(20_000, r, v, 1e-6, 1 - 0.05 / h)
    assert got == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------------------- monotonicity


@pytest.mark.parametrize("bound", [steinke_epsilon_lower_bound, fdp_one_run_epsilon_lower_bound])
def test_more_correct_guesses_larger_bound(bound):
    values = [bound(1000, 200, v, 1e-5, 0.95) for v in range(100, 201, 10)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[0] == 0.0 and values[-1] > 3.0  # the sequence really moves


@pytest.mark.parametrize("bound", [steinke_epsilon_lower_bound, fdp_one_run_epsilon_lower_bound])
def test_larger_delta_or_confidence_smaller_bound(bound):
    by_delta = [bound(1000, 300, 270, d, 0.95) for d in (1e-8, 1e-6, 1e-4, 1e-3, 1e-2)]
    assert all(b <= a for a, b in zip(by_delta, by_delta[1:]))
    assert by_delta[-1] < by_delta[0]
    by_conf = [bound(1000, 300, 270, 1e-5, c) for c in (0.5, 0.9, 0.95, 0.99, 0.999)]
    assert all(b <= a for a, b in zip(by_conf, by_conf[1:]))
    assert by_conf[-1] < by_conf[0]


def test_delta_term_only_lowers_the_pure_dp_bound():
    pure = steinke_epsilon_lower_bound(500, 100, 95, 0.0)
    approx = steinke_epsilon_lower_bound(500, 100, 95, 1e-4)
    assert 0.0 < approx < pure


# ---------------------------------------------------------------------------- coverage


def _binomial_slack(alpha: float, reps: int) -> float:
    return alpha + 3.0 * math.sqrt(alpha * (1 - alpha) / reps)


@pytest.mark.parametrize("true_eps", [0.5, 2.0])
def test_coverage_randomized_response(true_eps):
    # an exactly ε-DP randomized response: each of r guesses correct with prob e^ε/(1+e^ε)
    rng = np.random.default_rng(20231108)
    reps, m, r, confidence = 400, 500, 200, 0.95
    q = special.expit(true_eps)
    correct = rng.binomial(r, q, size=reps)
    bounds = np.array([steinke_epsilon_lower_bound(m, r, int(v), 0.0, confidence) for v in correct])
    exceed = float(np.mean(bounds > true_eps))
    assert exceed <= _binomial_slack(1 - confidence, reps)
    assert np.median(bounds) > 0.3 * true_eps  # not trivially 0


def test_coverage_gaussian_fdp_and_sweep():
    # μ-GDP one-run game: canary i's score is μ·x_i + N(0, 1), x_i ~ Bernoulli(½); the release
    # is μ-GDP in each x_i, so the f-DP bound and the Bonferroni sweep must stay below
    # gdp_epsilon(μ, δ) in all but ≈ 1 − confidence of the repetitions.
    rng = np.random.default_rng(410)
    reps, m, mu, delta, confidence = 100, 200, 2.0, 1e-5, 0.9
    true_eps = gdp_epsilon(mu, delta)
    fdp_bounds, sweep_bounds = [], []
    for _ in range(reps):
        x = rng.random(m) < 0.5
        scores = mu * x + rng.standard_normal(m)
        fdp_bounds.append(
            steinke_best_threshold(scores, x, delta, confidence, k_plus=[20, 60], method="fdp")
        )
        sweep_bounds.append(steinke_best_threshold(scores, x, delta, confidence, k_minus=[0, 20]))
    for res in (fdp_bounds, sweep_bounds):
        eps = np.array([b.epsilon for b in res])
        assert float(np.mean(eps > true_eps)) <= _binomial_slack(1 - confidence, reps)
        assert np.median(eps) > 0.0
    # the f-DP analysis is the tighter one on a Gaussian mechanism
    assert np.median([b.epsilon for b in fdp_bounds]) > np.median([b.epsilon for b in sweep_bounds])


# ---------------------------------------------------------------------------- threshold sweep


def test_best_threshold_bonferroni_and_counts():
    rng = np.random.default_rng(7)
    m = 1000
    x = rng.random(m) < 0.5
    scores = 3.0 * x + rng.standard_normal(m)
    res = steinke_best_threshold(scores, x, 1e-5, 0.95, k_plus=[50, 100, 200], k_minus=[0, 50])
    assert isinstance(res, OneRunBound) and res.label == "empirical lower bound"
    assert res.n_hypotheses == 6 and res.method == "steinke" and res.m == m
    # the counts are the true ones for the chosen guesses
    order = np.argsort(-scores, kind="stable")
    v_in = int(x[order[: res.k_plus]].sum())
    v_out = int((~x[order[::-1][: res.k_minus]]).sum()) if res.k_minus else 0
    assert (res.r, res.v) == (res.k_plus + res.k_minus, v_in + v_out)
    # each hypothesis is tested at level 1 − 0.05/6, and the best one is reported
    assert res.epsilon == pytest.approx(
        steinke_epsilon_lower_bound(m, res.r, res.v, 1e-5, 1 - 0.05 / 6), abs=1e-12
    )
    single = steinke_best_threshold(scores, x, 1e-5, 0.95, k_plus=res.k_plus, k_minus=res.k_minus)
    assert single.n_hypotheses == 1 and single.epsilon > res.epsilon  # the correction costs ε


def test_best_threshold_default_grid_and_perfect_separation():
    assert default_k_grid(1000) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000]
    assert default_k_grid(1) == [1]
    x = np.array([True, False] * 100)
    res = steinke_best_threshold(x.astype(float), x, 0.0, 0.95)
    assert res.n_hypotheses == len(default_k_grid(200)) and res.v == res.r
    level = 1 - 0.05 / res.n_hypotheses
    q = (1 - level) ** (1 / res.r)
    assert res.epsilon == pytest.approx(math.log(q / (1 - q)), abs=1e-6)


# ---------------------------------------------------------------------------- Gaussian DP


@pytest.mark.parametrize(("mu", "delta"), [(1.0, 1e-5), (0.5, 1e-6), (2.0, 1e-3), (5.0, 1e-5)])
def test_gdp_epsilon_solves_delta_relation(mu, delta):
    eps = optimize.brentq(lambda e: _gdp_delta(e, mu) - delta, 0.0, 200.0, xtol=1e-12)
    assert gdp_epsilon(mu, delta) == pytest.approx(eps, abs=1e-6)


def test_gdp_epsilon_known_value_and_edges():
    assert gdp_epsilon(1.0, 1e-5) == pytest.approx(4.377178, abs=1e-6)
    assert gdp_epsilon(0.0, 1e-5) == 0.0
    assert gdp_epsilon(0.01, 0.5) == 0.0  # already (0, δ)-DP
    with pytest.raises(InputError):
        gdp_epsilon(-1.0, 1e-5)


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0])
def test_gdp_estimate_recovers_mu(mu):
    rng = np.random.default_rng(2302)
    delta = 1e-5
    est = gdp_epsilon_estimate(rng.normal(mu, 1, 20_000), rng.normal(0, 1, 20_000), delta)
    assert est.label == "estimate" and str(est).startswith("estimate (ε ≈ ")
    assert "bound" not in str(est).replace("not a bound", "")
    assert est.mu_hat == pytest.approx(mu, rel=0.05)
    assert est.epsilon == pytest.approx(gdp_epsilon(mu, delta), rel=0.05)
    # the orientation of the scores does not matter
    flipped = gdp_epsilon_estimate(-rng.normal(mu, 1, 20_000), rng.normal(0, 1, 20_000), delta)
    assert flipped.epsilon == pytest.approx(est.epsilon, rel=0.05)


# ---------------------------------------------------------------------------- input errors


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 0, 0, 1e-5, 0.95), "m "),
        ((10, 11, 5, 1e-5, 0.95), "r "),
        ((10, 5, 6, 1e-5, 0.95), "v "),
        ((10, 5, 5, 1e-5, 1.0), "confidence"),
        ((10, 5, 5, 1e-5, 0.0), "confidence"),
        ((10, 5, 5, 1.5, 0.95), "delta"),
        ((10, 5, 2.5, 1e-5, 0.95), "v "),
    ],
)
@pytest.mark.parametrize("bound", [steinke_epsilon_lower_bound, fdp_one_run_epsilon_lower_bound])
def test_bad_counts_are_input_errors(bound, args, match):
    with pytest.raises(InputError, match=match):
        bound(*args)


def test_bad_scores_are_input_errors():
    x = np.array([True, False, True, False])
    with pytest.raises(InputError, match="NaN"):
        steinke_best_threshold([1.0, np.nan, 0.0, 2.0], x, 1e-5)
    with pytest.raises(InputError, match="included"):
        steinke_best_threshold([1.0, 0.0, 2.0], x, 1e-5)
    with pytest.raises(InputError, match="k_plus"):
        steinke_best_threshold([1.0, 0.0, 2.0, 3.0], x, 1e-5, k_plus=[5])
    with pytest.raises(InputError, match="method"):
        steinke_best_threshold([1.0, 0.0, 2.0, 3.0], x, 1e-5, method="bogus")
    with pytest.raises(InputError, match="NaN"):
        gdp_epsilon_estimate([1.0, np.nan], [0.0, 1.0], 1e-5)
    with pytest.raises(InputError, match="at least 2"):
        gdp_epsilon_estimate([1.0], [0.0, 1.0], 1e-5)
    with pytest.raises(InputError, match="delta"):
        gdp_epsilon_estimate([1.0, 2.0], [0.0, 1.0], 0.0)


def test_ties_never_guess_one_canary_both_ways():
    # all scores equal: the k_plus "in" and k_minus "out" guesses must be disjoint canaries
    x = np.array([1, 0] * 50)
    res = steinke_best_threshold(np.zeros(100), x, 0.0, 0.95, k_plus=50, k_minus=50)
    order = np.arange(100)  # stable order on ties: by position
    expected_v = int(x[order[:50]].sum() + (1 - x[order[50:]]).sum())
    assert (res.r, res.v) == (100, expected_v) and res.v == 50
    with pytest.raises(InputError, match="membership"):
        steinke_best_threshold(np.zeros(4), [0, 1, 2, 1], 0.0)


def test_lazy_exports_from_audit_package():
    import product_noise.audit as audit

    assert audit.steinke_epsilon_lower_bound is steinke_epsilon_lower_bound
    assert audit.gdp_epsilon_estimate is gdp_epsilon_estimate
    with pytest.raises(AttributeError):
        audit.no_such_name  # noqa: B018


def test_bound_record_and_fdp_one_sided_only():
    x = np.array([True, False] * 50)
    res = steinke_best_threshold(x.astype(float), x, 1e-5, 0.95, k_plus=[10, 40])
    rec = res.to_empirical()
    assert (rec.epsilon, rec.delta, rec.confidence) == (res.epsilon, 1e-5, 0.95)
    assert rec.epsilon > 0 and str(res).startswith("empirical lower bound (ε ≥ ")
    with pytest.raises(InputError, match="one-sided"):
        steinke_best_threshold(x.astype(float), x, 1e-5, k_minus=[0, 10], method="fdp")
    fdp = steinke_best_threshold(x.astype(float), x, 1e-5, 0.95, k_plus=[10, 40], method="fdp")
    assert "Gaussian trade-off assumed" in str(fdp)
