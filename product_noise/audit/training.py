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
training code. A user's mechanism that is not spherical has no radius law: its score is
``Σ_t ⟨r_t, e_j⟩`` (:mod:`product_noise.audit.dpsgd`), and an unverified one gets this lower
bound and no verified figure. The score is computed in float64 (the model is float64).

Threat model (DP-SGD): final model only, input canary (``threat_model="final-model"``)
-------------------------------------------------------------------------------------
The weaker, black-box variant: the canary row is a real input (the all-ones image, label 0; its
per-sample gradient is the natural one, clipped by Opacus) in the run with the canary and has its
gradient zeroed in the run without it (same normaliser, add/remove as above). The adversary sees
only the final model ``θ_T`` and scores the canary's logit margin ``z_y − max_{k≠y} z_k``. It
needs no gradient access, so it shows what a realistic attacker already gets.

Threat model (DP-SGD): final model, worst-case initial parameters (``"final-model-worst-case"``)
---------------------------------------------------------------------------------------------
The black-box adversary of Annamalai and De Cristofaro (NeurIPS 2024, "Nearly tight black-box
auditing of differentially private machine learning", arXiv:2405.14106): it still sees only
the final model's outputs on the canary, but it chooses the initial parameters θ₀, which it
knows and which are the same in both worlds. θ₀ is the 64 → 10 logistic regression trained
non-privately on the known records (L-BFGS from zero, a fixed iteration budget, deterministic;
:func:`~product_noise.audit.worst_case.worst_case_theta0`), so their gradients are near zero
during private training. The canary is the all-ones image (its gradient is always clipped to
norm C) with the *worst-case label*, the class θ₀ finds least likely for it
(:func:`~product_noise.audit.worst_case.worst_case_label`). Then the canary's clipped
gradient is ≈ ``C (e_a − e_y) ⊗ (x, 1)/‖·‖`` (``a`` the predicted class) at every step, and
its final logit margin ``z_y − max_{k≠y} z_k ≈ z_y − z_a`` adds up ``T`` equal pushes against
Gaussian-like noise: for Gaussian noise its signal-to-noise ratio per step is ``1/σ``, that of
the mechanism itself (from θ₀ = 0 it is smaller: the canary's error spreads over ten classes
and the known records' large gradients move with the noise). The canary's loss
``−ln softmax(z)_y ≈ z_a − z_y`` is the same statistic up to sign here, so the margin is kept.
The present/absent worlds are exactly those of ``"final-model"`` (the canary row keeps its
natural clipped gradient or has it zeroed; same normaliser, add/remove).

θ₀ and the label are functions of the known records only, fixed before any private run, so
the validity argument below is unchanged (selection split, then Clopper–Pearson on the
evaluation split); only the statistic's power changes.

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

import time

from ..mechanisms import get_mechanism
from ..mechanisms.registry import REGISTRY
from ..privacy import CLAIMED, VERIFIED
from ..validation import (
    InputError,
    check_confidence,
    check_delta,
    check_epsilon,
    check_positive,
    check_positive_int,
)
from .bounds import MIN_TRIALS, check_enough_trials
from .dpmix import audit_dpmix
from .dpsgd import WORST_CASE, audit_dpsgd
from .result import DIGITS_ROWS, MATCHED, TrainingAuditResult, audit_mechanisms

__all__ = ["DPSGD_THREAT_MODELS", "audit_training"]

#: the DP-SGD threat models, the default first (the CLI's ``--threat-model`` choices)
DPSGD_THREAT_MODELS = ("white-box", "final-model", WORST_CASE)


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

    DP-SGD mechanisms (``"gaussian"``, ``"product-paper"``, ``"product"``, ``"l2"`` and any
    user mechanism registered for ``audit``) train a float64 logistic regression (64 → 10,
    M = 650) on ``n_records`` digits for ``steps`` full-batch steps through
    :class:`product_noise.PrivacyEngine`, with a white-box Dirac gradient canary (or,
    ``threat_model="final-model"`` or ``"final-model-worst-case"``, an input canary scored
    on the final model only, from zero or from worst-case initial parameters);
    ``"dpmix"`` publishes ``steps`` DPMix mixes of ``dpmix_l`` records out of ``n_records``
    with an outlier canary. See the module docstring for both threat models and why the bound
    is valid.

    Parameters
    ----------
    mechanism : str
        One of :func:`~product_noise.audit.result.audit_mechanisms` (the underscore spelling
        is accepted too). An unverified user mechanism (a sampler only) gets no verified
        figure and is run at the verified Gaussian's noise multiplier for ``epsilon``
        (:data:`~product_noise.mechanisms.MATCHED_TO_GAUSSIAN`). ``"product-paper"`` is
        product noise at the paper's per-step calibration (``sensitivity="add_remove"``,
        ε₀ = ``epsilon/steps``, claimed δ₀ = ``delta/steps``), so that its claimed figure is
        (``epsilon``, ``delta``).
    trials : int, default 1000
        Runs per world (≥ 20); half of them choose the attack threshold, half evaluate it.
    steps : int, default 1
        DP-SGD optimizer steps per run, or DPMix releases per run.
    epsilon : float, default 2.0
        Calibration target: the verified ε at ``delta`` (gaussian, product, l2, dpmix, verified
        user mechanisms), the claimed ε (product-paper) or the Gaussian's verified ε
        (unverified mechanisms). Ignored when ``noise_multiplier`` is given.
    noise_multiplier : float, optional
        Use this noise instead of calibrating: σ/C (θ/C for l2) for DP-SGD, ``sigma_x`` for
        DPMix. Not for product-paper.
    delta : float, default 1e-5
        δ of every figure, in (0, 1).
    confidence : float, default 0.95
        Confidence of the lower bound, in (0, 1).
    n_records, max_grad_norm, learning_rate, dpmix_l : optional
        Training set size, 2 to :data:`~product_noise.audit.result.DIGITS_ROWS` (1797; the
        canary is extra for DP-SGD, replaces the last record for DPMix), clip norm C, SGD
        learning rate, DPMix mixture degree l.
    seed : int, default 0
        Seeds the data subset and both worlds' noise generators.
    threat_model : {"white-box", "final-model", "final-model-worst-case", "release"}, optional
        DP-SGD: ``"white-box"`` (default; every intermediate model, Dirac gradient canary,
        likelihood-ratio score), ``"final-model"`` (the all-ones image with label 0 as an
        input canary, scored by its logit margin at the final model; weaker) or
        ``"final-model-worst-case"`` (the same black-box adversary from worst-case initial
        parameters, Annamalai and De Cristofaro 2024: θ₀ = the known records' non-private fit,
        the canary labelled with θ₀'s least likely class; stronger than ``"final-model"``).
        DPMix: ``"release"`` (the only one, the default).
    progress : bool, default False
        tqdm progress bar over the runs.

    Returns
    -------
    TrainingAuditResult

    Raises
    ------
    ValueError
        On an unknown mechanism, ``trials`` < 20, ``steps`` < 1, δ or confidence outside (0, 1),
        ε ≤ 0, ``n_records`` outside 2 to 1797, ``noise_multiplier`` given for product-paper,
        or a threat model the mechanism does not have (an
        :class:`~product_noise.validation.InputError`). Nothing is run then.
    """
    mechanism = _check_mechanism(mechanism)
    threat_model = _check_threat_model(mechanism, threat_model)
    try:
        trials = check_positive_int("trials", trials, minimum=MIN_TRIALS)
        steps = check_positive_int("steps", steps)
        n_records = check_positive_int("n_records", n_records, minimum=2)
        if n_records > DIGITS_ROWS:
            raise InputError(f"n_records must be at most {DIGITS_ROWS} (digits), got {n_records}")
        dpmix_l = check_positive_int("dpmix_l", dpmix_l)
        seed = check_positive_int("seed", seed, minimum=0)
        epsilon = check_epsilon(epsilon)
        delta = check_delta(delta)
        max_grad_norm = check_positive("max_grad_norm", max_grad_norm)
        learning_rate = check_positive("learning_rate", learning_rate)
    except TypeError as exc:
        raise InputError(str(exc)) from exc
    confidence = check_confidence(confidence)
    check_enough_trials(trials, delta, confidence)
    if noise_multiplier is not None:
        noise_multiplier = _check_noise_multiplier(mechanism, noise_multiplier)
    t0 = time.perf_counter()
    if mechanism == "dpmix":
        res = audit_dpmix(
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
        res = audit_dpsgd(
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
        res.settings["target_label"] = _target_label(mechanism, res)
    return res


def _target_label(mechanism: str, res: TrainingAuditResult) -> str:
    """How the calibration target of a row is labelled (claimed, verified or Gaussian-matched)."""
    if mechanism == "product-paper":
        return CLAIMED
    return VERIFIED if res.verified is not None else MATCHED


def _check_mechanism(mechanism: object) -> str:
    """An auditable mechanism's name in the audit's (dash) spelling."""
    known = audit_mechanisms()
    if isinstance(mechanism, str) and mechanism not in known and mechanism in REGISTRY:
        mechanism = get_mechanism(mechanism).dash  # product_paper → product-paper
    if mechanism not in known:
        raise InputError(f"unknown mechanism {mechanism!r}; choose one of {', '.join(known)}")
    return str(mechanism)


def _check_threat_model(mechanism: str, threat_model: str | None) -> str:
    """The threat model of a checked mechanism (its default one for ``None``)."""
    allowed = ("release",) if mechanism == "dpmix" else DPSGD_THREAT_MODELS
    if threat_model is None:
        threat_model = allowed[0]
    if threat_model not in allowed:
        raise InputError(
            f"threat_model {threat_model!r} does not apply to {mechanism}; choose one of "
            f"{', '.join(allowed)}"
        )
    return threat_model


def _check_noise_multiplier(mechanism: str, noise_multiplier: float) -> float:
    """A given noise multiplier, checked (product-paper's calibration sets its own)."""
    if mechanism == "product-paper":
        raise InputError(
            "noise_multiplier does not apply to product-paper (the paper's calibration sets "
            "the noise from epsilon); use mechanism='product' for a given noise"
        )
    return check_positive("noise_multiplier", noise_multiplier)
