"""Plan and execute a comparison: every (mechanism, target ε, seed) is one run.

Order of work: every calibration is scheduled first (in worker processes when ``workers > 1``),
then the runs that need no calibration (references, convex ERM) train while the workers compute,
then DPMix and DP-SGD, each waiting only for its own calibration. Each finished run is appended
to ``results.csv`` at once; ``--resume`` skips the runs already there, and the calibrations of an
earlier run are read back from ``accounting.json``.

Ctrl-C (SIGINT) and SIGTERM (what ``timeout`` and Slurm send) stop the runs the same way: the
calibration workers are ended, the finished rows stay in ``results.csv``, ``report.md`` covers
them and the status is 128 + the signal's number (130, 143).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
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
from .report import (
    EPOCH_COLUMNS,
    RESULT_COLUMNS,
    CsvAppender,
    format_summary,
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
    done = {r["run_id"] for r in read_rows(results)} if resume else set()
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

    _import_plugins(cfg.plugins)
    if tasks:
        tasks = check_tasks(list(tasks))
    elif cfg.task:
        tasks = load_task(cfg.task)
    apply_tasks(cfg, tasks)
    cfg.validate(tasks=tasks)
    return list(tasks)


#: plugin → the mechanisms it registered (a plugin is imported once while they stay registered)
_PLUGINS: dict[str, list[str]] = {}


def _import_plugins(plugins: Sequence[str]) -> None:
    """:func:`~product_noise.mechanisms.registry.import_plugins`, each plugin once: a
    ``module:callable`` plugin registers again only if its mechanisms were removed."""
    from ..mechanisms.registry import REGISTRY, import_plugins
    from ..validation import InputError

    for item in plugins:
        if item in _PLUGINS and all(n in REGISTRY for n in _PLUGINS[item]):
            continue
        try:
            _PLUGINS[item] = import_plugins([item])
        except InputError as err:
            raise ConfigError(str(err)) from None


def _erm_delta(cfg: CompareConfig, data: ClassificationData) -> float:
    return float(cfg.erm_delta) if cfg.erm_delta is not None else 1.0 / data.n_train**2


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
    workers = cfg.workers or min(2, os.cpu_count() or 1)

    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    # small models: one thread is fastest, and leaves a core to the calibration workers
    torch.set_num_threads(cfg.threads or 1)
    blas = threadpool_limits(1)  # idle BLAS threads spinning beside the workers cost a lot
    accounting = AccountingCache(workers=workers if _needs_accounting(todo) else 1, stored=stored)
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
            finished, interrupted = _run_all(
                cfg,
                todo,
                nn_data,
                erm_data,
                accounting,
                results,
                epochs_csv,
                timings,
                failures,
                progress,
            )
        finally:
            accounting.close(cancel=interrupted is not None)
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
            workers,
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


def _run_all(
    cfg: CompareConfig,
    todo: list[RunSpec],
    nn_data: ClassificationData | None,
    erm_data: ClassificationData | None,
    accounting: AccountingCache,
    results: CsvAppender,
    epochs_csv: CsvAppender,
    timings: dict[str, float],
    failures: list[str],
    progress: bool,
) -> tuple[int, signal.Signals | None]:
    """Train and evaluate the runs ``todo``, each appended to ``results.csv`` as it finishes.

    A failed run is added to ``failures`` and the others go on. Returns the number of finished
    runs and the signal that stopped them (``KeyboardInterrupt``: SIGINT; :class:`Terminated`:
    SIGTERM), if any.
    """
    dims: dict[str, int] = {}
    plan_cache: dict = {}
    finished = 0
    try:
        keys = _schedule_calibrations(cfg, todo, nn_data, accounting, dims)
        bar: Any = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="compare", unit="run", file=sys.stderr)
        queue = list(todo)
        while queue:
            spec = _next_spec(queue, keys, accounting)
            queue.remove(spec)
            if bar is not None:
                bar.set_postfix_str(f"{spec.mechanism} ε={spec.epsilon} seed={spec.seed}")
            t0 = time.perf_counter()
            try:
                outcome, wait = _execute(
                    cfg, spec, nn_data, erm_data, accounting, dims, plan_cache, progress
                )
                _record(
                    cfg, spec, outcome, wait, t0, nn_data, erm_data, results, epochs_csv, timings
                )
            except KeyboardInterrupt:
                raise
            except Exception as err:  # one failed run must not lose the others
                failures.append(f"{spec.run_id}: {type(err).__name__}: {err}")
                traceback.print_exc(file=sys.stderr)
                if bar is not None:
                    bar.update(1)
                continue
            finished += 1
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    except KeyboardInterrupt as exc:
        sig = signal.Signals(getattr(exc, "signum", signal.SIGINT))
        print(
            f"\ninterrupted ({sig.name}): writing the report of the finished runs", file=sys.stderr
        )
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


def _next_spec(queue: list[RunSpec], keys: dict[str, Any], accounting: AccountingCache) -> RunSpec:
    """The first run whose calibration is ready (or needs none); else the first (to wait for)."""
    return next(
        (s for s in queue if keys[s.run_id] is None or accounting.ready(*keys[s.run_id][:2])),
        queue[0],
    )


def _record(
    cfg: CompareConfig,
    spec: RunSpec,
    outcome: Any,
    wait: float,
    t0: float,
    nn_data: ClassificationData | None,
    erm_data: ClassificationData | None,
    results: CsvAppender,
    epochs_csv: CsvAppender,
    timings: dict[str, float],
) -> None:
    """Append a finished run to ``results.csv`` and its epochs to ``epochs.csv``; add its
    times (it started at ``t0`` and waited ``wait`` s for its calibration) to ``timings``."""
    row = _row(cfg, spec, outcome, nn_data, erm_data)
    row["accounting_seconds"] = outcome.accounting_seconds + wait
    row["seconds"] = time.perf_counter() - t0  # set before writing; includes the write
    results.write(row)
    for e in outcome.epochs:
        epochs_csv.write(
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
    elapsed = time.perf_counter() - t0
    timings["train"] += outcome.train_seconds
    timings["accounting (waiting + checks)"] += row["accounting_seconds"]
    timings["harness (per-run overhead)"] += max(
        0.0, elapsed - outcome.train_seconds - row["accounting_seconds"]
    )


def _write_outputs(
    cfg: CompareConfig,
    out: Path,
    plots: bool,
    timings: dict[str, float],
    t_start: float,
    workers: int,
    planned: int,
    interrupted: signal.Signals | None,
    failures: list[str],
    datas: tuple[ClassificationData | None, ClassificationData | None] = (None, None),
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Summarise ``results.csv``, draw the plots and write ``report.md``; returns the summary
    and the plot paths. ``datas`` (the networks' and convex ERM's data) give the report's
    data section: each data set's preprocessing and its majority-class rate."""
    t_rep = time.perf_counter()
    rows = read_rows(out / "results.csv")
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
    config_view["workers (used)"] = workers
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


def _execute(
    cfg: CompareConfig,
    spec: RunSpec,
    nn_data: ClassificationData | None,
    erm_data: ClassificationData | None,
    accounting: AccountingCache,
    dims: dict[str, int],
    plan_cache: dict,
    progress: bool,
) -> tuple[Any, float]:
    from . import runners

    mech = spec.mechanism
    fam = family_of(mech)
    if mech == "nonprivate-nn":
        assert nn_data is not None
        return runners.run_dpsgd(cfg, nn_data, spec.seed, None, progress=progress), 0.0
    if mech == "nonprivate-logreg":
        assert erm_data is not None
        return runners.run_logreg_reference(cfg, erm_data, spec.seed), 0.0
    if fam in BASELINE_FAMILIES:
        from .runners.baselines import run_baseline

        assert nn_data is not None and spec.epsilon is not None
        return run_baseline(cfg, nn_data, mech, float(spec.epsilon), spec.seed), 0.0
    if fam == "erm":
        assert erm_data is not None and spec.epsilon is not None
        _, method, noise = mech.split("-", 2)
        return (
            runners.run_erm(
                cfg,
                erm_data,
                method,
                noise.replace("-", "_"),
                float(spec.epsilon),
                _erm_delta(cfg, erm_data),
                spec.seed,
                plan_cache,
            ),
            0.0,
        )
    key = _key(cfg, spec, nn_data, dims)
    assert key is not None and nn_data is not None
    before = accounting.wait_seconds
    calib = accounting.get(*key)
    wait = accounting.wait_seconds - before
    if fam == "dpmix":
        return runners.run_dpmix(cfg, nn_data, key[1].mixing, spec.seed, calib), wait
    desc = f"{mech} ε={spec.epsilon:g} seed {spec.seed}"
    return runners.run_dpsgd(cfg, nn_data, spec.seed, calib, progress=progress, desc=desc), wait


def _row(
    cfg: CompareConfig,
    spec: RunSpec,
    o: Any,
    nn_data: ClassificationData | None,
    erm_data: ClassificationData | None,
) -> dict[str, Any]:
    label = target_label(spec.mechanism)
    fam = family_of(spec.mechanism)
    data = erm_data if (fam == "erm" or spec.mechanism == "nonprivate-logreg") else nn_data
    row: dict[str, Any] = {
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
        "claimed_epsilon": o.claimed.epsilon if o.claimed is not None else None,
        "claimed_delta": o.claimed.delta if o.claimed is not None else None,
        "verified_epsilon": o.verified.epsilon if o.verified is not None else None,
        "verified_delta": o.verified.delta if o.verified is not None else None,
        "expected_noise_norm": o.expected_noise_norm,
        "drawn_noise_norm": o.drawn_noise_norm,
        "noise_scale": o.noise_scale,
        "dim": o.dim,
        "steps": o.steps,
        "n_train": data.n_train if data is not None else None,
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
