"""A white-box one-run audit of a user's own Opacus training loop, with Dirac gradient canaries.

::

    audit = GradientCanaryAudit(num_canaries=1000, seed=0)
    model, optimizer, loader = engine.make_private(...)      # any noise
    audit.attach(optimizer, loader)        # before training; attach(optimizer) reads q itself
    ...                                                      # the user's loop, unchanged
    report = audit.report(engine, delta=1e-5)                # after training
    print(report)      # verified/claimed (the engine's), empirical lower bound(s), estimate

Threat model
------------
White box with Dirac gradient canaries, as in Nasr et al. [2]_ (Sec. 4, "gradient canaries")
and Steinke, Nasr, Jagielski [1]_ (Sec. 6, white-box DP-SGD audit in one run):

* **Canaries.** Canary ``j`` (of ``m``) owns one trainable parameter coordinate ``c_j``,
  distinct for distinct canaries, chosen by ``seed`` uniformly among all trainable
  coordinates. Its gradient is ``C e_{c_j}``, ``C`` the clip norm of that coordinate's
  parameter (the flat clip norm, or the per-layer one): its norm is exactly ``C``, so clipping
  leaves it unchanged and it has the largest influence a clipped record can have.
* **Inclusion.** Each canary is included independently with probability ½ (seeded; the
  inclusion bits are hidden from the adversary and revealed to the audit only at the end).
  At every optimizer step each included canary is sampled independently with the loader's
  Poisson rate ``q``, as one more record of the training set, and if sampled its gradient is
  added to the summed clipped gradient (``p.summed_grad``) **before** the noise is added: the
  optimizer instance's ``add_noise`` is wrapped, so this works for every noise family
  (Gaussian, product, ℓ2, a user's registered mechanism).
* **Adversary.** Knows the canary coordinates and sees every step's noisy summed gradient
  ``p.grad`` right after ``add_noise`` and before Opacus' ``scale_grad`` (which divides by
  ``expected_batch_size`` for ``loss_reduction="mean"``; the score is read before that
  division, i.e. on the scale of the clipped gradients). Canary ``j``'s score is
  ``s_j = Σ_t g_t[c_j]``, ``g_t`` the noisy summed gradient of step ``t`` (the
  Neyman–Pearson statistic for Gaussian noise). By default the adversary does **not** know
  the other records, so their summed gradient at ``c_j`` is part of the score (real data add
  noise to the scores and weaken the bound). With ``subtract_data=True`` it is the strongest
  adversary, who knows every other record: the data's contribution ``Σ_t d_t[c_j]`` (read from
  ``p.summed_grad`` before the canaries are added) is subtracted, leaving canary + noise.
* **Statistic.** ``statistic="sum"`` (default) is the score above. ``statistic="weighted"``
  weights step ``t``'s term by ``M / ‖r_t‖²``, ``r_t`` the step's noisy summed gradient (noise
  + canaries with ``subtract_data``) and ``M`` the number of trainable values: the
  inverse-variance weighting when the noise's scale changes from step to step and can be read
  off ``‖r_t‖``, as for product noise, whose radius ``σ|z|`` is half-normal, so steps with a
  small radius reveal the canaries (the per-step δ the paper's claim misses). Either is a
  fixed function of what the adversary sees, so either gives a valid bound; only the power
  differs.

The one-run bound is valid (Steinke et al. [1]_, Theorem 3.3 / Algorithm 2) because inclusion is
independent with probability ½ and the scores are a function of the run's output only. The
reported ε refers to adding or removing one canary, i.e. one record with a gradient of norm
``C``, which is the add/remove relation the engine's accountant bounds.

Not supported: distributed optimizers (each rank would add the canaries), gradient
accumulation over several ``backward`` calls per step (the accountant's rate is then ``q``
times the number of accumulated batches; :meth:`GradientCanaryAudit.report` refuses such a
mismatch), and optimizers without ``p.summed_grad``.

References
----------
.. [1] T. Steinke, M. Nasr, M. Jagielski. "Privacy auditing with one (1) training run."
   NeurIPS 2023. arXiv:2305.08846.
.. [2] M. Nasr, J. Hayes, T. Steinke, B. Balle, F. Tramèr, M. Jagielski, N. Carlini,
   A. Terzis. "Tight auditing of differentially private machine learning." USENIX Security
   2023. arXiv:2302.07956.
.. [3] S. Mahloujifar, L. Melis, K. Chaudhuri. "Auditing f-differential privacy in one run."
   ICML 2025. arXiv:2410.22235.
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral
from typing import Any

import numpy as np
import torch
from opacus.optimizers import DPOptimizer

from ..privacy import EmpiricalBound, PrivacyReport
from ..validation import InputError, check_confidence, check_delta
from .one_run import (
    GDPEstimate,
    OneRunBound,
    check_enough_canaries,
    gdp_epsilon_estimate,
    steinke_best_threshold,
)

__all__ = ["GradientCanaryAudit", "STATISTICS", "one_run_report"]

_SOURCE = "product_noise.audit.GradientCanaryAudit"
#: the canary scores :class:`GradientCanaryAudit` can compute (module docstring)
STATISTICS = ("sum", "weighted")


def _closure_sample_rate(fn: Any, depth: int = 0) -> float | None:
    """The ``sample_rate`` captured by an accountant's optimizer hook (Opacus' and the
    package's ``get_optimizer_hook_fn``), searched through nested closures; ``None`` if none."""
    cells = getattr(fn, "__closure__", None) or ()
    names = getattr(getattr(fn, "__code__", None), "co_freevars", ())
    for name, cell in zip(names, cells):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if name == "sample_rate" and isinstance(value, (int, float)):
            return float(value)
        if callable(value) and depth < 3:
            found = _closure_sample_rate(value, depth + 1)
            if found is not None:
                return found
    return None


def _resolve_sample_rate(optimizer: DPOptimizer, data_loader: Any, sample_rate: Any) -> float:
    """The Poisson rate ``q`` of one step: ``sample_rate``, else the loader's Poisson sampler,
    else the rate the engine's accountant hook steps with."""
    if sample_rate is None and data_loader is not None:
        sample_rate = getattr(getattr(data_loader, "batch_sampler", None), "sample_rate", None)
        if sample_rate is None:
            sample_rate = 1.0 / len(data_loader)
    if sample_rate is None:
        sample_rate = _closure_sample_rate(getattr(optimizer, "step_hook", None))
    if sample_rate is None:
        raise InputError(
            "cannot find the sampling rate of this optimizer: pass the loader make_private "
            "returned, audit.attach(optimizer, loader), or sample_rate="
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)):
        raise InputError(f"sample_rate must be a number in (0, 1], got {sample_rate!r}")
    q = float(sample_rate)
    if not 0.0 < q <= 1.0:
        raise InputError(
            f"the sampling rate q must lie in (0, 1], got {q!r}: with q = 0 a canary is never "
            "sampled and the audit sees nothing"
        )
    return q


def _accounted_rates(engine: Any) -> tuple[list[float], int]:
    """The distinct sampling rates and the number of steps in the engine's accountant."""
    history = getattr(engine.accountant, "history", None) or []
    rates, steps = [], 0
    for h in history:
        if hasattr(h, "sample_rate"):  # the package's NoiseStep
            rates.append(float(h.sample_rate))
            steps += int(h.steps)
        else:  # Opacus: (noise_multiplier, sample_rate, steps)
            rates.append(float(h[1]))
            steps += int(h[2])
    return sorted(set(rates)), steps


def _empirical(bound: OneRunBound) -> EmpiricalBound:
    """``bound`` as an :class:`EmpiricalBound` whose source is its bracketed details."""
    text = str(bound)
    details = text.split(" [", 1)[1].rstrip("]") if " [" in text else text
    return bound.to_empirical(f"white-box gradient canaries, {details}")


def one_run_report(
    engine: Any,
    scores: np.ndarray,
    included: np.ndarray,
    delta: float,
    confidence: float,
    fdp: bool | None,
    what: str,
    source: str,
) -> PrivacyReport:
    """The engine's privacy report plus a one-run audit's figures: the Steinke et al. bound
    (and with ``fdp``, default for Gaussian noise, the f-DP one) as empirical lower bounds, the
    Gaussian-fit estimate as an estimate; ``what`` says how the run was audited."""
    base = engine.get_privacy_report(delta)
    if fdp is None:
        fdp = engine.noise == "gaussian"
    methods = ("steinke", "fdp") if fdp else ("steinke",)
    bounds = [
        _empirical(steinke_best_threshold(scores, included, delta, confidence, method=m))
        for m in methods
    ]
    est = gdp_epsilon_estimate(scores[included], scores[~included], delta)
    return replace(
        base,
        estimates=base.estimates + (est.to_figure(),),
        empirical=base.empirical + tuple(bounds),
        source=source,
        what=f"{base.what}; {what}",
    )


class GradientCanaryAudit:
    """White-box one-run audit of an Opacus DP-SGD loop with ``m`` Dirac gradient canaries.

    See the module docstring for the threat model. Usage: construct, :meth:`attach` to the
    optimizer ``make_private`` returned (before training), train as usual, then
    :meth:`report`.

    Parameters
    ----------
    num_canaries : int
        ``m`` canaries: at least :func:`~product_noise.audit.one_run.min_canaries` of
        ``confidence`` (7 at 95%; with fewer no outcome gives a bound above 0) and at most
        the number of trainable coordinates (checked by :meth:`attach`).
    seed : int, default 0
        Seeds the inclusion bits, the canary coordinates and the per-step canary sampling (a
        NumPy generator of its own: the training's noise generator is not touched).
    subtract_data : bool, default False
        The strongest adversary, who knows the other records: their summed clipped gradient
        at each canary coordinate is subtracted from the scores.
    statistic : {"sum", "weighted"}, default "sum"
        The score: ``Σ_t v_t[c_j]``, or each step's term weighted by ``M / ‖r_t‖²`` (module
        docstring).
    confidence : float, default 0.95
        Default confidence of :meth:`report` in (0, 1), checked here, before training.

    Attributes
    ----------
    included : numpy.ndarray of bool, shape (m,)
        Membership bits (each True with probability ½), drawn at construction.
    coordinates : numpy.ndarray of int, shape (m,)
        Canary ``j``'s index in the flattened trainable parameters (set by :meth:`attach`).
    num_steps : int
        Optimizer steps seen (noise added) since :meth:`attach`.
    sample_rate : float or None
        The Poisson rate ``q`` each included canary is sampled with per step.

    References
    ----------
    Steinke, Nasr, Jagielski, NeurIPS 2023 (arXiv:2305.08846); Nasr et al., USENIX Security
    2023 (arXiv:2302.07956).
    """

    def __init__(
        self,
        num_canaries: int,
        *,
        seed: int = 0,
        subtract_data: bool = False,
        statistic: str = "sum",
        confidence: float = 0.95,
    ) -> None:
        if isinstance(num_canaries, bool) or not isinstance(num_canaries, Integral):
            raise InputError(f"num_canaries must be an integer >= 2, got {num_canaries!r}")
        if num_canaries < 2:
            raise InputError(
                f"num_canaries must be >= 2 (a one-run audit needs included and excluded "
                f"canaries), got {num_canaries!r}"
            )
        self.num_canaries = int(num_canaries)
        self.seed = seed
        self.subtract_data = bool(subtract_data)
        if statistic not in STATISTICS:
            raise InputError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
        self.statistic = statistic
        self.confidence = check_confidence(confidence)
        check_enough_canaries(self.num_canaries, self.confidence)
        self._rng = np.random.default_rng(seed)
        self.included: np.ndarray = self._rng.random(self.num_canaries) < 0.5
        self.coordinates: np.ndarray | None = None
        self.sample_rate: float | None = None
        self.num_steps = 0
        self.times_sampled = np.zeros(self.num_canaries, dtype=np.int64)
        self._optimizer: DPOptimizer | None = None
        self._groups: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self._dim = 0
        self._sum = torch.zeros(self.num_canaries, dtype=torch.float64)
        self._weighted = torch.zeros(self.num_canaries, dtype=torch.float64)
        self._step_data = torch.zeros(self.num_canaries, dtype=torch.float64)
        self._step_added: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    # ------------------------------------------------------------------ attach
    def attach(
        self,
        optimizer: DPOptimizer,
        data_loader: Any = None,
        *,
        sample_rate: float | None = None,
    ) -> GradientCanaryAudit:
        """Wrap ``optimizer.add_noise`` so that the canaries enter every step (call once,
        before training).

        Parameters
        ----------
        optimizer : opacus.optimizers.DPOptimizer
            The optimizer ``make_private`` returned (any noise; not distributed).
        data_loader : torch.utils.data.DataLoader, optional
            The loader ``make_private`` returned: ``q`` is its Poisson sampler's rate.
        sample_rate : float, optional
            ``q`` given directly. Without it or a loader, ``q`` is the rate the engine's
            accountant hook steps with.

        Returns
        -------
        GradientCanaryAudit
            ``self``.

        Raises
        ------
        InputError
            Attached already; not a (single-process) DP optimizer; ``q`` not in (0, 1] or not
            found; more canaries than trainable coordinates.
        """
        if self._optimizer is not None:
            raise InputError("this audit is already attached to an optimizer: attach it once")
        if not isinstance(optimizer, DPOptimizer):
            raise InputError(
                f"attach needs the DP optimizer make_private returned, got "
                f"{type(optimizer).__name__}"
            )
        if "Distributed" in type(optimizer).__name__:
            raise InputError("distributed optimizers are not supported: each rank adds canaries")
        self.sample_rate = _resolve_sample_rate(optimizer, data_loader, sample_rate)
        self._place_canaries(optimizer)
        original = optimizer.add_noise

        def add_noise_with_canaries() -> None:
            self._before_noise(optimizer)
            original()
            self._after_noise(optimizer)

        optimizer.add_noise = add_noise_with_canaries  # type: ignore[method-assign]
        self._optimizer = optimizer
        return self

    def _place_canaries(self, optimizer: DPOptimizer) -> None:
        """Choose the canaries' coordinates among the trainable ones, grouped by tensor."""
        sizes = [int(p.numel()) for p in optimizer.params]
        total = sum(sizes)
        if self.num_canaries > total:
            raise InputError(
                f"num_canaries = {self.num_canaries} exceeds the {total} trainable coordinates: "
                "each canary owns one coordinate; use at most that many canaries"
            )
        self._dim = total
        coords = self._rng.choice(total, size=self.num_canaries, replace=False)
        self.coordinates = coords.astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        tensor_of = np.searchsorted(offsets, coords, side="right") - 1
        for i in np.unique(tensor_of):
            ids = np.flatnonzero(tensor_of == i)
            local = coords[ids] - offsets[i]
            self._groups.append((int(i), torch.as_tensor(ids), torch.as_tensor(local)))

    def _clip_norm(self, optimizer: DPOptimizer, i: int) -> float:
        """Clip norm of trainable tensor ``i`` (the flat one, or its per-layer one)."""
        per_layer = getattr(optimizer, "max_grad_norms", None)
        return float(per_layer[i] if per_layer is not None else optimizer.max_grad_norm)

    # ------------------------------------------------------------------ per step
    def _before_noise(self, optimizer: DPOptimizer) -> None:
        """Sample the included canaries at rate q and add ``C e_{c_j}`` to ``p.summed_grad``,
        recording the data's summed gradient at each canary coordinate first."""
        sampled = self.included & (self._rng.random(self.num_canaries) < self.sample_rate)
        self.times_sampled += sampled
        self._step_data.zero_()
        self._step_added = []
        params = optimizer.params
        for i, ids, local in self._groups:
            s = params[i].summed_grad
            if s is None:
                raise RuntimeError(
                    "GradientCanaryAudit: a parameter has no summed_grad at add_noise; this "
                    "optimizer does not accumulate clipped gradients as Opacus' DPOptimizer"
                )
            flat = s.view(-1) if s.is_contiguous() else s.reshape(-1)
            loc = local.to(s.device)
            self._step_data[ids] = flat[loc].detach().to("cpu", torch.float64)
            add = torch.as_tensor(sampled[ids.numpy()], dtype=s.dtype, device=s.device)
            add = add * self._clip_norm(optimizer, i)
            flat.index_add_(0, loc, add)
            if not s.is_contiguous():  # reshape copied: write the canaries back
                params[i].summed_grad = flat.view_as(s)
            self._step_added.append((i, loc, add))

    def _after_noise(self, optimizer: DPOptimizer) -> None:
        """Read the noisy summed gradient (``p.grad``, before ``scale_grad``) at each canary's
        coordinate and add this step's term to the scores."""
        params = optimizer.params
        value = torch.zeros(self.num_canaries, dtype=torch.float64)
        for i, ids, local in self._groups:
            g = params[i].grad.reshape(-1)
            value[ids] = g[local.to(g.device)].detach().to("cpu", torch.float64)
        if self.subtract_data:
            value -= self._step_data
        self._sum += value
        if self.statistic == "weighted":
            sq = self._residual_sq(optimizer)
            if sq > 0:
                self._weighted += value * (self._dim / sq)
        self.num_steps += 1

    def _residual_sq(self, optimizer: DPOptimizer) -> float:
        """``‖r_t‖²``: the squared norm of the noisy summed gradient, or with ``subtract_data``
        of noise + canaries (``p.grad − p.summed_grad`` is the noise; ``summed_grad`` still holds
        data + canaries after ``add_noise``)."""
        total = 0.0
        added = {i: (loc, add) for i, loc, add in self._step_added}
        for i, p in enumerate(optimizer.params):
            g = p.grad.detach().reshape(-1).to(torch.float64)
            if self.subtract_data:
                g = g - p.summed_grad.detach().reshape(-1).to(torch.float64)
                if i in added:
                    loc, add = added[i]
                    g = g.index_add(0, loc, add.to(torch.float64))
            total += float(torch.dot(g, g))
        return total

    # ------------------------------------------------------------------ results
    @property
    def scores(self) -> np.ndarray:
        """Canary scores, shape (m,), float64; higher means "included".

        ``statistic="sum"``: ``Σ_t v_t[c_j]``; ``"weighted"``: ``Σ_t M v_t[c_j] / ‖r_t‖²``;
        ``v_t`` the noisy summed gradient (minus the data's part with ``subtract_data``)."""
        s = self._weighted if self.statistic == "weighted" else self._sum
        return s.numpy().copy()

    def _check_ran(self) -> None:
        if self._optimizer is None:
            raise InputError("attach the audit to the optimizer before training")
        if self.num_steps == 0:
            raise InputError(
                "the loop did not step the optimizer: no noisy gradient was seen, so there is "
                "nothing to audit (attach before training and call optimizer.step())"
            )
        qt = self.sample_rate * self.num_steps
        if qt < 1.0:
            raise InputError(
                f"q·T = {self.sample_rate:.3g} × {self.num_steps} = {qt:.3g} < 1: an included "
                "canary is expected to be sampled in fewer than one step, so the canaries "
                "would never be seen; train longer or with a larger sampling rate"
            )

    def bound(
        self, delta: float, confidence: float | None = None, *, method: str = "steinke"
    ) -> OneRunBound:
        """The one-run empirical lower bound of the scores
        (:func:`~product_noise.audit.one_run.steinke_best_threshold`, one-sided guesses over
        its default grid, Bonferroni-corrected)."""
        self._check_ran()
        conf = self.confidence if confidence is None else check_confidence(confidence)
        return steinke_best_threshold(self.scores, self.included, delta, conf, method=method)

    def estimate(self, delta: float) -> GDPEstimate:
        """The Gaussian-fit ε **estimate** of Nasr et al. (2023) from the scores (not a
        bound)."""
        self._check_ran()
        s = self.scores
        return gdp_epsilon_estimate(s[self.included], s[~self.included], delta)

    def report(
        self,
        engine: Any,
        delta: float = 1e-5,
        confidence: float | None = None,
        *,
        fdp: bool | None = None,
    ) -> PrivacyReport:
        """The engine's privacy report with this audit's figures added.

        Parameters
        ----------
        engine : product_noise.PrivacyEngine
            The engine whose ``make_private`` built the optimizer.
        delta : float, default 1e-5
            δ in (0, 1) of every figure.
        confidence : float, optional
            Confidence in (0, 1) of the bounds; default the constructor's.
        fdp : bool, optional
            Also report the f-DP one-run bound of Mahloujifar et al. (2025), which refutes
            μ-GDP and is a lower bound on ε only for an exactly Gaussian trade-off curve (q = 1
            Gaussian noise; with q < 1 the curve is Gaussian only approximately). Default: only
            for Gaussian noise.

        Returns
        -------
        PrivacyReport
            The engine's verified (or ``unverified`` reason) and claimed figures; ``empirical``:
            the Steinke et al. bound (and the f-DP one); ``estimates``: the engine's and the
            Gaussian-fit estimate.

        Raises
        ------
        InputError
            Before any step, if ``q·T < 1``, on bad δ or confidence, or if the engine's
            accountant stepped at another rate than the canaries were sampled at, or fewer
            steps than the audit saw.
        """
        delta = check_delta(delta)
        conf = self.confidence if confidence is None else check_confidence(confidence)
        self._check_ran()
        self._check_engine(engine)
        what = (
            f"audited in one run with {self.num_canaries} white-box Dirac gradient canaries "
            f"over {self.num_steps} steps at q = {self.sample_rate:.4g}"
            + (" (data subtracted)" if self.subtract_data else "")
        )
        return one_run_report(engine, self.scores, self.included, delta, conf, fdp, what, _SOURCE)

    def _check_engine(self, engine: Any) -> None:
        """The engine's accountant must have stepped at the canaries' rate, at least T times."""
        if getattr(engine, "_optimizer", None) is not self._optimizer:
            raise InputError("report needs the engine whose make_private built this optimizer")
        rates, steps = _accounted_rates(engine)
        if any(abs(r - self.sample_rate) > 1e-12 * max(1.0, r) for r in rates):
            raise InputError(
                f"the engine accounted steps at sampling rate(s) {rates}, but the canaries were "
                f"sampled at q = {self.sample_rate:g} (gradient accumulation, or another loader)"
            )
        if steps < self.num_steps:
            raise InputError(
                f"the engine accounted {steps} steps but the audit saw {self.num_steps}"
            )

    def __repr__(self) -> str:
        return (
            f"GradientCanaryAudit(num_canaries={self.num_canaries}, seed={self.seed!r}, "
            f"subtract_data={self.subtract_data}, steps={self.num_steps})"
        )
