"""Private linear classifiers by output perturbation, objective perturbation (CMS11 Alg. 2),
AMP and PPSSGD, with product noise and the strongest baselines.

See :mod:`product_noise.erm.estimators` for the estimators, :mod:`product_noise.erm.objective`
for every formula, and :mod:`product_noise.erm.noise` for the Gamma-norm law, the verified
objective-perturbation bound and the resolution of ``noise=`` (any name of the live
:func:`noise_choices`, including user mechanisms registered after import, or a class).
"""

from .estimators import (
    METHODS,
    ERMPrivacy,
    PrivacyLeakWarning,
    PrivateHuberSVM,
    PrivateLogisticRegression,
    clip_and_augment,
)
from .losses import HuberLoss, LogisticLoss, make_loss
from .noise import (
    NOISES,
    ErmNoise,
    GammaNorm,
    check_noise_for_method,
    noise_choices,
    objective_delta,
    objective_delta_gaussian,
    objective_epsilon,
    objective_noise,
    objective_verified,
    output_noise,
    release_figures,
    resolve_noise,
    unverified_reason,
)
from .objective import (
    AMPPlan,
    CMS11Objective,
    amp_iyengar_sigma,
    amp_plan,
    cms11_objective,
    jacobian_term,
    output_sensitivity,
    ppssgd_sensitivity,
    strategy1_fraction,
)
from .solvers import ERMSolution, minimize_erm, ppssgd

__all__ = [
    "METHODS",
    "NOISES",
    "noise_choices",
    "resolve_noise",
    "check_noise_for_method",
    "unverified_reason",
    "ErmNoise",
    "ERMPrivacy",
    "PrivacyLeakWarning",
    "PrivateLogisticRegression",
    "PrivateHuberSVM",
    "clip_and_augment",
    "LogisticLoss",
    "HuberLoss",
    "make_loss",
    "GammaNorm",
    "objective_delta",
    "objective_delta_gaussian",
    "objective_epsilon",
    "objective_noise",
    "objective_verified",
    "output_noise",
    "release_figures",
    "AMPPlan",
    "CMS11Objective",
    "amp_iyengar_sigma",
    "amp_plan",
    "cms11_objective",
    "jacobian_term",
    "output_sensitivity",
    "ppssgd_sensitivity",
    "strategy1_fraction",
    "ERMSolution",
    "minimize_erm",
    "ppssgd",
]
