"""audit_multi_run: a multi-run audit of a user's own loop (its train_once(present, seed))."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from product_noise import PrivacyEngine
from product_noise.audit import audit_multi_run
from product_noise.validation import InputError

DELTA = 1e-5
D = 6  # features 0..4 carry the data; feature 5 only the canary


def _train_once(present: bool, seed: int, engines: list) -> float:
    """A user's loop: full-batch Gaussian DP-SGD, 1 step, σ = 0.5 C (exactly μ-GDP, μ = 2);
    the canary is the record 3·e_5 with label 1, scored by its final logit margin."""
    g = torch.Generator().manual_seed(1000)  # the same known records in every run
    x = torch.zeros(40, D)
    x[:, :5] = torch.randn(40, 5, generator=g)
    y = (x[:, 0] > 0).long()
    if present:
        canary = torch.zeros(1, D)
        canary[0, 5] = 3.0
        x, y = torch.cat([x, canary]), torch.cat([y, torch.ones(1, dtype=torch.long)])
    torch.manual_seed(seed)
    model = nn.Linear(D, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = engine.make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
            data_loader=DataLoader(TensorDataset(x, y), batch_size=len(y)),
            noise_multiplier=0.5,
            max_grad_norm=1.0,
            poisson_sampling=False,
            noise_generator=torch.Generator().manual_seed(seed),
        )
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    engines.append(engine)
    with torch.no_grad():
        z = model(torch.eye(D)[5:6] * 3.0)[0]
    return float(z[1] - z[0])


def test_a_user_loop_is_bounded_below_its_verified_epsilon():
    engines: list = []
    audit = audit_multi_run(
        lambda p, s: _train_once(p, s, engines), 150, delta=DELTA, gaussian=True
    )
    report = audit.report(engines[0].get_privacy_report(DELTA))
    verified = report.verified.epsilon
    assert verified == pytest.approx(10.0, rel=0.02)  # one step of σ = C/2: μ = 2
    direct, gdp = report.empirical
    assert 0 < direct.epsilon <= verified and 0 < gdp.epsilon <= verified
    assert "μ-GDP" in gdp.source and gdp.epsilon > direct.epsilon
    (est,) = [e for e in report.estimates if e.label == "estimate"]
    assert "not a bound" in est.source
    assert audit.scores_in.shape == audit.scores_out.shape == (150,)
    gap = (audit.scores_in.mean() - audit.scores_out.mean()) / audit.scores_out.std()
    assert 1.5 < gap < 2.5  # μ = 2 standard deviations, up to sampling error


def test_bad_input_before_any_run():
    calls = []

    def never(present, seed):
        calls.append(seed)
        return 0.0

    with pytest.raises(InputError, match="too few for 99.9% confidence"):
        audit_multi_run(never, 20, confidence=0.999)
    with pytest.raises(InputError, match="trials"):
        audit_multi_run(never, 10)
    assert calls == []
    with pytest.raises(InputError, match="one finite score"):
        audit_multi_run(lambda p, s: float("nan"), 20)
    with pytest.raises(InputError, match="one finite score"):
        audit_multi_run(lambda p, s: np.array([1.0, 2.0]) if p else 0.0, 20)
    with pytest.raises(InputError, match="one finite score"):
        audit_multi_run(lambda p, s: "high", 20)
