"""One run of each family, each returning an :class:`Outcome` row.

Privacy figures come from the cached accounting (:mod:`product_noise.compare.accounting`) after the
runner has checked that the engine's accountant (or the DPMix release) recorded exactly what that
accounting assumed.

``common``       :class:`Outcome`, :class:`AccountingMismatch`, accuracy
``dpsgd``        DP-SGD and the non-private network
``dpmix``        DPMix: publish, train on the release, test on real data
``erm``          convex ERM and the non-private logistic-regression reference
``baselines``    the seed baselines by name (``adlm``, ``ldp``, ``dpgen``, with ``-paper`` variants)
``adlm``, ``input_noise``, ``dpgen``   one adapter per baseline (``run_for_compare``)
"""

from __future__ import annotations

from ...training.models import count_parameters
from .common import AccountingMismatch, Outcome, expected_chi
from .dpmix import run_dpmix
from .dpsgd import DigitsCNN, make_model, run_dpsgd
from .erm import run_erm, run_logreg_reference

__all__ = [
    "Outcome",
    "DigitsCNN",
    "make_model",
    "count_parameters",
    "expected_chi",
    "run_dpsgd",
    "run_dpmix",
    "run_erm",
    "run_logreg_reference",
    "AccountingMismatch",
]
