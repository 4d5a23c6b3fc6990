"""Solvers for the (perturbed) regularised ERM problems, dense or CSR input.

``minimize_erm`` minimises ``F(θ) = (1/n) Σ ℓ(y_i θᵀx_i) + (reg/2)‖θ‖² + linᵀθ`` to a stated
gradient norm: L-BFGS-B, then (if it stops early) Newton–CG steps on the gradient norm. Objective
perturbation needs the exact minimiser (CMS11) or a certified gradient norm (AMP), so the
achieved ``‖∇F‖₂`` is returned and checked by the callers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse
from scipy.sparse import linalg as sparse_linalg

from .losses import MarginLoss

__all__ = ["ERMSolution", "minimize_erm", "ppssgd"]


@dataclass
class ERMSolution:
    """Result of :func:`minimize_erm`."""

    theta: np.ndarray
    grad_norm: float
    n_iter: int
    value: float


def _fun(theta, X, y, loss: MarginLoss, reg: float, lin: np.ndarray | None):
    n = y.shape[0]
    z = y * (X @ theta)
    val = float(np.sum(loss.value(z))) / n + 0.5 * reg * float(theta @ theta)
    grad = np.asarray(X.T @ (y * loss.deriv(z))).ravel() / n + reg * theta
    if lin is not None:
        val += float(lin @ theta)
        grad = grad + lin
    return val, grad


def minimize_erm(
    X: np.ndarray | sparse.csr_matrix,
    y: np.ndarray,
    loss: MarginLoss,
    reg: float,
    lin: np.ndarray | None = None,
    *,
    gtol: float = 1e-9,
    max_iter: int = 2000,
    theta0: np.ndarray | None = None,
) -> ERMSolution:
    """Minimise ``(1/n) Σ ℓ(y θᵀx) + (reg/2)‖θ‖² + linᵀθ`` until ``‖∇‖₂ ≤ gtol`` (if possible).

    Parameters
    ----------
    X : ndarray or CSR matrix, shape (n, d)
    y : ndarray, shape (n,), values ±1
    loss : MarginLoss
    reg : float
        Strong convexity of the averaged objective (> 0).
    lin : ndarray, shape (d,), optional
        Linear perturbation term.
    gtol : float
        Target Euclidean gradient norm.
    max_iter : int
        Iteration cap for each of the two phases.
    theta0 : ndarray, optional
        Starting point (zeros by default).

    Returns
    -------
    ERMSolution
    """
    d = X.shape[1]
    th = np.zeros(d) if theta0 is None else np.asarray(theta0, dtype=float).copy()
    res = optimize.minimize(
        _fun,
        th,
        args=(X, y, loss, reg, lin),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": gtol / math.sqrt(d), "ftol": 1e-15, "maxcor": 20},
    )
    th, nit = res.x, int(res.nit)
    val, g = _fun(th, X, y, loss, reg, lin)
    gn = float(np.linalg.norm(g))
    if gn > gtol:
        th, val, gn, k = _newton_polish(th, X, y, loss, reg, lin, gtol, max_iter)
        nit += k
    return ERMSolution(theta=th, grad_norm=gn, n_iter=nit, value=val)


def _newton_polish(theta, X, y, loss: MarginLoss, reg: float, lin, gtol: float, max_iter: int):
    """Newton–CG on the gradient norm (function values are flat at machine precision there).

    Each step solves ``H p = −∇F`` by conjugate gradients and backtracks until ``‖∇F‖`` drops.
    """
    n, d = X.shape
    val, g = _fun(theta, X, y, loss, reg, lin)
    gn = float(np.linalg.norm(g))
    k = 0
    for it in range(1, min(max_iter, 100) + 1):
        k = it
        if gn <= gtol:
            break
        curv = loss.second(y * (X @ theta))

        def mv(v, curv=curv):
            return np.asarray(X.T @ (curv * (X @ v))).ravel() / n + reg * v

        op = sparse_linalg.LinearOperator((d, d), matvec=mv, dtype=np.float64)
        p, _ = sparse_linalg.cg(op, -g, rtol=1e-12, maxiter=max(10 * d, 500))
        t = 1.0
        while True:
            cand = theta + t * p
            v2, g2 = _fun(cand, X, y, loss, reg, lin)
            gn2 = float(np.linalg.norm(g2))
            if gn2 < gn or t < 1e-6:
                break
            t *= 0.5
        if gn2 >= gn:
            break
        theta, val, g, gn = cand, v2, g2, gn2
    return theta, val, gn, k


def ppssgd(
    X: np.ndarray,
    y: np.ndarray,
    loss: MarginLoss,
    lam: float,
    lipschitz: float,
    radius: float,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Permutation mini-batch SGD for the λ-strongly convex objective (Wu et al. 2017, PPSSGD).

    Step ``η_t = min(1/β, 1/(λ t))`` with ``β = c L² + λ`` (the true smoothness; dpml uses
    ``L² + λ``, i.e. smaller steps), iterates projected on the L2 ball of radius ``radius``.
    One fresh permutation per epoch. Returns the last iterate (to be perturbed by the caller with
    sensitivity :func:`~product_noise.erm.objective.ppssgd_sensitivity`).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data matrix (rows of norm ≤ ``lipschitz`` for the stated sensitivity).
    y : ndarray of shape (n_samples,)
        Labels ±1.
    loss : MarginLoss
        The margin loss (its ``c`` enters the step size).
    lam : float
        Strong convexity ``λ > 0`` (regularisation of the averaged objective).
    lipschitz : float
        Lipschitz constant ``L`` of the per-sample loss.
    radius : float
        Radius of the L2 ball the iterates are projected on.
    epochs : int
        Number of passes.
    batch_size : int
        Mini-batch size.
    rng : numpy.random.Generator
        Source of the permutations.

    Returns
    -------
    theta : ndarray of shape (n_features,)
        The last iterate (not yet perturbed).
    """
    n, d = X.shape
    beta = loss.c * lipschitz**2 + lam
    theta = np.zeros(d)
    t = 0
    for _ in range(epochs):
        perm = rng.permutation(n)
        Xp, yp = X[perm], y[perm]
        for start in range(0, n, batch_size):
            xb = Xp[start : start + batch_size]
            yb = yp[start : start + batch_size]
            t += 1
            eta = min(1.0 / beta, 1.0 / (lam * t))
            z = yb * (xb @ theta)
            g = xb.T @ (yb * loss.deriv(z)) / yb.shape[0] + lam * theta
            theta -= eta * g
            nrm = float(np.linalg.norm(theta))
            if nrm > radius:
                theta *= radius / nrm
    return theta
