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
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..privacy import CLAIMED, UNVERIFIED, VERIFIED
from ..validation import InputError
from .base import Mechanism, ScaledMechanism
from .custom import Claim, Profile, Sampler, TorchSampler, check_family, make_family
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
    "unregister_mechanism",
    "load_plugins",
    "import_plugins",
    "ENTRY_POINT_GROUP",
    "get_mechanism",
    "mechanism_names",
    "mechanism_specs",
]

#: who uses a mechanism (see the module docstring)
CONSUMERS: tuple[str, ...] = ("dpsgd", "erm", "audit", "table")
#: the label of a mechanism's calibration (:mod:`product_noise.privacy`); ``unverified`` is a
#: user's sampler without a proven profile (never calibrated on, nor reported as, verified)
LABELS: tuple[str, ...] = (VERIFIED, CLAIMED, UNVERIFIED)
#: the entry-point group a third-party package ships mechanisms in (see :func:`load_plugins`)
ENTRY_POINT_GROUP = "product_noise.mechanisms"
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
        ``verified`` (calibrated on the exact privacy of the noise), ``claimed`` (a paper's
        or textbook's formula; not a guarantee) or ``unverified`` (a user's sampler with no
        proven profile: scaled by its claimed formula or like the Gaussian, never verified).
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
    builtin:
        Whether the package registered it (built-ins cannot be replaced or removed).
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
    builtin: bool = False

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
        if self.calibration == CLAIMED and not self.claim:
            raise ValueError(f"{self.name!r}: a claimed calibration names its claim")
        if self.calibration == VERIFIED and self.claim:
            raise ValueError(f"{self.name!r}: a verified calibration names no claim")
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
        """The mechanism table's ``calibration`` column: ``verified``, ``claimed (paper)`` or
        ``unverified``."""
        return f"{CLAIMED} ({self.claim})" if self.calibration == CLAIMED else self.calibration

    @property
    def user(self) -> bool:
        """Registered by a user or a plugin (not one of the package's own mechanisms)."""
        return not self.builtin


class MechanismRegistry:
    """Specs in registration order; every name and alias resolves to exactly one spec."""

    def __init__(self) -> None:
        self._specs: dict[str, MechanismSpec] = {}
        self._lookup: dict[str, str] = {}
        self._plugins_loaded = False

    def _ready(self) -> None:
        if not self._plugins_loaded:
            self._plugins_loaded = True  # first, so a plugin that queries does not recurse
            load_plugins(self)

    def register(self, spec: MechanismSpec, *, replace: bool = False) -> MechanismSpec:
        """Add ``spec``; a name or alias already taken (or repeated) is a :class:`ValueError`.

        ``replace=True`` first removes a *user* mechanism of the same name (never a built-in).
        """
        if not isinstance(spec, MechanismSpec):
            raise TypeError(f"expected a MechanismSpec, got {type(spec).__name__}")
        if replace and spec.name in self._specs:
            self.unregister(spec.name)
        seen: set[str] = set()
        for s in spec.spellings:
            if s in seen:
                raise ValueError(f"mechanism {spec.name!r} lists the spelling {s!r} twice")
            seen.add(s)
            if s in self._lookup:
                owner = self._lookup[s]
                what = "is already registered" if s == owner else f"is an alias of {owner!r}"
                raise InputError(
                    f"cannot register mechanism {spec.name!r}: {s!r} {what}"
                    + ("" if self._specs[owner].builtin else " (pass replace=True)")
                )
        self._specs[spec.name] = spec
        for s in spec.spellings:
            self._lookup[s] = spec.name
        return spec

    def unregister(self, name: str) -> MechanismSpec:
        """Remove a user mechanism (a built-in one: :class:`ValueError`); returns its spec."""
        spec = self.get(name)
        if spec.builtin:
            raise InputError(f"mechanism {spec.name!r} is built in and cannot be removed")
        del self._specs[spec.name]
        for s in spec.spellings:
            self._lookup.pop(s, None)
        return spec

    def get(self, name: str) -> MechanismSpec:
        """The spec of a name or alias; anything else is a :class:`ValueError` naming them all."""
        self._ready()
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
        self._ready()
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
        self._ready()
        return iter(tuple(self._specs.values()))

    def __len__(self) -> int:
        self._ready()
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        self._ready()
        return isinstance(name, str) and name in self._lookup


#: the package's registry
REGISTRY = MechanismRegistry()


def register_mechanism(
    name: str | MechanismSpec,
    factory: type[ScaledMechanism] | str | None = None,
    *,
    radial: Any = None,
    sampler: Sampler | None = None,
    torch_sampler: TorchSampler | None = None,
    profile: Profile | None = None,
    claim: Claim | None = None,
    description: str = "",
    consumers: Iterable[str] = CONSUMERS,
    aliases: Iterable[str] = (),
    scale_name: str = "scale",
    min_dim: int | None = None,
    replace: bool = False,
) -> MechanismSpec:
    """Register a noise mechanism; its name then works everywhere a built-in one does.

    Give exactly one of:

    * ``factory``: a :class:`~product_noise.mechanisms.base.ScaledMechanism` subclass (or a
      ``"module:attribute"`` path to one) written by hand;
    * ``radial``: ``radial(dim) -> SGG``, the unit-scale radius law of a spherically symmetric
      noise: exact profile, calibration and the verified DP-SGD accountant come for free;
    * ``sampler`` (NumPy, ``sampler(rng, n, dim) -> (n, dim)`` at unit scale; optionally
      ``torch_sampler``) with ``profile(eps, dim, noise_multiplier) -> δ``, a proven profile at
      shift norm ≤ 1 for both orders of every neighbouring pair: figures are ``verified`` by
      that proof;
    * ``sampler`` alone (optionally ``claim(epsilon, delta, dim) -> noise_multiplier``): the
      mechanism is ``unverified`` everywhere, and auditable.

    The class is probed before it is registered (:func:`~product_noise.mechanisms.custom.
    check_family`): sampler shapes, dtypes and seeding, profile values in [0, 1] and monotone.

    Parameters
    ----------
    name : str or MechanismSpec
        Lower-case registry name (letters, digits, ``_``; the dash spelling is added as an
        alias), or a ready :class:`MechanismSpec` (then no other argument).
    factory, radial, sampler, torch_sampler, profile, claim
        The law, as above.
    description : str
        One line for ``--help`` and the mechanism table.
    consumers : iterable of str, default all
        Where the name is offered (:data:`CONSUMERS`).
    aliases : iterable of str
        More accepted spellings.
    scale_name : str, default "scale"
        Name of the scale parameter.
    min_dim : int, optional
        Smallest supported dimension.
    replace : bool, default False
        Replace a user mechanism already registered under ``name``.

    Returns
    -------
    spec : MechanismSpec
        What was registered.

    Raises
    ------
    InputError
        A bad name, a clash, a wrong combination of arguments, or a probe that failed.

    Examples
    --------
    >>> from product_noise import register_mechanism
    >>> from product_noise.mechanisms import SGG
    >>> spec = register_mechanism("my_l2", radial=lambda d: SGG(d, d - 1.0, 1.0, 1.0))
    >>> spec.calibration
    'verified'
    >>> _ = unregister_mechanism("my_l2")
    """
    if isinstance(name, MechanismSpec):
        return REGISTRY.register(name, replace=replace)
    if not isinstance(name, str) or not name:
        raise InputError(f"mechanism name must be a non-empty string, got {name!r}")
    if factory is not None:
        if any(x is not None for x in (radial, sampler, torch_sampler, profile, claim)):
            raise InputError(f"mechanism {name!r}: give factory= or a law, not both")
        cls = _resolve_factory(name, factory)
    else:
        cls = make_family(
            name,
            radial=radial,
            sampler=sampler,
            torch_sampler=torch_sampler,
            profile=profile,
            claim=claim,
            scale_name=scale_name,
            min_dim=min_dim,
        )
    check_family(cls)
    label = VERIFIED if cls.provable else UNVERIFIED
    dash = name.replace("_", "-")
    extra = tuple(a for a in aliases if a != dash)
    try:
        spec = MechanismSpec(
            name,
            cls,
            description or f"user mechanism {cls.__name__}",
            label,
            frozenset(consumers),
            aliases=((dash,) if dash != name else ()) + extra,
            claim="user" if getattr(cls, "claim", None) is not None else "",
            rank=100 + len(REGISTRY),
        )
    except ValueError as err:
        raise InputError(str(err)) from None
    return REGISTRY.register(spec, replace=replace)


def _resolve_factory(name: str, factory: type[ScaledMechanism] | str) -> type[ScaledMechanism]:
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise InputError(f"cannot import mechanism factory {factory!r}: {err}") from err
    if not (isinstance(factory, type) and issubclass(factory, ScaledMechanism)):
        raise InputError(
            f"factory of mechanism {name!r} must be a ScaledMechanism subclass, got {factory!r}"
        )
    if factory.name != name:
        factory = type(factory.__name__, (factory,), {"name": name})
    return factory


def unregister_mechanism(name: str) -> MechanismSpec:
    """Remove a user-registered mechanism from :data:`REGISTRY` (built-ins cannot be removed)."""
    return REGISTRY.unregister(name)


def load_plugins(registry: MechanismRegistry | None = None) -> list[str]:
    """Load the mechanisms third-party packages ship in the :data:`ENTRY_POINT_GROUP` group.

    Each entry point names a callable run with no argument: it registers its mechanisms (with
    :func:`register_mechanism`) or returns a :class:`MechanismSpec` to register. Runs once, on
    the registry's first use; a plugin that fails is skipped with a :class:`RuntimeWarning`
    naming it (one broken package does not take the others down).

    Returns
    -------
    names : list of str
        The entry points loaded.
    """
    from importlib.metadata import entry_points

    registry = REGISTRY if registry is None else registry
    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            got = ep.load()()
            if isinstance(got, MechanismSpec):
                registry.register(got)
        except Exception as err:  # a third party's bug: report and go on
            warnings.warn(
                f"mechanism plugin {ep.name!r} ({ep.value}) failed to load: {err}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        loaded.append(ep.name)
    return loaded


def import_plugins(plugins: Iterable[str]) -> list[str]:
    """Import user mechanisms named on a command line or in a config (``plugins = [...]``).

    Each item is a module (imported: registering at import time) or ``"module:callable"`` (the
    callable is then run with no argument, like an entry point). Unlike :func:`load_plugins`, a
    failure is the user's own input and raises.

    Parameters
    ----------
    plugins : iterable of str
        Module paths, optionally with ``:callable``.

    Returns
    -------
    names : list of str
        The names newly registered.

    Raises
    ------
    InputError
        A module that cannot be imported, a missing or failing callable.
    """
    before = set(REGISTRY.names())
    for item in plugins:
        module, _, attr = str(item).partition(":")
        try:
            mod = importlib.import_module(module)
        except ImportError as err:
            raise InputError(f"cannot import mechanism plugin {item!r}: {err}") from err
        if attr:
            fn = getattr(mod, attr, None)
            if not callable(fn):
                raise InputError(f"mechanism plugin {item!r}: {module} has no callable {attr!r}")
            got = fn()
            if isinstance(got, MechanismSpec):
                REGISTRY.register(got)
    return [n for n in REGISTRY.names() if n not in before]


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
        REGISTRY.register(_as_builtin(spec))


def _as_builtin(spec: MechanismSpec) -> MechanismSpec:
    from dataclasses import replace

    return replace(spec, builtin=True)


_register_builtins()
