"""Mechanisms a user defines: a radial law, a sampler with its privacy profile, or a sampler only.

:func:`product_noise.register_mechanism` builds one of three families from what the user can
prove, and checks it before anything trains (:func:`check_family`):

* **radial** — ``radial(dim) -> SGG``, the radius law at scale 1 of a spherically symmetric
  noise (:class:`~product_noise.mechanisms.spherical.SGG`, the spherical generalised-gamma
  family, covers the Gaussian, product noise, the ℓ2 mechanism and the generalised-gamma
  mechanisms of Wei, Bienstock & Polychroniadou, ICML 2026, arXiv 2606.08681). The family is a
  :class:`~product_noise.mechanisms.base.SphericalMechanism`: exact profile, calibration, the
  verified DP-SGD accountant and objective perturbation come with it (:class:`RadialMechanism`).
* **sampler + profile** — ``sampler(rng, n, dim)`` draws ``n`` unit-scale noise vectors and
  ``profile(eps, dim, noise_multiplier)`` is the user's *proven* privacy profile δ(ε) of the
  noise ``noise_multiplier · N₁`` for every pair of neighbouring outputs at shift norm ≤ 1
  (both orders). Figures computed from it are labelled ``verified``: the proof is the user's
  (:class:`ProfileMechanism`).
* **sampler only** (optionally a ``claim(epsilon, delta, dim) -> noise_multiplier`` formula) —
  nothing is proven, so nothing is verified: every report says ``unverified``, a verified figure
  is refused with :class:`~product_noise.validation.UnverifiedError`, and the mechanism can
  still be audited for an empirical lower bound (:class:`UnverifiedMechanism`).

Where a target (ε, δ) must choose the scale of an unverified mechanism without a claim (and in
DP-SGD, where a one-release claim does not compose), the package runs it at the noise
multiplier the verified Gaussian needs for the same target (:data:`MATCHED_TO_GAUSSIAN`): the
comparison is then "as much noise as the Gaussian, no proof", and only an audit speaks to its
privacy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..privacy import CLAIMED, PrivacyFigure
from ..validation import InputError, UnverifiedError, check_delta, check_epsilon, check_positive
from .base import MIN_DELTA, ScaledMechanism, SeedLike, SphericalMechanism
from .spherical import MIN_EXACT_DIM, SGG

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "RadialMechanism",
    "ProfileMechanism",
    "UnverifiedMechanism",
    "MATCHED_TO_GAUSSIAN",
    "Sampler",
    "TorchSampler",
    "Profile",
    "Claim",
    "make_family",
    "check_family",
]

#: numpy sampler: ``sampler(rng, n, dim) -> ndarray of shape (n, dim)`` at unit scale
Sampler = Callable[[np.random.Generator, int, int], np.ndarray]
#: torch sampler: ``torch_sampler(tensors, generator) -> list of tensors`` (one joint unit draw)
TorchSampler = Callable[[Sequence["torch.Tensor"], "torch.Generator | None"], list["torch.Tensor"]]
#: proven profile: ``profile(eps, dim, noise_multiplier) -> δ`` (one float ε, one float δ)
Profile = Callable[[float, int, float], float]
#: claimed one-release calibration: ``claim(epsilon, delta, dim) -> noise_multiplier``
Claim = Callable[[float, float, int], float]

#: how an unverified mechanism without a usable claim is scaled for a target (ε, δ)
MATCHED_TO_GAUSSIAN = (
    "run at the noise multiplier of the verified Gaussian for the same target; no privacy proven"
)
_MC_DRAWS = 4096
_PROBE_DIM = 6
_PROBE_EPS = np.array([0.0, 0.05, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
_PROBE_NM = (0.5, 1.0, 2.0, 8.0)


class RadialMechanism(SphericalMechanism):
    """A user's spherically symmetric noise: ``scale · R₁ · H`` with ``R₁ ~ radial(dim)``.

    Everything (exact profile, calibration, the DP-SGD accountant) is the spherical machinery
    of :class:`~product_noise.mechanisms.base.SphericalMechanism`; a subclass made by
    :func:`make_family` only sets :attr:`radial`.
    """

    #: the unit-scale radius law of dimension ``dim`` (set by :func:`make_family`)
    radial: ClassVar[Callable[[int], SGG]]

    @classmethod
    def _unit_law(cls, dim: int) -> SGG:
        cache: dict[int, SGG] = cls.__dict__.get("_laws") or {}
        if "_laws" not in cls.__dict__:
            cls._laws = cache  # type: ignore[attr-defined]  # per class, not inherited
        if dim not in cache:
            got = cls.radial(dim)
            if not isinstance(got, SGG) or got.dim != dim:
                raise InputError(
                    f"radial law of mechanism {cls.name!r} must return an SGG of dimension "
                    f"{dim}, got {got!r}"
                )
            cache[dim] = got
        return cache[dim]


class ProfileMechanism(ScaledMechanism):
    """A user's noise ``scale · N₁`` (``N₁`` from :attr:`sampler`) with a proven profile.

    :meth:`delta` is ``profile(eps, M, scale/Δ)``, the user's privacy profile (a statement for
    every shift of norm ≤ Δ in both orders). Sampling on tensors uses :attr:`torch_sampler` if
    given, else one NumPy draw seeded from the torch generator (so a seeded generator gives a
    reproducible draw) copied to the tensors' device and dtype.
    """

    sampler: ClassVar[Sampler]
    torch_sampler: ClassVar[TorchSampler | None] = None
    profile: ClassVar[Profile | None] = None
    profile_source: ClassVar[str] = "the user's proven privacy profile"
    min_dim: ClassVar[int] = 1

    # ---------------------------------------------------------------- sampling
    def _unit(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raw = np.asarray(type(self).sampler(rng, n, self.dim))
        if raw.dtype.kind != "f":
            raise InputError(
                f"sampler of mechanism {self.name!r} must return a floating-point array, got "
                f"dtype {raw.dtype}"
            )
        out = raw.astype(np.float64, copy=False)
        if out.shape != (n, self.dim) or not np.all(np.isfinite(out)):
            raise InputError(
                f"sampler of mechanism {self.name!r} must return finite values of shape "
                f"({n}, {self.dim}), got shape {out.shape}"
            )
        return out

    def sample(self, size: int | None = None, *, rng: SeedLike = None) -> np.ndarray:
        """Draw noise vectors, shape ``(M,)`` or ``(size, M)`` (float64).

        Parameters
        ----------
        size : int, optional
            Number of vectors; ``None`` draws one vector of shape ``(M,)``.
        rng : int, SeedSequence, BitGenerator, Generator or None
            Anything :func:`numpy.random.default_rng` accepts.

        Returns
        -------
        noise : ndarray of shape (M,) or (size, M), dtype float64
            ``scale`` times the user's unit-scale draws.
        """
        out = self.scale * self._unit(np.random.default_rng(rng), 1 if size is None else size)
        return out[0] if size is None else out

    def sample_like(
        self, tensors: Sequence[torch.Tensor], *, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Draw one noise vector over all ``tensors`` jointly (their total size must be M).

        Parameters
        ----------
        tensors : sequence of torch.Tensor
            Templates whose ``numel()`` sum to M.
        generator : torch.Generator, optional
            Source of randomness (seeds the NumPy sampler when there is no torch sampler).

        Returns
        -------
        noise : list of torch.Tensor
            Tensors shaped like ``tensors`` (same dtype and device), one joint draw.

        Raises
        ------
        ValueError
            If the tensors do not hold exactly M values in total.
        """
        import torch

        total = sum(int(t.numel()) for t in tensors)
        if total != self.dim:
            raise ValueError(
                f"the tensors hold {total} values but this mechanism has dimension M={self.dim}"
            )
        ts = type(self).torch_sampler
        if ts is not None:
            return [n.mul_(self.scale) for n in ts(list(tensors), generator)]
        device = generator.device if generator is not None else None
        draw = torch.randint(0, 2**62, (), generator=generator, dtype=torch.int64, device=device)
        seed = int(draw)
        flat = self.sample(rng=seed)
        out, at = [], 0
        for t in tensors:
            k = int(t.numel())
            piece = torch.from_numpy(flat[at : at + k].reshape(t.shape))
            out.append(piece.to(device=t.device, dtype=t.dtype))
            at += k
        return out

    # ---------------------------------------------------------------- norms
    def _unit_moments(self) -> tuple[float, float]:
        cache: dict[int, tuple[float, float]] = type(self).__dict__.get("_moments") or {}
        if "_moments" not in type(self).__dict__:
            type(self)._moments = cache  # type: ignore[attr-defined]
        if self.dim not in cache:
            rng = np.random.default_rng(0)
            rows = max(1, min(_MC_DRAWS, 2**21 // self.dim))  # ≤ 16 MB of float64 per chunk
            norms = np.concatenate(
                [
                    np.linalg.norm(self._unit(rng, min(rows, _MC_DRAWS - at)), axis=1)
                    for at in range(0, _MC_DRAWS, rows)
                ]
            )
            cache[self.dim] = (float(norms.mean()), float((norms**2).mean()))
        return cache[self.dim]

    @property
    def expected_norm(self) -> float:
        """``E‖n‖`` (Monte Carlo over 4,096 seeded draws: a utility figure, not a privacy one)."""
        return self.scale * self._unit_moments()[0]

    @property
    def expected_sq_norm(self) -> float:
        """``E‖n‖²`` (Monte Carlo over 4,096 seeded draws)."""
        return self.scale**2 * self._unit_moments()[1]

    # ---------------------------------------------------------------- privacy
    @classmethod
    def _profile_at(cls, eps: np.ndarray, dim: int, noise_multiplier: float) -> np.ndarray:
        assert cls.profile is not None
        eps = np.asarray(eps, dtype=float)
        # called once per scalar ε: a user's profile need not be vectorised
        try:
            out = np.array([float(cls.profile(float(e), dim, noise_multiplier)) for e in eps.flat])
        except (TypeError, ValueError) as err:
            raise InputError(
                f"privacy profile of mechanism {cls.name!r} must return one float δ for a float "
                f"ε: {err}"
            ) from err
        out = out.reshape(eps.shape)
        if np.any(~np.isfinite(out)) or np.any(out < 0) or np.any(out > 1):
            raise InputError(
                f"privacy profile of mechanism {cls.name!r} returned δ outside [0, 1] at "
                f"dim={dim}, noise_multiplier={noise_multiplier:g}"
            )
        return out

    def delta(self, epsilon: float | np.ndarray) -> float | np.ndarray:
        """The user's verified profile at this member: ``profile(ε, M, scale/Δ)``.

        Parameters
        ----------
        epsilon : float or ndarray
            ε ≥ 0, a scalar or an array.

        Returns
        -------
        delta : float or ndarray
            δ(ε), with the shape of ``epsilon``.
        """
        eps = np.asarray(epsilon, dtype=float)
        out = self._profile_at(np.atleast_1d(eps), self.dim, self.noise_multiplier)
        return float(out[0]) if eps.ndim == 0 else out.reshape(eps.shape)

    @classmethod
    def _delta_for_scale(
        cls, epsilon: float, dim: int, sensitivity: float, scale: float, sup: bool
    ) -> float:
        return float(cls._profile_at(np.array([epsilon]), dim, scale / sensitivity)[0])


class UnverifiedMechanism(ProfileMechanism):
    """A user's noise with a sampler only: auditable, never verified.

    :meth:`delta`, :meth:`epsilon`, :meth:`verified` and :meth:`privacy_profile` raise
    :class:`~product_noise.validation.UnverifiedError`. :meth:`calibrate` uses the user's
    claimed formula (if any) and labels the result ``claimed``.
    """

    provable: ClassVar[bool] = False
    #: the claimed one-release calibration, if the user gave one
    claim: ClassVar[Claim | None] = None

    def __init__(self, dim: int, scale: float, sensitivity: float = 1.0) -> None:
        super().__init__(dim, scale, sensitivity)
        self._claimed: PrivacyFigure | None = None

    def _refuse(self) -> UnverifiedError:
        return UnverifiedError(
            f"mechanism {self.name!r} is unverified (a sampler without a proven privacy "
            "profile): it has no verified privacy figure; audit it for an empirical lower bound"
        )

    def delta(self, epsilon: float | np.ndarray) -> float | np.ndarray:
        raise self._refuse()

    def epsilon(self, delta: float) -> float:
        raise self._refuse()

    def verified(
        self, *, epsilon: float | None = None, delta: float | None = None
    ) -> PrivacyFigure:
        raise self._refuse()

    def privacy_profile(self) -> Callable[[np.ndarray], np.ndarray]:
        raise self._refuse()

    @classmethod
    def _delta_for_scale(
        cls, epsilon: float, dim: int, sensitivity: float, scale: float, sup: bool
    ) -> float:
        raise UnverifiedError(f"mechanism {cls.name!r} is unverified: no profile to calibrate on")

    @classmethod
    def calibrate_scale(
        cls, epsilon: float, delta: float, dim: int, sensitivity: float = 1.0
    ) -> float:
        """The scale of the user's claimed formula (``claim(ε, δ, M) · Δ``); none: an error.

        Raises
        ------
        UnverifiedError
            If the mechanism was registered without ``claim=``.
        """
        epsilon, delta = check_epsilon(epsilon), check_delta(delta)
        sensitivity = check_positive("sensitivity", sensitivity)
        if cls.claim is None:
            raise UnverifiedError(
                f"mechanism {cls.name!r} is unverified and has no claimed formula: give its "
                "noise multiplier, or register it with claim="
            )
        nm = check_positive(
            f"noise multiplier claimed by {cls.name!r}", cls.claim(epsilon, delta, dim)
        )
        return nm * sensitivity

    @classmethod
    def calibrate(
        cls, epsilon: float, delta: float, dim: int, sensitivity: float = 1.0
    ) -> UnverifiedMechanism:
        """The member the user's claim says is (ε, δ)-DP; :meth:`claimed` then returns it."""
        mech = cls(dim, cls.calibrate_scale(epsilon, delta, dim, sensitivity), sensitivity)
        mech._claimed = PrivacyFigure(
            float(epsilon), float(delta), CLAIMED, f"claimed formula of {cls.name!r} (unproven)"
        )
        return mech

    def claimed(self) -> PrivacyFigure | None:
        """The user's claim for this member, if it was built by :meth:`calibrate`."""
        return self._claimed


# --------------------------------------------------------------------------- construction
def make_family(
    name: str,
    *,
    radial: Callable[[int], SGG] | None = None,
    sampler: Sampler | None = None,
    torch_sampler: TorchSampler | None = None,
    profile: Profile | None = None,
    claim: Claim | None = None,
    scale_name: str = "scale",
    min_dim: int | None = None,
) -> type[ScaledMechanism]:
    """The mechanism class of a user's law (see the module docstring for the three kinds).

    Parameters
    ----------
    name : str
        Registry name (the class' :attr:`~Mechanism.name`).
    radial : callable, optional
        ``radial(dim) -> SGG`` at unit scale. Excludes ``sampler``, ``profile``, ``claim``.
    sampler : callable, optional
        ``sampler(rng, n, dim) -> ndarray (n, dim)``, unit-scale NumPy draws.
    torch_sampler : callable, optional
        ``torch_sampler(tensors, generator) -> list of tensors``, one joint unit-scale draw on
        the tensors' device and dtype (default: the NumPy sampler, seeded from ``generator``).
    profile : callable, optional
        ``profile(eps, dim, noise_multiplier) -> δ``, a proven profile at sensitivity 1.
    claim : callable, optional
        ``claim(epsilon, delta, dim) -> noise_multiplier``, an unproven calibration (sampler-only
        mechanisms).
    scale_name : str, default "scale"
        Name of the scale parameter in descriptions and configs.
    min_dim : int, optional
        Smallest supported dimension (default: 4 for a radial law, 1 otherwise).

    Returns
    -------
    cls : type of ScaledMechanism
        A :class:`RadialMechanism`, :class:`ProfileMechanism` or :class:`UnverifiedMechanism`
        subclass.

    Raises
    ------
    InputError
        If the combination of arguments is not one of the three kinds.
    """
    if not isinstance(scale_name, str) or not scale_name.isidentifier():
        raise InputError(f"scale_name must be an identifier, got {scale_name!r}")
    attrs: dict[str, Any] = {"name": name, "scale_name": scale_name, "__module__": __name__}
    if radial is not None:
        if any(x is not None for x in (sampler, torch_sampler, profile, claim)):
            raise InputError(
                f"mechanism {name!r}: a radial law brings its own sampler and exact profile; "
                "do not also give sampler=, torch_sampler=, profile= or claim="
            )
        _check_callable("radial", radial)
        attrs.update(radial=staticmethod(radial), min_dim=min_dim or MIN_EXACT_DIM)
        base: type[ScaledMechanism] = RadialMechanism
    elif sampler is not None:
        _check_callable("sampler", sampler)
        if torch_sampler is not None:
            _check_callable("torch_sampler", torch_sampler)
        attrs.update(sampler=staticmethod(sampler), min_dim=min_dim or 1)
        attrs["torch_sampler"] = None if torch_sampler is None else staticmethod(torch_sampler)
        if profile is not None:
            if claim is not None:
                raise InputError(
                    f"mechanism {name!r}: a proven profile makes claim= pointless; give one"
                )
            _check_callable("profile", profile)
            attrs["profile"] = staticmethod(profile)
            base = ProfileMechanism
        else:
            if claim is not None:
                _check_callable("claim", claim)
            attrs["claim"] = None if claim is None else staticmethod(claim)
            base = UnverifiedMechanism
    else:
        raise InputError(
            f"mechanism {name!r} needs radial= (a radius law) or sampler= (with profile= if its "
            "privacy is proven)"
        )
    cls_name = "".join(p.capitalize() for p in name.split("_")) + "Mechanism"
    return type(cls_name, (base,), attrs)


def _check_callable(what: str, fn: object) -> None:
    if not callable(fn):
        raise InputError(f"{what}= must be callable, got {type(fn).__name__}")


def check_family(cls: type[ScaledMechanism]) -> None:
    """Probe a mechanism class before it is registered; one clear error if it misbehaves.

    Checks the NumPy sampler (shape, dtype, finiteness, the same draw for the same seed), the
    torch sampler (one joint draw shaped like a list of templates, their dtype, seeded), and
    for a profile: δ in [0, 1], non-increasing in ε and in the noise multiplier.

    Raises
    ------
    InputError
        Naming the mechanism and what failed.
    """
    dim = max(_PROBE_DIM, cls.min_dim)
    mech = cls(dim, 1.5, 1.0)
    _probe_numpy(cls.name, mech, dim)
    _probe_torch(cls.name, mech, dim)
    if isinstance(mech, SphericalMechanism):
        _ = mech.law  # an SGG of this dimension (a radial law is checked there)
    elif cls.provable:
        _probe_profile(cls, dim)


def _probe_numpy(name: str, mech: ScaledMechanism, dim: int) -> None:
    try:
        a, b, one = mech.sample(3, rng=7), mech.sample(3, rng=7), mech.sample(rng=1)
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"sampler of mechanism {name!r} failed: {err}") from err
    if a.dtype != np.float64 or a.shape != (3, dim) or one.shape != (dim,):
        raise InputError(
            f"sampler of mechanism {name!r} must give float64 arrays of shape (n, dim)"
        )
    if not np.array_equal(a, b):
        raise InputError(f"sampler of mechanism {name!r} ignores its rng (two seeded draws differ)")
    if np.array_equal(a[0], one) or np.array_equal(a[0], a[1]):
        raise InputError(f"sampler of mechanism {name!r} is not random (distinct draws are equal)")


def _probe_torch(name: str, mech: ScaledMechanism, dim: int) -> None:
    import torch

    split = (dim // 2, dim - dim // 2)
    for dtype in (torch.float32, torch.float64):
        ts = [torch.zeros(split[0], dtype=dtype), torch.zeros((1, split[1]), dtype=dtype)]
        draws = []
        for _ in range(2):
            gen = torch.Generator().manual_seed(3)
            try:
                out = mech.sample_like(ts, generator=gen)
            except InputError:
                raise
            except Exception as err:
                raise InputError(f"torch sampler of mechanism {name!r} failed: {err}") from err
            ok = len(out) == len(ts) and all(
                isinstance(o, torch.Tensor) and o.shape == t.shape and o.dtype == t.dtype
                for o, t in zip(out, ts)
            )
            if not ok:
                raise InputError(
                    f"torch sampler of mechanism {name!r} must return one tensor per template, "
                    "with its shape and dtype"
                )
            draws.append(torch.cat([o.reshape(-1).double() for o in out]))
        if not bool(torch.isfinite(draws[0]).all()) or not torch.equal(*draws):
            raise InputError(
                f"torch sampler of mechanism {name!r} must give finite values, the same for the "
                "same generator seed"
            )


def _probe_profile(cls: type[ScaledMechanism], dim: int) -> None:
    rows = []
    for nm in _PROBE_NM:
        try:
            rows.append(np.asarray(cls(dim, nm, 1.0).delta(_PROBE_EPS), dtype=float))
        except InputError:
            raise
        except Exception as err:
            raise InputError(f"privacy profile of mechanism {cls.name!r} failed: {err}") from err
    d = np.array(rows)
    tol = 1e-12
    if np.any(np.diff(d, axis=1) > tol):
        raise InputError(
            f"privacy profile of mechanism {cls.name!r} is not non-increasing in ε "
            f"(ε grid {_PROBE_EPS.tolist()}, dim={dim})"
        )
    if np.any(np.diff(d, axis=0) > tol):
        raise InputError(
            f"privacy profile of mechanism {cls.name!r} is not non-increasing in the noise "
            f"multiplier (grid {list(_PROBE_NM)}, dim={dim}); calibration needs that"
        )
    if float(d[-1, -1]) >= 1.0 - MIN_DELTA:
        raise InputError(
            f"privacy profile of mechanism {cls.name!r} is 1 everywhere probed: it proves nothing"
        )
