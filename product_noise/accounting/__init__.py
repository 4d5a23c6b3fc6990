"""Privacy accounting: the paper's *claimed* composition and *verified* PLD accounting.

Every figure produced here carries a label:

* **claimed** (:mod:`product_noise.accounting.claimed`): the paper's own formula, reproduced
  exactly, known to be unsound;
* **verified** (:mod:`product_noise.accounting.pld`): a rigorous upper bound computed from the
  exact privacy profile of the noise and composed numerically with ``dp_accounting``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from product_noise.accounting.claimed import (
        ClaimedEpochFigure,
        ClaimedFigure,
        paper_composition,
        paper_composition_at_steps,
    )
    from product_noise.accounting.pld import (
        ProfileFn,
        compose_plds,
        infinity_mass,
        pld_from_profile,
        subsampled_add_delta,
        subsampled_remove_delta,
        verified_delta,
        verified_epsilon,
    )

#: where each public name lives; loaded on first access, so that importing a light submodule
#: (e.g. :mod:`~product_noise.accounting.calibrate` from the mechanisms) does not import
#: ``dp_accounting``
_HOME = {
    "ClaimedEpochFigure": "claimed",
    "ClaimedFigure": "claimed",
    "paper_composition": "claimed",
    "paper_composition_at_steps": "claimed",
    "ProfileFn": "pld",
    "compose_plds": "pld",
    "infinity_mass": "pld",
    "pld_from_profile": "pld",
    "subsampled_add_delta": "pld",
    "subsampled_remove_delta": "pld",
    "verified_delta": "pld",
    "verified_epsilon": "pld",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ClaimedEpochFigure",
    "ClaimedFigure",
    "ProfileFn",
    "compose_plds",
    "infinity_mass",
    "paper_composition",
    "paper_composition_at_steps",
    "pld_from_profile",
    "subsampled_add_delta",
    "subsampled_remove_delta",
    "verified_delta",
    "verified_epsilon",
]
