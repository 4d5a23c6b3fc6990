"""Empirical distinguishing audit of a mechanism's real sampler: a statistically valid lower bound
on δ at a given ε.

The package labels every privacy figure ``claimed`` (a paper's formula) or ``verified`` (exact
profile of the noise actually added). The audit is a third, independent kind of evidence: an
**empirical lower bound**. It runs an attack on the noise drawn by :meth:`Mechanism.sample` and
needs no formula at all, so any claim can be checked against it.

Setting
-------
Two neighbouring datasets give query values ``f(x') = 0`` and ``f(x) = v = Δ·e₁`` with
``Δ = mechanism.sensitivity``; the released output is ``y = f(·) + n``. Hence

* under ``x``:  ``y = v + n``,
* under ``x'``: ``y = n``.

(ε, δ)-DP requires ``P_x(S) ≤ e^ε P_x'(S) + δ`` for *every* measurable set ``S``, so for any
fixed ``S``::

    δ ≥ P_x(S) − e^ε P_x'(S).

For a spherically symmetric noise law the likelihood ratio of ``x`` against ``x'`` depends on
``y`` only through ``⟨y, e₁⟩`` and ``‖y‖`` (``‖y − v‖² = ‖y‖² − 2Δ⟨y, e₁⟩ + Δ²``), so those two
numbers are all the audit records per draw; they are computed from the full ``M``-dimensional
vectors returned by the sampler. A noise that is not spherically symmetric (a user's sampler,
e.g. i.i.d. Laplace coordinates) is audited the same way: the two numbers are then not all the
evidence, so the bound may be weaker than the best attack's, but every fixed set ``S`` still
gives a valid lower bound. It is the only privacy figure of an *unverified* mechanism.

Tests (families of sets ``S``)
------------------------------
``halfspace``
    ``S = {⟨y, e₁⟩ ≥ c}`` (or ``≤ c``): the Neyman–Pearson test for Gaussian noise, and the
    test that gives δ ≥ 0.40 at ε = 0.3 in the MNIST setting of the product-noise paper
    (Liu, Ji, Fang, Wei, Li, SIGMOD 2026, arXiv:2512.06253).
``norm_direction``
    ``S = {‖y‖ ≤ ρ and ⟨y, e₁⟩ ≥ c}`` ("norm and direction"). Product noise reveals its
    own scale: a draw with a small radius ``r = ‖n‖`` behaves like Gaussian noise of standard
    deviation ``r/√M`` per coordinate, which is far easier to see through. Under ``x`` a small
    radius puts ``y`` close to ``v`` (small ``‖y‖``, ``⟨y, e₁⟩ ≈ Δ``); under ``x'`` a small
    ``‖y‖`` forces a small ``⟨y, e₁⟩`` (of order ``‖y‖/√M``). Per radius the likelihood-ratio
    region is approximately ``⟨y, e₁⟩ ≥ Δ/2 + ε‖y‖²/(MΔ)``, i.e. nearly a constant threshold
    ``c`` once ``‖y‖`` is capped at ``ρ``; the audit searches a small 2-D grid of ``(ρ, c)``
    (``ρ`` at geometric quantile levels of ``‖y‖`` under ``x``, so that the rare small-radius
    events are on the grid). With ``ρ = ∞`` it contains the half-space ``{⟨y, e₁⟩ ≥ c}``. It is
    what keeps the bound large at large ε, where no half-space works.

Statistical validity
--------------------
1. *Selection split*: ``n_samples`` noise draws choose the region of each test (threshold grid
   search). They are never used again.
2. *Evaluation split*: ``n_samples`` fresh noise draws estimate ``P_x(S)`` and ``P_x'(S)`` for
   the chosen, now fixed, region. Each draw ``n_i`` gives one output under each hypothesis
   (``n_i + v`` and ``n_i``; common random numbers, which halves the sampling cost): the count
   under each hypothesis is exactly Binomial(``n_samples``, P), which is all a Clopper–Pearson
   bound needs, and the union bound below needs no independence between the two counts.
3. One-sided Clopper–Pearson bounds: a lower bound on ``P_x(S)`` and an upper bound on
   ``P_x'(S)``, each at level ``α/(2T)`` with ``α = 1 − confidence`` and ``T`` the number of
   tests run (Bonferroni). By the union bound, with probability ≥ ``confidence`` *all* 2T bounds
   hold simultaneously, so the largest ``max(0, p_lo − e^ε p'_hi)`` over the tests is a valid
   lower bound on the true δ(ε) of the sampler (against shifts of norm Δ; the mechanism's
   verified profile, a supremum over shift norms ≤ Δ, is at least as large).

The selection criterion is the plug-in ``p̂ − e^ε p̂'`` penalised exactly as the evaluation will
penalise it (the same Clopper–Pearson bounds, computed on the selection counts); this converges to
the plug-in criterion as ``n`` grows but avoids picking tiny regions whose ``p̂' = 0`` is pure luck.
Any selection rule keeps the bound valid because the evaluation split is independent of it.

Memory: noise is drawn in batches of ``batch_size`` vectors (default: about 16 MB of float64 per
batch, so the sampler's temporaries stay well below 100 MB even for ``M`` in the hundreds of
thousands), and only two floats per draw are kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import numpy as np

from ..validation import (
    InputError,
    check_confidence,
    check_epsilon,
    check_positive_int,
)
from .bounds import clopper_pearson_lower, clopper_pearson_upper

__all__ = ["AuditResult", "audit_mechanism", "TESTS", "LABEL"]

#: what an audit's figure is: neither claimed nor verified
LABEL = "empirical lower bound"

#: names of the distinguishing tests, in the order they are run
TESTS: tuple[str, ...] = ("halfspace", "norm_direction")

#: target bytes of one batch of float64 noise vectors (the sampler holds a few such arrays)
_BATCH_BYTES = 1 << 24
_MAX_BATCH = 8192
_MIN_SAMPLES = 100

# grid sizes of the region searches
_HALFSPACE_LEVELS = np.linspace(0.0025, 0.9975, 399)
_RHO_LEVELS = np.geomspace(1e-3, 1.0, 40)
_C_LEVELS = np.linspace(0.025, 0.975, 39)
_C_SHIFT_MULTIPLES = np.linspace(-0.5, 2.0, 26)


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class AuditResult:
    """An empirical lower bound on δ(ε) from a distinguishing attack on the real sampler.

    It is neither ``claimed`` nor ``verified``: with probability at least ``confidence`` (over the
    audit's own randomness) the mechanism's true δ at ``epsilon`` is at least ``delta_lower``.

    Attributes
    ----------
    epsilon : float
        The ε at which δ is bounded.
    delta_lower : float
        ``max(0, CP_lower(P_x(S)) − e^ε · CP_upper(P_x'(S)))``, valid at ``confidence``.
    confidence : float
        Joint confidence level of the bound (Bonferroni over all tests run).
    test : str
        ``"halfspace"`` or ``"norm_direction"``: the test that gave the bound.
    p_hat : float
        Empirical ``P_x(S)`` on the evaluation split (``x``: output ``f(x) + n``, shift applied).
    p_prime_hat : float
        Empirical ``P_x'(S)`` on the evaluation split (``x'``: output ``n``).
    n_samples : int
        Draws per hypothesis in the evaluation split (the selection split has as many again;
        each noise draw serves both hypotheses).
    params : dict
        The chosen region: its thresholds (``"c"``, ``"direction"``; or ``"rho"``, ``"c"``), a
        readable ``"region"``, and the numbers behind the bound (``"p_lower"``,
        ``"p_prime_upper"``, ``"alpha_per_bound"``, ``"n_tests"``, ``"raw_bound"``; ``"shift"``
        Δ and ``"dim"`` M).
    """

    epsilon: float
    delta_lower: float
    confidence: float
    test: str
    p_hat: float
    p_prime_hat: float
    n_samples: int
    params: dict = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        region = self.params.get("region", "")
        region = f" S = {{{region}}}," if region else ""
        return (
            f"{LABEL} (ε = {self.epsilon:.4g}, δ ≥ {self.delta_lower:.4g} at "
            f"{100 * self.confidence:g}% confidence) [{self.test} test,{region} "
            f"P̂_x(S) = {self.p_hat:.4g}, P̂_x'(S) = {self.p_prime_hat:.4g}, "
            f"n = {self.n_samples} per hypothesis]"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy of every field.

        Returns
        -------
        record : dict
            The dataclass fields by name (``params`` copied) and ``"label"``: ``"empirical
            lower bound"`` (never ``verified``).
        """
        return {
            "label": LABEL,
            "epsilon": self.epsilon,
            "delta_lower": self.delta_lower,
            "confidence": self.confidence,
            "test": self.test,
            "p_hat": self.p_hat,
            "p_prime_hat": self.p_prime_hat,
            "n_samples": self.n_samples,
            "params": dict(self.params),
        }


def _bound(k: np.ndarray, k_prime: np.ndarray, n: int, alpha: float, epsilon: float) -> np.ndarray:
    """``CP_lower(k) − e^ε CP_upper(k')`` (may be negative; −inf when e^ε overflows)."""
    lo = np.asarray(clopper_pearson_lower(k, n, alpha))
    hi = np.asarray(clopper_pearson_upper(k_prime, n, alpha))
    with np.errstate(over="ignore"):
        return lo - np.exp(epsilon) * hi  # hi > 0 always, so overflow gives -inf


# --------------------------------------------------------------------------- sampling
@dataclass
class _Stats:
    """Per-draw statistics of the outputs under one hypothesis."""

    proj: np.ndarray  # ⟨y, e₁⟩
    norm: np.ndarray  # ‖y‖


def _default_batch(dim: int) -> int:
    return int(min(_MAX_BATCH, max(1, _BATCH_BYTES // (8 * dim))))


def _draw(
    mechanism: Any,
    n: int,
    shift: float,
    rng: np.random.Generator,
    batch: int,
    pbar: Any,
) -> tuple[_Stats, _Stats]:
    """Draw ``n`` noise vectors from the real sampler; keep ``⟨y,e₁⟩, ‖y‖`` under both hypotheses.

    Each draw ``n_i`` gives one output under each hypothesis, ``y = n_i`` (``x'``) and
    ``y = n_i + shift·e₁`` (``x``), both formed as full vectors.
    """
    dim = int(mechanism.dim)
    proj_x, sq_x, proj_xp, sq_xp = (np.empty(n) for _ in range(4))
    done = 0
    while done < n:
        b = min(batch, n - done)
        y = np.asarray(mechanism.sample(b, rng=rng), dtype=np.float64)
        if y.shape != (b, dim):
            raise ValueError(f"mechanism.sample({b}) returned shape {y.shape}, expected {(b, dim)}")
        if not y.flags.writeable:
            y = y.copy()
        sl = slice(done, done + b)
        proj_xp[sl] = y[:, 0]
        sq_xp[sl] = np.einsum("ij,ij->i", y, y)
        y[:, 0] += shift  # the output under x: f(x) + n with f(x) = shift·e₁, f(x') = 0
        proj_x[sl] = y[:, 0]
        sq_x[sl] = np.einsum("ij,ij->i", y, y)
        done += b
        if pbar is not None:
            pbar.update(b)
    return _Stats(proj_x, np.sqrt(sq_x)), _Stats(proj_xp, np.sqrt(sq_xp))


# --------------------------------------------------------------------------- region search
def _halfspace_select(
    sx: _Stats, sxp: _Stats, n: int, alpha: float, epsilon: float
) -> dict[str, Any]:
    pooled = np.concatenate([sx.proj, sxp.proj])
    grid = np.unique(np.quantile(pooled, _HALFSPACE_LEVELS))
    ax, axp = np.sort(sx.proj), np.sort(sxp.proj)
    best: dict[str, Any] = {"score": -np.inf}
    for direction in (">=", "<="):
        if direction == ">=":
            k = len(ax) - np.searchsorted(ax, grid, side="left")
            kp = len(axp) - np.searchsorted(axp, grid, side="left")
        else:
            k = np.searchsorted(ax, grid, side="right")
            kp = np.searchsorted(axp, grid, side="right")
        score = _bound(k, kp, n, alpha, epsilon)
        i = int(np.argmax(score))
        if "c" not in best or score[i] > best["score"]:  # also when every score is -inf
            best = {"score": float(score[i]), "c": float(grid[i]), "direction": direction}
    return {"c": best["c"], "direction": best["direction"]}


def _halfspace_mask(s: _Stats, params: dict[str, Any]) -> np.ndarray:
    if params["direction"] == ">=":
        return s.proj >= params["c"]
    return s.proj <= params["c"]


def _norm_direction_select(
    sx: _Stats, sxp: _Stats, n: int, alpha: float, epsilon: float, shift: float
) -> dict[str, Any]:
    rhos = np.unique(np.quantile(sx.norm, _RHO_LEVELS))
    cs = np.unique(np.concatenate([shift * _C_SHIFT_MULTIPLES, np.quantile(sx.proj, _C_LEVELS)]))
    # counts over the grid: k[i, j] = #{norm <= rho_i and proj >= c_j}
    # sort by norm, then for each rho the draws with norm <= rho are a prefix
    order_x, order_xp = np.argsort(sx.norm), np.argsort(sxp.norm)
    norm_x, proj_x = sx.norm[order_x], sx.proj[order_x]
    norm_xp, proj_xp = sxp.norm[order_xp], sxp.proj[order_xp]
    ix = np.searchsorted(norm_x, rhos, side="right")
    ixp = np.searchsorted(norm_xp, rhos, side="right")
    k = np.empty((len(rhos), len(cs)), dtype=np.int64)
    kp = np.empty_like(k)
    for j, c in enumerate(cs):  # one pass per c keeps memory at O(n)
        cum_x = np.concatenate([[0], np.cumsum(proj_x >= c)])
        cum_xp = np.concatenate([[0], np.cumsum(proj_xp >= c)])
        k[:, j] = cum_x[ix]
        kp[:, j] = cum_xp[ixp]
    score = _bound(k, kp, n, alpha, epsilon)
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    rho = float(rhos[i])
    if i == len(rhos) - 1:
        rho = math.inf  # the largest norm seen: no cap (the half-space ⟨y,e₁⟩ ≥ c)
    return {"rho": rho, "c": float(cs[j])}


def _norm_direction_mask(s: _Stats, params: dict[str, Any]) -> np.ndarray:
    return (s.norm <= params["rho"]) & (s.proj >= params["c"])


def _region_text(test: str, params: dict[str, Any]) -> str:
    if test == "halfspace":
        return f"<y, e1> {params['direction']} {params['c']:.6g}"
    return f"||y|| <= {params['rho']:.6g} and <y, e1> >= {params['c']:.6g}"


# --------------------------------------------------------------------------- public entry
def _check_tests(tests: Any) -> tuple[str, ...]:
    if isinstance(tests, str):
        tests = (tests,)
    if not isinstance(tests, Sequence) or len(tests) == 0:
        raise InputError(f"tests must be a non-empty sequence of names from {TESTS}, got {tests!r}")
    out = tuple(tests)
    unknown = [t for t in out if t not in TESTS]
    if unknown:
        raise InputError(f"unknown test(s) {unknown}; choose from {', '.join(TESTS)}")
    if len(set(out)) != len(out):
        raise InputError(f"tests must not repeat, got {out!r}")
    return out


def _check_n_samples(n_samples: Any) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, Integral):
        if isinstance(n_samples, float) and n_samples.is_integer():
            n_samples = int(n_samples)
        else:
            raise InputError(f"n_samples must be an integer >= {_MIN_SAMPLES}, got {n_samples!r}")
    if int(n_samples) < _MIN_SAMPLES:
        raise InputError(f"n_samples must be an integer >= {_MIN_SAMPLES}, got {n_samples!r}")
    return int(n_samples)


def audit_mechanism(
    mechanism: Any,
    epsilon: float,
    *,
    n_samples: int = 20_000,
    confidence: float = 0.95,
    tests: tuple[str, ...] = TESTS,
    rng: np.random.Generator | int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> AuditResult:
    """Empirical lower bound on δ(ε) of a mechanism, from attacks on its real sampler.

    Draws ``2 · n_samples`` noise vectors ``n`` from ``mechanism.sample``, each giving one output
    per hypothesis (``y = Δe₁ + n`` for ``x``, ``y = n`` for ``x'``): the first half chooses each
    test's region, the second, fresh half evaluates it. See the module docstring for the tests
    and the statistics.

    Parameters
    ----------
    mechanism : Mechanism
        Anything with ``.dim``, ``.sensitivity`` and ``.sample(size, rng=Generator)`` returning
        an array of shape ``(size, dim)``.
    epsilon : float
        The ε > 0 at which δ is bounded.
    n_samples : int, default 20000
        Draws per hypothesis in the evaluation split (``≥ 100``); the selection split has as
        many, so the sampler is called for ``2 · n_samples`` vectors in total.
    confidence : float, default 0.95
        Joint confidence of the returned bound, in (0, 1).
    tests : tuple of str, default ("halfspace", "norm_direction")
        Tests to run; the error budget ``1 − confidence`` is split evenly over them.
    rng : numpy.random.Generator or int or None
        Source of randomness (a seed is passed to :func:`numpy.random.default_rng`).
    batch_size : int or None
        Vectors per call to ``mechanism.sample``; default about 16 MB of float64 per batch.
    progress : bool, default False
        Show a tqdm progress bar over the draws.

    Returns
    -------
    AuditResult
        The largest valid lower bound over ``tests`` (labelled "empirical lower bound").

    Raises
    ------
    ValueError
        If ``epsilon ≤ 0``, ``confidence`` is not in (0, 1), ``n_samples < 100``, ``tests`` is
        empty or names an unknown test, or ``batch_size < 1``.
    """
    epsilon = check_epsilon(epsilon)
    confidence = check_confidence(confidence)
    n = _check_n_samples(n_samples)
    tests = _check_tests(tests)
    for attr in ("dim", "sensitivity", "sample"):
        if not hasattr(mechanism, attr):
            raise TypeError(f"mechanism must have a {attr!r} attribute, got {mechanism!r}")
    dim = int(mechanism.dim)
    shift = float(mechanism.sensitivity)
    if batch_size is None:
        batch = _default_batch(dim)
    else:
        try:
            batch = check_positive_int("batch_size", batch_size, minimum=1)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    n_tests = len(tests)
    alpha = (1.0 - confidence) / (2 * n_tests)  # per one-sided bound (Bonferroni)

    pbar = None
    if progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=2 * n, unit="draw", desc=f"audit {type(mechanism).__name__}")
    try:
        sel_x, sel_xp = _draw(mechanism, n, shift, gen, batch, pbar)  # selection split
        ev_x, ev_xp = _draw(mechanism, n, shift, gen, batch, pbar)  # evaluation split
    finally:
        if pbar is not None:
            pbar.close()

    results: list[tuple[float, AuditResult]] = []
    for test in tests:
        if test == "halfspace":
            region = _halfspace_select(sel_x, sel_xp, n, alpha, epsilon)
            mask_x, mask_xp = _halfspace_mask(ev_x, region), _halfspace_mask(ev_xp, region)
        else:
            region = _norm_direction_select(sel_x, sel_xp, n, alpha, epsilon, shift)
            mask_x = _norm_direction_mask(ev_x, region)
            mask_xp = _norm_direction_mask(ev_xp, region)
        k, kp = int(mask_x.sum()), int(mask_xp.sum())
        p_lo = float(clopper_pearson_lower(k, n, alpha))
        pp_hi = float(clopper_pearson_upper(kp, n, alpha))
        raw = float(_bound(np.array(k), np.array(kp), n, alpha, epsilon))
        params = {
            **region,
            "region": _region_text(test, region),
            "p_lower": p_lo,
            "p_prime_upper": pp_hi,
            "alpha_per_bound": alpha,
            "n_tests": n_tests,
            "raw_bound": raw,
            "shift": shift,
            "dim": dim,
        }
        res = AuditResult(
            epsilon=epsilon,
            delta_lower=max(0.0, raw),
            confidence=confidence,
            test=test,
            p_hat=k / n,
            p_prime_hat=kp / n,
            n_samples=n,
            params=params,
        )
        results.append((raw, res))
    return max(results, key=lambda t: t[0])[1]
