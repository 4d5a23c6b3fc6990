"""The benchmarks' data roots: ``--data-root`` or ``$PRODUCT_NOISE_DATA``, no built-in path."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_dpsgd_data import write_mnist

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
#: the scripts that read real data
SCRIPTS = (
    "bench_adlm",
    "bench_dpgen",
    "bench_erm",
    "bench_examples",
    "bench_input_noise",
    "dpmix_utility",
    "opacus_anchor",
    "real_runs",
)


def _data_module():
    spec = importlib.util.spec_from_file_location("bench_data", BENCH / "_data.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_absolute_data_path_in_the_benchmarks() -> None:
    for f in BENCH.glob("*.py"):
        text = f.read_text()
        assert not re.search(r"(Path\(|default=|environ\.get\([^)]*,)\s*[\"']/", text), f
        assert "shared/data" not in text and '"shared"' not in text, f


def test_missing_root_names_the_variable_and_the_files(monkeypatch, tmp_path) -> None:
    d = _data_module()
    monkeypatch.delenv("PRODUCT_NOISE_DATA", raising=False)
    with pytest.raises(FileNotFoundError) as exc:
        d.data_root(None, needs=("mnist",))
    msg = str(exc.value)
    assert "--data-root" in msg and "PRODUCT_NOISE_DATA" in msg
    assert "t10k-images-idx3-ubyte[.gz]" in msg and "yann.lecun.com" in msg
    with pytest.raises(FileNotFoundError, match=r"is not a directory.*adult\.data"):
        d.dataset_dir(tmp_path / "nowhere", "adult")
    with pytest.raises(FileNotFoundError, match=r"kddcup99: .*does not exist.*kddcup\.data"):
        d.dataset_dir(tmp_path, "kddcup99")
    (tmp_path / "adult").mkdir()
    (tmp_path / "adult" / "adult.data").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"adult lacks adult\.test\. .*archive\.ics"):
        d.dataset_dir(tmp_path, "adult")


def test_flag_then_environment(monkeypatch, tmp_path) -> None:
    d = _data_module()
    write_mnist(tmp_path / "env" / "mnist", layout="flat", n_train=0)
    write_mnist(tmp_path / "flag" / "mnist", layout="torchvision", gz=False)
    monkeypatch.setenv("PRODUCT_NOISE_DATA", str(tmp_path / "env"))
    assert d.dataset_dir(None, "mnist") == tmp_path / "env" / "mnist"
    assert d.dataset_dir(tmp_path / "flag", "mnist") == tmp_path / "flag" / "mnist"
    with pytest.raises(FileNotFoundError, match=r"fashion-mnist.*ln -s"):
        d.dataset_dir(None, "fashion-mnist")


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_without_a_data_root_exits_2(script: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PRODUCT_NOISE_DATA"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "error: no data root: pass --data-root DIR or set PRODUCT_NOISE_DATA=DIR" in last


def test_opacus_anchor_runs_and_writes_its_json(tmp_path: Path) -> None:
    """One epoch of the anchor on a fixture: both engines give the same accuracy and ε from the
    same seed, and the JSON is written (it once crashed on a NumPy bool after a 50-epoch run)."""
    import json

    write_mnist(tmp_path / "fashion-mnist", layout="flat", n_train=64, n_test=20)
    out = tmp_path / "anchor.json"
    cmd = [sys.executable, str(BENCH / "opacus_anchor.py"), "--data-root", str(tmp_path)]
    cmd += ["--epochs", "1", "--batch-size", "16", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["passed"] is True and result["difference_pp"] == 0.0
    assert result["opacus"]["epsilon_prv"] == result["package"]["epsilon_prv"] > 0
