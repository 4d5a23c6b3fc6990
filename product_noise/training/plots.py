"""The paper's three DP-SGD panels per dataset, drawn from result JSON files.

For each dataset (one row): train metric vs epoch, test metric vs epoch (accuracy; RMSE for
MovieLens) for product noise, Gaussian noise and the non-private baseline, and ε vs epoch with
product noise's *claimed* ε' (the paper's composition) and *verified* ε (exact accountant) next
to the Gaussian's verified ε. A verified ε of ∞ is drawn as a marker with an arrow at the top
edge of the panel, with the note "verified ε = ∞ at this δ".

Command line::

    python -m product_noise.training.plots runs/mnist/*.json --out mnist.png
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["load_result", "plot_three_panels", "main"]

_COLORS = {"product": "tab:red", "gaussian": "tab:blue", "l2": "tab:purple", "none": "0.35"}
_NAMES = {
    "product": "product noise",
    "gaussian": "Gaussian noise",
    "l2": "ℓ2 noise",
    "none": "non-private",
}


def load_result(path: str | Path) -> dict[str, Any]:
    """Read a :func:`product_noise.train.save_history` JSON (``config`` and ``history``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a result JSON ({err})") from None
    if not isinstance(data, dict) or "history" not in data or "config" not in data:
        raise ValueError(f"{path}: expected keys 'config' and 'history' (train.save_history)")
    data["path"] = str(path)
    return data


def _dataset(result: dict[str, Any]) -> str:
    extra = result["config"].get("extra") or {}
    return str(extra.get("dataset") or Path(result["path"]).stem.split("_")[0])


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in history:
        v = row.get(key)
        if v is None:
            continue
        v = float(v)
        if math.isnan(v):
            continue
        xs.append(int(row["epoch"]))
        ys.append(v)
    return xs, ys


def _label(result: dict[str, Any], multi: bool) -> str:
    noise = result["config"]["noise"]
    name = _NAMES.get(noise, noise)
    cfg = result["config"]
    if noise == "product":
        name += f" (ε₀={cfg['epsilon0']:g}, k={cfg['k']:g})"
    elif noise != "none" and cfg.get("sigma") is not None:
        name += f" (σ={cfg['sigma']:g})"
    if multi:
        name += f" [{Path(result['path']).stem}]"
    return name


def plot_three_panels(result_files: Sequence[str | Path], out_png: str | Path) -> Path:
    """Draw the three panels for every dataset found in ``result_files`` into ``out_png``.

    Parameters
    ----------
    result_files : sequence of paths
        JSON files written by :func:`product_noise.train.save_history` (the example scripts
        write ``<out>/<dataset>_<noise>.json``); grouped into one row per dataset.
    out_png : path
        The image to write (parent folders are created).

    Returns
    -------
    Path
        ``out_png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [load_result(f) for f in result_files]
    if not results:
        raise ValueError("plot_three_panels needs at least one result file")
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(_dataset(r), []).append(r)
    fig, axes = plt.subplots(
        len(groups), 3, figsize=(15, 4.2 * len(groups)), squeeze=False, layout="constrained"
    )
    for row_axes, (dataset, runs) in zip(axes, groups.items()):
        _draw_dataset(row_axes, dataset, runs)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _draw_dataset(axes: Any, dataset: str, runs: list[dict[str, Any]]) -> None:
    metric = runs[0]["config"].get("metric", "accuracy")
    mname = "accuracy" if metric == "accuracy" else "RMSE"
    ax_tr, ax_te, ax_eps = axes
    _draw_metric_curves(ax_tr, ax_te, runs, metric)
    delta_txt = _draw_epsilon_curves(ax_eps, runs)
    titles = (f"train {mname}", f"test {mname}", f"privacy ε vs epoch ({delta_txt})")
    for ax, title in zip(axes, titles):
        ax.set_title(f"{dataset}: {title}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    ax_tr.set_ylabel(mname)
    ax_te.set_ylabel(mname)
    ax_eps.set_ylabel("ε")
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)


def _draw_metric_curves(ax_tr: Any, ax_te: Any, runs: list[dict[str, Any]], metric: str) -> None:
    """The train and the test metric of every run, per epoch."""
    noises = [r["config"]["noise"] for r in runs]
    multi = len(set(noises)) != len(noises)
    for r in runs:
        noise = r["config"]["noise"]
        style = {
            "color": _COLORS.get(noise, None),
            "marker": "o",
            "markersize": 3,
            "linestyle": "--" if noise == "none" else "-",
        }
        lab = _label(r, multi)
        ax_tr.plot(*_series(r["history"], f"train_{metric}"), label=lab, **style)
        ax_te.plot(*_series(r["history"], f"test_{metric}"), label=lab, **style)


def _draw_epsilon_curves(ax_eps: Any, runs: list[dict[str, Any]]) -> str:
    """The verified (and for product noise the claimed) ε of every private run per epoch, an
    infinite verified ε marked at the top edge; returns the δ text of the panel title."""
    delta_txt = ""
    inf_runs: list[tuple[dict[str, Any], list[int]]] = []
    finite_max = 0.0
    for r in runs:
        if r["config"]["noise"] == "none":
            continue
        delta_txt = f"δ = {r['config']['delta']:g}"
        run_max, inf_x = _draw_run_epsilons(ax_eps, r)
        finite_max = max(finite_max, run_max)
        if inf_x:
            inf_runs.append((r, inf_x))
    top = finite_max * 1.25 if finite_max > 0 else 1.0
    ax_eps.set_ylim(0, top)
    for r, inf_x in inf_runs:
        _mark_infinite(ax_eps, r, inf_x, top)
    return delta_txt


def _draw_run_epsilons(ax_eps: Any, r: dict[str, Any]) -> tuple[float, list[int]]:
    """The finite verified ε (and the claimed ε of product noise) of run ``r``; returns the
    largest value drawn (0 if none) and the epochs whose verified ε is infinite. A run of noise
    without a proven profile (rows with ``unverified``) has no ε: its legend entry says so."""
    noise = r["config"]["noise"]
    color = _COLORS.get(noise, None)
    if any("unverified" in row for row in r["history"]):
        ax_eps.plot(
            [],
            [],
            color=color,
            linestyle="none",
            marker="x",
            label=f"{_NAMES.get(noise, noise)}: unverified (no ε exists; audit it)",
        )
        return 0.0, []
    finite_max = 0.0
    xs, ys = _series(r["history"], "verified_epsilon")
    fin = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
    inf_x = [x for x, y in zip(xs, ys) if not math.isfinite(y)]
    name = _NAMES.get(noise, noise)
    if fin:
        ax_eps.plot(
            [p[0] for p in fin],
            [p[1] for p in fin],
            color=color,
            marker="o",
            markersize=3,
            label=f"{name}: verified ε",
        )
        finite_max = max(p[1] for p in fin)
    if noise == "product":
        cx, cy = _series(r["history"], "claimed_epsilon")
        if cy:
            ax_eps.plot(
                cx,
                cy,
                color=color,
                linestyle=":",
                marker="s",
                markersize=3,
                label="product noise: claimed ε' (paper's composition, unsound)",
            )
            finite_max = max(finite_max, max(cy))
    return finite_max, inf_x


def _mark_infinite(ax_eps: Any, r: dict[str, Any], inf_x: list[int], top: float) -> None:
    """▲ at the top edge for the epochs ``inf_x`` where run ``r``'s verified ε is infinite."""
    color = _COLORS.get(r["config"]["noise"], None)
    name = _NAMES.get(r["config"]["noise"], r["config"]["noise"])
    ax_eps.plot(
        inf_x,
        [top] * len(inf_x),
        linestyle="none",
        marker="^",
        markersize=9,
        color=color,
        clip_on=False,
        label=f"{name}: verified ε = ∞ (top edge)",
    )
    ax_eps.annotate(
        "verified ε = ∞ at this δ",
        xy=(inf_x[len(inf_x) // 2], top),
        xytext=(0.5, 0.80),
        textcoords="axes fraction",
        ha="center",
        color=color,
        fontsize=9,
        arrowprops={"arrowstyle": "->", "color": color},
    )


def main(argv: Sequence[str] | None = None) -> Path:
    """``python -m product_noise.training.plots FILES... --out PNG``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", help="result JSON files (train.save_history)")
    p.add_argument("--out", required=True, help="PNG to write")
    args = p.parse_args(argv)
    out = plot_three_panels(args.files, args.out)
    print(out)
    return out


if __name__ == "__main__":
    main()
