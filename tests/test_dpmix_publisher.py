"""Statistical and input tests of the DPMix publisher.

Tolerances: Monte-Carlo checks use fixed seeds and bounds of at least 5 standard errors, so a
correct implementation fails with probability < 1e-6 per check (and never with these seeds).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from dpmix import DataBoundWarning, DPMix, L2NormBound, PixelBound, one_hot, sample_subsets
from product_noise.privacy import PrivacyFigure


def _data(n: int = 40, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    rng.shuffle(labels)
    return rng.random((n, 6), dtype=np.float32), one_hot(labels, k)


# ------------------------------------------------------------------ subset sampler
@pytest.mark.parametrize(("n", "l"), [(50, 5), (50, 45), (1000, 40), (30, 30), (7, 1)])
def test_sample_subsets_exact_and_uniform(n: int, l: int) -> None:
    """Both sampler paths (rejection, random keys): l distinct indices, uniform inclusion."""
    rng = np.random.default_rng(1)
    size = 4000
    s = sample_subsets(rng, n, l, size)
    assert s.shape == (size, l) and s.dtype == np.int64
    assert s.min() >= 0 and s.max() < n
    srt = np.sort(s, axis=1)
    assert not (srt[:, 1:] == srt[:, :-1]).any()
    if l < n:
        counts = np.bincount(s.ravel(), minlength=n)
        # inclusion counts: multivariate hypergeometric-like; chi-square against uniform with
        # the without-replacement variance correction (1 - l/n) per row
        expected = size * l / n
        chi2 = ((counts - expected) ** 2).sum() / (expected * (1 - l / n))
        assert stats.chi2.sf(chi2, n - 1) > 1e-4


def test_sample_subsets_pairs_uniform() -> None:
    """Pair inclusion frequency equals l(l-1)/(n(n-1)) (a uniform subset, not just marginals)."""
    rng = np.random.default_rng(2)
    n, l, size = 12, 4, 30_000
    s = sample_subsets(rng, n, l, size)
    ind = np.zeros((size, n))
    np.put_along_axis(ind, s, 1.0, axis=1)
    pair = (ind.T @ ind) / size
    p = l * (l - 1) / (n * (n - 1))
    off = pair[~np.eye(n, dtype=bool)]
    se = math.sqrt(p * (1 - p) / size)
    assert np.abs(off - p).max() < 5 * se


# ------------------------------------------------------------------ publisher statistics
def test_release_is_mean_of_exactly_l_distinct_records() -> None:
    """X = identity (record i = e_i): l·x̃ recovers the indicator of the mixed records."""
    n, l, T = 30, 7, 500
    X = np.eye(n)
    labels = np.arange(n) % 3
    Y = one_hot(labels, 3).astype(np.float64)
    sigma = 1e-4
    Xs, Ys = DPMix(l, T, sigma, seed=3).publish(X, Y)
    scaled = Xs * l
    chosen = np.rint(scaled)
    assert set(np.unique(chosen)) <= {0.0, 1.0}
    assert np.all(chosen.sum(axis=1) == l)  # exactly l distinct records
    assert np.abs(scaled - chosen).max() < 6 * sigma * l  # plus N(0, σ²) noise only
    # the label is the mean of the same records' labels
    np.testing.assert_allclose(Ys, chosen @ Y / l, atol=6 * sigma)


def test_noise_has_the_stated_covariance() -> None:
    """Constant data: x̃ - mean = Q_t ~ N(0, σ_x² I), ỹ - mean = R_t ~ N(0, σ_y² I)."""
    n, d, k, l, T = 50, 20, 5, 10, 20_000
    X = np.full((n, d), 0.25, dtype=np.float64)
    Y = one_hot(np.zeros(n, dtype=int), k).astype(np.float64)  # all records in class 0
    sx, sy = 0.3, 0.7
    Xs, Ys = DPMix(l, T, sx, sy, seed=4).publish(X, Y)
    for resid, s, dim in ((Xs - 0.25, sx, d), (Ys - Y[0], sy, k)):
        m = resid.mean(axis=0)
        assert np.abs(m).max() < 5 * s / math.sqrt(T) * 1.2  # max of dim means: small margin
        cov = np.cov(resid, rowvar=False)
        se_var = s**2 * math.sqrt(2 / T)
        assert np.abs(np.diag(cov) - s**2).max() < 5 * se_var
        off = cov[~np.eye(dim, dtype=bool)]
        assert np.abs(off).max() < 5 * s**2 / math.sqrt(T)
        # Gaussian marginal (KS on one coordinate)
        assert stats.kstest(resid[:, 0] / s, "norm").pvalue > 1e-4


def test_global_mixing_mean_is_unbiased() -> None:
    X, Y = _data(40, 4)
    Xs, Ys = DPMix(8, 20_000, 0.05, 0.05, seed=5).publish(X, Y)
    # E[x̃] = mean of X; sd per coordinate ≤ sqrt(var/l + σ²)
    se = math.sqrt(X.var(axis=0).max() / 8 + 0.05**2) / math.sqrt(20_000)
    assert np.abs(Xs.mean(axis=0) - X.mean(axis=0)).max() < 5 * se
    assert np.abs(Ys.mean(axis=0) - Y.mean(axis=0)).max() < 5 * 0.3 / math.sqrt(20_000)


def test_class_conditional_mixing() -> None:
    X, Y = _data(40, 4)
    labels = Y.argmax(axis=1)
    mix = DPMix(10, 1003, 1e-4, mixing="class", seed=6)
    Xs, Ys = mix.publish(X, Y)
    assert Xs.shape == (1003, 6) and Ys.shape == (1003, 4)
    # labels are the exact class one-hots, T split evenly (first T mod K classes get one more)
    assert set(map(tuple, Ys.tolist())) == set(map(tuple, np.eye(4).tolist()))
    np.testing.assert_array_equal(np.bincount(Ys.argmax(1)), [251, 251, 251, 250])
    # every release lies in the class' convex hull: its distance to the class mean is small
    for c in range(4):
        rows = Xs[Ys.argmax(1) == c]
        assert np.abs(rows.mean(axis=0) - X[labels == c].mean(axis=0)).max() < 0.03
    fig = mix.privacy(backend="native")
    assert isinstance(fig, PrivacyFigure) and fig.label == "verified"
    assert "same-label replace-one" in fig.source
    assert len(fig.extra["per_class_epsilon"]) == 4
    assert fig.epsilon == max(fig.extra["per_class_epsilon"].values())
    assert mix.claimed_privacy().label == "claimed"


def test_seeded_and_reproducible_torch_and_numpy() -> None:
    X, Y = _data()
    a = DPMix(5, 300, 0.1, seed=7).publish(X, Y)
    b = DPMix(5, 300, 0.1).publish(X, Y, seed=7)
    c = DPMix(5, 300, 0.1, seed=8).publish(X, Y)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    t = DPMix(5, 300, 0.1, seed=7).publish(torch.from_numpy(X), torch.from_numpy(Y))
    assert isinstance(t[0], torch.Tensor) and t[0].dtype == torch.float32
    np.testing.assert_array_equal(t[0].numpy(), a[0])
    # images keep their trailing shape; fresh entropy is recorded for reproduction
    imgs = np.random.default_rng(0).random((40, 1, 4, 4))
    mix = DPMix(5, 10, 0.1)
    out, _ = mix.publish(imgs, Y)
    assert out.shape == (10, 1, 4, 4) and out.dtype == np.float64
    again, _ = DPMix(5, 10, 0.1).publish(imgs, Y, seed=mix.release_.seed)
    np.testing.assert_array_equal(out, again)


def test_chunking_covers_every_row_and_progress() -> None:
    X, Y = _data()
    Xs, _ = DPMix(5, 2500, 0.1, chunk_size=300, progress=False, seed=1).publish(X, Y)
    assert np.isfinite(Xs).all() and np.abs(Xs).max() > 0
    assert (np.abs(Xs - X.mean(0)).mean(axis=1) > 0).all()  # no row left uninitialised


def test_clamp_negative_is_opt_in() -> None:
    X, Y = _data()
    Xs, Ys = DPMix(5, 2000, 0.5, seed=2).publish(X, Y)
    assert Xs.min() < 0 and Ys.min() < 0
    Xc, Yc = DPMix(5, 2000, 0.5, clamp_negative=True, seed=2).publish(X, Y)
    assert Xc.min() == 0 and Yc.min() == 0
    np.testing.assert_array_equal(Xc, np.maximum(Xs, 0))


def test_privacy_figure_global() -> None:
    X, Y = _data()
    mix = DPMix(5, 100, 0.5, seed=0)
    mix.publish(X, Y)
    fig = mix.privacy(1e-5, backend="native")
    assert fig.label == "verified" and fig.delta == 1e-5
    # D_x² = 6 (six pixels in [0,1]), D_y² = 2 → s_eff = l/Δ
    s = 5 / math.sqrt((6 + 2) / 0.25)
    assert fig.extra["noise_multiplier"] == pytest.approx(s)


def test_target_epsilon_solves_sigma() -> None:
    X, Y = _data(200, 4)
    mix = DPMix(10, 400, target_epsilon=2.0, target_delta=1e-5, seed=0)
    mix.publish(X, Y)
    fig = mix.privacy(backend="native")
    assert 1.99 < fig.epsilon <= 2.0
    assert mix.release_.sigma_y == mix.release_.sigma_x


def test_l2_bound_diameter_and_clip() -> None:
    X, Y = _data()
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    mix = DPMix(5, 10, 0.5, bound=L2NormBound(1.0), seed=0)
    mix.publish(Xn, Y)
    assert mix.release_.x_diameter == 2.0  # the diameter, not the radius
    with pytest.raises(ValueError, match="L2 norm above the declared radius"):
        DPMix(5, 10, 0.5, bound=L2NormBound(1.0)).publish(X * 3, Y)
    with pytest.warns(DataBoundWarning, match="rescaled"):
        DPMix(5, 10, 0.5, bound=L2NormBound(1.0), on_violation="clip").publish(X * 3, Y)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"l": 0}, ValueError, "l must be an integer >= 1"),
        ({"T": 0}, ValueError, "T must be an integer >= 1"),
        ({"l": 2.5}, TypeError, "l must be an integer"),
        ({"sigma_x": 0.0}, ValueError, "sigma_x must be > 0"),
        ({"sigma_x": -0.1}, ValueError, "sigma_x must be > 0"),
        ({"sigma_y": 0.0}, ValueError, "sigma_y must be > 0"),
        ({"sigma_x": None}, ValueError, "exactly one of sigma_x or target_epsilon"),
        ({"target_epsilon": 1.0}, ValueError, "exactly one of sigma_x or target_epsilon"),
        ({"mixing": "class", "sigma_y": 0.1}, ValueError, "leave sigma_y"),
        ({"mixing": "local"}, ValueError, "mixing must be"),
        ({"on_violation": "ignore"}, ValueError, "on_violation"),
    ],
)
def test_constructor_rejects(kwargs: dict, exc: type, match: str) -> None:
    args = {"l": 5, "T": 10, "sigma_x": 0.1}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        DPMix(**args)


def test_publish_rejects_bad_data() -> None:
    X, Y = _data(40, 4)
    with pytest.raises(ValueError, match="l=41 exceeds the number of records n=40"):
        DPMix(41, 10, 0.1).publish(X, Y)
    with pytest.raises(ValueError, match=r"exceeds the size of class\(es\) 0 \(n_c=10\)"):
        DPMix(11, 10, 0.1, mixing="class").publish(X, Y)
    with pytest.raises(ValueError, match=r"outside the declared PixelBound.*X / 255"):
        DPMix(5, 10, 0.1).publish(X * 255, Y)
    with pytest.warns(DataBoundWarning, match="clipped"):
        out, _ = DPMix(5, 10, 1e-6, on_violation="clip", seed=0).publish(X * 2, Y)
    assert out.max() < 1 + 1e-4
    Xnan = X.copy()
    Xnan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DPMix(5, 10, 0.1).publish(Xnan, Y)
    with pytest.raises(ValueError, match="2-D one-hot.*one_hot"):
        DPMix(5, 10, 0.1).publish(X, Y.argmax(1))
    soft = Y * 0.9 + 0.025
    with pytest.raises(ValueError, match="must be one-hot.*row 0"):
        DPMix(5, 10, 0.1).publish(X, soft)
    two = Y.copy()
    two[5] = 1
    with pytest.raises(ValueError, match="row 5"):
        DPMix(5, 10, 0.1).publish(X, two)
    with pytest.raises(ValueError, match="X has 40 records but Y has 39"):
        DPMix(5, 10, 0.1).publish(X, Y[:-1])
    with pytest.raises(TypeError, match="numpy.ndarray or torch.Tensor"):
        DPMix(5, 10, 0.1).publish(X.tolist(), Y)
    with pytest.raises(RuntimeError, match="publish"):
        DPMix(5, 10, 0.1).privacy()
    with pytest.raises(ValueError, match="low < high"):
        PixelBound(1.0, 0.0)
