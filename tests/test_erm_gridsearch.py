"""``product-noise gridsearch`` and ``product-noise preprocess`` end to end (small and fast)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from product_noise.cli import main
from product_noise.erm import gridsearch as gs

_ADULT_ROWS = [
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
    "Male, 2174, 0, 40, United-States, <=50K",
    "50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, "
    "White, Male, 0, 0, 13, United-States, >50K",
    "38, Private, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, White, Male, "
    "0, 0, 40, ?, <=50K",
    "53, Private, 234721, 11th, 7, Married-civ-spouse, Handlers-cleaners, Husband, Black, Male, "
    "0, 0, 40, United-States, <=50K",
    "28, Private, 338409, Bachelors, 13, Married-civ-spouse, Prof-specialty, Wife, Black, "
    "Female, 0, 0, 40, Cuba, >50K",
]
_ADULT_TEST = [
    "|1x3 Cross validator",
    "25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, "
    "0, 0, 40, United-States, <=50K.",
    "44, Private, 160323, Some-college, 10, Married-civ-spouse, Machine-op-inspct, Husband, "
    "Black, Male, 7688, 0, 40, United-States, >50K.",
]


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_gridsearch_synthetic_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "gs"
    argv = ["gridsearch", "output", "synthetic_l", "LR", "--max-train", "400", "--repeats", "1"]
    argv += ["--epsilons", "0.5", "5", "--out", str(out), "--no-progress", "--seed", "3"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "NOT a private" in text and "non-private" in text

    runs = _read(out / "runs.csv")
    assert len(runs) == 2 * len(gs.grid_for("output")) * 1
    for col in ("claimed_epsilon", "claimed_delta", "verified_epsilon", "verified_delta"):
        assert col in runs[0]
    assert "epsilon" not in runs[0]  # no bare ε column
    assert all(r["status"] == "ok" for r in runs)
    assert {float(r["target_delta"]) for r in runs} == {1.0 / 400**2}
    for r in runs:  # analytic Gaussian: verified at the target
        assert float(r["verified_epsilon"]) == pytest.approx(float(r["target_epsilon"]), rel=1e-6)

    summary = _read(out / "summary.csv")
    assert len(summary) == 2
    for s in summary:
        assert float(s["best_over_grid_accuracy_mean"]) >= float(s["fixed_accuracy_mean"])
        assert 0.5 < float(s["non_private_accuracy"]) <= 1.0
    # the fixed accuracy is the mean of the fixed rows
    fixed = [float(r["accuracy"]) for r in runs if r["fixed_config"] == "1"]
    assert float(summary[0]["fixed_accuracy_mean"]) == pytest.approx(fixed[0])
    png = out / "accuracy_vs_epsilon.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gridsearch_amp_nt_product_paper_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "amp"
    argv = ["gridsearch", "amp-nt", "synthetic_l", "SVM", "--max-train", "300", "--repeats", "2"]
    argv += ["--epsilons", "1", "--noise", "product_paper", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert "note: the claimed δ of product_paper" in capsys.readouterr().out
    runs = _read(out / "runs.csv")
    assert len(runs) == 2
    for r in runs:
        assert r["amp_eps_frac"] == "strategy1"
        # the paper's calibration claims the target; the verified ε is far larger
        assert float(r["claimed_epsilon"]) == pytest.approx(1.0)
        assert float(r["verified_epsilon"]) > 1.0


def test_grids_contain_fixed() -> None:
    for alg in gs.ALGORITHMS:
        grid = gs.grid_for(alg)
        assert grid[0] == gs.FIXED[alg]
        assert len({gs.config_label(g) for g in grid}) == len(grid)
    assert len(gs.grid_for("amp")) == 5 * 4 * 3


@pytest.mark.parametrize(
    "argv",
    [
        ["gridsearch", "foo", "synthetic_l", "LR"],
        ["gridsearch", "amp", "nosuchdata", "LR"],
        ["gridsearch", "amp", "synthetic_l", "XX"],
        ["gridsearch", "amp", "synthetic_l", "LR", "--epsilons", "0"],
        ["gridsearch", "amp", "synthetic_l", "LR", "--epsilons", "1", "-0.5"],
        ["gridsearch", "amp", "synthetic_l", "LR", "--repeats", "0"],
        ["gridsearch", "amp", "adult", "LR"],  # needs --root
        ["preprocess", "nosuchdata", "--root", "."],
        ["preprocess", "all"],  # needs --root
    ],
)
def test_bad_input_exit_2_before_fitting(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitting started")

    monkeypatch.setattr(gs, "run_gridsearch", boom)
    assert main(argv) == 2
    assert "error:" in capsys.readouterr().err


def _adult_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "adult.data").write_text("\n".join(_ADULT_ROWS) + "\n\n", encoding="utf-8")
    (root / "adult.test").write_text("\n".join(_ADULT_TEST) + "\n", encoding="utf-8")
    return root


def test_preprocess_adult_fixture(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _adult_fixture(tmp_path / "data" / "adult")
    cache = tmp_path / "cache"
    # ROOT/adult layout
    assert main(["preprocess", "adult", "--root", str(root.parent), "--cache", str(cache)]) == 0
    text = capsys.readouterr().out
    assert "adult: 6 × " in text  # the row with '?' is dropped
    files = list(cache.glob("adult-*.npz"))
    assert len(files) == 1 and str(files[0]) in text
    with np.load(files[0]) as z:
        assert z["X_train"].shape[0] + z["X_test"].shape[0] == 6
    # files directly in --root, cached copy reused
    assert main(["preprocess", "adult", "--root", str(root), "--cache", str(cache)]) == 0
    assert len(list(cache.glob("adult-*.npz"))) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["preprocess", "adult"],
        ["gridsearch", "output", "adult", "LR", "--epsilons", "1", "--repeats", "1"],
    ],
)
def test_truncated_adult_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str]
) -> None:
    root = _adult_fixture(tmp_path / "adult")
    cut = ", ".join(_ADULT_ROWS[4].split(", ")[:3])  # the file ends inside its 5th row
    (root / "adult.data").write_text("\n".join([*_ADULT_ROWS[:4], cut]), encoding="utf-8")
    extra = ["--root", str(root), "--cache", str(tmp_path / "cache")]
    if argv[0] == "gridsearch":
        extra += ["--out", str(tmp_path / "out")]
    assert main([*argv, *extra]) != 0
    captured = capsys.readouterr()
    expected = f"{root / 'adult.data'}, line 5: expected 15 comma-separated fields, got 3"
    assert expected in captured.out + captured.err


def test_preprocess_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _adult_fixture(tmp_path / "data" / "adult")
    cache = tmp_path / "cache"
    code = main(["preprocess", "kddcup99", "--root", str(root.parent), "--cache", str(cache)])
    assert code == 2  # missing data is bad input
    text = capsys.readouterr().out
    assert "kddcup.data_10_percent.gz" in text and "Upstream" in text


def test_preprocess_all_continues_after_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from product_noise.cli import erm as ecli

    # keep it fast: adult (fixture), kddcup99 (missing) and synthetic_l
    monkeypatch.setattr(ecli, "DATASETS", ("adult", "kddcup99", "synthetic_l"))
    root = _adult_fixture(tmp_path / "data" / "adult")
    cache = tmp_path / "cache"
    code = main(["preprocess", "all", "--root", str(root.parent), "--cache", str(cache)])
    assert code == 2
    text = capsys.readouterr().out
    assert "adult: 6 × " in text
    assert "kddcup99: MISSING" in text
    assert "synthetic_l: 10000 × 40" in text
    assert "1 of 3 dataset(s) failed: kddcup99" in text


def test_gridsearch_plot_puts_verified_and_claimed_epsilon_on_the_axis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 15, item 9: the plot showed only the claimed ε (product noise at the paper's ε = 1
    # has a verified ε of 711–927); now every point sits at its verified ε, the claimed ε is a
    # hollow marker beside it
    import matplotlib.figure

    figures: list = []
    real_savefig = matplotlib.figure.Figure.savefig

    def capture(self, *args, **kwargs):
        figures.append(self)
        return real_savefig(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", capture)
    out = tmp_path / "gs"
    argv = ["gridsearch", "output", "synthetic_l", "LR", "--max-train", "300", "--repeats", "1"]
    argv += ["--epsilons", "1", "--noise", "product_paper", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    summary = _read(out / "summary.csv")
    verified = float(summary[0]["best_over_grid_verified_epsilon"])
    claimed = float(summary[0]["best_over_grid_claimed_epsilon"])
    assert verified > 10 * claimed  # the paper's claim is far off here
    (ax,) = figures[-1].axes
    assert "verified ε" in ax.get_xlabel() and "claimed ε" in ax.get_xlabel()
    xs = [x for line in ax.get_lines() for x in np.atleast_1d(line.get_xdata())]
    hollow = [
        x
        for line in ax.get_lines()
        if line.get_markerfacecolor() == "none"
        for x in np.atleast_1d(line.get_xdata())
    ]
    assert claimed in hollow
    assert any(math.isclose(x, verified, rel_tol=1e-9) for x in xs) or math.isinf(verified)
