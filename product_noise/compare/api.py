"""The Python entry point of a comparison on a user's own task:
:func:`run_comparison`.

It is the harness behind ``product-noise compare`` (same planning, calibration, accounting,
runners and writers): the rows it returns are those of ``results.csv``, and ``out`` receives
the same ``results.csv``, ``epochs.csv``, ``report.md`` and plots.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from .config import CompareConfig, ConfigError, default_config
from .tasks import DPSGDTask, ERMTask

__all__ = ["run_comparison"]


def run_comparison(
    task: DPSGDTask | ERMTask | Sequence[DPSGDTask | ERMTask],
    mechanisms: Sequence[str],
    epsilons: Sequence[float],
    seeds: Sequence[int] = (0,),
    out: str | Path = "runs/comparison",
    *,
    resume: bool = False,
    progress: bool = False,
    plots: bool = True,
    config: CompareConfig | None = None,
) -> list[dict[str, str]]:
    """Compare mechanisms on a user's task at equal target ε; return the labelled rows.

    Parameters
    ----------
    task : DPSGDTask, ERMTask, or a sequence of one of each
        The data, model and settings (:mod:`product_noise.compare.tasks`). Mechanisms of a
        family no task provides are refused when named (left out when a group selects them).
    mechanisms : sequence of str
        Mechanism names or groups of ``product-noise compare`` (``dpsgd-gaussian``,
        ``dpsgd-<user mechanism>``, ``erm-output-gaussian``, ``nonprivate-nn``, ``dpsgd``,
        ``user``, ...).
    epsilons : sequence of float
        Target ε grid.
    seeds : sequence of int, default (0,)
        Each private run is repeated for every seed.
    out : str or Path
        Output directory (``results.csv``, ``epochs.csv``, ``report.md``, plots).
    resume : bool, default False
        Continue the comparison in ``out``: skip the finished runs. The settings, the task's
        data (a fingerprint) and its model size must be those of the earlier run.
    progress : bool, default False
        Progress bars on stderr.
    plots : bool, default True
        Write the PNG plots.
    config : CompareConfig, optional
        Other settings (DPMix, baselines, workers, ...); the task's own settings replace its
        training ones.

    Notes
    -----
    The calibrations run in worker processes started with ``spawn`` (``config.workers``, 0:
    automatic), which import the caller's main module: call this from under
    ``if __name__ == "__main__":`` in a script, or pass ``CompareConfig(workers=1)``.

    Returns
    -------
    rows : list of dict
        Every row of ``results.csv`` (its columns; values as written, empty = none),
        including the runs of an earlier run when resuming.

    Raises
    ------
    ConfigError
        A bad task (no labels, wrong or mismatched shapes, empty data, a model without
        trainable parameters, ...), an unknown mechanism, or one the task cannot run: one
        line, before anything is trained.
    RuntimeError
        If some runs failed (the others are in ``out``; ``report.md`` lists the failures).
    KeyboardInterrupt
        If Ctrl-C or SIGTERM stopped the runs (the finished rows stay in ``out``; continue
        with ``resume=True``).
    """
    from .harness import run_compare
    from .report import read_results

    tasks = list(task) if isinstance(task, (list, tuple)) else [task]
    if isinstance(mechanisms, str) or isinstance(epsilons, (int, float)):
        raise ConfigError("mechanisms and epsilons must be sequences (lists), not one value")
    cfg = dataclasses.replace(
        config or default_config(),
        mechanisms=list(mechanisms),
        epsilons=list(epsilons),
        seeds=list(seeds),
        name="run_comparison",
    )
    result = run_compare(cfg, Path(out), resume=resume, progress=progress, plots=plots, tasks=tasks)
    report = result.out / "report.md"
    if result.interrupted is not None:
        raise KeyboardInterrupt(f"comparison in {result.out} interrupted ({result.interrupted})")
    if result.status:
        raise RuntimeError(f"comparison in {result.out}: some runs failed; see {report}")
    return [dict(r) for r in read_results(Path(out) / "results.csv")]
