"""Plan and execute a comparison: every (mechanism, target ε, seed) is one run.

Order of work: every calibration is scheduled first, then each run is submitted, in plan order,
as soon as its calibration is ready (the references and convex ERM need none). Runs and
calibrations go to one executor (:mod:`product_noise.compare.executors`): ``workers`` local
processes by default, this process with ``workers=1``, or a Dask cluster; a run that is ready
starts before a calibration that waits for a worker. Each run seeds itself
(:mod:`product_noise.compare.jobs`), so where it ran does not change its row. Each finished run
is appended to ``results.csv`` at once; ``--resume`` skips the runs already there (not those
recorded as failed), and the calibrations of an earlier run are read back from
``accounting.json``.

Ctrl-C (SIGINT) and SIGTERM (what ``timeout`` and Slurm send) stop the runs the same way: the
workers are ended, the finished rows stay in ``results.csv``, ``report.md`` covers them and the
status is 128 + the signal's number (130, 143).
"""

from __future__ import annotations

import json
import math
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as futures_wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..privacy import CLAIMED, UNVERIFIED, VERIFIED
from ..validation import check_output_dir
from .accounting import AccountingCache, DPMixKey, DPSGDKey
from .config import (
    BASELINE_FAMILIES,
    CompareConfig,
    ConfigError,
    family_of,
    is_unverified,
    target_label,
)
from .data import ClassificationData, load_erm_data, load_nn_data
from .diagnose import chance_notes
from .executors import (
    Executor,
    InlineExecutor,
    RemoteError,
    SchedulerError,
    WorkerDied,
    make_executor,
    usable_cores,
)
from .jobs import RunContext, import_plugins_once
from .progress import RunProgress
from .report import (
    EPOCH_COLUMNS,
    FAILED_PREFIX,
    RESULT_COLUMNS,
    CsvAppender,
    format_summary,
    read_results,
    read_rows,
    summarize,
    write_plots,
    write_report,
)
from .tasks import Task

__all__ = ["RunSpec", "plan_runs", "prepare", "run_compare", "CompareResult", "Terminated"]

# settings that change results: a resumed comparison must keep them
_RESULT_SETTINGS = (
    "nn_data",
    "erm_data",
    "delta",
    "erm_delta",
    "model",
    "hidden",
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "optimizer",
    "max_grad_norm",
    "paper_sensitivity",
    "dpmix_l",
    "dpmix_T",
    "dpmix_epochs",
    "dpmix_lr",
    "erm_lam",
    "erm_product_k",
    "max_train",
    "baseline_epochs",
    "dpgen_steps",
)
_ORDER = (
    "nonprivate",
    "erm",
    "dpsgd-gaussian",
    "dpmix-global",
    "dpsgd-product-paper",
    "dpmix-class",
    "dpsgd-l2",
    "dpsgd-product",
    "ldp",
    "adlm",
    "dpgen",
)


#: calibration jobs, slowest first (submitted in this order)
_SLOW = {
    m: i
    for i, m in enumerate(
        ("dpsgd-l2", "dpmix-class", "dpsgd-product", "dpsgd-product-paper", "dpsgd-gaussian")
    )
}


@dataclass(frozen=True)
class RunSpec:
    """One planned run."""

    mechanism: str
    dataset: str
    model: str
    epsilon: float | None
    seed: int

    @property
    def run_id(self) -> str:
        eps = "none" if self.epsilon is None else f"{self.epsilon:g}"
        return f"{self.mechanism}|{self.dataset}|{self.model}|eps={eps}|seed={self.seed}"


@dataclass
class CompareResult:
    """What :func:`run_compare` did.

    ``status`` is 0 (every run finished), 1 (some runs failed) or, when a signal stopped the
    runs, 128 + its number; ``interrupted`` names that signal (``"SIGINT"``, ``"SIGTERM"``).
    """

    out: Path
    status: int
    planned: int
    finished: int
    skipped: int
    summary_table: str
    plots: list[Path]
    timings: dict[str, float]
    interrupted: str | None = None


class Terminated(KeyboardInterrupt):
    """SIGTERM received during :func:`run_compare`: raised where Ctrl-C raises
    ``KeyboardInterrupt``, so that both take the same path."""

    signum = signal.SIGTERM


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, the first SIGTERM raises :class:`Terminated` in the main thread.

    Later ones are ignored, so the clean-up and the report are not cut short; the previous
    handler is restored at the end. Outside the main thread (where Python cannot handle
    signals) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        # None: a handler not installed from Python, which cannot be put back; use the default
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _rank(mechanism: str) -> int:
    for i, prefix in enumerate(_ORDER):
        if mechanism.startswith(prefix):
            return i
    return len(_ORDER)


def plan_runs(cfg: CompareConfig) -> list[RunSpec]:
    """Every run of the comparison, in execution order."""
    specs = []
    for mech in cfg.mechanisms:
        fam = family_of(mech)
        if mech == "nonprivate-nn":
            specs += [RunSpec(mech, cfg.nn_data, cfg.model, None, s) for s in cfg.seeds]
        elif mech == "nonprivate-logreg":
            specs += [RunSpec(mech, cfg.erm_data, "logreg", None, s) for s in cfg.seeds]
        else:
            data = cfg.erm_data if fam == "erm" else cfg.nn_data
            # the baselines train their own networks (AdLM's, the generator's, the LDP MLP)
            model = "logreg" if fam == "erm" else fam if fam in BASELINE_FAMILIES else cfg.model
            specs += [RunSpec(mech, data, model, e, s) for e in cfg.epsilons for s in cfg.seeds]
    return sorted(specs, key=lambda r: (_rank(r.mechanism), r.epsilon or 0.0, r.mechanism, r.seed))


def _settings(cfg: CompareConfig, *datas: ClassificationData | None) -> dict[str, Any]:
    """The settings a resumed comparison must keep: the configuration's, for a user's task
    the fingerprint of its data (and its model's size), and what each user mechanism is."""
    from ..mechanisms.registry import get_mechanism
    from .config import noise_of

    d = {k: getattr(cfg, k) for k in _RESULT_SETTINGS}
    for m in cfg.mechanisms:  # a user mechanism: its kind and description must stay
        noise = noise_of(m)
        spec = None if noise is None else get_mechanism(noise)
        if spec is not None and spec.user:
            d[f"mechanism {spec.name}"] = f"{spec.calibration}: {spec.description}"
    for data in datas:
        if data is not None and "fingerprint" in data.info:
            d[f"data {data.name}"] = data.info["fingerprint"]
            if "parameters" in data.info:
                d[f"model parameters {data.name}"] = data.info["parameters"]
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def _stored_settings(path: Path) -> dict[str, Any]:
    """The settings an earlier comparison wrote to ``path`` (a ``ConfigError`` names the file)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"--resume: cannot read the settings of the earlier run from {path} ({err}); "
            "restore that file or use a new --out"
        ) from None
    if not isinstance(stored, dict):
        raise ConfigError(
            f"--resume: {path} holds a JSON {type(stored).__name__}, not the settings of a "
            "comparison; restore that file or use a new --out"
        )
    return stored


def _prepare_out(
    cfg: CompareConfig, out: Path, resume: bool, settings: dict[str, Any]
) -> tuple[set[str], dict]:
    """Create ``out`` (or check it for ``--resume`` against ``settings``); return finished run
    ids and stored accounting."""
    results = out / "results.csv"
    settings_path = out / "settings.json"
    if resume:
        if not out.is_dir():
            raise ConfigError(f"--resume: {str(out)!r} is not a directory of an earlier run")
        if settings_path.exists():
            old = _stored_settings(settings_path)
            new = settings
            diff = sorted(k for k in new if old.get(k) != new[k])
            if diff:
                raise ConfigError(
                    f"--resume: {out} was run with other settings ({', '.join(diff)}); "
                    "use a new --out"
                )
    elif results.exists() and results.stat().st_size > 0:
        raise ConfigError(
            f"{results} exists: pass --resume to continue that comparison, or choose another --out"
        )
    try:
        check_output_dir(out)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    tmp = settings_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    tmp.replace(settings_path)
    done = {r["run_id"] for r in read_results(results)} if resume else set()
    stored: dict = {}
    acc_path = out / "accounting.json"
    if resume and acc_path.exists():
        try:
            stored = json.loads(acc_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            stored = {}
    return done, stored


def prepare(cfg: CompareConfig, tasks: Sequence[Task] = ()) -> list[Task]:
    """Import ``cfg.plugins``, load ``cfg.task`` (unless ``tasks`` are given), apply the tasks'
    settings to ``cfg`` and validate it; returns the tasks.

    Raises
    ------
    ConfigError
        A plugin or task that cannot be loaded, a bad task or setting, a mechanism the tasks
        cannot run.
    """
    from .tasks import apply_tasks, check_tasks, load_task

    import_plugins_once(cfg.plugins)
    if tasks:
        tasks = check_tasks(list(tasks))
    elif cfg.task:
        tasks = load_task(cfg.task)
    apply_tasks(cfg, tasks)
    cfg.validate(tasks=tasks)
    return list(tasks)


def _load_data(
    cfg: CompareConfig, specs: list[RunSpec], tasks: Sequence[Task] = ()
) -> tuple[ClassificationData | None, ClassificationData | None]:
    """The data sets of the networks and of convex ERM (``None`` when unused): a user's task
    (checked and lowered by :mod:`product_noise.compare.tasks`) or a built-in dataset,
    checked against the configuration; raises :class:`ConfigError` before anything is
    trained."""
    from .tasks import DPSGDTask, ERMTask, check_bound, lower_dpsgd_task, lower_erm_task

    nn_task = next((t for t in tasks if isinstance(t, DPSGDTask)), None)
    erm_task = next((t for t in tasks if isinstance(t, ERMTask)), None)
    nn_data = erm_data = None
    if any(
        family_of(s.mechanism) in ("dpsgd", "dpmix", *BASELINE_FAMILIES)
        or s.mechanism == "nonprivate-nn"
        for s in specs
    ):
        if nn_task is not None:
            nn_data = lower_dpsgd_task(nn_task)
        else:
            nn_data = load_nn_data(cfg.nn_data, cfg.data_root, cfg.max_train)
        uses_model = any(family_of(s.mechanism) in ("dpsgd", "dpmix") for s in specs)
        uses_model = uses_model or "nonprivate-nn" in cfg.mechanisms
        if (
            uses_model
            and nn_task is None
            and cfg.model == "cnn"
            and (nn_data.image_shape is None or nn_data.image_shape[1] % 4)
        ):
            raise ConfigError(f"model 'cnn' needs square images; {cfg.nn_data!r} has none")
        if nn_task is not None and any(family_of(m) == "dpmix" for m in cfg.mechanisms):
            why = check_bound(nn_data)
            if why is not None:
                raise ConfigError(why)
        if "dpmix-class" in cfg.mechanisms:
            smallest = int(np.bincount(nn_data.y_train).min())
            if cfg.dpmix_l > smallest:
                raise ConfigError(
                    f"dpmix_l={cfg.dpmix_l} exceeds the smallest class ({smallest} examples)"
                )
        if cfg.dpmix_l > nn_data.n_train:
            raise ConfigError(f"dpmix_l={cfg.dpmix_l} exceeds the {nn_data.n_train} examples")
    if any(family_of(s.mechanism) == "erm" or s.mechanism == "nonprivate-logreg" for s in specs):
        if erm_task is not None:
            erm_data = lower_erm_task(erm_task)
        else:
            erm_data = load_erm_data(cfg.erm_data, cfg.data_root, cfg.max_train)
    return nn_data, erm_data


def run_compare(
    cfg: CompareConfig,
    out: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    plots: bool = True,
    tasks: Sequence[Task] = (),
) -> CompareResult:
    """Run a comparison into ``out`` and write its report.

    ``tasks`` (a :class:`~product_noise.compare.tasks.DPSGDTask` and/or an
    :class:`~product_noise.compare.tasks.ERMTask`) replace the built-in datasets of their kind;
    without them, ``cfg.task`` (``"module:callable"``) is loaded, after ``cfg.plugins``. See
    :func:`~product_noise.compare.api.run_comparison` for the task-first entry point.

    Raises :class:`~product_noise.compare.config.ConfigError` for a bad configuration or task,
    before anything is trained. On ``KeyboardInterrupt`` (Ctrl-C) or SIGTERM, the calibration
    workers are ended, the report of the finished runs is written and the status is 130 or 143
    (128 + the signal's number); ``--resume`` continues such a comparison.
    """
    t_start = time.perf_counter()
    tasks = prepare(cfg, tasks)
    specs = plan_runs(cfg)
    nn_data, erm_data = _load_data(cfg, specs, tasks)  # errors before training
    done, stored = _prepare_out(cfg, out, resume, _settings(cfg, nn_data, erm_data))
    todo = [s for s in specs if s.run_id not in done]
    context = RunContext(
        cfg,
        tuple(tasks),
        need_nn=nn_data is not None,
        need_erm=erm_data is not None,
        threads=cfg.threads or 1,
    )
    context.adopt(nn_data, erm_data)
    bar = RunProgress(len(todo), enabled=progress)
    try:
        executor = _open_executor(cfg, todo, context, bar)
    except BaseException:
        bar.close()
        raise
    if isinstance(executor, InlineExecutor):  # per-epoch bars: in this process, on a terminal
        context.progress = progress and bar.tty

    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    # small models: one thread is fastest, and leaves the other cores to the workers
    torch.set_num_threads(cfg.threads or 1)
    blas = threadpool_limits(cfg.threads or 1)  # idle BLAS threads spinning cost a lot
    inline = isinstance(executor, InlineExecutor)
    accounting = AccountingCache(
        # in this process: calibrations in 2 background processes, unless --workers 1
        workers=min(2, usable_cores()) if inline and cfg.workers != 1 else 1,
        stored=stored,
        executor=None if inline else executor,
    )
    results = CsvAppender(out / "results.csv", RESULT_COLUMNS)
    epochs_csv = CsvAppender(out / "epochs.csv", EPOCH_COLUMNS)
    failures: list[str] = []
    finished = 0
    interrupted: signal.Signals | None = None
    timings = {
        "train": 0.0,
        "accounting (waiting + checks)": 0.0,
        "harness (per-run overhead)": 0.0,
    }
    t_runs = time.perf_counter()
    with _sigterm_as_interrupt():
        try:
            sinks = _Sinks(results, epochs_csv, timings, failures, bar)
            finished, interrupted = _run_all(
                cfg, todo, (nn_data, erm_data), accounting, executor, sinks
            )
        finally:
            bar.close()
            accounting.close(cancel=interrupted is not None)
            executor.close(cancel=interrupted is not None)
            results.close()
            epochs_csv.close()
            torch.set_num_threads(threads)
            blas.restore_original_limits()
            _save_accounting(out, accounting)
        timings["runs (wall)"] = time.perf_counter() - t_runs
        summary, paths = _write_outputs(
            cfg,
            out,
            plots,
            timings,
            t_start,
            executor.where,
            len(specs),
            interrupted,
            failures,
            (nn_data, erm_data),
        )
    status = 128 + interrupted if interrupted is not None else (1 if failures else 0)
    return CompareResult(
        out=out,
        status=status,
        planned=len(specs),
        finished=finished,
        skipped=len(specs) - len(todo),
        summary_table=format_summary(summary),
        plots=paths,
        timings=timings,
        interrupted=None if interrupted is None else interrupted.name,
    )


def _worker_count(cfg: CompareConfig) -> int:
    """``cfg.workers``, or (0) as many as the usable cores hold at ``cfg.threads`` each."""
    return cfg.workers or max(1, usable_cores() // max(1, cfg.threads))


def _not_portable(cfg: CompareConfig) -> str | None:
    """Why the runs cannot go to worker processes (a user mechanism registered in this
    process only, not by one of ``cfg.plugins``), or ``None``."""
    from ..mechanisms.registry import get_mechanism
    from .config import noise_of
    from .jobs import plugin_mechanisms

    by_plugins = plugin_mechanisms(cfg.plugins)
    for m in cfg.mechanisms:
        noise = noise_of(m)
        spec = None if noise is None else get_mechanism(noise)
        if spec is not None and spec.user and spec.name not in by_plugins:
            return (
                f"the mechanism {spec.name!r} was registered in this process, not by a plugin "
                "of the configuration (plugins = [...]), so worker processes cannot build it"
            )
    return None


def _open_executor(
    cfg: CompareConfig, todo: list[RunSpec], context: RunContext, bar: RunProgress
) -> Executor:
    """The executor of ``cfg`` with ``context`` set; this process when the runs cannot leave
    it (said on the progress stream) or when one worker would do.

    Raises
    ------
    ConfigError
        ``executor="dask"`` without Dask installed, a scheduler that cannot be reached, or
        runs that cannot leave this process.
    """
    workers = _worker_count(cfg)
    if cfg.executor == "local" and (workers <= 1 or len(todo) <= 1):
        executor: Executor = InlineExecutor()
        executor.set_context(context)
        return executor
    why = _not_portable(cfg)
    if why is None:
        try:
            executor = make_executor(cfg.executor, workers, context.threads, cfg.scheduler)
        except SchedulerError as err:  # the user's cluster: unreachable, no worker, threads
            raise ConfigError(str(err)) from None
        except ImportError as err:
            if "product-noise[dask]" not in str(err):  # a broken install, not bad input
                raise
            raise ConfigError(str(err)) from None
        try:
            executor.set_context(context)  # pickles it once: fails here if it cannot travel
            return executor
        except (pickle.PicklingError, TypeError, AttributeError) as err:  # not picklable
            executor.close(cancel=True)
            why = f"the task cannot be sent to worker processes ({type(err).__name__}: {err})"
        except BaseException:
            executor.close(cancel=True)
            raise
    if cfg.executor == "dask":
        raise ConfigError(f"--executor dask: {why}")
    bar.note(f"compare: every run in this process: {why}")
    executor = InlineExecutor()
    executor.set_context(context)
    return executor


@dataclass
class _Sinks:
    """Where finished runs go: the two CSV files, the timings, the failures and the bar."""

    results: CsvAppender
    epochs: CsvAppender
    timings: dict[str, float]
    failures: list[str]
    bar: RunProgress


def _run_all(
    cfg: CompareConfig,
    todo: list[RunSpec],
    datas: tuple[ClassificationData | None, ClassificationData | None],
    accounting: AccountingCache,
    executor: Executor,
    sinks: _Sinks,
) -> tuple[int, signal.Signals | None]:
    """Run ``todo`` on ``executor``, each appended to ``results.csv`` as it finishes.

    A run starts when its calibration is ready, at most ``executor.workers`` at a time, in
    plan order. A failed run is retried ``cfg.retries`` times, then recorded as failed and the
    others go on. Returns the number of finished runs and the signal that stopped them
    (``KeyboardInterrupt``: SIGINT; :class:`Terminated`: SIGTERM), if any.
    """
    dims: dict[str, int] = {}
    finished = 0
    attempts: dict[str, int] = {}
    try:
        keys = _schedule_calibrations(cfg, todo, datas[0], accounting, dims)
        queue = list(todo)
        inflight: dict[Future, tuple[RunSpec, float]] = {}
        while queue or inflight:
            _start_ready(queue, inflight, keys, accounting, executor, sinks)
            for fut in _wait_some(inflight, accounting):
                spec, wait = inflight.pop(fut)
                error = _collect(cfg, spec, fut, wait, datas, sinks)
                if error is None:
                    finished += 1
                    continue
                attempts[spec.run_id] = attempts.get(spec.run_id, 0) + 1
                if attempts[spec.run_id] <= cfg.retries:
                    sinks.bar.note(f"compare: retrying {spec.run_id} after: {error}")
                    queue.insert(0, spec)
                else:
                    _record_failure(cfg, spec, error, datas, sinks)
    except KeyboardInterrupt as exc:
        sig = signal.Signals(getattr(exc, "signum", signal.SIGINT))
        sinks.bar.note(f"\ninterrupted ({sig.name}): writing the report of the finished runs")
        return finished, sig
    return finished, None


def _schedule_calibrations(
    cfg: CompareConfig,
    todo: list[RunSpec],
    nn_data: ClassificationData | None,
    accounting: AccountingCache,
    dims: dict[str, int],
) -> dict[str, Any]:
    """Submit every calibration now, the slowest kinds first; returns each run's key (``None``
    for a run that needs none)."""
    keys = {s.run_id: _key(cfg, s, nn_data, dims) for s in todo}
    for s in sorted(todo, key=lambda s: _SLOW.get(s.mechanism, len(_SLOW))):
        if keys[s.run_id] is not None:
            accounting.submit(*keys[s.run_id])
    return keys


def _start_ready(
    queue: list[RunSpec],
    inflight: dict[Future, tuple[RunSpec, float]],
    keys: dict[str, Any],
    accounting: AccountingCache,
    executor: Executor,
    sinks: _Sinks,
) -> None:
    """Submit, in plan order, the runs whose calibration is ready, up to the executor's
    capacity; with nothing running, wait for the first run's calibration.

    A calibration that fails fails its run (recorded at once, like a run's own error)."""
    from .jobs import run_job

    while queue and len(inflight) < executor.workers:
        spec = next(
            (s for s in queue if keys[s.run_id] is None or accounting.ready(*keys[s.run_id][:2])),
            None,
        )
        if spec is None:
            if inflight:
                return
            spec = queue[0]  # nothing runs: wait for its calibration here
        queue.remove(spec)
        before = accounting.wait_seconds
        try:
            calib = accounting.get(*keys[spec.run_id]) if keys[spec.run_id] else None
        except Exception as err:
            fut: Future = Future()
            fut.set_exception(err)
            inflight[fut] = (spec, accounting.wait_seconds - before)
            continue
        sinks.bar.started(f"{spec.mechanism} ε={spec.epsilon} seed={spec.seed}")
        fut = executor.submit(run_job, spec, calib, with_context=True)
        inflight[fut] = (spec, accounting.wait_seconds - before)


def _wait_some(inflight: dict[Future, Any], accounting: AccountingCache) -> list[Future]:
    """The finished runs, after waiting for one run or one calibration to finish."""
    done = [f for f in inflight if f.done()]
    if done:
        return done
    waiting = list(inflight) + [f for f in accounting.pending() if not f.done()]
    while waiting:  # short waits: Ctrl-C and SIGTERM are handled between them
        finished, _ = futures_wait(waiting, timeout=1.0, return_when=FIRST_COMPLETED)
        if finished:
            break
    return [f for f in inflight if f.done()]


def _collect(
    cfg: CompareConfig,
    spec: RunSpec,
    fut: Future,
    wait: float,
    datas: tuple[ClassificationData | None, ClassificationData | None],
    sinks: _Sinks,
) -> str | None:
    """Record a finished run; returns ``None``, or its error as one line (not recorded)."""
    try:
        outcome, seconds = fut.result()
    except KeyboardInterrupt:
        raise
    except Exception as err:  # one failed run must not lose the others
        if isinstance(err, RemoteError):
            print(err.remote_traceback, file=sys.stderr)
        elif not isinstance(err, WorkerDied):
            traceback.print_exc(file=sys.stderr)
        return f"{type(err).__name__}: {err}".replace("\n", " ")
    # outside the try: a row that cannot be written is an internal error, not a run to retry
    _record(cfg, spec, outcome, wait, seconds, datas, sinks)
    sinks.bar.finished(spec.run_id, ok=True, detail=f"accuracy {outcome.accuracy:.3f}")
    return None


def _record_failure(
    cfg: CompareConfig,
    spec: RunSpec,
    error: str,
    datas: tuple[ClassificationData | None, ClassificationData | None],
    sinks: _Sinks,
) -> None:
    """A run failed for good: a row in ``results.csv`` whose notes say why (``--resume``
    runs it again), a line in the report's failures, and the bar."""
    sinks.results.write({**_spec_columns(spec, *datas), "notes": FAILED_PREFIX + error})
    sinks.failures.append(f"{spec.run_id}: {error}")
    sinks.bar.finished(spec.run_id, ok=False, detail=error)


def _record(
    cfg: CompareConfig,
    spec: RunSpec,
    outcome: Any,
    wait: float,
    seconds: float,
    datas: tuple[ClassificationData | None, ClassificationData | None],
    sinks: _Sinks,
) -> None:
    """Append a finished run to ``results.csv`` and its epochs to ``epochs.csv``; add its
    times (it ran ``seconds`` and waited ``wait`` s for its calibration) to the timings."""
    t0 = time.perf_counter()
    row = _row(cfg, spec, outcome, *datas)
    row["accounting_seconds"] = outcome.accounting_seconds + wait
    row["seconds"] = seconds + wait
    sinks.results.write(row)
    for e in outcome.epochs:
        sinks.epochs.write(
            {
                "run_id": spec.run_id,
                "mechanism": spec.mechanism,
                "seed": spec.seed,
                "claimed_target_epsilon": row["claimed_target_epsilon"],
                "verified_target_epsilon": row["verified_target_epsilon"],
                "unverified_target_epsilon": row["unverified_target_epsilon"],
                **e,
            }
        )
    timings = sinks.timings
    timings["train"] += outcome.train_seconds
    timings["accounting (waiting + checks)"] += row["accounting_seconds"]
    timings["harness (per-run overhead)"] += max(
        0.0, seconds - outcome.train_seconds - outcome.accounting_seconds
    ) + (time.perf_counter() - t0)


def _write_outputs(
    cfg: CompareConfig,
    out: Path,
    plots: bool,
    timings: dict[str, float],
    t_start: float,
    where: str,
    planned: int,
    interrupted: signal.Signals | None,
    failures: list[str],
    datas: tuple[ClassificationData | None, ClassificationData | None] = (None, None),
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Summarise ``results.csv``, draw the plots and write ``report.md``; returns the summary
    and the plot paths. ``datas`` (the networks' and convex ERM's data) give the report's
    data section: each data set's preprocessing and its majority-class rate."""
    t_rep = time.perf_counter()
    rows = read_results(out / "results.csv")
    summary = summarize(rows, order=list(cfg.mechanisms))
    paths: list[Path] = []
    if plots and rows:
        paths = write_plots(summary, read_rows(out / "epochs.csv"), out)
    context = _data_context(datas)
    try:
        chance = chance_notes(summary, rows, context, cfg, *datas)
    except Exception as err:  # a diagnostic must never cost the report
        chance = [f"(the notes on rows at chance failed: {type(err).__name__}: {err})"]
    timings["report and plots"] = time.perf_counter() - t_rep
    timings["total"] = time.perf_counter() - t_start
    config_view = {k: v for k, v in asdict(cfg).items()}
    config_view["runs on"] = where
    write_report(
        out,
        summary,
        paths,
        config=config_view,
        timings=timings,
        planned=planned,
        finished=len(rows),
        interrupted=interrupted is not None,
        failures=failures,
        signal_name=None if interrupted is None else interrupted.name,
        data=context,
        chance=chance,
    )
    return summary, paths


def _data_context(
    datas: tuple[ClassificationData | None, ClassificationData | None],
) -> list[dict[str, Any]]:
    """What the report says about each data set used: role, sizes, preprocessing and the
    best constant guess's test accuracy (the majority-class rate)."""
    out = []
    for role, data in zip(("networks", "convex ERM"), datas):
        if data is None:
            continue
        counts = np.bincount(np.asarray(data.y_test), minlength=data.num_classes)
        out.append(
            {
                "role": role,
                "dataset": data.name,
                "n_train": data.n_train,
                "n_test": int(len(data.y_test)),
                "preprocessing": data.info.get("preprocessing", ""),
                "majority_rate": float(counts.max() / max(1, counts.sum())),
            }
        )
    return out


def _needs_accounting(specs: list[RunSpec]) -> bool:
    return any(family_of(s.mechanism) in ("dpsgd", "dpmix") for s in specs)


def _save_accounting(out: Path, accounting: AccountingCache) -> None:
    path = out / "accounting.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(accounting.results, indent=1), encoding="utf-8")
    tmp.replace(path)


def _nn_dim(cfg: CompareConfig, data: ClassificationData, dims: dict[str, int]) -> int:
    if "nn" not in dims:
        from .runners import count_parameters, make_model

        dims["nn"] = count_parameters(make_model(cfg, data))
    return dims["nn"]


def _key(
    cfg: CompareConfig,
    spec: RunSpec,
    data: ClassificationData | None,
    dims: dict[str, int],
) -> tuple[str, Any, Any] | None:
    fam = family_of(spec.mechanism)
    if fam == "dpsgd":
        assert data is not None and spec.epsilon is not None
        key = DPSGDKey(
            spec.mechanism,
            float(spec.epsilon),
            float(cfg.delta),
            _nn_dim(cfg, data, dims),
            data.n_train,
            cfg.batch_size,
            cfg.epochs,
            cfg.paper_sensitivity,
        )
        return "dpsgd", key, None
    if fam == "dpmix":
        assert data is not None and spec.epsilon is not None
        key2 = DPMixKey(
            spec.mechanism.split("-", 1)[1],
            float(spec.epsilon),
            float(cfg.delta),
            cfg.dpmix_l,
            cfg.dpmix_T or 2 * data.n_train,
            data.n_train,
            data.n_features,
            data.num_classes,
            data.bound,
            tuple(int(c) for c in np.bincount(data.y_train, minlength=data.num_classes)),
        )
        return "dpmix", key2, data.y_train
    return None


def _spec_columns(
    spec: RunSpec, nn_data: ClassificationData | None, erm_data: ClassificationData | None
) -> dict[str, Any]:
    """The columns of a ``results.csv`` row that the plan fixes (what ran, on what, aimed at
    which labelled ε): those of a finished run and of a failed one alike."""
    label = target_label(spec.mechanism)
    fam = family_of(spec.mechanism)
    data = erm_data if (fam == "erm" or spec.mechanism == "nonprivate-logreg") else nn_data
    return {
        "run_id": spec.run_id,
        "mechanism": spec.mechanism,
        "family": fam,
        "dataset": spec.dataset,
        "model": spec.model,
        "seed": spec.seed,
        "target_label": label or "none",
        "claimed_target_epsilon": spec.epsilon if label == CLAIMED else None,
        "verified_target_epsilon": spec.epsilon if label == VERIFIED else None,
        "unverified_target_epsilon": spec.epsilon if label == UNVERIFIED else None,
        "n_train": data.n_train if data is not None else None,
    }


def _row(
    cfg: CompareConfig,
    spec: RunSpec,
    o: Any,
    nn_data: ClassificationData | None,
    erm_data: ClassificationData | None,
) -> dict[str, Any]:
    fam = family_of(spec.mechanism)
    data = erm_data if (fam == "erm" or spec.mechanism == "nonprivate-logreg") else nn_data
    row: dict[str, Any] = {
        **_spec_columns(spec, nn_data, erm_data),
        "claimed_epsilon": o.claimed.epsilon if o.claimed is not None else None,
        "claimed_delta": o.claimed.delta if o.claimed is not None else None,
        "verified_epsilon": o.verified.epsilon if o.verified is not None else None,
        "verified_delta": o.verified.delta if o.verified is not None else None,
        "expected_noise_norm": o.expected_noise_norm,
        "drawn_noise_norm": o.drawn_noise_norm,
        "noise_scale": o.noise_scale,
        "dim": o.dim,
        "steps": o.steps,
        "accuracy": o.accuracy,
        "train_seconds": o.train_seconds,
        "claimed_source": o.claimed.source if o.claimed is not None else "",
        "verified_source": o.verified.source if o.verified is not None else "",
        "notes": "; ".join(o.notes),
    }
    if o.verified is not None and math.isinf(o.verified.epsilon):
        row["notes"] = ("verified ε is infinite at this δ; " + row["notes"]).rstrip("; ")
    if data is not None and fam == "erm" and data.info.get("erm_note"):
        row["notes"] = "; ".join(filter(None, (row["notes"], data.info["erm_note"])))
    if is_unverified(spec.mechanism):
        if o.verified is not None:  # never show an unverified noise as verified
            raise RuntimeError(
                f"{spec.mechanism} is unverified but its run reported a verified figure "
                f"({o.verified}); not recorded"
            )
        row["notes"] = ("unverified: no privacy figure is proven; " + row["notes"]).rstrip("; ")
    return row
