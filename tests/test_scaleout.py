"""Scale-out of ``product-noise compare`` (issue 20): runs in local worker processes and on a
Dask cluster give the same results as one process; a killed worker fails only its run;
``--retries`` re-runs it; the executors' own contract.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from product_noise.cli import main
from product_noise.compare.config import ConfigError, quick_config
from product_noise.compare.executors import (
    InlineExecutor,
    ProcessExecutor,
    RemoteError,
    WorkerDied,
)
from product_noise.compare.harness import run_compare
from product_noise.compare.progress import RunProgress

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: the ε columns and everything a run computes (not its timings)
SAME = (
    "accuracy",
    "claimed_epsilon",
    "claimed_delta",
    "verified_epsilon",
    "verified_delta",
    "noise_scale",
    "expected_noise_norm",
    "drawn_noise_norm",
    "dim",
    "steps",
)
MECHS = ["nonprivate-logreg", "nonprivate-nn", "erm-output-gaussian", "dpsgd-gaussian"]


def _cfg(**kw):
    base = dict(mechanisms=MECHS, epsilons=[3.0], seeds=[0, 1], epochs=1)
    return dataclasses.replace(quick_config(), **{**base, **kw})


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "results.csv").open(newline="") as fh:
        return {r["run_id"]: r for r in csv.DictReader(fh)}


# ================================================================================ executors
def _square(x: int) -> int:
    return x * x


def _sleep_then(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _raise() -> None:
    raise ValueError("bad value in the job")


def _with_context(context: str, x: int) -> tuple[str, int]:
    return context, x


def test_process_executor_contract() -> None:
    """Results, the context, a remote error, a worker killed mid-job and an argument that
    cannot be pickled: each fails only its own job, and the pool goes on."""
    ex = ProcessExecutor(2)
    ex.set_context("ctx")
    try:
        futs = [ex.submit(_square, i) for i in range(4)]
        killed = ex.submit(_kill_self)
        err = ex.submit(_raise)
        unpicklable = ex.submit(_square, threading.Lock())
        ctx = ex.submit(_with_context, 5, with_context=True)
        after = [ex.submit(_square, i) for i in range(4, 8)]
        assert [f.result(timeout=120) for f in futs + after] == [i * i for i in range(8)]
        with pytest.raises(WorkerDied, match="SIGKILL"):
            killed.result(timeout=60)
        with pytest.raises(RemoteError, match="ValueError: bad value") as info:
            err.result(timeout=60)
        assert "_raise" in info.value.remote_traceback
        with pytest.raises(TypeError):
            unpicklable.result(timeout=60)
        assert ctx.result(timeout=60) == ("ctx", 5)
    finally:
        ex.close()


def test_process_executor_priority_and_cancel() -> None:
    """With one worker busy, a later job of higher priority starts before older ones;
    ``close(cancel=True)`` ends a running job at once and cancels the queued ones."""
    ex = ProcessExecutor(1)
    try:
        first = ex.submit(_sleep_then, 0, 2.0)
        low = ex.submit(_sleep_then, 1, 0.0, priority=-1)
        high = ex.submit(_sleep_then, 2, 0.0, priority=1)
        assert high.result(timeout=60) == 2 and not low.done()
        assert low.result(timeout=60) == 1 and first.result() == 0
        stuck = ex.submit(_sleep_then, 3, 600.0)
        queued = ex.submit(_square, 3)
        time.sleep(1.0)
        t0 = time.monotonic()
    finally:
        ex.close(cancel=True)
    assert time.monotonic() - t0 < 10
    assert queued.cancelled()
    assert stuck.done() and not stuck.cancelled() or stuck.cancelled()
    with pytest.raises(RuntimeError, match="after close"):
        ex.submit(_square, 1)


def test_inline_executor_runs_at_submit() -> None:
    ex = InlineExecutor()
    ex.set_context("c")
    assert ex.submit(_with_context, 1, with_context=True).result() == ("c", 1)
    assert isinstance(ex.submit(_raise).exception(), ValueError)


def test_progress_log_form_is_one_line_per_run(tmp_path: Path) -> None:
    """Not a terminal: one plain line per finished run, no carriage return."""
    log = tmp_path / "log.txt"
    with log.open("w") as fh:
        bar = RunProgress(2, stream=fh, tty=False)
        bar.finished("a", ok=True)
        bar.finished("b", ok=False, detail="WorkerDied: killed")
        bar.close()
    lines = log.read_text().splitlines()
    assert "\r" not in log.read_text() and len(lines) == 2
    assert lines[0].startswith("compare: 1/2 runs (0 failed)") and lines[0].endswith("a done")
    assert "2/2 runs (1 failed)" in lines[1] and "b FAILED (WorkerDied: killed)" in lines[1]


# ============================================================================== identical
@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    out = tmp_path_factory.mktemp("w1")
    assert run_compare(_cfg(workers=1), out, progress=False, plots=False).status == 0
    return _rows(out)


def _assert_same(a: dict[str, dict[str, str]], b: dict[str, dict[str, str]]) -> None:
    assert set(a) == set(b) and len(a) == 2 * (len(MECHS))
    diff = [(k, c, a[k][c], b[k][c]) for k in a for c in SAME if a[k][c] != b[k][c]]
    assert not diff, diff[:5]


def test_two_local_workers_give_identical_results(one_process, tmp_path: Path) -> None:
    res = run_compare(_cfg(workers=2), tmp_path, progress=False, plots=False)
    assert res.status == 0
    _assert_same(one_process, _rows(tmp_path))
    assert "2 local worker processes" in (tmp_path / "report.md").read_text()


def test_dask_local_cluster_gives_identical_results(one_process, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    cfg = _cfg(workers=2, executor="dask", scheduler="local")
    res = run_compare(cfg, tmp_path, progress=False, plots=False)
    assert res.status == 0
    _assert_same(one_process, _rows(tmp_path))
    assert "a Dask cluster (local, 2 worker threads)" in (tmp_path / "report.md").read_text()


# ================================================================================== faults
KILL = ["compare", "--quick", "--task", "scaleout_tasks:killing_digits"]
KILL += ["--mechanisms", "nonprivate-nn", "dpsgd-gaussian", "--epsilons", "3", "--seeds", "0"]
KILL += ["1", "--workers", "2", "--no-plots", "--no-progress"]


def test_killed_worker_fails_its_run_and_the_rest_finish(tmp_path, monkeypatch) -> None:
    marker = tmp_path / "killed"
    monkeypatch.setenv("SCALEOUT_KILL_MARKER", str(marker))
    out = tmp_path / "out"
    assert main([*KILL, "--out", str(out)]) == 1
    assert marker.exists()
    rows = list(_rows(out).values())
    failed = [r for r in rows if r["notes"].startswith("failed: ")]
    assert len(rows) == 4 and len(failed) == 1
    assert "WorkerDied" in failed[0]["notes"] and "SIGKILL" in failed[0]["notes"]
    assert failed[0]["accuracy"] == ""
    assert all(r["accuracy"] for r in rows if r not in failed)
    assert "failed" in (out / "report.md").read_text().lower()
    # --resume trains only the failed run again (the marker exists: it is not killed twice)
    assert main([*KILL, "--out", str(out), "--resume"]) == 0
    finished = [r for r in _rows_list(out) if not r["notes"].startswith("failed: ")]
    assert sorted(r["run_id"] for r in finished) == sorted(r["run_id"] for r in rows)


def _rows_list(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_retries_rerun_a_run_whose_worker_died(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SCALEOUT_KILL_MARKER", str(tmp_path / "killed"))
    out = tmp_path / "out"
    assert main([*KILL, "--out", str(out), "--retries", "1"]) == 0
    rows = _rows_list(out)
    assert len(rows) == 4 and all(r["accuracy"] for r in rows)
    assert "retrying" in capsys.readouterr().err


def test_bad_executor_settings_are_one_error_line(tmp_path, capsys) -> None:
    with pytest.raises(ConfigError, match="executor 'dask'"):
        _cfg(scheduler="tcp://x:1").validate()
    assert main(["compare", "--quick", "--scheduler", "local", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--executor dask" in err[0]


# ========================================================================= driver SIGTERM
def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")
def test_sigterm_leaves_no_process_and_resume_completes_the_plan(tmp_path: Path) -> None:
    """SIGTERM to the driver while two workers train: exit 143, finished rows kept, the whole
    process group (driver, workers, resource tracker) gone; ``--resume`` then runs exactly
    the runs that were missing."""
    import subprocess

    out = tmp_path / "out"
    args = ["--quick", "--mechanisms", "nonprivate-logreg", "erm-output-gaussian", "dpsgd-l2"]
    args += ["--epsilons", "1", "3", "--seeds", "0", "1", "--epochs", "1", "--workers", "2"]
    args += ["--no-plots", "--no-progress", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "product_noise.cli", "compare", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pgid = os.getpgid(proc.pid)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "results.csv").exists() and len(_rows_list(out)) >= 1:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the comparison ended before the signal"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        deadline = time.monotonic() + 15
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(pgid), "processes of the comparison outlived it"
    finally:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait()
    before = {r["run_id"] for r in _rows_list(out)}
    assert 1 <= len(before) < 10
    assert "interrupted" in (out / "report.md").read_text()
    assert main(["compare", *args, "--resume"]) == 0
    after = [r["run_id"] for r in _rows_list(out)]
    assert len(after) == len(set(after)) == 10 and before <= set(after)


def test_dask_missing_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys) -> None:
    """Without ``distributed`` installed, ``--executor dask`` says what to install (exit 2)."""
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    args = ["compare", "--quick", "--mechanisms", "nonprivate-logreg", "--seeds", "0", "1"]
    args += ["--executor", "dask", "--out", str(tmp_path / "o"), "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'product-noise[dask]'" in err[0]


def test_dask_workers_of_several_threads_are_refused(tmp_path) -> None:
    """Two runs in one worker process would share its random state: one error, exit 2."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        args = ["compare", "--quick", "--mechanisms", "nonprivate-logreg", "--seeds", "0", "1"]
        args += ["--executor", "dask", "--scheduler", cluster.scheduler_address]
        assert main([*args, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
