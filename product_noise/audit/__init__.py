"""Empirical privacy evidence: attacks that give statistically valid **lower bounds** on ε or δ.

A lower bound is neither ``claimed`` nor ``verified``: it is printed as an "empirical lower
bound" beside both. It can refute a claim, and a verified figure must never fall below it.

``bounds``    Clopper–Pearson intervals and :func:`epsilon_lower_bound` from two worlds' scores
``sampler``   :func:`audit_mechanism`: distinguishing tests on a mechanism's real sampler (δ at ε)
``dpsgd``     canary audits of real DP-SGD runs through :class:`product_noise.PrivacyEngine`
``dpmix``     the canary audit of a DPMix release
``worst_case`` worst-case initial parameters and canary label of the black-box DP-SGD audit
              (Annamalai and De Cristofaro 2024)
``training``  :func:`audit_training`: one audit of either kind, with its claimed and verified ε
``result``    :class:`TrainingAuditResult`, :func:`audit_mechanisms` (what the training audit
              accepts, user mechanisms included)
``report``    the training-audit table, Markdown, CSV and plot
``one_run``   one-run audits: ε lower bounds from canary guesses (Steinke et al. 2023; f-DP in
              one run), the Gaussian-fit ε estimate (imported on first use)
``canaries``  :class:`GradientCanaryAudit`: a white-box one-run audit of a user's own Opacus
              loop with Dirac gradient canaries (imported on first use)
``input_canaries``  :class:`InputCanaryAudit`: a black-box (final model) one-run audit of a
              user's own loop with input canaries, e.g. :func:`mislabelled` records
              (imported on first use)
``gdp_bound``  :func:`gdp_lower_bound`: the multi-run μ-GDP bound (Nasr et al. 2023)
``multi_run``  :func:`audit_multi_run`: a multi-run audit of a user's own loop (its
              ``train_once(present, seed) -> score``; imported on first use)
``training_one_run``  :func:`audit_training_one_run`: the one-run counterpart of
              :func:`audit_training` on the same model (imported on first use)
"""

from __future__ import annotations

from typing import Any

from .bounds import (
    EpsilonLowerBound,
    clopper_pearson_lower,
    clopper_pearson_upper,
    epsilon_lower_bound,
)
from .report import format_markdown, results_table, write_report
from .result import TrainingAuditResult, audit_mechanisms
from .sampler import TESTS, AuditResult, audit_mechanism
from .training import audit_training

__all__ = [
    "AuditResult",
    "audit_mechanism",
    "TESTS",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "EpsilonLowerBound",
    "epsilon_lower_bound",
    "audit_mechanisms",
    "TrainingAuditResult",
    "audit_training",
    "results_table",
    "format_markdown",
    "write_report",
]


# names of :mod:`.one_run`, imported on first use (it loads dp_accounting)
_ONE_RUN = (
    "OneRunBound",
    "GDPEstimate",
    "steinke_epsilon_lower_bound",
    "fdp_one_run_epsilon_lower_bound",
    "steinke_best_threshold",
    "gdp_epsilon",
    "gdp_epsilon_estimate",
)

# names of :mod:`.canaries`, imported on first use (it loads opacus and dp_accounting)
_CANARIES = ("GradientCanaryAudit",)
_TRAINING_ONE_RUN = ("audit_training_one_run",)
_INPUT_CANARIES = ("InputCanaryAudit", "mislabelled")
_MULTI_RUN = ("audit_multi_run", "MultiRunAudit")


def __getattr__(name: str) -> Any:
    # ``MECHANISMS``, formerly an import-time constant: now a live view of the registry
    if name == "MECHANISMS":
        return audit_mechanisms()
    if name in _ONE_RUN:
        from . import one_run

        return getattr(one_run, name)
    if name in _CANARIES:
        from . import canaries

        return getattr(canaries, name)
    if name in _MULTI_RUN:
        from . import multi_run

        return getattr(multi_run, name)
    if name in _INPUT_CANARIES:
        from . import input_canaries

        return getattr(input_canaries, name)
    if name in _TRAINING_ONE_RUN:
        from . import training_one_run

        return getattr(training_one_run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
