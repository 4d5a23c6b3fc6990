"""Local-DP Gaussian input perturbation: the blog pipeline of ``maxfieldEland/dp_nueral_nets``.

The recipe (``scripts/local_dp_data.py::gaussian_example``, ``iic/data.py::noise_x``) scales
each 28×28 image to unit L2 norm, adds ``N(0, s² I)`` with the *classic* scale
``s = Δ √(2 ln(1.25/δ)) / ε`` at ``Δ = 1`` and ``δ = 1/784²``, and clips to ``[0, ∞)``. The blog
states ε ∈ {150, 2000, 3000, 5000, 200000}. That statement is reproduced here as the
``claimed`` figure. Three things are wrong with it (``seed_mechanisms.md`` §4.2):

* the classic formula is a theorem only for ``ε < 1``;
* two non-negative unit vectors can be ``√2`` apart (signed ones ``2``), so ``Δ = 1`` is too
  small;
* the IIC pipeline re-draws the noise twice per image per epoch (80 releases over 40 epochs)
  and, by a bug, scales the whole 700-image *batch* to unit norm.

The ``verified`` figure is the exact Gaussian-DP curve (Balle & Wang 2018, Thm 8; the package's
:func:`~product_noise.mechanisms.gaussian.gaussian_delta`) with ``μ = Δ/s`` at the correct Δ,
composed over the ``k`` releases of each record (``μ·√k``, exact for Gaussians). When labels are
protected by k-ary randomized response, the two PLDs are composed by ``dp_accounting`` into one
figure.

Privacy unit: the whole record (image and label). Labels are either public
(``label_epsilon=None``: every verified figure says "images only; labels public") or randomized
once per record by k-ary randomized response with budget ``label_epsilon``.

This module is a negative-result baseline: pixel-space Gaussian LDP needs a per-pixel noise of
about 6 (ε = 1) to 0.2 (ε = 64) times the norm of the whole image.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..accounting.calibrate import GrowingBracket, NoBracketFoundError, calibrate, invert_profile
from ..mechanisms.base import MIN_DELTA
from ..mechanisms.gaussian import analytic_gaussian_sigma, classic_gaussian_sigma, gaussian_delta
from ..privacy import CLAIMED, VERIFIED, PrivacyFigure, PrivacyReport, PrivacyWarning
from ..validation import check_delta, check_epsilon, check_positive, check_positive_int

__all__ = [
    "BLOG_DELTA",
    "BLOG_LABEL_Q",
    "GaussianInputPerturbation",
    "record_sensitivity",
    "gdp_epsilon",
    "unary_encoding_epsilon",
    "rr_noise_parameter",
    "gaussian_rr_delta",
    "gaussian_rr_pld",
    "train_classifier",
]

#: the blog's δ = 1/n² with n = 28·28 (the image dimension, not the number of users)
BLOG_DELTA = 1.0 / 784**2
#: the blog's unary-encoding flip probability for labels (``scripts/driver.py``: p = 1 − q)
BLOG_LABEL_Q = 1e-17
#: the blog's IIC batch size (the batch that its ``l2_normalize`` scales to unit norm)
BLOG_BATCH = 700

_SENSITIVITY = {"nonnegative": math.sqrt(2.0), "signed": 2.0}
_NORMALIZE = ("image", "batch", "none")
_CALIBRATION = ("analytic", "classic")
#: above this total μ the dp_accounting PLD grid gets slow; the exact mixture is used instead
_PLD_MAX_MU = 1000.0
#: above this label ε the RR noise parameter underflows; the exact mixture is used instead
_PLD_MAX_LABEL_EPSILON = 500.0


# ============================================================================ formulas
def record_sensitivity(sensitivity: str | float) -> float:
    """L2 distance bound Δ between two records after unit-norm scaling.

    ``"nonnegative"``: two non-negative unit vectors are at most ``√2`` apart (orthogonal
    supports); ``"signed"``: ``2`` (``x`` and ``−x``); a float: that bound, as declared.
    """
    if isinstance(sensitivity, str):
        if sensitivity not in _SENSITIVITY:
            raise ValueError(
                f"sensitivity must be 'nonnegative', 'signed' or a positive float, got "
                f"{sensitivity!r}"
            )
        return _SENSITIVITY[sensitivity]
    return check_positive("sensitivity", sensitivity)


def gdp_epsilon(mu: float, delta: float) -> float:
    """Smallest ε ≥ 0 with ``gaussian_delta(ε, μ) ≤ δ``: the exact ε of ``μ``-GDP at δ.

    Unlike :meth:`Mechanism.epsilon` it has no cap on ε (the blog's settings reach ε ≈ 10⁹).
    The answer is rounded to the safe side.
    """
    mu = check_positive("mu", mu)
    delta = check_delta(delta)
    # the first trial ε lies near the answer for large μ (ε ≈ μ²/2 + μ·z)
    return invert_profile(
        lambda e: gaussian_delta(e, mu),
        delta,
        guess=max(1.0, mu * mu / 2 + 10 * mu),
        max_epsilon=math.inf,
    )


def unary_encoding_epsilon(q: float = BLOG_LABEL_Q, p: float | None = None) -> float:
    """ε of unary encoding (each one-hot bit kept as 1 w.p. ``p``, 0 turned to 1 w.p. ``q``):
    ``ln(p(1 − q) / (q(1 − p)))`` (Wang et al. 2017; the blog's ``ue_eps``).

    ``p=None`` means ``p = 1 − q`` *exactly*, as the blog writes it: the claimed label ε of its
    CNN pipeline is ``unary_encoding_epsilon(1e-17) = 2 ln((1 − q)/q) ≈ 78.29`` (its comment
    says "roughly 75"). In float64 ``1 − 1e-17`` rounds to 1, so the code as run keeps every
    label (and its ``ue_eps`` divides by zero): the labels are not randomized at all.
    """
    q = float(q)
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must lie strictly between 0 and 1, got {q!r}")
    if p is None:
        return 2.0 * (math.log1p(-q) - math.log(q))
    p = float(p)
    if not q < p <= 1.0:
        raise ValueError(f"p must lie in (q, 1], got {p!r}")
    if p == 1.0:
        return math.inf
    return math.log(p) + math.log1p(-q) - math.log(q) - math.log1p(-p)


def rr_noise_parameter(label_epsilon: float, n_classes: int) -> float:
    """dp_accounting's ``noise_parameter`` ρ of k-ary randomized response at ``label_epsilon``.

    RR keeps the label w.p. ``1 − ρ`` and otherwise outputs a uniform class (possibly the true
    one), so ``P[true] = e^ε/(e^ε + K − 1)`` and ``ρ = K/(e^ε + K − 1)``.
    """
    label_epsilon = check_epsilon(label_epsilon, "label_epsilon")
    k = check_positive_int("n_classes", n_classes, minimum=2)
    t = math.exp(-label_epsilon)  # ρ = K e^{-ε}/(1 + (K − 1)e^{-ε}): no overflow at large ε
    return float(k * t / (1.0 + (k - 1) * t))


def gaussian_rr_delta(
    epsilon: float | np.ndarray, mu: float, label_epsilon: float, n_classes: int
) -> float | np.ndarray:
    """Exact δ(ε) of ``μ``-GDP composed with K-ary RR at ``label_epsilon`` (worst pair: image
    shifted by Δ and label replaced).

    The RR privacy loss is ``+ε_L`` w.p. ``a = e^ε_L/(e^ε_L + K − 1)``, ``−ε_L`` w.p.
    ``b = 1/(e^ε_L + K − 1)`` and 0 w.p. ``(K − 2)b``; for a product pair
    ``H_{e^ε}(P₁P₂‖Q₁Q₂) = E_{L₂}[H_{e^{ε−L₂}}(P₁‖Q₁)]``, and the Gaussian hockey-stick formula
    holds for every real argument. Used to calibrate and to check the dp_accounting PLD.
    """
    el = check_epsilon(label_epsilon, "label_epsilon")
    k = check_positive_int("n_classes", n_classes, minimum=2)
    e = np.asarray(epsilon, dtype=float)
    z = math.exp(-el) * (k - 1)  # (K − 1)e^{−ε_L}: a = 1/(1 + z), b = e^{−ε_L}/(1 + z)
    a = 1.0 / (1.0 + z)
    b = math.exp(-el) / (1.0 + z)
    val = (
        a * gaussian_delta(e - el, mu)
        + b * gaussian_delta(e + el, mu)
        + (k - 2) * b * gaussian_delta(e, mu)
    )
    val = np.clip(val, 0.0, 1.0)
    return float(val) if np.ndim(val) == 0 else val


def _pld_discretization(mu: float) -> float:
    """Grid of the PLD: 1e-4, coarser for large μ (the privacy loss spans ~20μ)."""
    return max(1e-4, mu / 2000.0)


def gaussian_rr_pld(
    mu: float,
    label_epsilon: float,
    n_classes: int,
    value_discretization_interval: float | None = None,
) -> Any:
    """Pessimistic dp_accounting PLD of ``μ``-GDP (images, all releases) composed with K-ary
    RR (labels, once).

    The Gaussian pair ``N(0, 1)`` vs ``N(μ, 1)`` is ``from_gaussian_mechanism`` with unit
    standard deviation and sensitivity μ (its add/remove pair *is* that shift; its REPLACE_ONE
    relation would double the shift); RR uses dp_accounting's REPLACE_ONE relation.
    """
    from dp_accounting.pld import privacy_loss_distribution as pld_lib

    mu = check_positive("mu", mu)
    disc = value_discretization_interval or _pld_discretization(mu)
    g = pld_lib.from_gaussian_mechanism(1.0, sensitivity=mu, value_discretization_interval=disc)
    rr = pld_lib.from_randomized_response(
        rr_noise_parameter(label_epsilon, n_classes),
        int(n_classes),
        value_discretization_interval=disc,
    )
    return g.compose(rr)


# ============================================================================ helpers
def _check_matrix(X: Any, name: str = "X") -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array, got {type(X).__name__}") from err
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_records, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_labels(y: Any, n: int, n_classes: int | None, name: str = "y") -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be 1-D with {n} entries, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must hold labels 0..K-1, got {int(arr.min())}")
    if n_classes is not None and arr.size and arr.max() >= n_classes:
        raise ValueError(f"{name} has label {int(arr.max())} >= n_classes={n_classes}")
    return arr.astype(np.int64)


def _row_keys(X: np.ndarray, release: int) -> list[tuple[bytes, int, int]]:
    """One key per row: (content digest, occurrence of that content in X, release)."""
    seen: dict[bytes, int] = {}
    keys = []
    for row in X:
        d = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
        j = seen.get(d, 0)
        seen[d] = j + 1
        keys.append((d, j, release))
    return keys


# ============================================================================ transformer
class GaussianInputPerturbation(TransformerMixin, BaseEstimator):
    """Local-DP input perturbation: scale each record to unit L2 norm, add ``N(0, σ² I)``.

    Parameters
    ----------
    epsilon : float, optional
        Target ε. ``calibration="analytic"``: of the whole record over all ``releases`` (and
        the label, if randomized). ``calibration="classic"``: the recipe's per-release ε (the
        claimed figure). Give ``epsilon`` or ``sigma``, not both.
    delta : float
        Target δ (the blog: :data:`BLOG_DELTA` = 1/784²). For local DP δ should be far below
        1/(number of users).
    sigma : float, optional
        Per-coordinate noise standard deviation, instead of a calibration (no claimed figure).
    sensitivity : {"nonnegative", "signed"} or float
        The record domain after normalisation, hence Δ: ``√2`` for non-negative records, ``2``
        for signed ones, or a declared bound (≥ √2 with unit-norm scaling; with
        ``normalize="none"`` rows must then have norm ≤ Δ/2). Used for the verified figure and
        for analytic calibration; non-negative records and row norms are checked.
    calibration : {"analytic", "classic"}
        ``"analytic"``: the smallest σ whose *verified* ε is ``epsilon``.
        ``"classic"``: ``σ = Δc √(2 ln(1.25/δ))/ε`` (a theorem only for ε < 1; a
        :class:`PrivacyWarning` is emitted when ε ≥ 1), the blog's recipe.
    claimed_sensitivity : float, optional
        The Δc of the classic formula (the blog: 1.0). Default: the ``sensitivity`` Δ. Only
        with ``calibration="classic"``.
    normalize : {"image", "batch", "none"}
        ``"image"``: each record scaled to unit L2 norm (an all-zero record stays zero).
        ``"batch"``: **the blog's bug**, for faithful reproduction only: consecutive batches of
        ``batch_size`` records are scaled *together* to unit norm (each image then has norm
        ≈ 1/√batch_size). The verified figure still holds for the batch release, whose
        difference between neighbours is at most Δ, but the mechanism is no longer local: the
        batcher sees every image. ``"none"``: records are used as given and must have norm
        ≤ 1 (≤ Δ/2 for a declared Δ; checked), e.g. already normalised or clipped.
    batch_size : int
        Batch of the ``"batch"`` normalisation (the blog's IIC: 700).
    releases : int
        Independent noise draws per record (``transform(X, release=r)``, ``0 ≤ r <
        releases``). The verified figure composes them: ``μ_total = μ√releases``. The blog's
        IIC pipeline makes 80 (2 per epoch, 40 epochs).
    clip_min : float or None
        Post-processing clip of the noisy records from below (the blog: 0.0). Free.
    label_epsilon : float, optional
        Randomize labels by K-ary randomized response at this ε, once per record; composed with
        the images into one verified figure. ``None``: labels are treated as public.
    n_classes : int, optional
        K for the labels (the public label domain). Default: ``max(y) + 1`` at ``fit``.
    random_state : int, Generator or None
        Seed of the noise.

    Attributes
    ----------
    sigma_ : float
        The per-coordinate noise standard deviation.
    sensitivity_ : float
        Δ used for the verified figure.
    mu_ : float
        ``Δ/σ`` of one release; ``mu_total_ = mu_·√releases``.
    privacy_ : dict
        ``{"claimed": PrivacyFigure | None, "verified": PrivacyFigure}``.
    n_features_in_ : int

    Noise is drawn once per record and release and cached: a record is identified by its
    content and its occurrence among equal rows of the array passed, so transforming the same
    data again (or a subset, or in another order) returns the same draws, and equal records
    still get independent noise. Arrays are keyed after conversion to float64.
    """

    def __init__(
        self,
        epsilon: float | None = None,
        delta: float = 1e-6,
        *,
        sigma: float | None = None,
        sensitivity: str | float = "nonnegative",
        calibration: str = "analytic",
        claimed_sensitivity: float | None = None,
        normalize: str = "image",
        batch_size: int = BLOG_BATCH,
        releases: int = 1,
        clip_min: float | None = 0.0,
        label_epsilon: float | None = None,
        n_classes: int | None = None,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.sigma = sigma
        self.sensitivity = sensitivity
        self.calibration = calibration
        self.claimed_sensitivity = claimed_sensitivity
        self.normalize = normalize
        self.batch_size = batch_size
        self.releases = releases
        self.clip_min = clip_min
        self.label_epsilon = label_epsilon
        self.n_classes = n_classes
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> dict[str, Any]:
        if (self.epsilon is None) == (self.sigma is None):
            raise ValueError("give exactly one of epsilon= (calibrate) or sigma= (fixed noise)")
        p: dict[str, Any] = {}
        p["delta"] = check_delta(self.delta)
        if p["delta"] < MIN_DELTA:
            raise ValueError(f"delta must be >= {MIN_DELTA:g}, got {self.delta!r}")
        p["epsilon"] = None if self.epsilon is None else check_epsilon(self.epsilon)
        p["sigma"] = None if self.sigma is None else check_positive("sigma", self.sigma)
        p["Delta"] = record_sensitivity(self.sensitivity)
        if self.normalize in ("image", "batch") and p["Delta"] < math.sqrt(2.0):
            raise ValueError(
                f"sensitivity={self.sensitivity!r} is below √2, but two non-negative unit-norm "
                "records can be √2 apart (signed ones 2): it is not a bound. To reproduce a "
                "source's smaller Δ, pass it as claimed_sensitivity with calibration='classic'"
            )
        if self.calibration not in _CALIBRATION:
            raise ValueError(
                f"calibration must be 'analytic' or 'classic', got {self.calibration!r}"
            )
        if self.claimed_sensitivity is not None:
            if self.calibration != "classic" or self.sigma is not None:
                raise ValueError("claimed_sensitivity applies to calibration='classic' only")
            check_positive("claimed_sensitivity", self.claimed_sensitivity)
        if self.normalize not in _NORMALIZE:
            raise ValueError(
                f"normalize must be one of {', '.join(_NORMALIZE)}, got {self.normalize!r}"
            )
        p["batch_size"] = check_positive_int("batch_size", self.batch_size)
        p["releases"] = check_positive_int("releases", self.releases)
        if self.clip_min is not None:
            if isinstance(self.clip_min, bool) or not isinstance(self.clip_min, Real):
                raise ValueError(f"clip_min must be a number or None, got {self.clip_min!r}")
            if not math.isfinite(float(self.clip_min)):
                raise ValueError(f"clip_min must be finite, got {self.clip_min!r}")
        p["label_epsilon"] = None
        if self.label_epsilon is not None:
            p["label_epsilon"] = check_epsilon(self.label_epsilon, "label_epsilon")
            if (
                self.calibration == "analytic"
                and p["epsilon"] is not None
                and p["label_epsilon"] >= p["epsilon"]
            ):
                raise ValueError(
                    f"label_epsilon={self.label_epsilon!r} must be < epsilon={self.epsilon!r} "
                    "(the label budget is part of the record's budget)"
                )
        if self.n_classes is not None:
            if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, Integral):
                raise ValueError(f"n_classes must be an integer >= 2, got {self.n_classes!r}")
            check_positive_int("n_classes", self.n_classes, minimum=2)
        return p

    def _check_domain(self, X: np.ndarray, Delta: float) -> None:
        if self.sensitivity == "nonnegative" and X.min() < 0:
            raise ValueError(
                "X has negative entries but sensitivity='nonnegative' (Δ = √2) assumes "
                "non-negative records; pass sensitivity='signed' (Δ = 2)"
            )
        if self.normalize == "none":
            # non-negative (signed) rows of norm ≤ 1 are ≤ √2 (2) apart; a declared Δ: norm ≤ Δ/2
            bound = 1.0 if isinstance(self.sensitivity, str) else Delta / 2.0
            norms = np.linalg.norm(X, axis=1)
            if norms.max() > bound * (1 + 1e-9):
                raise ValueError(
                    f"normalize='none' needs rows of L2 norm <= {bound:.4g} for sensitivity "
                    f"{self.sensitivity!r} (Δ = {Delta:.4g}); the largest is {norms.max():.4g}"
                )

    def _verified(
        self,
        sigma: float,
        Delta: float,
        releases: int,
        label_epsilon: float | None,
        n_classes: int | None,
        delta: float,
    ) -> PrivacyFigure:
        """The verified figure of the whole record over all releases."""
        k = releases
        mu_total = Delta / sigma * math.sqrt(k)
        domain = (
            f"unit-norm {self.sensitivity} records"
            if isinstance(self.sensitivity, str)
            else "declared bound"
        )
        base = (
            f"exact Gaussian-DP curve (Balle-Wang), σ = {sigma:.4g}, Δ = {Delta:.4g} "
            f"({domain}), μ = Δ/σ·√{k} = {mu_total:.4g} over {k} "
            f"release{'s' if k > 1 else ''} per record"
        )
        if self.normalize == "batch":
            base += "; batch-normalised (blog bug): DP of each batch release, not local DP"
        extra: dict[str, Any] = {"mu_total": mu_total, "sigma": sigma, "releases": k}
        if label_epsilon is None:
            return PrivacyFigure(
                gdp_epsilon(mu_total, delta),
                delta,
                VERIFIED,
                base + "; images only; labels public",
                extra,
            )
        assert n_classes is not None
        extra.update(label_epsilon=label_epsilon, n_classes=n_classes)
        if mu_total <= _PLD_MAX_MU and label_epsilon <= _PLD_MAX_LABEL_EPSILON:
            pld = gaussian_rr_pld(mu_total, label_epsilon, n_classes)
            eps = float(pld.get_epsilon_for_delta(delta))
            how = (
                "composed by dp_accounting (pessimistic PLD, grid "
                f"{_pld_discretization(mu_total):.2g})"
            )
        else:  # the exact mixture: the PLD grid is too slow this far out
            eps = _mixture_epsilon(mu_total, label_epsilon, n_classes, delta)
            how = "composed exactly (mixture over the RR privacy loss)"
        return PrivacyFigure(
            eps,
            delta,
            VERIFIED,
            base
            + f"; labels by {n_classes}-ary randomized response at ε_L = {label_epsilon:.4g}, "
            + how,
            extra,
        )

    @staticmethod
    def _mu_total_for(
        epsilon: float, delta: float, label_epsilon: float | None, k: int | None
    ) -> float:
        """Largest total μ with exact δ(ε) ≤ δ (images composed with the labels' RR)."""
        if label_epsilon is None or k is None:
            return 1.0 / analytic_gaussian_sigma(epsilon, delta, 1.0)

        def delta_of(mu: float) -> float:
            return float(gaussian_rr_delta(epsilon, mu, label_epsilon, k))

        # δ increases with μ: the largest μ meeting δ, from e^±5 by factors e^5, down to e^-60
        five = math.exp(5.0)
        bracket = GrowingBracket(1.0 / five, five, factor=five, min_value=math.exp(-60.0))
        try:
            return calibrate(
                delta_of, delta, bracket, increasing=True, log_scale=True, log_metric=True
            )
        except NoBracketFoundError as err:
            raise NoBracketFoundError(
                f"label_epsilon={label_epsilon} leaves no room for the images at "
                f"(epsilon={epsilon}, delta={delta})"
            ) from err

    # ------------------------------------------------------------------ API
    def fit(self, X: Any, y: Any = None) -> GaussianInputPerturbation:
        """Check ``X`` (and ``y``), calibrate σ and compute ``privacy_``. Draws no noise."""
        p = self._check_params()
        X = _check_matrix(X)
        Delta = p["Delta"]
        label_eps = p["label_epsilon"]
        n_classes = self.n_classes
        if label_eps is not None:
            if y is None:
                raise ValueError("label_epsilon is set: fit needs the labels y")
            yy = _check_labels(y, X.shape[0], n_classes)
            if n_classes is None:
                n_classes = max(2, int(yy.max()) + 1)
        elif y is not None:
            _check_labels(y, X.shape[0], n_classes)
        # everything is computed into locals first: no partial state on failure
        self._check_domain(X, Delta)
        k = p["releases"]
        claimed = None
        warn_msg = None
        if p["sigma"] is not None:
            sigma = p["sigma"]
        elif self.calibration == "classic":
            dc = Delta if self.claimed_sensitivity is None else float(self.claimed_sensitivity)
            sigma = classic_gaussian_sigma(p["epsilon"], p["delta"], dc)
            claimed = PrivacyFigure(
                p["epsilon"],
                p["delta"],
                CLAIMED,
                f"blog recipe: classic Gaussian s = Δ√(2 ln(1.25/δ))/ε with Δ = {dc:.4g} "
                "(Dwork-Roth Thm A.1, valid only for ε < 1), per release"
                + (f", ignoring the {k} re-draws" if k > 1 else "")
                + ("" if label_eps is None else ", labels not counted"),
                {"claimed_sensitivity": dc, "sigma": sigma},
            )
            if p["epsilon"] >= 1.0:
                warn_msg = (
                    f"classic Gaussian calibration at epsilon={p['epsilon']:g} >= 1, outside "
                    "the Dwork-Roth theorem (valid for epsilon < 1)"
                    + (f" and with Δ = {dc:.4g} < true Δ = {Delta:.4g}" if dc < Delta else "")
                    + "; see privacy_['verified'] for the true epsilon"
                )
        else:
            mu_t = self._mu_total_for(p["epsilon"], p["delta"], label_eps, n_classes)
            sigma = Delta * math.sqrt(k) / mu_t
        verified = self._verified(sigma, Delta, k, label_eps, n_classes, p["delta"])
        if self.sigma is None and self.calibration == "analytic" and label_eps is not None:
            # the pessimistic PLD grid lies above the exact curve: add noise until it agrees
            for _ in range(200):
                if verified.epsilon <= p["epsilon"] * (1 + 1e-9):
                    break
                sigma *= 1.0005
                verified = self._verified(sigma, Delta, k, label_eps, n_classes, p["delta"])
        # commit
        self.n_features_in_ = int(X.shape[1])
        self.sensitivity_ = Delta
        self.sigma_ = float(sigma)
        self.releases_ = k
        self.label_epsilon_ = label_eps
        self.n_classes_ = n_classes
        self.mu_ = Delta / self.sigma_
        self.mu_total_ = self.mu_ * math.sqrt(k)
        self.privacy_ = {CLAIMED: claimed, VERIFIED: verified}
        self._rng = np.random.default_rng(self.random_state)
        self._noise: dict[tuple[bytes, int, int], np.ndarray] = {}
        self._labels: dict[tuple[bytes, int, int], tuple[bool, int]] = {}
        if warn_msg is not None:
            warnings.warn(
                warn_msg + f": verified ε = {verified.epsilon:.4g} at δ = {verified.delta:g}.",
                PrivacyWarning,
                stacklevel=2,
            )
        return self

    def _check_fitted(self, X: Any) -> np.ndarray:
        if not hasattr(self, "sigma_"):
            raise ValueError(
                "this GaussianInputPerturbation is not fitted yet: call fit or fit_transform first"
            )
        X = _check_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but the transformer was fitted with "
                f"{self.n_features_in_}"
            )
        self._check_domain(X, self.sensitivity_)
        return X

    def _check_release(self, release: Any) -> int:
        if isinstance(release, bool) or not isinstance(release, Integral):
            raise ValueError(f"release must be an integer, got {release!r}")
        if not 0 <= int(release) < self.releases_:
            raise ValueError(
                f"release must lie in [0, releases={self.releases_}), got {release!r}: a further "
                "draw would not be covered by privacy_ (raise releases)"
            )
        return int(release)

    @property
    def privacy_report_(self) -> PrivacyReport:
        """``privacy_`` as a :class:`~product_noise.privacy.PrivacyReport` (after ``fit``;
        ``privacy_`` itself is unchanged)."""
        claimed = self.privacy_[CLAIMED]
        return PrivacyReport(
            self.privacy_[VERIFIED],
            () if claimed is None else (claimed,),
            source="product_noise.baselines.GaussianInputPerturbation",
            what=f"Gaussian input perturbation, {self.releases_} release(s) per record",
        )

    def normalized(self, X: Any) -> np.ndarray:
        """``X`` after the configured normalisation (no noise): the noiseless records."""
        X = _check_matrix(X)
        if self.normalize not in _NORMALIZE:
            raise ValueError(
                f"normalize must be one of {', '.join(_NORMALIZE)}, got {self.normalize!r}"
            )
        if self.normalize == "image":
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
        if self.normalize == "batch":
            out = np.zeros_like(X)
            bs = check_positive_int("batch_size", self.batch_size)
            for s in range(0, X.shape[0], bs):
                block = X[s : s + bs]
                n = np.linalg.norm(block)
                if n > 0:
                    out[s : s + bs] = block / n
            return out
        return X.copy()

    def noise(self, X: Any, release: int = 0) -> np.ndarray:
        """The cached noise rows of ``X`` at ``release`` (drawn now for unseen records)."""
        X = self._check_fitted(X)
        release = self._check_release(release)
        keys = _row_keys(X, release)
        new = [kk for kk in dict.fromkeys(keys) if kk not in self._noise]
        if new:
            draws = self.sigma_ * self._rng.standard_normal((len(new), X.shape[1]))
            for kk, row in zip(new, draws):
                self._noise[kk] = row
        return np.stack([self._noise[kk] for kk in keys])

    def transform(self, X: Any, release: int = 0) -> np.ndarray:
        """Normalise, add this record's noise of ``release``, clip from below by ``clip_min``."""
        X = self._check_fitted(X)
        out = self.normalized(X) + self.noise(X, release)
        if self.clip_min is not None:
            np.maximum(out, float(self.clip_min), out=out)
        return out

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``fit(X, y)`` then ``transform(X)`` (release 0)."""
        return self.fit(X, y, **fit_params).transform(X)

    def randomize_labels(self, X: Any, y: Any, release: int = 0) -> np.ndarray:
        """K-ary randomized response on ``y`` (the labels of the records ``X``), once per record.

        With probability ``1 − ρ`` (``ρ = K/(e^ε_L + K − 1)``) the label is kept, otherwise a
        uniform class is output. ``label_epsilon=None``: labels are public and returned as is.
        """
        X = self._check_fitted(X)
        yy = _check_labels(y, X.shape[0], self.n_classes_)
        if self.label_epsilon_ is None:
            return yy.copy()
        release = self._check_release(release)
        rho = rr_noise_parameter(self.label_epsilon_, self.n_classes_)
        keys = _row_keys(X, release)
        new = [kk for kk in dict.fromkeys(keys) if kk not in self._labels]
        if new:
            u = self._rng.random(len(new))
            c = self._rng.integers(0, self.n_classes_, len(new))
            for kk, ui, ci in zip(new, u, c):
                self._labels[kk] = (bool(ui >= rho), int(ci))
        out = np.empty_like(yy)
        for i, kk in enumerate(keys):
            keep, c = self._labels[kk]
            out[i] = yy[i] if keep else c
        return out

    def label_transition_matrix(self) -> np.ndarray:
        """``T[i, j] = P[output j | label i]`` of the label randomization (identity if public)."""
        if not hasattr(self, "sigma_"):
            raise ValueError("this GaussianInputPerturbation is not fitted yet: call fit first")
        if self.label_epsilon_ is None:
            k = self.n_classes_ or 1
            return np.eye(k)
        k = self.n_classes_
        rho = rr_noise_parameter(self.label_epsilon_, k)
        return (1 - rho) * np.eye(k) + rho / k

    def privatize(self, X: Any, y: Any, release: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The released records: ``(transform(X, release), randomize_labels(X, y, release))``."""
        return self.transform(X, release), self.randomize_labels(X, y, release)


def _mixture_epsilon(mu: float, label_epsilon: float, n_classes: int, delta: float) -> float:
    """Smallest ε with :func:`gaussian_rr_delta` ≤ δ (safe side; no cap on ε)."""
    return invert_profile(
        lambda e: gaussian_rr_delta(e, mu, label_epsilon, n_classes),
        delta,
        guess=max(1.0, mu * mu / 2 + 10 * mu + label_epsilon),
        max_epsilon=math.inf,
    )


# ============================================================================ harness
def _default_model(n_features: int, n_classes: int) -> Any:
    from torch import nn

    return nn.Sequential(nn.Linear(n_features, 64), nn.ReLU(), nn.Linear(64, n_classes))


def train_classifier(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    transition: np.ndarray | None = None,
    progress: bool = False,
    desc: str = "input noise",
) -> tuple[float, int]:
    """Train ``model`` (a torch module on flat rows) with Adam on released records ``(X, y)``
    and return ``(test accuracy, optimizer steps)``. Post-processing only: no privacy cost.

    ``transition`` (``T[i, j] = P[released label j | label i]``): forward loss correction for
    randomized labels, the loss being the NLL of ``softmax(logits) @ T``.
    """
    import torch
    from torch import nn

    from ..training.loop import fit_minibatch

    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = check_positive("lr", lr)
    torch.manual_seed(seed)
    xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    T = None if transition is None else torch.from_numpy(transition.astype(np.float32))

    def loss_of(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if T is not None:  # P[released label] = softmax(logits) @ T
            logp = torch.log(torch.softmax(logits, 1) @ T + 1e-12)
            return nn.functional.nll_loss(logp, yt[idx])
        return nn.functional.cross_entropy(logits, yt[idx])

    steps = fit_minibatch(
        model,
        xt,
        loss_of,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        progress=progress,
        desc=desc,
    )
    model.eval()
    with torch.no_grad():
        xe = torch.from_numpy(np.ascontiguousarray(X_test, dtype=np.float32))
        pred = torch.cat([model(xe[i : i + 4096]).argmax(1) for i in range(0, len(xe), 4096)])
        acc = float((pred.numpy() == np.asarray(y_test)).mean())
    return acc, steps
