"""The multi-run μ-GDP lower bound (Nasr et al. 2023): closed form, coverage on scores with a
known μ, power where a direct (ε, δ) bound cannot reach, and its scope (Gaussian noise only)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special
from scipy.stats import beta

from product_noise.audit import audit_training
from product_noise.audit.gdp_bound import gdp_lower_bound
from product_noise.audit.one_run import gdp_epsilon

DELTA = 1e-5


def test_closed_form_on_hand_counts() -> None:
    # selection halves: in = [5, 6], out = [0, 1] choose "in: s >= c" with c in (1, 5];
    # evaluation halves: in = 10 scores of which 9 are >= 5, out = 10 scores of which 1 is >= 5
    sel_in, sel_out = [5.0, 6.0] * 5, [0.0, 1.0] * 5
    ev_in = [5.0] * 9 + [0.0]
    ev_out = [0.0] * 9 + [5.0]
    b = gdp_lower_bound(sel_in + ev_in, sel_out + ev_out, delta=DELTA, selection_fraction=0.5)
    a2 = 0.025
    fpr_hi = beta.ppf(1 - a2, 1 + 1, 10 - 1)  # Clopper–Pearson upper of 1/10
    fnr_hi = beta.ppf(1 - a2, 1 + 1, 10 - 1)  # 1 of 10 "in" scores below the threshold
    assert b.fpr_upper == pytest.approx(fpr_hi) and b.fnr_upper == pytest.approx(fnr_hi)
    mu = special.ndtri(1 - fpr_hi) - special.ndtri(fnr_hi)
    assert b.mu_lower == pytest.approx(max(mu, 0.0))
    assert b.epsilon == pytest.approx(gdp_epsilon(b.mu_lower, DELTA) if b.mu_lower > 0 else 0)
    assert b.region.startswith("in: s >=") and (b.n_in, b.n_out, b.n_selection) == (10, 10, 20)
    assert "μ-GDP refuted" in str(b) and "Gaussian trade-off assumed" in str(b)


@pytest.mark.parametrize("mu", [0.5, 2.0])
def test_coverage_on_gaussian_scores_with_known_mu(mu: float) -> None:
    # exactly μ-GDP scores: at 95% confidence μ_lb > μ in at most 5% of seeds. 120 seeds: the
    # binomial(120, 0.05) tail P(X >= 13) < 0.01, so 13 or more violations means a broken bound.
    rng = np.random.default_rng(12345)
    over = 0
    for _ in range(120):
        b = gdp_lower_bound(rng.normal(mu, 1, 400), rng.normal(0, 1, 400), delta=DELTA)
        over += b.mu_lower > mu
    assert over <= 12


def test_power_where_the_direct_bound_cannot_reach() -> None:
    # μ = 0.5 (Gaussian ε ≈ 2 at δ = 1e-5), 3000 trials per world: any single-threshold
    # Clopper–Pearson (ε, δ) bound stays below 0.36 × ε; the μ-GDP bound reaches 0.5 ×.
    rng = np.random.default_rng(7)
    b = gdp_lower_bound(rng.normal(0.5, 1, 3000), rng.normal(0, 1, 3000), delta=DELTA)
    target = gdp_epsilon(0.5, DELTA)
    assert 0.5 * target <= b.epsilon <= target


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="selection_fraction"):
        gdp_lower_bound([0.0] * 8, [1.0] * 8, delta=DELTA, selection_fraction=1.0)
    with pytest.raises(ValueError):
        gdp_lower_bound([0.0, 1.0], [1.0, 2.0], delta=DELTA)  # fewer than 4 per world


def test_only_gaussian_rows_carry_it() -> None:
    res = audit_training("product", trials=40, steps=1, epsilon=2.0, seed=0)
    assert res.fdp_bound is None and res.to_row()["fdp_lower_bound_epsilon"] is None
    g = audit_training("gaussian", trials=40, steps=1, epsilon=2.0, seed=0)
    assert g.to_row()["fdp_lower_bound_epsilon"] == g.fdp_bound.epsilon <= g.verified.epsilon


def test_many_scores_with_infinities_keep_real_thresholds() -> None:
    # > 4000 distinct selection scores are thinned to order statistics; with ±inf among them
    # interpolated quantiles gave NaN thresholds (and a "s >= nan" region)
    import warnings

    from product_noise.audit import epsilon_lower_bound

    rng = np.random.default_rng(3)
    s_in = np.concatenate([[np.inf] * 50, rng.normal(1.0, 1, 5000)])
    s_out = np.concatenate([[-np.inf] * 50, rng.normal(0.0, 1, 5000)])
    rng.shuffle(s_in)
    rng.shuffle(s_out)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        g = gdp_lower_bound(s_in, s_out, delta=DELTA)
        e = epsilon_lower_bound(s_in, s_out, delta=DELTA)
    assert "nan" not in g.region and "nan" not in e.region
    assert g.mu_lower > 0.5 and e.epsilon_lower > 0
