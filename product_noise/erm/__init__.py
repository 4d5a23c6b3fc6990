"""Private linear classifiers by output perturbation, objective perturbation (CMS11 Alg. 2),
AMP and PPSSGD, with product noise and the strongest baselines.

See :mod:`product_noise.erm.estimators` for the estimators, :mod:`product_noise.erm.objective`
for every formula, and :mod:`product_noise.erm.noise` for the Gamma-norm law and the verified
objective-perturbation bound.
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
    GammaNorm,
    objective_delta,
    objective_delta_gaussian,
    objective_epsilon,
    objective_noise,
    objective_verified,
    output_noise,
    release_figures,
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
