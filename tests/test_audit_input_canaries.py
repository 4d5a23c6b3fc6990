"""InputCanaryAudit: a black-box one-run audit of a user's loop with input canaries."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from product_noise import PrivacyEngine
from product_noise.audit import InputCanaryAudit, mislabelled
from product_noise.validation import InputError

DELTA = 1e-5
D0, M = 10, 64  # data features; canaries, each an input along a direction of its own


def _data(n: int = 200, seed: int = 0) -> tuple[TensorDataset, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, D0 + M)
    x[:, :D0] = torch.randn(n, D0, generator=g)
    y = (x[:, 0] > 0).long()
    # canary j: 5·e_{D0+j}, label 1 — only canary j ever moves the weights of its coordinate,
    # so the final model's loss on it shows whether it was trained on
    cx = torch.zeros(M, D0 + M)
    cx[torch.arange(M), D0 + torch.arange(M)] = 5.0
    return TensorDataset(x, y), cx, torch.ones(M, dtype=torch.long)


def _train(noise_multiplier: float, seed: int = 0, epochs: int = 30):
    torch.manual_seed(seed)
    data, cx, cy = _data()
    audit = InputCanaryAudit(cx, cy, seed=seed)
    train = audit.training_set(data)
    engine = PrivacyEngine()
    model = nn.Linear(D0 + M, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = engine.make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
            data_loader=DataLoader(train, batch_size=50),
            noise_multiplier=noise_multiplier,
            max_grad_norm=1.0,
            noise="gaussian",
        )
        for _ in range(epochs):
            for xb, yb in loader:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(xb), yb).backward()
                optimizer.step()
    audit.score(model)
    return audit, engine


def test_training_set_appends_the_included_canaries_only():
    data, cx, cy = _data()
    audit = InputCanaryAudit(cx, cy, seed=3)
    train = audit.training_set(data)
    k = int(audit.included.sum())
    assert 0 < k < M and len(train) == len(data) + k
    x_last, _ = train[len(train) - 1]
    assert torch.equal(x_last, cx[np.flatnonzero(audit.included)[-1]])


def test_without_noise_the_canaries_are_found():
    # noise 0: an included canary's own weight is trained, an excluded one's stays at its init
    audit, engine = _train(0.0)
    s = audit.scores
    assert s[audit.included].min() > s[~audit.included].max()  # perfect separation
    assert audit.bound(DELTA).epsilon > 0.5


@pytest.mark.parametrize("seed", range(3))
def test_gaussian_bound_never_exceeds_verified(seed):
    audit, engine = _train(1.0, seed=seed)
    report = audit.report(engine, DELTA)
    (bound,) = report.empirical
    assert report.verified.label == "verified" and bound.epsilon <= report.verified.epsilon
    (est,) = [e for e in report.estimates if e.label == "estimate"]
    assert "not a bound" in est.source and "black-box input canaries" in report.what


def test_mislabelled_moves_every_label():
    y = torch.tensor([0, 1, 2, 3] * 10)
    z = mislabelled(y, 4, seed=1)
    assert torch.all(z != y) and int(z.min()) >= 0 and int(z.max()) < 4
    assert torch.equal(z, mislabelled(y, 4, seed=1))  # seeded
    with pytest.raises(InputError, match="num_classes"):
        mislabelled(y, 3)


def test_bad_input_before_training():
    data, cx, cy = _data()
    with pytest.raises(InputError, match="too few"):
        InputCanaryAudit(cx[:6], cy[:6])
    with pytest.raises(InputError, match="one row per label"):
        InputCanaryAudit(cx[:20], cy[:30])
    audit = InputCanaryAudit(cx, cy)
    with pytest.raises(InputError, match="training_set"):
        audit.score(nn.Linear(D0 + M, 2))
    audit.training_set(data)
    with pytest.raises(InputError, match="once"):
        audit.training_set(data)
    with pytest.raises(InputError, match="score"):
        audit.bound(DELTA)
    audit.score(nn.Linear(D0 + M, 2))
    with pytest.raises(InputError, match="accounted no step"):
        audit.report(PrivacyEngine(), DELTA)
