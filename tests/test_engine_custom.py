"""User-registered mechanisms in the DP-SGD engine and the training loop (issue 17).

Tiny data (256 examples, a 10 → 2 linear model: M = 22 trainable values, 8 steps an epoch), so
every run trains in well under a second; the accounting is the real verified accountant.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from product_noise import PrivacyEngine
from product_noise.mechanisms import (
    MATCHED_TO_GAUSSIAN,
    MECHANISMS,
    SGG,
    L2Mechanism,
    ScaledMechanism,
    gaussian_delta,
    register_mechanism,
    unregister_mechanism,
)
from product_noise.opacus import UnverifiedNoiseAccountant, noise_choices
from product_noise.privacy import PrivacyReport, PrivacyWarning
from product_noise.training.loop import TrainConfig, noises, train
from product_noise.validation import InputError, UnverifiedError

N, D, K, BATCH = 256, 10, 2, 32
M = D * K + K  # trainable values of the linear model
DELTA = 1e-5


def _l2_law(dim: int) -> SGG:
    return SGG(dim, dim - 1.0, 1.0, 1.0)  # the ℓ2 mechanism's radius law


def _normal(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.standard_normal((n, dim))


def _laplace(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.laplace(scale=2**-0.5, size=(n, dim))


def _gauss_profile(eps: float, dim: int, nm: float) -> float:
    return float(gaussian_delta(eps, 1.0 / nm))


def _data(dtype: torch.dtype = torch.float32) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, D, generator=g, dtype=dtype)
    y = (X[:, 0] > 0).long()
    return TensorDataset(X, y)


def _run(
    noise: object,
    *,
    noise_multiplier: float | None = 1.0,
    engine: PrivacyEngine | None = None,
    seed: int = 1,
    epochs: int = 1,
    dtype: torch.dtype = torch.float32,
) -> tuple[PrivacyEngine, nn.Module, torch.optim.Optimizer]:
    """Train the linear model with ``make_private(noise=...)``; returns (engine, model, opt)."""
    torch.manual_seed(0)
    model = nn.Linear(D, K).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = DataLoader(_data(dtype), batch_size=BATCH, shuffle=True)
    engine = engine or PrivacyEngine()
    kw = {} if noise_multiplier is None else {"noise_multiplier": noise_multiplier}
    model, opt, loader = engine.make_private(
        module=model,
        optimizer=opt,
        data_loader=loader,
        noise=noise,
        max_grad_norm=1.0,
        noise_generator=torch.Generator().manual_seed(seed),
        **kw,
    )
    _train(model, opt, loader, epochs)
    return engine, model, opt


def _train(model: nn.Module, opt: torch.optim.Optimizer, loader: DataLoader, epochs: int) -> None:
    crit = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            out = model(xb)
            loss = crit(out, yb) if len(yb) else out.sum() * 0.0
            loss.backward()
            opt.step()


def _params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _assert_unverified(report: PrivacyReport, name: str) -> None:
    """No verified figure anywhere in the report, its text or its dict."""
    assert report.verified is None and name in report.unverified
    assert all(f.label != "verified" for f in report)
    text = str(report)
    assert text.startswith("unverified: ")
    assert not any(line.startswith("verified") for line in text.splitlines())
    d = report.to_dict()
    assert d["verified"] is None and d["unverified"] == report.unverified
    assert PrivacyReport.from_dict(d) == report


# ============================================================ verified user mechanisms
def test_radial_l2_law_gets_the_builtin_l2_accountant_exactly() -> None:
    register_mechanism("my_l2", radial=_l2_law)
    ref, ref_model, _ = _run("l2")
    mine, my_model, _ = _run("my-l2")  # the dash alias resolves to the name
    assert mine.noise == "my_l2" and [h.family for h in mine.accountant.history] == ["my_l2"]
    eps = mine.get_epsilon(DELTA)
    assert math.isfinite(eps) and eps > 0
    assert eps == ref.get_epsilon(DELTA)  # the same verified figure, to the last bit
    assert mine.get_privacy_report(DELTA).verified.label == "verified"
    # same law, same generator: the same joint noise draws, so the same model
    assert torch.equal(_params(my_model), _params(ref_model))


def test_profile_gaussian_matches_the_gaussian_pld_route() -> None:
    register_mechanism("gauss_prof", sampler=_normal, profile=_gauss_profile)
    mine, _, _ = _run("gauss_prof", noise_multiplier=1.2)
    ref, _, _ = _run("gaussian", noise_multiplier=1.2, engine=PrivacyEngine(accountant="gdp"))
    prv, _, _ = _run("gaussian", noise_multiplier=1.2)
    eps = mine.get_epsilon(DELTA)
    assert math.isfinite(eps) and eps > 0
    assert eps == pytest.approx(ref.get_epsilon(DELTA), rel=1e-6)  # same PLD route
    assert eps == pytest.approx(prv.get_epsilon(DELTA), rel=1e-2)  # and Opacus' PRV bound
    fig = mine.get_privacy_report(DELTA).verified
    assert fig.label == "verified" and "proven profile of gauss_prof" in fig.source


def test_instances_bring_their_class_and_noise_multiplier() -> None:
    register_mechanism("my_l2", radial=_l2_law)
    for inst in (L2Mechanism(M, 0.7, 1.0), MECHANISMS["my_l2"](M, 0.7, 1.0)):
        engine, _, opt = _run(inst, noise_multiplier=None)
        assert engine.noise == inst.name and opt.noise_multiplier == 0.7
        assert [tuple(h) for h in engine.accountant.history] == [(inst.name, M, 0.7, 1 / 8, 8)]
    engine, _, opt = _run(MECHANISMS["my_l2"], noise_multiplier=0.7)  # the class
    assert engine.noise == "my_l2" and opt.noise_multiplier == 0.7
    assert type(engine.current_mechanism()) is MECHANISMS["my_l2"]


# ============================================================ unverified user mechanisms
def test_sampler_only_noise_trains_and_is_never_reported_verified() -> None:
    register_mechanism("lap", sampler=_laplace)
    engine, model, opt = _run("lap")
    assert isinstance(engine.accountant, UnverifiedNoiseAccountant)
    assert engine.accountant.mechanism() == "unverified"
    assert [tuple(h) for h in engine.accountant.history] == [("lap", M, 1.0, 1 / 8, 8)]
    assert torch.isfinite(_params(model)).all()
    with pytest.raises(UnverifiedError, match=r"no verified privacy figure.*audit"):
        engine.get_epsilon(DELTA)
    with pytest.raises(UnverifiedError):
        engine.accountant.get_epsilon(DELTA)
    _assert_unverified(engine.get_privacy_report(DELTA), "lap")


def test_sampler_only_noise_is_one_joint_seeded_draw_on_the_parameters_dtype() -> None:
    calls: list[tuple[tuple[torch.dtype, ...], int]] = []

    def torch_sampler(tensors: list[torch.Tensor], generator: torch.Generator | None) -> list:
        calls.append((tuple(t.dtype for t in tensors), sum(t.numel() for t in tensors)))
        return [torch.randn(t.shape, dtype=t.dtype, generator=generator) for t in tensors]

    register_mechanism("spy", sampler=_normal, torch_sampler=torch_sampler)
    calls.clear()  # the registration probes drew too
    engine, model, _ = _run("spy", dtype=torch.float64)
    # one call per step, over every trainable value at once, in the parameters' dtype
    assert calls == [((torch.float64, torch.float64), M)] * 8
    assert all(p.dtype == torch.float64 for p in model.parameters())
    _assert_unverified(engine.get_privacy_report(DELTA), "spy")


def test_seeded_runs_with_a_user_sampler_are_reproducible() -> None:
    register_mechanism("lap", sampler=_laplace)
    a = _params(_run("lap", seed=3)[1])
    b = _params(_run("lap", seed=3)[1])
    c = _params(_run("lap", seed=4)[1])
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_make_private_with_epsilon_matches_unverified_noise_to_the_gaussian() -> None:
    register_mechanism("lap", sampler=_laplace)

    def calibrated(noise: str) -> tuple[PrivacyEngine, torch.optim.Optimizer, list]:
        torch.manual_seed(0)
        model = nn.Linear(D, K)
        engine = PrivacyEngine(accountant="rdp")  # the faster sound Gaussian calibration
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, opt, _ = engine.make_private_with_epsilon(
                module=model,
                optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
                data_loader=DataLoader(_data(), batch_size=BATCH, shuffle=True),
                target_epsilon=2.0,
                target_delta=DELTA,
                epochs=1,
                max_grad_norm=1.0,
                noise=noise,
            )
        return engine, opt, [w for w in caught if issubclass(w.category, PrivacyWarning)]

    engine, opt, warned = calibrated("lap")
    ref_engine, ref_opt, ref_warned = calibrated("gaussian")
    assert opt.noise_multiplier == ref_opt.noise_multiplier  # MATCHED_TO_GAUSSIAN
    assert len(warned) == 1 and not ref_warned
    assert "verified Gaussian" in str(warned[0].message) and "unverified" in str(warned[0].message)
    report = engine.get_privacy_report(DELTA)
    _assert_unverified(report, "lap")
    assert MATCHED_TO_GAUSSIAN in report.unverified


def test_make_private_with_epsilon_calibrates_a_proven_profile_on_its_own_accountant() -> None:
    register_mechanism("gauss_prof", sampler=_normal, profile=_gauss_profile)
    torch.manual_seed(0)
    model = nn.Linear(D, K)
    engine = PrivacyEngine()
    model, opt, loader = engine.make_private_with_epsilon(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        data_loader=DataLoader(_data(), batch_size=BATCH, shuffle=True),
        target_epsilon=2.0,
        target_delta=DELTA,
        epochs=1,
        max_grad_norm=1.0,
        noise="gauss_prof",
    )
    _train(model, opt, loader, 1)
    eps = engine.get_epsilon(DELTA)
    assert 0.98 * 2.0 <= eps <= 2.0  # calibrated on its verified profile, within rtol = 1%


# ============================================================ bad input, before training
def _make(noise: object, **kw: object) -> tuple[PrivacyEngine, nn.Module]:
    model = nn.Linear(D, K)
    engine = PrivacyEngine()
    engine.make_private(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        data_loader=DataLoader(_data(), batch_size=BATCH),
        noise=noise,
        max_grad_norm=1.0,
        **kw,
    )
    return engine, model


class _Unregistered(L2Mechanism):
    name = "not_registered"


@pytest.mark.parametrize(
    ("noise", "kw", "message"),
    [
        (lambda: L2Mechanism(M + 1, 0.7), {}, rf"dimension M={M + 1}.*{M} trainable values"),
        (lambda: L2Mechanism(M, 0.7), {"noise_multiplier": 0.8}, "give only one of them"),
        (lambda: "nope", {"noise_multiplier": 1.0}, "unknown noise 'nope'; choose one of .*lap"),
        (lambda: _Unregistered, {"noise_multiplier": 1.0}, "not registered.*register it first"),
        (lambda: "product_paper", {"noise_multiplier": 1.0}, "not a DP-SGD noise family"),
    ],
)
def test_bad_noise_is_one_clear_error_before_anything_is_wrapped(
    noise: object, kw: dict, message: str
) -> None:
    register_mechanism("lap", sampler=_laplace)
    model = nn.Linear(D, K)
    engine = PrivacyEngine()
    with pytest.raises(InputError, match=message):
        engine.make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
            data_loader=DataLoader(_data(), batch_size=BATCH),
            noise=noise(),
            max_grad_norm=1.0,
            **kw,
        )
    assert engine.noise == "gaussian" and not hasattr(model, "_module")
    assert not any(hasattr(p, "grad_sample") for p in model.parameters())


def test_noise_choices_are_live() -> None:
    assert "lap" not in noise_choices() and "lap" not in noises()
    register_mechanism("lap", sampler=_laplace)
    assert noise_choices()[-1] == "lap" and noises()[-2:] == ("lap", "none")
    unregister_mechanism("lap")
    assert "lap" not in noise_choices()


def test_an_instance_is_not_a_calibration_target() -> None:
    model = nn.Linear(D, K)
    with pytest.raises(InputError, match="not an instance"):
        PrivacyEngine().make_private_with_epsilon(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
            data_loader=DataLoader(_data(), batch_size=BATCH),
            target_epsilon=1.0,
            target_delta=DELTA,
            epochs=1,
            max_grad_norm=1.0,
            noise=L2Mechanism(M, 1.0),
        )


# ============================================================ checkpoints
def test_checkpoint_of_a_user_mechanism_round_trips_and_needs_it_registered() -> None:
    register_mechanism("lap", sampler=_laplace)
    engine, model, opt = _run("lap")
    buf = io.BytesIO()
    engine.save_checkpoint(path=buf, module=model, optimizer=opt)
    # a fresh run of the same configuration continues from it
    again, model2, opt2 = _run("lap", epochs=0)
    buf.seek(0)
    again.load_checkpoint(path=buf, module=model2, optimizer=opt2)
    assert again.accountant.history == engine.accountant.history
    assert torch.equal(_params(model2), _params(model))
    # without the mechanism registered: one clear error, nothing loaded
    gauss, gmodel, gopt = _run("gaussian", epochs=0)
    before = _params(gmodel).clone()
    unregister_mechanism("lap")
    buf.seek(0)
    with pytest.raises(InputError, match="'lap', which is not registered: register it first"):
        gauss.load_checkpoint(path=buf, module=gmodel, optimizer=gopt)
    assert torch.equal(_params(gmodel), before) and len(gauss.accountant) == 0


def test_checkpoint_refuses_a_name_registered_with_another_label() -> None:
    register_mechanism("lap", sampler=_laplace)
    engine, model, opt = _run("lap")
    buf = io.BytesIO()
    engine.save_checkpoint(path=buf, module=model, optimizer=opt)
    register_mechanism("lap", sampler=_normal, profile=_gauss_profile, replace=True)
    other, model2, opt2 = _run("lap", epochs=0)
    buf.seek(0)
    with pytest.raises(InputError, match="was unverified when saved but is registered as verified"):
        other.load_checkpoint(path=buf, module=model2, optimizer=opt2)


# ============================================================ the training loop
def _loop(noise: str, sigma: float | None = 1.0, **kw: object) -> list[dict]:
    config = TrainConfig(
        noise=noise, sigma=sigma, epochs=2, batch_size=BATCH, lr=0.5, delta=DELTA, **kw
    )
    model = nn.Linear(D, K)
    return train(model, _data(), _data(), config, progress=False)


def test_train_config_runs_user_mechanisms_with_honest_rows() -> None:
    register_mechanism("lap", sampler=_laplace)
    register_mechanism("gauss_prof", sampler=_normal, profile=_gauss_profile)
    rows = _loop("lap")
    assert len(rows) == 2 and all("lap" in r["unverified"] for r in rows)
    assert not any(k.startswith("verified") for r in rows for k in r)
    proven = _loop("gauss-prof", privacy_every=2)  # an alias works too
    assert not any("unverified" in r for r in proven)
    assert math.isfinite(proven[-1]["verified_epsilon"]) and "verified_epsilon" not in proven[0]
    # the harness' path: privacy_every=0 still labels unverified rows
    assert all("unverified" in r for r in _loop("lap", privacy_every=0))


def test_train_config_refuses_unknown_names_and_missing_sigma() -> None:
    register_mechanism("lap", sampler=_laplace)
    with pytest.raises(InputError, match="unknown noise 'nope'; choose one of product, .*lap"):
        TrainConfig(noise="nope", sigma=1.0).validate()
    with pytest.raises(ValueError, match="noise='lap' needs sigma"):
        TrainConfig(noise="lap").validate()
    assert TrainConfig(noise="lap", sigma=1.0).validate().noise == "lap"


def test_scaled_mechanism_base_classes_are_refused() -> None:
    with pytest.raises(InputError, match="not registered"):
        _make(ScaledMechanism, noise_multiplier=1.0)


def test_a_gaussian_instance_takes_opacus_path_and_a_renamed_factory_resolves() -> None:
    from product_noise.mechanisms import Gaussian

    engine, _, opt = _run(Gaussian(M, 1.3), noise_multiplier=None)
    assert engine.noise == "gaussian" and engine.accountant.mechanism() == "prv"
    assert opt.noise_multiplier == 1.3
    from product_noise.mechanisms.custom import make_family

    own = make_family("mine", sampler=_normal, profile=_gauss_profile)
    register_mechanism("renamed", factory=own)  # registers a subclass named "renamed"
    engine, _, _ = _run(own, noise_multiplier=0.7)
    assert engine.noise == "renamed" and engine.accountant.history[0].family == "renamed"


def test_one_engine_does_not_mix_verified_and_unverified_steps() -> None:
    register_mechanism("lap", sampler=_laplace)
    engine, _, _ = _run("lap")
    with pytest.raises(ValueError, match="already accounted 'unverified' steps"):
        _run("l2", engine=engine)
    assert engine.noise == "lap" and isinstance(engine.accountant, UnverifiedNoiseAccountant)
    engine, _, _ = _run("l2", epochs=0)
    engine.accountant.history = [("l2", M, 1.0, 0.125, 1)]
    with pytest.raises(ValueError, match="already accounted 'product-verified' steps"):
        _run("lap", engine=engine)


def test_train_resumes_a_user_mechanism_run_from_its_checkpoint(tmp_path) -> None:
    register_mechanism("lap", sampler=_laplace)

    def run(resume: bool, stop_after: int = 0) -> list[dict]:
        config = TrainConfig(noise="lap", sigma=1.0, epochs=2, batch_size=BATCH, lr=0.5)

        def on_epoch(row: dict) -> None:
            if row["epoch"] == stop_after:
                raise KeyboardInterrupt  # an interrupted run: its checkpoint stays

        torch.manual_seed(0)
        return train(
            nn.Linear(D, K),
            _data(),
            _data(),
            config,
            progress=False,
            on_epoch=on_epoch,
            checkpoint=tmp_path / "ckpt.pt",
            resume=resume,
        )

    whole = run(resume=False)
    (tmp_path / "ckpt.pt").unlink()
    with pytest.raises(KeyboardInterrupt):
        run(resume=False, stop_after=1)
    resumed = run(resume=True)

    def strip(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert strip(resumed) == strip(whole) and "lap" in resumed[-1]["unverified"]


def test_plots_label_an_unverified_run_and_draw_no_epsilon(tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from product_noise.training import plots
    from product_noise.training.loop import save_history

    register_mechanism("lap", sampler=_laplace)
    config = TrainConfig(noise="lap", sigma=1.0, epochs=1, batch_size=BATCH, lr=0.5)
    rows = train(nn.Linear(D, K), _data(), _data(), config, progress=False)
    json_path, _ = save_history(rows, tmp_path, "toy_lap", config)
    fig, ax = plt.subplots()
    plots._draw_epsilon_curves(ax, [plots.load_result(json_path)])
    labels = ax.get_legend_handles_labels()[1]
    plt.close(fig)
    assert labels == ["lap: unverified (no ε exists; audit it)"]
    assert plots._label(plots.load_result(json_path), multi=False) == "lap (σ=1)"
