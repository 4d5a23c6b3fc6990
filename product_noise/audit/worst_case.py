"""Worst-case initial parameters for the black-box DP-SGD audit ``"final-model-worst-case"``.

Annamalai and De Cristofaro (NeurIPS 2024) show that a black-box adversary (final model only)
gets a nearly tight audit when it may choose the initial parameters θ₀, known to it and the
same in both worlds: θ₀ is a model trained *non-privately* to (near) convergence on the known
records, so that their gradients are small during private training, and the canary is an
input whose gradient stays large and points the same way at every step, labelled with the
class θ₀ finds least likely (their ``choose_worstcase_label``). Then the final model moves
almost only by the noise and, in the world with the canary, by ``T`` clipped canary gradients
of one fixed direction, which the canary's final logit margin reads off.

Here the model is the audit's float64 logistic regression (64 → 10, softmax, cross-entropy);
θ₀ minimises the known records' mean cross-entropy by L-BFGS from θ = 0 for a fixed number of
iterations (deterministic: closed-form gradients, a fixed start, no randomness). The canary is
the all-ones image (the largest input in [0, 1]^64, so its gradient is always clipped), with
label ``argmin_k softmax(θ₀ x)_k`` (the lowest such class on a tie).

References
----------
Annamalai, M. S. M. S., De Cristofaro, E. "Nearly Tight Black-Box Auditing of Differentially
Private Machine Learning." NeurIPS 2024, arXiv:2405.14106.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "WORST_CASE_ITERATIONS",
    "mean_gradient",
    "worst_case_label",
    "worst_case_theta0",
]

#: L-BFGS iterations of the non-private pre-training (fixed, so θ₀ is deterministic)
WORST_CASE_ITERATIONS = 500
_CLASSES = 10


def _split(theta: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` of a flat parameter vector (weight first, row-major, then bias), the order
    of ``nn.Linear.parameters()``."""
    return theta[: _CLASSES * d].reshape(_CLASSES, d), theta[_CLASSES * d :]


def _loss_and_gradient(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax regression and its gradient (closed form: with
    ``e = softmax(Wx + b) − onehot(y)``, ``∇_W = mean(e xᵀ)``, ``∇_b = mean(e)``)."""
    W, b = _split(theta, X.shape[1])
    z = X @ W.T + b
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    e = np.exp(logp)
    e[rows, y] -= 1.0
    grad = np.concatenate([(e.T @ X).reshape(-1), e.sum(axis=0)]) / len(y)
    return float(-logp[rows, y].mean()), grad


def mean_gradient(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The records' mean cross-entropy gradient at the flat parameters ``theta`` (float64)."""
    return _loss_and_gradient(np.asarray(theta, dtype=np.float64), X, y)[1]


def worst_case_theta0(
    X: np.ndarray, y: np.ndarray, iterations: int = WORST_CASE_ITERATIONS
) -> np.ndarray:
    """θ₀ of the worst-case-initialisation audit: the known records' non-private fit.

    Parameters
    ----------
    X : ndarray, shape (n, d)
        The known records (float64).
    y : ndarray of int, shape (n,)
        Their labels in ``0..9``.
    iterations : int, default :data:`WORST_CASE_ITERATIONS`
        At most this many L-BFGS iterations from θ = 0; it stops earlier once every gradient
        coordinate is below 10⁻¹² (scipy's ``gtol``; no stop on the loss change).

    Returns
    -------
    ndarray, shape (10·d + 10,)
        The flat parameters (weight row-major, then bias). The records' mean gradient norm
        there is small (the fit is near a stationary point, or far along a separating
        direction where the loss is flat); deterministic for given inputs.

    References
    ----------
    Annamalai and De Cristofaro, NeurIPS 2024, arXiv:2405.14106 (worst-case initial parameters
    by pre-training on the known data).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    return _fit(X.tobytes(), X.shape, y.tobytes(), int(iterations)).copy()


@lru_cache(maxsize=8)
def _fit(xb: bytes, shape: tuple[int, int], yb: bytes, iterations: int) -> np.ndarray:
    """Cached L-BFGS fit (both worlds of an audit, and repeated audits, share θ₀)."""
    from scipy.optimize import minimize

    X = np.frombuffer(xb, dtype=np.float64).reshape(shape)
    y = np.frombuffer(yb, dtype=np.int64)
    res = minimize(
        _loss_and_gradient,
        np.zeros(_CLASSES * (shape[1] + 1)),
        args=(X, y),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": iterations, "gtol": 1e-12, "ftol": 0.0, "maxfun": 4 * iterations},
    )
    return np.asarray(res.x, dtype=np.float64)


def worst_case_label(theta0: np.ndarray, x: np.ndarray) -> int:
    """The class the model ``theta0`` finds least likely for input ``x`` (lowest on a tie):
    the canary's label, whose gradient ``(p − onehot(y)) xᵀ`` is then largest (Annamalai and
    De Cristofaro's ``choose_worstcase_label``)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    W, b = _split(np.asarray(theta0, dtype=np.float64), x.size)
    return int(np.argmin(W @ x + b))  # softmax is increasing in the logit
