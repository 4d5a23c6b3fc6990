"""Why a row of a comparison is at chance, in numbers the runners recorded.

A private row whose mean accuracy is at most the majority-class rate of its test set (the best
constant guess) plus :data:`CHANCE_MARGIN` is *at chance*: the report gives it a note with its
noise-to-signal figure, the reason and a setting that would help. The figures:

* **DP-SGD**: the expected noise norm per step against the largest signal of a step, the sum
  of ``batch_size`` gradients clipped to ``C`` (``E‖n‖`` is reported in units of ``C``, so the
  ratio is ``E‖n‖ / batch_size``).
* **DPMix**: the noise on one released record against the record's expected norm: a mixture of
  ``l`` training rows, ``E‖x̄‖² = E‖x‖²/l + (1 − 1/l)‖μ‖²``, and for global mixing its soft label
  (σ√K against ``E‖ȳ‖² = 1/l + (1 − 1/l) Σ p_k²``). The row norms are a diagnostic computed
  from the training data for this report; they enter no release.
* **Convex ERM**: the expected norm of the release's noise against ``‖θ*‖``, the non-private
  solution of the same objective (same rows, preprocessing and λ); for output perturbation the
  noise is added to θ itself.
* **Baselines**: the runner's own notes.

Each note ends with what would help: the smallest ε of the grid where the same mechanism is
above chance, the Gaussian row at the same ε, and the family's levers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CHANCE_MARGIN", "at_chance", "chance_notes"]

#: a row is at chance when its mean accuracy is at most the majority-class rate plus this
CHANCE_MARGIN = 0.05


def at_chance(accuracy: float, majority_rate: float, margin: float = CHANCE_MARGIN) -> bool:
    """Whether a mean accuracy is within ``margin`` of the best constant guess (or below)."""
    return math.isfinite(accuracy) and accuracy <= majority_rate + margin


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _g(x: float) -> str:
    if not math.isfinite(x):
        return "inf" if x > 0 else "—"
    return f"{x:.3g}"


def chance_notes(
    summary: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, str]],
    data: Sequence[dict[str, Any]],
    cfg: Any,
    nn_data: Any = None,
    erm_data: Any = None,
) -> list[str]:
    """One Markdown note per private summary row at chance (see the module docstring).

    ``summary``: :func:`~product_noise.compare.report.summarize` of ``rows`` (``results.csv``);
    ``data``: the harness's data context (``dataset``, ``role``, ``majority_rate``); ``cfg``
    the :class:`~product_noise.compare.config.CompareConfig`; ``nn_data``/``erm_data`` the
    loaded data sets (for the signal figures; ``None``: the figures are left out).
    """
    rate = {(d["role"], d["dataset"]): float(d["majority_rate"]) for d in data}
    notes = []
    theta: dict[str, float] = {}
    for s in summary:
        fam = s["family"]
        if fam == "nonprivate":
            continue
        role = "convex ERM" if fam == "erm" else "networks"
        r = rate.get((role, s["dataset"]))
        if r is None or not at_chance(s["accuracy_mean"], r):
            continue
        head = (
            f"**{s['mechanism']}** at ε = {_g(s['target_epsilon'])} ({s['target_label']}) on "
            f"`{s['dataset']}`: accuracy {s['accuracy_mean']:.3f}, at chance (majority-class "
            f"rate {r:.3f}, margin {CHANCE_MARGIN:g})."
        )
        mine = [x for x in rows if x["mechanism"] == s["mechanism"] and _same_target(x, s)]
        if fam == "dpsgd":
            why = _why_dpsgd(s, cfg)
        elif fam == "dpmix":
            why = _why_dpmix(s, mine, cfg, nn_data)
        elif fam == "erm":
            why = _why_erm(s, cfg, erm_data, theta)
        else:
            why = _why_runner_notes(mine)
        notes.append(" ".join(filter(None, [head, why, _helps(s, summary, rate, role)])))
    return notes


def _same_target(row: dict[str, str], s: dict[str, Any]) -> bool:
    for label in ("claimed", "verified", "unverified"):
        t = _num(row.get(f"{label}_target_epsilon"))
        if math.isfinite(t):
            return math.isclose(t, s["target_epsilon"])
    return False


def _why_dpsgd(s: dict[str, Any], cfg: Any) -> str:
    noise = s["expected_noise_norm"]
    b, c = int(cfg.batch_size), float(cfg.max_grad_norm)
    if not math.isfinite(noise):
        return ""
    ratio = noise / b
    return (
        f"Why: the noise per step has E‖n‖ = {_g(noise * c)} against at most {_g(b * c)} of "
        f"signal (batch {b} × clip norm C = {c:g}): noise-to-signal ≥ {_g(ratio)}, so the "
        f"updates follow the noise{'' if ratio >= 1 else ' in most coordinates'}."
    )


def _why_dpmix(s: dict[str, Any], mine: list[dict[str, str]], cfg: Any, data: Any) -> str:
    sigma = float(np.nanmean([_num(x["noise_scale"]) for x in mine])) if mine else math.nan
    if data is None or not math.isfinite(sigma):
        return ""
    X = np.asarray(data.X_train, dtype=np.float64).reshape(data.n_train, -1)
    y = np.asarray(data.y_train)
    n, d, k, ell = data.n_train, X.shape[1], data.num_classes, int(cfg.dpmix_l)
    T = int(cfg.dpmix_T or 2 * n)
    ex2 = float((X**2).sum(axis=1).mean())
    parts = []
    if s["mechanism"] == "dpmix-class":  # mixtures within a class: the class mean
        mus = [X[y == c].mean(axis=0) for c in range(k) if (y == c).any()]
        mu2 = float(np.mean([m @ m for m in mus]))
    else:
        mu = X.mean(axis=0)
        mu2 = float(mu @ mu)
    xbar = math.sqrt(ex2 / ell + (1 - 1 / ell) * mu2)
    parts.append(
        f"Why: each released record is a mixture of l = {ell} of the n = {n} training rows "
        f"plus Gaussian noise σ = {_g(sigma)} per coordinate: on the {d} features E‖n‖ ≈ "
        f"{_g(sigma * math.sqrt(d))} against E‖x̄‖ ≈ {_g(xbar)} (noise-to-signal "
        f"{_g(sigma * math.sqrt(d) / xbar)})"
    )
    if s["mechanism"] == "dpmix-global":
        p = np.bincount(y, minlength=k) / n
        ybar = math.sqrt(1 / ell + (1 - 1 / ell) * float(p @ p))
        parts[-1] += (
            f"; on the {k} soft labels σ√K ≈ {_g(sigma * math.sqrt(k))} against E‖ȳ‖ ≈ "
            f"{_g(ybar)} (noise-to-signal {_g(sigma * math.sqrt(k) / ybar)}): the labels the "
            "network learns are mostly noise"
        )
    parts[-1] += (
        f". With T = {T} releases each record joins about T·l/n = {_g(T * ell / n)} of them: "
        "σ is set mostly by that count and by ε, so more data of the same kind alone lowers it "
        "only slowly (at T = 2n the calibrated σ does not vanish as n grows)."
    )
    return parts[0]


def _why_erm(s: dict[str, Any], cfg: Any, data: Any, theta: dict[str, float]) -> str:
    noise = s["expected_noise_norm"]
    if data is None or not math.isfinite(noise):
        return ""
    if "norm" not in theta:
        theta["norm"] = _reference_norm(cfg, data)
    t = theta["norm"]
    method = s["mechanism"].split("-")[1]
    where = "added to θ itself" if method == "output" else "the runner's figure for the release"
    return (
        f"Why: the release's noise has E‖n‖ = {_g(noise)} ({where}) against ‖θ*‖ = {_g(t)}, "
        f"the non-private solution of the same objective (λ = {cfg.erm_lam:g}, n = "
        f"{data.n_train}): noise-to-signal {_g(noise / t)}."
    )


def _reference_norm(cfg: Any, data: Any) -> float:
    """‖θ*‖ of the non-private solution of the private rows' objective."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from ..erm.estimators import clip_and_augment

    X, _ = clip_and_augment(data.X_train, data.data_norm)
    clf = LogisticRegression(C=1.0 / (data.n_train * cfg.erm_lam), fit_intercept=False)
    clf.set_params(max_iter=2000)
    if data.num_classes > 2:
        model = OneVsRestClassifier(clf).fit(X, data.y_train)
        coef = np.vstack([e.coef_ for e in model.estimators_])
    else:
        coef = clf.fit(X, data.y_train).coef_
    return float(np.linalg.norm(coef))


def _why_runner_notes(mine: list[dict[str, str]]) -> str:
    notes = sorted({x["notes"] for x in mine if x.get("notes")})
    if not notes:
        return ""
    kept, size = [], 0
    for part in notes[0].split("; "):  # whole clauses, up to about 300 characters
        if kept and size + len(part) > 300:
            kept.append("…")
            break
        kept.append(part)
        size += len(part) + 2
    text = "; ".join(kept)
    return "The runner's notes: " + (text if text.endswith("…") else text.rstrip(".") + ".")


def _row_at(summary: Sequence[dict[str, Any]], mechanism: str, eps: float) -> Any:
    return next(
        (
            x
            for x in summary
            if x["mechanism"] == mechanism and math.isclose(x["target_epsilon"], eps)
        ),
        None,
    )


def _helps(
    s: dict[str, Any],
    summary: Sequence[dict[str, Any]],
    rate: dict[tuple[str, str], float],
    role: str,
) -> str:
    """What would help: a larger ε of the grid, the Gaussian at this ε, the family's levers."""
    r = rate[(role, s["dataset"])]
    same = [x for x in summary if x["mechanism"] == s["mechanism"] and x is not s]
    above = sorted(
        x["target_epsilon"]
        for x in same
        if x["target_epsilon"] > s["target_epsilon"] and not at_chance(x["accuracy_mean"], r)
    )
    out = []
    if above:
        out.append(
            f"In this grid it is above chance from ε = {_g(above[0])}"
            f" ({next(x for x in same if x['target_epsilon'] == above[0])['accuracy_mean']:.3f})."
        )
    fam = s["family"]
    gauss_name = {"dpsgd": "dpsgd-gaussian"}.get(fam)
    if fam == "erm":
        gauss_name = "erm-" + s["mechanism"].split("-")[1] + "-gaussian"
    if gauss_name and gauss_name != s["mechanism"]:
        g = _row_at(summary, gauss_name, s["target_epsilon"])
        if g is not None:
            out.append(
                f"The Gaussian at the same ε ({gauss_name}) adds E‖n‖ = "
                f"{_g(g['expected_noise_norm'])} and scores {g['accuracy_mean']:.3f}."
            )
            gap = s["expected_noise_norm"] / g["expected_noise_norm"]
            if math.isfinite(gap) and gap >= 100:
                out.append(
                    f"This noise needs {_g(gap)}× the Gaussian's noise for the same verified ε "
                    "(its verified calibration needs that scale): no setting of this comparison "
                    "closes that gap; the Gaussian is the setting that works here."
                )
                return " ".join(out)
    if s["mechanism"] == "dpmix-global":
        c = _row_at(summary, "dpmix-class", s["target_epsilon"])
        if c is not None:
            out.append(
                f"dpmix-class at the same ε (public labels, no label noise) scores "
                f"{c['accuracy_mean']:.3f}."
            )
    levers = {
        "dpsgd": "What would help: a larger ε, or less noise per unit of signal: larger "
        "batches (the signal grows with the batch, the noise of a step does not), fewer steps.",
        "dpmix": "What would help: dpmix-class (public labels: no noise on the labels), a "
        "larger ε, fewer releases per record (dpmix_T below 2n) with larger mixtures (dpmix_l),"
        " or a task with fewer classes.",
        "erm": "What would help: a larger ε or more training rows (the sensitivity of the "
        "solution falls as 1/(nλ)); a larger λ for every ERM row (the rule keeps one λ).",
    }
    if fam in levers:
        out.append(levers[fam])
    elif fam in ("adlm", "ldp"):
        out.append("What would help: a larger ε (the noise is on every record or every step).")
    return " ".join(out)
