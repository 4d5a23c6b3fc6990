"""DP image generation baseline (DP-EFSGD): accounting anchors, the sanitiser, a tiny run."""

from __future__ import annotations

import math

import dp_accounting
import numpy as np
import pytest
import torch
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from product_noise.baselines.dpgen import (
    Discriminator,
    DPGenConfig,
    DPGenerator,
    ErrorFeedbackSanitizer,
    FeatureFID,
    Generator,
    calibrate_noise_multiplier,
    claimed_epsilon,
    claimed_figure,
    error_feedback_step,
    frechet_distance,
    joint_sensitivity,
    lineage_noise_multiplier,
    save_image_grid,
    verified_epsilon,
    verified_figure,
)
from product_noise.compare.runners.dpgen import run_for_compare


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(X))
    tr, te = perm[:1400], perm[1400:]
    return X[tr], d.target[tr], X[te], d.target[te]


# ----------------------------------------------------------------------------- accounting
def test_plain_case_equals_dp_accounting_pld():
    """C2 = 0: the verified figure is dp_accounting's own PLD (substitution relation) of
    PoissonSampled(q, Gaussian(σ_ps/√B)) composed T times (σ_ps the lineage's multiplier)."""
    sigma_ps, ndis, B, T, delta = 1.5, 50, 16, 400, 1e-5
    joint = sigma_ps / math.sqrt(B)
    assert lineage_noise_multiplier(joint, B, 1.0, 0.0) == pytest.approx(sigma_ps, rel=1e-12)
    acc = PLDAccountant(
        dp_accounting.NeighboringRelation.REPLACE_ONE, value_discretization_interval=1e-3
    )
    acc.compose(
        dp_accounting.PoissonSampledDpEvent(1 / ndis, dp_accounting.GaussianDpEvent(joint)), T
    )
    assert verified_epsilon(joint, ndis, T, delta) == pytest.approx(acc.get_epsilon(delta), 1e-12)


def test_claimed_reproduces_lineage_anchors():
    """GS-WGAN/DPAC accountant: σ=1.07, ndis=1000, B=32, T=20000 → ε = 9.99 (MNIST/FMNIST);
    σ=0.61135, ndis=2543 → 10.00 (CelebA). Same formula as autodp (WBK Thm 9, classic
    conversion); tolerance 0.01 (orders are integers here)."""
    eps, _ = claimed_epsilon(1.07, 1000, 32, 20000, 1e-5)
    assert eps == pytest.approx(9.99, abs=0.01)
    eps_c, _ = claimed_epsilon(0.61135, 2543, 32, 20000, 1e-5)
    assert eps_c == pytest.approx(10.00, abs=0.01)
    # the same numbers through the joint parametrisation (C2 = 0: σ_ps = σ√B)
    fig = claimed_figure(1.07 / math.sqrt(32), 1000, 32, 20000, 1e-5)
    assert fig.label == "claimed" and "GS-WGAN" in fig.source
    assert fig.epsilon == pytest.approx(9.99, abs=0.01)


def test_joint_anchor_is_far_above_claimed():
    """Joint per-step accounting of the same run: reference ε ≈ 366 (dp_accounting RDP,
    Poisson add/remove); the PLD verified figure (substitution, conservative) is ≈ 347, and the
    add/remove PLD ≈ 329 (within 1 %)."""
    joint = 1.07 / math.sqrt(32)
    rdp = RdpAccountant()
    rdp.compose(
        dp_accounting.PoissonSampledDpEvent(1e-3, dp_accounting.GaussianDpEvent(joint)), 20000
    )
    assert rdp.get_epsilon(1e-5) == pytest.approx(366, abs=1.0)
    fig = verified_figure(joint, 1000, 20000, 1e-5)
    assert fig.label == "verified"
    assert fig.epsilon == pytest.approx(346.7, rel=0.01)
    assert fig.epsilon < rdp.get_epsilon(1e-5)
    remove = PLDAccountant(value_discretization_interval=1e-3)
    remove.compose(
        dp_accounting.PoissonSampledDpEvent(1e-3, dp_accounting.GaussianDpEvent(joint)), 20000
    )
    assert remove.get_epsilon(1e-5) == pytest.approx(329.4, rel=0.01)
    assert remove.get_epsilon(1e-5) < fig.epsilon


@pytest.mark.parametrize("target", ["verified", "claimed"])
def test_calibration_hits_target(target):
    kw = dict(num_discriminators=20, steps=300, batch_size=16, clip_norm=1.0, error_clip=0.5)
    s = calibrate_noise_multiplier(8.0, 1e-5, target=target, rtol=5e-3, **kw)
    if target == "verified":
        e_hi = verified_epsilon(s, 20, 300, 1e-5)
        e_lo = verified_epsilon(s / 1.005, 20, 300, 1e-5)
    else:
        r = joint_sensitivity(16, 1.0, 0.5) / 2.0
        e_hi = claimed_epsilon(s * r, 20, 16, 300, 1e-5)[0]
        e_lo = claimed_epsilon(s * r / 1.005, 20, 16, 300, 1e-5)[0]
    assert e_hi <= 8.0 < e_lo


def test_claimed_accountant_has_a_floor():
    """WBK Thm 9 keeps 2γ^j C(α, j) terms as σ → ∞: with γ = 1/20 and B·T = 4,800 the
    lineage's ε never drops below ≈ 5.45, so ε = 5 is refused with a clear error."""
    assert claimed_epsilon(1e3, 20, 16, 300, 1e-5)[0] == pytest.approx(5.457, abs=0.01)
    with pytest.raises(ValueError, match="not reachable"):
        calibrate_noise_multiplier(
            5.0, 1e-5, num_discriminators=20, steps=300, batch_size=16, target="claimed"
        )


def test_joint_sensitivity_closed_form():
    assert joint_sensitivity(32, 1.0, 0.0) == pytest.approx(2 * math.sqrt(32))
    assert joint_sensitivity(4, 0.5, 3.0) == pytest.approx(2 * (0.5 * 2 + 3.0))


# ----------------------------------------------------------------------------- sanitiser
def test_error_feedback_matches_hand_computation():
    g1 = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    v1, e1 = error_feedback_step(g1, None, 1.0, 1.0)
    torch.testing.assert_close(v1, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    torch.testing.assert_close(e1, torch.tensor([[2.4, 3.2], [0.0, 0.0]]))
    g2 = torch.tensor([[0.0, 0.0], [0.0, 0.5]])
    v2, e2 = error_feedback_step(g2, e1, 1.0, 1.0)  # clip(e1, 1) = [[0.6, 0.8], [0, 0]]
    torch.testing.assert_close(v2, torch.tensor([[0.6, 0.8], [0.0, 0.5]]))
    torch.testing.assert_close(e2, torch.tensor([[1.8, 2.4], [0.0, 0.0]]))


def test_error_state_is_per_shard():
    san = ErrorFeedbackSanitizer(1.0, 1.0, 0.0)
    g = torch.tensor([[3.0, 4.0]])
    san.sanitize(g, 0)
    torch.testing.assert_close(san.errors[0], torch.tensor([[2.4, 3.2]]))
    out = san.sanitize(torch.zeros(1, 2), 1)  # shard 1 has no error yet
    torch.testing.assert_close(out, torch.zeros(1, 2))
    out0 = san.sanitize(torch.zeros(1, 2), 0)  # shard 0 feeds back clip(e_0, 1)
    torch.testing.assert_close(out0, torch.tensor([[0.6, 0.8]]))
    assert san.releases == 3
    assert ErrorFeedbackSanitizer(1.0, 0.0, 0.0).sanitize(g, 0).norm() == pytest.approx(1.0)


def test_noiseless_release_norm_bound():
    """‖[clip(g_i, C1)] + clip(e, C2)‖_F ≤ C1√B + C2 = Δ/2 whatever g and e are."""
    B, C1, C2 = 8, 0.7, 1.3
    bound = C1 * math.sqrt(B) + C2
    assert joint_sensitivity(B, C1, C2) == pytest.approx(2 * bound)
    san = ErrorFeedbackSanitizer(C1, C2, 0.0)
    gen = torch.Generator().manual_seed(0)
    for step in range(30):
        g = torch.randn(B, 1, 8, 8, generator=gen) * 10 ** (step % 5)
        out = san.sanitize(g, step % 3)
        assert float(out.norm()) <= bound + 1e-5
        assert san.last_noiseless_norm <= bound + 1e-5
    # the bound is attained: equal large gradients, so the fed-back error is aligned with them
    tight = ErrorFeedbackSanitizer(C1, C2, 0.0)
    for _ in range(2):
        tight.sanitize(torch.full((B, 1, 8, 8), 100.0), 0)
    assert tight.last_noiseless_norm == pytest.approx(bound, rel=1e-5)


def test_release_noise_has_stated_std():
    """g = 0, no error: the release is pure N(0, σ_n²); 25,600 draws, sample std within 2 %
    (≈ 4.5 standard errors)."""
    san = ErrorFeedbackSanitizer(1.0, 0.0, 2.5, generator=torch.Generator().manual_seed(1))
    draws = torch.cat([san.sanitize(torch.zeros(8, 64), 0) for _ in range(50)])
    assert float(draws.std()) == pytest.approx(2.5, rel=0.02)
    assert abs(float(draws.mean())) < 0.05


def test_generator_sees_only_the_sanitised_gradient():
    """The hook at the discriminator input bounds what reaches G: ‖∂/∂x̃‖ ≤ (C1√B + C2)/B."""
    torch.manual_seed(0)
    B = 6
    G, D = Generator(8, 10, 8, 8), Discriminator(8, 10, 4)
    with torch.no_grad():
        for p in D.parameters():
            p.mul_(1e3)  # huge raw gradients
    san = ErrorFeedbackSanitizer(0.5, 0.25, 0.0, scale=1.0 / B)
    y = torch.arange(B) % 10
    fake = G(torch.randn(B, 8), y)
    fake.retain_grad()
    x_in = fake.view_as(fake)
    x_in.register_hook(san.hook(0))
    (-D(x_in, y).sum()).backward()
    assert float(fake.grad.norm()) <= (0.5 * math.sqrt(B) + 0.25) / B + 1e-6
    assert float(fake.grad.norm()) > 0.9 * 0.5 * math.sqrt(B) / B


# ----------------------------------------------------------------------------- end to end
def test_fit_sample_checkpoint(digits):
    X, y, _, _ = digits
    cfg = DPGenConfig(
        num_discriminators=4,
        batch_size=8,
        steps=25,
        target_epsilon=8.0,
        warm_start_steps=3,
        critic_steps=1,
        latent_dim=8,
        g_width=8,
        d_width=4,
    )
    g = DPGenerator(cfg).fit(X[:400], y[:400])
    v, c = g.privacy_["verified"], g.privacy_["claimed"]
    assert v.label == "verified" and c.label == "claimed"
    assert 7.5 < v.epsilon <= 8.0 and v.delta == 1e-5
    assert g.noise_std_ == pytest.approx(g.noise_multiplier_ * joint_sensitivity(8, 1.0, 1.0))
    imgs, labels = g.sample(20, seed=3)
    assert imgs.shape == (20, 1, 8, 8) and np.isfinite(imgs).all()
    assert imgs.min() >= 0 and imgs.max() <= 1
    assert list(labels) == [i % 10 for i in range(20)]
    g2 = DPGenerator.from_state_dict(g.state_dict())
    np.testing.assert_array_equal(g2.sample(20, seed=3)[0], imgs)
    assert g2.privacy_["verified"] == v


def test_run_for_compare_digits(digits):
    X, y, Xt, yt = digits
    X, y = X[:600], y[:600]
    out = run_for_compare(
        X.reshape(len(X), -1),
        y,
        Xt.reshape(len(Xt), -1),
        yt,
        image_shape=(1, 8, 8),
        epsilon=10.0,
        delta=1e-5,
        target="verified",
        seed=0,
        steps=20,
    )
    assert 0.0 <= out["accuracy"] <= 1.0 and out["steps"] == 20
    assert out["verified"].label == "verified" and out["verified"].epsilon <= 10.0
    assert out["claimed"].label == "claimed" and out["noise_scale"] > 0
    assert out["notes"] and all(isinstance(s, str) for s in out["notes"])


# ----------------------------------------------------------------------------- evaluation
def test_frechet_distance_closed_form():
    mu1, mu2 = np.array([0.0, 1.0]), np.array([3.0, -1.0])
    c1, c2 = np.diag([4.0, 1.0]), np.diag([1.0, 9.0])
    # diagonal: |μ1 − μ2|² + Σ (√a − √b)² = 13 + (1 + 4)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(18.0, abs=1e-8)
    assert frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0.0, abs=1e-8)


def test_feature_fid_and_grid(digits, tmp_path):
    X, y, Xt, _ = digits
    fid = FeatureFID(epochs=1).fit(X[:500], y[:500])
    assert fid.score(X[:300], X[:300]) == pytest.approx(0.0, abs=1e-6)
    noise = np.random.default_rng(0).random((300, 1, 8, 8)).astype(np.float32)
    assert fid.score(noise, Xt) > fid.score(X[:300], Xt)
    path = save_image_grid(X[:23], tmp_path / "grid.png", nrow=5)
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"


# ----------------------------------------------------------------------------- bad input
def test_bad_input_raises(digits):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match="exactly one of noise_multiplier or target_epsilon"):
        DPGenConfig().validate()
    with pytest.raises(ValueError, match="error_clip"):
        DPGenConfig(noise_multiplier=1.0, error_clip=-1.0).validate()
    with pytest.raises(TypeError, match="unknown DPGenerator parameter"):
        DPGenerator(noise_multiplier=1.0, sigma=2.0)
    gen = DPGenerator(noise_multiplier=1.0, num_discriminators=4, steps=2)
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
        gen.fit(X[:50] * 16, y[:50])
    with pytest.raises(ValueError, match="labels has"):
        gen.fit(X[:50], y[:49])
    with pytest.raises(ValueError, match="num_discriminators=4 exceeds"):
        gen.fit(X[:3], y[:3])
    assert gen.generator_ is None  # nothing was trained
    with pytest.raises(RuntimeError, match="fit"):
        gen.sample(3)
    with pytest.raises(ValueError, match="batch_size"):
        joint_sensitivity(0, 1.0)
    with pytest.raises(ValueError, match="noise_multiplier must be 0"):
        verified_epsilon(1e-3, 10, 10, 1e-5)
    with pytest.raises(ValueError, match="delta"):
        verified_epsilon(1.0, 10, 10, 1.5)
    with pytest.raises(ValueError, match="target"):
        calibrate_noise_multiplier(
            1.0, 1e-5, num_discriminators=5, steps=5, batch_size=2, target="x"
        )
    with pytest.raises(ValueError, match="image_shape"):
        run_for_compare(
            X, y, X, y, image_shape=(1, 7, 7), epsilon=1.0, delta=1e-5, target="verified", seed=0
        )
    assert verified_epsilon(0.0, 10, 10, 1e-5) == math.inf


def test_example_script_reports_missing_data(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "dpgen_mnist.py"
    spec = importlib.util.spec_from_file_location("dpgen_mnist_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "t10k-images-idx3-ubyte" in err
    with pytest.raises(SystemExit) as exc:
        mod.main(["--help"])
    assert exc.value.code == 0
