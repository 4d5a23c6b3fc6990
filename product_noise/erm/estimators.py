"""scikit-learn estimators for private linear classification.

:class:`PrivateLogisticRegression` and :class:`PrivateHuberSVM` fit the averaged objective

    J(θ) = (1/n) Σ ℓ(y_i θᵀx_i) + (λ/2) ‖θ‖²          (``lam`` = λ; sklearn's ``C = 1/(nλ)``)

privately with one of four methods:

``"output"``
    CMS11 Algorithm 1: exact minimiser + noise of L2 sensitivity ``2R/(nλ)``.
``"objective"``
    CMS11 Algorithm 2: ``ε'_p`` adjustment, the ``Δ`` fallback (reported), noise ``b`` in
    ``J + bᵀθ/n + (Δ/2)‖θ‖²``, exact minimiser.
``"amp"``
    Approximate Minima Perturbation (Iyengar et al. 2019): independent objective noise ``b₁`` and
    output noise ``b₂``, budget split by Strategy #1 unless ``amp_eps_frac`` is given.
    ``amp_shared_noise=True`` reproduces the official product-noise code, where ``b₂`` is ``b₁``
    rescaled (the same ``(z, h)``): that release has **no** verified guarantee (reported as
    ``ε = inf``) and exists only for comparison.
``"ppssgd"``
    Output perturbation of permutation SGD for the strongly convex objective (Wu et al. 2017).

``noise`` is any core mechanism (``gaussian`` analytic, ``classic_gaussian``, ``product``
verified calibration, ``product_paper`` the paper's ``σ = Δt/ε`` with ``k = 1000`` unless
``noise_params`` says otherwise, ``l2``), ``gamma``, CMS11's pure-ε Gamma-norm noise, or a user
mechanism (:func:`product_noise.register_mechanism`, by name or alias, even after import; or a
:class:`~product_noise.mechanisms.base.ScaledMechanism` subclass). Noise is never replaced by
another law. A user's radial law works with every method (it is spherical); a sampler with a
proven profile, or a sampler only, works with ``"output"`` and ``"ppssgd"`` and is refused by
``"objective"`` and ``"amp"``, whose bound needs the noise's radial density. A sampler only
(*unverified*) is scaled by its user's claim, else at the verified Gaussian's σ for the same
target (:data:`~product_noise.mechanisms.MATCHED_TO_GAUSSIAN`), with a
:class:`~product_noise.privacy.PrivacyWarning`; its ``privacy_`` has no verified figure.

Data bound: rows are projected to L2 norm ``data_norm``; when it is not given it is computed from
the data, which leaks privacy, and :class:`PrivacyLeakWarning` is raised (as in diffprivlib). The
intercept is private: a constant feature ``intercept_scaling`` is appended and regularised like
every other coordinate, so the norm bound used by every formula is ``R = √(data_norm² + s²)``.
Multi-class targets are fitted one-vs-rest with ``ε/K`` and ``δ/K`` per class (basic composition).

After ``fit``, ``privacy_`` (:class:`ERMPrivacy`) holds the claimed and verified figures
(:class:`~product_noise.privacy.PrivacyFigure`; ``verified`` is ``None`` and ``unverified`` says
why for a sampler-only mechanism) and the norms of the noise actually drawn;
``privacy_report_`` is the same as a :class:`~product_noise.privacy.PrivacyReport`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse, special
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..mechanisms import Gaussian, Mechanism
from ..mechanisms.base import SphericalMechanism
from ..privacy import PrivacyFigure, PrivacyReport, PrivacyWarning
from ..validation import check_delta, check_epsilon, check_positive, check_positive_int
from .losses import MarginLoss, make_loss
from .noise import (
    check_noise_for_method,
    objective_noise,
    objective_verified,
    output_noise,
    release_figures,
    resolve_noise,
    unverified_reason,
)
from .objective import (
    amp_iyengar_sigma,
    amp_plan,
    cms11_objective,
    output_sensitivity,
    ppssgd_sensitivity,
)
from .solvers import minimize_erm, ppssgd

__all__ = [
    "PrivacyLeakWarning",
    "ERMPrivacy",
    "PrivateLogisticRegression",
    "PrivateHuberSVM",
    "METHODS",
    "clip_and_augment",
]

METHODS = ("output", "objective", "amp", "ppssgd")


class PrivacyLeakWarning(PrivacyWarning):
    """A privacy parameter (e.g. the data norm bound) was computed from the private data."""


@dataclass
class ERMPrivacy:
    """What a fitted private ERM estimator released and what it costs.

    Attributes
    ----------
    method, noise:
        The estimator's ``method`` and the registry name of its ``noise``.
    claimed:
        The figure the method/noise calibration states (Gaussian classic, paper formula, CMS11
        pure ε, a user's claimed formula, or the target of a verified calibration), composed
        over the K one-vs-rest models; ``None`` when nothing is claimed (an unverified
        mechanism run at the Gaussian's scale).
    verified:
        Computed from the exact privacy of the noise actually added (exact profile for output
        noise, the objective-perturbation bound of :mod:`product_noise.erm.noise` for objective
        noise), composed over parts and models by basic composition. ``None`` for an unverified
        mechanism (a sampler without a proven profile), never a stand-in figure.
    unverified:
        Why there is no verified figure (empty when there is one).
    noise_norms:
        Per binary model, the Euclidean norm of each noise vector drawn (``"output"`` and/or
        ``"objective"``).
    models:
        Per binary model, the constants used (sensitivities, ``ε'_p``, fallback, Λ, gradient norm).
    mechanisms:
        The calibrated mechanisms (shared by the K models), keyed ``"output"``/``"objective"``.
    data_norm:
        The row-norm bound ``R`` (including the intercept feature) used by every formula.
    data_norm_from_data:
        Whether ``R`` was computed from the data (a privacy leak).

    Raises
    ------
    ValueError
        If both a verified figure and an ``unverified`` reason are given, or neither.
    """

    method: str
    noise: str
    claimed: PrivacyFigure | None
    verified: PrivacyFigure | None
    noise_norms: list[dict[str, float]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    mechanisms: dict[str, Mechanism] = field(default_factory=dict)
    data_norm: float = 1.0
    data_norm_from_data: bool = False
    unverified: str = ""

    def __post_init__(self) -> None:
        if (self.verified is None) == (not self.unverified):
            raise ValueError("ERMPrivacy holds a verified figure or an unverified reason, not both")

    @property
    def noise_norm(self) -> float:
        """Euclidean norm of all noise drawn, over every model and part."""
        return float(math.sqrt(sum(v * v for d in self.noise_norms for v in d.values())))

    @property
    def report(self) -> PrivacyReport:
        """The verified and claimed figures as one :class:`~product_noise.privacy.PrivacyReport`
        (the same figure objects as :attr:`verified` and :attr:`claimed`; an unverified
        mechanism gives ``verified=None`` and the reason in ``unverified``)."""
        return PrivacyReport(
            self.verified,
            () if self.claimed is None else (self.claimed,),
            source=f"product_noise.erm ({self.method} perturbation)",
            what=f"{self.method} perturbation with {self.noise} noise",
            unverified=self.unverified,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy: labelled figures (``verified`` is ``None`` when unverified), the
        reason, the mechanisms' configs and the norms."""
        return {
            "method": self.method,
            "noise": self.noise,
            "claimed": None if self.claimed is None else self.claimed.to_dict(),
            "verified": None if self.verified is None else self.verified.to_dict(),
            "unverified": self.unverified,
            "noise_norm": self.noise_norm,
            "mechanisms": {k: m.config() for k, m in self.mechanisms.items()},
            "data_norm": self.data_norm,
            "data_norm_from_data": self.data_norm_from_data,
        }

    def __str__(self) -> str:
        lines = [f"{self.method} perturbation with {self.noise} noise"]
        if self.unverified:
            lines.append(f"  unverified: {self.unverified}")
        lines += [f"  {f}" for f in (self.claimed, self.verified) if f is not None]
        lines.append(f"  noise norm drawn: {self.noise_norm:.4g}")
        if self.data_norm_from_data:
            lines.append("  WARNING: data_norm computed from the data (privacy leak)")
        return "\n".join(lines)


def _compose(figs: list[PrivacyFigure], label: str, what: str) -> PrivacyFigure:
    if len(figs) == 1:
        return figs[0]
    return PrivacyFigure(
        float(sum(f.epsilon for f in figs)),
        float(min(sum(f.delta for f in figs), 1.0)),
        label,  # type: ignore[arg-type]
        f"basic composition of {what}: " + "; ".join(f.source for f in figs),
    )


def _times(fig: PrivacyFigure | None, k: int) -> PrivacyFigure | None:
    if k == 1 or fig is None:
        return fig
    return PrivacyFigure(
        fig.epsilon * k,
        min(fig.delta * k, 1.0),
        fig.label,
        f"basic composition of {k} one-vs-rest models, each: {fig.source}",
    )


def _at(claim: PrivacyFigure, delta: float) -> float:
    """The δ at which to state the verified ε: the claimed δ when it is a proper one."""
    return claim.delta if 0.0 < claim.delta < 1.0 else delta


def _row_norms(X: np.ndarray | sparse.csr_matrix) -> np.ndarray:
    if sparse.issparse(X):
        return np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return np.linalg.norm(X, axis=1)


def clip_and_augment(
    X: np.ndarray | sparse.csr_matrix,
    data_norm: float,
    fit_intercept: bool = True,
    intercept_scaling: float = 1.0,
) -> tuple[np.ndarray | sparse.csr_matrix, float]:
    """Project rows to L2 norm ``data_norm``; append the constant feature if ``fit_intercept``.

    Returns the design matrix the solver sees and its row-norm bound
    ``R = √(data_norm² + s²)`` (``data_norm`` without intercept).
    """
    norms = _row_norms(X)
    factor = 1.0 / np.maximum(1.0, norms / data_norm)
    if sparse.issparse(X):
        Xc = sparse.diags(factor) @ X
    else:
        Xc = X * factor[:, None]
    if not fit_intercept:
        return (Xc.tocsr() if sparse.issparse(Xc) else Xc), float(data_norm)
    col = np.full((X.shape[0], 1), float(intercept_scaling))
    if sparse.issparse(Xc):
        Xa = sparse.hstack([Xc, sparse.csr_matrix(col)], format="csr")
    else:
        Xa = np.hstack([Xc, col])
    return Xa, float(math.hypot(data_norm, intercept_scaling))


def _as_generator(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1, size=4))
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be None, an int or a Generator, got {random_state!r}")


def _fitted_state(est: Any) -> dict[str, Any]:
    """The fitted attributes (scikit-learn's trailing underscore) of ``est``."""
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}


class _PrivateLinearClassifier(ClassifierMixin, BaseEstimator):
    """Shared implementation; see the module docstring."""

    _loss_name = "logistic"

    def __init__(
        self,
        *,
        epsilon: float = 1.0,
        delta: float = 1e-5,
        method: str = "output",
        noise: str = "gaussian",
        noise_params: dict[str, Any] | None = None,
        lam: float = 1e-3,
        data_norm: float | None = None,
        fit_intercept: bool = True,
        intercept_scaling: float = 1.0,
        multi_class: str = "ovr",
        amp_eps_frac: float | None = None,
        amp_eps_out_frac: float = 0.01,
        amp_gamma: float | None = None,
        amp_shared_noise: bool = False,
        sgd_epochs: int = 200,
        sgd_batch_size: int = 50,
        sgd_radius: float = 10.0,
        tol: float = 1e-9,
        max_iter: int = 2000,
        random_state: Any = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.method = method
        self.noise = noise
        self.noise_params = noise_params
        self.lam = lam
        self.data_norm = data_norm
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.multi_class = multi_class
        self.amp_eps_frac = amp_eps_frac
        self.amp_eps_out_frac = amp_eps_out_frac
        self.amp_gamma = amp_gamma
        self.amp_shared_noise = amp_shared_noise
        self.sgd_epochs = sgd_epochs
        self.sgd_batch_size = sgd_batch_size
        self.sgd_radius = sgd_radius
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _loss(self) -> MarginLoss:
        return make_loss(self._loss_name)

    def _check_params(self) -> None:
        check_epsilon(self.epsilon)
        check_delta(self.delta)
        check_positive("lam", self.lam)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}")
        check_noise_for_method(self.noise, self.method, self.noise_params)
        if self.data_norm is not None:
            check_positive("data_norm", self.data_norm)
        check_positive("intercept_scaling", self.intercept_scaling)
        if self.multi_class not in ("ovr", "binary"):
            raise ValueError(f"multi_class must be 'ovr' or 'binary'; got {self.multi_class!r}")
        check_positive("tol", self.tol)
        check_positive_int("max_iter", self.max_iter)
        if self.method == "ppssgd":
            check_positive_int("sgd_epochs", self.sgd_epochs)
            check_positive_int("sgd_batch_size", self.sgd_batch_size)
            check_positive("sgd_radius", self.sgd_radius)

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> _PrivateLinearClassifier:
        """Fit the private model.

        Parameters
        ----------
        X : array-like or CSR matrix, shape (n_samples, n_features)
            Finite features. Sparse input is supported by every method except ``"ppssgd"``.
        y : array-like, shape (n_samples,)
            Class labels (two classes, or more with ``multi_class="ovr"``).

        Returns
        -------
        self

        Raises
        ------
        InputError
            A bad parameter, before any computation: e.g. an unknown ``noise``, or a noise
            without a radial density for ``method="objective"``/``"amp"``.

        Warns
        -----
        PrivacyWarning
            Once per fit for an unverified noise (a sampler without a proven profile).

        On any error the estimator keeps the fitted state it had before (or stays unfitted).
        """
        before = _fitted_state(self)
        try:
            return self._fit(X, y)
        except BaseException:
            for name in list(_fitted_state(self)):
                delattr(self, name)
            self.__dict__.update(before)
            raise

    def _fit(self, X: Any, y: Any) -> _PrivateLinearClassifier:
        X, y, n_classes = self._validated_input(X, y)
        n, d = X.shape
        loss = self._loss()

        from_data = self.data_norm is None
        data_norm = self._data_norm_from_data(X) if from_data else float(self.data_norm)
        Xa, R = clip_and_augment(X, data_norm, self.fit_intercept, self.intercept_scaling)
        dim = Xa.shape[1]

        k_models = 1 if n_classes == 2 else n_classes
        eps_k = float(self.epsilon) / k_models
        delta_k = float(self.delta) / k_models
        rng = _as_generator(self.random_state)
        plan = self._plan(n, dim, R, loss, eps_k, delta_k)
        plan["R"] = R

        thetas, norms_drawn, models = [], [], []
        for j in range(k_models):
            if k_models == 1:
                yj = np.where(y == self.classes_[1], 1.0, -1.0)
            else:
                yj = np.where(y == self.classes_[j], 1.0, -1.0)
            theta, drawn, info = self._fit_one(Xa, yj, loss, plan, rng)
            thetas.append(theta)
            norms_drawn.append(drawn)
            models.append({**plan["info"], **info})

        theta = np.vstack(thetas)
        if self.fit_intercept:
            self.coef_ = theta[:, :-1].copy()
            self.intercept_ = theta[:, -1] * float(self.intercept_scaling)
        else:
            self.coef_ = theta
            self.intercept_ = np.zeros(theta.shape[0])
        self.n_iter_ = np.array([m.get("n_iter", 0) for m in models])
        self.privacy_ = ERMPrivacy(
            method=self.method,
            noise=plan["noise"],
            claimed=_times(plan["claimed"], k_models),
            verified=_times(plan["verified"], k_models),
            noise_norms=norms_drawn,
            models=models,
            mechanisms=plan["mechanisms"],
            data_norm=R,
            data_norm_from_data=from_data,
            unverified=plan.get("unverified", ""),
        )
        return self

    def _validated_input(self, X: Any, y: Any) -> tuple[Any, np.ndarray, int]:
        """Check the parameters and the data; set ``classes_``. Returns (X, y, n_classes)."""
        self._check_params()
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=np.float64, ensure_all_finite=True
        )
        if sparse.issparse(X) and self.method == "ppssgd":
            raise TypeError(
                "sparse input is not supported by method='ppssgd' (mini-batch SGD over CSR row "
                "slices); pass a dense array or use method='output'/'objective'/'amp'"
            )
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(f"need samples of at least 2 classes, got {n_classes}")
        if n_classes > 2 and self.multi_class == "binary":
            raise ValueError(
                f"multi_class='binary' needs exactly 2 classes, got {n_classes} "
                f"({self.classes_[:5].tolist()}...); use multi_class='ovr'"
            )
        return X, y, n_classes

    def _data_norm_from_data(self, X: Any) -> float:
        """The data's max row norm (1 for all-zero data), with the leak warning."""
        norms = _row_norms(X)
        data_norm = float(norms.max()) if norms.max() > 0 else 1.0
        warnings.warn(
            "Data norm has not been specified and will be calculated on the data provided "
            f"(max row norm {data_norm:.4g}). This leaks privacy beyond the reported figures; "
            "set data_norm= from domain knowledge, independently of the data.",
            PrivacyLeakWarning,
            stacklevel=3,  # as before (fit): this helper, _fit, fit
        )
        return data_norm

    # ------------------------------------------------------------------ plans
    def _plan(
        self, n: int, dim: int, R: float, loss: MarginLoss, eps: float, delta: float
    ) -> dict[str, Any]:
        """Calibrate the noise once (it is the same for every one-vs-rest model)."""
        noise = check_noise_for_method(self.noise, self.method, self.noise_params)
        if self.method in ("output", "ppssgd"):
            plan = self._plan_output(n, dim, R, eps, delta)
        elif self.method == "objective":
            plan = self._plan_objective(n, dim, R, loss, eps, delta)
        else:
            plan = self._plan_amp(n, dim, R, loss, eps, delta)
        return {**plan, "noise": noise.name}

    def _plan_output(self, n: int, dim: int, R: float, eps: float, delta: float) -> dict[str, Any]:
        """Output perturbation (``"output"``, and ``"ppssgd"``'s noisy SGD result)."""
        lam = float(self.lam)
        if self.method == "output":
            sens = output_sensitivity(n, lam, R)
        else:
            sens = ppssgd_sensitivity(n, lam, R, float(self.sgd_radius))
        mech = output_noise(self.noise, eps, delta, dim, sens, self.noise_params)
        info = {"sensitivity": sens, "lam": lam, "epsilon": eps, "delta": delta}
        if not getattr(mech, "provable", True):
            # a sampler without a proof: its claim (if any), no verified figure, and why
            return {
                "mechanisms": {"output": mech},
                "claimed": mech.claimed(),
                "verified": None,
                "unverified": unverified_reason(mech),
                "info": info,
            }
        claim, ver = release_figures(mech, eps, delta)
        return {"mechanisms": {"output": mech}, "claimed": claim, "verified": ver, "info": info}

    def _plan_objective(
        self, n: int, dim: int, R: float, loss: MarginLoss, eps: float, delta: float
    ) -> dict[str, Any]:
        """CMS11 objective perturbation."""
        lam = float(self.lam)
        p = cms11_objective(eps, n, lam, loss.c, R)
        if p.fallback:
            warnings.warn(
                f"CMS11 objective perturbation fallback fired (eps'_p <= 0 at n={n}, "
                f"lam={lam:g}): regulariser increased by Delta={p.extra_reg:.4g} and "
                f"eps'_p = eps/2 = {p.epsilon_noise:.4g}",
                UserWarning,
                stacklevel=4,  # as before: this helper, _plan, _fit, fit
            )
        mech, claim = objective_noise(
            self.noise, eps, delta, dim, p.noise_shift, p.jacobian, self.noise_params
        )
        ver = objective_verified(mech, p.noise_shift, p.jacobian, _at(claim, delta))
        return {
            "mechanisms": {"objective": mech},
            "claimed": claim,
            "verified": ver,
            "cms11": p,
            "info": {
                "epsilon": eps,
                "delta": delta,
                "epsilon_noise": p.epsilon_noise,
                "fallback": p.fallback,
                "extra_reg": p.extra_reg,
                "jacobian": p.jacobian,
                "beta": p.beta,
                "noise_shift": p.noise_shift,
                "lam": lam,
            },
        }

    def _plan_amp(
        self, n: int, dim: int, R: float, loss: MarginLoss, eps: float, delta: float
    ) -> dict[str, Any]:
        """Approximate minima perturbation: objective noise, then output noise."""
        params = self.noise_params
        plan = amp_plan(
            eps,
            delta,
            n,
            loss.c,
            R,
            eps_frac=self.amp_eps_frac,
            eps_out_frac=float(self.amp_eps_out_frac),
            gamma=self.amp_gamma,
            min_reg=float(self.lam),
        )
        paid = plan.eps_obj - plan.eps_p  # the official split: the noise gets exactly eps_p
        obj, claim_obj = objective_noise(
            self.noise, plan.eps_obj, plan.delta_obj, dim, plan.obj_shift, paid, params
        )
        out, claim_out, ver_out = self._amp_output_noise(plan, dim)
        claim = _compose([claim_obj, claim_out], "claimed", "AMP objective and output noise")
        if self.amp_shared_noise:
            ver = PrivacyFigure(
                math.inf,
                float(delta),
                "verified",
                "no verified guarantee: objective and output noise share (z, h) as in the "
                "official product-noise AMP code (correlated noises; composition does not apply)",
            )
        else:
            ver_obj = objective_verified(
                obj, plan.obj_shift, plan.jacobian, _at(claim_obj, plan.delta_obj)
            )
            ver = _compose([ver_obj, ver_out], "verified", "AMP objective and output noise")
        return {
            "mechanisms": {"objective": obj, "output": out},
            "claimed": claim,
            "verified": ver,
            "amp": plan,
            "info": {
                "epsilon": eps,
                "delta": delta,
                "eps_p": plan.eps_p,
                "eps_obj": plan.eps_obj,
                "eps_out": plan.eps_out,
                "eps_frac": plan.eps_frac,
                "reg_sum": plan.reg_sum,
                "jacobian": plan.jacobian,
                "gamma": plan.gamma,
                "obj_shift": plan.obj_shift,
                "out_sensitivity": plan.out_sensitivity,
                "shared_noise": bool(self.amp_shared_noise),
            },
        }

    def _amp_output_noise(
        self, plan: Any, dim: int
    ) -> tuple[Mechanism, PrivacyFigure, PrivacyFigure]:
        """AMP's output noise: (mechanism, claimed figure, verified figure)."""
        if resolve_noise(self.noise).name == "classic_gaussian":
            sigma = amp_iyengar_sigma(plan.out_sensitivity, plan.eps_out, plan.delta_out)
            out: Mechanism = Gaussian(dim, sigma, plan.out_sensitivity)
            claim_out = PrivacyFigure(
                plan.eps_out, plan.delta_out, "claimed", "Gaussian output noise, Iyengar et al."
            )
            _, ver_out = release_figures(out, plan.eps_out, plan.delta_out)
            return out, claim_out, ver_out
        out = output_noise(
            self.noise, plan.eps_out, plan.delta_out, dim, plan.out_sensitivity, self.noise_params
        )
        claim_out, ver_out = release_figures(out, plan.eps_out, plan.delta_out)
        return out, claim_out, ver_out

    def _fit_one(
        self,
        X: np.ndarray | sparse.csr_matrix,
        y: np.ndarray,
        loss: MarginLoss,
        plan: dict[str, Any],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, dict[str, float], dict[str, Any]]:
        n = X.shape[0]
        lam = float(self.lam)
        mechs = plan["mechanisms"]
        if self.method == "output":
            sol = minimize_erm(X, y, loss, lam, gtol=self.tol, max_iter=self.max_iter)
            b = mechs["output"].sample(rng=rng)
            info = {"grad_norm": sol.grad_norm, "n_iter": sol.n_iter}
            return sol.theta + b, {"output": float(np.linalg.norm(b))}, info
        if self.method == "ppssgd":
            theta = ppssgd(
                X,
                y,
                loss,
                lam,
                plan["R"],
                float(self.sgd_radius),
                int(self.sgd_epochs),
                int(self.sgd_batch_size),
                rng,
            )
            b = mechs["output"].sample(rng=rng)
            info = {"n_iter": int(self.sgd_epochs) * math.ceil(n / int(self.sgd_batch_size))}
            return theta + b, {"output": float(np.linalg.norm(b))}, info
        if self.method == "objective":
            p = plan["cms11"]
            b = mechs["objective"].sample(rng=rng)
            sol = minimize_erm(
                X, y, loss, lam + p.extra_reg, b / n, gtol=self.tol, max_iter=self.max_iter
            )
            if sol.grad_norm > 1e3 * self.tol:
                warnings.warn(
                    f"objective perturbation needs the exact minimiser; the solver stopped at "
                    f"gradient norm {sol.grad_norm:.3g} (tol={self.tol:g})",
                    PrivacyWarning,
                    stacklevel=3,
                )
            info = {"grad_norm": sol.grad_norm, "n_iter": sol.n_iter}
            return sol.theta, {"objective": float(np.linalg.norm(b))}, info
        # AMP
        amp = plan["amp"]
        obj: SphericalMechanism = mechs["objective"]
        out: SphericalMechanism = mechs["output"]
        b1 = obj.sample(rng=rng)
        sol = minimize_erm(X, y, loss, amp.reg, b1, gtol=0.5 * amp.gamma, max_iter=self.max_iter)
        if sol.grad_norm > amp.gamma:
            raise RuntimeError(
                f"AMP: the solver reached gradient norm {sol.grad_norm:.3g} > "
                f"gamma={amp.gamma:.3g}; the output noise is calibrated for gamma, so releasing "
                "would not be private. "
                "Increase max_iter or amp_gamma (a larger gamma means more output noise)."
            )
        if self.amp_shared_noise:
            if type(obj) is not type(out):
                raise ValueError("amp_shared_noise needs the same noise family for both parts")
            b2 = (out.scale / obj.scale) * b1
        else:
            b2 = out.sample(rng=rng)
        info = {"grad_norm": sol.grad_norm, "n_iter": sol.n_iter}
        norms = {"objective": float(np.linalg.norm(b1)), "output": float(np.linalg.norm(b2))}
        return sol.theta + b2, norms, info

    # ------------------------------------------------------------------ predict
    def decision_function(self, X: Any) -> np.ndarray:
        """``X θ + b``: shape (n,) for two classes, (n, K) otherwise."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        scores = np.asarray(X @ self.coef_.T) + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    # ------------------------------------------------------------------ privacy
    @property
    def privacy_report_(self) -> PrivacyReport:
        """``privacy_`` as a :class:`~product_noise.privacy.PrivacyReport` (after ``fit``;
        ``privacy_`` itself is unchanged)."""
        return self.privacy_.report


class PrivateLogisticRegression(_PrivateLinearClassifier):
    """Differentially private L2-regularised logistic regression (see the module docstring).

    Parameters
    ----------
    epsilon, delta : float
        Total privacy budget (ε > 0, 0 < δ < 1; δ is unused by ``noise="gamma"``, which is pure).
    method : {"output", "objective", "amp", "ppssgd"}
    noise : str or type of ScaledMechanism
        ``"gaussian"``, ``"classic_gaussian"``, ``"product"``, ``"product_paper"``, ``"l2"``,
        ``"gamma"``, any name (or alias) registered for ERM (live:
        :func:`~product_noise.erm.noise.noise_choices`), or a mechanism class.
    noise_params : dict, optional
        Extra arguments of the noise (``{"k": ...}`` or ``{"target_delta": ...}`` for
        ``product_paper``).
    lam : float
        λ of the averaged objective (sklearn ``C = 1/(n λ)``). For AMP a lower bound on
        ``Λ_Σ/n`` (AMP's own ``Λ_Σ = 2cR²/(ε_obj − ε_p)`` is used when larger).
    data_norm : float, optional
        Row-norm bound; rows are projected to it. Computed from the data (with
        :class:`PrivacyLeakWarning`) when None.
    fit_intercept, intercept_scaling :
        Private intercept through a constant feature of value ``intercept_scaling``.
    multi_class : {"ovr", "binary"}
        One-vs-rest with ``ε/K, δ/K`` per class, or refuse more than two classes.
    amp_eps_frac, amp_eps_out_frac, amp_gamma, amp_shared_noise :
        AMP: ``ε_p/ε_obj`` (Strategy #1 if None), ``ε_out/ε`` (and ``δ_out/δ``), gradient
        tolerance γ (``1/n²`` if None), and the official code's shared-noise mode (comparison
        only; no verified guarantee).
    sgd_epochs, sgd_batch_size, sgd_radius :
        PPSSGD passes, mini-batch size and projection radius.
    tol, max_iter :
        Solver gradient-norm tolerance and iteration cap.
    random_state : int, Generator or None
        Seeds the noise (and SGD permutations).

    Attributes
    ----------
    classes_, coef_ (K', d), intercept_ (K',), n_features_in_, n_iter_, privacy_ (ERMPrivacy)
    """

    _loss_name = "logistic"

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (sigmoid of the decision; one-vs-rest normalised for K > 2)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = special.expit(scores)
            return np.column_stack([1.0 - p, p])
        p = special.expit(scores)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))


class PrivateHuberSVM(_PrivateLinearClassifier):
    """Differentially private Huber-SVM (CMS11 Eq. 7, parameter ``huber_h``; ``c = 1/(2h)``).

    Parameters are those of :class:`PrivateLogisticRegression` plus ``huber_h`` (default 0.5,
    CMS11's experiments; dpml uses 0.1). No ``predict_proba``.
    """

    _loss_name = "huber"

    def __init__(
        self,
        *,
        epsilon: float = 1.0,
        delta: float = 1e-5,
        method: str = "output",
        noise: str = "gaussian",
        noise_params: dict[str, Any] | None = None,
        lam: float = 1e-3,
        data_norm: float | None = None,
        fit_intercept: bool = True,
        intercept_scaling: float = 1.0,
        multi_class: str = "ovr",
        huber_h: float = 0.5,
        amp_eps_frac: float | None = None,
        amp_eps_out_frac: float = 0.01,
        amp_gamma: float | None = None,
        amp_shared_noise: bool = False,
        sgd_epochs: int = 200,
        sgd_batch_size: int = 50,
        sgd_radius: float = 10.0,
        tol: float = 1e-9,
        max_iter: int = 2000,
        random_state: Any = None,
    ) -> None:
        super().__init__(
            epsilon=epsilon,
            delta=delta,
            method=method,
            noise=noise,
            noise_params=noise_params,
            lam=lam,
            data_norm=data_norm,
            fit_intercept=fit_intercept,
            intercept_scaling=intercept_scaling,
            multi_class=multi_class,
            amp_eps_frac=amp_eps_frac,
            amp_eps_out_frac=amp_eps_out_frac,
            amp_gamma=amp_gamma,
            amp_shared_noise=amp_shared_noise,
            sgd_epochs=sgd_epochs,
            sgd_batch_size=sgd_batch_size,
            sgd_radius=sgd_radius,
            tol=tol,
            max_iter=max_iter,
            random_state=random_state,
        )
        self.huber_h = huber_h

    def _loss(self) -> MarginLoss:
        return make_loss("huber", self.huber_h)
