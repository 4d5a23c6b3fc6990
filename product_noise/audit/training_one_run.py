"""A one-run white-box audit of real DP-SGD training: one run, many Dirac gradient canaries.

:func:`audit_training_one_run` is the one-run counterpart of
:func:`~product_noise.audit.audit_training` (which trains thousands of times per world): it
trains **once** and inserts ``m`` canaries, each included independently with probability ½,
then turns the adversary's guesses of the inclusion bits into a lower bound on ε
(Steinke, Nasr, Jagielski [1]_, Algorithm 2; the auditing itself is
:class:`~product_noise.audit.GradientCanaryAudit`).

Task
----
The same small model as the multi-run audit: a float64 logistic regression 64 → 10 on digits
(``M = 650`` trainable coordinates, zero initialisation, plain SGD), here on ``n_records``
digits (default 400) with Poisson sampling at rate ``q`` (default 10/400 = 0.025: an expected
batch of 10), for ``T`` steps (default 400), through :class:`product_noise.PrivacyEngine` with
the mechanism's calibration for those ``T`` steps at rate ``q``. By default every coordinate
carries a canary (``m = 650``; at most ``M``: each canary owns one coordinate).

Threat model
------------
White box with Dirac gradient canaries (Nasr et al. [2]_, Sec. 4; Steinke et al. [1]_,
Sec. 6): canary ``j``'s gradient is ``C e_{c_j}`` (norm exactly ``C``), added to the summed
clipped gradient whenever the canary is included and Poisson-sampled; the adversary sees every
step's noisy summed gradient and, as the multi-run white-box adversary, **knows every other
record**: the data's summed gradient is subtracted (``subtract_data=True``). Its score is
``Σ_t g_t[c_j]`` (``statistic="sum"``, the Neyman–Pearson statistic of Gaussian noise), or for
product noise, whose scale ``σ|z|`` is revealed by ``‖r_t‖``, each step's term weighted by
``M / ‖r_t‖²`` (``statistic="weighted"``). Either is a fixed function of the output, so the
bound is valid for either; only its power differs.

What a row reports
------------------
* the empirical lower bound of Steinke et al. [1]_ (valid for any (ε, δ)-DP mechanism), and for
  Gaussian noise also the f-DP one-run bound (Mahloujifar, Melis, Chaudhuri [3]_; it refutes
  μ-GDP: a lower bound on ε for an exactly Gaussian trade-off curve, which full-batch Gaussian
  DP-SGD has; with Poisson sampling (q < 1) the curve is Gaussian only approximately (central
  limit theorem), so the figure then refutes μ-GDP without being a proven bound on ε);
* the Gaussian-fit **estimate** of ε (Nasr et al. [2]_): never a bound, labelled "estimate";
* the engine's verified ε and, for product noise at the paper's calibration, the paper's
  claimed ε (its composition over ``T`` subsampled steps; the row's calibration target is then
  the paper's *per-step* ε₀, not the total).

A one-run bound is weaker than the multi-run one at the same ε (it cannot exceed what ``m``
guesses can show), but costs one training run instead of thousands.

References
----------
.. [1] T. Steinke, M. Nasr, M. Jagielski. "Privacy auditing with one (1) training run."
   NeurIPS 2023. arXiv:2305.08846.
.. [2] M. Nasr, J. Hayes, T. Steinke, B. Balle, F. Tramèr, M. Jagielski, N. Carlini,
   A. Terzis. "Tight auditing of differentially private machine learning." USENIX Security
   2023. arXiv:2302.07956.
.. [3] S. Mahloujifar, L. Melis, K. Chaudhuri. "Auditing f-differential privacy in one run."
   ICML 2025. arXiv:2410.22235.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

from ..privacy import CLAIMED, VERIFIED
from ..validation import (
    InputError,
    check_confidence,
    check_delta,
    check_epsilon,
    check_positive,
    check_positive_int,
)
from .result import DIGITS_ROWS, MATCHED, TrainingAuditResult, digits_sample, digits_split

__all__ = [
    "audit_training_one_run",
    "check_one_run",
    "effective_sample_rate",
    "ONE_RUN_DIM",
    "DEFAULT_CANARIES",
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_STEPS",
    "DEFAULT_RECORDS",
    "ONE_RUN_THREAT_MODELS",
]

#: trainable coordinates of the audited model (logistic regression 64 → 10: 640 weights + 10)
ONE_RUN_DIM = 64 * 10 + 10
#: default number of canaries: 1000, or every coordinate of a smaller model
DEFAULT_CANARIES = min(1000, ONE_RUN_DIM)
DEFAULT_STEPS = 400
DEFAULT_SAMPLE_RATE = 0.025
DEFAULT_RECORDS = 400
#: the one-run threat models: gradient canaries (white box), input canaries (final model)
ONE_RUN_THREAT_MODELS = ("white-box", "final-model")


def effective_sample_rate(sample_rate: float, n_records: int) -> float:
    """The Poisson rate the engine really uses for a requested ``q`` on ``n_records`` records:
    Opacus samples at ``1 / len(loader)``, the loader's batch size being ``round(q·n)``."""
    batch = max(1, min(n_records, round(sample_rate * n_records)))
    return 1.0 / math.ceil(n_records / batch)


def check_one_run(
    canaries: Any,
    steps: Any,
    sample_rate: Any,
    n_records: Any = DEFAULT_RECORDS,
    confidence: float = 0.95,
    threat_model: str = "white-box",
) -> tuple[int, int, float, int]:
    """Check a one-run audit's settings before anything is trained.

    Returns ``(canaries, steps, effective q, n_records)``; raises
    :class:`~product_noise.validation.InputError` if ``canaries`` is below 2 or above
    :data:`ONE_RUN_DIM`, too few for any bound above 0 at ``confidence``
    (:func:`~product_noise.audit.one_run.min_canaries`), ``steps`` < 1, ``q`` outside (0, 1],
    or ``q·T < 1`` (an included canary would be expected to enter fewer than one step: the
    audit would see nothing).
    """
    try:
        n_records = check_positive_int("n_records", n_records, minimum=2)
        steps = check_positive_int("steps", steps)
        canaries = check_positive_int("canaries", canaries, minimum=0)
        q = check_positive("sample_rate", sample_rate)
    except TypeError as exc:
        raise InputError(str(exc)) from exc
    if threat_model not in ONE_RUN_THREAT_MODELS:
        raise InputError(
            f"threat_model must be one of {ONE_RUN_THREAT_MODELS} for a one-run audit, got "
            f"{threat_model!r}"
        )
    most, why = (
        (ONE_RUN_DIM, "the audited model's trainable coordinates; each canary owns one")
        if threat_model == "white-box"
        else (DIGITS_ROWS - n_records, "the digits left after the training records")
    )
    if not 2 <= canaries <= most:
        raise InputError(f"canaries must be between 2 and {most} ({why}), got {canaries}")
    if q > 1:
        raise InputError(f"sample_rate must lie in (0, 1], got {q!r}")
    from .one_run import check_enough_canaries  # loads dp_accounting: only for a one-run

    check_enough_canaries(canaries, confidence)
    asked, q = q, effective_sample_rate(q, n_records)
    if q * steps < 1:
        used = "" if q == asked else f" (the rate Opacus uses for {asked:g} on {n_records} records)"
        raise InputError(
            f"q·T = {q:.3g}{used} × {steps} = {q * steps:.3g} < 1: an included canary is expected "
            "to be sampled in fewer than one step, so the canaries would never be seen; use "
            "more steps or a larger sample rate"
        )
    return canaries, steps, q, n_records


def _noise(
    mechanism: str, epsilon: float, delta: float, steps: int, q: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``make_private`` noise arguments and settings: the paper's calibration at per-step
    ε₀ = ``epsilon`` for product-paper, else the mechanism's for ``steps`` steps at rate q."""
    from .dpsgd import _dpsgd_noise_kwargs

    if mechanism == "product-paper":
        kw = {"noise": "product", "epsilon0": epsilon, "target_delta0": delta / steps}
        return kw, {"epsilon0": epsilon, "target_delta0": delta / steps}
    return _dpsgd_noise_kwargs(
        mechanism,
        epsilon=epsilon,
        delta=delta,
        steps=steps,
        noise_multiplier=None,
        dim=ONE_RUN_DIM,
        sample_rate=q,
    )


def _tensor_data(X: Any, y: Any) -> Any:
    """Digits ``(X, y)`` as a float64 TensorDataset."""
    import torch
    from torch.utils.data import TensorDataset

    return TensorDataset(torch.from_numpy(X), torch.from_numpy(y).long())


def _private_run(
    noise_kw: dict[str, Any], data: Any, *, q: float, lr: float, clip: float, seed: int
) -> tuple[Any, Any, Any, Any]:
    """``(engine, model, optimizer, loader)``: the 64 → 10 logistic regression on ``data``
    made private (expected batch ``round(q·len(data))``)."""
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from ..opacus import PrivacyEngine

    model = nn.Linear(64, 10).double()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    loader = DataLoader(data, batch_size=max(1, round(q * len(data))))
    noise_seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus' secure-RNG warning; the paper's PrivacyWarning
        engine = PrivacyEngine()
        model, optimizer, loader = engine.make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=lr),
            data_loader=loader,
            max_grad_norm=clip,
            noise_generator=torch.Generator().manual_seed(noise_seed),
            **noise_kw,
        )
    return engine, model, optimizer, loader


def _train(model: Any, optimizer: Any, loader: Any, steps: int) -> None:
    """``steps`` optimizer steps of cross-entropy over Poisson batches (a plain user loop)."""
    from torch import nn

    loss, t = nn.CrossEntropyLoss(), 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook")
        while t < steps:
            for xb, yb in loader:
                optimizer.zero_grad(set_to_none=True)
                loss(model(xb), yb).backward()
                optimizer.step()
                t += 1
                if t == steps:
                    return


def _check_dpsgd_mechanism(mechanism: object) -> str:
    """An auditable DP-SGD mechanism's dash name (DPMix has no gradient for a canary)."""
    from .training import _check_mechanism

    mechanism = _check_mechanism(mechanism)
    if mechanism == "dpmix":
        raise InputError(
            "dpmix has no gradient to put a canary in: the one-run audit covers the DP-SGD "
            "mechanisms; audit dpmix with the multi-run method"
        )
    return mechanism


def audit_training_one_run(
    mechanism: str,
    *,
    canaries: int = DEFAULT_CANARIES,
    steps: int = DEFAULT_STEPS,
    sample_rate: float = DEFAULT_SAMPLE_RATE,
    epsilon: float = 2.0,
    delta: float = 1e-5,
    confidence: float = 0.95,
    n_records: int = DEFAULT_RECORDS,
    max_grad_norm: float = 1.0,
    learning_rate: float = 0.5,
    seed: int = 0,
    statistic: str | None = None,
    threat_model: str = "white-box",
) -> TrainingAuditResult:
    """Audit one DP-SGD mechanism in **one** training run with ``canaries`` gradient canaries.

    See the module docstring for the task, the threat model and what is reported.

    Parameters
    ----------
    mechanism : str
        A DP-SGD mechanism of :func:`~product_noise.audit.audit_mechanisms` (not ``dpmix``).
    canaries : int, default 650
        Number of canaries, at least :func:`~product_noise.audit.one_run.min_canaries` and at
        most 650 (white box) or ``1797 − n_records`` (final model).
    steps : int, default 400
        Optimizer steps ``T``.
    sample_rate : float, default 0.025
        Poisson rate ``q`` in (0, 1]; the engine uses ``1/⌈n/round(q·n)⌉``
        (:func:`effective_sample_rate`). ``q·T ≥ 1`` is required.
    epsilon : float, default 2.0
        Calibration target: the verified ε over the ``T`` steps (Gaussian-matched for an
        unverified mechanism), or for ``"product-paper"`` the paper's per-step ε₀.
    delta, confidence : float
        δ of every figure; confidence of the bounds.
    n_records, max_grad_norm, learning_rate, seed : optional
        Digits trained on, clip norm C, SGD learning rate, seed of the data, the noise, the
        canaries' inclusion bits, coordinates and sampling.
    statistic : {"sum", "weighted"}, optional
        White box: the canary score; default ``"weighted"`` for product noise, else
        ``"sum"``. (Final model: always minus the canary's loss.)
    threat_model : {"white-box", "final-model"}, default "white-box"
        ``"white-box"``: ``canaries`` Dirac gradient canaries (at most 650), every noisy
        gradient seen, data subtracted. ``"final-model"``: ``canaries`` mislabelled digits
        (at most ``1797 − n_records``; the digits after the training records) as input
        canaries (:class:`~product_noise.audit.InputCanaryAudit`), only the final model seen.

    Returns
    -------
    TrainingAuditResult
        ``method == "one-run"``, ``bound`` the Steinke et al. bound, ``fdp_bound`` (Gaussian
        noise), ``estimate`` (labelled estimate), verified and claimed figures of the engine.

    Raises
    ------
    InputError
        On bad input (see :func:`check_one_run`), before anything is trained.
    """
    mechanism = _check_dpsgd_mechanism(mechanism)
    confidence = check_confidence(confidence)
    canaries, steps, q, n_records = check_one_run(
        canaries, steps, sample_rate, n_records, confidence, threat_model
    )
    epsilon, delta = check_epsilon(epsilon), check_delta(delta)
    if threat_model == "final-model":
        statistic = "loss"  # the only score of the final model
    elif statistic is None:
        statistic = "weighted" if mechanism.startswith("product") else "sum"
    t0 = time.perf_counter()
    run = _white_box if threat_model == "white-box" else _final_model
    audit, engine, optimizer, q, settings = run(
        mechanism, canaries, steps, q, epsilon, delta, n_records, max_grad_norm,
        learning_rate, seed, statistic, confidence,
    )  # fmt: skip
    settings.update(
        canaries=canaries, sample_rate=q, n_records=n_records, seed=seed,
        threat_model=threat_model, dim=ONE_RUN_DIM, max_grad_norm=max_grad_norm,
        learning_rate=learning_rate, noise_multiplier=float(optimizer.noise_multiplier),
        statistic=statistic, target_epsilon=epsilon,
    )  # fmt: skip
    res = _result(mechanism, audit, engine, delta, confidence, steps, settings)
    res.seconds = time.perf_counter() - t0
    return res


def _white_box(
    mechanism: str, canaries: int, steps: int, q: float, epsilon: float, delta: float,
    n_records: int, clip: float, lr: float, seed: int, statistic: str, confidence: float,
) -> tuple[Any, Any, Any, float, dict[str, Any]]:  # fmt: skip
    """Train once with ``canaries`` Dirac gradient canaries: ``(audit, engine, optimizer, q,
    noise settings)``."""
    from .canaries import GradientCanaryAudit

    noise_kw, noise_settings = _noise(mechanism, epsilon, delta, steps, q)
    engine, model, optimizer, loader = _private_run(
        noise_kw, _tensor_data(*digits_sample(n_records, seed)), q=q, lr=lr, clip=clip, seed=seed
    )
    audit = GradientCanaryAudit(
        canaries, seed=seed, subtract_data=True, statistic=statistic, confidence=confidence
    ).attach(optimizer, loader)
    _train(model, optimizer, loader, steps)
    return audit, engine, optimizer, float(audit.sample_rate), noise_settings


def _final_model(
    mechanism: str, canaries: int, steps: int, q: float, epsilon: float, delta: float,
    n_records: int, clip: float, lr: float, seed: int, statistic: str, confidence: float,
) -> tuple[Any, Any, Any, float, dict[str, Any]]:  # fmt: skip
    """Train once with ``canaries`` mislabelled digits as input canaries (the digits after the
    training records), scored on the final model: ``(audit, engine, optimizer, q, noise
    settings)``."""
    import torch

    from .input_canaries import InputCanaryAudit, mislabelled

    train, (Xc, yc) = digits_split(n_records, canaries, seed)  # the same records as white box
    audit = InputCanaryAudit(
        torch.from_numpy(Xc), mislabelled(yc, 10, seed=seed), seed=seed, confidence=confidence
    )
    data = audit.training_set(_tensor_data(*train))
    q = effective_sample_rate(q, len(data))  # the rate of the data with the included canaries
    noise_kw, noise_settings = _noise(mechanism, epsilon, delta, steps, q)
    engine, model, optimizer, loader = _private_run(
        noise_kw, data, q=q, lr=lr, clip=clip, seed=seed
    )
    _train(model, optimizer, loader, steps)
    audit.score(model)
    return audit, engine, optimizer, q, noise_settings


def _result(
    mechanism: str,
    audit: Any,
    engine: Any,
    delta: float,
    confidence: float,
    steps: int,
    settings: dict[str, Any],
) -> TrainingAuditResult:
    """The row of a finished one-run audit: bounds, estimate, verified and claimed figures."""
    report = audit.report(engine, delta, confidence)  # also checks the engine's accounting
    bound = audit.bound(delta, confidence)
    white = settings["threat_model"] == "white-box"
    fdp = (
        audit.bound(delta, confidence, method="fdp")
        if white and engine.noise == "gaussian"
        else None
    )
    try:
        estimate = audit.estimate(delta)
    except InputError:  # zero variance: no Gaussian fit
        estimate = None
    claimed = report.claimed[0] if report.claimed else None
    at_claimed = None
    if claimed is not None and 0 < claimed.delta < 1:
        at_claimed = audit.bound(claimed.delta, confidence).epsilon
    if mechanism == "product-paper":  # the target is the per-step ε₀, not the claimed total
        del settings["target_epsilon"]
        settings["target_text"] = f"{CLAIMED} ε₀ = {settings['epsilon0']:g} per step"
    else:
        settings["target_label"] = VERIFIED if report.verified is not None else MATCHED
    return TrainingAuditResult(
        mechanism=mechanism,
        bound=bound,
        verified=report.verified,
        claimed=claimed,
        trials=1,
        steps=steps,
        threat_model=_THREAT if white else _THREAT_FINAL,
        statistic=_STATISTIC[settings["statistic"]],
        settings=settings,
        unverified=report.unverified if report.verified is None else "",
        method="one-run",
        estimate=estimate,
        fdp_bound=fdp,
        bound_at_claimed_delta=at_claimed,
    )


_THREAT = (
    "white box, one run: Dirac gradient canaries (each included with probability 1/2, "
    "Poisson-sampled as a record), every step's noisy summed gradient seen, all other records "
    "known (data subtracted), DP-SGD through product_noise.PrivacyEngine"
)
_THREAT_FINAL = (
    "black box, one run: mislabelled digits as input canaries (each included with probability "
    "1/2 as a training record), only the final model seen, DP-SGD through "
    "product_noise.PrivacyEngine"
)
_STATISTIC = {
    "loss": "−cross-entropy of the canary's (wrong) label at the final model",
    "sum": "Σ_t g_t[c_j] − data, the noisy summed gradient at the canary's coordinate",
    "weighted": "Σ_t M (g_t[c_j] − data) / ‖r_t‖², each step weighted by its revealed scale",
}
