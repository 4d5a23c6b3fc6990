"""One exit-code policy (issue 15, item 8): 0 success, 1 unexpected failure, 2 bad input with
one ``error: ...`` line and no traceback, 130/143 interrupted.

Bad input includes an ``--out`` that is an existing file or cannot be created, a missing data
root, a data file that cannot be read, and ``--device cuda`` without a GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from product_noise.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def _bad_outs(tmp_path: Path) -> dict[str, Path]:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {"existing file": a_file, "under a file": a_file / "sub"}


@pytest.mark.parametrize("case", ["existing file", "under a file"])
@pytest.mark.parametrize(
    "argv",
    [
        ["mechanisms", "--dims", "10", "--epsilons", "1", "--no-progress"],
        ["compare", "--quick", "--no-progress"],
        ["gridsearch", "output", "synthetic_l", "LR", "--epsilons", "1", "--repeats", "1"],
        ["audit-training", "--mechanisms", "gaussian", "--trials", "20"],
    ],
    ids=["mechanisms", "compare", "gridsearch", "audit-training"],
)
def test_bad_out_is_one_line_exit_2(tmp_path, capsys, argv, case) -> None:
    out = _bad_outs(tmp_path)[case]
    assert main([*argv, "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--out" in line and str(out) in line


def test_gridsearch_missing_root_exit_2(tmp_path, capsys) -> None:
    argv = ["gridsearch", "output", "adult", "LR", "--root", str(tmp_path / "nowhere")]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert "adult" in _one_error_line(capsys.readouterr().err)


def _example(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "adult.py"), *args, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_example_device_cuda_without_gpu_exit_2(tmp_path) -> None:
    proc = _example(["--device", "cuda", "--data-root", str(tmp_path)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    # argparse's convention, as for every other bad flag: the usage, then one error line
    assert "error: --device cuda: no CUDA device" in proc.stderr.strip().splitlines()[-1]


def test_example_missing_data_exit_2(tmp_path) -> None:
    proc = _example(["--data-root", str(tmp_path / "empty")], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "adult.data" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("script", ["dpmix_mnist.py", "dpgen_mnist.py"])
@pytest.mark.parametrize("extra", [[], ["--private-from-test", "100"]])
def test_mnist_baseline_scripts_missing_data_one_line_exit_2(tmp_path, script, extra) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--data-root", str(tmp_path / "none")]
        + extra
        + ["--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    _one_error_line(proc.stderr)


@pytest.mark.parametrize("command", ["gridsearch", "preprocess"])
def test_bad_cache_is_one_line_exit_2(tmp_path, capsys, command) -> None:
    cache = _bad_outs(tmp_path)["existing file"]
    argv = (
        ["gridsearch", "output", "synthetic_l", "LR", "--out", str(tmp_path / "o")]
        if command == "gridsearch"
        else ["preprocess", "synthetic_l"]
    )
    assert main([*argv, "--cache", str(cache)]) == 2
    assert "--cache" in _one_error_line(capsys.readouterr().err)


def test_example_unknown_device_exit_2(tmp_path) -> None:
    proc = _example(["--device", "bogus", "--data-root", str(tmp_path)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "error: --device bogus: not a torch device" in proc.stderr.strip().splitlines()[-1]
