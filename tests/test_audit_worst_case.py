"""Tests of the black-box DP-SGD audit from worst-case initial parameters
(``threat_model="final-model-worst-case"``; Annamalai and De Cristofaro, NeurIPS 2024,
arXiv:2405.14106).

Fixed seeds, 32 digits, a few hundred runs per world: a few seconds in all.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from product_noise.audit import audit_training
from product_noise.audit.dpsgd import WORST_CASE, _DPSGDRun
from product_noise.audit.result import digits_sample
from product_noise.audit.worst_case import mean_gradient, worst_case_label, worst_case_theta0
from product_noise.cli import main
from product_noise.validation import InputError

torch.set_num_threads(1)


def _worst_case_run() -> _DPSGDRun:
    """The audit's run on 32 digits (data seed 0) from the worst-case θ₀, Gaussian σ = C."""
    return _DPSGDRun(
        "gaussian",
        {"noise": "gaussian", "noise_multiplier": 1.0},
        n_records=32,
        max_grad_norm=1.0,
        lr=0.5,
        data_seed=0,
        noise_seed=1,
        threat_model=WORST_CASE,
    )


def test_theta0_is_a_near_stationary_point_of_the_known_records() -> None:
    """The known records' mean cross-entropy gradient at θ₀ has norm < 1e-8 (it is 0.78 at
    θ = 0), deterministically, and the audited model starts exactly there."""
    X, y = digits_sample(32, 0)
    theta0 = worst_case_theta0(X, y)
    assert np.linalg.norm(mean_gradient(np.zeros_like(theta0), X, y)) > 0.1
    assert np.linalg.norm(mean_gradient(theta0, X, y)) < 1e-8
    np.testing.assert_array_equal(theta0, worst_case_theta0(X, y))
    run = _worst_case_run()
    np.testing.assert_array_equal(run._flat().numpy(), theta0)
    np.testing.assert_array_equal(run.X[:-1].numpy(), X)  # the known records, then the canary


def test_canary_is_all_ones_with_the_least_likely_label() -> None:
    X, y = digits_sample(32, 0)
    theta0 = worst_case_theta0(X, y)
    W, b = theta0[:640].reshape(10, 64), theta0[640:]
    probs = torch.softmax(torch.from_numpy(W @ np.ones(64) + b), 0).numpy()
    label = worst_case_label(theta0, np.ones(64))
    assert label == int(np.argmin(probs)) and probs[label] < 1e-3
    run = _worst_case_run()
    assert int(run.y[-1]) == label and torch.all(run.X[-1] == 1.0)


def test_worst_case_init_beats_the_plain_final_model_and_stays_valid() -> None:
    """Gaussian, verified ε = 4, one step, 200 runs per world, seed 0: the worst-case bound
    (0.75 at this seed) is above the plain final-model one (0.46), both ≤ the verified ε."""
    kw = {"trials": 200, "steps": 1, "epsilon": 4.0, "seed": 0}
    plain = audit_training("gaussian", threat_model="final-model", **kw)
    worst = audit_training("gaussian", threat_model=WORST_CASE, **kw)
    assert worst.verified.epsilon == pytest.approx(plain.verified.epsilon)
    assert plain.bound.epsilon_lower < worst.bound.epsilon_lower <= worst.verified.epsilon
    assert worst.settings["threat_model"] == WORST_CASE
    assert "worst-case initial parameters" in worst.threat_model
    assert worst.verdict.startswith("lower bound ≤ verified: consistent")
    assert str(worst).startswith("gaussian (final-model-worst-case, verified ε = 4, T = 1): ")


@pytest.mark.parametrize(
    ("mechanism", "kwargs", "match"),
    [
        ("dpmix", {"threat_model": WORST_CASE}, "does not apply to dpmix"),
        ("gaussian", {"threat_model": WORST_CASE, "n_records": 1798}, "at most 1797"),
    ],
)
def test_bad_input(mechanism: str, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        audit_training(mechanism, trials=20, **kwargs)


def test_cli_worst_case_row(tmp_path, capsys) -> None:
    argv = ["audit-training", "--mechanisms", "gaussian", "--threat-model", WORST_CASE]
    assert main([*argv, "--trials", "20", "--n-records", "40", "--out", str(tmp_path)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("gaussian (")]
    assert lines and all(ln.startswith(f"gaussian ({WORST_CASE}, ") for ln in lines)
    assert main([*argv, "--method", "one-run", "--out", str(tmp_path)]) == 2
    assert main([*argv, "--n-records", "5000", "--out", str(tmp_path)]) == 2
    assert "at most 1797" in capsys.readouterr().err


def test_cli_threat_model_applies_to_a_mechanism_without_such_a_standard_row(tmp_path) -> None:
    # l2 has only a white-box standard row: --threat-model final-model-worst-case runs that
    # row under the asked threat model (it used to leave an empty plan: "internal error")
    import csv

    from product_noise.cli import main

    out = tmp_path / "o"
    argv = ["audit-training", "--mechanisms", "l2", "--threat-model", "final-model-worst-case"]
    assert main([*argv, "--trials", "40", "--out", str(out)]) == 0
    with open(out / "audit_training.csv", newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["mechanism"] == "l2" and "worst-case" in row["threat_model"]
