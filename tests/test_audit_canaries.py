"""GradientCanaryAudit: the white-box one-run audit of a user's own Opacus loop.

Tiny models (``nn.Linear(20, 2)``: 42 coordinates; ``nn.Linear(100, 4)``: 404), few steps, fixed
seeds. The numbers in comments were measured with these seeds.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from product_noise import PrivacyEngine
from product_noise.audit import GradientCanaryAudit
from product_noise.audit.one_run import gdp_epsilon
from product_noise.validation import InputError

DELTA = 1e-5


def _make(n, batch, din=20, dout=2, seed=0, max_grad_norm=1.0, **make_private):
    """A private ``nn.Linear(din, dout)`` on ``n`` random records, Poisson rate ``batch / n``."""
    torch.manual_seed(seed)
    x, y = torch.randn(n, din), torch.randint(0, dout, (n,))
    model = nn.Linear(din, dout)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch)
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the product-noise calibration's PrivacyWarning
        model, optimizer, loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            max_grad_norm=max_grad_norm,
            noise_generator=torch.Generator().manual_seed(seed),
            **make_private,
        )
    return engine, model, optimizer, loader


def _train(model, optimizer, loader, steps):
    """The user's loop, unchanged: ``steps`` optimizer steps."""
    loss, t = nn.CrossEntropyLoss(), 0
    while t < steps:
        for xb, yb in loader:
            optimizer.zero_grad()
            loss(model(xb), yb).backward()
            optimizer.step()
            t += 1
            if t == steps:
                return


def _audit(m, steps, *, n=8, batch=8, din=20, dout=2, seed=0, audit_kwargs=None, **make_private):
    engine, model, optimizer, loader = _make(n, batch, din, dout, seed, **make_private)
    audit = GradientCanaryAudit(m, seed=seed, **(audit_kwargs or {})).attach(optimizer, loader)
    _train(model, optimizer, loader, steps)
    return audit, engine


# ------------------------------------------------------------------------------ the wiring


def test_noiseless_scores_are_exactly_the_canaries():
    # σ = 0, q = 1: every included canary is sampled at each of the T steps and, with the data
    # subtracted, its score is exactly T·C (read before scale_grad); an excluded one scores 0
    audit, _ = _audit(40, 7, noise_multiplier=0.0, audit_kwargs={"subtract_data": True})
    assert audit.sample_rate == 1.0 and audit.num_steps == 7
    np.testing.assert_array_equal(audit.times_sampled, 7 * audit.included)
    np.testing.assert_allclose(audit.scores, 7.0 * audit.included, atol=1e-5)
    assert len(set(audit.coordinates.tolist())) == 40  # distinct coordinates


def test_rate_read_from_the_engine_hook_without_the_loader():
    for noise, kw in (("gaussian", {"noise_multiplier": 1.0}), ("l2", {"noise_multiplier": 1.0})):
        _, _, optimizer, loader = _make(40, 10, noise=noise, **kw)
        audit = GradientCanaryAudit(16).attach(optimizer)
        assert audit.sample_rate == pytest.approx(0.25, rel=1e-12)
        assert loader.batch_sampler.sample_rate == pytest.approx(0.25, rel=1e-12)


# ------------------------------------------------------------------------------ Gaussian


def test_gaussian_bound_below_verified_and_estimate_matches_gdp():
    # q = 1, σ = 1, T = 50, C = 1: an included canary adds T·C to its score, the noise adds
    # N(0, T σ² C²), so its scores are μ-GDP separated with μ = √T / σ (Nasr et al. 2023), and
    # DP-SGD itself is exactly μ-GDP: the verified ε is gdp_epsilon(√50, 1e-5) ≈ 54.4.
    # Measured: verified 54.39, estimate 48.05 (μ̂ = 6.50), Steinke bound 1.01, f-DP 1.78.
    audit, engine = _audit(40, 50, noise_multiplier=1.0, audit_kwargs={"subtract_data": True})
    report = audit.report(engine, DELTA, 0.95)
    target = gdp_epsilon(math.sqrt(50) / 1.0, DELTA)
    verified = report.verified.epsilon
    assert verified == pytest.approx(target, rel=0.01)
    assert [b.extra["method"] for b in report.empirical] == ["steinke", "fdp"]
    for bound in report.empirical:
        assert 0.0 < bound.epsilon <= verified
    (est,) = report.estimates
    assert est.label == "estimate" and "not a bound" in est.source
    assert est.epsilon == pytest.approx(target, rel=0.25)


def test_subtracting_the_data_separates_the_scores_more():
    # same seed, same run: the real records' summed gradient at c_j adds noise to the scores
    # unless the (strongest) adversary subtracts it. Measured: 18.71 without, 48.05 with.
    estimates = []
    for subtract in (False, True):
        audit, _ = _audit(40, 50, noise_multiplier=1.0, audit_kwargs={"subtract_data": subtract})
        estimates.append(audit.estimate(DELTA))
    assert estimates[1].mu_hat > 1.5 * estimates[0].mu_hat
    assert estimates[1].epsilon > estimates[0].epsilon


@pytest.mark.parametrize("seed", range(5))
def test_gaussian_bounds_never_exceed_verified_over_seeds(seed):
    # Poisson q = 0.25, T = 40, σ = 0.8, 400 canaries on a 404-coordinate model, the strongest
    # adversary: the bounds come close to the verified ε but must never exceed it.
    audit, engine = _audit(
        400,
        40,
        n=40,
        batch=10,
        din=100,
        dout=4,
        seed=seed,
        noise_multiplier=0.8,
        audit_kwargs={"subtract_data": True},
    )
    assert audit.sample_rate == pytest.approx(0.25)
    report = audit.report(engine, DELTA)
    for bound in report.empirical:
        assert bound.epsilon <= report.verified.epsilon


# ------------------------------------------------------------------------------ product noise


def test_product_noise_claim_refuted_in_one_run():
    # The paper's calibration ε₀ = 0.3, k = 1e6 on M = 404, Poisson q = 10/400, T = 400: the
    # paper's composition claims (ε', δ') = (1.07, 6.4e-7). Product noise n = σ|z|h has a
    # half-normal radius: the "weighted" statistic (each step's term over ‖r_t‖²) finds the
    # steps with a small radius, and 32/32 "in" guesses are right. Measured: bound 1.71 at δ'
    # (the plain "sum" statistic, swamped by the large-radius steps, gives 0 here).
    audit, engine = _audit(
        400,
        400,
        n=400,
        batch=10,
        din=100,
        dout=4,
        noise="product",
        epsilon0=0.3,
        k=1e6,
        audit_kwargs={"subtract_data": True, "statistic": "weighted"},
    )
    report = audit.report(engine, DELTA)
    (claimed,) = report.claimed
    assert claimed.epsilon < 1.2
    refuting = audit.bound(claimed.delta)
    assert refuting.epsilon > claimed.epsilon
    assert report.verified.epsilon >= refuting.epsilon  # verified: inf (revealed scale)
    assert [b.extra["method"] for b in report.empirical] == ["steinke"]  # no f-DP


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("m", [0, 1, -3, 2.5, True])
def test_too_few_canaries(m):
    with pytest.raises(InputError, match="num_canaries"):
        GradientCanaryAudit(m)


@pytest.mark.parametrize(("m", "confidence", "least"), [(6, 0.95, 7), (8, 0.99, 9)])
def test_too_few_canaries_for_the_confidence(m, confidence, least):
    # 6 canaries: the best outcome (all included, 6/6 "in" guesses right) has p-value 2⁻⁶ at
    # ε = 0, above 0.05 / 4 (the Bonferroni grid {1, 2, 4, 6}): no outcome certifies ε > 0
    with pytest.raises(InputError, match=f"too few for .*use at least {least} canaries"):
        GradientCanaryAudit(m, confidence=confidence)
    assert GradientCanaryAudit(least, confidence=confidence).num_canaries == least


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1])
def test_bad_confidence_before_training(confidence):
    with pytest.raises(InputError, match="confidence"):
        GradientCanaryAudit(16, confidence=confidence)


def test_bad_statistic():
    with pytest.raises(InputError, match="statistic"):
        GradientCanaryAudit(16, statistic="max")


def test_attach_twice_or_to_a_plain_optimizer():
    _, model, optimizer, loader = _make(8, 8, noise_multiplier=1.0)
    audit = GradientCanaryAudit(16).attach(optimizer, loader)
    with pytest.raises(InputError, match="already attached"):
        audit.attach(optimizer, loader)
    with pytest.raises(InputError, match="DP optimizer"):
        GradientCanaryAudit(16).attach(torch.optim.SGD(model.parameters(), lr=0.1))


def test_more_canaries_than_coordinates():
    _, _, optimizer, loader = _make(8, 8, noise_multiplier=1.0)
    with pytest.raises(InputError, match="exceeds the 42 trainable coordinates"):
        GradientCanaryAudit(43).attach(optimizer, loader)


def test_zero_rate_refused_at_attach():
    _, _, optimizer, _ = _make(8, 8, noise_multiplier=1.0)
    with pytest.raises(InputError, match=r"\(0, 1\]"):
        GradientCanaryAudit(16).attach(optimizer, sample_rate=0.0)


def test_report_before_any_step():
    engine, _, optimizer, loader = _make(8, 8, noise_multiplier=1.0)
    audit = GradientCanaryAudit(16).attach(optimizer, loader)
    with pytest.raises(InputError, match="the loop did not step the optimizer"):
        audit.report(engine, DELTA)
    with pytest.raises(InputError, match="attach"):
        GradientCanaryAudit(16).report(engine, DELTA)


def test_canaries_never_seen_when_q_times_T_below_one():
    # q = 0.1, T = 5: q·T = 0.5
    audit, engine = _audit(16, 5, n=100, batch=10, noise_multiplier=1.0)
    with pytest.raises(InputError, match="q·T .* < 1.*never be seen"):
        audit.report(engine, DELTA)


def test_report_checks_delta_confidence_and_the_rate():
    engine, model, optimizer, loader = _make(8, 8, noise_multiplier=1.0)
    audit = GradientCanaryAudit(16, seed=1).attach(optimizer, sample_rate=0.5)  # loader: q = 1
    _train(model, optimizer, loader, 4)
    with pytest.raises(InputError, match="confidence"):
        audit.report(engine, DELTA, confidence=1.0)
    with pytest.raises(InputError, match="delta"):
        audit.report(engine, 0.0)
    with pytest.raises(InputError, match="sampling rate"):
        audit.report(engine, DELTA)


def test_per_layer_clip_norms():
    # per-layer clipping: canary j's gradient is C_l e_{c_j}, C_l the clip norm of its tensor
    engine, model, optimizer, loader = _make(
        8, 8, noise_multiplier=0.0, clipping="per_layer", max_grad_norm=[1.0, 0.5]
    )
    audit = GradientCanaryAudit(40, subtract_data=True).attach(optimizer, loader)
    _train(model, optimizer, loader, 3)
    clip = np.where(audit.coordinates < 40, 1.0, 0.5)  # weight: 40 values, then the bias
    np.testing.assert_allclose(audit.scores, 3 * clip * audit.included, atol=1e-5)


def test_a_users_sampler_only_mechanism_is_audited_but_unverified():
    from product_noise import register_mechanism

    register_mechanism("lap", sampler=lambda rng, n, d: rng.laplace(size=(n, d)))
    audit, engine = _audit(40, 50, noise="lap", noise_multiplier=0.5)
    report = audit.report(engine, DELTA)
    assert report.verified is None and "lap" in report.unverified
    assert [b.extra["method"] for b in report.empirical] == ["steinke"]
    assert report.empirical[0].epsilon >= 0.0 and report.estimates[-1].label == "estimate"
