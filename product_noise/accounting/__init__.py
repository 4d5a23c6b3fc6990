"""Privacy accounting: the paper's *claimed* composition and *verified* PLD accounting.

Every figure produced here carries a label:

* **claimed** (:mod:`product_noise.accounting.claimed`): the paper's own formula, reproduced
  exactly, known to be unsound;
* **verified** (:mod:`product_noise.accounting.pld`): a rigorous upper bound computed from the
  exact privacy profile of the noise and composed numerically with ``dp_accounting``.
"""

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
