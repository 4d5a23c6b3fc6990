"""``product-noise compare`` stopped by a signal, as ``timeout`` and Slurm stop it.

SIGTERM is handled like Ctrl-C (finished rows kept, a report of what finished, exit status
143 = 128 + SIGTERM, workers ended); a SIGKILL of the parent takes its calibration workers with
it. Each test runs the CLI in a subprocess on a tiny comparison: the references and convex ERM
finish in a second or two while two workers calibrate ``dpsgd-l2`` (about 20 s), so the signal
always arrives with rows written and workers busy.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from product_noise.cli import main

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the process table from /proc"
)

ROOT = Path(__file__).resolve().parents[1]
#: references and ERM finish at once; the two dpsgd-l2 calibrations keep both workers busy
TINY = [
    "--quick",
    "--mechanisms",
    "nonprivate-logreg",
    "erm-output-gaussian",
    "dpsgd-l2",
    "--epsilons",
    "1",
    "3",
    "--seeds",
    "0",
    "1",
    "--epochs",
    "1",
    "--workers",
    "2",
    "--no-plots",
    "--no-progress",
]
FAST = ["nonprivate-logreg", "erm-output-gaussian"]


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from ``/proc/*/stat``)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _is_worker(pid: int) -> bool:
    try:
        return b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _wait(condition, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture
def compare_proc(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path, list[int]]]:
    """The tiny comparison in a subprocess, once a row is written and both workers run.

    Yields the process, its ``--out`` directory and the pids of its children (the workers and
    multiprocessing's resource tracker). Whatever the test does, every one of them is killed
    at the end, so a failing test leaves no process behind.
    """
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    log = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "product_noise.cli", "compare", *TINY, "--out", str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    kids: list[int] = []
    try:
        started = _wait(
            lambda: (
                proc.poll() is not None
                or (
                    len(_rows(out / "results.csv")) >= 1
                    and sum(map(_is_worker, _children(proc.pid))) >= 2
                )
            ),
            timeout=90,
        )
        assert started and proc.poll() is None, (
            f"the comparison ended (or never started) before the signal: "
            f"{(tmp_path / 'stderr.txt').read_text()[-2000:]}"
        )
        kids = _children(proc.pid)
        yield proc, out, kids
    finally:
        for pid in [proc.pid, *kids, *_children(proc.pid)]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        log.close()


def test_sigterm_keeps_rows_writes_report_and_exits_143(compare_proc) -> None:
    proc, out, kids = compare_proc
    before = _rows(out / "results.csv")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    status = proc.wait(timeout=20)
    assert status == 128 + signal.SIGTERM == 143
    assert time.monotonic() - t0 < 15
    assert _wait(lambda: not any(map(_alive, kids)), timeout=10), "workers outlived the run"
    rows = _rows(out / "results.csv")
    assert 1 <= len(before) <= len(rows) < 10  # finished rows kept; the run did not complete
    assert [r["run_id"] for r in rows[: len(before)]] == [r["run_id"] for r in before]
    report = (out / "report.md").read_text()
    assert f"Status: **interrupted** (SIGTERM), {len(rows)} of 10 planned runs" in report
    # the interrupted comparison resumes: only the runs not yet in results.csv are trained
    assert main(["compare", *TINY, "--mechanisms", *FAST, "--out", str(out), "--resume"]) == 0
    ids = [r["run_id"] for r in _rows(out / "results.csv")]
    assert len(ids) == len(set(ids)) == 6 + sum(r["mechanism"] == "dpsgd-l2" for r in rows)


def test_sigkill_of_parent_kills_workers(compare_proc) -> None:
    proc, out, kids = compare_proc
    assert sum(map(_is_worker, kids)) >= 2
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert _wait(lambda: not any(map(_alive, kids)), timeout=15), (
        f"children still alive 15 s after the parent was killed: {[k for k in kids if _alive(k)]}"
    )


def test_help_states_exit_status_on_interruption(capsys: pytest.CaptureFixture) -> None:
    assert main(["compare", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("130", "SIGINT", "143", "SIGTERM", "--resume", "results.csv"):
        assert fragment in text, fragment
