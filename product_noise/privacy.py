"""Labelled privacy figures.

The package never prints a bare ε. Every figure carries a label:

``claimed``
    what a paper states, computed exactly as the paper (or its code) computes it. Not a guarantee
    unless the paper's theorem is correct for the noise actually added.
``verified``
    computed from the exact privacy profile of the noise actually added (and composed with a
    numerical accountant); an upper bound on the true privacy loss up to stated numerical error.
``estimate``
    an approximation that is not a bound in either direction (e.g. the Gaussian-DP central limit
    approximation of Opacus' ``gdp`` accountant). Shown for comparison only; never verified.

An audit adds a fourth kind, an *empirical lower bound* (:class:`EmpiricalBound`): with a stated
confidence the true ε is at least this. Everything a fitted object can say about its privacy is
one :class:`PrivacyReport`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, Literal

__all__ = [
    "PrivacyFigure",
    "EmpiricalBound",
    "PrivacyReport",
    "Label",
    "CLAIMED",
    "VERIFIED",
    "ESTIMATE",
    "EMPIRICAL",
    "UNVERIFIED",
    "PrivacyWarning",
]

Label = Literal["claimed", "verified", "estimate"]
CLAIMED: Label = "claimed"
VERIFIED: Label = "verified"
ESTIMATE: Label = "estimate"
_LABELS = (CLAIMED, VERIFIED, ESTIMATE)
#: label of an empirical lower bound (:class:`EmpiricalBound`); not a :data:`Label` of a figure
EMPIRICAL = "empirical"
#: what stands where a verified figure would be, for a mechanism nothing is proven about (a
#: user's sampler without a profile); not a :data:`Label`: no figure carries it
UNVERIFIED = "unverified"


class PrivacyWarning(UserWarning):
    """A privacy statement is weaker than it looks (e.g. a claimed bound known to be false)."""


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf"
    return f"{x:.4g}"


@dataclass(frozen=True)
class PrivacyFigure:
    """An (ε, δ) pair with its provenance.

    Attributes
    ----------
    epsilon, delta:
        The privacy parameters. ``epsilon`` may be ``inf`` (no finite ε at this δ).
    label:
        ``"claimed"``, ``"verified"`` or ``"estimate"`` (see module docstring).
    source:
        One line saying how the figure was obtained.
    """

    epsilon: float
    delta: float
    label: Label
    source: str
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.label not in _LABELS:
            raise ValueError(f"label must be one of {_LABELS}, got {self.label!r}")

    def __str__(self) -> str:
        return f"{self.label} (ε = {_fmt(self.epsilon)}, δ = {self.delta:.3g}) [{self.source}]"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyFigure:
        """The figure of a :meth:`to_dict` copy (``extra`` optional)."""
        return cls(
            float(data["epsilon"]),
            float(data["delta"]),
            data["label"],
            str(data["source"]),
            dict(data.get("extra") or {}),
        )


@dataclass(frozen=True)
class EmpiricalBound:
    """An empirical lower bound on ε at δ, from an audit (a statement about the true ε).

    With probability at least ``confidence`` over the audit's randomness, the true ε at ``delta``
    is at least ``epsilon``. It refutes an upper bound (claimed or verified) smaller than it; it
    never certifies one.

    Attributes
    ----------
    epsilon : float
        The lower bound (≥ 0).
    delta : float
        The δ of the bound.
    confidence : float
        Its confidence level in (0, 1).
    source : str
        One line saying how the bound was obtained.
    extra : dict
        Details (not compared).

    See Also
    --------
    from_lower_bound : the record of an audit's ``EpsilonLowerBound``.
    """

    epsilon: float
    delta: float
    confidence: float
    source: str
    extra: dict = field(default_factory=dict, compare=False)
    label: ClassVar[str] = EMPIRICAL

    def __str__(self) -> str:
        return (
            f"{self.label} lower bound (ε ≥ {_fmt(self.epsilon)}, δ = {self.delta:.3g}, "
            f"{100 * self.confidence:g}% confidence) [{self.source}]"
        )

    @classmethod
    def from_lower_bound(cls, bound: Any, source: str | None = None) -> EmpiricalBound:
        """The record of an audit's bound (anything with ``epsilon_lower``, ``delta`` and
        ``confidence``, e.g. :class:`product_noise.audit.EpsilonLowerBound`); ``source``
        defaults to ``str(bound)``."""
        extra = bound.to_dict() if hasattr(bound, "to_dict") else {}
        return cls(
            float(bound.epsilon_lower),
            float(bound.delta),
            float(bound.confidence),
            str(bound) if source is None else source,
            extra,
        )

    def to_dict(self) -> dict:
        return {"label": self.label, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmpiricalBound:
        """The bound of a :meth:`to_dict` copy."""
        if data.get("label", EMPIRICAL) != EMPIRICAL:
            raise ValueError(f"not an empirical bound: label {data.get('label')!r}")
        return cls(
            float(data["epsilon"]),
            float(data["delta"]),
            float(data["confidence"]),
            str(data["source"]),
            dict(data.get("extra") or {}),
        )


def _figures(name: str, figs: Iterable[PrivacyFigure], label: str) -> tuple[PrivacyFigure, ...]:
    if isinstance(figs, PrivacyFigure):
        figs = (figs,)
    out = tuple(figs)
    for f in out:
        if not isinstance(f, PrivacyFigure):
            raise TypeError(f"{name} holds PrivacyFigure objects, got {type(f).__name__}")
        if f.label != label:
            raise ValueError(f"{name} holds {label!r} figures only, got a {f.label!r} one: {f}")
    return out


@dataclass(frozen=True)
class PrivacyReport:
    """Everything an object can say about its privacy, each figure in its labelled slot.

    A report is a sequence of its figures: ``for fig in report``, ``len(report)`` and
    ``report[i]`` run over :meth:`figures` (verified first, then claimed, estimates and
    empirical bounds), which is what the list returned by
    ``PrivacyEngine.get_privacy_report`` used to be.

    Parameters
    ----------
    verified : PrivacyFigure or None
        The verified upper bound on ε of what was actually run (``None``: none computed).
        Only a figure labelled ``"verified"`` is accepted (``ValueError`` otherwise).
    claimed : tuple of PrivacyFigure
        Claimed figures, in the order the method states them (e.g. AdLM's per-step claim,
        then the claim composed over redraws). A tuple, not one optional figure: one object
        can make several claims, and the empty tuple says "no claim" without ``None``.
    estimates : tuple of PrivacyFigure
        Approximations that bound nothing (e.g. Opacus' GDP figure).
    empirical : tuple of EmpiricalBound
        Lower bounds from audits; an audit attaches one with :meth:`with_empirical`. An
        audit's ``EpsilonLowerBound`` is converted by :meth:`EmpiricalBound.from_lower_bound`.
    source : str
        What produced the report, e.g. ``"product_noise.PrivacyEngine"``.
    what : str
        What the figures are about, e.g. ``"DP-SGD, 64 steps"``.
    unverified : str
        Why there is no verified figure when none can exist (the noise is a user's sampler
        without a proven profile); then ``verified`` must be ``None`` and the report prints
        ``unverified: <reason>`` first.

    Raises
    ------
    ValueError
        A figure in a slot of another label.
    TypeError
        Something other than a figure (or bound) in a slot.

    Examples
    --------
    >>> v = PrivacyFigure(1.0, 1e-5, VERIFIED, "PLD")
    >>> c = PrivacyFigure(0.5, 1e-5, CLAIMED, "paper")
    >>> report = PrivacyReport(v, (c,))
    >>> [f.label for f in report]
    ['verified', 'claimed']
    >>> PrivacyReport.from_dict(report.to_dict()) == report
    True
    """

    verified: PrivacyFigure | None = None
    claimed: tuple[PrivacyFigure, ...] = ()
    estimates: tuple[PrivacyFigure, ...] = ()
    empirical: tuple[EmpiricalBound, ...] = ()
    source: str = ""
    what: str = ""
    unverified: str = ""

    def __post_init__(self) -> None:
        if self.unverified and self.verified is not None:
            raise ValueError("an unverified report holds no verified figure")
        if self.verified is not None:
            if not isinstance(self.verified, PrivacyFigure):
                raise TypeError(
                    f"verified must be a PrivacyFigure or None, got {type(self.verified).__name__}"
                )
            if self.verified.label != VERIFIED:
                raise ValueError(
                    f"the verified slot holds a 'verified' figure only, got a "
                    f"{self.verified.label!r} one: {self.verified}"
                )
        object.__setattr__(self, "claimed", _figures("claimed", self.claimed, CLAIMED))
        object.__setattr__(self, "estimates", _figures("estimates", self.estimates, ESTIMATE))
        bounds = self.empirical
        if isinstance(bounds, EmpiricalBound) or hasattr(bounds, "epsilon_lower"):
            bounds = (bounds,)
        bounds = tuple(
            b if isinstance(b, EmpiricalBound) else EmpiricalBound.from_lower_bound(b)
            for b in bounds
        )
        object.__setattr__(self, "empirical", bounds)

    @classmethod
    def from_figures(
        cls,
        figures: Iterable[PrivacyFigure | EmpiricalBound | None],
        *,
        source: str = "",
        what: str = "",
        unverified: str = "",
    ) -> PrivacyReport:
        """Sort labelled figures into their slots (``None`` entries are skipped; order is kept
        within a label). At most one verified figure."""
        slots: dict[str, list[Any]] = {VERIFIED: [], CLAIMED: [], ESTIMATE: [], EMPIRICAL: []}
        for f in figures:
            if f is None:
                continue
            label = getattr(f, "label", None)
            if label not in slots:
                raise TypeError(f"not a labelled figure: {f!r}")
            slots[label].append(f)
        if len(slots[VERIFIED]) > 1:
            raise ValueError(f"a report has one verified figure, got {len(slots[VERIFIED])}")
        return cls(
            slots[VERIFIED][0] if slots[VERIFIED] else None,
            tuple(slots[CLAIMED]),
            tuple(slots[ESTIMATE]),
            tuple(slots[EMPIRICAL]),
            source=source,
            what=what,
            unverified=unverified,
        )

    # ------------------------------------------------------------------ sequence
    def figures(self) -> tuple[PrivacyFigure | EmpiricalBound, ...]:
        """Every figure, labelled: verified first, then claimed, estimates, empirical."""
        head = () if self.verified is None else (self.verified,)
        return head + self.claimed + self.estimates + self.empirical

    def __iter__(self) -> Iterator[PrivacyFigure | EmpiricalBound]:
        return iter(self.figures())

    def __len__(self) -> int:
        return len(self.figures())

    def __getitem__(self, index: int | slice) -> Any:
        return self.figures()[index]

    def __str__(self) -> str:
        lines = [f"{UNVERIFIED}: {self.unverified}"] if self.unverified else []
        lines += [str(f) for f in self.figures()]
        return "\n".join(lines) if lines else "no privacy figures"

    # ------------------------------------------------------------------ derived reports
    def with_empirical(self, *bounds: Any) -> PrivacyReport:
        """This report with audit lower bounds added (:class:`EmpiricalBound` or an audit's
        ``EpsilonLowerBound``)."""
        return replace(self, empirical=self.empirical + tuple(bounds))

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A plain-dict copy (figures by :meth:`PrivacyFigure.to_dict`)."""
        return {
            "verified": None if self.verified is None else self.verified.to_dict(),
            "claimed": [f.to_dict() for f in self.claimed],
            "estimates": [f.to_dict() for f in self.estimates],
            "empirical": [b.to_dict() for b in self.empirical],
            "source": self.source,
            "what": self.what,
            "unverified": self.unverified,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyReport:
        """The report of a :meth:`to_dict` copy."""
        ver = data.get("verified")
        return cls(
            None if ver is None else PrivacyFigure.from_dict(ver),
            tuple(PrivacyFigure.from_dict(d) for d in data.get("claimed", ())),
            tuple(PrivacyFigure.from_dict(d) for d in data.get("estimates", ())),
            tuple(EmpiricalBound.from_dict(d) for d in data.get("empirical", ())),
            source=str(data.get("source", "")),
            what=str(data.get("what", "")),
            unverified=str(data.get("unverified", "")),
        )
