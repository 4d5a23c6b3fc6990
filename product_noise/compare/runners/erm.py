"""The convex-ERM runners: private logistic regression from the plan's cached calibration, and
the non-private reference."""

from __future__ import annotations

import math
import time
import warnings

from ..config import CompareConfig
from ..data import ClassificationData
from .common import Outcome


def _erm_class() -> type:
    from ...erm import PrivateLogisticRegression

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
    """Non-private logistic regression on exactly the objective the private rows perturb.

    The same preprocessing as every private ERM row: rows clipped to ``data.data_norm`` and
    the constant feature appended (:func:`~product_noise.erm.estimators.clip_and_augment`), so
    the intercept is regularised like the other weights; the same λ (scikit-learn's
    ``C = 1/(nλ)`` for the averaged objective ``(1/n) Σ loss + (λ/2)‖θ‖²``) and one-vs-rest
    for more than two classes, as :class:`~product_noise.erm.PrivateLogisticRegression`.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from ...erm.estimators import clip_and_augment

    t0 = time.perf_counter()
    X_train, _ = clip_and_augment(data.X_train, data.data_norm)
    # test rows as the private estimators predict them: augmented, not clipped
    X_test, _ = clip_and_augment(data.X_test, math.inf)
    clf = LogisticRegression(
        C=1.0 / (data.n_train * cfg.erm_lam),
        fit_intercept=False,
        max_iter=2000,
        random_state=seed,
    )
    if data.num_classes > 2:
        clf = OneVsRestClassifier(clf)
    clf.fit(X_train, data.y_train)
    out = Outcome(accuracy=float(clf.score(X_test, data.y_test)), dim=data.n_features + 1)
    out.train_seconds = time.perf_counter() - t0
    return out
