"""The one registry of noise mechanisms: every name, alias, class, label and consumer.

Each noise law the package knows is one :class:`MechanismSpec`, registered once below
(:func:`_register_builtins`). Every list of mechanism names elsewhere in the package — the
command line's choices and help, the DP-SGD engine's and the training loop's noises, convex
ERM's noises, the comparison harness' ``dpsgd-<name>``/``erm-<method>-<noise>`` names, the
training audits' mechanisms, the mechanism table — is derived from it with
:func:`mechanism_names`.

=====================  ===========  ======================================  =====================
name                   calibration  consumers                               harness rank
=====================  ===========  ======================================  =====================
``gaussian``           verified     dpsgd, erm, audit, table                0
``classic_gaussian``   claimed      erm, table                              5
``product``            verified     dpsgd, erm, audit, table                3
``product_paper``      claimed      dpsgd, erm, audit, table                2
``l2``                 verified     dpsgd, erm, audit, table                4
``gamma``              verified     erm                                     1
=====================  ===========  ======================================  =====================

Consumers: ``dpsgd`` (the DP-SGD engine and the comparison's ``dpsgd-*`` runs), ``erm`` (convex
ERM and the comparison's ``erm-*`` runs), ``audit`` (canary audits of real training runs),
``table`` (calibration by name: :func:`product_noise.mechanisms.calibrate`, the ``calibrate``
and ``audit`` subcommands and the mechanism table).

Two orders: registration order (the reference order of the command line and of ERM) and the
harness order (``rank``: the comparison and the training audits list the Gaussian reference
first, then the Gamma-norm law, the paper's claim, its verified fix, ℓ2 and the classic
formula). Names use underscores; ``spelling="dash"`` gives the spelling of the harness
(``product-paper``), which every spec registers as an alias.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..privacy import CLAIMED, VERIFIED
from ..validation import InputError
from .base import Mechanism
from .gaussian import Gaussian
from .l2 import GammaNorm, L2Mechanism
from .product import ProductNoise

__all__ = [
    "CONSUMERS",
    "LABELS",
    "MechanismSpec",
    "MechanismRegistry",
    "REGISTRY",
    "register_mechanism",
    "get_mechanism",
    "mechanism_names",
    "mechanism_specs",
]

#: who uses a mechanism (see the module docstring)
CONSUMERS: tuple[str, ...] = ("dpsgd", "erm", "audit", "table")
#: the label of a mechanism's calibration (:mod:`product_noise.privacy`)
LABELS: tuple[str, ...] = (VERIFIED, CLAIMED)
_SPELLINGS = ("underscore", "dash")
_ORDERS = ("registry", "harness")


@dataclass(frozen=True)
class MechanismSpec:
    """One noise mechanism as the rest of the package sees it.

    Attributes
    ----------
    name:
        Registry name, lower case with underscores (``product_paper``).
    mechanism:
        The :class:`~product_noise.mechanisms.base.Mechanism` subclass, or a lazy
        ``"module:attribute"`` path to it (so that core can name a class of a higher layer
        without importing it); :meth:`load` resolves it.
    description:
        One line (the command line's ``--mechanism`` help).
    calibration:
        ``verified`` (calibrated on the exact privacy of the noise) or ``claimed`` (a paper's
        or textbook's formula; not a guarantee).
    consumers:
        A subset of :data:`CONSUMERS`.
    aliases:
        Other accepted spellings; must include the dash spelling when it differs from ``name``.
    caveat:
        What the help says after the label (``known false``).
    claim:
        For a claimed calibration: whose claim it reproduces (``classic``, ``paper``).
    rank:
        Position in the harness order (ties keep registration order).
    """

    name: str
    mechanism: type[Mechanism] | str
    description: str
    calibration: str
    consumers: frozenset[str] = field(default_factory=frozenset)
    aliases: tuple[str, ...] = ()
    caveat: str = ""
    claim: str = ""
    rank: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "consumers", frozenset(self.consumers))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        if not (
            isinstance(self.name, str)
            and self.name
            and self.name == self.name.lower()
            and self.name.replace("_", "").isalnum()
        ):
            raise ValueError(
                f"mechanism name must be lower case letters, digits and '_', got {self.name!r}"
            )
        if self.calibration not in LABELS:
            raise ValueError(
                f"calibration of {self.name!r} must be one of {', '.join(LABELS)}, "
                f"got {self.calibration!r}"
            )
        unknown = sorted(self.consumers - set(CONSUMERS))
        if unknown:
            raise ValueError(
                f"unknown consumers of {self.name!r}: {', '.join(unknown)}; "
                f"choose from {', '.join(CONSUMERS)}"
            )
        if (self.calibration == CLAIMED) != bool(self.claim):
            raise ValueError(
                f"{self.name!r}: a claimed calibration names its claim, a verified one none"
            )
        if isinstance(self.mechanism, str) and ":" not in self.mechanism:
            raise ValueError(
                f"lazy mechanism of {self.name!r} must be 'module:attribute', "
                f"got {self.mechanism!r}"
            )
        if self.dash != self.name and self.dash not in self.aliases:
            raise ValueError(f"{self.name!r}: register its dash spelling {self.dash!r} as alias")

    @property
    def dash(self) -> str:
        """The name with dashes (the comparison harness' and the audits' spelling)."""
        return self.name.replace("_", "-")

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every string that :func:`get_mechanism` resolves to this spec."""
        return (self.name, *self.aliases)

    def spelled(self, spelling: str = "underscore") -> str:
        if spelling not in _SPELLINGS:
            raise ValueError(f"spelling must be one of {', '.join(_SPELLINGS)}, got {spelling!r}")
        return self.dash if spelling == "dash" else self.name

    def load(self) -> type[Mechanism]:
        """The mechanism class (imported now if it was registered lazily)."""
        if not isinstance(self.mechanism, str):
            return self.mechanism
        module, _, attr = self.mechanism.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]

    @property
    def help_text(self) -> str:
        """``name = description (label[, caveat])``."""
        note = f"{self.calibration}, {self.caveat}" if self.caveat else self.calibration
        return f"{self.name} = {self.description} ({note})"

    @property
    def table_label(self) -> str:
        """The mechanism table's ``calibration`` column: ``verified`` or ``claimed (paper)``."""
        return self.calibration if self.calibration == VERIFIED else f"{CLAIMED} ({self.claim})"


class MechanismRegistry:
    """Specs in registration order; every name and alias resolves to exactly one spec."""

    def __init__(self) -> None:
        self._specs: dict[str, MechanismSpec] = {}
        self._lookup: dict[str, str] = {}

    def register(self, spec: MechanismSpec) -> MechanismSpec:
        """Add ``spec``; a name or alias already taken (or repeated) is a :class:`ValueError`."""
        if not isinstance(spec, MechanismSpec):
            raise TypeError(f"expected a MechanismSpec, got {type(spec).__name__}")
        seen: set[str] = set()
        for s in spec.spellings:
            if s in seen:
                raise ValueError(f"mechanism {spec.name!r} lists the spelling {s!r} twice")
            seen.add(s)
            if s in self._lookup:
                owner = self._lookup[s]
                what = "is already registered" if s == owner else f"is an alias of {owner!r}"
                raise ValueError(f"cannot register mechanism {spec.name!r}: {s!r} {what}")
        self._specs[spec.name] = spec
        for s in spec.spellings:
            self._lookup[s] = spec.name
        return spec

    def get(self, name: str) -> MechanismSpec:
        """The spec of a name or alias; anything else is a :class:`ValueError` naming them all."""
        key = self._lookup.get(name) if isinstance(name, str) else None
        if key is None:
            raise InputError(f"unknown mechanism {name!r}; choose one of {', '.join(self._specs)}")
        return self._specs[key]

    def specs(
        self,
        consumer: str | None = None,
        *,
        calibration: str | None = None,
        order: str = "registry",
    ) -> tuple[MechanismSpec, ...]:
        if consumer is not None and consumer not in CONSUMERS:
            raise ValueError(f"unknown consumer {consumer!r}; choose one of {', '.join(CONSUMERS)}")
        if calibration is not None and calibration not in LABELS:
            raise ValueError(f"calibration must be one of {', '.join(LABELS)}, got {calibration!r}")
        if order not in _ORDERS:
            raise ValueError(f"order must be one of {', '.join(_ORDERS)}, got {order!r}")
        out = [
            s
            for s in self._specs.values()
            if (consumer is None or consumer in s.consumers)
            and (calibration is None or s.calibration == calibration)
        ]
        if order == "harness":
            out.sort(key=lambda s: s.rank)  # stable: ties keep registration order
        return tuple(out)

    def names(
        self,
        consumer: str | None = None,
        *,
        spelling: str = "underscore",
        calibration: str | None = None,
        order: str = "registry",
    ) -> tuple[str, ...]:
        return tuple(
            s.spelled(spelling) for s in self.specs(consumer, calibration=calibration, order=order)
        )

    def __iter__(self) -> Iterator[MechanismSpec]:
        return iter(tuple(self._specs.values()))

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._lookup


#: the package's registry
REGISTRY = MechanismRegistry()


def register_mechanism(spec: MechanismSpec) -> MechanismSpec:
    """Register ``spec`` in :data:`REGISTRY` (duplicate names or alias clashes: ``ValueError``)."""
    return REGISTRY.register(spec)


def get_mechanism(name: str) -> MechanismSpec:
    """The spec registered under ``name`` or one of its aliases (else ``ValueError``)."""
    return REGISTRY.get(name)


def mechanism_specs(
    consumer: str | None = None, *, calibration: str | None = None, order: str = "registry"
) -> tuple[MechanismSpec, ...]:
    """Registered specs, optionally only those of one consumer and/or calibration label."""
    return REGISTRY.specs(consumer, calibration=calibration, order=order)


def mechanism_names(
    consumer: str | None = None,
    *,
    spelling: str = "underscore",
    calibration: str | None = None,
    order: str = "registry",
) -> tuple[str, ...]:
    """Registered names, optionally only those of one consumer and/or calibration label.

    ``spelling="dash"`` gives ``product-paper`` for ``product_paper``; ``order="harness"``
    sorts by :attr:`MechanismSpec.rank` instead of registration order.
    """
    return REGISTRY.names(consumer, spelling=spelling, calibration=calibration, order=order)


def _register_builtins() -> None:
    everywhere = frozenset(("dpsgd", "erm", "audit", "table"))
    for spec in (
        MechanismSpec("gaussian", Gaussian, "analytic Gaussian", VERIFIED, everywhere, rank=0),
        MechanismSpec(
            "classic_gaussian",
            Gaussian,
            "Dwork-Roth formula",
            CLAIMED,
            frozenset(("erm", "table")),
            aliases=("classic-gaussian",),
            caveat="a theorem only for ε < 1",
            claim="classic",
            rank=5,
        ),
        MechanismSpec(
            "product",
            ProductNoise,
            "product noise calibrated on its exact profile",
            VERIFIED,
            everywhere,
            rank=3,
        ),
        MechanismSpec(
            "product_paper",
            ProductNoise,
            "product noise at the paper's calibration",
            CLAIMED,
            everywhere,
            aliases=("product-paper",),
            caveat="known false",
            claim="paper",
            rank=2,
        ),
        MechanismSpec("l2", L2Mechanism, "ℓ2 mechanism", VERIFIED, everywhere, rank=4),
        MechanismSpec(
            "gamma",
            GammaNorm,
            "Gamma-norm noise of Chaudhuri et al. 2011 (pure ε-DP)",
            VERIFIED,
            frozenset(("erm",)),
            rank=1,
        ),
    ):
        register_mechanism(spec)


_register_builtins()
