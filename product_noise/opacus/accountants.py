"""Accountants for non-Gaussian DP-SGD noise, registered with Opacus' accountant registry.

``product-verified`` / ``spherical-verified`` — :class:`VerifiedNoiseAccountant`
    A rigorous upper bound on ε of Poisson-subsampled joint noise over T steps, for the
    add/remove-one relation (Opacus' convention; shift = ``max_grad_norm``). Argument:

    1. Per step, the released sum ``S + n`` of clipped gradients differs between neighbouring
       datasets by a vector of norm ≤ C (only if the example is sampled, probability q). For
       spherical noise the pair depends on the shift only through its norm; the base pair
       ``(n + v, n)`` with ‖v‖ = C dominates every shift ≤ C (proved for Gaussian noise and for
       the revealed-scale bound used for product noise; a numerical check over shift norms for
       other laws — see :mod:`product_noise.mechanisms.spherical`).
    2. The base pair's exact privacy profile ``d(ε')`` is a one-dimensional integral
       (:meth:`~product_noise.mechanisms.Mechanism.privacy_profile`).
    3. Poisson subsampling in both directions (REMOVE: ``(1−q)Q + qP`` vs ``Q``; ADD: ``Q`` vs
       ``(1−q)Q + qP``) is an exact transformation of ``d`` (joint convexity of hockey-stick
       divergences).
    4. :func:`~product_noise.accounting.pld.pld_from_profile` turns these profiles into a
       *pessimistic* privacy-loss distribution (Doroshenko et al. 2022, connect-the-dots; the
       tail beyond the grid goes to the infinity mass), composed by dp-accounting's FFT, which
       dominates the adaptive composition of the per-step pairs.

    The same route applied to Gaussian noise matches dp-accounting's closed form within 3e-5
    relative (tests). Product noise has infinite Rényi divergences, so RDP cannot be used; its
    heavy tail often makes the certified ε infinite at small δ — that is the truth, not a bug.

    Steps 3–4 need of the noise only its profile ``d``. A user's radial law is spherical and
    gets steps 1–2 exactly as the built-ins; a user's :class:`~product_noise.mechanisms.
    ProfileMechanism` supplies ``d`` as its proven ``delta`` (the worst case over shifts ≤ C in
    both orders, which is its registration contract), and steps 3–4 apply unchanged.

``unverified`` — :class:`UnverifiedNoiseAccountant`
    Records the steps of a user's noise without a proven profile (a sampler only) and refuses
    every ε with :class:`~product_noise.validation.UnverifiedError`: no verified figure exists,
    and no Gaussian figure is given in its place.

``product-claimed`` — :class:`PaperClaimedAccountant`
    The product-noise paper's composition exactly as its code computes it
    (:func:`~product_noise.accounting.claimed.paper_composition_at_steps`). Labelled
    ``claimed``; known unsound.

History entries of the joint-noise accountants are frozen event records (:class:`NoiseStep`, a
:class:`typing.NamedTuple`, so still the positional tuples of Opacus' accountants); their
``state_dict`` stores plain tuples so that checkpoints stay loadable with
``torch.load(..., weights_only=True)``, and ``load_state_dict`` rebuilds the records.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from opacus.accountants import IAccountant
from opacus.accountants.registry import _ACCOUNTANTS, register_accountant

from ..accounting.claimed import paper_composition_at_steps
from ..accounting.pld import compose_plds, infinity_mass, pld_from_profile
from ..mechanisms import ScaledMechanism, SphericalMechanism
from ..privacy import CLAIMED, VERIFIED, PrivacyFigure
from ..validation import UnverifiedError
from .families import family_name, noise_family

__all__ = [
    "NoiseStep",
    "SphericalStep",
    "JointNoiseAccountant",
    "VerifiedNoiseAccountant",
    "SphericalVerifiedAccountant",
    "ProductVerifiedAccountant",
    "UnverifiedNoiseAccountant",
    "unverified_reason",
    "PaperClaimedAccountant",
    "register_accountants",
]


class NoiseStep(NamedTuple):
    """``steps`` identical DP-SGD steps with one joint noise draw each: the event a joint-noise
    accountant composes (in the manner of ``dp_accounting``'s ``DpEvent`` records).

    Each step Poisson-subsamples the data with probability ``sample_rate``, sums the clipped
    per-example gradients (norm ≤ C) and adds one draw of the ``dim``-dimensional noise
    ``family`` at scale ``noise_multiplier × C``. Neighbouring datasets differ by adding or
    removing one record. A ``NamedTuple``: equal to (and unpackable as) the positional tuple
    ``(family, dim, noise_multiplier, sample_rate, steps)``. :data:`SphericalStep` is its
    historic name.

    Attributes
    ----------
    family : str
        A registry name of a DP-SGD noise (:func:`~product_noise.opacus.families.noise_family`:
        ``"product"``, ``"l2"``, ``"gaussian"`` or a registered user mechanism).
    dim : int
        Dimension M of one noise draw.
    noise_multiplier : float
        Noise scale over the shift C (the scale-free form).
    sample_rate : float
        Poisson sampling probability q of one step.
    steps : int
        How many such steps (run-length encoding of the history).
    """

    family: str
    dim: int
    noise_multiplier: float
    sample_rate: float
    steps: int

    @classmethod
    def from_tuple(cls, entry: Any) -> NoiseStep:
        """The record of a positional entry (a tuple or list of the five fields)."""
        if isinstance(entry, cls):
            return entry
        family, dim, nm, q, steps = entry
        return cls(str(family), int(dim), float(nm), float(q), int(steps))


#: the historic name of :class:`NoiseStep` (from when every family was spherical)
SphericalStep = NoiseStep


class JointNoiseAccountant(IAccountant):
    """The step record shared by the joint-noise accountants (no privacy computation).

    History: run-length-encoded :class:`NoiseStep` records ``(family, dim, noise_multiplier,
    sample_rate, steps)``, ``family`` a registered DP-SGD noise name. Assigning ``history`` a
    list of plain tuples rebuilds the records (a family that is not registered raises
    :class:`~product_noise.validation.InputError`: register it first); :meth:`state_dict`
    stores plain tuples.
    """

    def __init__(self) -> None:
        super().__init__()  # Opacus' IAccountant.__init__ is abstract: it starts the history

    @property
    def history(self) -> list[NoiseStep]:  # type: ignore[override]
        """The recorded steps, as :class:`NoiseStep` records."""
        return self._history

    @history.setter
    def history(self, entries: Any) -> None:
        steps = [NoiseStep.from_tuple(e) for e in entries]
        for name in {s.family for s in steps}:
            noise_family(name)  # registered (else: register it first)
        self._history = steps

    def __len__(self) -> int:
        return len(self.history)

    # ------------------------------------------------------------------ recording
    def step(  # type: ignore[override]
        self,
        *,
        noise_multiplier: float,
        sample_rate: float,
        family: str | None = None,
        dim: int | None = None,
        **_: Any,
    ) -> None:
        if family is None or dim is None:
            raise ValueError(
                f"the {self.mechanism()} accountant needs the noise family and its dimension "
                "(attach it through product_noise.PrivacyEngine, or pass family= and dim=)"
            )
        name = family_name(family)
        step = NoiseStep(name, int(dim), float(noise_multiplier), float(sample_rate), 1)
        last = self.history[-1] if self.history else None
        if last is not None and last._replace(steps=1) == step:
            self.history[-1] = last._replace(steps=last.steps + 1)
        else:
            self.history.append(step)

    def get_optimizer_hook_fn(self, sample_rate: float) -> Callable:
        def hook_fn(optim: Any) -> None:
            self.step(
                noise_multiplier=optim.noise_multiplier,
                sample_rate=sample_rate * optim.accumulated_iterations,
                family=getattr(optim, "noise_name", None) or optim.noise_family.name,
                dim=optim.noise_dim,
            )

        return hook_fn

    @property
    def num_steps(self) -> int:
        return int(sum(h.steps for h in self.history))

    def unverified_families(self) -> list[str]:
        """The recorded families without a proven privacy profile (registry order of use)."""
        names = dict.fromkeys(h.family for h in self.history)
        return [n for n in names if not noise_family(n).provable]

    def state_dict(self, destination: Any = None) -> OrderedDict:
        """Opacus' state dict with the history as plain tuples (no class of this package in a
        checkpoint: ``torch.load(..., weights_only=True)`` accepts it)."""
        sd = super().state_dict(destination)
        sd["history"] = [tuple(h) for h in self.history]
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        """Opacus' checks, then the history rebuilt as :class:`NoiseStep` records."""
        super().load_state_dict(state_dict)  # assigns history: the setter rebuilds the records


def unverified_reason(families: list[str]) -> str:
    """Why DP-SGD with the noise ``families`` has no verified ε (one sentence)."""
    names = ", ".join(repr(n) for n in families)
    return (
        f"DP-SGD with noise {names}, a sampler without a proven privacy profile: there is no "
        "verified privacy figure for this run; audit it (product-noise audit-training) for an "
        "empirical lower bound"
    )


class VerifiedNoiseAccountant(JointNoiseAccountant):
    """Verified accountant for joint noise with a proven privacy profile.

    Spherical families (product noise, the ℓ2 mechanism, the Gaussian, a user's radial law)
    use their exact profile; a user's :class:`~product_noise.mechanisms.ProfileMechanism` its
    proven ``delta``. Both go through the same pessimistic PLD route: it needs of a family
    only :meth:`~product_noise.mechanisms.Mechanism.privacy_profile` (the worst case over
    shifts of norm ≤ C, both orders). A recorded family without a proven profile makes
    :meth:`get_epsilon` raise :class:`~product_noise.validation.UnverifiedError` (never a
    Gaussian figure in its place). :data:`SphericalVerifiedAccountant` is its historic name.
    """

    #: PLD grid step; 1e-4 reproduces dp-accounting's Gaussian to 3e-5 relative.
    value_discretization_interval: float = 1e-4

    def __init__(self) -> None:
        super().__init__()
        self._pld_cache: dict[tuple, Any] = {}

    @classmethod
    def mechanism(cls) -> str:
        return "spherical-verified"

    # ------------------------------------------------------------------ privacy
    @staticmethod
    def _mechanism(family: str, dim: int, noise_multiplier: float) -> ScaledMechanism:
        return noise_family(family)(dim, noise_multiplier, 1.0)

    def _pld(self, entry: NoiseStep, total_steps: int, delta: float) -> Any:
        family, dim, nm, q, _ = entry
        key = (family, dim, nm, q, total_steps, delta, self.value_discretization_interval)
        if key not in self._pld_cache:
            mech = self._mechanism(family, dim, nm)
            self._pld_cache[key] = pld_from_profile(
                mech.privacy_profile(),
                sampling_prob=q,
                value_discretization_interval=self.value_discretization_interval,
                num_steps_hint=total_steps,
                target_delta_hint=delta,
            )
        return self._pld_cache[key]

    def _composed(self, delta: float) -> Any | None:
        if not self.history:
            return None
        unproven = self.unverified_families()
        if unproven:
            raise UnverifiedError(unverified_reason(unproven))
        total = self.num_steps
        parts = [(self._pld(h, total, delta), h.steps) for h in self.history]
        return compose_plds(parts)

    def get_epsilon(self, delta: float, **kwargs: Any) -> float:
        """Verified ε at ``delta`` (``inf`` when no finite ε is certified at this δ)."""
        if not 0 < delta < 1:
            raise ValueError(f"delta must lie strictly between 0 and 1, got {delta!r}")
        composed = self._composed(delta)
        if composed is None:
            return 0.0
        return float(composed.get_epsilon_for_delta(delta))

    def get_delta(self, epsilon: float, *, delta_hint: float = 1e-5) -> float:
        """Verified δ at ``epsilon``."""
        composed = self._composed(delta_hint)
        if composed is None:
            return 0.0
        return float(composed.get_delta_for_epsilon(epsilon))

    def _source(self) -> str:
        """Where the per-step profiles come from: exact (spherical) or the user's proof."""
        families = {h.family for h in self.history}
        users = sorted(f for f in families if not issubclass(noise_family(f), SphericalMechanism))
        head = "exact profile" if not users else f"proven profile of {', '.join(users)}"
        return f"{head} + pessimistic PLD (dp-accounting), add/remove, Poisson"

    def verified_figure(self, delta: float) -> PrivacyFigure:
        composed = self._composed(delta)
        eps = 0.0 if composed is None else float(composed.get_epsilon_for_delta(delta))
        extra: dict[str, Any] = {"steps": self.num_steps}
        source = self._source()
        if composed is not None:
            extra["composed_infinity_mass"] = infinity_mass(composed)
            if math.isinf(eps):
                source += f"; composed infinity mass {extra['composed_infinity_mass']:.3g} > δ"
        return PrivacyFigure(eps, float(delta), VERIFIED, source, extra)


#: the historic name of :class:`VerifiedNoiseAccountant`
SphericalVerifiedAccountant = VerifiedNoiseAccountant


class ProductVerifiedAccountant(VerifiedNoiseAccountant):
    """:class:`VerifiedNoiseAccountant` under the name the product-noise engine uses."""

    @classmethod
    def mechanism(cls) -> str:
        return "product-verified"


class UnverifiedNoiseAccountant(JointNoiseAccountant):
    """The steps of noise without a proven privacy profile, recorded but never turned into ε.

    It keeps the history (checkpoints, resumption and the comparison's checks work as for any
    other noise); :meth:`get_epsilon` and :meth:`get_delta` raise
    :class:`~product_noise.validation.UnverifiedError`: no figure exists, and none — least of
    all a Gaussian one — is given in its place. Only an audit speaks to such a run's privacy.
    """

    @classmethod
    def mechanism(cls) -> str:
        return "unverified"

    def reason(self) -> str:
        """Why this run has no verified figure."""
        families = self.unverified_families() or list(dict.fromkeys(h.family for h in self.history))
        return unverified_reason(families or ["(none recorded yet)"])

    def get_epsilon(self, delta: float | None = None, **kwargs: Any) -> float:
        """Refused: :class:`~product_noise.validation.UnverifiedError`."""
        raise UnverifiedError(self.reason())

    def get_delta(self, epsilon: float, **kwargs: Any) -> float:
        """Refused: :class:`~product_noise.validation.UnverifiedError`."""
        raise UnverifiedError(self.reason())


class PaperClaimedAccountant(IAccountant):
    """The paper's claimed composition (``product_noise_paper.md`` §7.2), labelled ``claimed``.

    Configure with :meth:`configure` (``epsilon0``, ``delta0`` per step, batch size ``B`` and
    training-set size ``N``; the paper's sampling rate is ``B/N``). The paper fixes its own
    slack ``δ̃ = 1e-8`` and *outputs* a δ'; :meth:`get_epsilon` returns ε' and
    :meth:`claimed_figure` the pair (ε', δ').
    """

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, float] = {}

    @classmethod
    def mechanism(cls) -> str:
        return "product-claimed"

    def configure(
        self, *, epsilon0: float, delta0: float, batch_size: int, num_samples: int
    ) -> None:
        self.config = {
            "epsilon0": float(epsilon0),
            "delta0": float(delta0),
            "batch_size": int(batch_size),
            "num_samples": int(num_samples),
        }

    def __len__(self) -> int:
        return len(self.history)

    def step(self, *, noise_multiplier: float = 0.0, sample_rate: float = 0.0, **_: Any) -> None:  # type: ignore[override]
        if self.history:
            self.history[-1] = (self.history[-1][0] + 1,)
        else:
            self.history.append((1,))

    @property
    def num_steps(self) -> int:
        return int(self.history[-1][0]) if self.history else 0

    def claimed_figure(self) -> PrivacyFigure | None:
        """(ε', δ') of the paper's composition after the steps taken so far, or ``None``."""
        if not self.config or self.num_steps == 0:
            return None
        c = self.config
        try:
            fig = paper_composition_at_steps(
                c["epsilon0"],
                c["delta0"],
                int(c["batch_size"]),
                int(c["num_samples"]),
                self.num_steps,
            )
        except ValueError as err:  # too few steps for the paper's formula
            return PrivacyFigure(math.nan, math.nan, CLAIMED, f"paper composition undefined: {err}")
        return PrivacyFigure(
            fig.epsilon,
            fig.delta,
            CLAIMED,
            "product-noise paper composition (KOV bound as in its code; known unsound)",
            {"steps": self.num_steps},
        )

    def get_epsilon(self, delta: float | None = None, **kwargs: Any) -> float:
        fig = self.claimed_figure()
        return 0.0 if fig is None else fig.epsilon

    def state_dict(self, destination: Any = None) -> OrderedDict:
        sd = super().state_dict(destination)
        sd["config"] = dict(self.config)
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.config = dict(state_dict.get("config", {}))


def register_accountants() -> None:
    """Register the accountants with Opacus' registry (idempotent)."""
    for cls in (
        VerifiedNoiseAccountant,
        ProductVerifiedAccountant,
        UnverifiedNoiseAccountant,
        PaperClaimedAccountant,
    ):
        if _ACCOUNTANTS.get(cls.mechanism()) is not cls:
            register_accountant(cls.mechanism(), cls, force=True)


register_accountants()
