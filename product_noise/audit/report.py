"""The training-audit report: table rows, Markdown, CSV and a plot of
:class:`~product_noise.audit.result.TrainingAuditResult` rows."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..privacy import UNVERIFIED
from .result import TrainingAuditResult

_TABLE_COLUMNS = (
    ("mechanism", "mechanism"),
    ("method", "method"),
    ("threat_model", "threat model"),
    ("steps", "T"),
    ("target", "calibration target"),
    ("trials_per_world", "trials/world"),
    ("empirical_lower_bound_epsilon", "empirical lower bound ε"),
    ("fdp_lower_bound_epsilon", "f-DP bound (μ-GDP refuted)"),
    ("estimated_epsilon", "estimate (not a bound)"),
    ("finite_sample_ceiling", "ceiling"),
    ("verified_epsilon", "verified ε"),
    ("claimed_epsilon", "claimed ε"),
    ("verdict", "verdict"),
)


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        if math.isinf(x):
            return "inf"
        return f"{x:.4g}"
    return str(x)


def results_table(results: Sequence[TrainingAuditResult]) -> list[dict[str, Any]]:
    """The rows of the report (see :meth:`TrainingAuditResult.to_row`)."""
    return [r.to_row() for r in results]


def format_markdown(results: Sequence[TrainingAuditResult]) -> str:
    """A Markdown table: lower bound, verified and claimed ε at the same δ, and the verdict."""
    if not results:
        return "(no results)\n"
    d, conf = results[0].delta, results[0].confidence
    lines = [
        f"Every figure at δ = {d:g}; empirical lower bounds at {100 * conf:g}% confidence. The "
        "claimed ε is compared with the lower bound at the claim's own δ. The ceiling is the "
        "largest (ε, δ) lower bound the number of evaluation trials allows (perfect "
        "separation; multi-run only); the f-DP bound extrapolates along the assumed Gaussian "
        "curve and can exceed it. The estimate is a Gaussian fit of the scores (Nasr et al. "
        "2023): no confidence, NOT a bound. The f-DP bound (Gaussian noise only) refutes μ-GDP and "
        "is a bound on ε only for an exactly Gaussian trade-off curve (full-batch Gaussian "
        "DP-SGD; with Poisson sampling only approximately) "
        "(multi-run: Nasr et al. 2023; one-run: Mahloujifar, Melis, Chaudhuri 2025). One-run "
        "rows: one training run with many canaries, gradient (white box) or input (final "
        "model) ones (Steinke, Nasr, Jagielski 2023). An "
        "unverified mechanism (a user's sampler with no proven profile) has no verified ε.",
        "",
        "| " + " | ".join(h for _, h in _TABLE_COLUMNS) + " |",
        "|" + "|".join("---" for _ in _TABLE_COLUMNS) + "|",
    ]
    for r in results:
        row = {**r.to_row(), "target": r.target}
        if r.verified is None:  # said in words, never a number in its place
            row["verified_epsilon"] = UNVERIFIED
        lines.append("| " + " | ".join(_fmt(row[k]) for k, _ in _TABLE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _plot(results: Sequence[TrainingAuditResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.35 * len(results) + 2.0), 4.5))
    finite = [
        v
        for r in results
        for v in (
            r.bound.epsilon_lower,
            r.estimate and r.estimate.epsilon,
            r.fdp_bound and r.fdp_bound.epsilon,
            r.verified and r.verified.epsilon,
            r.claimed and r.claimed.epsilon,
        )
        if v is not None and math.isfinite(v)
    ]
    top = max((v for v in finite if v > 0), default=1.0) * 3.0  # all zero: no empty axis
    for i, r in enumerate(results):
        first = i == 0
        ax.bar(i, r.bound.epsilon_lower, width=0.5, color="tab:red", alpha=0.7,
               label="empirical lower bound" if first else None)  # fmt: skip
        if getattr(r.bound, "ceiling", None) is not None:  # multi-run only
            ax.plot(i, r.bound.ceiling, marker="_", ms=18, color="grey", ls="none",
                    label="finite-sample ceiling")  # fmt: skip
        if r.fdp_bound is not None:  # Gaussian noise only
            ax.plot(i, r.fdp_bound.epsilon, marker="D", ms=6, color="tab:purple", ls="none",
                    label="f-DP bound (Gaussian trade-off)")  # fmt: skip
        if r.estimate is not None and math.isfinite(r.estimate.epsilon):
            ax.plot(i, r.estimate.epsilon, marker="x", ms=9, color="tab:orange", ls="none",
                    label="estimate (not a bound)")  # fmt: skip
        if r.verified is not None:  # an unverified row has no verified marker
            v = r.verified.epsilon
            ax.plot(i, min(v, top), marker="^" if math.isinf(v) else "o", color="tab:green",
                    ls="none", label="verified (▲ = inf)")  # fmt: skip
        if r.claimed is not None and math.isfinite(r.claimed.epsilon):
            ax.plot(i, r.claimed.epsilon, marker="o", mfc="none", ms=9, color="tab:blue",
                    ls="none", label="claimed")  # fmt: skip
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(0, top * 1.5)
    labels = [
        f"{r.mechanism}{f' ({UNVERIFIED})' if r.verified is None else ''}\n"
        f"{r.settings.get('threat_model', '')}\n{r.method}, T={r.steps}\n{r.target}"
        for r in results
    ]
    ax.set_xticks(np.arange(len(results)), labels, fontsize=7)
    ax.set_ylabel(f"ε at δ = {results[0].delta:g}")
    ax.set_title(f"Audits of real training runs ({100 * results[0].confidence:g}% confidence)")
    handles, names = ax.get_legend_handles_labels()
    uniq = dict(zip(names, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(results: Sequence[TrainingAuditResult], out_dir: str | Path) -> dict[str, Path]:
    """Write ``audit_training.csv``, ``audit_training.md`` and ``audit_training.png``.

    Returns the paths by kind (``"csv"``, ``"markdown"``, ``"plot"``).
    """
    if not results:
        raise ValueError("results must not be empty")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = results_table(results)
    paths = {
        "csv": out / "audit_training.csv",
        "markdown": out / "audit_training.md",
        "plot": out / "audit_training.png",
    }
    with open(paths["csv"], "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    details = "\n".join(f"- {r}" for r in results)
    paths["markdown"].write_text(
        "# Empirical privacy audits of training\n\n"
        + format_markdown(results)
        + "\n![audit](audit_training.png)\n\n## Details\n\n"
        + details
        + "\n",
        encoding="utf-8",
    )
    _plot(results, paths["plot"])
    return paths
