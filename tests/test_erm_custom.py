"""User mechanisms in the convex-ERM estimators and the grid search (issue 17).

A re-registered ℓ2 radial law must give exactly what the built-in ``"l2"`` gives (every method);
the Gaussian registered through its profile must give what ``"gaussian"`` gives (output
perturbation); a sampler-only mechanism fits but is never labelled verified; a law without a
radial density is refused by objective perturbation and AMP before anything is fitted.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer

from product_noise.erm import (
    NOISES,
    PrivateHuberSVM,
    PrivateLogisticRegression,
    estimators,
    gridsearch,
    noise_choices,
)
from product_noise.mechanisms import (
    MATCHED_TO_GAUSSIAN,
    SGG,
    Gaussian,
    L2Mechanism,
    gaussian_delta,
    register_mechanism,
    unregister_mechanism,
)
from product_noise.privacy import PrivacyWarning
from product_noise.validation import InputError

EPS, DELTA, LAM = 1.0, 1e-5, 1e-2


def _l2_law(dim: int) -> SGG:
    return SGG(dim, dim - 1.0, 1.0, 1.0)  # the ℓ2 mechanism: density ∝ exp(−‖x‖/θ)


def _normal(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.standard_normal((n, dim))


def _gauss_profile(eps: float, dim: int, nm: float) -> float:
    return float(gaussian_delta(eps, 1.0 / nm))


def _laplace(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.laplace(scale=2**-0.5, size=(n, dim))


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    """breast_cancer, standardised, rows scaled into the declared data norm 1."""
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X / np.linalg.norm(X, axis=1).max(), y


@pytest.fixture
def user_noises() -> None:
    register_mechanism("my_l2", radial=_l2_law)
    register_mechanism("gauss_prof", sampler=_normal, profile=_gauss_profile)
    register_mechanism("lap", sampler=_laplace)


def _fit(X, y, cls=PrivateLogisticRegression, **kw):
    params = {"epsilon": EPS, "delta": DELTA, "lam": LAM, "data_norm": 1.0, "random_state": 3}
    params.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        return cls(**params).fit(X, y)


def _no_fitting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any solver call fail loudly: a refusal must come before it."""

    def boom(*args, **kwargs):
        raise AssertionError("a solver ran before the refusal")

    monkeypatch.setattr(estimators, "minimize_erm", boom)
    monkeypatch.setattr(estimators, "ppssgd", boom)


# ----------------------------------------------------------------------------- live names
def test_names_registered_after_import_are_accepted_and_removed_ones_refused(cancer) -> None:
    X, y = cancer
    assert "my_l2" not in noise_choices()
    register_mechanism("my_l2", radial=_l2_law)
    assert "my_l2" in noise_choices() and "my_l2" in gridsearch.noise_choices()
    assert "my_l2" not in NOISES and "my_l2" not in gridsearch.NOISE_CHOICES  # built-in lists
    est = _fit(X, y, noise="my-l2")  # the dash alias resolves to the registry name
    assert est.privacy_.noise == "my_l2" and est.get_params()["noise"] == "my-l2"
    unregister_mechanism("my_l2")
    assert "my_l2" not in noise_choices()
    with pytest.raises(InputError, match="noise must be one of"):
        _fit(X, y, noise="my_l2")


def test_a_mechanism_not_offered_to_erm_is_refused(cancer) -> None:
    register_mechanism("dpsgd_only", radial=_l2_law, consumers=("dpsgd",))
    with pytest.raises(InputError, match="noise must be one of .*got 'dpsgd_only'"):
        _fit(*cancer, noise="dpsgd_only")


# ----------------------------------------------------------------------------- equalities
@pytest.mark.parametrize(
    ("method", "cls"),
    [
        ("output", PrivateLogisticRegression),
        ("output", PrivateHuberSVM),
        ("ppssgd", PrivateLogisticRegression),
        ("objective", PrivateLogisticRegression),
        ("amp", PrivateLogisticRegression),
    ],
)
def test_reregistered_l2_law_equals_the_builtin_l2(cancer, user_noises, method, cls) -> None:
    X, y = cancer
    kw = {"sgd_epochs": 5} if method == "ppssgd" else {}
    ref = _fit(X, y, cls, method=method, noise="l2", **kw)
    mine = _fit(X, y, cls, method=method, noise="my_l2", **kw)
    assert set(mine.privacy_.mechanisms) == set(ref.privacy_.mechanisms)
    for part, m in mine.privacy_.mechanisms.items():
        assert m.scale == pytest.approx(ref.privacy_.mechanisms[part].scale, rel=1e-12)
    assert mine.privacy_.verified.label == "verified"
    assert mine.privacy_.verified.epsilon == pytest.approx(ref.privacy_.verified.epsilon, rel=1e-12)
    assert mine.privacy_.verified.delta == pytest.approx(ref.privacy_.verified.delta, rel=1e-12)
    np.testing.assert_allclose(mine.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mine.intercept_, ref.intercept_, rtol=1e-10, atol=1e-12)
    assert mine.privacy_.noise == "my_l2" and not mine.privacy_.unverified


def test_gaussian_registered_by_its_profile_equals_the_builtin_gaussian(cancer, user_noises):
    X, y = cancer
    ref = _fit(X, y, noise="gaussian")
    mine = _fit(X, y, noise="gauss_prof")
    s_ref = ref.privacy_.mechanisms["output"].scale
    assert mine.privacy_.mechanisms["output"].scale == pytest.approx(s_ref, rel=1e-9)
    assert mine.privacy_.verified.label == "verified"
    assert mine.privacy_.verified.epsilon == pytest.approx(ref.privacy_.verified.epsilon, rel=1e-6)
    assert mine.privacy_.verified.epsilon <= EPS * (1 + 1e-6)
    # both draw scale · N(0, I) from the same stream: equal up to the scales' rounding
    np.testing.assert_allclose(mine.coef_, ref.coef_, rtol=1e-7, atol=1e-9)


def test_a_mechanism_class_works_like_its_name(cancer) -> None:
    X, y = cancer
    ref = _fit(X, y, noise="l2")
    by_class = _fit(X, y, noise=L2Mechanism)
    assert by_class.privacy_.noise == "l2"  # a registered class is reported by its name
    np.testing.assert_array_equal(by_class.coef_, ref.coef_)
    unregistered = type("HandMadeL2", (L2Mechanism,), {"name": "hand_made_l2"})
    own = _fit(X, y, noise=unregistered)
    assert own.privacy_.noise == "hand_made_l2"
    assert own.privacy_.verified.epsilon == pytest.approx(ref.privacy_.verified.epsilon, rel=1e-12)
    np.testing.assert_array_equal(own.coef_, ref.coef_)


# ----------------------------------------------------------------------------- unverified
def _fit_warned(X, y, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = PrivateLogisticRegression(
            epsilon=EPS, delta=DELTA, lam=LAM, data_norm=1.0, random_state=3, **kw
        ).fit(X, y)
    privacy = [w for w in caught if issubclass(w.category, PrivacyWarning)]
    return est, privacy


def _assert_never_verified(est) -> None:
    p = est.privacy_
    assert p.verified is None and "without a proven privacy profile" in p.unverified
    text = str(p)
    assert "unverified: " in text and "verified (" not in text.replace("unverified", "")
    d = p.to_dict()
    assert d["verified"] is None and d["unverified"] == p.unverified
    assert '"verified"' not in json.dumps([d["claimed"]])  # no figure labelled verified
    report = est.privacy_report_
    assert report.verified is None and report.unverified == p.unverified
    assert str(report).startswith("unverified: ")
    assert all(f.label != "verified" for f in report)
    assert report.to_dict()["verified"] is None


@pytest.mark.parametrize("method", ["output", "ppssgd"])
def test_sampler_only_runs_at_the_gaussian_scale_and_is_never_verified(
    cancer, user_noises, method
) -> None:
    X, y = cancer
    kw = {"sgd_epochs": 5} if method == "ppssgd" else {}
    est, warned = _fit_warned(X, y, method=method, noise="lap", **kw)
    assert len(warned) == 1 and "unverified" in str(warned[0].message)
    gauss = _fit(X, y, method=method, noise="gaussian", **kw).privacy_.mechanisms["output"]
    mech = est.privacy_.mechanisms["output"]
    assert mech.scale == pytest.approx(gauss.scale, rel=1e-12)
    assert mech.noise_multiplier == pytest.approx(
        Gaussian.calibrate(EPS, DELTA, mech.dim, mech.sensitivity).noise_multiplier, rel=1e-12
    )
    assert est.privacy_.claimed is None  # nothing is claimed: it is run like the Gaussian
    assert MATCHED_TO_GAUSSIAN in est.privacy_.unverified
    _assert_never_verified(est)
    assert np.isfinite(est.coef_).all() and est.score(X, y) > 0.5


def test_sampler_with_a_claim_is_scaled_by_it_and_labelled_claimed(cancer) -> None:
    register_mechanism("lap_claim", sampler=_laplace, claim=lambda eps, delta, dim: 3.0 / eps)
    X, y = cancer
    est, warned = _fit_warned(X, y, noise="lap_claim")
    assert len(warned) == 1
    mech = est.privacy_.mechanisms["output"]
    assert mech.noise_multiplier == pytest.approx(3.0 / EPS, rel=1e-12)
    claim = est.privacy_.claimed
    assert claim.label == "claimed" and (claim.epsilon, claim.delta) == (EPS, DELTA)
    assert "claimed formula" in est.privacy_.unverified
    _assert_never_verified(est)


def test_sampler_only_one_vs_rest_composes_the_claim_and_stays_unverified() -> None:
    register_mechanism("lap_claim", sampler=_laplace, claim=lambda eps, delta, dim: 2.0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 4))
    X /= np.linalg.norm(X, axis=1).max()
    y = np.argmax(X[:, :3], axis=1)
    est, warned = _fit_warned(X, y, noise="lap_claim")
    assert len(warned) == 1 and est.coef_.shape == (3, 4)
    assert est.privacy_.claimed.epsilon == pytest.approx(EPS)  # 3 models of ε/3 each
    _assert_never_verified(est)


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("method", ["objective", "amp"])
@pytest.mark.parametrize(
    ("noise", "has"),
    [("lap", "only a sampler"), ("gauss_prof", "a sampler and a privacy profile")],
)
def test_objective_and_amp_refuse_a_law_without_radial_density(
    cancer, user_noises, monkeypatch, method, noise, has
) -> None:
    _no_fitting(monkeypatch)
    est = PrivateLogisticRegression(method=method, noise=noise, data_norm=1.0)
    with pytest.raises(InputError, match="spherically symmetric") as info:
        est.fit(*cancer)
    msg = str(info.value)
    assert "\n" not in msg and f"mechanism {noise!r} has {has}" in msg and method in msg
    assert not hasattr(est, "coef_") and not hasattr(est, "privacy_")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"noise": "nope"}, "noise must be one of"),
        ({"noise": L2Mechanism(5, 1.0)}, "not an instance"),
        ({"noise": 3}, "ScaledMechanism subclass"),
        ({"noise": "my_l2", "noise_params": {"k": 10.0}}, "takes none"),
    ],
)
def test_bad_noise_is_one_input_error_before_fitting(
    cancer, user_noises, monkeypatch, kw, match
) -> None:
    _no_fitting(monkeypatch)
    est = PrivateLogisticRegression(data_norm=1.0, **kw)
    with pytest.raises(InputError, match=match) as info:
        est.fit(*cancer)
    assert "\n" not in str(info.value) and not hasattr(est, "coef_")


# ----------------------------------------------------------------------------- sklearn
def test_clone_get_and_set_params_with_a_user_name(cancer, user_noises) -> None:
    X, y = cancer
    est = PrivateLogisticRegression(noise="my_l2", data_norm=1.0, lam=LAM, random_state=3)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin.get_params()["noise"] == "my_l2"
    np.testing.assert_array_equal(twin.fit(X, y).coef_, est.fit(X, y).coef_)
    twin.set_params(noise="lap")
    assert clone(twin).get_params()["noise"] == "lap"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        twin.fit(X, y)
    assert twin.privacy_.verified is None and est.privacy_.verified.label == "verified"
    by_class = clone(PrivateLogisticRegression(noise=L2Mechanism))
    assert by_class.get_params()["noise"] is L2Mechanism


# ----------------------------------------------------------------------------- grid search
def _split(cancer):
    X, y = cancer
    return X[:400], y[:400], X[400:], y[400:]


def test_gridsearch_takes_a_user_name_and_equals_the_builtin(cancer, user_noises) -> None:
    kw = {"epsilons": (1.0,), "repeats": 1, "baseline": False}
    ref = gridsearch.run_gridsearch("output", "LR", "l2", *_split(cancer), **kw)
    mine = gridsearch.run_gridsearch("output", "LR", "my-l2", *_split(cancer), **kw)
    assert mine.noise == "my_l2"
    assert [r.status for r in mine.runs] == ["ok"] * len(ref.runs)
    assert [r.accuracy for r in mine.runs] == [r.accuracy for r in ref.runs]
    for a, b in zip(mine.runs, ref.runs):
        assert a.verified.epsilon == pytest.approx(b.verified.epsilon, rel=1e-12)


def test_gridsearch_with_a_sampler_only_reports_no_verified_figure(
    cancer, user_noises, tmp_path
) -> None:
    kw = {"epsilons": (1.0,), "repeats": 1, "baseline": False}
    res = gridsearch.run_gridsearch("output", "LR", "lap", *_split(cancer), **kw)
    assert all(r.status == "ok" and r.verified is None for r in res.runs)
    rows = gridsearch.write_runs_csv(res, tmp_path / "runs.csv").read_text().splitlines()
    header = rows[0].split(",")
    col = header.index("verified_epsilon")
    assert all(line.split(",")[col] == "" for line in rows[1:])


def test_gridsearch_refuses_amp_with_a_sampler_before_any_fit(
    cancer, user_noises, monkeypatch
) -> None:
    _no_fitting(monkeypatch)
    with pytest.raises(InputError, match="mechanism 'gauss_prof' has a sampler"):
        gridsearch.run_gridsearch("amp-nt", "LR", "gauss_prof", *_split(cancer), repeats=1)


@pytest.mark.parametrize("method", ["output", "objective", "amp"])
def test_a_new_radial_law_is_calibrated_to_its_target_by_every_method(cancer, method) -> None:
    # generalised-gamma law ∝ exp(−‖x‖^1.5): in none of the built-ins, spherical, so verified
    register_mechanism("gg15", radial=lambda d: SGG(d, d - 1.0, 1.0, 1.5))
    est = _fit(*cancer, method=method, noise="gg15")
    ver = est.privacy_.verified
    assert ver.label == "verified" and not est.privacy_.unverified
    assert ver.epsilon <= EPS * (1 + 1e-6) and ver.delta <= DELTA * (1 + 1e-9)
    assert ver.epsilon >= 0.9 * EPS  # calibrated to the target, not far below it
    assert all(type(m).name == "gg15" for m in est.privacy_.mechanisms.values())
