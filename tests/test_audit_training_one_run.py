"""``product-noise audit-training --method one-run``: one DP-SGD run per row of the 64 → 10
digits model with 650 white-box gradient canaries (Steinke, Nasr, Jagielski 2023).

Fixed seeds (``--seed 0``). The numbers in comments were measured with them (``--quick``:
T = 200, q = 0.025, 400 digits).
"""

from __future__ import annotations

import csv
import math

import pytest

from product_noise.audit import audit_training_one_run, training_one_run
from product_noise.audit.training_one_run import ONE_RUN_DIM, check_one_run
from product_noise.cli import main
from product_noise.validation import InputError

NEW_COLUMNS = ("method", "estimated_epsilon")
KEPT_COLUMNS = ("empirical_lower_bound_epsilon", "verified_epsilon", "claimed_epsilon")


def _rows(out):
    with open(out / "audit_training.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def quick_one_run(tmp_path_factory):
    """The quick one-run report of Gaussian and the paper's product noise (5 rows, ~15 s)."""
    out = tmp_path_factory.mktemp("one-run") / "rep"
    argv = ["audit-training", "--method", "one-run", "--quick", "--seed", "0"]
    assert main([*argv, "--mechanisms", "gaussian", "product-paper", "--out", str(out)]) == 0
    return out, _rows(out)


def test_one_run_csv_has_the_new_columns_next_to_the_old(quick_one_run):
    out, rows = quick_one_run
    header = list(rows[0])
    for col in (*NEW_COLUMNS, *KEPT_COLUMNS, "fdp_lower_bound_epsilon"):
        assert col in header
    lb = header.index("empirical_lower_bound_epsilon")
    assert header[lb + 1] == "estimated_epsilon"
    assert [(r["mechanism"], r["method"]) for r in rows] == [
        ("gaussian", "one-run"),
        ("gaussian", "one-run"),
        ("gaussian", "one-run"),
        ("product-paper", "one-run"),
        ("product-paper", "one-run"),
    ]
    for r in rows:
        assert r["steps"] == "200" and r["canaries"] == str(ONE_RUN_DIM)
        assert r["trials_per_world"] == "" and float(r["sample_rate"]) == 0.025
        assert r["estimated_epsilon"] != "" and float(r["estimated_epsilon"]) > 0
        assert r["threat_model"] == "white-box"
    md = (out / "audit_training.md").read_text(encoding="utf-8")
    assert "| estimate (not a bound) |" in md and "| one-run |" in md
    assert (out / "audit_training.png").stat().st_size > 1000


def test_one_run_gaussian_bounds_never_exceed_verified(quick_one_run):
    # measured (ε = 2, 8, 4): Steinke 0.059, 0.43, 0.24; f-DP 0.075, 0.57, 0.33; verified
    # 1.99, 7.96, 3.98; estimates 1.87, 2.88, 2.33
    _, rows = quick_one_run
    gauss = [r for r in rows if r["mechanism"] == "gaussian"]
    assert [float(r["verified_target_epsilon"]) for r in gauss] == [2.0, 8.0, 4.0]
    for r in gauss:
        verified = float(r["verified_epsilon"])
        assert verified <= float(r["verified_target_epsilon"])
        assert 0.0 <= float(r["empirical_lower_bound_epsilon"]) <= verified
        assert 0.0 <= float(r["fdp_lower_bound_epsilon"]) <= verified
        assert r["claimed_epsilon"] == ""
    assert float(gauss[1]["empirical_lower_bound_epsilon"]) > 0  # ε = 8: the audit sees it


def test_one_run_refutes_the_product_paper_claim(quick_one_run):
    # ε₀ = 0.3 per step, T = 200 at q = 0.025: the paper's composition claims ε = 0.755 at
    # δ = 2.5e-7; the weighted statistic gets 32/32 guesses right: rigorous bound 1.69 at the
    # claim's δ (estimate 3.74). At ε₀ = 1.5 (claimed 7.86) the bound (2.57) does not refute
    # the claim, the estimate (8.73, not a bound) exceeds it.
    _, rows = quick_one_run
    paper = [r for r in rows if r["mechanism"] == "product-paper"]
    for r in paper:
        claimed = float(r["claimed_epsilon"])
        assert float(r["claimed_delta"]) < 1e-5 and math.isinf(float(r["verified_epsilon"]))
        evidence = max(float(r["lower_bound_at_claimed_delta"]), float(r["estimated_epsilon"]))
        assert evidence > claimed
        assert r["fdp_lower_bound_epsilon"] == ""  # the f-DP bound assumes Gaussian noise
    first = paper[0]
    assert float(first["lower_bound_at_claimed_delta"]) > float(first["claimed_epsilon"])
    # the row's target is the paper's per-step ε₀, not the claimed total: no target column
    assert first["claimed_target_epsilon"] == "" and first["verified_target_epsilon"] == ""
    md = (quick_one_run[0] / "audit_training.md").read_text(encoding="utf-8")
    assert "| claimed ε₀ = 0.3 per step |" in md
    assert "the claim is false" in first["verdict"]


def test_multi_run_rows_say_multi_run_and_carry_an_estimate(tmp_path):
    out = tmp_path / "rep"
    argv = ["audit-training", "--mechanisms", "gaussian", "--threat-model", "white-box"]
    argv += ["--steps", "1", "--epsilon", "2", "--trials", "60", "--out", str(out)]
    assert main(argv) == 0
    (row,) = _rows(out)
    assert row["method"] == "multi-run" and row["trials_per_world"] == "60"
    assert row["canaries"] == ""
    # Gaussian multi-run rows carry the μ-GDP bound (Nasr et al. 2023), never above verified
    assert 0 <= float(row["fdp_lower_bound_epsilon"]) <= float(row["verified_epsilon"])
    assert row["estimated_epsilon"] != "" and float(row["estimated_epsilon"]) > 0
    assert float(row["empirical_lower_bound_epsilon"]) <= float(row["verified_epsilon"])


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--canaries", "1"], "canaries must be between 2 and 650"),
        (["--canaries", "651"], "canaries must be between 2 and 650"),
        (["--canaries", "6"], "too few for 95% confidence"),
        (["--trials", "100"], "--trials applies to --method multi-run"),
        (["--sample-rate", "0.0025", "--steps", "100"], "q·T = 0.0025 × 100 = 0.25 < 1"),
        (["--sample-rate", "1.5"], "sample_rate must lie in (0, 1]"),
        (["--threat-model", "final-model-worst-case"], "needs --method multi-run"),
        (["--threat-model", "final-model", "--canaries", "1398"], "between 2 and 1397"),
        (["--mechanisms", "dpmix"], "does not apply to dpmix"),
    ],
    ids=[
        "canaries-1",
        "canaries-651",
        "canaries-6",
        "trials",
        "qT",
        "q>1",
        "worst-case",
        "final-model-canaries",
        "dpmix",
    ],  # fmt: skip
)
def test_one_run_bad_input_exit_2_before_training(tmp_path, capsys, monkeypatch, extra, match):
    def never(*a, **k):
        raise AssertionError("trained despite bad input")

    monkeypatch.setattr(training_one_run, "audit_training_one_run", never)
    out = tmp_path / "rep"
    argv = ["audit-training", "--method", "one-run", "--mechanisms", "gaussian", *extra]
    if "dpmix" in extra:
        argv = ["audit-training", "--method", "one-run", *extra]
    assert main([*argv, "--out", str(out)]) == 2
    assert match in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("flag, value", [("--canaries", "10"), ("--sample-rate", "0.1")])
def test_one_run_options_are_refused_by_multi_run(tmp_path, capsys, flag, value):
    argv = ["audit-training", "--mechanisms", "gaussian", flag, value, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert f"{flag} applies to --method one-run" in _one_error_line(capsys.readouterr().err)


def test_check_one_run_direct():
    assert check_one_run(650, 400, 0.025) == (650, 400, 0.025, 400)
    assert check_one_run(16, 3, 0.4, 10)[2] == pytest.approx(1 / 3)  # batch 4 of 10: 3 batches
    for bad in ((1, 10, 0.5), (651, 10, 0.5), (10, 1, 0.5), (10, 10, 0.0), (True, 10, 0.5)):
        with pytest.raises(InputError):
            check_one_run(*bad)


def test_one_run_unverified_user_mechanism_gets_no_verified_figure(tmp_path, monkeypatch):
    import sys

    (tmp_path / "i19_one_run_lap.py").write_text(
        "from product_noise.mechanisms import register_mechanism\n"
        "register_mechanism('lap', sampler=lambda r, n, d: r.laplace(size=(n, d)))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "i19_one_run_lap", raising=False)
    out = tmp_path / "rep"
    argv = ["--plugin", "i19_one_run_lap", "audit-training", "--method", "one-run"]
    assert main([*argv, "--mechanisms", "lap", "--steps", "40", "--out", str(out)]) == 0
    (row,) = _rows(out)  # the white-box user row only (no final-model row in one run)
    assert row["method"] == "one-run" and row["privacy_label"] == "unverified"
    assert row["verified_epsilon"] == "" and row["empirical_lower_bound_epsilon"] != ""
    assert row["estimated_epsilon"] != "" and row["fdp_lower_bound_epsilon"] == ""


def test_one_run_final_model_input_canaries():
    # black box in one run: 64 mislabelled digits (after the 400 training records) as input
    # canaries, the final model only. A realistic attacker: the bound stays far below the
    # verified ε (here 0), and the row says what it audited.
    res = audit_training_one_run(
        "gaussian", threat_model="final-model", canaries=64, steps=60, epsilon=8.0, seed=1
    )
    assert res.method == "one-run" and res.settings["threat_model"] == "final-model"
    assert "black box" in res.threat_model and "cross-entropy" in res.statistic
    assert res.fdp_bound is None  # white box only
    assert 0 <= res.bound.epsilon <= res.verified.epsilon
    assert res.verified.epsilon == pytest.approx(8.0, rel=0.02)
    assert res.settings["canaries"] == 64 and 0 < res.settings["sample_rate"] < 0.05


def test_final_model_canaries_are_not_training_records():
    # the canaries are "the digits after the training records": none may equal a training
    # digit (regression: they were the tail of a larger draw, which overlaps the training one)

    from product_noise.audit.result import digits_sample

    audit, *_ = training_one_run._final_model(
        "gaussian", 300, 1, 0.025, 8.0, 1e-5, 400, 1.0, 0.5, 0, "loss", 0.95
    )
    train, _ = digits_sample(400, 0)
    seen = {row.tobytes() for row in train}
    shared = sum(row.tobytes() in seen for row in audit.inputs.numpy())
    assert shared == 0
