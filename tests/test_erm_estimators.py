"""The private ERM estimators: exactness, limits, sklearn API, errors (fixed seeds)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from product_noise.erm import (
    LogisticLoss,
    PrivacyLeakWarning,
    PrivateHuberSVM,
    PrivateLogisticRegression,
    clip_and_augment,
    minimize_erm,
)
from product_noise.privacy import PrivacyFigure, PrivacyWarning


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(400, 6, n_informative=4, random_state=0)
    X = X / np.linalg.norm(X, axis=1).max()  # rows already within norm 1
    return X, y


@pytest.fixture(scope="module")
def data20():
    # product noise's exact profile is slow below M = 10 (finer quadrature): use d = 20
    X, y = make_classification(400, 20, n_informative=6, random_state=2)
    return X / np.linalg.norm(X, axis=1).max(), y


def _fit(X, y, **kw):
    kw.setdefault("data_norm", 1.0)
    kw.setdefault("random_state", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        return PrivateLogisticRegression(**kw).fit(X, y)


def test_lambda_maps_to_sklearn_C_equal_1_over_n_lambda(data):
    X, y = data
    n, lam = len(y), 1e-2
    ypm = np.where(y == 1, 1.0, -1.0)
    ours = minimize_erm(X, ypm, LogisticLoss(), lam).theta
    sk = LogisticRegression(C=1 / (n * lam), fit_intercept=False, tol=1e-12, max_iter=10000)
    sk.fit(X, y)
    assert np.allclose(ours, sk.coef_.ravel(), atol=1e-6)
    official = LogisticRegression(C=1 / lam, fit_intercept=False, max_iter=10000).fit(X, y)
    assert not np.allclose(ours, official.coef_.ravel(), atol=1e-2)


@pytest.mark.parametrize("noise", ["gaussian", "gamma", "l2", "product_paper"])
def test_output_perturbation_is_optimum_plus_exactly_the_drawn_noise(data20, noise):
    X, y = data20
    est = _fit(X, y, epsilon=1.0, delta=1e-5, lam=1e-2, noise=noise, random_state=7)
    Xa, R = clip_and_augment(X, 1.0)
    assert R == pytest.approx(math.sqrt(2))
    theta_star = minimize_erm(Xa, np.where(y == 1, 1.0, -1.0), LogisticLoss(), 1e-2).theta
    mech = est.privacy_.mechanisms["output"]
    assert mech.sensitivity == pytest.approx(2 * math.sqrt(2) / (len(y) * 1e-2))
    b = mech.sample(rng=np.random.default_rng(7))
    got = np.append(est.coef_.ravel(), est.intercept_[0])
    assert np.allclose(got, theta_star + b, rtol=0, atol=1e-12)
    assert est.privacy_.noise_norms[0]["output"] == pytest.approx(np.linalg.norm(b), rel=1e-12)


@pytest.mark.parametrize(
    "method,kw,atol",
    [
        ("output", {}, 1e-4),
        ("objective", {}, 1e-4),
        ("amp", {"amp_eps_frac": 0.5}, 1e-4),
        ("ppssgd", {"sgd_epochs": 300, "sgd_batch_size": 400}, 2e-2),
    ],
)
@pytest.mark.parametrize("noise", ["gaussian", "gamma"])
def test_large_epsilon_converges_to_non_private(data, method, kw, atol, noise):
    X, y = data
    lam = 0.05
    Xa, _ = clip_and_augment(X, 1.0)
    theta_star = minimize_erm(Xa, np.where(y == 1, 1.0, -1.0), LogisticLoss(), lam).theta
    est = _fit(X, y, epsilon=1e9, delta=1e-5, lam=lam, method=method, noise=noise, **kw)
    got = np.append(est.coef_.ravel(), est.intercept_[0])
    assert np.allclose(got, theta_star, atol=atol)


def test_privacy_report_labels(data):
    X, y = data
    for method in ("output", "objective", "amp", "ppssgd"):
        est = _fit(X, y, method=method, sgd_epochs=2)
        p = est.privacy_
        assert isinstance(p.claimed, PrivacyFigure) and p.claimed.label == "claimed"
        assert isinstance(p.verified, PrivacyFigure) and p.verified.label == "verified"
        assert p.verified.epsilon <= 1.0 + 1e-9  # verified calibration: at most the target
        assert p.noise_norm > 0
        assert str(p)


def test_product_paper_claim_and_verified_side_by_side(data20):
    X, y = data20
    est = _fit(X, y, epsilon=1.0, method="output", noise="product_paper")
    mech = est.privacy_.mechanisms["output"]
    assert mech.paper["k"] == 1000.0
    assert est.privacy_.claimed.epsilon == 1.0
    assert est.privacy_.verified.epsilon > 10 * est.privacy_.claimed.epsilon


def test_objective_fallback_reported(data):
    X, y = data
    with pytest.warns(UserWarning, match="fallback fired"):
        est = PrivateLogisticRegression(
            epsilon=0.1, method="objective", noise="gamma", lam=1e-5, data_norm=1.0
        ).fit(X, y)
    m = est.privacy_.models[0]
    assert m["fallback"] and m["extra_reg"] > 0
    assert est.privacy_.verified.delta == 0.0


def test_amp_shared_noise_flag_reproduces_official_and_has_no_verified_guarantee(data20):
    X, y = data20
    est = _fit(X, y, method="amp", noise="product_paper", amp_shared_noise=True)
    assert math.isinf(est.privacy_.verified.epsilon)
    mechs = est.privacy_.mechanisms
    ratio = mechs["output"].scale / mechs["objective"].scale
    norms = est.privacy_.noise_norms[0]
    assert norms["output"] == pytest.approx(ratio * norms["objective"], rel=1e-12)
    indep = _fit(X, y, method="amp", noise="product_paper")
    assert math.isfinite(indep.privacy_.verified.epsilon)


def test_multiclass_ovr_splits_the_budget():
    X, y = make_classification(300, 5, n_informative=4, n_redundant=0, n_classes=3, random_state=1)
    est = _fit(X, y, epsilon=0.9, delta=3e-6, data_norm=5.0)
    assert est.coef_.shape == (3, 5) and est.intercept_.shape == (3,)
    assert est.privacy_.models[0]["epsilon"] == pytest.approx(0.3)
    assert est.privacy_.models[0]["delta"] == pytest.approx(1e-6)
    assert est.privacy_.verified.epsilon == pytest.approx(0.9, rel=1e-6)
    assert est.predict_proba(X).shape == (300, 3)
    assert np.allclose(est.predict_proba(X).sum(axis=1), 1)
    with pytest.raises(ValueError, match="exactly 2 classes"):
        _fit(X, y, multi_class="binary")


def test_sklearn_api(data):
    X, y = data
    est = PrivateLogisticRegression(epsilon=50.0, data_norm=1.0, random_state=0)
    c = clone(est)
    assert c.get_params() == est.get_params()
    c.set_params(method="objective", noise="gamma")
    assert c.get_params()["method"] == "objective"
    pipe = make_pipeline(FunctionTransformer(lambda Z: Z * 0.5), c)
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.5
    fitted = clone(est).fit(X, y)
    assert fitted.decision_function(X).shape == (len(y),)
    assert set(fitted.predict(X)) <= set(np.unique(y))
    proba = fitted.predict_proba(X)
    assert np.allclose(proba.sum(axis=1), 1)
    assert np.array_equal(fitted.predict(X), fitted.classes_[proba.argmax(axis=1)])
    svm = PrivateHuberSVM(epsilon=50.0, data_norm=1.0, huber_h=0.1, random_state=0).fit(X, y)
    assert svm.get_params()["huber_h"] == 0.1 and not hasattr(svm, "predict_proba")
    assert 0 <= svm.score(X, y) <= 1


def test_same_seed_same_model(data):
    X, y = data
    a, b = _fit(X, y, random_state=3), _fit(X, y, random_state=3)
    assert np.array_equal(a.coef_, b.coef_)


def test_sparse_input_matches_dense(data):
    X, y = data
    dense = _fit(X, y, method="amp")
    sp = _fit(sparse.csr_matrix(X), y, method="amp")
    assert np.allclose(dense.coef_, sp.coef_, atol=1e-8)
    assert np.allclose(dense.predict(X), sp.predict(sparse.csr_matrix(X)))


def test_data_norm_leak_warning_and_clipping(data):
    X, y = data
    assert issubclass(PrivacyLeakWarning, PrivacyWarning)
    with pytest.warns(PrivacyLeakWarning, match="Data norm has not been specified"):
        est = PrivateLogisticRegression(random_state=0).fit(3 * X, y)
    assert est.privacy_.data_norm_from_data
    Xa, R = clip_and_augment(5 * X, 0.5, fit_intercept=False)
    assert R == 0.5 and np.linalg.norm(Xa, axis=1).max() <= 0.5 + 1e-12


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"epsilon": 0.0}, ValueError, "epsilon"),
        ({"epsilon": -1.0}, ValueError, "epsilon"),
        ({"delta": 0.0}, ValueError, "delta"),
        ({"delta": 1.0}, ValueError, "delta"),
        ({"delta": 1.5}, ValueError, "delta"),
        ({"lam": 0.0}, ValueError, "lam"),
        ({"lam": -1e-3}, ValueError, "lam"),
        ({"method": "bogus"}, ValueError, "method"),
        ({"noise": "laplace"}, ValueError, "noise"),
        ({"data_norm": 0.0}, ValueError, "data_norm"),
    ],
)
def test_bad_parameters(data, kw, exc, match):
    X, y = data
    with pytest.raises(exc, match=match):
        PrivateLogisticRegression(**{"data_norm": 1.0, **kw}).fit(X, y)


def test_bad_data(data):
    X, y = data
    est = PrivateLogisticRegression(data_norm=1.0)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(Xn, y)
    Xi = X.copy()
    Xi[1, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        est.fit(Xi, y)
    with pytest.raises(ValueError, match="Unknown label type"):
        est.fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        est.fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="exactly 2 classes"):
        PrivateLogisticRegression(data_norm=1.0, multi_class="binary").fit(X, np.arange(len(y)) % 3)
    with pytest.raises(TypeError, match="sparse input is not supported by method='ppssgd'"):
        PrivateLogisticRegression(data_norm=1.0, method="ppssgd").fit(sparse.csr_matrix(X), y)
