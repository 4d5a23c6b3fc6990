"""Canary audits of real DP-SGD runs through :class:`product_noise.PrivacyEngine`.

Threat models (white box with a Dirac gradient canary; final model with an input canary, from
zero or from worst-case initial parameters) and the validity argument are described in
:mod:`product_noise.audit.training`.

Any registered ``audit`` mechanism can be audited, a user's included. A spherical one (a radial
law) is scored by the exact log-likelihood ratio of its radius law; another (a user's sampler,
with or without a proven profile) has no density to take a ratio of, so the white-box score is
the recovered noise's projection on the canary direction, ``Σ_t ⟨r_t, e_j⟩`` (the Gaussian's
Neyman–Pearson statistic; any fixed statistic gives a valid bound, only its power varies). An
unverified mechanism gets no verified figure, and unless a noise multiplier is given it is run
at the one the verified Gaussian needs for the target
(:data:`~product_noise.mechanisms.MATCHED_TO_GAUSSIAN`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..mechanisms import MATCHED_TO_GAUSSIAN, Gaussian, SphericalMechanism, get_mechanism
from ..privacy import CLAIMED, UNVERIFIED, VERIFIED, PrivacyFigure
from ..validation import (
    check_positive,
)
from .bounds import epsilon_lower_bound
from .result import TrainingAuditResult, digits_sample, score_estimate

_CANARY_GRAD = 1e6  # forced pre-clipping gradient value of the Dirac canary (≫ C)
#: the black-box threat model with worst-case initial parameters (Annamalai, De Cristofaro 2024)
WORST_CASE = "final-model-worst-case"


def _noise_family(mechanism: str) -> str:
    """The engine's ``noise=`` name of an audited mechanism (registry name, underscores)."""
    return "product" if mechanism == "product-paper" else get_mechanism(mechanism).name


def _provable(mechanism: str) -> bool:
    return bool(getattr(get_mechanism(_noise_family(mechanism)).load(), "provable", True))


class _DPSGDRun:
    """One private logistic regression (64 → 10, float64) trained by the package's engine.

    The dataset is ``n_records`` digits plus one canary row (last). White box: its per-sample
    gradient is forced to ``L e_j`` (canary present) or 0 (absent) in Opacus' ``grad_sample``
    before clipping. Final model: the row is the all-ones image with label 0 and keeps its own
    gradient (present) or has it zeroed (absent). Final model, worst case: the same, from the
    worst-case θ₀ and with the worst-case label (:mod:`product_noise.audit.worst_case`).
    """

    def __init__(
        self,
        mechanism: str,
        noise_kwargs: dict[str, Any],
        *,
        n_records: int,
        max_grad_norm: float,
        lr: float,
        data_seed: int,
        noise_seed: int,
        threat_model: str = "white-box",
    ) -> None:
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset

        from ..opacus import PrivacyEngine

        X, y = digits_sample(n_records, data_seed)
        self.threat_model = threat_model
        theta0, label = _initial_parameters(X, y, threat_model)
        # the canary row: its input is unused in the white-box audit (gradient forced)
        canary = np.zeros if threat_model == "white-box" else np.ones
        X = np.vstack([X, canary((1, X.shape[1]))])
        y = np.append(y, label)
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y).long()
        self.n_known = n_records
        model = nn.Linear(self.X.shape[1], 10).double()
        with torch.no_grad():  # θ₀: zero, or the worst-case fit (weight row-major, then bias)
            flat = torch.from_numpy(theta0)
            model.weight.copy_(flat[: model.weight.numel()].view_as(model.weight))
            model.bias.copy_(flat[model.weight.numel() :])
        loader = DataLoader(TensorDataset(self.X, self.y), batch_size=len(self.y))
        with warnings.catch_warnings():
            # Opacus warns once per engine that its secure RNG is off: an audit draws its noise
            # from a seeded torch generator by design (18 identical warnings per report)
            warnings.filterwarnings("ignore", message="Secure RNG turned off", category=UserWarning)
            self.engine = PrivacyEngine()
        gen = torch.Generator().manual_seed(int(noise_seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PrivacyWarning of the paper's calibration, Opacus
            out = self.engine.make_private(
                module=model,
                optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                data_loader=loader,
                max_grad_norm=max_grad_norm,
                poisson_sampling=False,  # full batch: sample_rate = 1
                noise_generator=gen,
                **noise_kwargs,
            )
        self.model, self.optimizer = out[0], out[1]
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.theta0 = [p.detach().clone() for p in self.params]
        self.C = float(max_grad_norm)
        self.lr = float(lr)
        self.B = float(self.optimizer.expected_batch_size)
        self.dim = sum(int(p.numel()) for p in self.params)
        self.mech = self.engine.current_mechanism()
        # the clipped canary norm, exactly as Opacus clips it (per-sample norm L)
        self.canary_norm = _CANARY_GRAD * min(1.0, self.C / (_CANARY_GRAD + 1e-6))
        self.criterion = nn.CrossEntropyLoss()

    def _flat(self) -> Any:
        import torch

        return torch.cat([p.detach().reshape(-1) for p in self.params]).clone()

    def _known_clipped_sum(self, flat: Any) -> Any:
        """Σ clip(∇ℓ(θ_t; x_i)) over the known records, recomputed by the adversary.

        Softmax regression has closed-form per-sample gradients: with ``e = softmax(Wx + b) −
        onehot(y)``, ``∇_W = e xᵀ`` and ``∇_b = e``, so ``‖∇‖ = ‖e‖ √(‖x‖² + 1)``; they are
        clipped with Opacus' factor ``min(1, C/(‖∇‖ + 10⁻⁶))`` (weight first, then bias, as
        ``nn.Linear.parameters()`` and the flat vector).
        """
        import torch

        X, y = self.X[: self.n_known], self.y[: self.n_known]
        k, d = 10, X.shape[1]
        W, b = flat[: k * d].view(k, d), flat[k * d :]
        e = torch.softmax(X @ W.T + b, dim=1)
        e[torch.arange(len(y)), y] -= 1.0
        norms = e.norm(dim=1) * torch.sqrt((X * X).sum(1) + 1.0)
        e = e * (self.C / (norms + 1e-6)).clamp(max=1.0)[:, None]
        return torch.cat([(e.T @ X).reshape(-1), e.sum(0)])

    def _final_margin(self) -> float:
        """Logit margin of the canary's label at the final model: ``z_y − max_{k≠y} z_k``."""
        import torch

        with torch.no_grad():
            z = self.model(self.X[-1:]).reshape(-1)
            y = int(self.y[-1])
            others = torch.cat([z[:y], z[y + 1 :]])
            return float(z[y] - others.max())

    def _step_score(self, r: Any, j: int) -> float:
        """One step's white-box score of the recovered noise ``r``: the exact log-likelihood
        ratio ``log f(r − C' e_j) − log f(r)`` for a spherical law, else ``⟨r, e_j⟩``."""
        if not isinstance(self.mech, SphericalMechanism):
            return float(r[j])
        rn = float(r.norm())
        u = float(r[j]) / rn
        # log f(r − c e_j) − log f(r) = −L(‖r‖, −⟨r,e_j⟩/‖r‖; c)
        return -float(self.mech.law.privacy_loss(np.array(rn), np.array(-u), self.canary_norm))

    def run(self, present: bool, trials: int, steps: int, pbar: Any = None) -> np.ndarray:
        """Scores of ``trials`` independent runs: the summed per-step scores of
        :meth:`_step_score` (white box) or the canary's final logit margin (final model)."""
        import torch

        white = self.threat_model == "white-box"
        j = self.dim - 1  # the Dirac coordinate: the last parameter value (a bias)
        last = self.params[-1]
        scores = np.empty(trials)
        for trial in range(trials):
            with torch.no_grad():
                for p, p0 in zip(self.params, self.theta0):
                    p.copy_(p0)
            total = 0.0
            for _ in range(steps):
                before = self._flat()
                self.optimizer.zero_grad(set_to_none=True)
                with warnings.catch_warnings():
                    # Opacus' hooks on an input that needs no gradient: expected here
                    warnings.filterwarnings("ignore", message="Full backward hook")
                    self.criterion(self.model(self.X), self.y).backward()
                with torch.no_grad():
                    if white or not present:
                        for p in self.params:
                            p.grad_sample[-1].zero_()
                    if white and present:
                        last.grad_sample[-1].view(-1)[-1] = _CANARY_GRAD
                self.optimizer.step()
                if not white:
                    continue
                after = self._flat()
                with torch.no_grad():
                    r = (before - after) * (self.B / self.lr) - self._known_clipped_sum(before)
                total += self._step_score(r, j)
            scores[trial] = total if white else self._final_margin()
            if pbar is not None:
                pbar.update(1)
        return scores


def _initial_parameters(X: np.ndarray, y: np.ndarray, threat_model: str) -> tuple[np.ndarray, int]:
    """θ₀ (flat, float64) and the canary's label: zero and label 0, or for
    ``"final-model-worst-case"`` the known records' non-private fit and the class it finds
    least likely for the all-ones canary (Annamalai and De Cristofaro, NeurIPS 2024)."""
    from .worst_case import worst_case_label, worst_case_theta0

    if threat_model != WORST_CASE:
        return np.zeros(10 * X.shape[1] + 10), 0
    theta0 = worst_case_theta0(X, y)
    return theta0, worst_case_label(theta0, np.ones(X.shape[1]))


def _dpsgd_noise_kwargs(
    mechanism: str,
    *,
    epsilon: float,
    delta: float,
    steps: int,
    noise_multiplier: float | None,
    dim: int,
    sample_rate: float = 1.0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``make_private`` noise arguments and settings of one audited mechanism (calibrated
    for ``steps`` steps at Poisson rate ``sample_rate``; 1 = full batch)."""
    from ..mechanisms import MECHANISMS as FAMILIES
    from ..opacus import calibrate_verified_noise_multiplier

    if mechanism == "product-paper":
        eps0, delta0 = epsilon / steps, delta / steps
        kw = {"noise": "product", "epsilon0": eps0, "target_delta0": delta0}
        return kw, {"epsilon0": eps0, "target_delta0": delta0, "sensitivity": "add_remove"}
    family = _noise_family(mechanism)
    provable = _provable(mechanism)
    if noise_multiplier is None:
        # an unverified mechanism has no profile to calibrate on: the verified Gaussian's
        calibrated = FAMILIES[family] if provable else Gaussian
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Opacus' RDP order warning (start guess)
            nm = calibrate_verified_noise_multiplier(
                calibrated, epsilon, delta, dim=dim, sample_rate=sample_rate, steps=steps
            )
        how = (
            f"calibrated: verified ε = {epsilon:g} at δ = {delta:g}"
            if provable
            else f"{UNVERIFIED}, {MATCHED_TO_GAUSSIAN} (ε = {epsilon:g}, δ = {delta:g})"
        )
    else:
        nm = check_positive("noise_multiplier", noise_multiplier)
        how = "given"
    return {"noise": family, "noise_multiplier": float(nm)}, {"calibration": how}


def _claimed_product(settings: dict[str, Any], steps: int, n: int) -> PrivacyFigure:
    """The paper's claim for ``steps`` full-batch steps at its per-step calibration."""
    from ..accounting.claimed import paper_composition_at_steps

    eps0, delta0 = settings["epsilon0"], settings["claimed_delta0"]
    if steps == 1:
        return PrivacyFigure(
            eps0,
            delta0,
            CLAIMED,
            "product-noise paper per-step theorem (ε₀, δ₀) at its calibration σ = C·t(M,k)/ε₀",
        )
    try:
        fig = paper_composition_at_steps(eps0, delta0, n, n, steps)
        return PrivacyFigure(
            fig.epsilon, fig.delta, CLAIMED, "product-noise paper composition", {"steps": steps}
        )
    except ValueError:  # the paper's formula is undefined for few steps
        return PrivacyFigure(
            steps * eps0,
            min(steps * delta0, 1.0),
            CLAIMED,
            "product-noise paper per-step theorem composed by basic composition (the paper's "
            "own composition is undefined at so few steps)",
            {"steps": steps},
        )


def _canary_scores(
    mechanism: str,
    noise_kw: dict[str, Any],
    *,
    trials: int,
    steps: int,
    n_records: int,
    max_grad_norm: float,
    learning_rate: float,
    seed: int,
    progress: bool,
    threat_model: str,
) -> tuple[dict[bool, Any], _DPSGDRun]:
    """The audit statistic of ``trials`` runs with the canary present and ``trials`` without
    (each world with its own noise seed), and the last run (for its engine and mechanism)."""
    ss = np.random.SeedSequence(seed)
    seeds = [int(s.generate_state(1)[0]) for s in ss.spawn(2)]
    pbar = None
    if progress:
        from tqdm.auto import tqdm

        pbar = tqdm(
            total=2 * trials, unit="run", desc=f"audit-training {mechanism} ({threat_model})"
        )
    try:
        scores = {}
        run = None
        for present, s in ((True, seeds[0]), (False, seeds[1])):
            run = _DPSGDRun(
                mechanism,
                noise_kw,
                n_records=n_records,
                max_grad_norm=max_grad_norm,
                lr=learning_rate,
                data_seed=seed,
                noise_seed=s,
                threat_model=threat_model,
            )
            scores[present] = run.run(present, trials, steps, pbar)
    finally:
        if pbar is not None:
            pbar.close()
    assert run is not None
    return scores, run


def _verified_figure(run: _DPSGDRun, steps: int, delta: float) -> PrivacyFigure | None:
    """The verified ε of ``steps`` full-batch steps of the run's mechanism at ``delta``
    (``None`` for an unverified mechanism: nothing is proven, and no other figure stands in)."""
    from ..accounting.pld import verified_epsilon

    mech = run.mech  # sensitivity = C: add/remove with shift C
    if not getattr(mech, "provable", True):
        return None
    if steps == 1:  # one full-batch step: ε(δ) of the exact profile itself, no composition
        eps_v = float(mech.epsilon(delta))
        how = "exact profile (sup over shift norms ≤ C), add/remove, one full-batch step"
    else:
        eps_v = verified_epsilon(
            mech.privacy_profile(), sampling_prob=1.0, num_steps=steps, delta=delta
        )
        how = f"pessimistic PLD (dp-accounting), add/remove, {steps} full-batch steps"
    return PrivacyFigure(
        float(eps_v),
        delta,
        VERIFIED,
        f"{type(mech).__name__} (M = {run.dim}): {how}",
    )


def audit_dpsgd(
    mechanism: str,
    *,
    trials: int,
    steps: int,
    epsilon: float,
    noise_multiplier: float | None,
    delta: float,
    confidence: float,
    n_records: int,
    max_grad_norm: float,
    learning_rate: float,
    seed: int,
    progress: bool,
    threat_model: str,
) -> TrainingAuditResult:
    dim = 64 * 10 + 10
    noise_kw, settings = _dpsgd_noise_kwargs(
        mechanism,
        epsilon=epsilon,
        delta=delta,
        steps=steps,
        noise_multiplier=noise_multiplier,
        dim=dim,
    )
    scores, run = _canary_scores(
        mechanism,
        noise_kw,
        trials=trials,
        steps=steps,
        n_records=n_records,
        max_grad_norm=max_grad_norm,
        learning_rate=learning_rate,
        seed=seed,
        progress=progress,
        threat_model=threat_model,
    )
    verified = _verified_figure(run, steps, delta)
    settings.update(
        {
            "threat_model": threat_model,
            "noise_multiplier": float(run.optimizer.noise_multiplier),
            "dim": run.dim,
            "n_records": n_records,
            "max_grad_norm": max_grad_norm,
            "learning_rate": learning_rate,
            "seed": seed,
        }
    )
    claimed = None
    if mechanism == "product-paper":
        paper = run.engine.noise_config["paper"]
        settings["claimed_delta0"] = paper["claimed_delta0"]
        settings["k"] = paper["k"]
        claimed = _claimed_product(settings, steps, len(run.y))
    bound = epsilon_lower_bound(scores[True], scores[False], delta=delta, confidence=confidence)
    spherical = isinstance(run.mech, SphericalMechanism) or threat_model != "white-box"
    return TrainingAuditResult(
        mechanism=mechanism,
        bound=bound,
        verified=verified,
        claimed=claimed,
        trials=trials,
        steps=steps,
        threat_model=_THREATS[threat_model],
        statistic=_STATISTICS[threat_model] if spherical else _PROJECTION,
        settings=settings,
        unverified=_NO_PROOF if verified is None else "",
        estimate=score_estimate(scores[True], scores[False], delta),
        fdp_bound=_gdp_bound(mechanism, scores, delta, confidence),
    )


def _gdp_bound(
    mechanism: str, scores: dict[bool, np.ndarray], delta: float, confidence: float
) -> Any:
    """The μ-GDP lower bound (:mod:`product_noise.audit.gdp_bound`) for Gaussian noise, whose
    full-batch trade-off curve is Gaussian; ``None`` for every other mechanism, for which a
    refuted μ-GDP says nothing about its (ε, δ)."""
    if _noise_family(mechanism) != "gaussian":
        return None
    from .gdp_bound import gdp_lower_bound

    return gdp_lower_bound(scores[True], scores[False], delta=delta, confidence=confidence)


_THREATS = {
    "white-box": "white box: all intermediate models, all other records known, Dirac gradient "
    "canary, full-batch DP-SGD through product_noise.PrivacyEngine",
    "final-model": "final model only: input canary (all-ones image, label 0), all other records "
    "known, full-batch DP-SGD through product_noise.PrivacyEngine",
    WORST_CASE: "final model only, worst-case initial parameters (Annamalai & De Cristofaro "
    "2024): θ₀ = non-private fit of the known records, input canary (all-ones image, the "
    "label θ₀ finds least likely), all other records known, full-batch DP-SGD through "
    "product_noise.PrivacyEngine",
}
_PROJECTION = (
    "Σ_t ⟨r_t, e_j⟩, the recovered noise's projection on the canary direction (the mechanism "
    "is not spherical: no radius law to take a likelihood ratio of)"
)
_NO_PROOF = "a sampler without a proven privacy profile: no verified ε"
_STATISTICS = {
    "white-box": "Σ_t exact log-likelihood ratio of the noise law at the recovered noise",
    "final-model": "logit margin z_y − max_{k≠y} z_k of the canary at the final model",
    WORST_CASE: "logit margin z_y − max_{k≠y} z_k of the canary at the final model",
}
