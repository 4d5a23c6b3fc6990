"""The five DP-SGD example scripts: one epoch on tiny same-format fixtures, every noise (and
``dpmix_mnist.py --epsilon``: a DPMix release calibrated to a verified ε).

The scripts' ``main(argv)`` is called in-process. Each run checks the paper's parameter count,
the saved JSON/CSV, the labelled privacy figures (claimed and verified for product noise,
verified for Gaussian, none without DP) and the printed line.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_dpsgd_data import (
    ADULT_FIXTURE_D,
    write_aclimdb,
    write_adult,
    write_cifar,
    write_imdb_labelled,
    write_mnist,
    write_ratings_dat,
    write_u_data,
)

from product_noise.data.loaders import DatasetNotFoundError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# script, fixture writer, extra argv, expected parameter count
CASES: dict[str, tuple[str, Any, list[str], int]] = {
    "mnist": ("mnist", lambda r: write_mnist(r, layout="torchvision", gz=True), [], 26_010),
    "mnist-raw-flat": (
        "mnist",
        lambda r: write_mnist(r, layout="flat", gz=False),
        [],
        26_010,
    ),
    "mnist-test-split": (
        "mnist",
        lambda r: write_mnist(r, n_train=0, n_test=50),
        ["--train-on-test-split"],
        26_010,
    ),
    "cifar10": ("cifar10", write_cifar, [], 131_466),
    "adult": ("adult", write_adult, [], 16 * ADULT_FIXTURE_D + 50),
    "adult-uci": ("adult", write_adult, ["--split", "uci"], 16 * ADULT_FIXTURE_D + 50),
    "imdb-aclimdb": ("imdb", write_aclimdb, ["--max-sequence-length", "32"], 464_242),
    "imdb-labelled": ("imdb", write_imdb_labelled, ["--max-sequence-length", "32"], 464_242),
    "movielens-1m": ("movielens", write_ratings_dat, ["--batch-size", "64"], 146_320),
    "movielens-100k": ("movielens", write_u_data, [], 15 * (30 + 50) + 130),
}

# every script with every noise; the extra layouts once each (with the cheapest noise mix)
RUNS = [
    (s, n)
    for s in ("mnist", "cifar10", "adult", "imdb-labelled", "movielens-1m")
    for n in ("product", "gaussian", "none")
] + [
    ("mnist-raw-flat", "none"),
    ("mnist-test-split", "none"),
    ("adult-uci", "gaussian"),
    ("imdb-aclimdb", "none"),
    ("movielens-100k", "none"),  # product and gaussian: test_disable_dp_alias_and_plot
]


def _argv(tmp_path: Path, case: str, noise: str, extra: list[str]) -> list[str]:
    return [
        "--data-root",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
        "--noise",
        noise,
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--no-progress",
        *extra,
    ]


@pytest.mark.parametrize(("case", "noise"), RUNS, ids=[f"{c}-{n}" for c, n in RUNS])
def test_script_one_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, noise: str
) -> None:
    script, writer, extra, dim = CASES[case]
    writer(tmp_path / "data")
    res = _script(script).main(_argv(tmp_path, case, noise, extra))
    assert res["dim"] == dim
    (row,) = res["history"]
    assert row["dim"] == dim and row["noise"] == noise
    metric = "rmse" if script == "movielens" else "accuracy"
    assert math.isfinite(row[f"train_{metric}"]) and math.isfinite(row[f"test_{metric}"])
    saved = json.loads(Path(res["json"]).read_text())
    assert saved["config"]["noise"] == noise and saved["config"]["extra"]["dim"] == dim
    assert saved["config"]["poisson_sampling"] is True  # IMDB included (official: False)
    assert Path(res["csv"]).read_text().startswith("epoch,")
    out = capsys.readouterr().out
    assert f"M = {dim:,} parameters" in out
    if noise == "product":
        assert {"verified_epsilon", "claimed_source", "verified_source"} <= set(row)
        assert "claimed" in out and "verified ε=" in out
    elif noise == "gaussian":
        assert math.isfinite(row["verified_epsilon"]) and "claimed_epsilon" not in row
        assert "Opacus" in row["verified_source"] and "claimed" not in out.split("noise:")[1]
    else:
        assert not any(k.endswith("epsilon") for k in row)
        assert "non-private" in out
    if case == "mnist-test-split":
        assert "NOTE: trained on 40 of the 50 test images" in out


def test_disable_dp_alias_and_plot(tmp_path: Path) -> None:
    write_u_data(tmp_path / "data")
    mod = _script("movielens")
    base = _argv(tmp_path, "movielens-100k", "product", [])
    mod.main(base)
    gauss = [a if a != "product" else "gaussian" for a in base]
    mod.main(gauss)
    res = mod.main(
        [a for a in base if a not in ("--noise", "product")] + ["--disable-dp", "--plot"]
    )
    assert res["history"][0]["noise"] == "none"
    png = Path(res["png"])
    assert png.is_file() and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same figure from the command line, and a clear error for a non-result file
    from product_noise.training import plots

    files = sorted((tmp_path / "out").glob("movielens_*.json"))
    assert len(files) == 3
    assert plots.main([*map(str, files), "--out", str(tmp_path / "cli.png")]).is_file()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json: expected keys 'config' and 'history'"):
        plots.plot_three_panels([tmp_path / "bad.json"], tmp_path / "x.png")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--noise", "laplace"], "invalid choice: 'laplace'"),
        (["--sigma", "1.0"], "--sigma is Opacus' Gaussian noise multiplier"),
        (["--noise", "product", "--sigma", "0.5"], "does not apply to product noise"),
        (["--noise", "gaussian", "-k", "1000"], "-k applies to product noise only"),
        (["--noise", "gaussian", "--disable-dp"], "--disable-dp contradicts --noise gaussian"),
        (["--epochs", "0"], "--epochs must be"),
    ],
)
def test_bad_flags_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        _script("mnist").main(["--data-root", str(tmp_path), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("script", "pattern"),
    [
        ("mnist", r"MNIST/raw/train-images-idx3-ubyte.*Expected layout.*--train-on-test-split"),
        ("cifar10", r"cifar-10-batches-py/data_batch_1.*Expected layout"),
        ("adult", r"adult.data.*Expected layout"),
        ("imdb", r"imdb_labelled.txt.*aclImdb"),
        ("movielens", r"ml-100k/u.data.*Expected layout.*ratings.dat"),
    ],
)
def test_missing_data_names_file_and_layout(tmp_path: Path, script: str, pattern: str) -> None:
    with pytest.raises(DatasetNotFoundError, match=pattern):
        _script(script).main(["--data-root", str(tmp_path / "empty"), "--out", str(tmp_path)])


def test_malformed_data_names_file(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_ratings_dat(root)
    (root / "ml-1m" / "ratings.dat").write_text("1::2::3::4\nnot a rating\n")
    with pytest.raises(ValueError, match=r"ml-1m/ratings.dat, line 2: expected 4 integer"):
        _script("movielens").main(["--data-root", str(root), "--out", str(tmp_path)])


def test_entry_reports_data_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from _common import entry

    def main(argv: Any) -> None:
        raise DatasetNotFoundError("Adult: file 'x/adult.data' not found. Expected layout: …")

    with pytest.raises(SystemExit) as exc:
        entry(main)
    assert exc.value.code == 2  # missing data is bad input
    assert "error: Adult: file 'x/adult.data' not found" in capsys.readouterr().err


def test_dpmix_mnist_runs_at_a_verified_epsilon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--epsilon`` calibrates σ so that the release's verified ε at δ = 1/n is the target."""
    write_mnist(tmp_path / "data", layout="flat", gz=False, n_train=0, n_test=300)
    argv = ["--data-root", str(tmp_path / "data"), "--private-from-test", "280"]
    argv += ["--sweep", "single", "--epochs", "1", "--out", str(tmp_path / "out")]
    assert _script("dpmix_mnist").main([*argv, "--epsilon", "8"]) == 0
    with (tmp_path / "out" / "single.csv").open(newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert float(row["target_epsilon_verified"]) == 8.0
    assert 7.9 <= float(row["epsilon_verified"]) <= 8.0  # calibrated on the verified accountant
    assert float(row["delta_verified"]) == pytest.approx(1 / 280)
    assert float(row["sigma"]) != 0.0711  # not the thesis' σ
    assert f"σ={float(row['sigma']):g}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epsilon", "8", "--sigma", "0.1"], "cannot be combined with --sigma"),
        (["--epsilon", "8", "--sweep", "sigma"], "σ cannot be swept"),
        (["--epsilon", "0"], "--epsilon must be a finite number > 0"),
    ],
)
def test_dpmix_mnist_bad_epsilon_flags_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        _script("dpmix_mnist").main(["--data-root", str(tmp_path), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
