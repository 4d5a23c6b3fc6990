"""A black-box one-run audit of a user's own training loop, with input canaries.

::

    audit = InputCanaryAudit(canary_x, mislabelled(canary_y, 10, seed=0), seed=0)
    train = audit.training_set(train)        # the user's data plus the included canaries
    loader = DataLoader(train, batch_size=256)
    model, optimizer, loader = engine.make_private(..., data_loader=loader)   # any noise
    ...                                      # the user's loop, unchanged
    audit.score(model)                       # after training: the final model only
    print(audit.report(engine, delta=1e-5))

Threat model
------------
Black box, final model, as in Steinke, Nasr, Jagielski [1]_ (Sec. 6, black-box audit in one
run):

* **Canaries.** ``m`` input records ``(x_j, y_j)`` given by the user, chosen before the
  membership bits are drawn (so independently of them). Mislabelled records
  (:func:`mislabelled`) or out-of-distribution inputs are the usual choice: the model fits
  them only if it trains on them.
* **Inclusion.** Each canary is included independently with probability ½ (seeded, hidden
  from the adversary until the end): :meth:`InputCanaryAudit.training_set` appends the included
  ones to the user's dataset, so they are sampled, clipped and noised like every other record
  (Poisson sampling included) by whatever loop and noise the user runs.
* **Adversary.** Sees only the final model's outputs on the canaries: canary ``j``'s score is
  ``−ℓ(f(x_j), y_j)`` (the cross-entropy, or the user's ``loss``), higher meaning "included".
  It knows nothing of the other records or of the intermediate models.

The bound is valid for any training procedure (Steinke et al., Theorem 3.3): inclusion is
independent with probability ½ and the scores are a function of the final model only. It
refers to adding or removing one record (a canary), the relation the engine accounts. It is
much weaker than the white-box :class:`~product_noise.audit.GradientCanaryAudit`: it shows
what an attacker with the released model gets, not how tight the accounting is.

References
----------
.. [1] T. Steinke, M. Nasr, M. Jagielski. "Privacy auditing with one (1) training run."
   NeurIPS 2023. arXiv:2305.08846.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, TensorDataset

from ..privacy import PrivacyReport
from ..validation import InputError, check_confidence, check_delta
from .canaries import _accounted_rates, one_run_report
from .one_run import (
    GDPEstimate,
    OneRunBound,
    check_enough_canaries,
    gdp_epsilon_estimate,
    steinke_best_threshold,
)

__all__ = ["InputCanaryAudit", "mislabelled"]

_SOURCE = "product_noise.audit.InputCanaryAudit"


def mislabelled(labels: Any, num_classes: int, seed: int = 0) -> torch.Tensor:
    """Each label moved to another class, uniformly at random (seeded): mislabelled canaries.

    Parameters
    ----------
    labels : array-like of int, shape (m,)
        The canaries' true labels, in ``[0, num_classes)``.
    num_classes : int
        At least 2.
    seed : int, default 0

    Returns
    -------
    torch.Tensor of int64, shape (m,)
    """
    y = torch.as_tensor(labels).long().reshape(-1)
    if num_classes < 2 or y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise InputError(f"labels must lie in [0, {num_classes}) with num_classes >= 2")
    g = torch.Generator().manual_seed(int(seed))
    shift = torch.randint(1, num_classes, y.shape, generator=g)
    return (y + shift) % num_classes


class InputCanaryAudit:
    """Black-box one-run audit of a training loop with ``m`` input canaries (module docstring).

    Parameters
    ----------
    inputs : torch.Tensor, shape (m, ...)
        The canaries' inputs, shaped and typed like the training inputs.
    labels : torch.Tensor of int, shape (m,)
        Their labels (e.g. :func:`mislabelled`).
    seed : int, default 0
        Seeds the membership bits.
    confidence : float, default 0.95
        Default confidence of the bounds, in (0, 1).
    loss : callable, optional
        ``loss(outputs, labels) -> per-canary losses, shape (m,)``; default the cross-entropy
        (``reduction="none"``).

    Attributes
    ----------
    included : numpy.ndarray of bool, shape (m,)
        Membership bits, each True with probability ½, drawn at construction.
    scores : numpy.ndarray of float, shape (m,)
        ``−loss`` of each canary at the scored model (set by :meth:`score`).

    References
    ----------
    Steinke, Nasr, Jagielski, NeurIPS 2023 (arXiv:2305.08846).
    """

    def __init__(
        self,
        inputs: Any,
        labels: Any,
        *,
        seed: int = 0,
        confidence: float = 0.95,
        loss: Any = None,
    ) -> None:
        self.inputs = torch.as_tensor(inputs)
        self.labels = torch.as_tensor(labels).reshape(-1)
        m = int(self.labels.numel())
        if self.inputs.ndim == 0 or self.inputs.shape[0] != m:
            raise InputError(f"inputs must have one row per label ({m}), got {self.inputs.shape}")
        self.confidence = check_confidence(confidence)
        check_enough_canaries(m, self.confidence)
        self.num_canaries = m
        self.seed = seed
        self.loss = loss
        self.included: np.ndarray = np.random.default_rng(seed).random(m) < 0.5
        self.scores: np.ndarray | None = None
        self._inserted = False  # training_set was called

    def training_set(self, dataset: Dataset) -> Dataset:
        """``dataset`` plus the included canaries (appended): build the training loader from
        it before ``make_private``. Its items must be ``(input, label)`` pairs like the
        canaries'."""
        if self._inserted:
            raise InputError("training_set was called already: insert the canaries once")
        inc = torch.from_numpy(np.flatnonzero(self.included))
        self._inserted = True
        return ConcatDataset([dataset, TensorDataset(self.inputs[inc], self.labels[inc])])

    @torch.no_grad()
    def score(self, model: torch.nn.Module, batch_size: int = 1024) -> np.ndarray:
        """Score every canary on the final ``model`` (``−loss``; the model's mode is kept)."""
        if not self._inserted:
            raise InputError("call training_set(dataset) before training, then score the model")
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        out = []
        for i in range(0, self.num_canaries, batch_size):
            x = self.inputs[i : i + batch_size].to(device)
            y = self.labels[i : i + batch_size].to(device)
            z = model(x)
            if self.loss is None:
                per = torch.nn.functional.cross_entropy(z, y.long(), reduction="none")
            else:
                per = self.loss(z, y)
            out.append(-per.detach().reshape(-1).to("cpu", torch.float64))
        self.scores = torch.cat(out).numpy()
        if not np.all(np.isfinite(self.scores)):
            raise InputError("a canary's loss is not finite: the scores cannot be ranked")
        return self.scores.copy()

    def _check_scored(self) -> np.ndarray:
        if self.scores is None:
            raise InputError("score(model) the final model before asking for bounds")
        return self.scores

    def bound(self, delta: float, confidence: float | None = None) -> OneRunBound:
        """The one-run (ε, δ) lower bound of the scores (Steinke et al., Bonferroni sweep)."""
        conf = self.confidence if confidence is None else check_confidence(confidence)
        return steinke_best_threshold(self._check_scored(), self.included, delta, conf)

    def estimate(self, delta: float) -> GDPEstimate:
        """The Gaussian-fit ε **estimate** of the scores (never a bound)."""
        s = self._check_scored()
        return gdp_epsilon_estimate(s[self.included], s[~self.included], delta)

    def report(
        self, engine: Any, delta: float = 1e-5, confidence: float | None = None
    ) -> PrivacyReport:
        """The engine's privacy report with this audit's bound and estimate added.

        Raises
        ------
        InputError
            Before :meth:`score`, on bad δ or confidence, or if the engine's accountant never
            stepped (the loop did not train through the engine).
        """
        delta = check_delta(delta)
        conf = self.confidence if confidence is None else check_confidence(confidence)
        scores = self._check_scored()
        if _accounted_rates(engine)[1] == 0:
            raise InputError(
                "the engine accounted no step: the loop did not train through the engine's "
                "optimizer, so there is nothing to audit"
            )
        what = (
            f"audited in one run with {self.num_canaries} black-box input canaries "
            f"({int(self.included.sum())} included), final model only"
        )
        return one_run_report(engine, scores, self.included, delta, conf, False, what, _SOURCE)

    def __repr__(self) -> str:
        return f"InputCanaryAudit(num_canaries={self.num_canaries}, seed={self.seed!r})"
