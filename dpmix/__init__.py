"""DPMix: differentially private synthetic data by random mixing (Lee, Kim, Lee, Suh, ISIT 2019).

``T`` synthetic pairs, each the mean of ``l`` records drawn without replacement plus Gaussian
noise, accounted with Wang-Balle-Kasiviswanathan Theorem 27 (**verified**) next to the formula of
the reproduced thesis (**claimed**, not a valid bound). See :mod:`dpmix.accounting`.

>>> from dpmix import DPMix, one_hot
>>> mix = DPMix(l=256, T=10_000, sigma_x=0.0711, seed=0)          # doctest: +SKIP
>>> Xs, Ys = mix.publish(X, one_hot(labels, 10))                  # doctest: +SKIP
>>> print(mix.privacy(), mix.claimed_privacy(), sep="\\n")         # doctest: +SKIP
"""

from __future__ import annotations

from .accounting import (
    DEFAULT_ORDERS,
    Accounting,
    DPMixAccounting,
    calibrate,
    calibrate_noise_multiplier,
    dpmix_epsilon,
    epsilon_from_rdp,
    rdp_dp_accounting,
    rdp_native,
    thesis_epsilon,
    thesis_figure,
    thesis_rdp,
    verified_figure,
    whitened_sensitivity,
)
from .bounds import (
    ONE_HOT_DIAMETER,
    DataBound,
    DataBoundWarning,
    L2NormBound,
    PixelBound,
    check_one_hot,
    one_hot,
)
from .publisher import DPMix, Release, sample_subsets

__all__ = [
    "DPMix",
    "Release",
    "sample_subsets",
    "DataBound",
    "PixelBound",
    "L2NormBound",
    "DataBoundWarning",
    "ONE_HOT_DIAMETER",
    "check_one_hot",
    "one_hot",
    "DEFAULT_ORDERS",
    "DPMixAccounting",
    "Accounting",
    "whitened_sensitivity",
    "rdp_native",
    "rdp_dp_accounting",
    "epsilon_from_rdp",
    "dpmix_epsilon",
    "verified_figure",
    "thesis_rdp",
    "thesis_epsilon",
    "thesis_figure",
    "calibrate_noise_multiplier",
    "calibrate",
]
