"""The paper's *claimed* DP-SGD accounting ("distribution-independent composition").

This module reproduces, number for number, ``compute_tighter_epsilon_delta`` from the authors'
DP-SGD scripts (``DPSGD/examples/*.py`` of ``issleepgroup/Product_Noise-ERM``) accompanying the
product-noise paper [1]_. Every figure it returns is a **claimed** figure: it is what the paper
reports, not a privacy guarantee.

The accounting is known to be unsound:

* the per-step ``delta0`` fed into it comes from the paper's formula, and the true per-step
  delta of the product-noise mechanism at the paper's settings is orders of magnitude larger
  (e.g. 0.42 instead of 1.98e-7 for MNIST);
* the term ``delta''`` is not a valid upper bound: it is a Chernoff bound multiplied by an extra
  ``exp(-(T eps_a + eps'))`` (apparently a sign error) and falls below the exact optimal
  composition of randomised response;
* the amplification formulas are applied even where the data loader is not Poisson-sampled (IMDB).

Use :mod:`product_noise.accounting.pld` for **verified** figures.

References
----------
.. [1] L. Liu, Y. Ji, Y. Fang, X. Wei and Z. Li, SIGMOD 2026,
       arXiv:2512.06253.
.. [2] P. Kairouz, S. Oh and P. Viswanath, "The composition theorem for differential privacy",
       ICML 2015.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ..privacy import CLAIMED

__all__ = [
    "ClaimedFigure",
    "ClaimedEpochFigure",
    "paper_composition",
    "paper_composition_at_steps",
]

_MAX_VAL = 1e300  # the official code's cap on the middle factor of delta''


@dataclass(frozen=True)
class ClaimedFigure:
    """A claimed ``(epsilon, delta)`` after ``steps`` steps (paper's formula; not a guarantee).

    Attributes
    ----------
    steps : int
        Number of composed steps ``T``.
    epsilon : float
        Claimed total epsilon ``eps'``.
    delta : float
        Claimed total delta ``delta'``.
    """

    steps: int
    epsilon: float
    delta: float

    label: ClassVar[str] = CLAIMED


@dataclass(frozen=True)
class ClaimedEpochFigure(ClaimedFigure):
    """A :class:`ClaimedFigure` at the end of a training epoch.

    Attributes
    ----------
    epoch : int
        Epoch number, starting at 1; ``steps = epoch * floor(N / B)``.
    """

    epoch: int


def _check_common(
    epsilon0: float, delta0: float, batch_size: int, num_samples: int, delta_tilde: float
) -> None:
    if not (math.isfinite(epsilon0) and epsilon0 > 0):
        raise ValueError(f"epsilon0 must be a finite number > 0, got {epsilon0!r}")
    if not 0 < delta0 < 1:
        raise ValueError(f"delta0 must be in (0, 1), got {delta0!r}")
    if not 0 < delta_tilde < 1:
        raise ValueError(f"delta_tilde must be in (0, 1), got {delta_tilde!r}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if int(num_samples) != num_samples or num_samples < batch_size:
        raise ValueError(
            f"num_samples must be an integer >= batch_size={batch_size}, got {num_samples!r}"
        )


def _amplified(
    epsilon0: float, delta0: float, batch_size: int, num_samples: int
) -> tuple[float, float]:
    """Per-step (eps_a, delta_a) after the paper's amplification by subsampling, q = B/N."""
    q = batch_size / num_samples
    epsilon_amp = math.log(1 + q * (math.exp(epsilon0) - 1))
    delta_amp = q * delta0
    return epsilon_amp, delta_amp


def _min_steps(epsilon_amp: float, delta_tilde: float) -> float:
    """Smallest real T with D = T eps_a - eps' > 0 (ignoring the 8-decimal roundings)."""
    return 2 * math.log(1 / delta_tilde) / (1 - math.tanh(epsilon_amp / 2)) ** 2


def _compose(
    epsilon_amp: float, delta_amp: float, num_steps: int, delta_tilde: float
) -> tuple[float, float]:
    """One iteration of the official loop, same operations in the same order (bit-faithful)."""
    T = num_steps
    ea = epsilon_amp
    term1 = T * ((math.exp(ea) - 1) * ea) / (math.exp(ea) + 1)
    term2 = math.sqrt(2 * math.log(1 / delta_tilde) * T * ea**2)
    eps_prime = round(term1, 8) + round(term2, 8)

    a_sum = eps_prime + T * ea  # "delta_double_prime_radio"
    d_diff = T * ea - eps_prime  # "delta_double_prime_fraction"
    if not d_diff > 0:
        raise ValueError(
            f"T = {T} steps is too small for the paper's composition formula: it needs "
            f"D = T*eps_a - eps' > 0, got D = {d_diff!r} (eps_a = {ea!r}); this needs roughly "
            f"T > 2 ln(1/delta_tilde) / (1 - tanh(eps_a/2))^2 = {_min_steps(ea, delta_tilde):.1f}"
            " (the official code would divide by zero or return complex numbers here)"
        )

    factor1 = math.exp(-a_sum / 2)
    try:
        base_val = (1 / (1 + math.exp(ea))) * (2 * T * ea / d_diff)
        result = min(base_val**T, _MAX_VAL)
        factor2 = round(result, 10)
    except OverflowError:
        factor2 = round(_MAX_VAL, 10)
    factor3 = ((T * ea + eps_prime) / d_diff) ** (-a_sum / (2 * ea))
    delta_dprime = factor1 * factor2 * factor3

    j = math.ceil(eps_prime / ea)
    s = delta_amp / (1 + math.exp(ea))
    delta_prime = 2 - (1 - math.exp(ea) * s) ** j * (1 - s) ** (T - j) - (1 - s) ** T + delta_dprime
    return eps_prime, delta_prime


def paper_composition_at_steps(
    epsilon0: float,
    delta0: float,
    batch_size: int,
    num_samples: int,
    num_steps: int,
    delta_tilde: float = 1e-8,
) -> ClaimedFigure:
    """The paper's claimed ``(eps', delta')`` after ``num_steps`` DP-SGD steps.

    Same formula as :func:`paper_composition`, evaluated at an arbitrary number of steps ``T``
    instead of at epoch boundaries. This is the paper's **claimed** accounting and it is known to
    be unsound: the per-step ``delta0`` of product noise is false and ``delta''`` is not a valid
    bound (see the module docstring).

    Parameters
    ----------
    epsilon0 : float
        Per-step epsilon of the mechanism (``initial_epsilon`` in the scripts), > 0.
    delta0 : float
        Per-step delta claimed by the paper (hard-coded in each script), in (0, 1).
    batch_size : int
        Batch size ``B`` (sampling rate ``q = B / N``), >= 1.
    num_samples : int
        Training-set size ``N`` >= ``B``.
    num_steps : int
        Number of steps ``T`` >= 1.
    delta_tilde : float, optional
        Slack delta of the Kairouz-Oh-Viswanath bound, 1e-8 in the scripts.

    Returns
    -------
    ClaimedFigure
        ``steps``, ``epsilon = eps'`` and ``delta = delta'``, labelled ``"claimed"``.

    Raises
    ------
    ValueError
        On invalid arguments, or when ``D = T eps_a - eps' <= 0`` (``T`` too small for the
        formula, roughly ``T <= 2 ln(1/delta_tilde) ≈ 37`` for small ``eps_a``).
    """
    _check_common(epsilon0, delta0, batch_size, num_samples, delta_tilde)
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
    epsilon_amp, delta_amp = _amplified(epsilon0, delta0, int(batch_size), int(num_samples))
    eps, delta = _compose(epsilon_amp, delta_amp, int(num_steps), delta_tilde)
    return ClaimedFigure(steps=int(num_steps), epsilon=eps, delta=delta)


def paper_composition(
    epsilon0: float,
    delta0: float,
    batch_size: int,
    num_samples: int,
    epochs: int,
    delta_tilde: float = 1e-8,
) -> list[ClaimedEpochFigure]:
    """The paper's claimed per-epoch ``(eps', delta')`` (``compute_tighter_epsilon_delta``).

    Reproduces exactly the official code, including its roundings:

    * ``q = B/N``, ``eps_a = ln(1 + q (e^eps0 - 1))``, ``delta_a = q delta0``;
    * ``floor(N/B)`` steps per epoch, ``T = epoch * floor(N/B)``;
    * ``eps' = T eps_a (e^eps_a - 1)/(e^eps_a + 1) + eps_a sqrt(2 T ln(1/delta_tilde))``
      (third bound of Kairouz-Oh-Viswanath 2015, Thm 3.5), each term rounded to 8 decimals;
    * ``delta'' = e^{-A/2} * min([2 T eps_a / ((1 + e^eps_a) D)]^T, 1e300) * (A/D)^{-A/(2 eps_a)}``
      with ``A = T eps_a + eps'``, ``D = T eps_a - eps'`` and the middle factor rounded to
      10 decimals;
    * ``s = delta_a/(1 + e^eps_a)``, ``j = ceil(eps'/eps_a)``,
      ``delta' = 2 - (1 - e^eps_a s)^j (1 - s)^(T-j) - (1 - s)^T + delta''``.

    This is the paper's **claimed** accounting and it is known to be unsound: ``delta''`` is not
    a valid bound and the per-step ``delta0`` is false for product noise. Never
    present these figures as a privacy guarantee; see :mod:`product_noise.accounting.pld`.

    Parameters
    ----------
    epsilon0 : float
        Per-step epsilon (``initial_epsilon``), > 0.
    delta0 : float
        Per-step delta hard-coded in the script (e.g. ``1.9779675188471893e-07`` for MNIST), in
        (0, 1).
    batch_size : int
        Batch size ``B`` >= 1.
    num_samples : int
        Training-set size ``N`` >= ``B``.
    epochs : int
        Number of epochs >= 1; one figure is returned per epoch.
    delta_tilde : float, optional
        Slack delta of the KOV bound (1e-8 in the scripts).

    Returns
    -------
    list of ClaimedEpochFigure
        One entry per epoch ``1..epochs`` with ``epoch``, ``steps``, ``epsilon``, ``delta``.

    Raises
    ------
    ValueError
        If ``epsilon0 <= 0``, ``delta0`` not in (0, 1), ``B < 1``, ``N < B``, ``epochs < 1``, or
        if ``D = T eps_a - eps' <= 0`` at some epoch (too few steps for the formula; the official
        code would divide by zero or produce complex numbers there).

    Examples
    --------
    The paper's MNIST defaults,
    ``paper_composition(0.3, 1.9779675188471893e-07, 256, 60000, 50)[-1]``, give
    ``epsilon ≈ 0.9923`` and ``delta ≈ 9.867e-6`` after 11,700 steps.
    """
    _check_common(epsilon0, delta0, batch_size, num_samples, delta_tilde)
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    epsilon_amp, delta_amp = _amplified(epsilon0, delta0, int(batch_size), int(num_samples))
    steps_per_epoch = int(num_samples) // int(batch_size)  # code: ceil(N // B), i.e. floor
    figures = []
    for epoch in range(1, int(epochs) + 1):
        steps = steps_per_epoch * epoch
        eps, delta = _compose(epsilon_amp, delta_amp, steps, delta_tilde)
        figures.append(ClaimedEpochFigure(steps=steps, epsilon=eps, delta=delta, epoch=epoch))
    return figures
