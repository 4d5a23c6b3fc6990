"""Audits of user mechanisms (issue 17): the sampler audit and the training audit accept any
registered mechanism; an unverified one gets an empirical lower bound and no verified figure
(never a Gaussian figure in its place), at the Gaussian-matched noise multiplier."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

from product_noise.audit import audit_mechanism, audit_mechanisms, audit_training, write_report
from product_noise.audit import result as audit_result
from product_noise.audit.result import MATCHED, TrainingAuditResult
from product_noise.cli import main
from product_noise.mechanisms import (
    MATCHED_TO_GAUSSIAN,
    SGG,
    gaussian_delta,
    get_mechanism,
    register_mechanism,
)
from product_noise.validation import InputError

FAST = {"trials": 20, "steps": 1, "seed": 0}


def _laplace(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.laplace(scale=2**-0.5, size=(n, dim))


@pytest.fixture
def lap() -> str:
    register_mechanism("lap", sampler=_laplace)
    return "lap"


@pytest.fixture
def my_l2() -> str:
    register_mechanism("my_l2", radial=lambda d: SGG(d, d - 1.0, 1.0, 1.0))
    return "my_l2"


# ------------------------------------------------------------------ sampler audit
def test_sampler_audit_of_an_unverified_mechanism_is_a_labelled_lower_bound(lap) -> None:
    mech = get_mechanism(lap).load()(5, 0.3, 1.0)  # little noise: an easy distinction
    res = audit_mechanism(mech, 1.0, n_samples=2000, rng=0)
    assert res.delta_lower > 0.5
    record = res.to_dict()
    assert record["label"] == "empirical lower bound"
    assert str(res).startswith("empirical lower bound")
    assert "verified" not in json.dumps(record, ensure_ascii=False)


# ------------------------------------------------------------------ training audit
def test_the_audited_names_are_read_from_the_registry(lap) -> None:
    assert "lap" in audit_mechanisms()
    assert audit_result.MECHANISMS == audit_mechanisms()
    with pytest.raises(InputError, match="unknown mechanism 'nope'.*lap"):
        audit_training("nope", **FAST)


def test_training_audit_of_an_unverified_mechanism(lap) -> None:
    res = audit_training(lap, epsilon=2.0, **FAST)
    ref = audit_training("gaussian", epsilon=2.0, **FAST)
    assert res.verified is None and res.privacy_label == "unverified"
    assert "no verified" in res.unverified
    # MATCHED_TO_GAUSSIAN: the noise multiplier of the verified Gaussian for the same target
    assert res.settings["noise_multiplier"] == pytest.approx(
        ref.settings["noise_multiplier"], rel=1e-12
    )
    assert MATCHED_TO_GAUSSIAN in res.settings["calibration"]
    assert res.settings["target_label"] == MATCHED and res.target == f"{MATCHED} ε = 2"
    assert "projection" in res.statistic  # no radius law: the projection score
    row = res.to_row()
    assert row["verified_epsilon"] is None and row["verified_target_epsilon"] is None
    assert row["privacy_label"] == "unverified"
    assert row["empirical_lower_bound_epsilon"] == res.bound.epsilon_lower
    assert "verified (ε" not in str(res) and "lower bound ≤ verified" not in res.verdict


def test_training_audit_of_a_user_radial_law_equals_the_builtin(my_l2) -> None:
    mine = audit_training(my_l2, noise_multiplier=0.1, **FAST)  # underscore spelling accepted
    ref = audit_training("l2", noise_multiplier=0.1, **FAST)
    assert mine.mechanism == "my-l2" and mine.privacy_label == "verified"
    assert mine.verified.epsilon == pytest.approx(ref.verified.epsilon, rel=1e-9)
    assert mine.bound.epsilon_lower == pytest.approx(ref.bound.epsilon_lower, rel=1e-9)
    assert mine.statistic == ref.statistic


def test_training_audit_of_a_proven_profile_is_verified_without_a_law() -> None:
    register_mechanism(
        "gauss_profile",
        sampler=lambda r, n, d: r.standard_normal((n, d)),
        profile=lambda eps, d, nm: float(gaussian_delta(eps, 1.0 / nm)),
    )
    mine = audit_training("gauss-profile", noise_multiplier=2.0, **FAST)
    ref = audit_training("gaussian", noise_multiplier=2.0, **FAST)
    assert mine.verified is not None and mine.verified.label == "verified"
    assert mine.verified.epsilon == pytest.approx(ref.verified.epsilon, rel=1e-3)
    assert "projection" in mine.statistic


def test_a_result_has_a_verified_figure_or_says_why_not() -> None:
    res = audit_training("gaussian", noise_multiplier=1.0, **FAST)
    with pytest.raises(ValueError, match="verified figure"):
        TrainingAuditResult(res.mechanism, res.bound, None, None, res.trials, res.steps, "", "")


def test_audit_training_cli_report_never_labels_unverified_verified(
    tmp_path, capsys, monkeypatch
) -> None:
    (tmp_path / "i17_audit_noise.py").write_text(
        "import numpy as np\n"
        "from product_noise.mechanisms import register_mechanism\n"
        "register_mechanism('lap', sampler=lambda r, n, d: r.laplace(size=(n, d)))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "i17_audit_noise", raising=False)
    argv = ["--plugin", "i17_audit_noise", "audit-training", "--mechanisms", "lap"]
    out = tmp_path / "out"
    assert main([*argv, "--trials", "20", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    with open(out / "audit_training.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["mechanism"], r["threat_model"]) for r in rows] == [
        ("lap", "white-box"),
        ("lap", "final-model"),
    ]
    for r in rows:
        assert r["verified_epsilon"] == "" and r["privacy_label"] == "unverified"
        assert r["verified_target_epsilon"] == "" and r["empirical_lower_bound_epsilon"] != ""
    md = (out / "audit_training.md").read_text(encoding="utf-8")
    for text in (printed, md):
        assert "verified (ε" not in text and "lower bound ≤ verified" not in text
        table = [ln for ln in text.splitlines() if ln.startswith("| lap |")]
        assert len(table) == 2 and all("| unverified |" in ln for ln in table)
    assert (out / "audit_training.png").stat().st_size > 0


def test_write_report_plots_rows_without_a_verified_figure(lap, tmp_path) -> None:
    res = audit_training(lap, noise_multiplier=1.0, **FAST)
    paths = write_report([res], tmp_path)
    assert paths["plot"].stat().st_size > 0
