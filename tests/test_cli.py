"""The ``product-noise`` command line and the mechanism table behind it.

Anchors (read-only notes in ``/work/shared/reference``): ``mechanism_anchors.md`` §5 (aGM and ℓ2
E‖n‖ at δ = 1e-5, Δ = 1) and §7 (product noise at the paper's calibration and honestly
calibrated); ``product_noise_paper.md`` §0 item 6 (MNIST DPSGD setting: claimed δ 1.98e-7, true
0.42 at ε₀ = 0.3). Values printed with 4 significant digits are checked to rel 1e-3.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import types
import warnings
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from product_noise import __version__
from product_noise.cli import COMMANDS, Command, main, register
from product_noise.compare.mechanism_table import CALIBRATIONS, COLUMNS, mechanism_table
from product_noise.privacy import PrivacyWarning

ROOT = Path(__file__).resolve().parents[1]
LABELS = {"verified", "claimed (classic)", "claimed (paper)"}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _one(rows: list[dict[str, str]], m: int, eps: float, mechanism: str) -> dict[str, str]:
    (row,) = [
        r
        for r in rows
        if int(r["M"]) == m and float(r["epsilon"]) == eps and r["mechanism"] == mechanism
    ]
    return row


# ---------------------------------------------------------------- mechanisms
@pytest.fixture(scope="module")
def small_table(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """``mechanisms --dims 10 100 --epsilons 1`` run once for the tests below."""
    out = tmp_path_factory.mktemp("table") / "out"
    buf = StringIO()
    with redirect_stdout(buf):
        argv = "mechanisms --dims 10 100 --epsilons 1 --no-progress --out".split()
        rc = main([*argv, str(out)])
    return rc, buf.getvalue(), out


def test_mechanisms_writes_one_row_per_mechanism(small_table):
    rc, stdout, out = small_table
    assert rc == 0
    rows = _rows(out / "mechanisms.csv")
    assert len(rows) == 2 * len(CALIBRATIONS)
    assert {(int(r["M"]), r["mechanism"]) for r in rows} == {
        (m, name) for m in (10, 100) for name in CALIBRATIONS
    }
    assert list(rows[0]) == list(COLUMNS)
    # terminal output: the table, both paths, the plain-language summary
    assert "| M | ε |" in stdout
    assert str(out / "mechanisms.csv") in stdout and str(out / "mechanisms.md") in stdout
    assert "is not what it claims" in " ".join(stdout.split())
    md = (out / "mechanisms.md").read_text(encoding="utf-8")
    assert "**verified**" in md and "**claimed**" in md and "| product_paper |" in md


def test_every_privacy_column_is_labelled(small_table):
    _, _, out = small_table
    rows = _rows(out / "mechanisms.csv")
    # the privacy of the noise lives only in columns named by their label; epsilon/delta are the
    # calibration target, and each row says how it was calibrated
    privacy_cols = [c for c in rows[0] if "delta" in c or "epsilon" in c]
    assert set(privacy_cols) == {"epsilon", "delta", "claimed_delta", "verified_delta"}
    for r in rows:
        assert r["calibration"] in LABELS
        assert r["calibration"] == CALIBRATIONS[r["mechanism"]]
        assert r["verified_delta"] != ""
        # a claimed figure appears exactly on the rows calibrated by a claim
        assert (r["claimed_delta"] != "") == r["calibration"].startswith("claimed")
        if r["calibration"] == "verified":
            assert float(r["verified_delta"]) <= float(r["delta"])
    classic = _one(rows, 100, 1.0, "classic_gaussian")
    assert "outside theorem" in classic["note"]
    paper = _one(rows, 100, 1.0, "product_paper")
    assert "claim false" in paper["note"]


def test_mechanisms_matches_anchor_table_m100(small_table):
    # mechanism_anchors.md §5, M = 100, ε = 1: aGM E‖n‖ 37.21, ℓ2 36.12 (ratio 0.9707)
    _, _, out = small_table
    rows = _rows(out / "mechanisms.csv")
    agm = _one(rows, 100, 1.0, "gaussian")
    l2 = _one(rows, 100, 1.0, "l2")
    assert float(agm["expected_norm"]) == pytest.approx(37.21, rel=1e-3)
    assert float(agm["scale"]) == pytest.approx(3.731, rel=1e-3)
    assert float(l2["expected_norm"]) == pytest.approx(36.12, rel=1e-3)
    assert float(l2["ratio_to_analytic_gaussian"]) == pytest.approx(0.9707, abs=1e-4)
    # §7, M = 100, ε = 1: k 2.464e4, E‖n‖ 4.559, true δ 0.634; honest E‖n‖ 3.807e5
    paper = _one(rows, 100, 1.0, "product_paper")
    assert float(paper["k"]) == pytest.approx(2.464e4, rel=1e-3)
    assert float(paper["expected_norm"]) == pytest.approx(4.559, rel=1e-3)
    assert float(paper["claimed_delta"]) == pytest.approx(1e-5, rel=1e-6)
    assert float(paper["verified_delta"]) == pytest.approx(0.634, rel=2e-3)
    assert float(_one(rows, 100, 1.0, "product")["expected_norm"]) == pytest.approx(
        3.807e5, rel=1e-3
    )


def test_table_matches_anchor_m1e6():
    # mechanism_anchors.md §7, M = 10⁶, ε = 1: paper k 304.8, E‖n‖ 342.2, true δ 0.744;
    # honest E‖n‖ 3.871e7; §5: aGM E‖n‖ 3731. The classic row must not warn (it is marked).
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyWarning)
        rows = mechanism_table(dims=(1_000_000,), epsilons=(1.0,))
    by = {r["mechanism"]: r for r in rows}
    assert by["product_paper"]["k"] == pytest.approx(304.8, rel=1e-3)
    assert by["product_paper"]["expected_norm"] == pytest.approx(342.2, rel=1e-3)
    assert by["product_paper"]["verified_delta"] == pytest.approx(0.744, rel=2e-3)
    assert by["product"]["expected_norm"] == pytest.approx(3.871e7, rel=1e-3)
    assert by["gaussian"]["expected_norm"] == pytest.approx(3731, rel=1e-3)
    assert by["classic_gaussian"]["note"].startswith("outside theorem")


def test_table_marks_mechanisms_that_do_not_exist_at_small_m():
    # M = 1: the spherical profile needs M >= 2 and the paper's formula M > 3
    rows = mechanism_table(dims=(1,), epsilons=(1.0,))
    by = {r["mechanism"]: r for r in rows}
    for name in ("l2", "product", "product_paper"):
        assert by[name]["note"].startswith("n/a:")
        assert by[name]["expected_norm"] is None and by[name]["verified_delta"] is None
    assert by["gaussian"]["verified_delta"] <= 1e-5
    assert by["gaussian"]["expected_norm"] == pytest.approx(2.977, rel=1e-3)  # anchors §5, M = 1


def test_mechanisms_default_out_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["mechanisms", "--dims", "10", "--epsilons", "0.5", "--no-progress"]) == 0
    (run,) = (tmp_path / "runs").glob("mechanisms-*")
    assert (run / "mechanisms.csv").is_file() and (run / "mechanisms.md").is_file()


# ---------------------------------------------------------------- calibrate
def test_calibrate_paper_mnist_setting(capsys):
    # product_noise_paper.md §0 item 6: M = 26010, k = 40000, ε₀ = 0.3 → claimed 1.98e-7, true 0.42
    rc = main("calibrate --mechanism product_paper --epsilon 0.3 --dim 26010 -k 40000".split())
    out = capsys.readouterr().out
    assert rc == 0
    assert "claimed (ε = 0.3, δ = 1.98e-07)" in out
    assert "verified (ε = 0.3, δ = 0.419)" in out
    assert "The claim is false" in out
    assert "E‖n‖²" in out and "sigma = 230.923" in out


def test_calibrate_verified_mechanism(capsys):
    rc = main("calibrate --mechanism gaussian --epsilon 1 --delta 1e-5 --dim 100".split())
    out = capsys.readouterr().out
    assert rc == 0
    assert "sigma = 3.7306" in out and "E‖n‖         37.21" in out
    assert "verified (ε = 1, δ = 1e-05)" in out
    assert "none (no paper claim" in out


def test_calibrate_labels_its_two_verified_figures(capsys):
    # one row is δ at the target ε, the other ε at the target δ: each says which it is
    rc = main("calibrate --mechanism gaussian --epsilon 1e4 --delta 1e-5 --dim 100".split())
    out = capsys.readouterr().out
    assert rc == 0
    rows = [ln for ln in out.splitlines() if ln.startswith("verified")]
    assert len(rows) == 2 and rows[0] != rows[1]
    assert rows[0].startswith("verified δ") and "δ(ε) at the target ε = 10000" in rows[0]
    assert rows[1].startswith("verified ε") and "whose exact δ(ε) ≤ the target δ" in rows[1]
    assert "verified (ε = 1e+04, δ = 1e-05)" in rows[0] and "ε = inf" not in out


def test_calibrate_refuses_epsilon_beyond_the_profile(capsys):
    # ε(δ) is searched up to 1e4: a larger target would print ε = 1e6 next to ε = inf
    rc = main("calibrate --mechanism gaussian --epsilon 1e6 --delta 1e-5 --dim 1000".split())
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert captured.err.startswith("error: --epsilon 1e+06 is beyond the largest ε")
    assert "--epsilon ≤ 10000" in captured.err and captured.err.count("\n") == 1


def test_calibrate_classic_outside_theorem_warns_one_line(capsys):
    rc = main("calibrate --mechanism classic_gaussian --epsilon 2 --delta 1e-5 --dim 100".split())
    captured = capsys.readouterr()
    assert rc == 0
    assert captured.err.startswith("warning: classic Gaussian calibration")
    assert captured.err.count("\n") == 1
    assert "claimed (ε = 2, δ = 1e-05)" in captured.out
    assert "outside the Dwork-Roth theorem" in captured.out


# ---------------------------------------------------------------- audit
def test_audit_reports_false_claim_with_stub(monkeypatch, capsys):
    """The audit subcommand's wording, independent of the sampler (stub ``audit_mechanism``)."""
    calls = {}

    def audit_mechanism(mechanism, epsilon, *, n_samples, confidence, rng, progress):
        calls.update(mechanism=mechanism, epsilon=epsilon, n_samples=n_samples)
        return types.SimpleNamespace(
            epsilon=epsilon,
            delta_lower=0.5,
            confidence=confidence,
            test="halfspace",
            p_hat=0.6,
            p_prime_hat=0.03,
            n_samples=n_samples,
            params={},
        )

    monkeypatch.setattr("product_noise.audit.audit_mechanism", audit_mechanism)
    rc = main(
        "audit --mechanism product_paper --dim 100 --epsilon 1 --samples 1000 --seed 3".split()
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert calls["n_samples"] == 1000 and calls["epsilon"] == 1.0
    assert calls["mechanism"].claimed().delta == pytest.approx(1e-5)
    assert "claimed (ε = 1, δ = 1e-05)" in out and "verified (ε = 1, δ = 0.634)" in out
    assert "The claim is false" in out


def test_audit_product_paper_real_sampler(capsys):
    rc = main(
        "audit --mechanism product_paper --dim 100 --epsilon 1 --samples 2000 --seed 0".split()
    )
    captured = capsys.readouterr()
    assert rc == 0
    assert "empirical lower bound" in captured.out
    assert "claimed (ε = 1, δ = 1e-05)" in captured.out
    assert "The claim is false" in captured.out


# ---------------------------------------------------------------- help, version, errors
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_for_each_subcommand(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: product-noise {command}")
    assert "examples:" in out


def test_top_level_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"product-noise {__version__}"
    assert main([]) == 2


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (
            "calibrate --mechanism gaussian --epsilon -1 --delta 1e-5 --dim 10",
            "epsilon must be > 0",
        ),
        (
            "calibrate --mechanism gaussian --epsilon 1 --delta 1.5 --dim 10",
            "strictly between 0 and 1",
        ),
        (
            "calibrate --mechanism laplace --epsilon 1 --delta 1e-5 --dim 10",
            "invalid choice: 'laplace'",
        ),
        ("calibrate --mechanism gaussian --epsilon 1 --dim 10", "--delta is required"),
        ("calibrate --mechanism product_paper --epsilon 1 --dim 10 -k 0.5", "k must be > 1"),
        ("calibrate --mechanism l2 --epsilon 1 --delta 1e-5 --dim 10 -k 5", "-k applies only"),
        ("mechanisms --epsilons abc", "not a number"),
        ("mechanisms --delta 0", "delta must lie strictly between 0 and 1"),
        ("audit --mechanism gaussian --dim 10 --epsilon 0", "epsilon must be > 0"),
        ("frobnicate", "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_exits_2_with_one_line(cmdline, expected, capsys):
    assert main(cmdline.split()) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    assert captured.err.count("\n") == 1
    assert expected in captured.err


def test_console_entry_has_no_traceback():
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "product_noise.cli",
            "calibrate",
            "--mechanism",
            "gaussian",
            "--epsilon",
            "nan",
            "--delta",
            "1e-5",
            "--dim",
            "10",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: argument --epsilon") and "Traceback" not in proc.stderr


def test_registry_rejects_duplicate_names():
    existing = next(iter(COMMANDS.values()))
    with pytest.raises(ValueError, match="already registered"):
        register(Command(existing.name, "h", "d", existing.add_arguments, existing.run))
