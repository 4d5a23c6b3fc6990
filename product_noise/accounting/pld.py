"""Verified (rigorous, pessimistic) PLD accounting from a base privacy profile.

Given only the privacy profile (hockey-stick divergence curve) of a *symmetric* additive noise
mechanism at the sensitivity, this module builds a privacy loss distribution (PLD) of the
Poisson-subsampled mechanism under add/remove adjacency that **dominates** the true one, and
composes it numerically with ``dp_accounting``. Every figure derived from it is a **verified**
figure: an upper bound on the true epsilon (or delta), up to the accuracy of the profile values
supplied by the caller and floating-point round-off.

Route (PLD accounting as in Meiser & Mohammadi 2018, Koskela et al. 2020 and ``dp_accounting``):

1. Evaluate the base profile ``d(ε')``, ``ε' >= 0``, once, on nodes: step 0.01 on ``[0, 20]``,
   then geometric with ratio 1.01 up to the image ``ln(1 + (e^E - 1)/q)`` of the grid end ``E``.
2. Between nodes, bound ``d`` by the chord in ``α' = e^{ε'}`` (a hockey-stick curve is convex
   and non-increasing in ``α'``, so chords lie above it); beyond the last node use the last
   value; take a running minimum (the minimum of upper bounds of a non-increasing function is
   an upper bound).
3. Map to the REMOVE and ADD profiles of the subsampled mechanism with the exact subsampling
   identities (:func:`subsampled_remove_delta`, :func:`subsampled_add_delta`); they are
   non-negative combinations / perspectives of ``d``, so an upper bound on ``d`` gives upper
   bounds on both.
4. Pessimistic connect-the-dots (Doroshenko et al. 2022, Alg. 1) on the grid
   ``disc * Z``: the resulting PMF's hockey-stick curve is the chord interpolation (in
   ``e^ε``) of the given values, which lies above the true convex curve; all mass above the
   grid end goes to the infinity mass ``δ(E)``, so there is no truncation error.
5. ``dp_accounting`` composes (FFT; truncated tail mass is added to the infinity mass), and
   composing per-step dominating pairs dominates the adaptive composition (Zhu, Dong, Wang
   2022, Thm 10).

Not certified: the accuracy of the profile values supplied by the caller, FFT round-off
(~1e-15) and the clipping of tiny negative masses caused by round-off in connect-the-dots.

References
----------
.. [1] S. Meiser and E. Mohammadi, "Tight on budget? Tight bounds for r-fold approximate
       differential privacy", ACM CCS 2018.
.. [2] A. Koskela, J. Jälkö and A. Honkela, "Computing tight differential privacy guarantees
       using FFT", AISTATS 2020.
.. [3] V. Doroshenko, B. Ghazi, P. Kamath, R. Kumar and P. Manurangsi, "Connect the dots:
       tighter discrete approximations of privacy loss distributions", PETS 2022.
.. [4] Y. Zhu, J. Dong and Y.-X. Wang, "Optimal accounting of differential privacy via
       characteristic function", AISTATS 2022.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
from dp_accounting.pld import pld_pmf
from dp_accounting.pld.privacy_loss_distribution import PrivacyLossDistribution

__all__ = [
    "ProfileFn",
    "subsampled_remove_delta",
    "subsampled_add_delta",
    "pld_from_profile",
    "compose_plds",
    "infinity_mass",
    "verified_epsilon",
    "verified_delta",
]

ProfileFn = Callable[[np.ndarray], np.ndarray]
"""Vectorised base privacy profile: ``δ(ε')`` for an array of ``ε' >= 0``."""

_NODE_STEP = 0.01  # uniform node step on [0, _NODE_LINEAR_END]
_NODE_LINEAR_END = 20.0
_NODE_RATIO = 1.01  # geometric node ratio beyond _NODE_LINEAR_END
_MAX_GRID_END = 60.0  # cap of the automatic grid end
_GRID_END_CANDIDATES = np.arange(1.0, _MAX_GRID_END + 0.25, 0.5)
_INF_MASS_FRACTION = 1e-3  # automatic rule: num_steps * δ_rem(E) <= 1e-3 * target delta
_PROFILE_TOLERANCE = 1e-6  # profile values outside [-tol, 1 + tol] are rejected


# --------------------------------------------------------------------------- helpers
def _check_sampling_prob(sampling_prob: float) -> float:
    q = float(sampling_prob)
    if not 0 < q <= 1:
        raise ValueError(f"sampling_prob must be in (0, 1], got {sampling_prob!r}")
    return q


def _log1m(q: float) -> float:
    """ln(1 - q), -inf for q = 1."""
    return math.log1p(-q) if q < 1 else -math.inf


def _image_of(epsilon: float, q: float) -> float:
    """Base-pair ε' reached by the REMOVE profile at ε: ln(1 + (e^ε - 1)/q)."""
    return math.log(q + math.expm1(epsilon)) - math.log(q)


def _base_nodes(q: float, grid_end: float) -> np.ndarray:
    """ε' nodes: step 0.01 on [0, min(20, top)], then geometric x1.01, last node >= top."""
    top = _image_of(grid_end, q)
    n_lin = max(1, math.ceil(min(_NODE_LINEAR_END, top) / _NODE_STEP - 1e-9))
    lin = _NODE_STEP * np.arange(n_lin + 1)
    if top <= lin[-1]:
        return lin
    k = math.ceil(math.log(top / lin[-1]) / math.log(_NODE_RATIO))
    return np.concatenate([lin, lin[-1] * _NODE_RATIO ** np.arange(1, k + 1)])


def _evaluate_profile(profile: ProfileFn, nodes: np.ndarray) -> np.ndarray:
    """One vectorised call of the profile, validated and clipped to [0, 1]."""
    vals = np.asarray(profile(nodes), dtype=np.float64)
    if vals.shape != nodes.shape:
        raise ValueError(
            f"profile returned shape {vals.shape} for input shape {nodes.shape}: it must be "
            "vectorised (one value per ε')"
        )
    if not np.all(np.isfinite(vals)):
        raise ValueError("profile returned non-finite values")
    if vals.min() < -_PROFILE_TOLERANCE or vals.max() > 1 + _PROFILE_TOLERANCE:
        raise ValueError(
            f"profile values must lie in [0, 1], got range [{vals.min()!r}, {vals.max()!r}]"
        )
    # max(v, 0) and min(v, 1) of an upper bound on a quantity in [0, 1] are upper bounds
    return np.clip(vals, 0.0, 1.0)


class _ChordBound:
    """Upper bound on a base profile from node values (chord in e^ε', flat beyond the nodes)."""

    def __init__(self, nodes: np.ndarray, values: np.ndarray) -> None:
        self.nodes = np.asarray(nodes, dtype=np.float64)
        self.values = np.minimum.accumulate(np.asarray(values, dtype=np.float64))

    def __call__(self, eps: np.ndarray) -> np.ndarray:
        # a round-off negative ε' is moved to 0, where d is largest: still an upper bound
        x = np.maximum(np.asarray(eps, dtype=np.float64), 0.0)
        e, d = self.nodes, self.values
        j = np.clip(np.searchsorted(e, x, side="right") - 1, 0, e.size - 2)
        e0, e1 = e[j], e[j + 1]
        lam = np.expm1(np.minimum(x - e0, 700.0)) / np.expm1(e1 - e0)
        v = d[j] + (d[j + 1] - d[j]) * np.clip(lam, 0.0, 1.0)
        return np.where(x >= e[-1], d[-1], v)


# --------------------------------------------------------------------------- subsampling
def subsampled_remove_delta(
    profile: ProfileFn, sampling_prob: float, epsilon: np.ndarray
) -> np.ndarray:
    """Hockey-stick divergence of the REMOVE pair after Poisson subsampling.

    With ``P`` the base pair's shifted law, ``Q`` the noise law and ``α = e^ε``, this is
    ``H_α((1-q)Q + qP || Q)``:

    * ``1 - α`` for ``α <= 1 - q``;
    * ``q d(ln α')`` with ``α' = 1 + (α - 1)/q`` for ``α >= 1``;
    * ``1 - α + q α' d(ln(1/α'))`` for ``1 - q < α < 1`` (symmetry of the base pair).

    Parameters
    ----------
    profile : callable
        Vectorised base profile ``d(ε')`` for ``ε' >= 0`` of a symmetric pair; called once.
    sampling_prob : float
        Poisson sampling probability ``q`` in (0, 1].
    epsilon : array_like
        Values of ``ε`` (any sign).

    Returns
    -------
    numpy.ndarray
        ``δ_rem(ε)`` in [0, 1], same shape as ``epsilon``. An upper bound on ``d`` gives an
        upper bound here: every case is a non-negative combination of ``d`` values.
    """
    q = _check_sampling_prob(sampling_prob)
    eps = np.asarray(epsilon, dtype=np.float64)
    out = np.maximum(-np.expm1(eps), 0.0)  # exact 1 - α for α <= 1 - q (and α < 1)
    m = eps > _log1m(q)
    if np.any(m):
        w = np.maximum(q + np.expm1(eps[m]), 0.0)  # = q α' (> 0 up to round-off)
        with np.errstate(divide="ignore"):
            arg = np.abs(np.log(w) - math.log(q))  # ln α' (α' >= 1) or ln(1/α') (α' < 1)
        arg = np.where(w > 0, arg, 0.0)  # finite arguments only; the weight is 0 there
        out[m] += np.minimum(w, q) * np.asarray(profile(arg), dtype=np.float64)
    return np.clip(out, 0.0, 1.0)


def subsampled_add_delta(
    profile: ProfileFn, sampling_prob: float, epsilon: np.ndarray
) -> np.ndarray:
    """Hockey-stick divergence of the ADD pair after Poisson subsampling.

    This is ``H_α(Q || (1-q)Q + qP)`` with ``α = e^ε``:

    * ``0`` for ``α >= 1/(1 - q)``;
    * ``β d(ln(α q / β))`` with ``β = 1 - α(1 - q)`` for ``1 <= α < 1/(1 - q)``;
    * ``1 - α + α δ_rem(-ε)`` for ``α < 1``.

    Parameters
    ----------
    profile : callable
        Vectorised base profile ``d(ε')`` for ``ε' >= 0`` of a symmetric pair; called once.
    sampling_prob : float
        Poisson sampling probability ``q`` in (0, 1].
    epsilon : array_like
        Values of ``ε`` (any sign).

    Returns
    -------
    numpy.ndarray
        ``δ_add(ε)`` in [0, 1], same shape as ``epsilon``; an upper bound on ``d`` gives an
        upper bound here (non-negative coefficients).
    """
    q = _check_sampling_prob(sampling_prob)
    eps = np.asarray(epsilon, dtype=np.float64)
    out = np.zeros_like(eps)
    pos = (eps >= 0) & (eps < -_log1m(q))
    neg = eps < 0
    e_pos, e_neg = eps[pos], -eps[neg]
    # β = 1 - α (1 - q), as -expm1(ε + ln(1 - q)): the form q e^ε - (e^ε - 1) cancels to 0 at
    # large ε (at q = 1 it dropped the whole ADD tail beyond ε ≈ 37)
    beta = np.maximum(-np.expm1(e_pos + _log1m(q)), 0.0)
    with np.errstate(divide="ignore"):
        arg_pos = e_pos + math.log(q) - np.log(beta)
    arg_pos = np.where(beta > 0, arg_pos, 0.0)  # finite arguments only; the weight is 0 there
    w = q + np.expm1(e_neg)  # REMOVE at -ε > 0: α' = w / q >= 1
    arg_neg = np.log(w) - math.log(q)
    d = np.asarray(profile(np.concatenate([arg_pos, arg_neg])), dtype=np.float64)
    out[pos] = beta * d[: e_pos.size]
    out[neg] = -np.expm1(-e_neg) + np.exp(-e_neg) * q * d[e_pos.size :]
    return np.clip(out, 0.0, 1.0)


# --------------------------------------------------------------------------- PLD
def pld_from_profile(
    profile: ProfileFn,
    *,
    sampling_prob: float = 1.0,
    value_discretization_interval: float = 1e-4,
    grid_end: float | None = None,
    num_steps_hint: int = 1,
    target_delta_hint: float = 1e-5,
) -> PrivacyLossDistribution:
    """Dominating PLD of a Poisson-subsampled symmetric mechanism from its base profile.

    Parameters
    ----------
    profile : callable
        ``profile(eps) -> delta``: the hockey-stick divergence ``d(ε') = H_{e^ε'}(P || Q)`` of
        the base pair (shifted noise ``P`` against noise ``Q``, shift = sensitivity), for an
        array of ``ε' >= 0``. It must be vectorised, non-increasing, with values in [0, 1], and
        the pair must be symmetric (``H_α(P||Q) = H_α(Q||P)``), as for every centrally
        symmetric noise. It is called **once**, on the whole node array (about 2,000 to 2,100
        points for the automatic grid end), so an expensive profile is evaluated only there.
        If its values are upper bounds of the true profile, the result is still dominating.
    sampling_prob : float, optional
        Poisson sampling probability ``q`` in (0, 1]; 1 means no subsampling.
    value_discretization_interval : float, optional
        Grid step of the privacy loss (``disc``). 1e-4 matches ``dp_accounting``'s default;
        1e-3 is about 10x cheaper and remains pessimistic.
    grid_end : float, optional
        Largest finite privacy loss ``E`` of the REMOVE PMF (the ADD PMF is supported on
        ``[-E, min(-ln(1-q), E)]``). All loss above ``E`` is put at ``+inf``
        (infinity mass ``δ_rem(E)``), so any ``E > 0`` is valid; a small ``E`` only costs
        tightness. If ``None``, the smallest ``E`` in ``{1, 1.5, ..., 60}`` with
        ``num_steps_hint * δ_rem(E) <= 1e-3 * target_delta_hint`` is used (composed infinity
        mass at most about 0.1% of the target delta), or 60 if none qualifies (heavy tails:
        then report the infinity mass, see :func:`infinity_mass`). The profile is then
        evaluated up to the image of 60; pass ``grid_end`` to avoid those extra nodes.
    num_steps_hint : int, optional
        Number of steps the PLD will be composed over (total over a run), for the grid end.
    target_delta_hint : float, optional
        The delta the composed PLD will be queried at, for the grid end.

    Returns
    -------
    dp_accounting.pld.privacy_loss_distribution.PrivacyLossDistribution
        Pessimistic PLD with distinct REMOVE and ADD PMFs (``pmf_remove``, ``pmf_add``).

    Notes
    -----
    Why it is an upper bound. Let ``d`` be the true base profile. (i) The node values are
    (assumed) ``>= d``; their chord in ``α' = e^{ε'}`` is ``>= d`` because ``d`` is convex in
    ``α'``, the flat extension beyond the last node is ``>= d`` because ``d`` is
    non-increasing, and the running minimum of upper bounds of a non-increasing function is an
    upper bound. (ii) The REMOVE pair ``((1-q)Q + qP, Q)`` and the ADD pair
    ``(Q, (1-q)Q + qP)`` dominate one Poisson-subsampled step for add/remove neighbours (joint
    convexity of hockey-stick divergences over the rest of the batch); their profiles are
    non-negative combinations of values of ``d`` (:func:`subsampled_remove_delta`,
    :func:`subsampled_add_delta`), hence bounded above by the same combinations of the chord
    bound. (iii) Pessimistic connect-the-dots builds, on ``disc * Z ∩ [lo, E]`` plus ``+inf``,
    the PMF whose hockey-stick curve interpolates the given values linearly in ``e^ε``: it
    lies above the convex true curve between grid points, puts the mass below ``lo`` at
    ``lo`` (valid since ``δ(α=0) <= 1`` and by convexity), and puts ``δ(E)`` at ``+inf``, which
    covers the whole tail. Hence each PMF is a dominating pair for its direction, and
    composition of dominating pairs dominates the (adaptive) composition.
    """
    q = _check_sampling_prob(sampling_prob)
    disc = float(value_discretization_interval)
    if not (math.isfinite(disc) and 0 < disc <= 0.1):
        raise ValueError(f"value_discretization_interval must be in (0, 0.1], got {disc!r}")
    if int(num_steps_hint) != num_steps_hint or num_steps_hint < 1:
        raise ValueError(f"num_steps_hint must be an integer >= 1, got {num_steps_hint!r}")
    if not 0 < target_delta_hint < 1:
        raise ValueError(f"target_delta_hint must be in (0, 1), got {target_delta_hint!r}")
    if grid_end is not None and not (math.isfinite(grid_end) and grid_end > 0):
        raise ValueError(f"grid_end must be a finite number > 0, got {grid_end!r}")

    nodes = _base_nodes(q, _MAX_GRID_END if grid_end is None else float(grid_end))
    chord = _ChordBound(nodes, _evaluate_profile(profile, nodes))
    if grid_end is None:
        tails = subsampled_remove_delta(chord, q, _GRID_END_CANDIDATES)
        ok = num_steps_hint * tails <= _INF_MASS_FRACTION * target_delta_hint
        end = float(_GRID_END_CANDIDATES[np.argmax(ok)]) if np.any(ok) else _MAX_GRID_END
    else:
        end = float(grid_end)

    log1m_q = _log1m(q)
    rem_lo = math.floor(max(log1m_q, -end) / disc)
    rem_hi = max(math.ceil(end / disc), rem_lo + 1)
    eps_rem = np.arange(rem_lo, rem_hi + 1) * disc
    d_rem = np.minimum.accumulate(subsampled_remove_delta(chord, q, eps_rem))
    pmf_remove = pld_pmf.create_pmf_pessimistic_connect_dots_fixed_gap(disc, rem_lo, rem_hi, d_rem)

    add_lo = -rem_hi
    add_hi = math.ceil(min(-log1m_q, end) / disc)
    eps_add = np.arange(add_lo, add_hi + 1) * disc
    d_add = np.minimum.accumulate(subsampled_add_delta(chord, q, eps_add))
    pmf_add = pld_pmf.create_pmf_pessimistic_connect_dots_fixed_gap(disc, add_lo, add_hi, d_add)
    return PrivacyLossDistribution(pmf_remove, pmf_add)


def infinity_mass(pld: PrivacyLossDistribution) -> float:
    """Largest probability of an infinite privacy loss over the REMOVE and ADD directions.

    This is ``pld.get_delta_for_epsilon(inf)``: no ``ε`` achieves a ``δ`` below it, so
    ``get_epsilon_for_delta(δ)`` is ``inf`` for every ``δ`` smaller than it. Report it next to
    verified epsilons for heavy-tailed noise.

    Parameters
    ----------
    pld : PrivacyLossDistribution
        A (possibly composed) privacy loss distribution.

    Returns
    -------
    float
        The infinity mass.
    """
    return float(pld.get_delta_for_epsilon(math.inf))


def compose_plds(parts: Iterable[tuple[PrivacyLossDistribution, int]]) -> PrivacyLossDistribution:
    """Compose heterogeneous steps: ``count`` steps of each PLD, in any order.

    Parameters
    ----------
    parts : iterable of (PrivacyLossDistribution, int)
        Pairs ``(pld, count)`` with ``count >= 0`` (zero counts are skipped). All PLDs must share
        the same ``value_discretization_interval``. Build each with ``num_steps_hint`` equal to
        the total number of steps of the run.

    Returns
    -------
    PrivacyLossDistribution
        The composed PLD (pessimistic if every part is).

    Raises
    ------
    ValueError
        If ``parts`` has no step, or a count is negative or not an integer.
    """
    composed: PrivacyLossDistribution | None = None
    for pld, count in parts:
        if int(count) != count or count < 0:
            raise ValueError(f"counts must be integers >= 0, got {count!r}")
        if count == 0:
            continue
        if infinity_mass(pld) >= 1.0:
            return pld  # no privacy at all: δ(ε) = 1 for every ε, whatever else is composed
        block = pld.self_compose(int(count)) if count > 1 else pld
        composed = block if composed is None else composed.compose(block)
    if composed is None:
        raise ValueError("compose_plds needs at least one step (a part with count >= 1)")
    return composed


def _composed_infinity_floor(pld: PrivacyLossDistribution, num_steps: int) -> float:
    """Exact lower bound 1 - (1 - p)^T on the infinity mass of the T-fold composition."""
    p = infinity_mass(pld)
    if p >= 1.0:
        return 1.0
    return -math.expm1(num_steps * math.log1p(-p))


def _check_steps(num_steps: int) -> int:
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
    return int(num_steps)


def verified_epsilon(
    profile: ProfileFn,
    *,
    sampling_prob: float,
    num_steps: int,
    delta: float,
    value_discretization_interval: float = 1e-4,
    grid_end: float | None = None,
) -> float:
    """Verified ε(δ) after ``num_steps`` Poisson-subsampled steps of a symmetric mechanism.

    Builds the dominating PLD with :func:`pld_from_profile` (grid end chosen for
    ``num_steps`` and ``delta`` unless given), composes it ``num_steps`` times and returns the
    smallest ε with ``δ(ε) <= delta`` in both directions (REMOVE and ADD).

    Parameters
    ----------
    profile : callable
        Vectorised base profile ``d(ε')`` of the symmetric pair at the sensitivity (see
        :func:`pld_from_profile`); called once.
    sampling_prob : float
        Poisson sampling probability ``q`` in (0, 1].
    num_steps : int
        Number of composed steps ``T >= 1``.
    delta : float
        Target δ in (0, 1).
    value_discretization_interval : float, optional
        PLD grid step (1e-4 by default).
    grid_end : float, optional
        Largest finite per-step privacy loss; automatic if ``None``.

    Returns
    -------
    float
        An upper bound on the true ε(δ); ``math.inf`` when the composed infinity mass exceeds
        ``delta`` (as ``dp_accounting`` does): then no finite ε is certified at that δ, which
        is a property of the mechanism's tail (or of a too small ``grid_end``), not a failure.
    """
    steps = _check_steps(num_steps)
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    pld = pld_from_profile(
        profile,
        sampling_prob=sampling_prob,
        value_discretization_interval=value_discretization_interval,
        grid_end=grid_end,
        num_steps_hint=steps,
        target_delta_hint=delta,
    )
    if _composed_infinity_floor(pld, steps) > delta:
        return math.inf  # the composition cannot go below it: skip the FFT
    composed = pld.self_compose(steps) if steps > 1 else pld
    return float(composed.get_epsilon_for_delta(delta))


def verified_delta(
    profile: ProfileFn,
    *,
    sampling_prob: float,
    num_steps: int,
    epsilon: float,
    value_discretization_interval: float = 1e-4,
    grid_end: float | None = None,
    target_delta_hint: float = 1e-5,
) -> float:
    """Verified δ(ε) after ``num_steps`` Poisson-subsampled steps of a symmetric mechanism.

    Parameters
    ----------
    profile : callable
        Vectorised base profile ``d(ε')`` of the symmetric pair at the sensitivity (see
        :func:`pld_from_profile`); called once.
    sampling_prob : float
        Poisson sampling probability ``q`` in (0, 1].
    num_steps : int
        Number of composed steps ``T >= 1``.
    epsilon : float
        Target ε >= 0.
    value_discretization_interval : float, optional
        PLD grid step (1e-4 by default).
    grid_end : float, optional
        Largest finite per-step privacy loss; automatic if ``None``.
    target_delta_hint : float, optional
        Order of magnitude of the expected δ, used only by the automatic grid end (the
        infinity mass is kept below about 1e-3 of it); a result far below the hint may be
        dominated by the infinity mass (still an upper bound, but loose).

    Returns
    -------
    float
        An upper bound on the true δ(ε), the maximum over REMOVE and ADD; it is never below
        the composed infinity mass.
    """
    steps = _check_steps(num_steps)
    if not (epsilon >= 0):
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
    pld = pld_from_profile(
        profile,
        sampling_prob=sampling_prob,
        value_discretization_interval=value_discretization_interval,
        grid_end=grid_end,
        num_steps_hint=steps,
        target_delta_hint=target_delta_hint,
    )
    if _composed_infinity_floor(pld, steps) >= 1.0:
        return 1.0
    composed = pld.self_compose(steps) if steps > 1 else pld
    return float(min(1.0, composed.get_delta_for_epsilon(float(epsilon))))
