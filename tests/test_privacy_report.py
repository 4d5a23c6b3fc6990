"""PrivacyReport: construction, label checks, order, serialisation, and every object that returns
one (its verified figure is the one the object reported before)."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from product_noise.privacy import (
    CLAIMED,
    EMPIRICAL,
    ESTIMATE,
    VERIFIED,
    EmpiricalBound,
    PrivacyFigure,
    PrivacyReport,
    PrivacyWarning,
)

torch.set_num_threads(1)

V = PrivacyFigure(1.5, 1e-5, VERIFIED, "PLD", {"steps": 3})
C1 = PrivacyFigure(0.3, 1e-5, CLAIMED, "paper, per step")
C2 = PrivacyFigure(0.9, 1e-5, CLAIMED, "paper, composed")
E = PrivacyFigure(1.2, 1e-5, ESTIMATE, "GDP CLT")
B = EmpiricalBound(0.4, 1e-5, 0.95, "canary audit")


# ----------------------------------------------------------------------------- the type
def test_construction_order_and_sequence_protocol() -> None:
    r = PrivacyReport(V, [C1, C2], [E], [B], source="test", what="a run")
    assert r.claimed == (C1, C2) and r.estimates == (E,) and r.empirical == (B,)  # tuples
    assert r.figures() == (V, C1, C2, E, B)
    assert list(r) == [V, C1, C2, E, B]
    assert [f.label for f in r] == [VERIFIED, CLAIMED, CLAIMED, ESTIMATE, EMPIRICAL]
    assert len(r) == 5 and r[0] is V and r[-1] is B and r[1:3] == (C1, C2)
    verified, *_ = r
    assert verified is V
    assert str(r).splitlines() == [str(f) for f in (V, C1, C2, E, B)]
    assert str(PrivacyReport()) == "no privacy figures" and len(PrivacyReport()) == 0
    with pytest.raises(dataclass_frozen_error()):
        r.verified = None  # type: ignore[misc]


def dataclass_frozen_error() -> type[Exception]:
    from dataclasses import FrozenInstanceError

    return FrozenInstanceError


@pytest.mark.parametrize("wrong", [C1, E])
def test_verified_slot_refuses_other_labels(wrong: PrivacyFigure) -> None:
    with pytest.raises(ValueError, match="verified slot"):
        PrivacyReport(wrong)


def test_other_slots_refuse_other_labels_and_non_figures() -> None:
    with pytest.raises(ValueError, match="claimed"):
        PrivacyReport(V, (V,))
    with pytest.raises(ValueError, match="estimates"):
        PrivacyReport(V, (), (C1,))
    with pytest.raises(TypeError):
        PrivacyReport(V, ("claimed",))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PrivacyReport({"epsilon": 1.0})  # type: ignore[arg-type]


def test_from_figures_sorts_into_slots() -> None:
    r = PrivacyReport.from_figures([C1, E, None, V, C2, B], source="s")
    assert r == PrivacyReport(V, (C1, C2), (E,), (B,), source="s")
    with pytest.raises(ValueError, match="one verified"):
        PrivacyReport.from_figures([V, V])


def test_round_trip_to_dict_from_dict() -> None:
    r = PrivacyReport(V, (C1, C2), (E,), (B,), source="src", what="what")
    d = r.to_dict()
    assert d["verified"]["label"] == VERIFIED and d["empirical"][0]["label"] == EMPIRICAL
    back = PrivacyReport.from_dict(d)
    assert back == r and back.verified.extra == {"steps": 3}
    assert back.source == "src" and back.what == "what"
    assert PrivacyReport.from_dict(PrivacyReport().to_dict()) == PrivacyReport()


def test_audit_bound_attaches_later() -> None:
    from product_noise.audit import epsilon_lower_bound

    rng = np.random.default_rng(0)
    bound = epsilon_lower_bound(rng.normal(2, 1, 400), rng.normal(0, 1, 400), delta=1e-5)
    r = PrivacyReport(V).with_empirical(bound, bound.to_empirical("second"))
    assert len(r.empirical) == 2 and all(isinstance(b, EmpiricalBound) for b in r.empirical)
    assert r.empirical[0].epsilon == bound.epsilon_lower
    assert r.empirical[0].confidence == bound.confidence and r.empirical[1].source == "second"
    assert r.verified is V and PrivacyReport.from_dict(r.to_dict()) == r


# ----------------------------------------------------------------------------- consumers
def _tiny_engine(noise: str):
    from product_noise import PrivacyEngine

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(32, 4, generator=g), torch.randint(0, 2, (32,), generator=g))
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp_model, dp_opt, dp_loader = engine.make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=DataLoader(data, batch_size=8),
            noise=noise,
            noise_multiplier=1.5,
            max_grad_norm=1.0,
        )
    for _, (xb, yb) in zip(range(2), dp_loader):
        dp_opt.zero_grad()
        nn.functional.cross_entropy(dp_model(xb), yb).backward()
        dp_opt.step()
    return engine, dp_model, dp_opt


@pytest.mark.parametrize("noise", ["gaussian", "l2"])
def test_engine_report(noise: str) -> None:
    engine, _, _ = _tiny_engine(noise)
    report = engine.get_privacy_report(1e-5)
    assert isinstance(report, PrivacyReport)
    assert report.verified == engine._verified_figure(1e-5)  # what the old list held first
    assert report.verified.epsilon == engine.get_epsilon(1e-5)
    assert [f.label for f in report] == [VERIFIED] and report[0] is report.verified
    assert report.claimed == () and report.estimates == ()


def test_spherical_step_records_and_plain_tuple_checkpoints() -> None:
    from product_noise.opacus.accountants import SphericalStep

    engine, model, opt = _tiny_engine("l2")
    (step,) = engine.accountant.history
    assert isinstance(step, SphericalStep) and step.family == "l2" and step.steps == 2
    assert step == ("l2", step.dim, 1.5, step.sample_rate, 2)  # still the positional tuple
    sd = engine.accountant.state_dict()
    assert all(type(h) is tuple for h in sd["history"])
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)  # no package class in the file
    engine.accountant.history = []
    engine.accountant.load_state_dict(loaded)
    assert engine.accountant.history == [step]
    assert isinstance(engine.accountant.history[0], SphericalStep)
    # the engine's own checkpoint round trip
    buf = io.BytesIO()
    engine.save_checkpoint(path=buf, module=model, optimizer=opt)
    eps = engine.get_epsilon(1e-5)
    engine.accountant.history = []
    buf.seek(0)
    engine.load_checkpoint(path=buf, module=model, optimizer=opt)
    assert engine.accountant.history == [step] and engine.get_epsilon(1e-5) == eps


def test_erm_report() -> None:
    from sklearn.datasets import make_classification

    from product_noise.erm import PrivateLogisticRegression

    X, y = make_classification(200, 5, n_informative=3, random_state=0)
    X = X / np.linalg.norm(X, axis=1).max()
    est = PrivateLogisticRegression(epsilon=1.0, data_norm=1.0, random_state=0)
    assert not hasattr(est, "privacy_report_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        est.fit(X, y)
    r = est.privacy_report_
    assert isinstance(r, PrivacyReport)
    assert r.verified == est.privacy_.verified and r.claimed == (est.privacy_.claimed,)


def test_input_noise_report() -> None:
    from product_noise.baselines import GaussianInputPerturbation

    X = np.random.default_rng(0).random((20, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        t = GaussianInputPerturbation(2.0, 1e-5, calibration="classic").fit(X)
    r = t.privacy_report_
    assert r.verified == t.privacy_["verified"] and r.claimed == (t.privacy_["claimed"],)
    t2 = GaussianInputPerturbation(2.0, 1e-5).fit(X)  # analytic: no claim
    assert t2.privacy_report_.claimed == () and t2.privacy_report_.verified is t2.privacy_[VERIFIED]


def test_dpgen_report() -> None:
    from sklearn.datasets import load_digits

    from product_noise.baselines.dpgen import DPGenerator

    d = load_digits()
    X = (d.data[:60] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    gen = DPGenerator(
        noise_multiplier=1.0,
        num_discriminators=2,
        batch_size=4,
        steps=2,
        warm_start_steps=0,
        critic_steps=1,
        latent_dim=4,
        g_width=4,
        d_width=2,
    )
    assert gen.privacy_report_ == PrivacyReport(
        source=gen.privacy_report_.source, what=gen.privacy_report_.what
    )
    gen.fit(X, d.target[:60])
    r = gen.privacy_report_
    assert r.verified == gen.privacy_["verified"] and r.claimed == (gen.privacy_["claimed"],)
    again = DPGenerator.from_state_dict(gen.state_dict())
    assert again.privacy_report_ == r


def test_adlm_report() -> None:
    from sklearn.datasets import load_digits

    from product_noise.baselines import AdLMClassifier

    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16.0).astype(np.float32)
    clf = AdLMClassifier(
        image_shape=(1, 8, 8),
        batch_size=100,
        epochs=2,
        lrp_samples=100,
        relevance_epochs=1,
        progress=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y[:300])
    r = clf.privacy_report_
    assert r.verified == clf.verified_ == clf.privacy_[-1]
    assert r.claimed == tuple(clf.privacy_[:-1]) and r.claimed[0] == clf.claimed_
    assert list(r) == [clf.privacy_[-1], *clf.privacy_[:-1]]  # the same figures, verified first


def test_dpmix_report() -> None:
    from dpmix import DPMix, one_hot

    rng = np.random.default_rng(0)
    X, Y = rng.random((40, 6), dtype=np.float32), one_hot(np.arange(40) % 4, 4)
    mix = DPMix(5, 50, 0.5, seed=0)
    mix.publish(X, Y)
    r = mix.privacy_report(1e-5, backend="native")
    assert r.verified == mix.privacy(1e-5, backend="native")
    assert r.claimed == (mix.claimed_privacy(1e-5),)
    assert mix.privacy_report().verified == mix.privacy()  # each figure's default δ


def test_compare_outcome_report() -> None:
    from product_noise.compare.runners.common import Outcome

    out = Outcome(accuracy=0.5, claimed=C1, verified=V)
    assert out.report == PrivacyReport(V, (C1,), source="product_noise.compare")
    assert list(Outcome(accuracy=0.5).report) == []


def test_renamed_accounting_classes_keep_their_old_names() -> None:
    import dpmix
    from product_noise.compare import accounting

    assert dpmix.Accounting is dpmix.DPMixAccounting
    assert accounting.Accounting is accounting.AccountingCache
    assert type(dpmix.dpmix_epsilon(40, 5, 10, 1.0, 1e-5, backend="native")).__name__ == (
        "DPMixAccounting"
    )
    assert not math.isnan(dpmix.dpmix_epsilon(40, 5, 10, 1.0, 1e-5, backend="native").epsilon)
