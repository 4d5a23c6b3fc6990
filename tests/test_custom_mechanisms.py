"""User mechanisms: registration, probes, and honest labels in the core (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import product_noise
from product_noise.mechanisms import (
    MECHANISMS,
    SGG,
    Gaussian,
    L2Mechanism,
    calibrate,
    gaussian_delta,
    register_mechanism,
    unregister_mechanism,
)
from product_noise.mechanisms.registry import REGISTRY, import_plugins, load_plugins
from product_noise.validation import InputError, UnverifiedError


def _l2_law(dim: int) -> SGG:
    return SGG(dim, dim - 1.0, 1.0, 1.0)  # ℓ2 mechanism: density ∝ exp(−‖x‖)


def _normal(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.standard_normal((n, dim))


def _laplace(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.laplace(scale=2**-0.5, size=(n, dim))  # unit variance per coordinate


def _gauss_profile(eps: float, dim: int, nm: float) -> float:
    return float(gaussian_delta(eps, 1.0 / nm))


def test_top_level_export() -> None:
    assert product_noise.register_mechanism is register_mechanism


@pytest.mark.parametrize(("eps", "dim"), [(0.5, 10), (2.0, 50), (8.0, 400)])
def test_radial_reregistration_of_l2_matches_the_builtin(eps: float, dim: int) -> None:
    spec = register_mechanism("my_l2", radial=_l2_law)
    assert spec.calibration == "verified" and "my_l2" in MECHANISMS
    mine = calibrate("my_l2", eps, 1e-5, dim)
    ref = L2Mechanism.calibrate(eps, 1e-5, dim)
    assert mine.scale == pytest.approx(ref.theta, rel=1e-12)
    grid = np.array([0.1, 1.0, 3.0])
    np.testing.assert_allclose(mine.delta(grid), ref.delta(grid), rtol=1e-12, atol=0)
    assert mine.verified(delta=1e-5).epsilon == pytest.approx(
        ref.verified(delta=1e-5).epsilon, rel=1e-9
    )


def test_profile_mechanism_equals_the_gaussian() -> None:
    register_mechanism("gauss_profile", sampler=_normal, profile=_gauss_profile)
    mine = calibrate("gauss-profile", 2.0, 1e-5, 50)  # the dash alias resolves too
    ref = Gaussian.calibrate(2.0, 1e-5, 50)
    assert mine.noise_multiplier == pytest.approx(ref.sigma, rel=1e-9)
    assert mine.verified(delta=1e-5).label == "verified"
    # the generic sampler scales unit draws: E‖n‖² = M σ² within 5 standard errors
    draws = mine.sample(4000, rng=0)
    sq = (draws**2).sum(axis=1)
    assert abs(sq.mean() - 50 * ref.sigma**2) < 5 * sq.std() / np.sqrt(4000)


def test_sampler_only_is_never_verified() -> None:
    spec = register_mechanism("lap", sampler=_laplace)
    assert spec.calibration == "unverified"
    assert "unverified" in spec.table_label
    mech = spec.load()(20, 1.0, 1.0)
    for call in (
        lambda: mech.verified(delta=1e-5),
        lambda: mech.delta(1.0),
        lambda: mech.epsilon(1e-5),
    ):
        with pytest.raises(UnverifiedError, match="unverified"):
            call()
    with pytest.raises(UnverifiedError, match="no proven privacy profile|unverified"):
        calibrate("lap", 1.0, 1e-5, 20)


def test_sampler_with_a_claim_is_claimed_never_verified() -> None:
    register_mechanism(
        "lap_claimed", sampler=_laplace, claim=lambda eps, delta, dim: np.sqrt(dim) / eps
    )
    mech = calibrate("lap_claimed", 2.0, 1e-5, 16)
    assert mech.noise_multiplier == pytest.approx(2.0)
    assert mech.claimed().label == "claimed"
    with pytest.raises(UnverifiedError):
        mech.verified(delta=1e-5)


def test_torch_draw_is_joint_seeded_and_on_the_tensors_dtype() -> None:
    register_mechanism("lap", sampler=_laplace)
    mech = MECHANISMS["lap"](10, 3.0, 1.0)
    ts = [torch.zeros(4, dtype=torch.float32), torch.zeros((2, 3), dtype=torch.float64)]
    a = mech.sample_like(ts, generator=torch.Generator().manual_seed(5))
    b = mech.sample_like(ts, generator=torch.Generator().manual_seed(5))
    assert [x.shape for x in a] == [t.shape for t in ts]
    assert [x.dtype for x in a] == [torch.float32, torch.float64]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="dimension M=10"):
        mech.sample_like([torch.zeros(3)])


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"sampler": lambda r, n, d: r.standard_normal((n,))}, "shape"),
        ({"sampler": lambda r, n, d: r.integers(0, 3, (n, d))}, "floating-point"),
        ({"sampler": lambda r, n, d: np.random.standard_normal((n, d))}, "ignores its rng"),  # noqa: NPY002
        ({"sampler": lambda r, n, d: np.ones((n, d))}, "not random"),
        ({"sampler": _normal, "profile": lambda e, d, nm: 1.5}, r"outside \[0, 1\]"),
        ({"sampler": _normal, "profile": lambda e, d, nm: -0.1}, r"outside \[0, 1\]"),
        ({"sampler": _normal, "profile": lambda e, d, nm: min(1.0, 0.1 * e)}, "ε"),
        ({"sampler": _normal, "profile": lambda e, d, nm: min(1.0, 0.1 * nm)}, "multiplier"),
        ({"sampler": _normal, "profile": lambda e, d, nm: 1.0}, "proves nothing"),
        ({"sampler": _normal, "profile": lambda e, d, nm: "x"}, "one float"),
        ({"radial": lambda d: "not a law"}, "SGG"),
        ({}, "needs radial= .* or sampler="),
        ({"radial": _l2_law, "sampler": _normal}, "do not also give sampler="),
    ],
)
def test_bad_registrations_are_refused_with_one_clear_error(kw: dict, message: str) -> None:
    before = REGISTRY.names()
    with pytest.raises(InputError, match=message) as info:
        register_mechanism("bad_noise", **kw)
    assert "\n" not in str(info.value)
    assert REGISTRY.names() == before  # nothing half-registered


def test_name_clashes() -> None:
    with pytest.raises(InputError, match="'gaussian' is already registered"):
        register_mechanism("gaussian", sampler=_laplace)
    register_mechanism("lap", sampler=_laplace)
    with pytest.raises(InputError, match="replace=True"):
        register_mechanism("lap", sampler=_normal, profile=_gauss_profile)
    spec = register_mechanism("lap", sampler=_normal, profile=_gauss_profile, replace=True)
    assert spec.calibration == "verified"
    with pytest.raises(InputError, match="built in"):
        unregister_mechanism("gaussian")
    unregister_mechanism("lap")
    assert "lap" not in REGISTRY and "lap" not in MECHANISMS


def test_entry_point_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    class EP:
        def __init__(self, name: str, fn: object) -> None:
            self.name, self.value, self._fn = name, f"pkg:{name}", fn

        def load(self) -> object:
            return self._fn

    def good() -> None:
        register_mechanism("plug_lap", sampler=_laplace)

    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(md, "entry_points", lambda group: [EP("good", good), EP("bad", broken)])
    with pytest.warns(RuntimeWarning, match="'bad'.*boom"):
        assert load_plugins() == ["good"]
    assert REGISTRY.get("plug-lap").calibration == "unverified"


def test_import_plugins_errors_are_input_errors() -> None:
    with pytest.raises(InputError, match="cannot import mechanism plugin 'no_such_mod_xyz'"):
        import_plugins(["no_such_mod_xyz"])
    with pytest.raises(InputError, match="no callable 'nope'"):
        import_plugins(["math:nope"])


def test_a_hand_written_factory_class_registers() -> None:
    """A ScaledMechanism subclass given as ``factory=`` (here the ℓ2 class) is probed through its
    law, not as a user profile (this raised AttributeError on ``_profile_at`` before)."""
    spec = register_mechanism("x_l2", factory=L2Mechanism)
    assert spec.calibration == "verified"
    assert calibrate("x_l2", 1.0, 1e-5, 10).scale == pytest.approx(
        L2Mechanism.calibrate(1.0, 1e-5, 10).theta, rel=1e-12
    )


def test_expected_norm_of_a_sampler_only_law_is_chunked_and_correct() -> None:
    """E‖n‖ of i.i.d. unit-variance coordinates ≈ √M (Monte Carlo over chunks, M = 20,000)."""
    register_mechanism("lap", sampler=_laplace)
    mech = MECHANISMS["lap"](20_000, 1.0, 1.0)
    assert mech.expected_norm == pytest.approx(np.sqrt(20_000), rel=1e-3)
