"""Noise calibration for DP-SGD with joint noise: the smallest noise multiplier whose
**verified** ε meets a target, the paper's per-step ε₀ whose **claimed** total meets one, and
the Gaussian's multiplier at which noise without a proven profile is run.

All are used by :meth:`product_noise.PrivacyEngine.make_private_with_epsilon`; they are public
so that a sweep can calibrate once and reuse the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from opacus.accountants.utils import get_noise_multiplier

from ..accounting.calibrate import ExplicitBracket, calibrate
from ..accounting.claimed import paper_composition_at_steps
from ..accounting.pld import verified_epsilon
from ..mechanisms import Gaussian, ScaledMechanism, SphericalMechanism
from ..mechanisms.custom import MATCHED_TO_GAUSSIAN
from ..mechanisms.product import claimed_delta, solve_k
from ..validation import UnverifiedError, check_delta, check_epsilon

__all__ = [
    "calibrate_verified_noise_multiplier",
    "calibrate_paper_epsilon0",
    "gaussian_noise_multiplier",
]

#: Opacus accountants whose ε is a proven upper bound for the subsampled Gaussian
SOUND_GAUSSIAN_ACCOUNTANTS = ("prv", "rdp")


def gaussian_noise_multiplier(
    target_epsilon: float,
    target_delta: float,
    *,
    sample_rate: float,
    steps: int,
    accountant: str = "prv",
    epsilon_tolerance: float = 0.01,
    dim: int = 1,
) -> float:
    """The noise multiplier the *verified* Gaussian needs for a target (ε, δ) after ``steps``.

    What ``make_private_with_epsilon(noise="gaussian")`` runs at, and — by the convention
    :data:`~product_noise.mechanisms.custom.MATCHED_TO_GAUSSIAN` — the multiplier a mechanism
    without a proven profile is run at for the same target.

    Parameters
    ----------
    target_epsilon, target_delta : float
        The target (ε, δ).
    sample_rate : float
        Poisson sampling probability q of a step.
    steps : int
        Number of steps.
    accountant : str, default "prv"
        Opacus' accountant to calibrate on when it is sound (``"prv"``, ``"rdp"``); any other
        (``"gdp"``, an approximation) calibrates on the package's verified PLD route instead.
    epsilon_tolerance : float, default 0.01
        Opacus' absolute tolerance on ε (the PLD route uses ``epsilon_tolerance/ε`` relative).
    dim : int, default 1
        Number of noised values (the Gaussian's profile does not depend on it).

    Returns
    -------
    noise_multiplier : float
        σ/C.
    """
    if accountant in SOUND_GAUSSIAN_ACCOUNTANTS:
        return float(
            get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=target_delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=accountant,
                epsilon_tolerance=epsilon_tolerance,
            )
        )
    # never calibrate on GDP's approximation: use the verified PLD route
    return calibrate_verified_noise_multiplier(
        Gaussian,
        target_epsilon,
        target_delta,
        dim=max(dim, 1),
        sample_rate=sample_rate,
        steps=steps,
        rtol=min(epsilon_tolerance / target_epsilon, 0.5),
    )


def calibrate_verified_noise_multiplier(
    family: type[ScaledMechanism],
    target_epsilon: float,
    target_delta: float,
    *,
    dim: int,
    sample_rate: float,
    steps: int,
    value_discretization_interval: float = 1e-4,
    rtol: float = 0.01,
    coarse_discretization: float = 1e-3,
    guess: float | None = None,
    slope: float | None = None,
    mechanism_factory: Callable[[float], Any] | None = None,
    max_evals: int = 60,
) -> float:
    """Smallest noise multiplier (scale/C), up to ``rtol``, whose verified ε over ``steps`` is
    ≤ the target at ``value_discretization_interval`` (the grid the accountant reports on).

    The search runs on the coarser pessimistic PLD grid ``coarse_discretization`` (its ε is an
    upper bound on the finer grid's, so it can only overestimate ε: every scale it accepts is
    safe): safeguarded secant steps on ``ln ε`` against ``ln(scale)``, stopping as soon as the
    coarse ε lies in ``[(1 − rtol)·target, target]``. The answer is then checked once on the
    reporting grid; should that check ever fail, the search continues on the reporting grid.

    ``guess`` is the first scale tried and ``slope`` the first estimate of ``d ln ε / d ln σ``
    (by default derived from Opacus' Gaussian calibration and the family). ``mechanism_factory``
    builds the mechanism at a noise multiplier (default ``family(dim, nm, 1.0)``; a caching
    factory lets the caller share privacy-profile evaluations). Raises ``ValueError`` if no
    scale ≤ 1e15 reaches the target.

    ``family`` is any :class:`~product_noise.mechanisms.ScaledMechanism` with a proven profile
    (a spherical law, or a user's :class:`~product_noise.mechanisms.ProfileMechanism`): the
    search needs only its :meth:`~product_noise.mechanisms.Mechanism.privacy_profile`. A family
    without one raises :class:`~product_noise.validation.UnverifiedError` (see
    :func:`gaussian_noise_multiplier` for the multiplier such noise is run at).
    """
    if not getattr(family, "provable", True):
        raise UnverifiedError(
            f"noise {getattr(family, 'name', family)!r} has no proven privacy profile: no "
            f"verified calibration exists (convention for such noise: {MATCHED_TO_GAUSSIAN})"
        )
    target_epsilon = check_epsilon(target_epsilon, "target_epsilon")
    target_delta = check_delta(target_delta, "target_delta")
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    make = mechanism_factory or (lambda nm: family(dim, nm, 1.0))
    name = getattr(family, "name", "")
    if guess is None or slope is None:
        g0, s0 = _initial_noise_multiplier(
            family, target_epsilon, target_delta, dim, sample_rate, steps
        )
        guess = g0 if guess is None else guess
        slope = s0 if slope is None else slope
    coarse = max(coarse_discretization, value_discretization_interval)

    def eps_at(disc: float) -> Callable[[float], float]:
        return _log_scale_epsilon(make, sample_rate, steps, target_delta, disc)

    x, evals = _secant_search(
        eps_at(coarse), target_epsilon, rtol, math.log(guess), slope, max_evals, name
    )
    if coarse == value_discretization_interval:
        return math.exp(x)
    fine = eps_at(value_discretization_interval)
    if fine(x) <= target_epsilon:
        return math.exp(x)
    # the coarse grid did not dominate here: search again on the reporting grid, from above
    x, _ = _secant_search(fine, target_epsilon, rtol, x + 0.01, slope, max_evals, name)
    return math.exp(x)


def _initial_noise_multiplier(
    family: type[ScaledMechanism],
    target_epsilon: float,
    target_delta: float,
    dim: int,
    q: float,
    steps: int,
) -> tuple[float, float]:
    """A first scale near the answer and a first slope ``d ln ε / d ln σ``: Opacus' (RDP)
    Gaussian multiplier, spread over the noise norm of ``dim`` values (for other spherical
    laws: the multiplier of equal expected noise norm)."""
    name = getattr(family, "name", "")
    try:
        g = float(
            get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=target_delta,
                sample_rate=q,
                steps=steps,
                accountant="rdp",
                epsilon_tolerance=0.05,
            )
        )
    except Exception:  # noqa: BLE001 - only a starting point
        return 1.0, -1.0
    if name == "l2":  # E‖n‖ = Mθ against the Gaussian's ≈ σ√M
        return g / math.sqrt(dim), -1.0
    if name == "product":  # far more noise, and a steep ε(σ) (heavy tail)
        return g * math.sqrt(dim) * 1e5, -4.0
    return g * _norm_ratio(family, dim), -1.0


def _norm_ratio(family: type[ScaledMechanism], dim: int) -> float:
    """``E‖n‖`` of the unit Gaussian over that of the unit member of a spherical ``family``
    (exact, from the radial laws); 1 for other families or when it is not finite."""
    if not (isinstance(family, type) and issubclass(family, SphericalMechanism)):
        return 1.0
    if issubclass(family, Gaussian):
        return 1.0
    try:
        ratio = Gaussian(dim, 1.0).expected_norm / family(dim, 1.0, 1.0).expected_norm
    except (ArithmeticError, ValueError):
        return 1.0
    return ratio if math.isfinite(ratio) and ratio > 0 else 1.0


def _log_scale_epsilon(
    make: Callable[[float], Any], sample_rate: float, steps: int, delta: float, disc: float
) -> Callable[[float], float]:
    """``x ↦`` the verified ε over ``steps`` at noise multiplier ``exp(x)`` on the PLD grid
    ``disc``."""

    def eps_of(x: float) -> float:
        return verified_epsilon(
            make(math.exp(x)).privacy_profile(),
            sampling_prob=sample_rate,
            num_steps=steps,
            delta=delta,
            value_discretization_interval=disc,
        )

    return eps_of


def _secant_search(
    eps_of: Callable[[float], float],
    target: float,
    rtol: float,
    x: float,
    slope: float,
    max_evals: int,
    name: str,
) -> tuple[float, int]:
    """``(x, evaluations)``: ``x = ln(scale)`` with ``eps_of(x)`` in
    ``[(1 − rtol)·target, target]``, or the smallest safe ``x`` found when the bracket
    closes or the evaluations run out."""
    aim = math.log(target * (1.0 - rtol / 2.0))
    lo: tuple[float, float] | None = None  # (x, ε) with ε > target
    hi: tuple[float, float] | None = None  # (x, ε) with ε ≤ target
    last: tuple[float, float] | None = None
    evals = 0
    while evals < max_evals:
        e = eps_of(x)
        evals += 1
        if e <= target:
            if hi is None or x < hi[0]:
                hi = (x, e)
            if e >= target * (1.0 - rtol):
                return x, evals
        elif lo is None or x > lo[0]:
            lo = (x, e)
        if math.isfinite(e) and e > 0:
            if last is not None and x != last[0] and e != last[1]:
                s = (math.log(e) - math.log(last[1])) / (x - last[0])
                if s < 0:
                    slope = max(min(s, -0.05), -20.0)
            last = (x, e)
        next_x = _next_log_scale(x, e, lo, hi, aim, slope, target, name)
        if next_x is None:
            break
        x = next_x
    if hi is None:
        raise ValueError(f"calibration did not reach epsilon = {target} in {max_evals} steps")
    return hi[0], evals


def _next_log_scale(
    x: float,
    e: float,
    lo: tuple[float, float] | None,
    hi: tuple[float, float] | None,
    aim: float,
    slope: float,
    target: float,
    name: str,
) -> float | None:
    """The secant search's next ``ln(scale)`` after ``eps_of(x) = e``: inside the bracket
    ``(lo, hi)`` once there is one, else a safeguarded secant step towards ``aim``; ``None``
    when the bracket has closed."""
    big, top = math.log(1e3), math.log(1e15)
    if lo is not None and hi is not None:
        w = hi[0] - lo[0]
        if w < 1e-6:
            return None
        if math.isfinite(lo[1]) and hi[1] > 0:
            t = (math.log(lo[1]) - aim) / (math.log(lo[1]) - math.log(hi[1]))
            return lo[0] + min(max(t, 0.1), 0.9) * w
        return lo[0] + 0.5 * w
    if hi is None:  # too little noise so far
        x += big if not math.isfinite(e) else min((math.log(e) - aim) / -slope, big)
        if x > top:
            raise ValueError(f"no {name or 'joint'} noise ≤ 1e15·C reaches epsilon = {target}")
        return x
    # too much noise so far
    return x - (big if e <= 0 else min((aim - math.log(e)) / -slope, big))


def calibrate_paper_epsilon0(
    target_epsilon: float,
    target_delta: float,
    *,
    dim: int,
    batch_size: int,
    num_samples: int,
    steps: int,
    k: float | None = None,
    q: float | None = None,
) -> tuple[float, float]:
    """The paper's calibration for a target *claimed* (ε, δ) after ``steps``: returns (ε₀, k).

    With ``k`` given, ε₀ solves the paper's composition ε' = target. Without it, ``k`` is also
    chosen so that the composition's δ' equals ``target_delta``.
    """

    def claimed(eps0: float, k_: float) -> tuple[float, float]:
        d0 = claimed_delta(eps0, dim, k_, q)
        fig = paper_composition_at_steps(eps0, d0, batch_size, num_samples, steps)
        return fig.epsilon, fig.delta

    def k_for(eps0: float) -> float:
        if k is not None:
            return k

        # δ' grows with the per-step δ0: the largest ln δ0 whose composed δ' meets target_delta
        def composed_delta(log_d0: float) -> float:
            try:
                return claimed(eps0, solve_k(eps0, dim, math.exp(log_d0), q))[1]
            except ValueError:  # no k > 1 gives this δ0: treat as too large
                return math.inf

        log_d0 = calibrate(
            composed_delta,
            target_delta,
            ExplicitBracket(math.log(1e-30), math.log(0.5)),
            increasing=True,
            tol=1e-10,
            method="bisect",
        )
        return solve_k(eps0, dim, math.exp(log_d0), q)

    def composed_epsilon(eps0: float) -> float:
        try:
            return claimed(eps0, k_for(eps0))[0]
        except ValueError:
            return math.inf

    eps0 = calibrate(
        composed_epsilon,
        target_epsilon,
        ExplicitBracket(1e-6, 10.0),
        increasing=True,
        tol=1e-9,
        log_scale=True,
        method="bisect",
    )
    return eps0, k_for(eps0)
