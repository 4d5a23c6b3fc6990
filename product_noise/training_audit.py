"""Empirical privacy audits of *training*: canary audits of DP-SGD and of a DPMix release.

:mod:`product_noise.audit` attacks a bare noise sampler. This module attacks a real training
run: DP-SGD through :class:`product_noise.PrivacyEngine` (real Opacus optimizer steps, the real
``add_noise``), and the DPMix publisher. It inserts a canary, runs the algorithm many times with
and without it, and turns the attack's true/false positive rates into a statistically valid
**lower bound** on ε at a given δ (Jagielski, Ullman, Oprea 2020; Nasr, Song, Thakurta, Papernot,
Carlini 2021). A lower bound is neither ``claimed`` nor ``verified``: it is printed as an
"empirical lower bound" next to both.

Threat model (DP-SGD): white box, Dirac gradient canary
-------------------------------------------------------
This is the strongest adversary the DP-SGD accounting covers (Nasr et al. 2021, "gradient
canary, all intermediate models"). The adversary

* knows every other record, the initial model and every hyperparameter (clip norm ``C``, learning
  rate, the normaliser ``B`` = Opacus' ``expected_batch_size``);
* sees every intermediate model ``θ_0, θ_1, …, θ_T``;
* controls the canary's gradient: the canary is a record whose per-sample gradient is forced (in
  the real ``grad_sample`` that Opacus clips) to ``L·e_j`` with ``L ≫ C``, so that after Opacus'
  own clipping it is ``C' e_j`` with ``C' = L·min(1, C/(L + 10⁻⁶)) ≈ C`` (a "Dirac" canary on one
  parameter coordinate ``j``). In the run *without* the canary the same row is present with its
  gradient forced to 0, so both runs have the same batch normaliser: this is exactly the
  add/remove relation with a record of gradient norm ``C'`` ≤ ``C``.

Steps are full batch (``sample_rate = 1``, no subsampling; the verified accountant is evaluated
at ``q = 1``). From ``θ_t → θ_{t+1}`` (plain SGD) the adversary recovers the noised gradient sum
``B (θ_t − θ_{t+1}) / lr``, and subtracts the clipped gradient sum of the known records, which it
recomputes at ``θ_t`` (closed-form per-sample gradients of softmax regression, clipped with Opacus'
formula).
What remains is ``r_t = n_t + b·C' e_j`` with ``n_t`` the noise actually added and ``b ∈ {0, 1}``
the canary bit. The noise is fresh at each step and the canary's contribution does not depend on
``θ_t``, so the optimal (Neyman–Pearson) statistic is the sum over steps of the exact
log-likelihood ratio of the noise law, which for every spherical law ``n = R·H`` of the package
(Gaussian, product noise, ℓ2; :mod:`product_noise.mechanisms.spherical`) is::

    Σ_t  g(‖r_t − C' e_j‖) − g(‖r_t‖),        g(ρ) = ln f_R(ρ) − (M − 1) ln ρ.

For the Gaussian it is increasing in ``Σ_t ⟨r_t, e_j⟩``; for product noise (one half-normal
radius, ``g(ρ) = −(M−1) ln ρ − ρ²/2σ²``) it exploits the revealed scale (``product_noise_paper.md``
§4). The audit therefore tests the accounting of the noise actually added, through the real
training code. The score is computed in float64 (the model is float64).

Threat model (DP-SGD): final model only, input canary (``threat_model="final-model"``)
-------------------------------------------------------------------------------------
The weaker, black-box variant: the canary row is a real input (the all-ones image, label 0; its
per-sample gradient is the natural one, clipped by Opacus) in the run with the canary and has its
gradient zeroed in the run without it (same normaliser, add/remove as above). The adversary sees
only the final model ``θ_T`` and scores the canary's logit margin ``z_y − max_{k≠y} z_k``. It
needs no gradient access, so it shows what a realistic attacker already gets.

Threat model (DPMix): black box, outlier canary
-----------------------------------------------
Replace-one neighbours (DPMix' relation). ``n − 1`` records (digits, pixels in [0, 1]) are fixed;
the last record is the all-zeros image (label 0) without the canary and the all-ones image
(label 1, at the full diameter ``D_x = √d``) with it. The adversary sees the ``T`` released
``x̃_t`` and scores ``max_t ⟨x̃_t, 1/√d⟩`` (the canary raises the mixes that contain it). This is
a valid but weaker attack (it ignores the labels and the known records), so its bound is far
below the verified ε; it is a sanity check of the accounting, not a tightness result.

Why the bound is valid
----------------------
Trials are independent (fresh noise, independent generators for the two worlds). For every
measurable set ``S`` of outputs, (ε, δ)-DP gives ``P_A(S) ≤ e^ε P_B(S) + δ`` for both orders
``(A, B) ∈ {(in, out), (out, in)}``, hence ``ε ≥ ln((P_A(S) − δ)/P_B(S))``.

1. *Selection split*: the first ``selection_fraction`` of the trials of each world choose ``S``
   (a threshold set ``{s ≥ c}`` or ``{s ≤ c}`` and the order (A, B)), maximising the same
   penalised criterion on those trials. They are never used again.
2. *Evaluation split*: the remaining trials give binomial counts for the fixed ``S``. One-sided
   Clopper–Pearson bounds at level ``α/2`` each (``α = 1 − confidence``): ``p_lo ≤ P_A(S)`` and
   ``p_hi ≥ P_B(S)``. By the union bound both hold with probability ≥ ``confidence``, and then
   ``ε_lb = max(0, ln((p_lo − δ)/p_hi))`` ≤ the true ε(δ). The same event makes
   ``ln((p_lo − δ')/p_hi)`` valid at every other δ' simultaneously
   (:meth:`EpsilonLowerBound.epsilon_at`), which is how a claim stated at another δ is compared.

Hence, at the stated confidence, a bound above the *verified* ε would reveal a bug (in the
accountant or in the training code); a bound above the *claimed* ε shows the claim false on a
real training run.
"""

from __future__ import annotations

import csv
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import (
    check_confidence,
    check_delta,
    check_epsilon,
    check_output_dir,
    check_positive,
    check_positive_int,
)
from .audit import clopper_pearson_lower, clopper_pearson_upper
from .privacy import PrivacyFigure, PrivacyWarning

__all__ = [
    "MECHANISMS",
    "EpsilonLowerBound",
    "TrainingAuditResult",
    "epsilon_lower_bound",
    "audit_training",
    "results_table",
    "format_markdown",
    "write_report",
    "make_command",
]

#: mechanisms :func:`audit_training` can audit
MECHANISMS: tuple[str, ...] = ("gaussian", "product-paper", "product", "l2", "dpmix")

_MIN_TRIALS = 20
_MAX_CANDIDATES = 4000
_CANARY_GRAD = 1e6  # forced pre-clipping gradient value of the Dirac canary (≫ C)


# =========================================================================== lower bound
@dataclass(frozen=True)
class EpsilonLowerBound:
    """A Clopper–Pearson lower bound on ε(δ) from two samples of attack scores.

    Attributes
    ----------
    epsilon_lower : float
        ``max(0, ln((p_lower − δ)/p_upper))``: with probability ≥ ``confidence`` the true
        ε at ``delta`` is at least this.
    delta, confidence : float
        The δ of the bound and its joint confidence.
    region : str
        The chosen set ``S`` and order, e.g. ``"in: s >= 1.3"`` (S is the set, the named world
        is ``A``, the more likely one on ``S``).
    threshold : float
        The threshold ``c`` of ``S``.
    p_a_hat, p_b_hat : float
        Empirical ``P_A(S)`` and ``P_B(S)`` on the evaluation split.
    p_lower, p_upper : float
        Clopper–Pearson lower bound on ``P_A(S)`` and upper bound on ``P_B(S)`` (level α/2 each).
    n_a, n_b : int
        Evaluation trials of worlds A and B.
    n_selection : int
        Trials (both worlds together) used only to choose ``S``.
    """

    epsilon_lower: float
    delta: float
    confidence: float
    region: str
    threshold: float
    p_a_hat: float
    p_b_hat: float
    p_lower: float
    p_upper: float
    n_a: int
    n_b: int
    n_selection: int

    def epsilon_at(self, delta: float) -> float:
        """The lower bound at another δ from the same confidence event (valid simultaneously)."""
        delta = check_delta(delta)
        return _log_ratio(self.p_lower, self.p_upper, delta)

    @property
    def ceiling(self) -> float:
        """The largest bound these trial counts can give (perfect separation of the worlds):
        how far a lower bound can reach at all, whatever the attack."""
        a2 = (1.0 - self.confidence) / 2.0
        lo = float(clopper_pearson_lower(self.n_a, self.n_a, a2))
        hi = float(clopper_pearson_upper(0, self.n_b, a2))
        return _log_ratio(lo, hi, self.delta)

    def __str__(self) -> str:
        return (
            f"empirical lower bound (ε ≥ {self.epsilon_lower:.4g} at δ = {self.delta:.3g}, "
            f"{100 * self.confidence:g}% confidence) [S = {{{self.region}}}, "
            f"P̂_A(S) = {self.p_a_hat:.4g}, P̂_B(S) = {self.p_b_hat:.4g}, "
            f"n = {self.n_a}/{self.n_b} evaluation trials]"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy of every field."""
        return dict(self.__dict__)


def _log_ratio(lo: float, hi: float, delta: float) -> float:
    if lo <= delta or hi <= 0:
        return 0.0 if lo <= delta else math.inf
    return max(0.0, math.log((lo - delta) / hi))


def _check_scores(name: str, scores: Any) -> np.ndarray:
    arr = np.asarray(scores, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of scores, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if arr.size < 4:
        raise ValueError(f"{name} needs at least 4 scores, got {arr.size}")
    return arr


def _counts(sorted_scores: np.ndarray, c: np.ndarray, ge: bool) -> np.ndarray:
    if ge:
        return sorted_scores.size - np.searchsorted(sorted_scores, c, side="left")
    return np.searchsorted(sorted_scores, c, side="right")


def _criterion(ka, na, kb, nb, alpha2: float, delta: float) -> np.ndarray:
    lo = np.asarray(clopper_pearson_lower(ka, na, alpha2))
    hi = np.asarray(clopper_pearson_upper(kb, nb, alpha2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lo > delta, np.log(np.maximum(lo - delta, 1e-300) / hi), -np.inf)


def epsilon_lower_bound(
    scores_in: Sequence[float] | np.ndarray,
    scores_out: Sequence[float] | np.ndarray,
    *,
    delta: float,
    confidence: float = 0.95,
    selection_fraction: float = 0.5,
) -> EpsilonLowerBound:
    """Lower bound on ε(δ) from attack scores of runs with (``in``) and without (``out``) canary.

    The first ``selection_fraction`` of each sample chooses a threshold set ``S = {s ≥ c}`` or
    ``{s ≤ c}`` and the order of the two worlds; the rest evaluates it with one-sided
    Clopper–Pearson bounds at level ``(1 − confidence)/2`` each (module docstring). Scores must
    come from independent trials, in an order unrelated to their values.

    Parameters
    ----------
    scores_in, scores_out : array-like of float
        One score per trial (any orientation; ±inf allowed, NaN not). At least 4 each.
    delta : float
        δ in (0, 1) of the bound.
    confidence : float, default 0.95
        Joint confidence in (0, 1).
    selection_fraction : float, default 0.5
        Fraction of each sample used to choose ``S``, in (0, 1).

    Returns
    -------
    EpsilonLowerBound

    Raises
    ------
    ValueError
        On δ or confidence outside (0, 1), a bad ``selection_fraction``, NaN scores or fewer
        than 4 scores per world (at least one per split).
    """
    delta = check_delta(delta)
    confidence = check_confidence(confidence)
    if isinstance(selection_fraction, bool) or not 0.0 < float(selection_fraction) < 1.0:
        raise ValueError(
            f"selection_fraction must lie strictly between 0 and 1, got {selection_fraction!r}"
        )
    s_in = _check_scores("scores_in", scores_in)
    s_out = _check_scores("scores_out", scores_out)
    m_in = min(max(int(round(selection_fraction * s_in.size)), 1), s_in.size - 1)
    m_out = min(max(int(round(selection_fraction * s_out.size)), 1), s_out.size - 1)
    sel_in, ev_in = np.sort(s_in[:m_in]), np.sort(s_in[m_in:])
    sel_out, ev_out = np.sort(s_out[:m_out]), np.sort(s_out[m_out:])
    alpha2 = (1.0 - confidence) / 2.0

    cand = np.unique(np.concatenate([sel_in, sel_out]))
    if cand.size > _MAX_CANDIDATES:
        cand = np.unique(np.quantile(cand, np.linspace(0, 1, _MAX_CANDIDATES)))
    best = (-np.inf, float(cand[0]), True, "in")
    for ge in (True, False):
        k_in, k_out = _counts(sel_in, cand, ge), _counts(sel_out, cand, ge)
        for a in ("in", "out"):
            if a == "in":
                crit = _criterion(k_in, m_in, k_out, m_out, alpha2, delta)
            else:
                crit = _criterion(k_out, m_out, k_in, m_in, alpha2, delta)
            i = int(np.argmax(crit))
            if crit[i] > best[0]:
                best = (float(crit[i]), float(cand[i]), ge, a)
    _, c, ge, a = best
    ka_sorted, kb_sorted = (ev_in, ev_out) if a == "in" else (ev_out, ev_in)
    na, nb = ka_sorted.size, kb_sorted.size
    ka = int(_counts(ka_sorted, np.array([c]), ge)[0])
    kb = int(_counts(kb_sorted, np.array([c]), ge)[0])
    lo = float(clopper_pearson_lower(ka, na, alpha2))
    hi = float(clopper_pearson_upper(kb, nb, alpha2))
    return EpsilonLowerBound(
        epsilon_lower=_log_ratio(lo, hi, delta),
        delta=delta,
        confidence=confidence,
        region=f"{a}: s {'>=' if ge else '<='} {c:.6g}",
        threshold=c,
        p_a_hat=ka / na,
        p_b_hat=kb / nb,
        p_lower=lo,
        p_upper=hi,
        n_a=na,
        n_b=nb,
        n_selection=m_in + m_out,
    )


# =========================================================================== result
@dataclass
class TrainingAuditResult:
    """One audit: the empirical lower bound next to the verified and (if any) claimed figure.

    Attributes
    ----------
    mechanism : str
        One of :data:`MECHANISMS`.
    bound : EpsilonLowerBound
        The empirical lower bound at ``delta``.
    verified : PrivacyFigure
        The verified (ε, δ) of exactly what was run, at ``delta``.
    claimed : PrivacyFigure or None
        The claimed figure (product noise at the paper's calibration, DPMix' thesis formula).
    trials, steps : int
        Trials per world; optimizer steps per DP-SGD run (DPMix: releases per run).
    threat_model, statistic : str
        What the adversary sees and the score it computes.
    settings : dict
        Everything needed to reproduce the run (noise multiplier, dimension, seed, ...); with a
        calibrated noise also ``target_epsilon`` and its ``target_label`` (see :attr:`target`).
    seconds : float
        Wall-clock time of the audit.
    """

    mechanism: str
    bound: EpsilonLowerBound
    verified: PrivacyFigure
    claimed: PrivacyFigure | None
    trials: int
    steps: int
    threat_model: str
    statistic: str
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def delta(self) -> float:
        return self.bound.delta

    @property
    def confidence(self) -> float:
        return self.bound.confidence

    @property
    def target(self) -> str:
        """The calibration target of the row, e.g. ``"verified ε = 2"`` (``"given noise"``)."""
        eps = self.settings.get("target_epsilon")
        if eps is None:
            return "given noise"
        return f"{self.settings.get('target_label', 'verified')} ε = {eps:g}"

    @property
    def claimed_bound(self) -> float | None:
        """The lower bound at the claimed figure's δ (``None`` without a usable claim)."""
        if self.claimed is None or not 0 < self.claimed.delta < 1:
            return None
        return self.bound.epsilon_at(self.claimed.delta)

    @property
    def verdict(self) -> str:
        """A plain sentence on the row."""
        lb = self.bound.epsilon_lower
        conf = f"{100 * self.confidence:g}%"
        if lb > self.verified.epsilon:
            parts = [
                f"lower bound > verified at {conf} confidence: INCONSISTENT, the accounting or "
                "the training code is wrong"
            ]
        else:
            parts = ["lower bound ≤ verified: consistent"]
        cb = self.claimed_bound
        if cb is not None and math.isfinite(self.claimed.epsilon):  # type: ignore[union-attr]
            if cb > self.claimed.epsilon:  # type: ignore[union-attr]
                parts.append(
                    f"lower bound > claimed: the claim is false on a real training run "
                    f"(at {conf} confidence)"
                )
            else:
                parts.append("lower bound ≤ claimed: this audit does not refute the claim")
        return "; ".join(parts)

    def to_row(self) -> dict[str, Any]:
        """One flat row for the CSV/Markdown table (every ε column named by its kind)."""
        return {
            "mechanism": self.mechanism,
            "steps": self.steps,
            "trials_per_world": self.trials,
            "verified_target_epsilon": self._target_of("verified"),
            "claimed_target_epsilon": self._target_of("claimed"),
            "delta": self.delta,
            "confidence": self.confidence,
            "empirical_lower_bound_epsilon": self.bound.epsilon_lower,
            "verified_epsilon": self.verified.epsilon,
            "claimed_epsilon": None if self.claimed is None else self.claimed.epsilon,
            "claimed_delta": None if self.claimed is None else self.claimed.delta,
            "lower_bound_at_claimed_delta": self.claimed_bound,
            "finite_sample_ceiling": self.bound.ceiling,
            "region": self.bound.region,
            "p_hat_A": self.bound.p_a_hat,
            "p_hat_B": self.bound.p_b_hat,
            "threat_model": self.settings.get("threat_model", ""),
            "statistic": self.statistic,
            "noise_multiplier": self.settings.get("noise_multiplier"),
            "dim": self.settings.get("dim"),
            "seconds": round(self.seconds, 2),
            "verdict": self.verdict,
        }

    def _target_of(self, label: str) -> float | None:
        if self.settings.get("target_label") != label:
            return None
        return self.settings.get("target_epsilon")

    def __str__(self) -> str:
        claimed = "" if self.claimed is None else f"; {self.claimed}"
        what = [self.settings.get("threat_model", ""), self.target, f"T = {self.steps}"]
        head = f"{self.mechanism} ({', '.join(w for w in what if w)})"
        return f"{head}: {self.bound}; {self.verified}{claimed} => {self.verdict}"


# =========================================================================== DP-SGD
def _digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(seed).choice(len(y), size=n, replace=False)
    return X[idx] / 16.0, y[idx]


def _noise_family(mechanism: str) -> str:
    return "product" if mechanism == "product-paper" else mechanism


class _DPSGDRun:
    """One private logistic regression (64 → 10, float64) trained by the package's engine.

    The dataset is ``n_records`` digits plus one canary row (last). White box: its per-sample
    gradient is forced to ``L e_j`` (canary present) or 0 (absent) in Opacus' ``grad_sample``
    before clipping. Final model: the row is the all-ones image with label 0 and keeps its own
    gradient (present) or has it zeroed (absent).
    """

    def __init__(
        self,
        mechanism: str,
        noise_kwargs: dict[str, Any],
        *,
        n_records: int,
        max_grad_norm: float,
        lr: float,
        data_seed: int,
        noise_seed: int,
        threat_model: str = "white-box",
    ) -> None:
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset

        from .opacus import PrivacyEngine

        X, y = _digits(n_records, data_seed)
        self.threat_model = threat_model
        # the canary row: its input is unused in the white-box audit (gradient forced)
        canary = np.ones if threat_model == "final-model" else np.zeros
        X = np.vstack([X, canary((1, X.shape[1]))])
        y = np.append(y, 0)
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y).long()
        self.n_known = n_records
        model = nn.Linear(self.X.shape[1], 10).double()
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
        loader = DataLoader(TensorDataset(self.X, self.y), batch_size=len(self.y))
        with warnings.catch_warnings():
            # Opacus warns once per engine that its secure RNG is off: an audit draws its noise
            # from a seeded torch generator by design (18 identical warnings per report)
            warnings.filterwarnings("ignore", message="Secure RNG turned off", category=UserWarning)
            self.engine = PrivacyEngine()
        gen = torch.Generator().manual_seed(int(noise_seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PrivacyWarning of the paper's calibration, Opacus
            out = self.engine.make_private(
                module=model,
                optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                data_loader=loader,
                max_grad_norm=max_grad_norm,
                poisson_sampling=False,  # full batch: sample_rate = 1
                noise_generator=gen,
                **noise_kwargs,
            )
        self.model, self.optimizer = out[0], out[1]
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.theta0 = [p.detach().clone() for p in self.params]
        self.C = float(max_grad_norm)
        self.lr = float(lr)
        self.B = float(self.optimizer.expected_batch_size)
        self.dim = sum(int(p.numel()) for p in self.params)
        self.mech = self.engine.current_mechanism()
        # the clipped canary norm, exactly as Opacus clips it (per-sample norm L)
        self.canary_norm = _CANARY_GRAD * min(1.0, self.C / (_CANARY_GRAD + 1e-6))
        self.criterion = nn.CrossEntropyLoss()

    def _flat(self) -> Any:
        import torch

        return torch.cat([p.detach().reshape(-1) for p in self.params]).clone()

    def _known_clipped_sum(self, flat: Any) -> Any:
        """Σ clip(∇ℓ(θ_t; x_i)) over the known records, recomputed by the adversary.

        Softmax regression has closed-form per-sample gradients: with ``e = softmax(Wx + b) −
        onehot(y)``, ``∇_W = e xᵀ`` and ``∇_b = e``, so ``‖∇‖ = ‖e‖ √(‖x‖² + 1)``; they are
        clipped with Opacus' factor ``min(1, C/(‖∇‖ + 10⁻⁶))`` (weight first, then bias, as
        ``nn.Linear.parameters()`` and the flat vector).
        """
        import torch

        X, y = self.X[: self.n_known], self.y[: self.n_known]
        k, d = 10, X.shape[1]
        W, b = flat[: k * d].view(k, d), flat[k * d :]
        e = torch.softmax(X @ W.T + b, dim=1)
        e[torch.arange(len(y)), y] -= 1.0
        norms = e.norm(dim=1) * torch.sqrt((X * X).sum(1) + 1.0)
        e = e * (self.C / (norms + 1e-6)).clamp(max=1.0)[:, None]
        return torch.cat([(e.T @ X).reshape(-1), e.sum(0)])

    def _final_margin(self) -> float:
        """Logit margin of the canary's label at the final model: ``z_y − max_{k≠y} z_k``."""
        import torch

        with torch.no_grad():
            z = self.model(self.X[-1:]).reshape(-1)
            y = int(self.y[-1])
            others = torch.cat([z[:y], z[y + 1 :]])
            return float(z[y] - others.max())

    def run(self, present: bool, trials: int, steps: int, pbar: Any = None) -> np.ndarray:
        """Scores of ``trials`` independent runs: the summed per-step log-likelihood ratios
        (white box) or the canary's final logit margin (final model)."""
        import torch

        white = self.threat_model == "white-box"

        law = self.mech.law
        c = self.canary_norm
        j = self.dim - 1  # the Dirac coordinate: the last parameter value (a bias)
        last = self.params[-1]
        scores = np.empty(trials)
        for trial in range(trials):
            with torch.no_grad():
                for p, p0 in zip(self.params, self.theta0):
                    p.copy_(p0)
            total = 0.0
            for _ in range(steps):
                before = self._flat()
                self.optimizer.zero_grad(set_to_none=True)
                with warnings.catch_warnings():
                    # Opacus' hooks on an input that needs no gradient: expected here
                    warnings.filterwarnings("ignore", message="Full backward hook")
                    self.criterion(self.model(self.X), self.y).backward()
                with torch.no_grad():
                    if white or not present:
                        for p in self.params:
                            p.grad_sample[-1].zero_()
                    if white and present:
                        last.grad_sample[-1].view(-1)[-1] = _CANARY_GRAD
                self.optimizer.step()
                if not white:
                    continue
                after = self._flat()
                with torch.no_grad():
                    r = (before - after) * (self.B / self.lr) - self._known_clipped_sum(before)
                rn = float(r.norm())
                u = float(r[j]) / rn
                # log f(r − c e_j) − log f(r) = −L(‖r‖, −⟨r,e_j⟩/‖r‖; c)
                total -= float(law.privacy_loss(np.array(rn), np.array(-u), c))
            scores[trial] = total if white else self._final_margin()
            if pbar is not None:
                pbar.update(1)
        return scores


def _dpsgd_noise_kwargs(
    mechanism: str,
    *,
    epsilon: float,
    delta: float,
    steps: int,
    noise_multiplier: float | None,
    dim: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``make_private`` noise arguments and settings of one audited mechanism."""
    from .mechanisms import MECHANISMS as FAMILIES
    from .opacus import calibrate_verified_noise_multiplier

    if mechanism == "product-paper":
        eps0, delta0 = epsilon / steps, delta / steps
        kw = {"noise": "product", "epsilon0": eps0, "target_delta0": delta0}
        return kw, {"epsilon0": eps0, "target_delta0": delta0, "sensitivity": "add_remove"}
    family = _noise_family(mechanism)
    if noise_multiplier is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Opacus' RDP order warning (start guess)
            nm = calibrate_verified_noise_multiplier(
                FAMILIES[family], epsilon, delta, dim=dim, sample_rate=1.0, steps=steps
            )
        how = f"calibrated: verified ε = {epsilon:g} at δ = {delta:g}"
    else:
        nm = check_positive("noise_multiplier", noise_multiplier)
        how = "given"
    return {"noise": family, "noise_multiplier": float(nm)}, {"calibration": how}


def _claimed_product(settings: dict[str, Any], steps: int, n: int) -> PrivacyFigure:
    """The paper's claim for ``steps`` full-batch steps at its per-step calibration."""
    from .accounting.claimed import paper_composition_at_steps

    eps0, delta0 = settings["epsilon0"], settings["claimed_delta0"]
    if steps == 1:
        return PrivacyFigure(
            eps0,
            delta0,
            "claimed",
            "product-noise paper per-step theorem (ε₀, δ₀) at its calibration σ = C·t(M,k)/ε₀",
        )
    try:
        fig = paper_composition_at_steps(eps0, delta0, n, n, steps)
        return PrivacyFigure(
            fig.epsilon, fig.delta, "claimed", "product-noise paper composition", {"steps": steps}
        )
    except ValueError:  # the paper's formula is undefined for few steps
        return PrivacyFigure(
            steps * eps0,
            min(steps * delta0, 1.0),
            "claimed",
            "product-noise paper per-step theorem composed by basic composition (the paper's "
            "own composition is undefined at so few steps)",
            {"steps": steps},
        )


def _audit_dpsgd(
    mechanism: str,
    *,
    trials: int,
    steps: int,
    epsilon: float,
    noise_multiplier: float | None,
    delta: float,
    confidence: float,
    n_records: int,
    max_grad_norm: float,
    learning_rate: float,
    seed: int,
    progress: bool,
    threat_model: str,
) -> TrainingAuditResult:
    from .accounting.pld import verified_epsilon

    dim = 64 * 10 + 10
    noise_kw, settings = _dpsgd_noise_kwargs(
        mechanism,
        epsilon=epsilon,
        delta=delta,
        steps=steps,
        noise_multiplier=noise_multiplier,
        dim=dim,
    )
    ss = np.random.SeedSequence(seed)
    seeds = [int(s.generate_state(1)[0]) for s in ss.spawn(2)]
    pbar = None
    if progress:
        from tqdm.auto import tqdm

        pbar = tqdm(
            total=2 * trials, unit="run", desc=f"audit-training {mechanism} ({threat_model})"
        )
    try:
        scores = {}
        run = None
        for present, s in ((True, seeds[0]), (False, seeds[1])):
            run = _DPSGDRun(
                mechanism,
                noise_kw,
                n_records=n_records,
                max_grad_norm=max_grad_norm,
                lr=learning_rate,
                data_seed=seed,
                noise_seed=s,
                threat_model=threat_model,
            )
            scores[present] = run.run(present, trials, steps, pbar)
    finally:
        if pbar is not None:
            pbar.close()
    assert run is not None
    mech = run.mech  # sensitivity = C: add/remove with shift C
    if steps == 1:  # one full-batch step: ε(δ) of the exact profile itself, no composition
        eps_v = float(mech.epsilon(delta))
        how = "exact profile (sup over shift norms ≤ C), add/remove, one full-batch step"
    else:
        eps_v = verified_epsilon(
            mech.privacy_profile(), sampling_prob=1.0, num_steps=steps, delta=delta
        )
        how = f"pessimistic PLD (dp-accounting), add/remove, {steps} full-batch steps"
    verified = PrivacyFigure(
        float(eps_v),
        delta,
        "verified",
        f"{type(mech).__name__} (M = {run.dim}): {how}",
    )
    settings.update(
        {
            "threat_model": threat_model,
            "noise_multiplier": float(run.optimizer.noise_multiplier),
            "dim": run.dim,
            "n_records": n_records,
            "max_grad_norm": max_grad_norm,
            "learning_rate": learning_rate,
            "seed": seed,
        }
    )
    claimed = None
    if mechanism == "product-paper":
        paper = run.engine.noise_config["paper"]
        settings["claimed_delta0"] = paper["claimed_delta0"]
        settings["k"] = paper["k"]
        claimed = _claimed_product(settings, steps, len(run.y))
    bound = epsilon_lower_bound(scores[True], scores[False], delta=delta, confidence=confidence)
    return TrainingAuditResult(
        mechanism=mechanism,
        bound=bound,
        verified=verified,
        claimed=claimed,
        trials=trials,
        steps=steps,
        threat_model=_THREATS[threat_model],
        statistic=_STATISTICS[threat_model],
        settings=settings,
    )


_THREATS = {
    "white-box": "white box: all intermediate models, all other records known, Dirac gradient "
    "canary, full-batch DP-SGD through product_noise.PrivacyEngine",
    "final-model": "final model only: input canary (all-ones image, label 0), all other records "
    "known, full-batch DP-SGD through product_noise.PrivacyEngine",
}
_STATISTICS = {
    "white-box": "Σ_t exact log-likelihood ratio of the noise law at the recovered noise",
    "final-model": "logit margin z_y − max_{k≠y} z_k of the canary at the final model",
}


# =========================================================================== DPMix
def _audit_dpmix(
    *,
    trials: int,
    releases: int,
    epsilon: float,
    sigma: float | None,
    delta: float,
    confidence: float,
    n_records: int,
    mix_size: int,
    seed: int,
    progress: bool,
) -> TrainingAuditResult:
    from dpmix import DPMix
    from dpmix.accounting import calibrate_noise_multiplier
    from dpmix.bounds import ONE_HOT_DIAMETER, PixelBound

    if mix_size > n_records:
        raise ValueError(f"dpmix_l={mix_size} exceeds n_records={n_records}")
    X, y = _digits(n_records - 1, seed)
    d = X.shape[1]
    dx = math.sqrt(d)
    if sigma is None:
        s_eff = calibrate_noise_multiplier(epsilon, delta, mix_size, releases, n_records)
        sigma = s_eff * math.hypot(dx, ONE_HOT_DIAMETER) / mix_size
        how = f"calibrated: verified ε = {epsilon:g} at δ = {delta:g}"
    else:
        sigma = check_positive("noise_multiplier", sigma)
        how = "given"
    Y = np.eye(10)[y]
    worlds = {
        False: (np.vstack([X, np.zeros(d)]), np.vstack([Y, np.eye(10)[0]])),
        True: (np.vstack([X, np.ones(d)]), np.vstack([Y, np.eye(10)[1]])),
    }
    u = np.ones(d) / math.sqrt(d)
    mix = DPMix(mix_size, releases, sigma_x=sigma, bound=PixelBound(), progress=False)
    ss = np.random.SeedSequence(seed).spawn(2)
    pbar = None
    if progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=2 * trials, unit="release", desc="audit-training dpmix")
    scores = {}
    try:
        for (present, (Xw, Yw)), s in zip(worlds.items(), ss):
            trial_seeds = s.generate_state(trials, dtype=np.uint64)
            out = np.empty(trials)
            for i in range(trials):
                xt, _ = mix.publish(Xw, Yw, seed=int(trial_seeds[i]))
                out[i] = float(np.max(np.asarray(xt) @ u))
                if pbar is not None:
                    pbar.update(1)
            scores[present] = out
    finally:
        if pbar is not None:
            pbar.close()
    verified = mix.privacy(delta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        claimed = mix.claimed_privacy(delta)
    bound = epsilon_lower_bound(scores[True], scores[False], delta=delta, confidence=confidence)
    return TrainingAuditResult(
        mechanism="dpmix",
        bound=bound,
        verified=verified,
        claimed=claimed,
        trials=trials,
        steps=releases,
        threat_model="black box: the T released mixes; replace-one (all-zeros record -> "
        "all-ones outlier canary at the full diameter)",
        statistic="max_t <x̃_t, 1/√d>",
        settings={
            "threat_model": "release",
            "noise_multiplier": float(sigma),
            "calibration": how,
            "dim": d,
            "n_records": n_records,
            "l": mix_size,
            "releases": releases,
            "seed": seed,
        },
    )


# =========================================================================== public entry
def audit_training(
    mechanism: str,
    *,
    trials: int = 1000,
    steps: int = 1,
    epsilon: float = 2.0,
    noise_multiplier: float | None = None,
    delta: float = 1e-5,
    confidence: float = 0.95,
    n_records: int = 32,
    max_grad_norm: float = 1.0,
    learning_rate: float = 0.5,
    dpmix_l: int = 4,
    seed: int = 0,
    threat_model: str | None = None,
    progress: bool = False,
) -> TrainingAuditResult:
    """Audit one mechanism on real runs: a canary, ``trials`` runs with and ``trials`` without.

    DP-SGD mechanisms (``"gaussian"``, ``"product-paper"``, ``"product"``, ``"l2"``) train a
    float64 logistic regression (64 → 10, M = 650) on ``n_records`` digits for ``steps``
    full-batch steps through :class:`product_noise.PrivacyEngine`, with a white-box Dirac
    gradient canary (or, ``threat_model="final-model"``, an input canary scored on the final
    model only); ``"dpmix"`` publishes ``steps`` DPMix mixes of ``dpmix_l`` records out of
    ``n_records`` with an outlier canary. See the module docstring for both threat models and
    why the bound is valid.

    Parameters
    ----------
    mechanism : str
        One of :data:`MECHANISMS`. ``"product-paper"`` is product noise at the paper's per-step
        calibration (``sensitivity="add_remove"``, ε₀ = ``epsilon/steps``, claimed
        δ₀ = ``delta/steps``), so that its claimed figure is (``epsilon``, ``delta``).
    trials : int, default 1000
        Runs per world (≥ 20); half of them choose the attack threshold, half evaluate it.
    steps : int, default 1
        DP-SGD optimizer steps per run, or DPMix releases per run.
    epsilon : float, default 2.0
        Calibration target: the verified ε at ``delta`` (gaussian, product, l2, dpmix) or the
        claimed ε (product-paper). Ignored when ``noise_multiplier`` is given.
    noise_multiplier : float, optional
        Use this noise instead of calibrating: σ/C (θ/C for l2) for DP-SGD, ``sigma_x`` for
        DPMix. Not for product-paper.
    delta : float, default 1e-5
        δ of every figure, in (0, 1).
    confidence : float, default 0.95
        Confidence of the lower bound, in (0, 1).
    n_records, max_grad_norm, learning_rate, dpmix_l : optional
        Training set size (the canary is extra for DP-SGD, replaces the last record for DPMix),
        clip norm C, SGD learning rate, DPMix mixture degree l.
    seed : int, default 0
        Seeds the data subset and both worlds' noise generators.
    threat_model : {"white-box", "final-model", "release"}, optional
        DP-SGD: ``"white-box"`` (default; every intermediate model, Dirac gradient canary,
        likelihood-ratio score) or ``"final-model"`` (the all-ones image with label 0 as an
        input canary, scored by its logit margin at the final model; weaker). DPMix:
        ``"release"`` (the only one, the default).
    progress : bool, default False
        tqdm progress bar over the runs.

    Returns
    -------
    TrainingAuditResult

    Raises
    ------
    ValueError
        On an unknown mechanism, ``trials`` < 20, ``steps`` < 1, δ or confidence outside (0, 1),
        ε ≤ 0, ``noise_multiplier`` given for product-paper, or a threat model the mechanism
        does not have. Nothing is run then.
    """
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r}; choose one of {', '.join(MECHANISMS)}")
    allowed = ("release",) if mechanism == "dpmix" else ("white-box", "final-model")
    if threat_model is None:
        threat_model = allowed[0]
    if threat_model not in allowed:
        raise ValueError(
            f"threat_model {threat_model!r} does not apply to {mechanism}; choose one of "
            f"{', '.join(allowed)}"
        )
    try:
        trials = check_positive_int("trials", trials, minimum=_MIN_TRIALS)
        steps = check_positive_int("steps", steps)
        n_records = check_positive_int("n_records", n_records, minimum=2)
        dpmix_l = check_positive_int("dpmix_l", dpmix_l)
        seed = check_positive_int("seed", seed, minimum=0)
        epsilon = check_epsilon(epsilon)
        delta = check_delta(delta)
        max_grad_norm = check_positive("max_grad_norm", max_grad_norm)
        learning_rate = check_positive("learning_rate", learning_rate)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
    confidence = check_confidence(confidence)
    if noise_multiplier is not None:
        if mechanism == "product-paper":
            raise ValueError(
                "noise_multiplier does not apply to product-paper (the paper's calibration sets "
                "the noise from epsilon); use mechanism='product' for a given noise"
            )
        noise_multiplier = check_positive("noise_multiplier", noise_multiplier)
    t0 = time.perf_counter()
    if mechanism == "dpmix":
        res = _audit_dpmix(
            trials=trials,
            releases=steps,
            epsilon=epsilon,
            sigma=noise_multiplier,
            delta=delta,
            confidence=confidence,
            n_records=n_records,
            mix_size=dpmix_l,
            seed=seed,
            progress=progress,
        )
    else:
        res = _audit_dpsgd(
            mechanism,
            trials=trials,
            steps=steps,
            epsilon=epsilon,
            noise_multiplier=noise_multiplier,
            delta=delta,
            confidence=confidence,
            n_records=n_records,
            max_grad_norm=max_grad_norm,
            learning_rate=learning_rate,
            seed=seed,
            progress=progress,
            threat_model=threat_model,
        )
    res.seconds = time.perf_counter() - t0
    if noise_multiplier is None:  # the calibration target, shown in every row of the report
        res.settings["target_epsilon"] = epsilon
        res.settings["target_label"] = "claimed" if mechanism == "product-paper" else "verified"
    return res


# =========================================================================== report
_TABLE_COLUMNS = (
    ("mechanism", "mechanism"),
    ("threat_model", "threat model"),
    ("steps", "T"),
    ("target", "calibration target"),
    ("trials_per_world", "trials/world"),
    ("empirical_lower_bound_epsilon", "empirical lower bound ε"),
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
        "largest bound the number of evaluation trials allows (perfect separation).",
        "",
        "| " + " | ".join(h for _, h in _TABLE_COLUMNS) + " |",
        "|" + "|".join("---" for _ in _TABLE_COLUMNS) + "|",
    ]
    for r in results:
        row = {**r.to_row(), "target": r.target}
        lines.append("| " + " | ".join(_fmt(row[k]) for k, _ in _TABLE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _plot(results: Sequence[TrainingAuditResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.05 * len(results) + 2.0), 4.5))
    finite = [
        v
        for r in results
        for v in (r.bound.epsilon_lower, r.verified.epsilon, r.claimed and r.claimed.epsilon)
        if v is not None and math.isfinite(v)
    ]
    top = max(finite, default=1.0) * 3.0
    for i, r in enumerate(results):
        first = i == 0
        ax.bar(i, r.bound.epsilon_lower, width=0.5, color="tab:red", alpha=0.7,
               label="empirical lower bound" if first else None)  # fmt: skip
        ax.plot(i, r.bound.ceiling, marker="_", ms=18, color="grey", ls="none",
                label="finite-sample ceiling" if first else None)  # fmt: skip
        v = r.verified.epsilon
        ax.plot(i, min(v, top), marker="^" if math.isinf(v) else "o", color="tab:green",
                ls="none", label="verified (▲ = inf)" if first else None)  # fmt: skip
        if r.claimed is not None and math.isfinite(r.claimed.epsilon):
            ax.plot(i, r.claimed.epsilon, marker="o", mfc="none", ms=9, color="tab:blue",
                    ls="none", label="claimed")  # fmt: skip
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(0, top * 1.5)
    labels = [
        f"{r.mechanism}\n{r.settings.get('threat_model', '')}\nT={r.steps}\n{r.target}"
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


# =========================================================================== CLI
#: the standard report: (mechanism, steps, epsilon, threat model) per row; epsilon is the
#: calibration target (verified ε, or the claimed ε for product-paper)
STANDARD_PLAN: tuple[tuple[str, int, float, str], ...] = (
    ("gaussian", 1, 2.0, "white-box"),
    ("gaussian", 1, 8.0, "white-box"),
    ("gaussian", 3, 4.0, "white-box"),
    ("gaussian", 1, 8.0, "final-model"),
    ("product-paper", 1, 0.3, "white-box"),
    ("product-paper", 3, 1.5, "white-box"),
    ("product-paper", 1, 0.3, "final-model"),
    ("product", 1, 2.0, "white-box"),
    ("l2", 1, 2.0, "white-box"),
    ("dpmix", 16, 8.0, "release"),
)
_DEFAULT_TRIALS, _QUICK_TRIALS = 3000, 500


def _add_arguments(p: Any) -> None:
    p.add_argument(
        "--mechanisms",
        nargs="+",
        choices=MECHANISMS,
        default=None,
        help="mechanisms to audit (default: all, in the standard settings)",
    )
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help=f"runs per world (default {_DEFAULT_TRIALS}; --quick: {_QUICK_TRIALS})",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="steps per run for every row (default: standard)"
    )
    p.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="calibration target for every row (default: standard)",
    )
    p.add_argument(
        "--threat-model",
        choices=("white-box", "final-model"),
        default=None,
        help="keep only the DP-SGD rows of this threat model (default: both)",
    )
    p.add_argument("--delta", type=float, default=1e-5, help="δ of every figure (default 1e-5)")
    p.add_argument("--confidence", type=float, default=0.95, help="default 0.95")
    p.add_argument("--seed", type=int, default=0, help="default 0")
    p.add_argument("--quick", action="store_true", help=f"{_QUICK_TRIALS} trials per world")
    p.add_argument("--out", default=None, help="output directory (default runs/audit-training-*)")


def _run(args: Any) -> int:
    import torch

    torch.set_num_threads(1)
    trials = args.trials
    if trials is None:
        trials = _QUICK_TRIALS if args.quick else _DEFAULT_TRIALS
    check_positive_int("trials", trials, minimum=_MIN_TRIALS)
    check_delta(args.delta)
    check_confidence(args.confidence)
    if args.steps is not None:
        check_positive_int("steps", args.steps)
    if args.epsilon is not None:
        check_epsilon(args.epsilon)
    plan = [
        (m, args.steps or s, args.epsilon or e, t)
        for m, s, e, t in STANDARD_PLAN
        if (args.mechanisms is None or m in args.mechanisms)
        and (args.threat_model is None or t in (args.threat_model, "release"))
    ]
    plan = list(dict.fromkeys(plan))  # overrides can make rows equal
    out = check_output_dir(args.out or f"runs/audit-training-{time.strftime('%Y%m%d-%H%M%S')}")
    results = []
    for m, s, e, t in plan:
        res = audit_training(
            m,
            trials=trials,
            steps=s,
            epsilon=e,
            threat_model=t,
            delta=args.delta,
            confidence=args.confidence,
            seed=args.seed,
            progress=True,
        )
        print(res, flush=True)
        results.append(res)
    paths = write_report(results, out)
    print()
    print(format_markdown(results))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def make_command(command_cls: type) -> Any:
    """The ``audit-training`` subcommand (``command_cls`` is :class:`product_noise.cli.Command`)."""
    return command_cls(
        name="audit-training",
        help="empirical lower bounds on ε from canary audits of real training runs",
        description=(
            "Train many times with and without a canary (DP-SGD through product_noise's\n"
            "PrivacyEngine with a white-box Dirac gradient canary; DPMix with an outlier\n"
            "canary) and turn the attack's TPR/FPR into a Clopper-Pearson lower bound on ε at\n"
            "δ. Prints it next to the verified ε and the claimed ε, with a verdict per row,\n"
            "and writes audit_training.csv/.md/.png."
        ),
        epilog=(
            "examples:\n"
            "  product-noise audit-training --quick\n"
            "  product-noise audit-training --mechanisms gaussian product-paper --trials 2000"
        ),
        add_arguments=_add_arguments,
        run=_run,
    )
