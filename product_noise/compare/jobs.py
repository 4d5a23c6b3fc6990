"""One run of a comparison as a job an executor can run anywhere: in this process, a local
worker process or a Dask worker.

A job gets the :class:`RunContext` (the configuration and tasks, sent once per worker; never
the data), the run's :class:`~product_noise.compare.harness.RunSpec` and its calibration
(computed by the comparison beforehand). A worker loads the data itself, once per process, from
the data root (a shared filesystem on a cluster) or from the tasks. Each run seeds itself from
its spec and computes on ``threads`` threads, so a job's result does not depend on where or
after what it ran.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .config import BASELINE_FAMILIES, CompareConfig, family_of
from .data import ClassificationData

__all__ = ["RunContext", "run_job", "import_plugins_once"]

#: data and ERM plans loaded in this process, per context token
_LOADED: dict[str, dict[str, Any]] = {}

#: plugin → the mechanisms it registered (a plugin is imported once while they stay registered)
_PLUGINS: dict[str, list[str]] = {}


def import_plugins_once(plugins: Any) -> None:
    """:func:`~product_noise.mechanisms.registry.import_plugins`, each plugin once: a
    ``module:callable`` plugin registers again only if its mechanisms were removed.

    Raises
    ------
    ConfigError
        A plugin that cannot be imported.
    """
    from ..mechanisms.registry import REGISTRY, import_plugins
    from ..validation import InputError
    from .config import ConfigError

    for item in plugins:
        if item in _PLUGINS and all(n in REGISTRY for n in _PLUGINS[item]):
            continue
        try:
            _PLUGINS[item] = import_plugins([item])
        except InputError as err:
            raise ConfigError(str(err)) from None


def plugin_mechanisms(plugins: Any) -> set[str]:
    """The mechanisms that :func:`import_plugins_once` registered for ``plugins`` (those a
    worker process registers too when it imports them)."""
    return {name for item in plugins for name in _PLUGINS.get(item, [])}


@dataclass
class RunContext:
    """What every run of one comparison shares.

    Parameters
    ----------
    cfg : CompareConfig
        The comparison's settings (its plugins are imported in each worker).
    tasks : tuple
        The user's tasks (lowered to data in each worker), or empty for the built-in data.
    need_nn, need_erm : bool
        Which data sets the runs use.
    threads : int
        Torch and BLAS threads of each run.
    progress : bool
        Per-epoch progress bars (only when the runs are in the comparison's own process).
    """

    cfg: CompareConfig
    tasks: tuple = ()
    need_nn: bool = False
    need_erm: bool = False
    threads: int = 1
    progress: bool = False
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def adopt(self, nn_data: ClassificationData | None, erm_data: ClassificationData | None):
        """Use data already loaded in this process (the comparison's own) for this context."""
        _LOADED[self.token] = {"nn": nn_data, "erm": erm_data, "plans": {}}

    def loaded(self) -> dict[str, Any]:
        """This process's data of the context, loaded on first use."""
        if self.token not in _LOADED:
            _LOADED.clear()  # one comparison per worker at a time: drop an earlier one's data
            _LOADED[self.token] = {**self._load(), "plans": {}}
        return _LOADED[self.token]

    def _load(self) -> dict[str, Any]:
        from .data import load_erm_data, load_nn_data
        from .tasks import DPSGDTask, ERMTask, lower_dpsgd_task, lower_erm_task

        import_plugins_once(self.cfg.plugins)
        cfg = self.cfg
        nn_task = next((t for t in self.tasks if isinstance(t, DPSGDTask)), None)
        erm_task = next((t for t in self.tasks if isinstance(t, ERMTask)), None)
        nn = erm = None
        if self.need_nn:
            nn = (
                lower_dpsgd_task(nn_task)
                if nn_task is not None
                else load_nn_data(cfg.nn_data, cfg.data_root, cfg.max_train)
            )
        if self.need_erm:
            erm = (
                lower_erm_task(erm_task)
                if erm_task is not None
                else load_erm_data(cfg.erm_data, cfg.data_root, cfg.max_train)
            )
        return {"nn": nn, "erm": erm}


def run_job(context: RunContext, spec: Any, calib: dict[str, Any] | None) -> tuple[Any, float]:
    """Train and evaluate one run; returns its outcome and its wall time in seconds."""
    import torch
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(context.threads)
    try:
        with threadpool_limits(context.threads):
            outcome = _execute(context, spec, calib)
    finally:
        torch.set_num_threads(threads)
    return outcome, time.perf_counter() - t0


def _execute(context: RunContext, spec: Any, calib: dict[str, Any] | None) -> Any:
    from . import runners

    cfg, data = context.cfg, context.loaded()
    nn_data, erm_data, progress = data["nn"], data["erm"], context.progress
    mech = spec.mechanism
    fam = family_of(mech)
    if mech == "nonprivate-nn":
        return runners.run_dpsgd(cfg, nn_data, spec.seed, None, progress=progress)
    if mech == "nonprivate-logreg":
        return runners.run_logreg_reference(cfg, erm_data, spec.seed)
    if fam in BASELINE_FAMILIES:
        from .runners.baselines import run_baseline

        return run_baseline(cfg, nn_data, mech, float(spec.epsilon), spec.seed)
    if fam == "erm":
        _, method, noise = mech.split("-", 2)
        delta = float(cfg.erm_delta) if cfg.erm_delta is not None else 1.0 / erm_data.n_train**2
        return runners.run_erm(
            cfg,
            erm_data,
            method,
            noise.replace("-", "_"),
            float(spec.epsilon),
            delta,
            spec.seed,
            data["plans"],
        )
    assert calib is not None, f"{spec.run_id} needs its calibration"
    if fam == "dpmix":
        return runners.run_dpmix(cfg, nn_data, mech.split("-", 1)[1], spec.seed, calib)
    desc = f"{mech} ε={spec.epsilon:g} seed {spec.seed}"
    return runners.run_dpsgd(cfg, nn_data, spec.seed, calib, progress=progress, desc=desc)
