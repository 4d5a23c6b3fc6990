"""AdLM baseline: constants from the reference note, noise laws, the Taylor loss, the claimed
and verified figures, an end-to-end fit on sklearn digits, and input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from product_noise.baselines.adlm import (
    AdLMClassifier,
    AdLMNet,
    RelevanceNet,
    budget_weights,
    claimed_figures,
    dp_lrp,
    dplrp_noise_scale,
    exact_sigmoid_loss,
    first_layer_sensitivity,
    functional_mechanism_sensitivity,
    input_noise_scales,
    local_release_epsilon,
    lrp_epsilon,
    randomized_response_labels,
    sample_input_noise,
    taylor_sigmoid_loss,
)
from product_noise.compare.runners.adlm import run_for_compare
from product_noise.privacy import PrivacyFigure


def _small(**kw) -> AdLMClassifier:
    base = dict(
        image_shape=(1, 8, 8),
        batch_size=100,
        epochs=1,
        lrp_samples=200,
        relevance_epochs=1,
        progress=False,
        lr=3e-3,
    )
    base.update(kw)
    return AdLMClassifier(**base)


# ----------------------------------------------------------------------------- constants
def test_first_layer_sensitivity_mnist_and_cifar() -> None:
    assert first_layer_sensitivity(AdLMNet((1, 28, 28))) == 9800.0  # 2*14*14*25
    assert first_layer_sensitivity(AdLMNet((3, 20, 20), hk=30, arch="cifar")) == 5400.0
    # digits 8x8: conv 5x5 SAME -> pool -> 4x4 map: 2*1*16*25
    assert first_layer_sensitivity(AdLMNet((1, 8, 8))) == 800.0


def test_noise_scales_of_the_mnist_code() -> None:
    scale = input_noise_scales(np.ones(784), 9800.0, 0.075, 1800)
    assert np.allclose(scale, 9800 / (0.075 * 1800))
    assert scale[0] == pytest.approx(72.59, abs=0.01)
    assert functional_mechanism_sensitivity(25, 10) == 10 * (25 + 25**2 / 4) == 1812.5
    assert dplrp_noise_scale(784, 0.075, 60000) == pytest.approx(2 * 784 / (0.075 * 60000))


def test_budget_weights_mean_one_and_floor() -> None:
    rng = np.random.default_rng(1)
    r = rng.uniform(0.01, 1.0, 784)
    beta = budget_weights(r)
    assert beta.mean() == pytest.approx(1.0, abs=1e-12)
    assert np.argmax(beta) == np.argmax(r)  # more relevant -> larger budget -> less noise
    r[:10] = -0.3  # negative (noisy) relevances are floored at 1e-5, as in the code
    beta = budget_weights(r)
    assert beta.min() >= 1e-5
    assert np.allclose(beta[:10], beta[0])
    assert beta.mean() == pytest.approx(1.0, abs=1e-9)
    assert np.array_equal(budget_weights(np.full(64, 0.3)), np.ones(64))


def test_claimed_composed_over_redraws_is_180_2() -> None:
    figs = claimed_figures(0.075, 0.075, 0.15, releases=2400)
    assert [f.label for f in figs] == ["claimed", "claimed"]
    assert figs[0].epsilon == pytest.approx(0.3)
    assert figs[1].epsilon == pytest.approx(180.225)
    assert len(claimed_figures(0.075, 0.075, 0.15, releases=1)) == 1


# ----------------------------------------------------------------------------- noise
def test_laplace_noise_scales_per_feature_and_sharing() -> None:
    scales = np.array([0.5, 2.0, 10.0])
    n = 20_000
    noise = sample_input_noise(scales, n, "example", np.random.default_rng(2)).numpy()
    # E|Lap(b)| = b, sd |Lap(b)| = b: 5 standard errors is 3.5% of b at n = 20000
    mean_abs = np.abs(noise).mean(axis=0)
    assert np.all(np.abs(mean_abs / scales - 1) < 5 / math.sqrt(n))
    assert np.all(np.abs(noise.mean(axis=0)) < 5 * math.sqrt(2) * scales / math.sqrt(n))
    # per-example draws are independent: correlation of consecutive rows ~ N(0, 1/n)
    corr = np.corrcoef(noise[:-1, 2], noise[1:, 2])[0, 1]
    assert abs(corr) < 5 / math.sqrt(n)
    shared = sample_input_noise(scales, 50, "batch", np.random.default_rng(3)).numpy()
    assert shared.shape == (50, 3)
    assert np.all(shared == shared[0])  # the code: one vector for the whole batch
    assert not np.all(noise[0] == noise[1])


def test_randomized_response_keep_rate() -> None:
    y = np.zeros(40_000, dtype=np.int64)
    out = randomized_response_labels(y, 1.0, 10, np.random.default_rng(4))
    keep = math.e / (math.e + 9)
    assert (out == 0).mean() == pytest.approx(keep, abs=5 * math.sqrt(keep / 40_000))
    # the other labels are uniform: each gets (1 - keep)/9
    assert (out == 7).mean() == pytest.approx((1 - keep) / 9, abs=0.005)


# ----------------------------------------------------------------------------- loss
def test_taylor_loss_matches_exact_loss_to_second_order() -> None:
    x = torch.linspace(-1.0, 1.0, 401, dtype=torch.float64)
    for label in (0.0, 1.0):
        y = torch.full_like(x, label)
        diff = exact_sigmoid_loss(x, y) - taylor_sigmoid_loss(x, y)
        # log(1 + e^-u) = log 2 - u/2 + u^2/8 - u^4/192 + O(u^6): the error is 4th order
        assert torch.all(diff.abs() <= x**4 / 192 + 1e-15)
        small = x.abs() > 0.05
        ratio = (-diff[small] / x[small] ** 4)[x[small].abs() < 0.1]
        assert torch.allclose(ratio, torch.full_like(ratio, 1 / 192), rtol=2e-3)
    # gradients agree with σ(x) - y up to O(x³) (x³/48) on both sides of 0
    z = torch.tensor([-0.01, 0.01], dtype=torch.float64, requires_grad=True)
    one = torch.ones_like(z)
    for fn in (exact_sigmoid_loss, taylor_sigmoid_loss):
        (g,) = torch.autograd.grad(fn(z, one).sum(), z)
        assert torch.allclose(g, torch.sigmoid(z.detach()) - 1, atol=1e-7)
    assert taylor_sigmoid_loss(torch.zeros(1), torch.zeros(1)).item() == pytest.approx(math.log(2))


# ----------------------------------------------------------------------------- LRP
def test_lrp_conserves_relevance_without_bias_and_stabiliser() -> None:
    torch.manual_seed(0)
    net = RelevanceNet((1, 8, 8))
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.zeros_(m.bias)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    rel = lrp_epsilon(net, x, eps=1e-9)
    out = net(x).detach()
    assert torch.allclose(rel.sum(dim=(1, 2, 3)), out.sum(dim=1), rtol=1e-3, atol=1e-4)
    # with ε = 1 the stabiliser absorbs relevance: |Σ R| shrinks
    rel1 = lrp_epsilon(net, x, eps=1.0)
    assert rel1.sum().abs() < rel.sum().abs()


def test_dp_lrp_normalised_in_unit_interval_without_noise() -> None:
    torch.manual_seed(0)
    net = RelevanceNet((1, 8, 8))
    X = torch.rand(50, 1, 8, 8)
    r = dp_lrp(net, X, 1e9, n_noise=50, n_samples=50, rng=np.random.default_rng(0))
    assert r.shape == (64,)
    assert r.min() == pytest.approx(0.0, abs=1e-6) and r.max() == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------- verified
def test_local_release_epsilon_matches_laplace_closed_form() -> None:
    r = 1.01**20  # on the rounding grid: no rounding
    for delta in (1e-5, 1e-2):
        eps, pure = local_release_epsilon(np.array([1 / r]), releases=1, delta=delta)
        # Laplace, ratio r: δ(ε) = 1 - exp((ε - r)/2)  =>  ε(δ) = r + 2 ln(1 - δ)
        assert eps == pytest.approx(r + 2 * math.log1p(-delta), abs=2e-3)
        assert pure == pytest.approx(r)
    # releases compose; the pure bound is releases * Σ ratios (+ label ε)
    scales = np.array([4.0, 8.0, 16.0])
    eps3, pure3 = local_release_epsilon(scales, releases=3, delta=1e-5, label_epsilon=0.5)
    assert pure3 == pytest.approx(3 * (0.25 + 0.125 + 0.0625) + 0.5)
    assert eps3 <= pure3 + 1e-9
    # randomized response alone (negligible pixel noise): ε(1e-5) = label ε
    eps_rr, _ = local_release_epsilon(np.array([1e7]), releases=1, delta=1e-5, label_epsilon=1)
    assert eps_rr == pytest.approx(1.0, abs=3e-3)


@pytest.mark.parametrize(
    "config, n_reasons",
    [
        ({}, 3),  # the code: batch-shared, private relevance, raw labels
        ({"noise_sharing": "example", "label_privacy": "public"}, 1),  # private relevance
        ({"relevance": "uniform", "label_privacy": "public", "redraw": "once"}, 1),  # shared
        ({"relevance": "uniform", "noise_sharing": "example"}, 1),  # raw labels
    ],
)
def test_verified_is_inf_when_unprovable(digits, config, n_reasons) -> None:
    X, y, _, _ = digits
    clf = _small(**config).fit(X[:300], y[:300])
    ver = clf.verified_
    assert isinstance(ver, PrivacyFigure) and ver.label == "verified"
    assert ver.epsilon == math.inf
    assert ver.source.startswith("no finite ε can be proven")
    assert len(ver.extra["reasons"]) == n_reasons
    assert clf.claimed_.label == "claimed"


def test_verified_finite_and_correct_when_provable(digits) -> None:
    X, y, _, _ = digits
    eps2, batch = 2.0, 100
    clf = _small(
        epsilon2=eps2,
        batch_size=batch,
        relevance="uniform",
        noise_sharing="example",
        redraw="once",
        label_privacy="public",
    ).fit(X[:300], y[:300])
    ver = clf.verified_
    ratio = batch * eps2 / 800.0  # 1/b_j with β = 1 and Δ_h0 = 800
    assert ver.extra["pure_epsilon"] == pytest.approx(64 * ratio)
    expected, _ = local_release_epsilon(np.full(64, 1 / ratio), releases=1, delta=1e-5)
    assert ver.epsilon == pytest.approx(expected)
    assert 0 < ver.epsilon < 64 * ratio
    assert clf.claimed_.epsilon == pytest.approx(0 + eps2 + 0.15)  # ILM: no ε1
    # redrawn every step: every record is released once per epoch
    clf2 = _small(
        epsilon2=eps2,
        batch_size=batch,
        epochs=2,
        relevance="uniform",
        noise_sharing="example",
        label_privacy="randomized_response",
        label_epsilon=0.5,
    ).fit(X[:300], y[:300])
    assert clf2.verified_.extra["pure_epsilon"] == pytest.approx(2 * 64 * ratio + 0.5)
    assert clf2.verified_.epsilon > ver.epsilon
    assert clf2.privacy_[1].epsilon == pytest.approx(2 * eps2 + 0.15)  # composed claim
    assert clf2.steps_ == 2 * 3


# ----------------------------------------------------------------------------- end to end
def test_fit_on_digits_beats_chance(digits) -> None:
    X, y, Xt, yt = digits
    clf = _small(epsilon1=1.0, epsilon2=1.0, epsilon3=1.0, batch_size=287, epochs=12).fit(X, y)
    assert clf.score(Xt, yt) > 0.3  # chance is 0.1
    assert clf.delta_h0_ == 800.0
    assert clf.input_noise_scale_ == pytest.approx(800 / 287)
    assert clf.beta_.mean() == pytest.approx(1.0, abs=1e-6)
    assert clf.predict(Xt).dtype == np.int64


def test_run_for_compare_on_digits(digits) -> None:
    X, y, Xt, yt = digits
    out = run_for_compare(
        X,
        y,
        Xt,
        yt,
        image_shape=(1, 8, 8),
        epsilon=3.0,
        delta=1e-5,
        target="verified",
        seed=0,
        epochs=2,
    )
    assert set(out) == {"accuracy", "claimed", "verified", "noise_scale", "steps", "notes"}
    assert out["claimed"] is None
    assert out["verified"].epsilon == pytest.approx(3.0, rel=0.01)
    assert out["verified"].epsilon <= 3.0 + 1e-9
    out = run_for_compare(
        X,
        y,
        Xt,
        yt,
        image_shape=(1, 8, 8),
        epsilon=3.0,
        delta=1e-5,
        target="claimed",
        seed=0,
        epochs=2,
    )
    assert out["claimed"].epsilon == pytest.approx(3.0)
    assert out["verified"].epsilon == math.inf
    assert 0.0 <= out["accuracy"] <= 1.0
    assert out["steps"] == 2 * math.ceil(1437 / 287)  # batch = n // 5


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epsilon2": -1.0}, "epsilon2"),
        ({"epsilon3": 0.0}, "epsilon3"),
        ({"redraw": "epoch"}, "redraw"),
        ({"noise_sharing": "none"}, "noise_sharing"),
        ({"relevance": "public"}, "public_data"),
        ({"label_privacy": "randomized_response"}, "label_epsilon"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_parameters_raise_before_any_state(digits, kwargs, match) -> None:
    X, y, _, _ = digits
    clf = _small(**kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        clf.fit(X[:50], y[:50])
    assert not hasattr(clf, "model_")


def test_bad_data_raise(digits) -> None:
    X, y, _, _ = digits
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _small().fit(X[:50] * 16, y[:50])
    with pytest.raises(ValueError, match="shape"):
        _small().fit(X[:50, :60], y[:50])
    with pytest.raises(ValueError, match="labels"):
        _small().fit(X[:50], y[:40])
    with pytest.raises(RuntimeError, match="not fitted"):
        _small().predict(X[:5])
    with pytest.raises(ValueError, match="target"):
        run_for_compare(
            X, y, X, y, image_shape=(1, 8, 8), epsilon=1.0, delta=1e-5, target="x", seed=0
        )
    with pytest.raises(ValueError, match="epsilon"):
        run_for_compare(
            X, y, X, y, image_shape=(1, 8, 8), epsilon=-1.0, delta=1e-5, target="claimed", seed=0
        )


# ----------------------------------------------------------------------------- example script
def _write_idx(path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def _example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "adlm_mnist.py"
    spec = importlib.util.spec_from_file_location("example_adlm_mnist", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_example_script_on_tiny_idx_fixture(tmp_path, capsys) -> None:
    import json

    from product_noise.data.loaders import DatasetNotFoundError

    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("t10k", 20)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    mod = _example()
    argv = ["--data-root", str(tmp_path), "-n", "1", "-b", "20", "--lrp-samples", "20"]
    res = mod.main([*argv, "--out", str(tmp_path / "out"), "--no-progress"])
    printed = capsys.readouterr().out
    assert "AdLM test accuracy" in printed and "verified (ε = inf" in printed
    assert res["delta_h0"] == 9800.0 and res["steps"] == 2
    saved = json.loads((tmp_path / "out" / "adlm_mnist.json").read_text())
    assert [f["label"] for f in saved["privacy"]] == ["claimed", "verified"]
    assert saved["privacy"][0]["epsilon"] == pytest.approx(0.3)
    with pytest.raises(DatasetNotFoundError, match="train-images"):
        mod.main(["--data-root", str(tmp_path / "missing"), "-n", "1"])
    with pytest.raises(SystemExit) as err:
        mod.main(["--help"])
    assert err.value.code == 0


def test_epsilon2_search_refuses_a_target_below_the_label_budget() -> None:
    """The ε2 bisection used to return ε2 = 1e-6 with an ε above the target when even that
    missed (here the labels alone spend ε = 1 > 0.5); now it is an input error."""
    from product_noise.baselines.adlm import _calibrate_epsilon2
    from product_noise.validation import InputError

    kw = dict(delta=1e-5, label_epsilon=1.0, n_classes=2)
    e2, eps = _calibrate_epsilon2(np.ones(16), 1.0, 10, target=2.0, **kw)
    assert 1.99 < eps <= 2.0 and e2 > 1e-6
    with pytest.raises(InputError, match="lower limit"):
        _calibrate_epsilon2(np.ones(16), 1.0, 10, target=0.5, **kw)
