"""``examples/adult.py`` under torchrun: 2 CPU processes (gloo), DPDDP, product noise.

The script is launched as ``python -m torch.distributed.run --nproc_per_node 2 --standalone``
on a tiny Adult fixture for one epoch and compared with the same command in one process: the
privacy figures (claimed and verified ε and δ, their sources, the steps and what the
accountant composed: noise multiplier, sample rate, steps) must be identical, since the sample
rate and the steps come from the global batch and the noise is drawn once per step on rank 0.
The expected global batch is small (5 of 320: about 2.5 per process), so some steps have an
empty local batch on one rank and not the other; every rank must still take every step.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from test_dpsgd_data import write_adult

from product_noise.training.loop import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

#: figures of the one-epoch row that must not depend on the number of processes
PRIVACY_KEYS = (
    "steps",
    "expected_noise_norm",
    "delta",
    "verified_epsilon",
    "verified_delta",
    "verified_source",
    "claimed_epsilon",
    "claimed_delta",
    "claimed_source",
)


def _adult() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_adult", EXAMPLES / "adult.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _argv(data: Path, out: Path) -> list[str]:
    # 400 lines: 320 train / 80 test; 64 steps, so the paper's composition is defined
    return [
        "--data-root", str(data), "--out", str(out), "--noise", "product",
        "--epochs", "1", "--batch-size", "5", "--device", "cpu", "--no-progress",
    ]  # fmt: skip


def _privacy(saved: dict[str, Any]) -> dict[str, Any]:
    (row,) = saved["history"]
    figures = {k: row[k] for k in PRIVACY_KEYS}
    figures["accountant_history"] = saved["config"]["extra"]["accountant_history"]
    return figures


def test_adult_torchrun_two_processes_same_accounting(tmp_path: Path) -> None:
    data = write_adult(tmp_path / "data", n_data=400)
    one = _adult().main(_argv(data, tmp_path / "one"))
    single = json.loads(Path(one["json"]).read_text())

    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
        str(EXAMPLES / "adult.py"), *_argv(data, tmp_path / "two"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch 1/1 |") == 1  # only rank 0 prints
    assert "torchrun: 2 processes (gloo, CPU)" in proc.stdout
    # only rank 0 writes, and a distributed run writes no checkpoint
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "adult_product.csv",
        "adult_product.json",
    ]
    double = json.loads((tmp_path / "two" / "adult_product.json").read_text())

    a, b = _privacy(single), _privacy(double)
    assert a == b
    (family, dim, _nm, q, steps), *_ = a["accountant_history"]
    assert (family, dim, q, steps) == ("product", one["dim"], 1 / 64, 64)
    assert a["steps"] == 64 and math.isfinite(a["claimed_epsilon"])
    (row,) = double["history"]
    assert math.isfinite(row["train_accuracy"]) and math.isfinite(row["test_accuracy"])
    assert 0.0 <= row["test_accuracy"] <= 1.0
    assert double["config"]["batch_size"] == single["config"]["batch_size"] == 5


def test_torchrun_refuses_what_a_distributed_run_does_not_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under torchrun's variables (2 processes): --resume, --noise none and a non-CPU device
    exit 2 before any process group is joined; train(distributed=True) needs one."""
    for var, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(var, value)
    base = ["--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    for extra, message in (
        (["--resume"], "--resume is refused"),
        (["--noise", "none"], "DP-SGD only"),
        (["--device", "meta"], "gloo on CPU"),
    ):
        with pytest.raises(SystemExit) as exc:
            _adult().main([*base, *extra])
        assert exc.value.code == 2 and message in capsys.readouterr().err
    ds = torch.utils.data.TensorDataset(torch.randn(8, 3), torch.randint(0, 2, (8,)))
    with pytest.raises(ValueError, match="initialised torch.distributed process group"):
        train(torch.nn.Linear(3, 2), ds, ds, TrainConfig(epochs=1), distributed=True)
