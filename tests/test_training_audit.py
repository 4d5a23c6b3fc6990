"""Tests of the canary audits of real training runs (:mod:`product_noise.audit`).

Fixed seeds throughout. The DP-SGD audits train a float64 logistic regression (M = 650) on 32
digits through ``product_noise.PrivacyEngine``; a few hundred runs per world take a few seconds
each. Synthetic score tests check the lower-bound computation against closed forms.
"""

from __future__ import annotations

import csv
import math
import warnings

import numpy as np
import pytest
import torch
from scipy import optimize

from product_noise.audit import (
    MECHANISMS,
    EpsilonLowerBound,
    TrainingAuditResult,
    audit_training,
    epsilon_lower_bound,
    format_markdown,
    write_report,
)
from product_noise.cli import main
from product_noise.mechanisms import gaussian_delta

torch.set_num_threads(1)


def _gaussian_epsilon(mu: float, delta: float) -> float:
    """True ε(δ) of N(μ, 1) vs N(0, 1) (exact hockey stick, solved for ε)."""
    return optimize.brentq(lambda e: gaussian_delta(e, mu) - delta, 0.0, 100.0, xtol=1e-12)


# =========================================================================== lower bound
def test_perfect_separation_matches_clopper_pearson_closed_form() -> None:
    """All in-scores above all out-scores: with n evaluation trials per world, the one-sided
    Clopper–Pearson bounds are (α/2)^{1/n} and 1 − (α/2)^{1/n}, so ε_lb has a closed form."""
    rng = np.random.default_rng(0)
    s_in, s_out = rng.uniform(10, 11, 100), rng.uniform(0, 1, 100)
    res = epsilon_lower_bound(s_in, s_out, delta=1e-5, confidence=0.95)
    n = 50
    lo = 0.025 ** (1 / n)
    hi = 1 - 0.025 ** (1 / n)
    assert res.n_a == res.n_b == n and res.n_selection == 100
    assert res.p_a_hat == 1.0 and res.p_b_hat == 0.0
    assert res.p_lower == pytest.approx(lo, rel=1e-9)
    assert res.p_upper == pytest.approx(hi, rel=1e-9)
    assert res.epsilon_lower == pytest.approx(math.log((lo - 1e-5) / hi), rel=1e-9)
    # the same event gives the bound at any δ (here δ = 0.5)
    assert res.epsilon_at(0.5) == pytest.approx(math.log((lo - 0.5) / hi), rel=1e-9)
    assert res.epsilon_at(0.5) < res.epsilon_lower
    assert res.epsilon_at(0.999) == 0.0  # δ above p_lower: nothing can be said


@pytest.mark.parametrize("flip", [False, True])
def test_randomized_response_bound_is_tight_and_sound(flip: bool) -> None:
    """Bernoulli(0.75) vs Bernoulli(0.25): ε(δ) = ln((0.75 − δ)/0.25) exactly. With 2·10⁵
    trials per world the bound is within 0.05 of it and never above; ``flip`` swaps the worlds
    (the bound must find the region where the *out* world is more likely)."""
    rng = np.random.default_rng(1)
    a = (rng.random(200_000) < 0.75).astype(float)
    b = (rng.random(200_000) < 0.25).astype(float)
    s_in, s_out = (b, a) if flip else (a, b)
    res = epsilon_lower_bound(s_in, s_out, delta=1e-5)
    true = math.log((0.75 - 1e-5) / 0.25)
    assert true - 0.05 <= res.epsilon_lower <= true
    # either "in is likely on a set" or "out is likely on its complement"
    equivalent = ("in: s <=", "out: s >=") if flip else ("in: s >=", "out: s <=")
    assert res.region.startswith(equivalent)


def test_coverage_over_seeds_where_the_bound_is_nearly_tight() -> None:
    """Randomized response with 2000 trials per world, 100 seeds, confidence 0.8: the bound
    exceeds the true ε(δ) = ln 3 with probability ≤ 0.2 by construction (we see 3 of 100;
    binomial(100, 0.2) ≥ 30 has probability < 1%), while averaging within 0.15 of it."""
    true = math.log((0.75 - 1e-5) / 0.25)
    bounds = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        a = (rng.random(2000) < 0.75).astype(float)
        b = (rng.random(2000) < 0.25).astype(float)
        bounds.append(epsilon_lower_bound(a, b, delta=1e-5, confidence=0.8).epsilon_lower)
    bounds = np.array(bounds)
    assert (bounds > true).sum() < 30
    assert bounds.mean() > true - 0.15


def test_gaussian_scores_bound_is_valid_and_has_power() -> None:
    """N(1.5, 1) vs N(0, 1): true ε(1e-5) = 7.05. Over 40 seeds (3000 trials per world) the
    95% bound never exceeds it and averages 2.56 (min 1.89): at δ = 1e-5 a finite sample can
    only certify the part of the Gaussian's privacy loss it observes."""
    mu, delta = 1.5, 1e-5
    true = _gaussian_epsilon(mu, delta)
    assert true == pytest.approx(7.05, abs=0.01)
    bounds = []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        res = epsilon_lower_bound(rng.normal(mu, 1, 3000), rng.normal(0, 1, 3000), delta=delta)
        bounds.append(res.epsilon_lower)
    bounds = np.array(bounds)
    assert bounds.max() <= true
    assert bounds.mean() > 2.0 and bounds.min() > 1.0


def test_identical_worlds_give_zero_mostly() -> None:
    """Same law in both worlds (true ε = 0): a positive bound is a false discovery, which has
    probability ≤ 5%; over 40 seeds at most 6 would be consistent, we see at most 2."""
    hits = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        res = epsilon_lower_bound(rng.normal(size=500), rng.normal(size=500), delta=1e-5)
        hits += res.epsilon_lower > 0
    assert hits <= 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"delta": 1e-5, "confidence": 1.0}, "confidence"),
        ({"delta": 1e-5, "confidence": 0}, "confidence"),
        ({"delta": 1e-5, "selection_fraction": 1.0}, "selection_fraction"),
    ],
)
def test_lower_bound_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        epsilon_lower_bound(np.arange(10.0), np.arange(10.0), **kwargs)


def test_lower_bound_bad_scores() -> None:
    with pytest.raises(ValueError, match="scores_in"):
        epsilon_lower_bound([1.0, np.nan, 2.0, 3.0], np.arange(4.0), delta=1e-5)
    with pytest.raises(ValueError, match="scores_out"):
        epsilon_lower_bound(np.arange(4.0), [1.0, 2.0], delta=1e-5)
    with pytest.raises(ValueError, match="1-D"):
        epsilon_lower_bound(np.zeros((4, 2)), np.arange(4.0), delta=1e-5)


# =========================================================================== bad input
@pytest.mark.parametrize(
    ("mechanism", "kwargs", "match"),
    [
        ("gaussian", {"trials": 0}, "trials"),
        ("gaussian", {"trials": -5}, "trials"),
        ("gaussian", {"trials": 10}, "trials"),
        ("gaussian", {"delta": 0.0}, "delta"),
        ("gaussian", {"delta": 1.5}, "delta"),
        ("gaussian", {"confidence": 1.2}, "confidence"),
        ("gaussian", {"steps": 0}, "steps"),
        ("gaussian", {"epsilon": -1.0}, "epsilon"),
        ("laplace", {}, "unknown mechanism"),
        ("product-paper", {"noise_multiplier": 1.0}, "noise_multiplier"),
        ("dpmix", {"threat_model": "white-box"}, "threat_model"),
        ("gaussian", {"threat_model": "release"}, "threat_model"),
        # 10 evaluation trials per world at 99.9%: perfect separation certifies nothing
        ("gaussian", {"trials": 20, "confidence": 0.999}, "too few for 99.9% confidence"),
    ],
)
def test_audit_training_bad_input(mechanism: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        audit_training(mechanism, **kwargs)


# =========================================================================== gradient recovery
def test_adversary_recovers_noise_plus_canary_exactly() -> None:
    """The white-box adversary's residual r_t = B(θ_t − θ_{t+1})/lr − Σ clip(known gradients)
    is the noise plus C'·e_j: with almost no noise it is C'·e_j (canary in) or 0 (out)."""
    from product_noise.audit.dpsgd import _CANARY_GRAD, _DPSGDRun

    run = _DPSGDRun(
        "gaussian",
        {"noise": "gaussian", "noise_multiplier": 1e-9},
        n_records=16,
        max_grad_norm=0.7,
        lr=0.3,
        data_seed=3,
        noise_seed=4,
    )
    assert run.dim == 650 and run.B == 17
    for present in (True, False, True):
        before = run._flat()
        run.optimizer.zero_grad(set_to_none=True)
        run.criterion(run.model(run.X), run.y).backward()
        with torch.no_grad():
            for p in run.params:
                p.grad_sample[-1].zero_()
            if present:
                run.params[-1].grad_sample[-1].view(-1)[-1] = _CANARY_GRAD
        run.optimizer.step()
        r = (before - run._flat()) * (run.B / run.lr) - run._known_clipped_sum(before)
        expected = torch.zeros(650, dtype=torch.float64)
        if present:
            expected[-1] = run.canary_norm
        assert run.canary_norm == pytest.approx(0.7, rel=1e-9)
        assert torch.allclose(r, expected, atol=1e-6)


# =========================================================================== real audits
@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps": 1, "epsilon": 2.0, "seed": 0},
        {"steps": 2, "epsilon": 4.0, "seed": 1},
        {"steps": 1, "noise_multiplier": 1.0, "seed": 2},
    ],
)
def test_gaussian_dpsgd_lower_bound_never_exceeds_verified(kwargs: dict) -> None:
    res = audit_training("gaussian", trials=200, **kwargs)
    assert res.verified.label == "verified" and res.claimed is None
    assert math.isfinite(res.verified.epsilon)
    assert res.bound.epsilon_lower <= res.verified.epsilon
    assert res.fdp_bound is not None and res.fdp_bound.method == "gdp"  # Gaussian: GDP family
    assert res.fdp_bound.epsilon <= res.verified.epsilon
    assert res.verdict.startswith("lower bound ≤ verified: consistent")
    if "epsilon" in kwargs:  # calibrated on the verified accountant: ε ≤ target, within 2%
        assert res.verified.epsilon == pytest.approx(kwargs["epsilon"], rel=0.02)
    else:  # one step of N(0, C²): μ = 1, the exact Gaussian ε(1e-5)
        assert res.verified.epsilon == pytest.approx(_gaussian_epsilon(1.0, 1e-5), rel=1e-3)


def test_gaussian_dpsgd_audit_has_power() -> None:
    """σ = 0.5 C, one step: the recovered noise is N(0, σ²), μ = C/σ = 2, true ε(1e-5) = 10.0
    (up to the 1e-6 of Opacus' clip factor). 300 runs per world certify more than 1."""
    res = audit_training("gaussian", trials=300, steps=1, noise_multiplier=0.5, seed=3)
    assert res.verified.epsilon == pytest.approx(_gaussian_epsilon(2.0, 1e-5), rel=1e-3)
    assert 1.0 < res.bound.epsilon_lower <= res.verified.epsilon


def test_product_noise_at_paper_calibration_breaks_its_claim() -> None:
    """One step at the paper's calibration claims (ε₀, δ₀) = (0.3, 1e-5); the true per-step δ at
    0.3 is ≈ 0.4 (M = 650), and a real training run certifies ε well above 0.3."""
    res = audit_training("product-paper", trials=300, steps=1, epsilon=0.3, seed=5)
    assert res.claimed is not None and res.claimed.label == "claimed"
    assert res.claimed.epsilon == pytest.approx(0.3)
    assert res.claimed.delta == pytest.approx(1e-5, rel=1e-6)
    assert res.bound.epsilon_lower > 2 * res.claimed.epsilon
    assert res.claimed_bound is not None and res.claimed_bound > res.claimed.epsilon
    assert res.verified.epsilon > 1000  # exact profile: ε(1e-5) ≈ 4963 (heavy radius tail)
    assert "the claim is false on a real training run" in res.verdict
    assert "consistent" in res.verdict


def test_final_model_audits() -> None:
    """The weaker black-box variant (input canary, final logit margin) still certifies
    ε > 1 for σ = 0.5 C (verified ε = 10.0), and still breaks the paper's one-step claim
    ε₀ = 0.3 (0.54 with 400 runs per world at this seed; 0.54-1.06 over seeds 0-3)."""
    g = audit_training(
        "gaussian", trials=300, steps=1, noise_multiplier=0.5, threat_model="final-model", seed=0
    )
    assert 1.0 < g.bound.epsilon_lower <= g.verified.epsilon
    assert g.settings["threat_model"] == "final-model" and "final model" in g.threat_model
    pp = audit_training(
        "product-paper", trials=400, steps=1, epsilon=0.3, threat_model="final-model", seed=0
    )
    assert pp.bound.epsilon_lower > pp.claimed.epsilon == pytest.approx(0.3)
    assert "the claim is false" in pp.verdict


def test_l2_dpsgd_lower_bound_below_verified() -> None:
    res = audit_training("l2", trials=200, steps=1, noise_multiplier=0.02, seed=6)
    assert res.verified.label == "verified"
    assert res.verified.epsilon == pytest.approx(9.646, abs=0.01)  # exact profile, θ = 0.02 C
    assert res.bound.epsilon_lower <= res.verified.epsilon
    assert res.settings["dim"] == 650


def test_dpmix_lower_bound_below_verified() -> None:
    res = audit_training("dpmix", trials=400, steps=8, noise_multiplier=0.5, seed=7)
    assert res.verified.label == "verified" and res.claimed is not None
    assert res.claimed.label == "claimed"
    assert 0.5 < res.bound.epsilon_lower <= res.verified.epsilon
    assert res.settings["l"] == 4 and res.settings["releases"] == 8


# =========================================================================== report and CLI
def _fake(mechanism: str, lb_scores: tuple, verified: float, claimed: float | None):
    from product_noise.privacy import PrivacyFigure

    rng = np.random.default_rng(0)
    bound = epsilon_lower_bound(rng.normal(lb_scores[0], 1, 400), rng.normal(0, 1, 400), delta=1e-5)
    return TrainingAuditResult(
        mechanism=mechanism,
        bound=bound,
        verified=PrivacyFigure(verified, 1e-5, "verified", "test"),
        claimed=None if claimed is None else PrivacyFigure(claimed, 1e-5, "claimed", "test"),
        trials=400,
        steps=1,
        threat_model="test",
        statistic="test",
        settings={"noise_multiplier": 1.0, "dim": 650},
    )


def test_report_files_and_verdicts(tmp_path) -> None:
    results = [
        _fake("gaussian", (4.0,), 8.0, None),
        _fake("product-paper", (4.0,), math.inf, 0.3),
        _fake("l2", (4.0,), 0.5, None),  # a bound above the verified ε: flagged
        _fake("dpmix", (0.0,), 2.0, 1.7),
    ]
    assert results[0].bound.epsilon_lower > 1.0  # so the verdicts below are meaningful
    assert "the claim is false" in results[1].verdict
    assert "INCONSISTENT" in results[2].verdict
    assert "does not refute the claim" in results[3].verdict
    paths = write_report(results, tmp_path)
    with open(paths["csv"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["mechanism"] for r in rows] == ["gaussian", "product-paper", "l2", "dpmix"]
    assert float(rows[1]["empirical_lower_bound_epsilon"]) == pytest.approx(
        results[1].bound.epsilon_lower
    )
    assert rows[1]["verified_epsilon"] == "inf" and rows[0]["claimed_epsilon"] == ""
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "empirical lower bound ε" in md and "the claim is false" in md
    assert md.count("\n| ") == len(results) + 1
    assert paths["plot"].stat().st_size > 1000
    assert format_markdown(results).splitlines()[0].startswith("Every figure at δ = 1e-05")
    with pytest.raises(ValueError, match="results"):
        write_report([], tmp_path)


def test_cli_audit_training(tmp_path, capsys) -> None:
    out = tmp_path / "rep"
    argv = ["audit-training", "--mechanisms", "gaussian", "--steps", "1", "--epsilon", "2"]
    assert main([*argv, "--trials", "40", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "empirical lower bound" in text and "verified" in text
    assert (out / "audit_training.csv").exists() and (out / "audit_training.png").exists()
    assert main([*argv, "--trials", "0", "--out", str(out)]) == 2
    assert main([*argv, "--delta", "1.5", "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().err


def test_mechanism_list_and_result_types() -> None:
    assert MECHANISMS == ("gaussian", "product-paper", "product", "l2", "dpmix")
    res = epsilon_lower_bound(np.arange(8.0) + 10, np.arange(8.0), delta=0.1)
    assert isinstance(res, EpsilonLowerBound)
    assert set(res.to_dict()) >= {"epsilon_lower", "p_lower", "p_upper", "region"}
    assert "empirical lower bound" in str(res)


def test_rows_show_their_target_and_opacus_secure_rng_warning_is_not_repeated() -> None:
    # the standard report has gaussian rows at targets 2 and 8 that only the target tells apart;
    # Opacus warned "Secure RNG turned off" once per world of every DP-SGD row (18 times)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = [audit_training("gaussian", trials=20, epsilon=e, seed=0) for e in (2.0, 8.0)]
        given = audit_training("gaussian", trials=20, noise_multiplier=1.0, seed=0)
        paper = audit_training("product-paper", trials=20, epsilon=0.3, seed=0)
    assert not [w for w in caught if "Secure RNG" in str(w.message)]
    assert [r.target for r in rows] == ["verified ε = 2", "verified ε = 8"]
    assert given.target == "given noise" and given.to_row()["verified_target_epsilon"] is None
    assert rows[1].to_row()["verified_target_epsilon"] == 8.0
    assert rows[1].to_row()["claimed_target_epsilon"] is None
    assert paper.target == "claimed ε = 0.3" and paper.to_row()["claimed_target_epsilon"] == 0.3
    table = [ln for ln in format_markdown(rows).splitlines() if ln.startswith("| gaussian")]
    assert "| verified ε = 2 |" in table[0] and "| verified ε = 8 |" in table[1]
    assert str(rows[0]).startswith("gaussian (white-box, verified ε = 2, T = 1): ")
