"""The DPMix publisher: ``T`` noisy means of ``l`` records drawn without replacement.

``x̃_t = X C_t + Q_t``, ``ỹ_t = Y C_t + R_t`` (Lee, Kim, Lee, Suh, ISIT 2019), with ``C_t`` the
``1/l``-weighted indicator of a uniformly random ``l``-subset, ``Q_t ~ N(0, σ_x² I)`` and
``R_t ~ N(0, σ_y² I)``.

Implementation: subsets are drawn block by block (``chunk_size`` releases at a time) with a
vectorised exact sampler (rejection of rows with a repeated index when that is cheap, random keys
+ ``argpartition`` otherwise); the means are computed by ``torch.nn.functional.embedding_bag``
(``mode="mean"``), which never materialises the ``(chunk, l, d)`` gather. Memory beyond the input
and the output is ``O(chunk_size · (l + d))``. Block ``b`` of class ``c`` draws from its own
``numpy`` generator seeded by ``SeedSequence(seed, spawn_key=(c, b))``, so a release is
reproducible from ``(seed, chunk_size)``.

Class-conditional mixing (``mixing="class"``, used by the thesis' sweeps) mixes records of one
class only; the released label is the class' one-hot vector, unnoised. Privacy is then stated for
**same-label replace-one** neighbours (class labels and class counts are public): a record only
affects its own class' releases, so ε is the maximum over classes (parallel composition), each
class accounted with ``n_c`` records and ``T_c`` releases.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from product_noise.privacy import VERIFIED, PrivacyFigure, PrivacyReport
from product_noise.validation import check_delta, check_positive, check_positive_int

from .accounting import (
    DEFAULT_ORDERS,
    Backend,
    calibrate_noise_multiplier,
    dpmix_epsilon,
    thesis_figure,
)
from .bounds import ONE_HOT_DIAMETER, DataBound, OnViolation, PixelBound, check_one_hot

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["DPMix", "Release", "sample_subsets"]

Mixing = Literal["global", "class"]

_KEYS_BUDGET = 1 << 23  # random keys per sub-block of the argpartition sampler (64 MB float64)


# --------------------------------------------------------------------------- subset sampling
def _log_no_repeat(n: int, l: int) -> float:
    """log P(l independent uniform draws from [n] are distinct)."""
    return float(np.sum(np.log1p(-np.arange(l) / n)))


def sample_subsets(rng: np.random.Generator, n: int, l: int, size: int) -> np.ndarray:
    """``size`` independent uniform ``l``-subsets of ``{0..n-1}`` (rows of an int64 array).

    Exact. When the chance that ``l`` draws with replacement are all distinct is ≥ 5 %, rows are
    drawn with replacement and rows with a repeat are redrawn (conditioning an i.i.d. tuple on
    being repeat-free gives a uniform ordered tuple of distinct elements). Otherwise each row is
    the ``l`` smallest of ``n`` i.i.d. uniform keys (``argpartition``), ``O(n)`` per row.
    """
    if l > n:
        raise ValueError(f"l={l} exceeds the number of records n={n}")
    if l == n:
        return np.tile(np.arange(n, dtype=np.int64), (size, 1))
    log_p = _log_no_repeat(n, l)
    if log_p >= math.log(0.05) and l * math.log2(max(l, 2)) / math.exp(log_p) < n:
        out = rng.integers(0, n, size=(size, l), dtype=np.int64)
        todo = np.arange(size)
        while todo.size:
            rows = np.sort(out[todo], axis=1)
            bad = (rows[:, 1:] == rows[:, :-1]).any(axis=1)
            todo = todo[bad]
            if todo.size:
                out[todo] = rng.integers(0, n, size=(todo.size, l), dtype=np.int64)
        return out
    out = np.empty((size, l), dtype=np.int64)
    step = max(1, _KEYS_BUDGET // n)
    for s in range(0, size, step):
        e = min(size, s + step)
        # float64 keys: a tie has probability < n² 2^-53 per row, so the l smallest keys form a
        # uniformly random subset up to that (negligible) event
        keys = rng.random((e - s, n))
        out[s:e] = np.argpartition(keys, l - 1, axis=1)[:, :l]
    return out


# --------------------------------------------------------------------------- inputs
def _to_numpy(a: Any, name: str) -> tuple[np.ndarray, bool]:
    """Return a NumPy view/copy and whether the input was a torch tensor."""
    try:
        import torch

        if isinstance(a, torch.Tensor):
            return a.detach().cpu().numpy(), True
    except ImportError:  # pragma: no cover
        pass
    if isinstance(a, np.ndarray):
        return a, False
    raise TypeError(f"{name} must be a numpy.ndarray or torch.Tensor, got {type(a).__name__}")


def _float_features(X: np.ndarray) -> np.ndarray:
    if X.dtype in (np.float32, np.float64):
        return X
    if np.issubdtype(X.dtype, np.number) or X.dtype == bool:
        return X.astype(np.float32)
    raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")


def _publish_inputs(
    X: Any, Y: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...], bool]:
    """``publish``'s input checks: the features as float rows ``(n, d)``, the labels as given
    and as class indices, the feature shape, and whether ``X`` was a torch tensor."""
    Xn, is_torch = _to_numpy(X, "X")
    Yn, _ = _to_numpy(Y, "Y")
    if Xn.ndim < 2:
        raise ValueError(f"X must have shape (n, features...), got {Xn.shape}")
    n = Xn.shape[0]
    if n == 0:
        raise ValueError(f"X has no records (shape {Xn.shape}): nothing to publish")
    feat_shape = Xn.shape[1:]
    X2 = _float_features(np.ascontiguousarray(Xn.reshape(n, -1)))
    if not np.isfinite(X2).all():
        raise ValueError("X contains NaN or infinite values")
    labels = check_one_hot(Yn, n)
    return X2, Yn, labels, feat_shape, is_torch


def _mix_block(
    rng: np.random.Generator,
    idx: torch.Tensor,
    Xt: torch.Tensor,
    Yt: torch.Tensor,
    out_x: np.ndarray,
    out_y: np.ndarray,
    c: int,
    sigma_x: float,
    sigma_y: float | None,
) -> None:
    """Write one block of mixes into ``out_x``/``out_y``: the means of the rows ``idx`` plus
    Gaussian noise (features, then labels; class-conditional: the class' one-hot label)."""
    import torch
    import torch.nn.functional as F

    size, d = out_x.shape
    K = out_y.shape[1]
    dtype = out_x.dtype
    xs = torch.from_numpy(out_x)
    xs.copy_(F.embedding_bag(idx, Xt, mode="mean"))
    xs.add_(torch.from_numpy(rng.standard_normal((size, d), dtype=dtype)), alpha=sigma_x)
    ys = torch.from_numpy(out_y)
    if sigma_y is None:
        ys.zero_()
        ys[:, c] = 1
    else:
        ys.copy_(F.embedding_bag(idx, Yt, mode="mean"))
        ys.add_(torch.from_numpy(rng.standard_normal((size, K), dtype=dtype)), alpha=sigma_y)


@dataclass
class Release:
    """Metadata of the last :meth:`DPMix.publish` call.

    Attributes
    ----------
    seed : int
        The entropy used (pass it back as ``seed`` to reproduce the release).
    n : int
        Records.
    class_counts, class_releases : dict
        Per-class ``n_c`` and ``T_c`` (class-conditional mixing) or ``{-1: n}``, ``{-1: T}``.
    sigma_x, sigma_y : float
        Noise levels actually used (``sigma_y`` is None when labels are not noised).
    x_diameter, y_diameter : float
        ``D_x`` and ``D_y`` of the declared bound.
    """

    seed: int
    n: int
    dim: int
    num_classes: int
    class_counts: dict[int, int]
    class_releases: dict[int, int]
    sigma_x: float
    sigma_y: float | None
    x_diameter: float
    y_diameter: float
    extra: dict = field(default_factory=dict)


class DPMix:
    """DPMix publisher (Lee, Kim, Lee, Suh, ISIT 2019).

    Parameters
    ----------
    l : int
        Records per mix (mixture degree), ``1 ≤ l ≤ n`` (``≤ n_c`` per class).
    T : int
        Number of synthetic records released (in total; split evenly over classes for
        class-conditional mixing, the first ``T mod K`` classes getting one more).
    sigma_x, sigma_y : float, optional
        Noise standard deviations. ``sigma_y`` defaults to ``sigma_x`` (the thesis' convention)
        for global mixing and must be left unset for class-conditional mixing (labels are
        released exactly). Give either ``sigma_x`` or ``target_epsilon``.
    target_epsilon, target_delta : float, optional
        Solve ``σ = σ_x = σ_y`` at :meth:`publish` time (when ``n`` is known) so that the
        *verified* ε at ``target_delta`` is ``≤ target_epsilon``.
    bound : DataBound
        Declared feature bound (default :class:`~dpmix.bounds.PixelBound` [0, 1]).
    mixing : {"global", "class"}
        Mix any ``l`` records, or ``l`` records of one class.
    on_violation : {"raise", "clip"}
        Data outside ``bound``: reject (default) or clip with a warning.
    clamp_negative : bool
        Post-processing used by the thesis: set negative entries of ``X̃`` and ``Ỹ`` to 0.
        Off by default; post-processing does not change the privacy.
    chunk_size : int
        Releases per block (memory bound; part of the random-stream definition).
    progress : bool, optional
        tqdm progress bar; default: on when ``T ≥ 200_000``.
    seed : int, optional
        Default seed for :meth:`publish`.
    """

    def __init__(
        self,
        l: int,
        T: int,
        sigma_x: float | None = None,
        sigma_y: float | None = None,
        *,
        target_epsilon: float | None = None,
        target_delta: float | None = None,
        bound: DataBound | None = None,
        mixing: Mixing = "global",
        on_violation: OnViolation = "raise",
        clamp_negative: bool = False,
        chunk_size: int = 1024,
        progress: bool | None = None,
        seed: int | None = None,
    ) -> None:
        self.l = check_positive_int("l", l)
        self.T = check_positive_int("T", T)
        if mixing not in ("global", "class"):
            raise ValueError(f"mixing must be 'global' or 'class', got {mixing!r}")
        self.mixing: Mixing = mixing
        if (sigma_x is None) == (target_epsilon is None):
            raise ValueError("give exactly one of sigma_x or target_epsilon")
        self.target_epsilon = None
        self.target_delta = None
        if target_epsilon is not None:
            self.target_epsilon = check_positive("target_epsilon", target_epsilon)
            if target_delta is None:
                raise ValueError("target_delta is required with target_epsilon")
            self.target_delta = check_delta(target_delta, "target_delta")
            if sigma_y is not None:
                raise ValueError("sigma_y cannot be combined with target_epsilon (σ_y = σ_x)")
        self.sigma_x = None if sigma_x is None else check_positive("sigma_x", sigma_x)
        if mixing == "class":
            if sigma_y is not None:
                raise ValueError(
                    "class-conditional mixing releases the class label exactly: leave sigma_y unset"
                )
            self.sigma_y = None
        else:
            self.sigma_y = self.sigma_x if sigma_y is None else check_positive("sigma_y", sigma_y)
        self.bound = PixelBound() if bound is None else bound
        if not isinstance(self.bound, DataBound):
            raise TypeError(f"bound must be a DataBound, got {type(self.bound).__name__}")
        if on_violation not in ("raise", "clip"):
            raise ValueError(f"on_violation must be 'raise' or 'clip', got {on_violation!r}")
        self.on_violation: OnViolation = on_violation
        self.clamp_negative = bool(clamp_negative)
        self.chunk_size = check_positive_int("chunk_size", chunk_size)
        self.progress = progress
        self.seed = seed
        self.release_: Release | None = None

    # ------------------------------------------------------------------ helpers
    def __repr__(self) -> str:
        sig = (
            f"sigma_x={self.sigma_x:g}, sigma_y={self.sigma_y}"
            if self.sigma_x is not None
            else f"target=({self.target_epsilon:g}, {self.target_delta:g})"
        )
        return f"DPMix(l={self.l}, T={self.T}, {sig}, mixing={self.mixing!r}, bound={self.bound})"

    def _split_T(self, classes: list[int]) -> dict[int, int]:
        k = len(classes)
        return {c: self.T // k + (i < self.T % k) for i, c in enumerate(classes)}

    def _groups(self, labels: np.ndarray, num_classes: int) -> tuple[dict, dict]:
        n = labels.size
        if self.mixing == "global":
            if self.l > n:
                raise ValueError(
                    f"l={self.l} exceeds the number of records n={n} (need 1 <= l <= n)"
                )
            return {-1: n}, {-1: self.T}
        counts = np.bincount(labels, minlength=num_classes)
        present = [int(c) for c in np.flatnonzero(counts)]
        too_small = [c for c in present if counts[c] < self.l]
        if too_small:
            raise ValueError(
                f"l={self.l} exceeds the size of class(es) "
                + ", ".join(f"{c} (n_c={int(counts[c])})" for c in too_small)
                + " - class-conditional mixing needs l <= every class size"
            )
        return {c: int(counts[c]) for c in present}, self._split_T(present)

    def _diameters(self, dim: int) -> tuple[float, float]:
        dx = self.bound.diameter(dim)
        dy = ONE_HOT_DIAMETER if self.mixing == "global" else 0.0
        return dx, dy

    def _noise_multiplier(self, sigma_x: float, sigma_y: float | None, dx: float, dy: float):
        d2 = (dx / sigma_x) ** 2 + ((dy / sigma_y) ** 2 if dy > 0 else 0.0)
        return self.l / math.sqrt(d2)

    def _solve_sigma(self, counts: dict, releases: dict, dx: float, dy: float) -> float:
        assert self.target_epsilon is not None and self.target_delta is not None
        s = max(
            calibrate_noise_multiplier(
                self.target_epsilon, self.target_delta, self.l, releases[c], counts[c]
            )
            for c in counts
        )
        return s * math.hypot(dx, dy) / self.l

    # ------------------------------------------------------------------ publish
    def publish(
        self, X: np.ndarray | torch.Tensor, Y: np.ndarray | torch.Tensor, *, seed: int | None = None
    ) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
        """Release ``T`` synthetic pairs ``(X̃, Ỹ)``.

        Parameters
        ----------
        X : numpy.ndarray or torch.Tensor
            Features ``(n, *shape)``; rows are records. Must satisfy the declared bound.
        Y : numpy.ndarray or torch.Tensor
            One-hot labels ``(n, K)``.
        seed : int, optional
            Overrides the constructor's seed; ``None`` draws fresh entropy (recorded in
            :attr:`release_`).

        Returns
        -------
        (X̃, Ỹ)
            ``(T, *shape)`` and ``(T, K)``, same array type as ``X``; float32 unless ``X`` is
            float64. For class-conditional mixing rows are grouped by class.
        """
        import torch

        X2, Yn, labels, feat_shape, is_torch = _publish_inputs(X, Y)
        n, K = X2.shape[0], Yn.shape[1]
        X2 = self.bound.enforce(X2, self.on_violation)
        d = X2.shape[1]
        counts, releases = self._groups(labels, K)
        dx, dy = self._diameters(d)
        if self.sigma_x is None:
            sigma_x = self._solve_sigma(counts, releases, dx, dy)
            sigma_y = sigma_x if self.mixing == "global" else None
        else:
            sigma_x, sigma_y = self.sigma_x, self.sigma_y

        seed = self.seed if seed is None else seed
        entropy = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        tdtype = torch.float64 if X2.dtype == np.float64 else torch.float32
        out_x, out_y = self._mix(X2, Yn, labels, counts, releases, entropy, sigma_x, sigma_y)
        if self.clamp_negative:
            np.maximum(out_x, 0, out=out_x)
            np.maximum(out_y, 0, out=out_y)
        self.release_ = Release(
            seed=entropy,
            n=n,
            dim=d,
            num_classes=K,
            class_counts=counts,
            class_releases=releases,
            sigma_x=float(sigma_x),
            sigma_y=None if sigma_y is None else float(sigma_y),
            x_diameter=dx,
            y_diameter=dy,
            extra={"clamp_negative": self.clamp_negative, "mixing": self.mixing},
        )
        out_x = out_x.reshape((self.T, *feat_shape))
        if is_torch:
            return torch.from_numpy(out_x).to(tdtype), torch.from_numpy(out_y).to(tdtype)
        return out_x, out_y

    def _mix(
        self,
        X2: np.ndarray,
        Yn: np.ndarray,
        labels: np.ndarray,
        counts: dict,
        releases: dict,
        entropy: int,
        sigma_x: float,
        sigma_y: float | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``T`` noisy mixes ``(T, d)`` and labels ``(T, K)``, block by block: each block
        draws from its own stream ``SeedSequence(entropy, spawn_key=(c + 1, b))``."""
        import torch

        d, K, dtype = X2.shape[1], Yn.shape[1], X2.dtype
        Xt = torch.from_numpy(X2)
        Yt = torch.from_numpy(np.ascontiguousarray(Yn, dtype=dtype))
        out_x = np.empty((self.T, d), dtype=dtype)
        out_y = np.empty((self.T, K), dtype=dtype)

        members = (
            {-1: None}
            if self.mixing == "global"
            else {c: torch.from_numpy(np.flatnonzero(labels == c)) for c in counts}
        )
        blocks = list(self._blocks(counts, releases))
        show = self.progress if self.progress is not None else self.T >= 200_000
        it: Any = blocks
        if show:
            from tqdm.auto import tqdm

            it = tqdm(blocks, desc="DPMix publish", unit="block")
        with torch.no_grad():
            for c, b, start, size in it:
                rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(c + 1, b)))
                idx = torch.from_numpy(sample_subsets(rng, counts[c], self.l, size))
                if members[c] is not None:
                    idx = members[c][idx]
                _mix_block(
                    rng,
                    idx,
                    Xt,
                    Yt,
                    out_x[start : start + size],
                    out_y[start : start + size],
                    c,
                    sigma_x,
                    sigma_y,
                )
        return out_x, out_y

    def _blocks(self, counts: dict, releases: dict) -> Iterator[tuple[int, int, int, int]]:
        start = 0
        for c in counts:
            t_c = releases[c]
            for b, s in enumerate(range(0, t_c, self.chunk_size)):
                size = min(self.chunk_size, t_c - s)
                yield c, b, start, size
                start += size

    # ------------------------------------------------------------------ privacy
    def privacy(
        self,
        delta: float | None = None,
        *,
        backend: Backend = "dp_accounting",
        orders=DEFAULT_ORDERS,
    ) -> PrivacyFigure:
        """The **verified** (ε, δ) of the last release (WBK Thm 27, improved conversion).

        ``delta`` defaults to ``target_delta`` or ``1/n``. For class-conditional mixing, ε is
        the maximum over classes (same-label replace-one neighbours).
        """
        r = self._last()
        delta = check_delta(
            delta if delta is not None else (self.target_delta or 1.0 / r.n), "delta"
        )
        s = self._noise_multiplier(r.sigma_x, r.sigma_y, r.x_diameter, r.y_diameter)
        per_class = {}
        for c in r.class_counts:
            per_class[c] = dpmix_epsilon(
                r.class_counts[c],
                self.l,
                r.class_releases[c],
                s,
                delta,
                backend=backend,
                orders=orders,
            )
        worst = max(per_class, key=lambda c: per_class[c].epsilon)
        acc = per_class[worst]
        rel = (
            "replace-one"
            if self.mixing == "global"
            else f"same-label replace-one, max over {len(per_class)} classes (worst: class {worst})"
        )
        src = (
            f"DPMix {self.mixing} mixing, {self.bound.describe()}, one-hot labels"
            f"{'' if self.mixing == 'global' else ' (public)'}: D_x={r.x_diameter:.6g}, "
            f"D_y={r.y_diameter:.6g}, σ_x={r.sigma_x:.6g}, σ_y={r.sigma_y}, {rel}; " + acc.source()
        )
        return PrivacyFigure(
            acc.epsilon,
            delta,
            VERIFIED,
            src,
            extra={
                "noise_multiplier": s,
                "order": acc.order,
                "per_class_epsilon": {c: a.epsilon for c, a in per_class.items()},
            },
        )

    def claimed_privacy(self, delta: float | None = None) -> PrivacyFigure:
        """The thesis' **claimed** figure for the last release (its code, its ``Δ²``).

        Uses ``Δ² = d_x/σ_x² + d_y/σ_y²`` and, for class-conditional mixing, the thesis'
        ``n = 6000`` per class convention replaced by the smallest class (with ``σ_y = σ_x`` as
        in its sweeps). Not a guarantee.
        """
        r = self._last()
        c = min(r.class_counts, key=lambda k: r.class_counts[k])
        sigma_y = r.sigma_x if r.sigma_y is None else r.sigma_y
        return thesis_figure(
            r.class_counts[c],
            self.l,
            r.class_releases[c],
            r.sigma_x,
            sigma_y,
            r.dim,
            r.num_classes,
            delta,
        )

    def privacy_report(
        self,
        delta: float | None = None,
        *,
        backend: Backend = "dp_accounting",
        orders=DEFAULT_ORDERS,
    ) -> PrivacyReport:
        """The last release's :meth:`privacy` (verified) and :meth:`claimed_privacy` (the
        thesis) as one :class:`~product_noise.privacy.PrivacyReport`.

        Each figure keeps its own default δ when ``delta`` is ``None`` (verified:
        ``target_delta`` or ``1/n``; claimed: the thesis' ``1/n`` of the smallest class).
        """
        return PrivacyReport(
            self.privacy(delta, backend=backend, orders=orders),
            (self.claimed_privacy(delta),),
            source="dpmix.DPMix",
            what=f"DPMix {self.mixing} mixing, l = {self.l}",
        )

    def _last(self) -> Release:
        if self.release_ is None:
            raise RuntimeError("call publish() first: the accounting needs n and the data shape")
        return self.release_
