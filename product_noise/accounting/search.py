"""Calibration by search: the smallest noise level whose ε meets a target.

Kept for compatibility: :func:`smallest_noise` lives in :mod:`product_noise.accounting.calibrate`
with the package's other calibration searches.
"""

from __future__ import annotations

from .calibrate import smallest_noise

__all__ = ["smallest_noise"]
