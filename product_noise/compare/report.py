"""Outputs of a comparison: ``results.csv`` (appended row by row), ``epochs.csv``, the summary
table (Markdown), the PNG plots and ``report.md``.

Every ε column is named by its label: ``claimed_…`` (what a paper or textbook formula states) or
``verified_…`` (the exact privacy of the noise actually added). The target of a run is written in
the column of the label it was calibrated for: ``claimed_target_epsilon`` for the paper's product
noise and the classic Gaussian, ``verified_target_epsilon`` for the verified calibrations and
``unverified_target_epsilon`` for a user's unverified noise (a sampler without a proof, run at
the noise multiplier of the verified Gaussian for that target: it has no verified ε, and no
plot or table shows it as verified).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..training.epsilon_axis import draw_claimed_verified, epsilon_limits, finish_epsilon_axis

__all__ = [
    "RESULT_COLUMNS",
    "EPOCH_COLUMNS",
    "CsvAppender",
    "read_rows",
    "read_results",
    "FAILED_PREFIX",
    "summarize",
    "format_summary",
    "write_plots",
    "write_report",
]

RESULT_COLUMNS = (
    "run_id",
    "mechanism",
    "family",
    "dataset",
    "model",
    "seed",
    "target_label",
    "claimed_target_epsilon",
    "verified_target_epsilon",
    "unverified_target_epsilon",
    "claimed_epsilon",
    "claimed_delta",
    "verified_epsilon",
    "verified_delta",
    "expected_noise_norm",
    "drawn_noise_norm",
    "noise_scale",
    "dim",
    "steps",
    "n_train",
    "accuracy",
    "seconds",
    "train_seconds",
    "accounting_seconds",
    "claimed_source",
    "verified_source",
    "notes",
)
EPOCH_COLUMNS = (
    "run_id",
    "mechanism",
    "seed",
    "claimed_target_epsilon",
    "verified_target_epsilon",
    "unverified_target_epsilon",
    "epoch",
    "train_loss",
    "test_accuracy",
    "claimed_epsilon",
    "verified_epsilon",
)


class CsvAppender:
    """Append rows to a CSV file, flushed and fsynced after each row (Ctrl-C keeps them)."""

    def __init__(self, path: Path, columns: Iterable[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        if self.path.exists():
            _drop_torn_tail(self.path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            with self.path.open(newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), [])
            if header != self.columns:
                raise ValueError(
                    f"{self.path} has columns {header}, expected {self.columns}: "
                    "it was written by another version; use a new --out"
                )
        self._fh = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.columns, extrasaction="raise")
        if new:
            self._writer.writeheader()
            self._flush()

    def _flush(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: _cell(row.get(k)) for k in self.columns})
        self._flush()

    def close(self) -> None:
        self._fh.close()


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return v


def _num(v: Any) -> float:
    if v is None or v == "":
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line left unfinished by a hard kill (no newline): that run did not finish."""
    with path.open("rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


def read_rows(path: Path) -> list[dict[str, str]]:
    """Complete rows of a CSV file written by :class:`CsvAppender` (empty if it does not
    exist); an unfinished last line (the process was killed while writing it) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        text = fh.read()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [r for r in csv.DictReader(io.StringIO(text, newline="")) if None not in r.values()]


# ====================================================================== summary
def _target(row: dict[str, Any]) -> float:
    for label in ("claimed", "verified", "unverified"):
        t = _num(row.get(f"{label}_target_epsilon"))
        if not math.isnan(t):
            return t
    return math.nan


#: how the notes of a run that failed for good begin (its accuracy cell is empty)
FAILED_PREFIX = "failed: "


def read_results(path: Path) -> list[dict[str, str]]:
    """The finished runs of a ``results.csv``: :func:`read_rows` without the rows of runs that
    failed (their notes begin with :data:`FAILED_PREFIX`; ``--resume`` runs them again)."""
    return [
        r
        for r in read_rows(path)
        if not (r.get("accuracy", "") == "" and r.get("notes", "").startswith(FAILED_PREFIX))
    ]


def summarize(rows: list[dict[str, str]], order: list[str] | None = None) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (mechanism, dataset, model, target ε)."""
    groups: dict[tuple, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        groups[(r["mechanism"], r["dataset"], r["model"], _target(r))].append(r)
    rank = {m: i for i, m in enumerate(order or [])}

    def sort_key(k: tuple) -> tuple:
        t = k[3]
        return (rank.get(k[0], len(rank)), k[0], k[1], -1.0 if math.isnan(t) else t)

    out = []
    for key in sorted(groups, key=sort_key):
        rs = groups[key]
        acc = np.array([_num(r["accuracy"]) for r in rs])

        def agg(col: str, rs: list[dict[str, str]] = rs) -> float:
            vals = np.array([_num(r[col]) for r in rs])
            vals = vals[~np.isnan(vals)]
            if not vals.size:
                return math.nan
            return float(np.inf) if np.isinf(vals).any() else float(vals.mean())

        out.append(
            {
                "mechanism": key[0],
                "family": rs[0]["family"],
                "dataset": key[1],
                "model": key[2],
                "target_label": rs[0]["target_label"],
                "target_epsilon": key[3],
                "claimed_epsilon": agg("claimed_epsilon"),
                "claimed_delta": agg("claimed_delta"),
                "verified_epsilon": agg("verified_epsilon"),
                "verified_delta": agg("verified_delta"),
                "expected_noise_norm": agg("expected_noise_norm"),
                "accuracy_mean": float(acc.mean()),
                "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                "seconds": agg("seconds"),
                "seeds": len(rs),
            }
        )
    return out


def _f(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if math.isinf(x):
        return "inf"
    return f"{x:.{digits}g}"


def format_summary(summary: list[dict[str, Any]]) -> str:
    """The summary as a Markdown table (ε columns named by label)."""
    head = (
        "| mechanism | data / model | target ε (label) | claimed ε | verified ε | δ (verified) "
        "| E‖n‖ per step | accuracy (mean ± std) | s/run | seeds |"
    )
    lines = [head, "|" + "---|" * 10]
    for s in summary:
        target = (
            "—"
            if math.isnan(s["target_epsilon"])
            else f"{_f(s['target_epsilon'])} ({s['target_label']})"
        )
        lines.append(
            f"| {s['mechanism']} | {s['dataset']} / {s['model']} | {target} "
            f"| {_f(s['claimed_epsilon'], 4)} | {_f(s['verified_epsilon'], 4)} "
            f"| {_f(s['verified_delta'], 2)} | {_f(s['expected_noise_norm'], 3)} "
            f"| {s['accuracy_mean']:.3f} ± {s['accuracy_std']:.3f} | {_f(s['seconds'], 2)} "
            f"| {s['seeds']} |"
        )
    return "\n".join(lines)


# ====================================================================== plots
_FAMILY_TITLES = {
    "dpsgd": "DP-SGD",
    "dpmix": "DPMix",
    "erm-output": "ERM: output perturbation",
    "erm-objective": "ERM: objective perturbation",
    "erm-amp": "ERM: AMP",
    "erm-ppssgd": "ERM: PPSSGD",
    "baselines": "Seed baselines (AdLM, local-DP input noise, DP generator)",
}


def _panel_of(mechanism: str) -> str | None:
    fam = mechanism.split("-", 1)[0]
    if fam == "erm":
        return "erm-" + mechanism.split("-")[1]
    if fam in ("dpsgd", "dpmix"):
        return fam
    if fam in ("adlm", "ldp", "dpgen"):
        return "baselines"
    return None


def _short(mechanism: str) -> str:
    parts = mechanism.split("-")
    if parts[0] not in ("erm", "dpsgd", "dpmix"):
        return mechanism  # the baselines share one panel: keep the family in the label
    return "-".join(parts[2:]) if parts[0] == "erm" else "-".join(parts[1:])


def _save_figure(fig: Any, path: Path) -> Path:
    """Lay out, save at 110 dpi and close ``fig``; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _accuracy_panels(summary: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The summary rows grouped by the panel of the accuracy figure they are drawn in."""
    panels: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in summary:
        p = _panel_of(s["mechanism"])
        if p is not None and s["target_label"] != "unverified":  # no ε to place it at
            panels[p].append(s)
    return panels


def _draw_accuracy_panel(
    ax: Any,
    name: str,
    rows: list[dict[str, Any]],
    ref: dict[str, Any] | None,
    lo: float,
    inf_x: float,
) -> None:
    """One panel of ``accuracy_vs_epsilon.png``: a claimed/verified curve per mechanism."""
    by_mech: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in rows:
        by_mech[s["mechanism"]].append(s)
    any_inf = False
    for i, (mech, ss) in enumerate(by_mech.items()):
        ss = sorted(ss, key=lambda s: s["target_epsilon"])
        any_inf |= draw_claimed_verified(
            ax,
            [s["verified_epsilon"] for s in ss],
            [s["claimed_epsilon"] for s in ss],
            [s["accuracy_mean"] for s in ss],
            [s["accuracy_std"] for s in ss],
            color=f"C{i}",
            label=_short(mech),
            inf_x=inf_x,
        )
    if ref is not None:
        ax.axhline(ref["accuracy_mean"], color="k", lw=0.8, ls="--", label="non-private")
    finish_epsilon_axis(ax, lo, inf_x, any_inf)
    ax.set_ylim(0, 1.02)
    ax.set_title(_FAMILY_TITLES[name], fontsize=11)
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")


def _plot_accuracy_vs_epsilon(summary: list[dict[str, Any]], out: Path) -> Path | None:
    """``accuracy_vs_epsilon.png``: a panel per family; ``None`` when no row has a panel."""
    import matplotlib.pyplot as plt

    ref_nn = next((s for s in summary if s["mechanism"] == "nonprivate-nn"), None)
    ref_lr = next((s for s in summary if s["mechanism"] == "nonprivate-logreg"), None)
    panels = _accuracy_panels(summary)
    names = [p for p in _FAMILY_TITLES if p in panels]
    if not names:
        return None
    lo, inf_x = epsilon_limits(
        v
        for s in summary
        for v in (s["verified_epsilon"], s["claimed_epsilon"], s["target_epsilon"])
    )
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.2 * ncols, 4.2 * nrows), squeeze=False, sharey=True
    )
    for ax, name in zip(axes.flat, names):
        ref = ref_lr if name.startswith("erm") else ref_nn
        _draw_accuracy_panel(ax, name, panels[name], ref, lo, inf_x)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(
        "Accuracy vs privacy: verified ε (filled) and claimed ε (hollow); "
        "▶ at the right edge = verified ε is infinite",
        fontsize=11,
    )
    return _save_figure(fig, out / "accuracy_vs_epsilon.png")


def _epoch_curves(
    epoch_rows: list[dict[str, str]],
) -> dict[tuple[str, float], dict[int, tuple[float, float]]]:
    """(verified ε, claimed ε) per epoch of every DP-SGD (mechanism, target ε)."""
    curves: dict[tuple[str, float], dict[int, tuple[float, float]]] = defaultdict(dict)
    for r in epoch_rows:
        if not r["mechanism"].startswith("dpsgd") or r.get("unverified_target_epsilon"):
            continue  # an unverified noise has no ε to draw
        t = _target(r)
        curves[(r["mechanism"], t)][int(r["epoch"])] = (
            _num(r["verified_epsilon"]),
            _num(r["claimed_epsilon"]),
        )
    return curves


def _draw_epoch_curve(ax: Any, i: int, m: str, c: dict[int, tuple[float, float]], top: float):
    """The verified (▲ at ``top`` where infinite) and claimed ε of mechanism ``m``, the
    ``i``-th of the panel, over the epochs."""
    ep = sorted(c)
    ver = np.array([c[e][0] for e in ep])
    cl = np.array([c[e][1] for e in ep])
    ax.plot(
        ep,
        np.where(np.isinf(ver), top, ver),
        ["-", "-.", "--", ":"][i % 4],
        marker="osD^"[i % 4],
        ms=4,
        lw=1.6,
        color=f"C{i}",
        label=f"{_short(m)} verified",
    )
    if np.isinf(ver).any():
        ax.plot(
            np.array(ep)[np.isinf(ver)],
            np.full(int(np.isinf(ver).sum()), top),
            "^",
            color=f"C{i}",
            ms=7,
        )
    if np.isfinite(cl).any():
        ax.plot(
            ep, cl, "--", marker="o", mfc="none", ms=6, color="0.2", label=f"{_short(m)} claimed"
        )


def _finish_epoch_panel(ax: Any, t: float, bottom: float, top: float) -> None:
    """Target line, ∞ line, log scale, limits and labels of one ``epsilon_vs_epoch`` panel."""
    import matplotlib.ticker

    ax.axhline(t, color="0.5", lw=0.8, ls=":")
    ax.axhline(top, color="0.6", lw=0.8, ls="--")
    ax.text(1, top, "verified ε = ∞ (▲)", va="bottom", fontsize=8, color="0.3")
    ax.set_yscale("log")
    ax.set_ylim(bottom, top * 2.5)
    ax.set_title(f"DP-SGD, target ε = {t:g}", fontsize=10)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("ε at δ (labelled)")
    ax.grid(alpha=0.3, which="both")


def _plot_epsilon_vs_epoch(epoch_rows: list[dict[str, str]], out: Path) -> Path | None:
    """``epsilon_vs_epoch.png``: a DP-SGD panel per target ε; ``None`` without DP-SGD epochs."""
    import matplotlib.pyplot as plt

    curves = _epoch_curves(epoch_rows)
    if not curves:
        return None
    targets = sorted({t for _, t in curves})
    mechs = sorted({m for m, _ in curves})
    fig, axes = plt.subplots(
        1, len(targets), figsize=(4.6 * len(targets), 3.9), squeeze=False, sharey=True
    )
    all_fin = [
        v
        for c in curves.values()
        for pair in c.values()
        for v in pair
        if math.isfinite(v) and v > 0
    ]
    top = max(all_fin) * 3 if all_fin else 10.0
    bottom = min(all_fin) / 2 if all_fin else 1e-3
    for ax, t in zip(axes.flat, targets):
        for i, m in enumerate(mechs):
            c = curves.get((m, t))
            if c:
                _draw_epoch_curve(ax, i, m, c, top)
        _finish_epoch_panel(ax, t, bottom, top)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    return _save_figure(fig, out / "epsilon_vs_epoch.png")


_NOISE_UNITS = {
    "dpsgd": "E‖n‖ per step (clip norm C = 1)",
    "dpmix": "E‖n‖ per released record",
    "erm": "E‖n‖ of the release (summed over parts)",
}


def _draw_noise_panel(ax: Any, fam: str, ss: list[dict[str, Any]]) -> None:
    """One panel of ``noise_vs_epsilon.png``: expected noise norm per mechanism of ``fam``."""
    import matplotlib
    import matplotlib.ticker

    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in ss:
        by[s["mechanism"]].append(s)
    for i, (m, rows) in enumerate(by.items()):
        rows = sorted(rows, key=lambda s: s["target_epsilon"])
        ls = ":" if m.endswith("product-paper") or m.endswith("classic-gaussian") else "-"
        ax.plot(
            [s["target_epsilon"] for s in rows],
            [s["expected_noise_norm"] for s in rows],
            ls,
            marker="os^v<>dph*"[i % 10],
            color=matplotlib.colormaps["tab20"](i % 20),
            label=(_short(m) if fam != "erm" else m[4:])
            + (" (unverified)" if rows[0]["target_label"] == "unverified" else ""),
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    grid = sorted({s["target_epsilon"] for s in ss})
    ax.set_xticks(grid, [f"{t:g}" for t in grid])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("target ε (dotted: claimed target)")
    ax.set_ylabel(_NOISE_UNITS[fam])
    ax.set_title(_FAMILY_TITLES.get(fam, "Convex ERM"), fontsize=11)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2 if fam == "erm" else 1)


def _plot_noise_vs_epsilon(summary: list[dict[str, Any]], out: Path) -> Path | None:
    """``noise_vs_epsilon.png``: a panel per family with noise; ``None`` when none has."""
    import matplotlib.pyplot as plt

    fams: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in summary:
        if s["family"] in ("dpsgd", "dpmix", "erm") and s["expected_noise_norm"] > 0:
            fams[s["family"]].append(s)
    if not fams:
        return None
    fig, axes = plt.subplots(1, len(fams), figsize=(5.2 * len(fams), 4.0), squeeze=False)
    for ax, (fam, ss) in zip(axes.flat, fams.items()):
        _draw_noise_panel(ax, fam, ss)
    return _save_figure(fig, out / "noise_vs_epsilon.png")


def write_plots(
    summary: list[dict[str, Any]], epoch_rows: list[dict[str, str]], out: Path
) -> list[Path]:
    """Write ``accuracy_vs_epsilon.png``, ``epsilon_vs_epoch.png`` and
    ``noise_vs_epsilon.png`` into ``out``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    written = (
        _plot_accuracy_vs_epsilon(summary, out),
        _plot_epsilon_vs_epoch(epoch_rows, out),
        _plot_noise_vs_epsilon(summary, out),
    )
    return [p for p in written if p is not None]


# ====================================================================== report.md
def write_report(
    out: Path,
    summary: list[dict[str, Any]],
    plots: list[Path],
    *,
    config: dict[str, Any],
    timings: dict[str, float],
    planned: int,
    finished: int,
    interrupted: bool,
    failures: list[str],
    signal_name: str | None = None,
    data: list[dict[str, Any]] | None = None,
    chance: list[str] | None = None,
) -> Path:
    """Write ``report.md``: status, summary table, notes on rows at chance, data and
    preprocessing, the rule choosing λ and the training settings, plots, timings, settings.

    ``signal_name`` is the signal that interrupted the runs (``"SIGINT"``, ``"SIGTERM"``), named
    in the status line. ``data`` describes each data set used (role, dataset, n_train, n_test,
    preprocessing, majority_rate), as the harness gives it; ``chance`` the notes on the rows at
    chance (:func:`~product_noise.compare.diagnose.chance_notes`).
    """
    from .config import SETTINGS_RULE

    lines = ["# product-noise compare", ""]
    status = "**interrupted**" if interrupted else "**complete**"
    if interrupted and signal_name:
        status += f" ({signal_name})"
    lines += [
        f"Status: {status}, {finished} of {planned} planned runs in `results.csv`.",
        "",
    ]
    if interrupted:
        lines += [
            "The comparison was stopped before its end: this report covers the finished runs. "
            "`product-noise compare --resume` with the same `--out` (and settings) trains the "
            "others.",
            "",
        ]
    lines += [
        "Labels: **verified** = computed from the exact privacy of the noise actually added "
        "(an upper bound on the true ε); **claimed** = what a paper or textbook formula states "
        "for that noise (not a guarantee unless its theorem holds: the product-noise paper's "
        "claim is known false). `inf` means no finite ε is certified at that δ. The target of "
        "each run is labelled by what its calibration aimed at.",
        "",
    ]
    unverified = sorted({s["mechanism"] for s in summary if s["target_label"] == "unverified"})
    if unverified:
        lines += [
            "**unverified** = a user's noise with a sampler but no proven privacy profile: "
            "no privacy figure is verified for it (its verified ε is empty), and it is run at "
            "the noise multiplier the verified Gaussian needs for the same target ε (so its "
            "target is labelled unverified); only an audit gives an empirical lower bound. "
            f"Unverified here: {', '.join(unverified)}. They are left out of the ε plots.",
            "",
        ]
    lines += [
        "## Summary (mean ± std over seeds)",
        "",
        format_summary(summary),
        "",
    ]
    if chance:
        from .diagnose import CHANCE_MARGIN

        lines += [
            "## Rows at chance",
            "",
            f"A private row whose mean accuracy is at most the majority-class rate of its test "
            f"set plus {CHANCE_MARGIN:g} learned nothing usable; why, in the runners' figures, "
            "and what would help:",
            "",
        ]
        lines += [f"- {c}" for c in chance] + [""]
    if failures:
        lines += ["## Failed runs", ""] + [f"- {f}" for f in failures] + [""]
    if data:
        lines += ["## Data and preprocessing", ""]
        for d in data:
            lines.append(
                f"- `{d['dataset']}` ({d['role']}): {d['n_train']} training and {d['n_test']} "
                f"test rows; {d['preprocessing'] or 'as given by the task'}. Majority-class "
                f"rate of the test set (the best constant guess): {d['majority_rate']:.3f}."
            )
        lines.append("")
    lines += ["## How λ and the training settings are chosen", "", SETTINGS_RULE, ""]
    if plots:
        lines += ["## Plots", ""]
        for p in plots:
            lines += [f"![{p.stem}]({p.name})", ""]
    lines += ["## Timings", ""]
    lines += [f"- {k}: {v:.1f} s" for k, v in timings.items()]
    lines += ["", "## Settings", "", "```"]
    lines += [f"{k} = {v}" for k, v in config.items()]
    lines += ["```", ""]
    path = out / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)
    return path
