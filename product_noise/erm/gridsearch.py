"""Grid search over hyperparameters and ε for the private linear classifiers.

What the official ``gridsearch.py`` of dpml-benchmark (and its product-noise fork) did, with every
privacy figure labelled (``convex_erm_anchors.md`` §2.2, ``product_noise_paper.md`` §6.2):

* ε grid ``{0.01, 0.0316, 0.1, 0.316, 1, 3.16, 10}``; ``δ = 1/n_train²``;
* the dataset's first 80 % for training and the rest for testing (the loaders shuffle first);
* every (ε, hyperparameters) configuration is repeated and reported as mean ± std;
* the reported number is the **best mean test accuracy over the grid**. That choice is made on the
  test split and uses the private data without privacy accounting: it is *not* a private result.
  Next to it, :func:`run_gridsearch` reports the accuracy of one **fixed** configuration chosen in
  advance (:data:`FIXED`), which is what a private release could honestly publish.

The fixed configuration is always part of the grid, so best-over-grid ≥ fixed by construction.

Hyperparameter grids (:data:`GRIDS`):

``amp``
    dpml's ``eps_frac ∈ {.9, .95, .98, .99}`` plus Strategy #1 (``None``),
    ``eps_out_frac ∈ {.001, .01, .1, .5}``, ``L ∈ {0.1, 1, 10}`` (row-norm bound).
``amp-nt``
    the hyperparameter-free AMP: Strategy #1, ``eps_out_frac = 0.01``, ``L = 1``.
``ppssgd``
    dpml's ``λ ∈ {1e-4, 1e-3}``, ``R ∈ {1, 10, 100}``, ``L ∈ {0.1, 1, 10}``, 200 epochs, batch 50.
``output``, ``objective``
    no official grid exists (the product-noise code fixes λ per dataset); this package uses
    ``λ ∈ {1e-4, 1e-3, 1e-2, 0.1}`` × ``L ∈ {0.1, 1}``.
"""

from __future__ import annotations

import csv
import itertools
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from ..privacy import PrivacyFigure
from ..validation import InputError
from .noise import NOISES, check_noise_for_method, noise_choices

__all__ = [
    "ALGORITHMS",
    "EPSILONS",
    "LOSSES",
    "NOISE_CHOICES",
    "noise_choices",
    "GRIDS",
    "FIXED",
    "Run",
    "GridResult",
    "grid_for",
    "run_gridsearch",
    "summarize",
    "write_runs_csv",
    "write_summary_csv",
    "plot_accuracy",
    "non_private_accuracy",
]

ALGORITHMS = ("output", "objective", "amp", "amp-nt", "ppssgd")
LOSSES = ("LR", "SVM")
#: the package's own ERM noises (:data:`product_noise.erm.noise.NOISES`); :func:`run_gridsearch`
#: accepts every name of the live :func:`noise_choices`, including mechanisms registered later
NOISE_CHOICES = NOISES
EPSILONS = (0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0)
#: Huber parameter of dpml-benchmark's Huber-SVM (``lossfunctions/huber_svm.py``)
HUBER_H = 0.1
#: λ passed to AMP: AMP sets its own regulariser; this only keeps the estimator's lower bound inert
_AMP_MIN_LAM = 1e-12

HYPER_KEYS = ("lam", "data_norm", "amp_eps_frac", "amp_eps_out_frac", "sgd_radius")


def _product(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(axes[k] for k in keys))]


#: the fixed, a-priori configuration of each algorithm (reported next to best-over-grid)
FIXED: dict[str, dict[str, Any]] = {
    "output": {"lam": 1e-3, "data_norm": 1.0},
    "objective": {"lam": 1e-3, "data_norm": 1.0},
    "amp": {"amp_eps_frac": None, "amp_eps_out_frac": 0.01, "data_norm": 1.0},
    "amp-nt": {"amp_eps_frac": None, "amp_eps_out_frac": 0.01, "data_norm": 1.0},
    "ppssgd": {"lam": 1e-3, "sgd_radius": 10.0, "data_norm": 1.0},
}

#: hyperparameter grids (each contains :data:`FIXED`)
GRIDS: dict[str, list[dict[str, Any]]] = {
    "output": _product(lam=(1e-4, 1e-3, 1e-2, 1e-1), data_norm=(0.1, 1.0)),
    "objective": _product(lam=(1e-4, 1e-3, 1e-2, 1e-1), data_norm=(0.1, 1.0)),
    "amp": _product(
        amp_eps_frac=(None, 0.9, 0.95, 0.98, 0.99),
        amp_eps_out_frac=(0.001, 0.01, 0.1, 0.5),
        data_norm=(0.1, 1.0, 10.0),
    ),
    "amp-nt": [dict(FIXED["amp-nt"])],
    "ppssgd": _product(lam=(1e-4, 1e-3), sgd_radius=(1.0, 10.0, 100.0), data_norm=(0.1, 1.0, 10.0)),
}


def grid_for(algorithm: str) -> list[dict[str, Any]]:
    """The grid of ``algorithm`` with the fixed configuration first.

    Parameters
    ----------
    algorithm : str
        One of :data:`ALGORITHMS`.

    Returns
    -------
    list of dict
        Hyperparameter dictionaries; entry 0 is :data:`FIXED` ``[algorithm]``.
    """
    if algorithm not in ALGORITHMS:
        raise InputError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    fixed = FIXED[algorithm]
    rest = [g for g in GRIDS[algorithm] if g != fixed]
    return [dict(fixed)] + [dict(g) for g in rest]


def config_label(config: dict[str, Any]) -> str:
    """A short human-readable name of a configuration (``None`` eps_frac = Strategy #1)."""
    names = {
        "lam": "λ",
        "data_norm": "L",
        "amp_eps_frac": "eps_frac",
        "amp_eps_out_frac": "eps_out_frac",
        "sgd_radius": "R",
    }
    parts = []
    for k in HYPER_KEYS:
        if k in config:
            v = config[k]
            parts.append(f"{names[k]}={'strategy1' if v is None else f'{v:g}'}")
    return ", ".join(parts)


def _estimator_kwargs(algorithm: str, config: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"method": "amp" if algorithm == "amp-nt" else algorithm}
    kw.update(config)
    if kw["method"] == "amp":
        kw.setdefault("lam", _AMP_MIN_LAM)
    return kw


@dataclass
class Run:
    """One fit: ε target, configuration, repeat, the labelled privacy figures and the accuracy."""

    epsilon: float
    delta: float
    config_index: int
    config: dict[str, Any]
    repeat: int
    seed: int
    accuracy: float
    claimed: PrivacyFigure | None
    verified: PrivacyFigure | None
    seconds: float
    status: str = "ok"
    warnings: list[str] = field(default_factory=list)

    @property
    def fixed(self) -> bool:
        """Whether this is the fixed (a-priori) configuration."""
        return self.config_index == 0


@dataclass
class GridResult:
    """All runs of one grid search plus the context needed to report them."""

    algorithm: str
    dataset: str
    loss: str
    noise: str
    epsilons: list[float]
    configs: list[dict[str, Any]]
    repeats: int
    n_train: int
    n_test: int
    n_features: int
    delta: float
    runs: list[Run]
    baseline: float | None = None
    baseline_name: str = ""


def _make_estimator(loss: str, **kwargs: Any) -> Any:
    from .estimators import PrivateHuberSVM, PrivateLogisticRegression

    if loss == "LR":
        return PrivateLogisticRegression(**kwargs)
    if loss == "SVM":
        return PrivateHuberSVM(huber_h=HUBER_H, **kwargs)
    raise ValueError(f"loss must be LR or SVM, got {loss!r}")


def non_private_accuracy(
    loss: str, X_train: Any, y_train: np.ndarray, X_test: Any, y_test: np.ndarray
) -> tuple[float, str]:
    """Non-private baseline test accuracy (sklearn, on the same preprocessed data).

    Returns
    -------
    accuracy, description : float, str
    """
    if loss == "LR":
        from sklearn.linear_model import LogisticRegression

        model: Any = LogisticRegression(max_iter=2000)
        name = "non-private sklearn LogisticRegression(C=1)"
    else:
        from sklearn.svm import LinearSVC

        model = LinearSVC()
        name = "non-private sklearn LinearSVC(C=1)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, y_train)
    return float(model.score(X_test, y_test)), name


def run_gridsearch(
    algorithm: str,
    loss: str,
    noise: str | type,
    X_train: Any,
    y_train: np.ndarray,
    X_test: Any,
    y_test: np.ndarray,
    *,
    dataset: str = "",
    epsilons: Sequence[float] = EPSILONS,
    repeats: int = 10,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    baseline: bool = True,
) -> GridResult:
    """Fit every (ε, configuration, repeat) and record accuracy and labelled privacy figures.

    Parameters
    ----------
    algorithm : {"output", "objective", "amp", "amp-nt", "ppssgd"}
    loss : {"LR", "SVM"}
        Logistic regression or Huber-SVM (``h = 0.1`` as dpml).
    noise : str or type of ScaledMechanism
        A name of :func:`noise_choices` (or an alias, e.g. a user mechanism registered after
        import), or a mechanism class; refused before any fit if it cannot serve
        ``algorithm`` (objective perturbation and AMP need a spherical law).
    X_train, y_train, X_test, y_test :
        The split (dense or CSR).
    dataset : str
        Name used in reports.
    epsilons : sequence of float
        Target ε values (each > 0). ``δ = 1/n_train²``.
    repeats : int
        Repeats per (ε, configuration), each with its own noise seed.
    seed : int
        Master seed; run seeds derive from ``(seed, ε index, configuration index, repeat)``.
    progress : callable, optional
        Called with 1 after each fit (e.g. ``tqdm.update``).
    baseline : bool
        Also fit the non-private baseline.

    Returns
    -------
    GridResult
        A fit that fails (e.g. AMP cannot reach its gradient tolerance) is recorded with
        accuracy NaN and its error in ``status``.
    """
    eps_list, configs, noise_name = _check_grid_args(
        algorithm, loss, noise, X_train, X_test, epsilons, repeats
    )
    n_train = int(X_train.shape[0])
    delta = 1.0 / n_train**2
    runs: list[Run] = []
    for ie, eps in enumerate(eps_list):
        for ic, config in enumerate(configs):
            for rep in range(int(repeats)):
                run_seed = int(
                    np.random.SeedSequence([int(seed), ie, ic, rep]).generate_state(1)[0]
                )
                est = _make_estimator(
                    loss,
                    epsilon=eps,
                    delta=delta,
                    noise=noise,
                    random_state=run_seed,
                    **_estimator_kwargs(algorithm, config),
                )
                acc, claimed, verified, status, seconds, messages = _fit_and_score(
                    est, X_train, y_train, X_test, y_test
                )
                runs.append(
                    Run(
                        epsilon=eps,
                        delta=delta,
                        config_index=ic,
                        config=dict(config),
                        repeat=rep,
                        seed=run_seed,
                        accuracy=acc,
                        claimed=claimed,
                        verified=verified,
                        seconds=seconds,
                        status=status,
                        warnings=messages,
                    )
                )
                if progress is not None:
                    progress(1)
    result = GridResult(
        algorithm=algorithm,
        dataset=dataset,
        loss=loss,
        noise=noise_name,
        epsilons=eps_list,
        configs=configs,
        repeats=int(repeats),
        n_train=n_train,
        n_test=int(X_test.shape[0]),
        n_features=int(X_train.shape[1]),
        delta=delta,
        runs=runs,
    )
    if baseline:
        result.baseline, result.baseline_name = non_private_accuracy(
            loss, X_train, y_train, X_test, y_test
        )
    return result


def _check_grid_args(
    algorithm: str,
    loss: str,
    noise: str | type,
    X_train: Any,
    X_test: Any,
    epsilons: Sequence[float],
    repeats: int,
) -> tuple[list[float], list[dict[str, Any]], str]:
    """Check the arguments of :func:`run_gridsearch`; returns the ε list, the grid and the
    noise's registry name."""
    from ..validation import check_epsilon

    if loss not in LOSSES:
        raise InputError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    configs = grid_for(algorithm)
    method = _estimator_kwargs(algorithm, {})["method"]
    noise_name = check_noise_for_method(noise, method, None).name
    eps_list = [float(check_epsilon(e)) for e in epsilons]
    if int(repeats) < 1:
        raise InputError(f"repeats must be >= 1, got {repeats}")
    if algorithm == "ppssgd" and (sparse.issparse(X_train) or sparse.issparse(X_test)):
        raise InputError("ppssgd needs dense features; this dataset is sparse")
    return eps_list, configs, noise_name


def _fit_and_score(
    est: Any, X_train: Any, y_train: np.ndarray, X_test: Any, y_test: np.ndarray
) -> tuple[float, PrivacyFigure | None, PrivacyFigure | None, str, float, list[str]]:
    """Fit ``est`` and score it on the test split: (accuracy, claimed, verified, status,
    seconds, warnings). A fit that fails gives accuracy NaN, no figures and its error."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(X_train, y_train)
            acc = float(est.score(X_test, y_test))
            claimed, verified, status = (
                est.privacy_.claimed,
                est.privacy_.verified,
                "ok",
            )
        except (RuntimeError, ValueError, ArithmeticError) as exc:
            acc, claimed, verified = math.nan, None, None
            status = f"failed: {' '.join(str(exc).split())}"
    seconds = time.perf_counter() - t0
    messages = sorted({" ".join(str(w.message).split()) for w in caught})
    return acc, claimed, verified, status, seconds, messages


@dataclass
class SummaryRow:
    """Per ε: best-over-grid (tuned on the test split; not private) and fixed configuration."""

    epsilon: float
    delta: float
    best_mean: float
    best_std: float
    best_config: dict[str, Any]
    best_claimed_epsilon: float
    best_verified_epsilon: float
    fixed_mean: float
    fixed_std: float
    fixed_claimed_epsilon: float
    fixed_verified_epsilon: float
    failed: int


def _stats(runs: list[Run]) -> tuple[float, float]:
    acc = np.array([r.accuracy for r in runs], dtype=float)
    if acc.size == 0 or np.all(np.isnan(acc)):
        return math.nan, math.nan
    # failed fits (NaN) are left out and counted separately in SummaryRow.failed
    return float(np.nanmean(acc)), float(np.nanstd(acc))


def _max_eps(runs: list[Run], which: str) -> float:
    vals = [getattr(r, which).epsilon for r in runs if getattr(r, which) is not None]
    return float(max(vals)) if vals else math.nan


def summarize(result: GridResult) -> list[SummaryRow]:
    """Best-over-grid and fixed-configuration mean ± std accuracy per ε.

    The privacy columns are the largest claimed / verified ε among the runs summarised (they are
    identical across repeats of one configuration).
    """
    rows = []
    for eps in result.epsilons:
        at = [r for r in result.runs if r.epsilon == eps]
        by_cfg = {ic: [r for r in at if r.config_index == ic] for ic in range(len(result.configs))}
        stats = {ic: _stats(rs) for ic, rs in by_cfg.items()}
        valid = [ic for ic in stats if not math.isnan(stats[ic][0])]
        best = max(valid, key=lambda ic: stats[ic][0]) if valid else 0
        rows.append(
            SummaryRow(
                epsilon=eps,
                delta=result.delta,
                best_mean=stats[best][0],
                best_std=stats[best][1],
                best_config=result.configs[best],
                best_claimed_epsilon=_max_eps(by_cfg[best], "claimed"),
                best_verified_epsilon=_max_eps(by_cfg[best], "verified"),
                fixed_mean=stats[0][0],
                fixed_std=stats[0][1],
                fixed_claimed_epsilon=_max_eps(by_cfg[0], "claimed"),
                fixed_verified_epsilon=_max_eps(by_cfg[0], "verified"),
                failed=sum(r.status != "ok" for r in at),
            )
        )
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "inf" if math.isinf(v) else ("nan" if math.isnan(v) else repr(v))
    return str(v)


RUN_COLUMNS = (
    "algorithm",
    "dataset",
    "loss",
    "noise",
    "target_epsilon",
    "target_delta",
    "config_index",
    "fixed_config",
    *HYPER_KEYS,
    "repeat",
    "seed",
    "claimed_epsilon",
    "claimed_delta",
    "verified_epsilon",
    "verified_delta",
    "accuracy",
    "seconds",
    "status",
    "warnings",
)


def write_runs_csv(result: GridResult, path: str | Path) -> Path:
    """One row per (ε, configuration, repeat) with labelled claimed_/verified_ ε and δ.

    ``amp_eps_frac`` is ``strategy1`` when Strategy #1 chose it.
    """
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(RUN_COLUMNS)
        for r in result.runs:
            hyper = []
            for k in HYPER_KEYS:
                if k not in r.config:
                    hyper.append("")
                elif k == "amp_eps_frac" and r.config[k] is None:
                    hyper.append("strategy1")
                else:
                    hyper.append(_fmt(float(r.config[k])))
            w.writerow(
                [
                    result.algorithm,
                    result.dataset,
                    result.loss,
                    result.noise,
                    _fmt(r.epsilon),
                    _fmt(r.delta),
                    r.config_index,
                    int(r.fixed),
                    *hyper,
                    r.repeat,
                    r.seed,
                    _fmt(r.claimed.epsilon if r.claimed else None),
                    _fmt(r.claimed.delta if r.claimed else None),
                    _fmt(r.verified.epsilon if r.verified else None),
                    _fmt(r.verified.delta if r.verified else None),
                    _fmt(r.accuracy),
                    f"{r.seconds:.3f}",
                    r.status,
                    " | ".join(r.warnings),
                ]
            )
    return path


def write_summary_csv(result: GridResult, rows: list[SummaryRow], path: str | Path) -> Path:
    """Per ε: best-over-grid (not private: tuned on the test split) and fixed accuracy."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "target_epsilon",
                "target_delta",
                "best_over_grid_accuracy_mean",
                "best_over_grid_accuracy_std",
                "best_over_grid_config",
                "best_over_grid_claimed_epsilon",
                "best_over_grid_verified_epsilon",
                "fixed_accuracy_mean",
                "fixed_accuracy_std",
                "fixed_config",
                "fixed_claimed_epsilon",
                "fixed_verified_epsilon",
                "failed_runs",
                "non_private_accuracy",
            ]
        )
        for s in rows:
            w.writerow(
                [
                    _fmt(s.epsilon),
                    _fmt(s.delta),
                    _fmt(s.best_mean),
                    _fmt(s.best_std),
                    config_label(s.best_config),
                    _fmt(s.best_claimed_epsilon),
                    _fmt(s.best_verified_epsilon),
                    _fmt(s.fixed_mean),
                    _fmt(s.fixed_std),
                    config_label(result.configs[0]),
                    _fmt(s.fixed_claimed_epsilon),
                    _fmt(s.fixed_verified_epsilon),
                    s.failed,
                    _fmt(result.baseline),
                ]
            )
    return path


def plot_accuracy(result: GridResult, rows: list[SummaryRow], path: str | Path) -> Path:
    """Accuracy (mean ± std) against privacy, best-over-grid and fixed configuration, with the
    non-private line: each point at its **verified** ε (filled; ``∞`` at the right edge) and,
    where it differs, at its claimed ε (hollow, dotted to the verified one), as ``compare``
    draws it. A claimed ε is never plotted alone (the paper's ε = 1 of product noise has a
    verified ε of 711–927)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..training.epsilon_axis import draw_claimed_verified, epsilon_limits, finish_epsilon_axis

    path = Path(path)
    series = [
        ("best", "best over grid (tuned on test split; not private)", "o"),
        ("fixed", f"fixed: {config_label(result.configs[0])}", "s"),
    ]
    lo, inf_x = epsilon_limits(
        float(getattr(s, f"{k}_{which}_epsilon"))
        for s in rows
        for k, _, _ in series
        for which in ("claimed", "verified")
    )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    any_inf = False
    for i, (key, label, marker) in enumerate(series):
        any_inf |= draw_claimed_verified(
            ax,
            [getattr(s, f"{key}_verified_epsilon") for s in rows],
            [float(getattr(s, f"{key}_claimed_epsilon")) for s in rows],
            [getattr(s, f"{key}_mean") for s in rows],
            [getattr(s, f"{key}_std") for s in rows],
            color=f"C{i}",
            label=label,
            inf_x=inf_x,
            marker=marker,
        )
    if result.baseline is not None:
        ax.axhline(result.baseline, color="k", linestyle=":", label=result.baseline_name)
    finish_epsilon_axis(ax, lo, inf_x, any_inf)
    ax.set_ylabel("test accuracy")
    ax.set_title(
        f"{result.algorithm} / {result.dataset} / {result.loss} / {result.noise} noise\n"
        f"n_train={result.n_train}, d={result.n_features}, δ=1/n²={result.delta:.2g}, "
        f"{result.repeats} repeat(s)",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
