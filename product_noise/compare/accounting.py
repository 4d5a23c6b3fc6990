"""Calibration and accounting of the comparison, computed once per key and reused across seeds.

Everything here is deterministic in its key, so one computation serves every seed:

* DP-SGD (:class:`DPSGDKey`): the noise for a target ε, and the privacy per epoch of the run
  that uses it, each figure computed by the accountant the engine attaches
  (:class:`~product_noise.opacus.accountants.ProductVerifiedAccountant`, Opacus' PRV accountant
  for Gaussian noise, :class:`~product_noise.opacus.accountants.PaperClaimedAccountant` for the
  paper's claim). After training, the harness checks that the engine's accountant recorded
  exactly the history assumed here before it uses these figures.
* DPMix (:class:`DPMixKey`): σ for a verified target ε, the verified figure of the release and
  the thesis' claimed figure (:class:`dpmix.DPMix`; the harness checks the release metadata).

Verified calibration of joint noise is the engine's
(:func:`~product_noise.opacus.engine.calibrate_verified_noise_multiplier`: a search on the
pessimistic 1e-3 PLD grid, an upper bound on the 1e-4 grid's ε, stopping when the verified ε
lies in ``[(1 − RTOL)·target, target]``, checked on the 1e-4 grid). The final figure is then the
accountant's own (1e-4 grid). The privacy profile of a mechanism is evaluated once per
(family, M, scale) and shared by all these computations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..privacy import CLAIMED, UNVERIFIED, VERIFIED, PrivacyFigure
from .executors import Executor, InlineExecutor, ProcessExecutor

__all__ = [
    "DPSGDKey",
    "DPMixKey",
    "compute_dpsgd",
    "compute_dpmix",
    "AccountingCache",
    "Accounting",
    "figure_to_dict",
    "figure_from_dict",
]

#: grid of the calibration search and of the per-epoch curve (pessimistic, so an upper bound)
COARSE_DISCRETIZATION = 1e-3
#: the verified calibration stops once ε is within this fraction below the target
RTOL = 0.05


def figure_to_dict(fig: PrivacyFigure | None) -> dict[str, Any] | None:
    """A JSON-friendly copy of a figure (``extra`` dropped)."""
    if fig is None:
        return None
    return {"epsilon": fig.epsilon, "delta": fig.delta, "label": fig.label, "source": fig.source}


def figure_from_dict(d: dict[str, Any] | None) -> PrivacyFigure | None:
    """Inverse of :func:`figure_to_dict`."""
    if d is None:
        return None
    return PrivacyFigure(float(d["epsilon"]), float(d["delta"]), d["label"], d["source"])


# ====================================================================== keys
@dataclass(frozen=True)
class DPSGDKey:
    """Everything the noise and the privacy of one DP-SGD configuration depend on.

    ``mechanism`` is ``dpsgd-gaussian``, ``dpsgd-product-paper``, ``dpsgd-product`` or
    ``dpsgd-l2``; ``dim`` is the number of trainable parameters M; ``n`` the training-set size.
    """

    mechanism: str
    epsilon: float
    delta: float
    dim: int
    n: int
    batch_size: int
    epochs: int
    paper_sensitivity: str = "paper"

    @property
    def num_batches(self) -> int:
        """``len`` of the non-private loader."""
        return math.ceil(self.n / self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        """Poisson batches per epoch (``len`` of the loader the engine returns)."""
        from ..opacus.engine import poisson_steps_per_epoch

        return poisson_steps_per_epoch(self.num_batches)

    @property
    def sample_rate(self) -> float:
        """The Poisson sampler's rate ``1/len(loader)`` of the non-private loader."""
        return 1.0 / self.num_batches

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def name(self) -> str:
        """A stable string used as the cache key."""
        return "|".join(str(v) for v in asdict(self).values())


@dataclass(frozen=True)
class DPMixKey:
    """Everything σ and the privacy of one DPMix release depend on."""

    mixing: str
    epsilon: float
    delta: float
    l: int
    T: int
    n: int
    dim: int
    num_classes: int
    bound: str
    class_counts: tuple[int, ...]

    def name(self) -> str:
        return "|".join(str(v) for v in asdict(self).values())


# ====================================================================== profile memo
class _MemoMechanism:
    """A mechanism whose privacy profile is evaluated once per array of ε' values."""

    def __init__(self, mech: Any) -> None:
        self.mech = mech
        self._profile: Callable[[np.ndarray], np.ndarray] | None = None
        self._values: dict[bytes, np.ndarray] = {}

    def privacy_profile(self) -> Callable[[np.ndarray], np.ndarray]:
        if self._profile is None:
            self._profile = self.mech.privacy_profile()

        def profile(eps: np.ndarray) -> np.ndarray:
            arr = np.asarray(eps, dtype=float)
            key = arr.tobytes()
            if key not in self._values:
                assert self._profile is not None
                self._values[key] = np.asarray(self._profile(arr), dtype=float)
            return self._values[key].copy()

        return profile


class _ProfileMemo:
    def __init__(self) -> None:
        self._mechs: dict[tuple[str, int, float], _MemoMechanism] = {}

    def mechanism(self, family: str, dim: int, nm: float) -> _MemoMechanism:
        from ..mechanisms import MECHANISMS

        key = (family, int(dim), float(nm))
        if key not in self._mechs:
            self._mechs[key] = _MemoMechanism(MECHANISMS[family](dim, nm, 1.0))
        return self._mechs[key]


def _verified_accountant(memo: _ProfileMemo, discretization: float) -> Any:
    """The engine's verified accountant, with the profile evaluations shared through ``memo``."""
    from ..opacus.accountants import ProductVerifiedAccountant

    class _Memoised(ProductVerifiedAccountant):
        value_discretization_interval = discretization

        def _mechanism(self, family: str, dim: int, noise_multiplier: float) -> Any:  # type: ignore[override]
            return memo.mechanism(family, dim, noise_multiplier)

    return _Memoised()


# ====================================================================== DP-SGD
def _paper_noise_multiplier(key: DPSGDKey, eps0: float, k: float) -> float:
    from ..mechanisms.product import paper_t
    from ..opacus.engine import SENSITIVITY_CONVENTIONS

    return SENSITIVITY_CONVENTIONS[key.paper_sensitivity] * paper_t(key.dim, k, None) / eps0


def dpsgd_noise(mechanism: str) -> tuple[str, str]:
    """``(family, calibration)`` of a ``dpsgd-<name>`` mechanism, from the registry now.

    ``family`` is the :data:`~product_noise.mechanisms.MECHANISMS` name of its class (the
    paper's product noise is ``product``); ``calibration`` is ``"gaussian"`` (Opacus' PRV
    accountant), ``"paper"`` (the paper's claimed calibration), ``"verified"`` (the verified
    accountant of the noise's own profile) or ``"unverified"`` (a user's sampler with no proof:
    the Gaussian's noise multiplier, :data:`~product_noise.mechanisms.custom.MATCHED_TO_GAUSSIAN`).

    Raises
    ------
    ConfigError
        For a claimed noise other than the paper's (no DP-SGD accountant states that claim).
    """
    from ..mechanisms.registry import get_mechanism
    from .config import ConfigError

    spec = get_mechanism(mechanism.split("-", 1)[1].replace("-", "_"))
    family = spec.load().name
    if spec.calibration == UNVERIFIED:
        return spec.name, UNVERIFIED
    if spec.calibration == CLAIMED:
        if spec.claim != "paper":
            raise ConfigError(f"{mechanism}: no DP-SGD accountant states the {spec.claim} claim")
        return family, "paper"
    return family, "gaussian" if family == "gaussian" else VERIFIED


def compute_dpsgd(key: DPSGDKey) -> dict[str, Any]:
    """Calibrate one DP-SGD configuration and account it per epoch.

    Returns a JSON-friendly dict: ``noise`` (what ``make_private`` gets), ``history`` (the
    accountant history the engine must record; ``None`` for an unverified noise, which no
    accountant records), ``curve`` (per epoch: claimed/verified figure dicts; no verified one
    for an unverified noise), ``unverified`` (the reason, for an unverified noise),
    ``calibration_seconds``, ``accounting_seconds`` and ``evaluations``.
    """
    t0 = time.perf_counter()
    q, total = key.sample_rate, key.steps
    memo = _ProfileMemo()
    out: dict[str, Any] = {"key": asdict(key)}
    family, how = dpsgd_noise(key.mechanism)
    paper: dict[str, float] | None = None
    evals = 0
    if how in ("gaussian", UNVERIFIED):
        nm = _calibrate_gaussian(key)
        out["noise"] = {"noise": family, "noise_multiplier": nm}
    elif how == "paper":
        nm, paper, out["noise"] = _calibrate_paper(key)
    else:
        nm, evals = _calibrate_verified(key, family, memo)
        out["noise"] = {"noise": family, "noise_multiplier": nm}
    out["calibration_seconds"] = time.perf_counter() - t0
    out["evaluations"] = evals

    t1 = time.perf_counter()
    if how == UNVERIFIED:
        from ..mechanisms.custom import MATCHED_TO_GAUSSIAN

        out["history"] = None
        out["unverified"] = f"{family} is unverified: {MATCHED_TO_GAUSSIAN}"
        out["curve"] = [
            {"epoch": e, "steps": e * key.steps_per_epoch, "verified": None}
            for e in range(1, key.epochs + 1)
        ]
    else:
        out["history"] = (
            [[nm, q, total]] if how == "gaussian" else [[family, key.dim, nm, q, total]]
        )
        out["curve"] = _dpsgd_curve(key, family, nm, paper, memo)
    out["paper"] = paper
    out["accounting_seconds"] = time.perf_counter() - t1
    return out


def _calibrate_gaussian(key: DPSGDKey) -> float:
    """Opacus' noise multiplier for the target ε (PRV accountant)."""
    from opacus.accountants.utils import get_noise_multiplier

    return float(
        get_noise_multiplier(
            target_epsilon=key.epsilon,
            target_delta=key.delta,
            sample_rate=key.sample_rate,
            steps=key.steps,
            accountant="prv",
            epsilon_tolerance=0.01,
        )
    )


def _calibrate_paper(key: DPSGDKey) -> tuple[float, dict[str, float], dict[str, Any]]:
    """The paper's calibration for the claimed target ε: (noise multiplier, the claimed
    accountant's configuration, the ``make_private`` noise arguments)."""
    from ..mechanisms.product import claimed_delta
    from ..opacus.engine import calibrate_paper_epsilon0, expected_batch_size

    batch = expected_batch_size(key.n, key.sample_rate)
    eps0, k = calibrate_paper_epsilon0(
        key.epsilon, key.delta, dim=key.dim, batch_size=batch, num_samples=key.n, steps=key.steps
    )
    nm = _paper_noise_multiplier(key, eps0, k)
    paper = {
        "epsilon0": eps0,
        "delta0": claimed_delta(eps0, key.dim, k, None),
        "batch_size": batch,
        "num_samples": key.n,
    }
    noise = {
        "noise": "product",
        "epsilon0": eps0,
        "k": k,
        "sensitivity": key.paper_sensitivity,
    }
    return nm, paper, noise


def _calibrate_verified(key: DPSGDKey, family: str, memo: _ProfileMemo) -> tuple[float, int]:
    """The engine's verified calibration of ``family`` noise for the target ε: (noise
    multiplier, number of mechanisms evaluated)."""
    from ..mechanisms import MECHANISMS
    from ..opacus.engine import calibrate_verified_noise_multiplier

    evals = 0

    def counted(nm: float) -> _MemoMechanism:
        nonlocal evals
        evals += 1
        return memo.mechanism(family, key.dim, nm)

    nm = calibrate_verified_noise_multiplier(
        MECHANISMS[family],
        key.epsilon,
        key.delta,
        dim=key.dim,
        sample_rate=key.sample_rate,
        steps=key.steps,
        rtol=RTOL,
        coarse_discretization=COARSE_DISCRETIZATION,
        mechanism_factory=counted,
    )
    return nm, evals


def _dpsgd_curve(
    key: DPSGDKey,
    family: str,
    nm: float,
    paper: dict[str, float] | None,
    memo: _ProfileMemo,
) -> list[dict[str, Any]]:
    """Per epoch: the verified figure (and the claimed one for the paper's calibration)."""
    curve = []
    for epoch in range(1, key.epochs + 1):
        steps = epoch * key.steps_per_epoch
        row: dict[str, Any] = {"epoch": epoch, "steps": steps}
        if family == "gaussian":
            row["verified"] = _gaussian_figure(key, nm, steps)
        else:
            row["verified"] = _product_figure(key, family, nm, steps, epoch, memo)
        if paper is not None:
            row["claimed"] = _claimed_figure(paper, steps)
        curve.append(row)
    return curve


def _gaussian_figure(key: DPSGDKey, nm: float, steps: int) -> dict[str, Any]:
    """Opacus' PRV figure after ``steps`` Gaussian steps."""
    from opacus.accountants import create_accountant

    acc = create_accountant("prv")
    acc.history = [(nm, key.sample_rate, steps)]
    return figure_to_dict(
        PrivacyFigure(
            float(acc.get_epsilon(key.delta)),
            key.delta,
            VERIFIED,
            "Opacus prv accountant (subsampled Gaussian)",
        )
    )


def _product_figure(
    key: DPSGDKey, family: str, nm: float, steps: int, epoch: int, memo: _ProfileMemo
) -> dict[str, Any]:
    """The verified accountant's figure after ``steps`` steps: on the 1e-4 PLD grid at the last
    epoch, on the coarse grid (and so labelled) before."""
    final = epoch == key.epochs
    disc = 1e-4 if final else COARSE_DISCRETIZATION
    acc = _verified_accountant(memo, disc)
    from ..opacus.accountants import SphericalStep

    acc.history = [SphericalStep(family, key.dim, nm, key.sample_rate, steps)]
    fig = acc.verified_figure(key.delta)
    if not final:
        fig = PrivacyFigure(fig.epsilon, fig.delta, VERIFIED, fig.source + f"; PLD grid {disc:g}")
    return figure_to_dict(fig)


def _claimed_figure(paper: dict[str, float], steps: int) -> dict[str, Any]:
    """The paper's claimed figure after ``steps`` steps."""
    from ..opacus.accountants import PaperClaimedAccountant

    claimed = PaperClaimedAccountant()
    claimed.configure(**paper)
    claimed.history = [(steps,)]
    return figure_to_dict(claimed.claimed_figure())


# ====================================================================== DPMix
def compute_dpmix(key: DPMixKey, labels: np.ndarray) -> dict[str, Any]:
    """σ for the verified target, the verified and the claimed figure of the release.

    The release's privacy depends only on ``n``, the class counts, ``l``, ``T``, σ and the data
    bound, so it is computed on a zero feature matrix with the real labels.
    """
    from dpmix import DPMix, L2NormBound, PixelBound, one_hot

    t0 = time.perf_counter()
    bound = PixelBound() if key.bound == "pixel" else L2NormBound(1.0)
    mix = DPMix(
        key.l,
        key.T,
        target_epsilon=key.epsilon,
        target_delta=key.delta,
        mixing=key.mixing,  # type: ignore[arg-type]
        bound=bound,
        seed=0,
    )
    X = np.zeros((key.n, key.dim), dtype=np.float32)
    mix.publish(X, one_hot(labels, key.num_classes).astype(np.float32))
    r = mix.release_
    assert r is not None
    t1 = time.perf_counter()
    verified = mix.privacy(key.delta)
    claimed = mix.claimed_privacy(key.delta)
    return {
        "key": asdict(key),
        "sigma_x": r.sigma_x,
        "sigma_y": r.sigma_y,
        "release": {
            "n": r.n,
            "class_counts": {str(c): v for c, v in r.class_counts.items()},
            "class_releases": {str(c): v for c, v in r.class_releases.items()},
            "x_diameter": r.x_diameter,
            "y_diameter": r.y_diameter,
        },
        "verified": figure_to_dict(verified),
        "claimed": figure_to_dict(claimed),
        "calibration_seconds": t1 - t0,
        "accounting_seconds": time.perf_counter() - t1,
    }


def _run_job(kind: str, key: Any, extra: Any) -> dict[str, Any]:
    import warnings

    from ..privacy import PrivacyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        if kind == "dpsgd":
            return compute_dpsgd(key)
        return compute_dpmix(key, extra)


# ====================================================================== the cache
def _portable(kind: str, key: DPSGDKey | DPMixKey) -> bool:
    """Whether a worker process can compute ``key``: not for a user mechanism, which is
    registered in this process only (its law may be a closure that cannot be pickled)."""
    if kind != "dpsgd":
        return True
    from ..mechanisms.registry import get_mechanism

    assert isinstance(key, DPSGDKey)
    return get_mechanism(key.mechanism.split("-", 1)[1].replace("-", "_")).builtin


class AccountingCache:
    """Calibrations and privacy figures of a comparison, computed once per key.

    Parameters
    ----------
    workers : int
        Without ``executor``: processes that compute in the background (0 or 1: compute in
        this process, when first needed). They ignore SIGINT (the process that owns them ends
        them, see :meth:`close`) and end when it ends, even when it is killed.
    stored : dict, optional
        Results of an earlier run of the same comparison (``accounting.json``), reused as is.
    executor : Executor, optional
        Where to compute instead (the comparison's, shared with its runs; :meth:`close` leaves
        it open). A user mechanism's calibration is always computed in this process: it is
        registered here only (its law may be a closure that cannot be pickled).
    """

    def __init__(
        self,
        workers: int = 1,
        stored: dict[str, Any] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.results: dict[str, dict[str, Any]] = dict(stored or {})
        self._pending: dict[str, Future | tuple[str, Any, Any]] = {}
        self._own = executor is None and workers > 1
        self._executor = ProcessExecutor(workers) if self._own else executor
        if isinstance(self._executor, InlineExecutor):
            self._executor = None  # compute when first needed, not when scheduled
        self.wait_seconds = 0.0

    def submit(self, kind: str, key: DPSGDKey | DPMixKey, extra: Any = None) -> None:
        """Schedule one computation (no-op when it is known or scheduled)."""
        name = f"{kind}:{key.name()}"
        if name in self.results or name in self._pending:
            return
        if self._executor is not None and _portable(kind, key):
            # priority -1: a run that is ready starts before a calibration waiting for a worker
            self._pending[name] = self._executor.submit(_run_job, kind, key, extra, priority=-1)
        else:
            self._pending[name] = (kind, key, extra)

    def ready(self, kind: str, key: DPSGDKey | DPMixKey) -> bool:
        """Whether :meth:`get` would return without computing or waiting."""
        name = f"{kind}:{key.name()}"
        if name in self.results:
            return True
        job = self._pending.get(name)
        return isinstance(job, Future) and job.done()

    def pending(self) -> list[Future]:
        """The scheduled computations not yet collected by :meth:`get`."""
        return [j for j in self._pending.values() if isinstance(j, Future)]

    def get(self, kind: str, key: DPSGDKey | DPMixKey, extra: Any = None) -> dict[str, Any]:
        """The result for ``key``, computing or waiting for it if needed."""
        name = f"{kind}:{key.name()}"
        if name not in self.results:
            self.submit(kind, key, extra)
            job = self._pending.pop(name)
            t0 = time.perf_counter()
            if isinstance(job, Future):
                self.results[name] = job.result()
            else:
                self.results[name] = _run_job(*job)
            self.wait_seconds += time.perf_counter() - t0
        return self.results[name]

    def close(self, cancel: bool = False) -> None:
        """Stop the worker processes it started (not an executor it was given).

        Parameters
        ----------
        cancel : bool
            Drop the scheduled computations and end the workers now, running computations
            included (SIGTERM, then SIGKILL after 5 s), instead of letting them finish.
        """
        executor, self._executor = self._executor, None
        if self._own and executor is not None:
            executor.close(cancel=cancel)


#: the former name of :class:`AccountingCache` (kept for existing code)
Accounting = AccountingCache
