"""Privacy accounting for DPMix: the verified bound, the thesis' claimed formula, calibration.

Mechanism and neighbouring relation
-----------------------------------
One DPMix release draws ``S_t ⊂ [n]``, ``|S_t| = l``, uniformly **without replacement** and
publishes ``(mean_{i∈S_t} x_i + N(0, σ_x² I), mean_{i∈S_t} y_i + N(0, σ_y² I))``. Neighbouring
datasets differ by **replacing one record** (fixed ``n``; this is what fixed-size sampling without
replacement needs). Conditional on ``S_t`` the release is a Gaussian mechanism whose whitened
sensitivity is ``Δ/l`` with

    Δ² = D_x²/σ_x² + D_y²/σ_y²,

``D_x``, ``D_y`` the **diameters** (largest distance between two admissible records, not the
radius) of the declared data bound. DPMix is therefore the subsampled Gaussian with noise
multiplier ``s_eff = l/Δ`` and sampling ratio ``γ = l/n``; ``T`` releases compose in RDP.

Verified figure
---------------
Wang, Balle & Kasiviswanathan (AISTATS 2019, arXiv 1808.00087) Theorem 27 for sampling without
replacement, at integer orders, composed over ``T`` releases and converted to ``(ε, δ)`` with the
improved conversion (Canonne-Kamath-Steinke 2020; the one ``dp_accounting`` uses). Two
implementations are provided and agree to ~1e-10 relative RDP:

* ``backend="dp_accounting"`` (default for reported figures): Google ``dp_accounting``'s
  ``RdpAccountant`` with ``SampledWithoutReplacementDpEvent(n, l, GaussianDpEvent(s_eff))`` and
  ``NeighborRel.REPLACE_ONE``;
* ``backend="native"``: this module's vectorised implementation, with the forward differences
  ``B(k)`` in multiple precision (``mpmath``). It is ~100x faster and is used for calibration and
  sweeps; a calibrated noise level is re-checked with ``dp_accounting`` before it is returned.

Claimed figure (the thesis)
---------------------------
Sabir Mahmud's thesis (BUET 2025, Fig. 3.1 and App. A.3) states

    ε'_α = log(1 + (l/n)² C(α,2) min(4(e^{Δ²/l²} - 1), 2 e^{Δ²/l²}) + 4 G(α)) / (α - 1),
    G(α) = Σ_{j=3}^{α} (1/n)^j C(α,j) √(B(2⌊j/2⌋) · B(2⌊j/2⌋)),   Δ² = d_x/σ_x² + d_y/σ_y²,

with the classic conversion ``ε = min_α T ε'_α + log(1/δ)/(α - 1)``, ``α ∈ {2..100}``,
``δ = 1/n``. Compared with Theorem 27 it has ``(1/n)^j`` instead of ``(l/n)^j`` and the index
``2⌊j/2⌋`` twice instead of ``2⌊j/2⌋, 2⌈j/2⌉``; both make it smaller than the true bound, so it is
not a valid DP guarantee (:func:`thesis_epsilon`, ``variant="formula"``). The thesis' *code*
(App. A.3) additionally evaluates ``B`` with its own argument in place of the mixture degree, so
every order ``α ≥ 3`` overflows to ``nan``/``inf`` and only ``α = 2`` survives the ``min``
(``variant="code"``); that is the variant that reproduces the thesis' ``σ = 0.0711 ↔ ε = 15``.

References
----------
.. [1] K. Lee, H. Kim, K. Lee and C. Suh, "Synthesizing differentially private datasets using
       random mixing", IEEE ISIT 2019.
.. [2] Y.-X. Wang, B. Balle and S. Kasiviswanathan, "Subsampled Rényi differential privacy and
       analytical moments accountant", AISTATS 2019.
.. [3] C. Canonne, G. Kamath and T. Steinke, "The discrete Gaussian for differential privacy",
       NeurIPS 2020.
.. [4] I. Mironov, "Rényi differential privacy", IEEE CSF 2017.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import gammaln

from product_noise.accounting.calibrate import ensure_safe, smallest_noise
from product_noise.privacy import CLAIMED, VERIFIED, PrivacyFigure, PrivacyWarning
from product_noise.validation import check_delta, check_epsilon, check_positive, check_positive_int

__all__ = [
    "DEFAULT_ORDERS",
    "THESIS_ORDERS",
    "DPMixAccounting",
    "Accounting",
    "whitened_sensitivity",
    "rdp_native",
    "rdp_dp_accounting",
    "epsilon_from_rdp",
    "dpmix_epsilon",
    "verified_figure",
    "thesis_rdp",
    "thesis_epsilon",
    "thesis_figure",
    "calibrate_noise_multiplier",
    "calibrate",
]

#: integer RDP orders used for verified figures: every integer up to 128, then a coarser grid to
#: 256 (``dp_accounting`` costs O(α²) Python work per order: ~1 s for these, ~5 s for 2..256).
#: Any set of orders gives a valid bound; DPMix optima are small (≤ 20 for ε ≥ 1 at δ = 1e-5).
DEFAULT_ORDERS: tuple[int, ...] = tuple(range(2, 129)) + (160, 192, 224, 256)
#: the orders the thesis' code minimises over
THESIS_ORDERS: tuple[int, ...] = tuple(range(2, 101))

Backend = Literal["dp_accounting", "native"]
Conversion = Literal["improved", "classic"]
Bound = Literal["thm27", "thm9"]

_LOG2 = math.log(2.0)
_LOG4 = math.log(4.0)


# --------------------------------------------------------------------------- inputs
def _check_orders(orders: Sequence[int]) -> np.ndarray:
    arr = np.asarray(list(orders))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("orders must be a non-empty 1-D sequence of integers >= 2")
    if not np.all(np.equal(np.mod(arr, 1), 0)) or arr.min() < 2:
        raise ValueError(f"orders must be integers >= 2, got {list(orders)[:5]}...")
    return np.unique(arr.astype(np.int64))


def _check_sampling(n: int, l: int, T: int) -> tuple[int, int, int]:
    n = check_positive_int("n", n)
    l = check_positive_int("l", l)
    T = check_positive_int("T", T)
    if l > n:
        raise ValueError(f"l (records per mix) must be <= n (records available), got l={l}, n={n}")
    return n, l, T


def whitened_sensitivity(
    sigma_x: float,
    x_diameter: float,
    sigma_y: float | None = None,
    y_diameter: float = 0.0,
) -> float:
    """Whitened replace-one diameter ``Δ = sqrt(D_x²/σ_x² + D_y²/σ_y²)``.

    Parameters
    ----------
    sigma_x : float
        Standard deviation of the feature noise (> 0).
    x_diameter : float
        ``D_x = max ‖x - x'‖₂`` over admissible records (the diameter, not the radius).
    sigma_y : float, optional
        Standard deviation of the label noise; required when ``y_diameter > 0``.
    y_diameter : float
        ``D_y = max ‖y - y'‖₂``; ``√2`` for one-hot labels, 0 when labels are fixed/public.

    Returns
    -------
    float
        ``Δ``; the release is a subsampled Gaussian with noise multiplier ``l/Δ``.
    """
    sigma_x = check_positive("sigma_x", sigma_x)
    x_diameter = check_positive("x_diameter", x_diameter)
    if y_diameter < 0:
        raise ValueError(f"y_diameter must be >= 0, got {y_diameter!r}")
    d2 = (x_diameter / sigma_x) ** 2
    if y_diameter > 0:
        if sigma_y is None:
            raise ValueError("sigma_y is required when the labels are noised (y_diameter > 0)")
        sigma_y = check_positive("sigma_y", sigma_y)
        d2 += (y_diameter / sigma_y) ** 2
    return math.sqrt(d2)


# --------------------------------------------------------------------------- native Thm 27
@functools.lru_cache(maxsize=64)
def _log_forward_diffs(s2: float, kmax: int) -> np.ndarray:
    """``log B(k)``, ``k = 0..kmax`` (``nan`` for odd ``k``), for the Gaussian with ``ε(2) = s2``.

    ``B(k) = Σ_{i=0}^{k} (-1)^{k-i} C(k,i) exp(i(i-1) s2/2)`` is the k-th forward difference at 0
    of ``exp((i-1) ε(i))``. It is positive for even ``k`` but suffers catastrophic cancellation
    (``B(k) ~ s2^{k/2}`` while the summands reach ``2^k e^{k² s2/2}``), so it is evaluated in
    multiple precision with enough digits for the cancellation. A non-positive result (never
    observed) is mapped to ``+inf``, which makes the bound fall back to Theorem 9's term.
    """
    import mpmath as mp

    digits = int(60 + kmax / 2 * max(0.0, -math.log10(s2)) + kmax * math.log10(2.0) + 10)
    out = np.full(kmax + 1, np.nan)
    with mp.workdps(digits):
        half = mp.mpf(s2) / 2
        e = [mp.exp(half * i * (i - 1)) for i in range(kmax + 1)]
        for k in range(0, kmax + 1, 2):
            acc = mp.mpf(0)
            for i in range(k + 1):
                term = math.comb(k, i) * e[i]
                acc = acc + term if (k - i) % 2 == 0 else acc - term
            out[k] = float(mp.log(acc)) if acc > 0 else math.inf
    return out


def _logsumexp_rows(m: np.ndarray) -> np.ndarray:
    top = np.max(m, axis=1)
    with np.errstate(invalid="ignore"):
        return top + np.log(np.sum(np.exp(m - top[:, None]), axis=1))


def _log_comb_matrix(alphas: np.ndarray, js: np.ndarray) -> np.ndarray:
    a = alphas[:, None].astype(float)
    j = js[None, :].astype(float)
    valid = j <= a
    jj = np.where(valid, j, 0.0)
    out = gammaln(a + 1) - gammaln(jj + 1) - gammaln(a - jj + 1)
    return np.where(valid, out, -np.inf)


def rdp_native(
    orders: Sequence[int],
    n: int,
    l: int,
    noise_multiplier: float,
    *,
    bound: Bound = "thm27",
    forward_diff_max: int | None = None,
) -> np.ndarray:
    """Per-release RDP of DPMix (WBK Theorem 27, or Theorem 9), at integer orders.

    Parameters
    ----------
    orders : sequence of int
        Integer Rényi orders ``α ≥ 2``.
    n, l : int
        Records available and records per mix; ``γ = l/n``.
    noise_multiplier : float
        ``s_eff = l/Δ`` (see :func:`whitened_sensitivity`).
    bound : {"thm27", "thm9"}
        Theorem 27 (Gaussian-specific, tighter) or Theorem 9 (general).
    forward_diff_max : int, optional
        Use Theorem 27's ``B`` term only for ``j ≤ forward_diff_max`` and Theorem 9's term above
        (still an upper bound; the multiple-precision ``B(k)`` cost grows like ``k³``). Used by
        the calibration's bisection.

    Returns
    -------
    numpy.ndarray
        ``ε'(α)`` for one release, same order as ``np.unique(orders)``.
    """
    alphas = _check_orders(orders)
    n, l, _ = _check_sampling(n, l, 1)
    s = check_positive("noise_multiplier", noise_multiplier)
    if bound not in ("thm27", "thm9"):
        raise ValueError(f"bound must be 'thm27' or 'thm9', got {bound!r}")
    gamma = l / n
    s2 = 1.0 / s**2
    if gamma == 1.0:  # no sampling: the plain Gaussian
        return alphas * s2 / 2.0
    amax = int(alphas.max())
    js = np.arange(2, amax + 1)
    log_c = _log_comb_matrix(alphas, js)
    t2 = min(_LOG4 + s2 + math.log1p(-math.exp(-s2)), _LOG2 + s2)
    general = _LOG2 + js * (js - 1) * s2 / 2.0  # 2 e^{(j-1) ε(j)}
    if bound == "thm27":
        jmax = amax if forward_diff_max is None else max(2, min(amax, int(forward_diff_max)))
        lb = _log_forward_diffs(float(s2), 2 * ((jmax + 1) // 2))
        jj = np.minimum(js, jmax)
        lo, hi = 2 * (jj // 2), 2 * ((jj + 1) // 2)
        term = np.where(js <= jmax, np.minimum(_LOG4 + 0.5 * (lb[lo] + lb[hi]), general), general)
    else:
        term = general
    term = term.astype(float)
    term[0] = t2  # j = 2
    m = js * math.log(gamma) + term + log_c
    m = np.concatenate([np.zeros((alphas.size, 1)), m], axis=1)  # the leading 1
    return _logsumexp_rows(m) / (alphas - 1)


def rdp_dp_accounting(
    orders: Sequence[int], n: int, l: int, noise_multiplier: float, T: int = 1
) -> np.ndarray:
    """Total RDP of ``T`` releases from Google ``dp_accounting`` (WBK Thm 27, replace-one).

    Uses ``RdpAccountant(orders, NeighborRel.REPLACE_ONE)`` composed with
    ``SampledWithoutReplacementDpEvent(n, l, GaussianDpEvent(noise_multiplier))`` ``T`` times.
    Costs ~5 s for orders 2..256 (``O(α²)`` Python work per order), hence the native backend
    for sweeps.

    Parameters
    ----------
    orders : sequence of int
        Integer Rényi orders ``α ≥ 2``.
    n : int
        Records available.
    l : int
        Records per mix (sample size without replacement), ``1 ≤ l ≤ n``.
    noise_multiplier : float
        ``s_eff = l/Δ > 0``.
    T : int, default 1
        Number of releases.

    Returns
    -------
    rdp : ndarray of shape (len(orders),)
        Total RDP ε(α) at each order.
    """
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant as rdpa

    alphas = _check_orders(orders)
    n, l, T = _check_sampling(n, l, T)
    s = check_positive("noise_multiplier", noise_multiplier)
    acc = rdpa.RdpAccountant(
        orders=[float(a) for a in alphas], neighboring_relation=rdpa.NeighborRel.REPLACE_ONE
    )
    event = dp_event.SampledWithoutReplacementDpEvent(n, l, dp_event.GaussianDpEvent(s))
    acc.compose(event, T)
    # dp_accounting 0.6.0 has no public getter for the composed RDP curve
    return np.asarray(acc._rdp, dtype=float)


def epsilon_from_rdp(
    orders: Sequence[int],
    rdp: Sequence[float],
    delta: float,
    *,
    conversion: Conversion = "improved",
) -> tuple[float, int]:
    """Convert an RDP curve to ``(ε, optimal order)`` at ``δ``.

    ``conversion="improved"``: ``ε = min_α rdp(α) + log((α-1)/α) - (log δ + log α)/(α-1)``
    (Canonne-Kamath-Steinke 2020, Prop. 12 / Asoodeh et al.; as in ``dp_accounting``).
    ``conversion="classic"``: ``ε = min_α rdp(α) + log(1/δ)/(α-1)`` (Mironov 2017, Prop. 3).

    Parameters
    ----------
    orders : sequence of int
        Rényi orders ``α > 1``.
    rdp : sequence of float
        RDP ε(α) at each order (``nan`` is treated as ``inf``), same length as ``orders``.
    delta : float
        Target δ in (0, 1).
    conversion : {"improved", "classic"}, default "improved"
        The RDP → (ε, δ) conversion.

    Returns
    -------
    epsilon : float
        ε ≥ 0 at ``delta``.
    order : int
        The minimising order.

    Raises
    ------
    ValueError
        If the lengths differ, ``delta`` is out of range or ``conversion`` is unknown.
    """
    a = np.asarray(list(orders), dtype=float)
    r = np.asarray(list(rdp), dtype=float)
    if a.shape != r.shape:
        raise ValueError("orders and rdp must have the same length")
    delta = check_delta(delta)
    if conversion == "classic":
        eps = r + math.log(1.0 / delta) / (a - 1)
    elif conversion == "improved":
        eps = r + np.log1p(-1.0 / a) - (math.log(delta) + np.log(a)) / (a - 1)
    else:
        raise ValueError(f"conversion must be 'improved' or 'classic', got {conversion!r}")
    eps = np.where(np.isnan(eps), np.inf, eps)
    i = int(np.argmin(eps))
    return max(float(eps[i]), 0.0), int(a[i])


@dataclass(frozen=True)
class DPMixAccounting:
    """The full result of one DPMix accounting (what :func:`dpmix_epsilon` returns).

    Attributes
    ----------
    epsilon, delta : float
        The privacy figure.
    order : int
        The optimal Rényi order.
    n, l, T : int
        Records, records per mix, releases.
    noise_multiplier : float
        ``s_eff = l/Δ``.
    backend, conversion, bound : str
        How it was computed.
    """

    epsilon: float
    delta: float
    order: int
    n: int
    l: int
    T: int
    noise_multiplier: float
    backend: str
    conversion: str
    bound: str

    def source(self) -> str:
        """One line describing the computation (used in :class:`PrivacyFigure`).

        Returns
        -------
        source : str
            Theorem, sampling parameters, backend, conversion and optimal order.
        """
        conv = "improved (CKS20)" if self.conversion == "improved" else "classic (Mironov17)"
        thm = "Thm 27" if self.bound == "thm27" else "Thm 9"
        return (
            f"DPMix: WBK {thm} sampling w/o replacement, replace-one, n={self.n}, l={self.l}, "
            f"s_eff=l/Δ={self.noise_multiplier:.6g}, T={self.T}, RDP via {self.backend}, "
            f"{conv} conversion, order {self.order}"
        )


#: the former name of :class:`DPMixAccounting` (kept for existing code)
Accounting = DPMixAccounting


def dpmix_epsilon(
    n: int,
    l: int,
    T: int,
    noise_multiplier: float,
    delta: float,
    *,
    backend: Backend = "dp_accounting",
    conversion: Conversion = "improved",
    bound: Bound = "thm27",
    orders: Sequence[int] = DEFAULT_ORDERS,
) -> DPMixAccounting:
    """ε of ``T`` DPMix releases at ``δ`` (WBK Theorem 27 by default).

    Parameters
    ----------
    n, l, T : int
        Records available (per class for class-conditional mixing), records per mix, releases.
    noise_multiplier : float
        ``s_eff = l/Δ``.
    delta : float
        Target δ in (0, 1).
    backend : {"dp_accounting", "native"}
        RDP implementation (see module docstring); ``bound="thm9"`` needs ``"native"``.
    conversion : {"improved", "classic"}
        RDP → (ε, δ) conversion.
    bound : {"thm27", "thm9"}
        Which WBK theorem.
    orders : sequence of int
        Integer orders (default 2..256).

    Returns
    -------
    accounting : Accounting
        ε, δ, the optimal order and how they were computed.

    Raises
    ------
    ValueError
        On out-of-range arguments, an unknown ``backend``, or ``bound="thm9"`` with the
        ``dp_accounting`` backend.
    """
    n, l, T = _check_sampling(n, l, T)
    delta = check_delta(delta)
    alphas = _check_orders(orders)
    if backend == "dp_accounting":
        if bound != "thm27":
            raise ValueError("the dp_accounting backend implements Theorem 27 only")
        rdp = rdp_dp_accounting(alphas, n, l, noise_multiplier, T)
    elif backend == "native":
        rdp = T * rdp_native(alphas, n, l, noise_multiplier, bound=bound)
    else:
        raise ValueError(f"backend must be 'dp_accounting' or 'native', got {backend!r}")
    eps, order = epsilon_from_rdp(alphas, rdp, delta, conversion=conversion)
    return DPMixAccounting(
        eps, delta, order, n, l, T, float(noise_multiplier), backend, conversion, bound
    )


def verified_figure(
    n: int,
    l: int,
    T: int,
    noise_multiplier: float,
    delta: float,
    *,
    backend: Backend = "dp_accounting",
    orders: Sequence[int] = DEFAULT_ORDERS,
) -> PrivacyFigure:
    """The **verified** :class:`~product_noise.privacy.PrivacyFigure` of ``T`` DPMix releases.

    WBK Theorem 27, improved conversion. See :func:`dpmix_epsilon` for the parameters.

    Parameters
    ----------
    n, l, T : int
        Records available, records per mix, releases.
    noise_multiplier : float
        ``s_eff = l/Δ``.
    delta : float
        Target δ in (0, 1).
    backend : {"dp_accounting", "native"}, default "dp_accounting"
        RDP implementation.
    orders : sequence of int
        Integer orders (default 2..256).

    Returns
    -------
    figure : PrivacyFigure
        (ε, δ) labelled ``"verified"``, with the optimal order in ``extra``.
    """
    acc = dpmix_epsilon(n, l, T, noise_multiplier, delta, backend=backend, orders=orders)
    return PrivacyFigure(acc.epsilon, acc.delta, VERIFIED, acc.source(), extra={"order": acc.order})


# --------------------------------------------------------------------------- thesis (claimed)
ThesisVariant = Literal["formula", "code"]


def thesis_rdp(
    orders: Sequence[int],
    n: int,
    l: int,
    delta_sq: float,
    *,
    variant: ThesisVariant = "formula",
) -> np.ndarray:
    """Per-release ``ε'_α`` exactly as the thesis computes it (**not a valid bound**).

    Parameters
    ----------
    orders : sequence of int
        Integer orders ``α ≥ 2``.
    n, l : int
        Records and mixture degree.
    delta_sq : float
        The thesis' ``Δ² = d_x/σ_x² + d_y/σ_y²`` (or any ``Δ²``; ``Δ²/l² = 1/s_eff²``).
    variant : {"formula", "code"}
        ``"formula"``: Fig. 3.1 as printed, ``(1/n)^j`` and ``√(B(2⌊j/2⌋)·B(2⌊j/2⌋))`` for
        ``j ≥ 3``, no ``min`` in ``G``. ``"code"``: App. A.3 as executed; its ``B`` uses its own
        argument ``k`` in ``exp(i(i-1)Δ²/(2k²))``, which overflows for every realistic ``Δ²``, so
        every order ``α ≥ 3`` is ``nan``/``inf`` and drops out of the ``min`` (we return ``inf``
        there unless the float64 evaluation is finite, which we reproduce literally).

    Returns
    -------
    rdp : ndarray of shape (len(orders),)
        The thesis' per-release ``ε'_α`` at each order (a **claimed** curve).

    Raises
    ------
    ValueError
        On out-of-range arguments or an unknown ``variant``.
    """
    alphas = _check_orders(orders)
    n, l, _ = _check_sampling(n, l, 1)
    delta_sq = check_positive("delta_sq", delta_sq)
    s2 = delta_sq / l**2
    # ln min(4 (e^{s²} − 1), 2 e^{s²}) in log space: e^{s²} overflows for s² > 709 while the
    # printed formula stays finite (ln(e^{s²} − 1) = s² + ln(1 − e^{−s²}))
    log_t2 = min(_LOG4 + s2 + math.log(-math.expm1(-s2)), math.log(2.0) + s2)
    out = np.empty(alphas.size)
    if variant == "formula":
        amax = int(alphas.max())
        lb = _log_forward_diffs(float(s2), 2 * (amax // 2))
        js = np.arange(3, amax + 1)
        log_c = _log_comb_matrix(alphas, js)
        m = -js * math.log(n) + log_c + lb[2 * (js // 2)] + _LOG4  # 4 G(α), (1/n)^j, B(2⌊j/2⌋)
        head = np.column_stack(
            [
                np.zeros(alphas.size),
                2 * math.log(l / n) + _log_comb_matrix(alphas, np.array([2]))[:, 0] + log_t2,
            ]
        )
        out = _logsumexp_rows(np.concatenate([head, m], axis=1)) / (alphas - 1)
    elif variant == "code":
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for idx, a in enumerate(alphas):
                out[idx] = _thesis_code_one(int(a), l, n, delta_sq)
    else:
        raise ValueError(f"variant must be 'formula' or 'code', got {variant!r}")
    return out


def _thesis_code_B(k: int, delta_sq: float) -> float:
    # App. A.3: def B(l, Delta2): sum (-1)**i comb(l, i) exp(i (i-1) Delta2 / (2 l**2)) -- the
    # parameter shadows the mixture degree
    total = 0.0
    for i in range(k + 1):
        total += (-1) ** i * math.comb(k, i) * float(np.exp(i * (i - 1) * delta_sq / (2 * k**2)))
    return total


def _thesis_code_one(alpha: int, l: int, n: int, delta_sq: float) -> float:
    g = 0.0
    for j in range(3, alpha + 1):
        prod = _thesis_code_B(2 * (j // 2), delta_sq) * _thesis_code_B(2 * (j - j // 2), delta_sq)
        root = math.sqrt(prod) if prod >= 0 else math.nan  # math.sqrt of inf is inf; nan stays
        g += (1 / n) ** j * math.comb(alpha, j) * root
    e = float(np.exp(delta_sq / l**2))
    term1 = (l / n) ** 2 * math.comb(alpha, 2) * min(4 * (e - 1), 2 * e)
    val = float(np.log(1 + term1 + 4 * g)) / (alpha - 1)
    return math.inf if math.isnan(val) else val


def thesis_epsilon(
    n: int,
    l: int,
    T: int,
    delta_sq: float,
    delta: float | None = None,
    *,
    variant: ThesisVariant = "formula",
    orders: Sequence[int] = THESIS_ORDERS,
) -> tuple[float, int]:
    """The thesis' claimed ε (classic conversion; ``δ = 1/n`` by default) and its order.

    Not a privacy guarantee: see :func:`thesis_rdp`.

    Parameters
    ----------
    n, l, T : int
        Records, mixture degree, releases.
    delta_sq : float
        The thesis' ``Δ²``.
    delta : float, optional
        δ in (0, 1); default ``1/n``.
    variant : {"formula", "code"}, default "formula"
        See :func:`thesis_rdp`.
    orders : sequence of int
        Orders searched (default the thesis' 2..100).

    Returns
    -------
    epsilon : float
        The claimed ε.
    order : int
        The minimising order.
    """
    n, l, T = _check_sampling(n, l, T)
    delta = 1.0 / n if delta is None else check_delta(delta)
    alphas = _check_orders(orders)
    rdp = T * thesis_rdp(alphas, n, l, delta_sq, variant=variant)
    return epsilon_from_rdp(alphas, rdp, delta, conversion="classic")


def thesis_figure(
    n: int,
    l: int,
    T: int,
    sigma_x: float,
    sigma_y: float,
    d_x: int,
    d_y: int,
    delta: float | None = None,
    *,
    variant: ThesisVariant = "code",
) -> PrivacyFigure:
    """The thesis' **claimed** figure for its own parameters (``Δ² = d_x/σ_x² + d_y/σ_y²``).

    ``variant="code"`` (default) is what the thesis' numbers come from; ``"formula"`` is its
    Fig. 3.1. Both are labelled ``claimed``: neither is a valid bound in general.

    Parameters
    ----------
    n, l, T : int
        Records, mixture degree, releases.
    sigma_x, sigma_y : float
        Per-coordinate noise standard deviations of the mixed features and labels.
    d_x, d_y : int
        The thesis' ``d_x`` and ``d_y`` (feature and label dimensions) in ``Δ²``.
    delta : float, optional
        δ in (0, 1); default ``1/n``.
    variant : {"code", "formula"}, default "code"
        See :func:`thesis_rdp`.

    Returns
    -------
    figure : PrivacyFigure
        (ε, δ) labelled ``"claimed"``, with the order in ``extra``.
    """
    sigma_x = check_positive("sigma_x", sigma_x)
    sigma_y = check_positive("sigma_y", sigma_y)
    delta_sq = d_x / sigma_x**2 + d_y / sigma_y**2
    eps, order = thesis_epsilon(n, l, T, delta_sq, delta, variant=variant)
    delta = 1.0 / n if delta is None else delta
    what = (
        "App. A.3 code (B overflows, only orders with finite terms survive)"
        if variant == "code"
        else "Fig. 3.1 formula ((1/n)^j, B(2⌊j/2⌋) for both indices)"
    )
    src = (
        f"thesis (Mahmud 2025) {what}: Δ²=d_x/σ_x²+d_y/σ_y², classic conversion, "
        f"n={n}, l={l}, T={T}, order {order}; not a valid DP bound"
    )
    return PrivacyFigure(eps, float(delta), CLAIMED, src, extra={"order": order})


# --------------------------------------------------------------------------- calibration
def calibrate_noise_multiplier(
    target_epsilon: float,
    delta: float,
    l: int,
    T: int,
    n: int,
    *,
    orders: Sequence[int] = DEFAULT_ORDERS,
    rtol: float = 1e-6,
    verify: bool = True,
) -> float:
    """Smallest ``s_eff = l/Δ`` (up to ``rtol``) whose verified ε is ``≤ target_epsilon``.

    Bisection on ``log s_eff`` with the native Theorem-27 accountant (ε is decreasing in
    ``s_eff``); the result is rounded to the safe (larger) side and, with ``verify=True``,
    re-checked with ``dp_accounting`` (at the optimal order and its neighbours) and raised by
    ``rtol`` steps until it passes.

    Parameters
    ----------
    target_epsilon : float
        Target verified ε > 0.
    delta : float
        δ in (0, 1).
    l, T, n : int
        Records per mix, releases, records available.
    orders : sequence of int
        Integer orders (default 2..256).
    rtol : float, default 1e-6
        Relative tolerance of the search (and step of the safety re-check).
    verify : bool, default True
        Re-check the result with ``dp_accounting``.

    Returns
    -------
    noise_multiplier : float
        ``s_eff = l/Δ`` (dimensionless), on the safe side.

    Raises
    ------
    ValueError
        On out-of-range arguments.
    """
    target_epsilon = check_epsilon(target_epsilon, "target_epsilon")
    delta = check_delta(delta)
    n, l, T = _check_sampling(n, l, T)
    alphas = _check_orders(orders)

    def eps(s: float) -> float:
        # Thm 27 up to order 64, Thm 9 above: an upper bound, so the result stays safe
        rdp = T * rdp_native(alphas, n, l, s, forward_diff_max=64)
        return epsilon_from_rdp(alphas, rdp, delta)[0]

    hi = smallest_noise(
        eps,
        target_epsilon,
        rtol=rtol,
        low=1e-4,
        high=1e6,
        what=f"l={l}, T={T}, n={n}, delta={delta}",
    )
    if verify:
        # dp_accounting at the native optimum and its neighbours: ε over a subset of orders is
        # >= ε over all orders, so passing here implies passing with every order
        best = dpmix_epsilon(n, l, T, hi, delta, backend="native", orders=alphas).order
        near = [a for a in range(best - 2, best + 3) if a >= 2]

        def eps_dp_accounting(s: float) -> float:
            return dpmix_epsilon(n, l, T, s, delta, backend="dp_accounting", orders=near).epsilon

        # the two backends agree to ~1e-10: hi rarely moves (by steps of rtol)
        hi = ensure_safe(eps_dp_accounting, hi, target_epsilon, increasing=False, step=rtol)
    return hi


def calibrate(
    target_epsilon: float,
    delta: float,
    l: int,
    T: int,
    n: int,
    *,
    x_diameter: float = 28.0,
    y_diameter: float = math.sqrt(2.0),
    orders: Sequence[int] = DEFAULT_ORDERS,
    verify: bool = True,
) -> float:
    """Common noise level ``σ = σ_x = σ_y`` for a verified ``(target_epsilon, delta)``.

    ``Δ² = (D_x² + D_y²)/σ²`` and ``s_eff = l/Δ``, so ``σ = s_eff √(D_x² + D_y²)/l``.

    Parameters
    ----------
    target_epsilon, delta : float
        Target verified ``(ε, δ)``.
    l, T, n : int
        Records per mix, releases, records available (per class for class-conditional mixing).
    x_diameter : float
        ``D_x``; default 28 = √784, MNIST pixels in [0, 1].
    y_diameter : float
        ``D_y``; default √2 (one-hot labels, noised); 0 when labels are not released noisily.
    orders, verify
        See :func:`calibrate_noise_multiplier`.

    Returns
    -------
    float
        ``σ``.
    """
    x_diameter = check_positive("x_diameter", x_diameter)
    if y_diameter < 0:
        raise ValueError(f"y_diameter must be >= 0, got {y_diameter!r}")
    s = calibrate_noise_multiplier(target_epsilon, delta, l, T, n, orders=orders, verify=verify)
    return s * math.hypot(x_diameter, y_diameter) / l


def _warn_thesis(claimed: PrivacyFigure, verified: PrivacyFigure) -> None:
    if claimed.epsilon < verified.epsilon:
        warnings.warn(
            f"the thesis formula claims ε = {claimed.epsilon:.4g} but the verified bound is "
            f"{verified.epsilon:.4g}: the claim under-counts the privacy loss",
            PrivacyWarning,
            stacklevel=3,
        )
