"""User mechanisms on the command line (issue 17): ``--plugin``, ``PRODUCT_NOISE_PLUGINS``, the
registry in ``--help``, ``calibrate``/``audit``/``mechanisms`` with user names, and honest labels:
an unverified mechanism is never shown as verified."""

from __future__ import annotations

import csv
import re
import sys
import textwrap
from pathlib import Path

import pytest

from product_noise.cli import main
from product_noise.mechanisms import SGG, Gaussian, register_mechanism

PLUGIN = "i17_user_noise"
SOURCE = textwrap.dedent(
    """
    import numpy as np

    from product_noise.mechanisms import SGG, register_mechanism

    register_mechanism(
        "my_l2", radial=lambda d: SGG(d, d - 1.0, 1.0, 1.0), description="the l2 law, again"
    )
    register_mechanism(
        "lap",
        sampler=lambda r, n, d: r.laplace(scale=2**-0.5, size=(n, d)),
        description="i.i.d. Laplace, 100% unproven",
    )


    def claimed():
        register_mechanism(
            "lap_claimed",
            sampler=lambda r, n, d: r.laplace(scale=2**-0.5, size=(n, d)),
            claim=lambda eps, delta, dim: float(np.sqrt(dim) / eps),
        )
    """
)
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A plugin module on ``sys.path``, imported afresh by each test."""
    (tmp_path / f"{PLUGIN}.py").write_text(SOURCE, encoding="utf-8")
    (tmp_path / "i17_broken_noise.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in (PLUGIN, "i17_broken_noise"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delenv("PRODUCT_NOISE_PLUGINS", raising=False)
    return PLUGIN


def _rows(out: str) -> dict[str, str]:
    """``calibrate``'s ``key  value`` rows (up to the first blank line)."""
    rows = {}
    for line in out.split("\n\n")[0].splitlines():
        key, _, value = line.partition("  ")
        rows[key.strip()] = value.strip()
    return rows


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def _never_verified(text: str) -> None:
    """No verified figure and no verified label in ``text``."""
    assert "verified (ε" not in text
    assert "verified δ" not in text and "verified ε" not in text


# ------------------------------------------------------------------ calibrate
def test_calibrate_user_radial_law_prints_the_builtin_numbers(plugin, capsys) -> None:
    target = ["--epsilon", "1", "--delta", "1e-5", "--dim", "50"]
    assert main(["--plugin", plugin, "calibrate", "--mechanism", "my-l2", *target]) == 0
    mine = _rows(capsys.readouterr().out)
    assert main(["calibrate", "--mechanism", "l2", *target]) == 0
    ref = _rows(capsys.readouterr().out)
    assert mine.keys() == ref.keys() and "verified ε" in mine
    assert mine["mechanism"].startswith("my_l2: ")
    assert mine["calibration"] == ref["calibration"] == "verified"
    for key in ref:
        if key != "mechanism":
            assert NUMBER.findall(mine[key]) == NUMBER.findall(ref[key]), key


def test_plugins_from_the_environment(plugin, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PRODUCT_NOISE_PLUGINS", f" ,{plugin}, ")
    argv = ["calibrate", "--mechanism", "my_l2", "--epsilon", "1", "--delta", "1e-5"]
    assert main([*argv, "--dim", "20"]) == 0
    assert _rows(capsys.readouterr().out)["calibration"] == "verified"


def test_calibrate_unverified_is_one_line_exit_2(plugin, capsys) -> None:
    argv = ["--plugin", plugin, "calibrate", "--mechanism", "lap", "--epsilon", "1"]
    assert main([*argv, "--delta", "1e-5", "--dim", "20"]) == 2
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert "'lap' is unverified" in line and "no verified calibration" in line
    assert out == ""


def test_calibrate_unverified_with_a_claim_shows_it_claimed(plugin, capsys) -> None:
    argv = ["--plugin", f"{plugin}:claimed", "calibrate", "--mechanism", "lap-claimed"]
    assert main([*argv, "--epsilon", "2", "--delta", "1e-5", "--dim", "16"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows["calibration"].startswith("claimed: ")
    assert rows["scale"] == "scale = 2"  # the claim: √16 / 2
    assert rows["claimed"].startswith("claimed (ε = 2, δ = 1e-05)")
    assert rows["verified"].startswith("none: unverified")
    _never_verified(out)


# ------------------------------------------------------------------ audit
def test_audit_unverified_gives_a_labelled_lower_bound_only(plugin, capsys) -> None:
    argv = ["--plugin", plugin, "audit", "--mechanism", "lap", "--dim", "10", "--epsilon", "1"]
    assert main([*argv, "--samples", "500", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    rows = dict(
        (k.strip(), v.strip())
        for k, _, v in (ln.partition("  ") for ln in out.splitlines()[1:5] if ln.strip())
    )
    assert rows["audit"].startswith("empirical lower bound (ε = 1, δ ≥ ")
    assert rows["verified"].startswith("none: unverified")
    assert rows["calibration"].startswith("unverified: run at the noise multiplier")
    # MATCHED_TO_GAUSSIAN: the scale is the verified Gaussian's σ for the target
    sigma = Gaussian.calibrate(1.0, 1e-5, 10).sigma
    assert f"LapMechanism(M=10, scale={sigma:g}, Δ=1)" in out.splitlines()[0]
    assert "the only privacy evidence" in out
    _never_verified(out)


def test_audit_user_radial_law_is_compared_with_its_verified_delta(plugin, capsys) -> None:
    argv = ["--plugin", plugin, "audit", "--mechanism", "my_l2", "--dim", "10", "--epsilon", "1"]
    assert main([*argv, "--samples", "500", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "verified  verified (ε = 1, δ = 1e-05)" in out
    assert "consistent with the verified δ" in out


# ------------------------------------------------------------------ help
def test_help_lists_the_registry_with_labels(plugin, capsys) -> None:
    assert main(["--plugin", plugin, "--help"]) == 0
    top = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in top.splitlines() if ln.startswith("  ") and ln.split()}
    assert lines["my_l2"].split()[1] == "verified" and "the l2 law, again" in lines["my_l2"]
    assert lines["lap"].split()[1] == "unverified" and "100% unproven" in lines["lap"]
    assert lines["product_paper"].split()[1] == "claimed"
    assert "[user]" in lines["lap"] and "[user]" not in lines["gaussian"]
    for command in ("calibrate", "audit", "audit-training"):
        assert main(["--plugin", plugin, command, "--help"]) == 0
        text = "".join(capsys.readouterr().out.split())  # argparse wraps (also at hyphens)
        if command == "audit-training":
            assert "lap(unverified)" in text and "my-l2(verified)" in text
        else:
            assert "lap=i.i.d.Laplace,100%unproven(unverified)" in text
            assert "my_l2=thel2law,again(verified)" in text


def test_user_names_are_offered_only_once_registered(capsys) -> None:
    from product_noise.cli import common

    assert "my_l2" not in common.mechanism_choices()
    argv = ["calibrate", "--mechanism", "my_l2", "--epsilon", "1", "--delta", "1e-5"]
    assert main([*argv, "--dim", "20"]) == 2
    assert "invalid choice: 'my_l2'" in _one_error_line(capsys.readouterr().err)
    register_mechanism("my_l2", radial=lambda d: SGG(d, d - 1.0, 1.0, 1.0))
    assert "my_l2" in common.mechanism_choices() and "my_l2" in common.MECHANISM_CHOICES
    assert "my_l2 = user mechanism" in common.mechanism_help()


# ------------------------------------------------------------------ bad plugins
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--plugin", "i17_no_such_module", "--help"], ["i17_no_such_module"]),
        (["--plugin", "i17_broken_noise", "--help"], ["i17_broken_noise", "RuntimeError", "boom"]),
        (["--plugin", f"{PLUGIN}:nothing", "--help"], ["nothing"]),
        (["--plugin", ":x", "--help"], ["MODULE or MODULE:CALLABLE"]),
        (["calibrate", "--plugin", PLUGIN, "--mechanism", "l2"], ["goes before the command"]),
    ],
    ids=["missing", "raises", "no-callable", "malformed", "after-command"],
)
def test_bad_plugin_is_one_line_exit_2(plugin, capsys, argv, words) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert all(w in line for w in words), line
    assert out == ""


# ------------------------------------------------------------------ mechanism table
def test_mechanisms_command_labels_user_rows(plugin, capsys, tmp_path) -> None:
    out_dir = tmp_path / "table"
    argv = ["--plugin", plugin, "mechanisms", "--dims", "20", "--epsilons", "1", "--no-progress"]
    assert main([*argv, "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    with open(out_dir / "mechanisms.csv", encoding="utf-8") as fh:
        rows = {r["mechanism"]: r for r in csv.DictReader(fh)}
    assert rows["my_l2"]["calibration"] == "verified"
    for col in ("scale", "expected_norm", "verified_delta"):
        assert float(rows["my_l2"][col]) == pytest.approx(float(rows["l2"][col]), rel=1e-9)
    lap = rows["lap"]
    assert lap["calibration"] == "unverified" and lap["verified_delta"] == ""
    assert lap["note"].startswith("unverified: ")
    assert float(lap["scale"]) == pytest.approx(float(rows["gaussian"]["scale"]), rel=1e-12)
    md_row = next(ln for ln in printed.splitlines() if "| lap |" in ln)
    cells = [c.strip() for c in md_row.strip("|").split("|")]
    assert cells[3] == "unverified" and cells[9] == "unverified"  # label; verified δ column
    assert "lap is unverified" in " ".join(printed.split())


def test_bad_plugin_in_the_environment_is_one_line_exit_2(plugin, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PRODUCT_NOISE_PLUGINS", "i17_broken_noise")
    assert main(["mechanisms", "--help"]) == 2
    assert "i17_broken_noise" in _one_error_line(capsys.readouterr().err)


def test_a_broken_entry_point_plugin_is_one_warning_line(capsys, monkeypatch) -> None:
    import warnings

    from product_noise.cli import plugins

    def specs_with_a_broken_plugin(*args, **kwargs):
        msg = "mechanism plugin 'x' (x:y) failed to load: boom"
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return ()

    monkeypatch.setattr(plugins, "mechanism_specs", specs_with_a_broken_plugin)
    assert plugins.load_cli_plugins([]) == []
    err = capsys.readouterr().err
    assert err == "warning: mechanism plugin 'x' (x:y) failed to load: boom\n"


def test_gridsearch_offers_user_erm_noises(capsys) -> None:
    from product_noise.cli import build_parser

    register_mechanism("my_l2", radial=lambda d: SGG(d, d - 1.0, 1.0, 1.0))
    args = build_parser().parse_args(["gridsearch", "output", "adult", "LR", "--noise", "my-l2"])
    assert args.noise == "my_l2"
