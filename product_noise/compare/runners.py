"""One run of each family: DP-SGD (and the non-private network), DPMix, convex ERM.

Each runner trains and evaluates, and returns a :class:`Outcome`; privacy figures come from the
cached accounting (:mod:`product_noise.compare.accounting`) after the runner has checked that the
engine's accountant (or the DPMix release) recorded exactly what that accounting assumed.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import special
from torch import nn
from torch.utils.data import TensorDataset

from ..models import count_parameters
from ..privacy import PrivacyFigure
from ..train import TrainConfig, fit_minibatch, train
from .accounting import figure_from_dict
from .config import CompareConfig
from .data import ClassificationData

__all__ = [
    "Outcome",
    "DigitsCNN",
    "make_model",
    "count_parameters",
    "expected_chi",
    "run_dpsgd",
    "run_dpmix",
    "run_erm",
    "run_logreg_reference",
    "AccountingMismatch",
]


class AccountingMismatch(RuntimeError):
    """The engine recorded a different history than the cached accounting assumed."""


@dataclass
class Outcome:
    """What one run produced.

    ``claimed``/``verified`` are the run's final privacy figures (``None`` when not applicable);
    ``epochs`` the per-epoch rows (test accuracy and labelled ε); times in seconds.
    """

    accuracy: float
    claimed: PrivacyFigure | None = None
    verified: PrivacyFigure | None = None
    expected_noise_norm: float = math.nan
    drawn_noise_norm: float = math.nan
    noise_scale: float = math.nan
    dim: int = 0
    steps: int = 0
    train_seconds: float = 0.0
    accounting_seconds: float = 0.0
    epochs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ====================================================================== models
class DigitsCNN(nn.Module):
    """A small CNN for 1×s×s inputs (s divisible by 4): two 3×3 convolutions (8, 16 channels)
    with max-pooling, then a linear layer (1,898 parameters for 8×8 digits)."""

    def __init__(self, side: int = 8, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Linear(16 * (side // 4) ** 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


def make_model(cfg: CompareConfig, data: ClassificationData) -> nn.Module:
    """The comparison's network: an MLP ``d → hidden → K`` or :class:`DigitsCNN`."""
    k = data.num_classes
    if cfg.model == "cnn":
        if data.image_shape is None or data.image_shape[1] % 4:
            raise ValueError(f"model 'cnn' needs square images; dataset {data.name!r} has none")
        return DigitsCNN(data.image_shape[1], k)
    return nn.Sequential(
        nn.Linear(data.n_features, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, k)
    )


def _inputs(cfg: CompareConfig, data: ClassificationData, X: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    if cfg.model == "cnn" and data.image_shape is not None:
        t = t.reshape(-1, *data.image_shape)
    return t


def expected_chi(m: int) -> float:
    """E‖z‖ for z ~ N(0, I_m)."""
    return float(math.sqrt(2.0) * math.exp(special.gammaln((m + 1) / 2) - special.gammaln(m / 2)))


@torch.no_grad()
def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = 0
    for s in range(0, X.shape[0], 2048):
        correct += int((model(X[s : s + 2048]).argmax(1) == y[s : s + 2048]).sum())
    return correct / max(1, X.shape[0])


# ====================================================================== DP-SGD
def _check_history(engine: Any, calib: dict[str, Any]) -> None:
    """The engine's accountant history must be the one the cached figures were computed for."""
    got = [list(h) for h in engine.accountant.history]
    want = calib["history"]
    ok = len(got) == len(want) and all(
        len(g) == len(w)
        and all(
            (a == b) if isinstance(b, (str, int)) else math.isclose(a, b, rel_tol=1e-9)
            for a, b in zip(g, w)
        )
        for g, w in zip(got, want)
    )
    if not ok:
        raise AccountingMismatch(f"accountant history {got} differs from the calibrated {want}")
    paper = calib.get("paper")
    if paper is not None:
        claimed = engine.claimed_accountant
        steps = want[0][-1]
        if claimed is None or claimed.num_steps != steps:
            raise AccountingMismatch("the paper's claimed accountant did not record every step")
        for k, v in paper.items():
            if not math.isclose(float(claimed.config[k]), float(v), rel_tol=1e-9):
                raise AccountingMismatch(f"claimed accountant {k}={claimed.config[k]} != {v}")


def _train_config(cfg: CompareConfig, seed: int, calib: dict[str, Any] | None) -> TrainConfig:
    """The :class:`~product_noise.train.TrainConfig` of one run (``calib`` None: no noise)."""
    common = dict(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        momentum=cfg.momentum,
        max_grad_norm=cfg.max_grad_norm,
        seed=seed,
        privacy_every=0,  # the privacy per epoch comes from the cached accounting
    )
    if calib is None:
        return TrainConfig(noise="none", lr=min(cfg.lr, 0.05), **common)
    n0 = calib["noise"]
    if "epsilon0" in n0:  # the paper's calibration
        return TrainConfig(
            noise=n0["noise"],
            lr=cfg.lr,
            epsilon0=n0["epsilon0"],
            k=n0["k"],
            sensitivity=n0["sensitivity"],
            **common,
        )
    return TrainConfig(noise=n0["noise"], lr=cfg.lr, sigma=n0["noise_multiplier"], **common)


def run_dpsgd(
    cfg: CompareConfig,
    data: ClassificationData,
    seed: int,
    calib: dict[str, Any] | None,
    *,
    progress: bool = False,
    desc: str = "",
) -> Outcome:
    """Train the network with DP-SGD (``calib`` from :func:`~.accounting.compute_dpsgd`), or
    without noise when ``calib`` is None, by :func:`product_noise.train.train`; test accuracy
    after every epoch."""
    from ..opacus import PrivacyEngine

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = make_model(cfg, data)
    dim = count_parameters(model)
    train_set = TensorDataset(_inputs(cfg, data, data.X_train), torch.from_numpy(data.y_train))
    test_set = TensorDataset(_inputs(cfg, data, data.X_test), torch.from_numpy(data.y_test))
    engine = None
    if calib is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            engine = PrivacyEngine()
    bar: Any = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, desc=desc or "epochs", unit="epoch", leave=False)
    history = train(
        model,
        train_set,
        test_set,
        _train_config(cfg, seed, calib),
        progress=False,
        on_epoch=None if bar is None else (lambda _row: bar.update(1)),
        engine=engine,
    )
    if bar is not None:
        bar.close()
    epochs = [{k: row[k] for k in ("epoch", "train_loss", "test_accuracy")} for row in history]
    steps = history[-1]["steps"]
    outcome = Outcome(accuracy=epochs[-1]["test_accuracy"], dim=dim, steps=steps, epochs=epochs)
    outcome.train_seconds = time.perf_counter() - t0
    if engine is None:
        return outcome
    t1 = time.perf_counter()
    assert calib is not None
    _check_history(engine, calib)
    mech = engine.current_mechanism()
    outcome.expected_noise_norm = float(mech.expected_norm)
    outcome.noise_scale = float(engine._optimizer.noise_multiplier)  # scale / C
    for row, cal in zip(epochs, calib["curve"]):
        row["verified_epsilon"] = cal["verified"]["epsilon"]
        row["claimed_epsilon"] = cal["claimed"]["epsilon"] if cal.get("claimed") else math.nan
    last = calib["curve"][-1]
    outcome.verified = figure_from_dict(last["verified"])
    outcome.claimed = figure_from_dict(last.get("claimed"))
    if calib["noise"]["noise"] == "product" and "epsilon0" in calib["noise"]:
        n0 = calib["noise"]
        outcome.notes.append(
            f"paper calibration eps0={n0['epsilon0']:.4g}, k={n0['k']:.4g}, "
            f"sensitivity={n0['sensitivity']}"
        )
    outcome.accounting_seconds = time.perf_counter() - t1
    return outcome


# ====================================================================== DPMix
def _train_on_release(
    cfg: CompareConfig,
    data: ClassificationData,
    Xs: np.ndarray,
    Ys: np.ndarray,
    soft: bool,
    seed: int,
) -> float:
    from dpmix.train import kl_soft_label_loss

    torch.manual_seed(seed)
    model = make_model(cfg, data)
    X = _inputs(cfg, data, Xs)
    Y = torch.from_numpy(np.ascontiguousarray(Ys, dtype=np.float32))
    hard = Y.argmax(1)

    def loss_of(logits: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if soft:
            return kl_soft_label_loss(logits, Y[b])
        return nn.functional.cross_entropy(logits, hard[b])

    fit_minibatch(
        model,
        X,
        loss_of,
        epochs=cfg.dpmix_epochs,
        batch_size=cfg.batch_size,
        lr=cfg.dpmix_lr,
        seed=seed,
    )
    return _accuracy(model, _inputs(cfg, data, data.X_test), torch.from_numpy(data.y_test))


def run_dpmix(
    cfg: CompareConfig, data: ClassificationData, mixing: str, seed: int, calib: dict[str, Any]
) -> Outcome:
    """Publish a DPMix release at the cached σ and train the network on it."""
    from dpmix import DPMix, L2NormBound, PixelBound, one_hot

    t0 = time.perf_counter()
    key = calib["key"]
    bound = PixelBound() if data.bound == "pixel" else L2NormBound(1.0)
    mix = DPMix(key["l"], key["T"], calib["sigma_x"], mixing=mixing, bound=bound, seed=seed)  # type: ignore[arg-type]
    Xs, Ys = mix.publish(data.X_train, one_hot(data.y_train, data.num_classes).astype(np.float32))
    t_pub = time.perf_counter()
    r = mix.release_
    assert r is not None
    rel = calib["release"]
    same = (
        r.n == rel["n"]
        and {str(c): v for c, v in r.class_counts.items()} == rel["class_counts"]
        and {str(c): v for c, v in r.class_releases.items()} == rel["class_releases"]
        and math.isclose(r.x_diameter, rel["x_diameter"])
        and math.isclose(r.y_diameter, rel["y_diameter"])
        and r.sigma_x == calib["sigma_x"]
        and r.sigma_y == calib["sigma_y"]
    )
    if not same:
        raise AccountingMismatch(
            "the DPMix release differs from the one its privacy was computed for"
        )
    soft = mixing == "global"
    acc = _train_on_release(
        cfg, data, np.asarray(Xs).reshape(len(Xs), -1), np.asarray(Ys), soft, seed
    )
    out = Outcome(accuracy=acc, dim=data.n_features, steps=key["T"])
    out.verified = figure_from_dict(calib["verified"])
    out.claimed = figure_from_dict(calib["claimed"])
    out.noise_scale = float(r.sigma_x)
    if r.sigma_y is None:
        out.expected_noise_norm = r.sigma_x * expected_chi(r.dim)
    else:  # σ_x = σ_y: one Gaussian over the d + K released values
        out.expected_noise_norm = r.sigma_x * expected_chi(r.dim + r.num_classes)
    out.train_seconds = time.perf_counter() - t0
    out.notes.append(
        f"l={key['l']}, T={key['T']}, sigma={r.sigma_x:.4g}, publish {t_pub - t0:.2f}s; "
        "E||n|| per released record"
    )
    return out


# ====================================================================== convex ERM
def _erm_class() -> type:
    from ..erm import PrivateLogisticRegression

    class PlanCachedLogisticRegression(PrivateLogisticRegression):
        """:class:`~product_noise.erm.PrivateLogisticRegression` whose noise calibration
        (``_plan``: deterministic in its arguments) is shared through ``self.plan_cache``."""

        plan_cache: dict | None = None
        plan_seconds: float = 0.0

        def _plan(self, n, dim, R, loss, eps, delta):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            cache = self.plan_cache
            key = (
                type(loss).__name__,
                getattr(loss, "c", None),
                self.method,
                self.noise,
                repr(sorted((self.noise_params or {}).items())),
                float(self.lam),
                n,
                dim,
                float(R),
                float(eps),
                float(delta),
                self.amp_eps_frac,
                self.amp_eps_out_frac,
                self.amp_gamma,
                self.amp_shared_noise,
                self.sgd_radius,
            )
            if cache is None:
                plan = super()._plan(n, dim, R, loss, eps, delta)
            else:
                if key not in cache:
                    cache[key] = super()._plan(n, dim, R, loss, eps, delta)
                plan = {**cache[key], "info": dict(cache[key]["info"])}
            self.plan_seconds += time.perf_counter() - t0
            return plan

    return PlanCachedLogisticRegression


_ERM_CLASS: type | None = None


def run_erm(
    cfg: CompareConfig,
    data: ClassificationData,
    method: str,
    noise: str,
    epsilon: float,
    delta: float,
    seed: int,
    plan_cache: dict,
) -> Outcome:
    """Fit private logistic regression; the calibration is shared across seeds."""
    global _ERM_CLASS
    if _ERM_CLASS is None:
        _ERM_CLASS = _erm_class()
    t0 = time.perf_counter()
    params = {"k": float(cfg.erm_product_k)} if noise == "product_paper" else None
    est = _ERM_CLASS(
        epsilon=epsilon,
        delta=delta,
        method=method,
        noise=noise,
        noise_params=params,
        lam=cfg.erm_lam,
        data_norm=data.data_norm,
        random_state=seed,
    )
    est.plan_cache = plan_cache
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(data.X_train, data.y_train)
        acc = float(est.score(data.X_test, data.y_test))
    for w in caught:
        text = " ".join(str(w.message).split())
        if text not in notes and not issubclass(w.category, DeprecationWarning):
            notes.append(text[:200])
    p = est.privacy_
    out = Outcome(accuracy=acc, claimed=p.claimed, verified=p.verified, notes=notes)
    mechs = list(p.mechanisms.values())
    out.expected_noise_norm = float(sum(m.expected_norm for m in mechs))
    out.drawn_noise_norm = float(p.noise_norm)
    out.noise_scale = float(mechs[-1].scale)
    out.dim = int(mechs[0].dim)
    out.steps = 1
    total = time.perf_counter() - t0
    out.accounting_seconds = float(est.plan_seconds)
    out.train_seconds = total - out.accounting_seconds
    if len(mechs) > 1:
        out.notes.append("E||n|| summed over the objective and output noise")
    return out


def run_logreg_reference(cfg: CompareConfig, data: ClassificationData, seed: int) -> Outcome:
    """Non-private logistic regression with the same λ (sklearn ``C = 1/(nλ)``)."""
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    clf = LogisticRegression(C=1.0 / (data.n_train * cfg.erm_lam), max_iter=2000, random_state=seed)
    clf.fit(data.X_train, data.y_train)
    out = Outcome(accuracy=float(clf.score(data.X_test, data.y_test)), dim=data.n_features + 1)
    out.train_seconds = time.perf_counter() - t0
    return out
