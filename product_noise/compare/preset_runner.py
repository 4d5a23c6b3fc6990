"""Run the real-data presets (:mod:`product_noise.compare.presets`), one comparison each.

Every preset is an ordinary comparison (:func:`~product_noise.compare.harness.run_compare`) in
its own folder ``<out>/<preset>``, with its own ``results.csv``, ``report.md`` and plots, so
``--resume`` continues each where it stopped. A preset whose data are missing or malformed is
reported (the files expected and where they come from) and the others still run; an
interruption (SIGINT, SIGTERM) keeps every finished run and stops the remaining presets.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError, default_config, quick_config
from .executors import usable_cores
from .presets import Preset

__all__ = ["PresetOutcome", "run_presets", "NOT_RUN", "usable_cores"]

#: statuses of a preset that trained nothing
NOT_RUN = ("missing", "bad data", "refused", "not started")


@dataclass
class PresetOutcome:
    """What one preset did.

    ``status``: ``"done"``, ``"failed"`` (some runs failed; the others finished),
    ``"missing"`` (its data are not under the data root: ``message`` names them),
    ``"bad data"`` (files present but unreadable), ``"refused"`` (the comparison refused
    its data or settings before training: ``message`` says why), ``"interrupted"``, ``"not
    started"`` (an earlier preset was interrupted), ``"not resumed"`` (likewise, but its folder
    holds the rows of an earlier invocation, which the page shows).
    """

    preset: Preset
    status: str
    out: Path | None = None
    message: str = ""
    seconds: float = 0.0
    rows: list[dict[str, str]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    #: wall time over every invocation that ran this preset's folder (``--resume`` adds up)
    total_seconds: float = 0.0
    invocations: int = 0


def _read_wall_time(where: Path) -> tuple[float, int]:
    """``where/wall_time.json``: (seconds, invocations) so far; (0, 0) if absent or unreadable."""
    try:
        stored = json.loads((where / "wall_time.json").read_text(encoding="utf-8"))
        return float(stored["seconds"]), int(stored["invocations"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0, 0


def _add_wall_time(where: Path, seconds: float) -> tuple[float, int]:
    """Add ``seconds`` to ``where/wall_time.json``; return the total and the invocations."""
    path = where / "wall_time.json"
    total, n = _read_wall_time(where)
    total, n = total + seconds, n + 1
    path.write_text(json.dumps({"seconds": total, "invocations": n}), encoding="utf-8")
    return total, n


def _config(preset: Preset, overrides: dict[str, Any], quick: bool, workers: int) -> Any:
    base = quick_config() if quick else default_config()
    return dataclasses.replace(
        base,
        mechanisms=list(preset.mechanisms),
        epsilons=list(preset.epsilons),
        seeds=list(preset.seeds[:1] if quick else preset.seeds),
        name=preset.name,
        workers=workers,
        threads=usable_cores() if preset.large else 0,
        **overrides,
    )


def _run_one(
    preset: Preset, root: Path | None, out: Path, quick: bool, workers: int, **kw: Any
) -> PresetOutcome:
    from ..data.loaders import DatasetNotFoundError
    from ..data.roots import dataset_dir
    from .harness import run_compare
    from .report import read_results

    t0 = time.perf_counter()
    try:
        folder = dataset_dir(root, preset.folder)
        tasks, overrides = preset.build(folder, quick)
    except DatasetNotFoundError as err:
        return PresetOutcome(preset, "missing", message=str(err))
    except (ConfigError, ValueError) as err:
        return PresetOutcome(preset, "bad data", message=f"{type(err).__name__}: {err}")
    cfg = _config(preset, overrides, quick, workers)
    where = out / preset.name
    # --resume continues the presets that have a folder and starts the others
    kw["resume"] = bool(kw.get("resume")) and (where / "results.csv").exists()
    try:
        result = run_compare(cfg, where, tasks=tasks, **kw)
    except ConfigError as err:  # refused before training (its data, or --resume settings)
        return PresetOutcome(preset, "refused", where, message=str(err))
    status = {0: "done", 1: "failed"}.get(result.status, "interrupted")
    outcome = PresetOutcome(preset, status, where, seconds=time.perf_counter() - t0)
    outcome.total_seconds, outcome.invocations = _add_wall_time(where, outcome.seconds)
    outcome.rows = [dict(r) for r in read_results(where / "results.csv")]
    outcome.config = {
        k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(cfg).items()
    }
    if result.interrupted is not None:
        outcome.message = f"interrupted ({result.interrupted})"
    return outcome


def _not_run(preset: Preset, out: Path, why: str) -> PresetOutcome:
    """A preset the command did not reach: its earlier rows if its folder has any."""
    from .report import read_results

    where = out / preset.name
    if not (where / "results.csv").exists():
        return PresetOutcome(preset, "not started", message=f"not started: {why}")
    outcome = PresetOutcome(preset, "not resumed", where, message=f"not resumed: {why}")
    outcome.rows = [dict(r) for r in read_results(where / "results.csv")]
    outcome.total_seconds, outcome.invocations = _read_wall_time(where)
    return outcome


def run_presets(
    presets: list[Preset],
    root: Path | None,
    out: Path,
    *,
    quick: bool = False,
    resume: bool = False,
    progress: bool = True,
    plots: bool = True,
    workers: int = 0,
    on_done: Any = None,
) -> list[PresetOutcome]:
    """Run ``presets`` one after another into ``out/<preset>``; return what each did.

    Parameters
    ----------
    presets : list of Preset
        From :func:`~product_noise.compare.presets.get_preset`.
    root : Path or None
        The data root (``None``: ``$PRODUCT_NOISE_DATA``).
    out : Path
        Parent folder of the presets' comparison folders.
    quick : bool
        The CI form: a few hundred rows, one epoch, one seed.
    resume, progress, plots, workers :
        As for ``product-noise compare``.
    on_done : callable, optional
        ``on_done(outcome)`` after each preset (e.g. to print a line).

    Raises
    ------
    ConfigError
        ``--resume`` against a folder run with other settings (before that preset trains).
    """
    outcomes: list[PresetOutcome] = []
    for i, preset in enumerate(presets):
        if outcomes and outcomes[-1].status == "interrupted":
            why = f"the command was interrupted during {presets[i - 1].name}"
            outcomes += [_not_run(p, out, why) for p in presets[i:]]
            break
        outcome = _run_one(
            preset, root, out, quick, workers, resume=resume, progress=progress, plots=plots
        )
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return outcomes
