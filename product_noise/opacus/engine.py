"""``product_noise.PrivacyEngine``: Opacus' engine with a ``noise=`` choice.

Change one import in an Opacus training loop::

    from product_noise import PrivacyEngine          # instead of: from opacus import PrivacyEngine

    engine = PrivacyEngine()
    model, optimizer, loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader,
        noise="product", epsilon0=0.3, k=40_000,    # the paper's per-step calibration
        max_grad_norm=1.0,
    )
    ...
    for fig in engine.get_privacy_report(delta=1e-5):
        print(fig)        # verified (ε, δ) and the paper's claimed (ε', δ'), each labelled

``noise="gaussian"`` (the default) is Opacus' own path, unchanged. No Opacus file is patched.

A mechanism of one's own works the same way once registered
(:func:`product_noise.register_mechanism`): ``noise="<its name>"``, its class, or an instance.
With a radial law or a proven profile its figures are verified by the same PLD accountant; with
a sampler only it trains, but its report says ``unverified`` and no ε is given (audit it)::

    register_mechanism("lap", sampler=lambda rng, n, d: rng.laplace(size=(n, d)))
    engine.make_private(..., noise="lap", noise_multiplier=1.0)
    print(engine.get_privacy_report(1e-5))   # unverified: ... audit it ...
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import torch
from opacus import PrivacyEngine as _OpacusPrivacyEngine
from opacus.distributed import DifferentiallyPrivateDistributedDataParallel as DPDDP
from opacus.optimizers import DPOptimizer, get_optimizer_class
from opacus.utils.uniform_sampler import (
    DistributedUniformWithReplacementSampler,
    UniformWithReplacementSampler,
)
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler
from torch.utils.data.distributed import DistributedSampler

from ..mechanisms import Gaussian, ProductNoise, ScaledMechanism
from ..mechanisms.custom import MATCHED_TO_GAUSSIAN
from ..mechanisms.product import claimed_delta, paper_t, solve_k
from ..mechanisms.registry import REGISTRY
from ..privacy import (
    ESTIMATE,
    UNVERIFIED,
    VERIFIED,
    PrivacyFigure,
    PrivacyReport,
    PrivacyWarning,
)
from ..validation import (
    InputError,
    UnverifiedError,
    check_delta,
    check_epsilon,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from .accountants import (
    JointNoiseAccountant,
    NoiseStep,
    PaperClaimedAccountant,
    ProductVerifiedAccountant,
    UnverifiedNoiseAccountant,
    VerifiedNoiseAccountant,
    unverified_reason,
)
from .calibration import (
    SOUND_GAUSSIAN_ACCOUNTANTS,
    calibrate_paper_epsilon0,
    calibrate_verified_noise_multiplier,
    gaussian_noise_multiplier,
)
from .families import GAUSSIAN, builtin_noise_choices, family_name, noise_choices, noise_family
from .optimizers import JointNoiseMixin, check_finite_gradients, joint_optimizer_class

try:  # torch >= 2.4
    from torch.distributed.fsdp import FSDPModule as _FSDPModule
except ImportError:  # pragma: no cover
    _FSDPModule = ()  # type: ignore[assignment]

__all__ = [
    "PrivacyEngine",
    "SENSITIVITY_CONVENTIONS",
    "NOISE_CHOICES",
    "noise_choices",
    "poisson_steps_per_epoch",
    "expected_batch_size",
]

#: how the paper's per-step calibration maps the clip norm C to the sensitivity Δ
SENSITIVITY_CONVENTIONS: dict[str, float] = {"add_remove": 1.0, "paper": 2.0}
#: the package's own verified DP-SGD noises, in registry order (backward compatibility only:
#: the engine validates with :func:`noise_choices`, which includes mechanisms registered later)
NOISE_CHOICES = builtin_noise_choices()
_GAUSSIAN_ACCOUNTANTS = ("prv", "rdp", "gdp")
#: Opacus accountants whose ε is a proven upper bound (PRV: Gopi et al. 2021, its upper ε; RDP:
#: Mironov et al. 2019 with the conversion of Balle et al. 2020). ``gdp`` is the central-limit
#: approximation of Dong, Roth & Su (2022), not a bound: its figure is an ``estimate``, and the
#: verified figure and every calibration then come from the package's PLD route.
_SOUND_OPACUS_ACCOUNTANTS = SOUND_GAUSSIAN_ACCOUNTANTS
#: samplers that Poisson sampling replaces by its own equivalent (shuffled or not, sharded)
_PLAIN_SAMPLERS = (SequentialSampler, RandomSampler, DistributedSampler)


def _trainable(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    if isinstance(optimizer, DPOptimizer):
        optimizer = optimizer.original_optimizer
    return [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]


def _sample_rate(data_loader: DataLoader) -> float:
    """The sampling rate of one step: the Poisson sampler's own rate for a loader that has one
    (Opacus' ``DPDataLoader``), else ``1/len(data_loader)`` (the rate ``DPDataLoader`` draws
    at when it replaces this loader, and the rate the accountants assume for fixed batches).

    Opacus steps its accountant with ``1/len(DPDataLoader)``, and ``len`` is ``int(1/q)``: with
    93 batches that is 1/92, not the 1/93 the sampler uses. This is the one source of truth."""
    rate = getattr(getattr(data_loader, "batch_sampler", None), "sample_rate", None)
    return float(rate) if rate is not None else 1.0 / len(data_loader)


def poisson_steps_per_epoch(num_batches: int) -> int:
    """Length of the Poisson loader Opacus builds from a loader of ``num_batches`` batches:
    ``int(1/q)`` with ``q = 1/num_batches``, which is ``num_batches - 1`` for some sizes
    (93, 99, 105, ...: 1/(1/93) rounds to 92.999...)."""
    return int(1.0 / (1.0 / num_batches))


def expected_batch_size(num_samples: int, sample_rate: float) -> int:
    """The paper's batch size ``B`` for Poisson sampling: ``round(n q)``, at least 1 (``int``
    truncated 930 · (1/93) to 9)."""
    return max(round(num_samples * sample_rate), 1)


def _steps_per_epoch(data_loader: DataLoader, poisson_sampling: bool) -> int:
    """Steps in one pass over the loader ``make_private`` will return."""
    if poisson_sampling and getattr(data_loader.batch_sampler, "sample_rate", None) is None:
        return poisson_steps_per_epoch(len(data_loader))
    return len(data_loader)


def _check_max_grad_norm(max_grad_norm: float | list[float]) -> None:
    norms = max_grad_norm if isinstance(max_grad_norm, (list, tuple)) else [max_grad_norm]
    for c in norms:
        check_positive("max_grad_norm", c)


def _check_data_loader(data_loader: Any, poisson_sampling: bool) -> None:
    """Refuse, before anything is wrapped, a loader DP-SGD cannot use as given."""
    if not isinstance(data_loader, DataLoader):
        raise TypeError(
            f"data_loader must be a torch.utils.data.DataLoader, got {type(data_loader).__name__}"
        )
    try:
        n, batches = len(data_loader.dataset), len(data_loader)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(
            "data_loader: its dataset has no length (an IterableDataset?); DP-SGD's sampling "
            "and accounting need a map-style dataset of known size"
        ) from None
    if n == 0 or batches == 0:
        raise ValueError(f"data_loader is empty ({n} examples, {batches} batches)")
    if not poisson_sampling:
        return
    bs = data_loader.batch_sampler
    if isinstance(bs, (UniformWithReplacementSampler, DistributedUniformWithReplacementSampler)):
        return  # already Poisson (a DPDataLoader)
    if bs is None or type(bs) is not BatchSampler or not isinstance(bs.sampler, _PLAIN_SAMPLERS):
        used = type(bs).__name__ if type(bs) is not BatchSampler else type(bs.sampler).__name__
        raise ValueError(
            f"data_loader uses a {used}, which poisson_sampling=True would silently replace by "
            "Poisson sampling; pass a DataLoader with batch_size (and shuffle) only, or "
            "poisson_sampling=False to keep your sampler (the accountant assumes Poisson "
            "sampling either way)"
        )


def _paper_calibration(
    epsilon0: float, k: float | None, target_delta0: float | None, q: float | None, dim: int
) -> dict[str, float]:
    """The paper's per-step calibration constants for ``epsilon0`` with ``k`` (or the ``k``
    whose claimed δ₀ is ``target_delta0``), checked."""
    epsilon0 = check_epsilon(epsilon0, "epsilon0")
    if (k is None) == (target_delta0 is None):
        raise ValueError("with epsilon0= give exactly one of k= or target_delta0=")
    if k is None:
        k = solve_k(epsilon0, dim, check_delta(target_delta0, "target_delta0"), q)
    t = paper_t(dim, check_positive("k", k), q)
    return {
        "epsilon0": epsilon0,
        "k": float(k),
        "q": dim / 2.0 if q is None else float(q),
        "t": t,
        "claimed_delta0": claimed_delta(epsilon0, dim, k, q),
    }


def _noise_and_multiplier(
    noise: Any, noise_multiplier: float | None, dim: int
) -> tuple[str, float | None]:
    """The registry name of ``noise`` (a name, an alias, a class or an instance) and the noise
    multiplier to use: an instance brings its own (``scale/Δ``) and must have dimension
    ``dim``.

    Raises
    ------
    InputError
        An unknown or unregistered noise, an instance of another dimension, or an instance
        with a different explicit ``noise_multiplier``.
    """
    if not isinstance(noise, ScaledMechanism):
        return family_name(noise), noise_multiplier
    if noise.dim != dim:
        raise InputError(
            f"noise {noise.describe()} has dimension M={noise.dim}, but the optimizer has {dim} "
            f"trainable values: build it with dim={dim}, or pass its name with noise_multiplier="
        )
    own = float(noise.noise_multiplier)
    if noise_multiplier is not None and not math.isclose(noise_multiplier, own, rel_tol=1e-12):
        raise InputError(
            f"noise {noise.describe()} has noise multiplier {own:g} (scale/Δ) but "
            f"noise_multiplier={noise_multiplier!r} was also given: give only one of them"
        )
    return family_name(type(noise)), own


class PrivacyEngine(_OpacusPrivacyEngine):
    """Opacus ``PrivacyEngine`` that can add joint product noise, ℓ2-mechanism noise or any
    mechanism registered for DP-SGD (:func:`~product_noise.opacus.families.noise_choices`).

    Parameters
    ----------
    accountant:
        Opacus accountant for Gaussian runs (``"prv"``, ``"rdp"``, ``"gdp"``). ``prv`` and
        ``rdp`` give proven upper bounds (reported as verified); ``gdp`` is a central-limit
        approximation, reported as an ``estimate`` next to the verified PLD figure of the same
        steps, and never used to calibrate. For non-Gaussian
        noise the engine uses the verified accountant ``"product-verified"`` instead (and, for
        the paper's calibration, also ``"product-claimed"``); for noise without a proven
        profile the ``"unverified"`` accountant, which records the steps and gives no ε.
    secure_mode:
        Opacus' secure RNG. Supported for Gaussian noise only: the joint noise sampler does
        not implement the floating-point-attack mitigation, so ``make_private`` refuses
        non-Gaussian noise in secure mode.
    """

    def __init__(self, *, accountant: str = "prv", secure_mode: bool = False) -> None:
        super().__init__(accountant=accountant, secure_mode=secure_mode)
        self.gaussian_accountant_name = accountant
        self.noise = "gaussian"
        self.noise_config: dict[str, Any] = {"noise": "gaussian"}
        self.claimed_accountant: PaperClaimedAccountant | None = None
        self._optimizer: DPOptimizer | None = None
        self._generator: torch.Generator | None = None
        self._new_wrapper: Any = None

    # ================================================================== validation
    def _resolve_noise(
        self,
        *,
        noise: Any,
        optimizer: torch.optim.Optimizer,
        noise_multiplier: float | None,
        epsilon0: float | None,
        k: float | None,
        target_delta0: float | None,
        q: float | None,
        sensitivity: str,
    ) -> tuple[float, dict[str, Any]]:
        """Check every noise argument and return (noise_multiplier, config), changing nothing."""
        dim = sum(int(p.numel()) for p in _trainable(optimizer))
        name, noise_multiplier = _noise_and_multiplier(noise, noise_multiplier, dim)
        cls = noise_family(name)
        if sensitivity not in SENSITIVITY_CONVENTIONS:
            raise ValueError(
                f"unknown sensitivity convention {sensitivity!r}; choose 'add_remove' (Δ = C, "
                "Opacus' convention) or 'paper' (Δ = 2C, the official product-noise code)"
            )
        paper_args = {"epsilon0": epsilon0, "k": k, "target_delta0": target_delta0, "q": q}
        given_paper = {n for n, v in paper_args.items() if v is not None}
        if name != "product" and given_paper:  # the paper's formula is product noise's own
            raise ValueError(f"{sorted(given_paper)} apply to noise='product' only")
        if name == GAUSSIAN:
            if noise_multiplier is None:
                raise ValueError("noise='gaussian' needs noise_multiplier")
            return check_nonnegative("noise_multiplier", noise_multiplier), {"noise": GAUSSIAN}
        if self.secure_mode:
            raise ValueError(
                f"secure_mode=True is not supported with noise={name!r}: the joint noise "
                "sampler does not implement Opacus' floating-point-attack mitigation"
            )
        config: dict[str, Any] = {"noise": name, "sensitivity": sensitivity}
        need = max(2, cls.min_dim)
        if dim < need:
            what = "for a verified profile" if cls.provable else "for this noise"
            raise ValueError(
                f"noise={name!r} needs at least {need} trainable values {what}, got {dim}"
            )
        config["dim"] = dim
        if name == "product" and epsilon0 is not None:
            if noise_multiplier is not None:
                raise ValueError(
                    "give either noise_multiplier= or the paper's epsilon0= with k= (or "
                    "target_delta0=), not both"
                )
            config["paper"] = _paper_calibration(epsilon0, k, target_delta0, q, dim)
            factor = SENSITIVITY_CONVENTIONS[sensitivity]
            return factor * config["paper"]["t"] / config["paper"]["epsilon0"], config
        if given_paper:
            raise ValueError("k=, target_delta0= and q= need epsilon0= (the paper's calibration)")
        if noise_multiplier is None:
            raise ValueError(
                f"noise={name!r} needs noise_multiplier= (scale/C) or, for product noise, the "
                "paper's epsilon0= and k=; or use make_private_with_epsilon"
            )
        return check_positive("noise_multiplier", noise_multiplier), config

    def _check_optimizer_mode(
        self, module: nn.Module, clipping: str, grad_sample_mode: str
    ) -> None:
        if clipping == "adaptive":
            raise NotImplementedError(
                "clipping='adaptive' is not supported with non-Gaussian noise: adaptive clipping's "
                "budget split is Gaussian-specific"
            )
        if grad_sample_mode == "ghost_fsdp" or (_FSDPModule and isinstance(module, _FSDPModule)):
            raise NotImplementedError(
                "FSDP is not supported with non-Gaussian noise: noise would be drawn per shard"
            )
        distributed = isinstance(module, (DPDDP, DDP))
        opacus_class = get_optimizer_class(
            clipping=clipping, distributed=distributed, grad_sample_mode=grad_sample_mode
        )
        joint_optimizer_class(opacus_class)  # raises for unsupported classes

    # ================================================================== make_private
    def make_private(  # type: ignore[override]
        self,
        *,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: nn.Module | None = None,
        data_loader: DataLoader,
        noise_multiplier: float | None = None,
        max_grad_norm: float | list[float],
        batch_first: bool = True,
        loss_reduction: str = "mean",
        poisson_sampling: bool = True,
        clipping: str = "flat",
        noise_generator: torch.Generator | None = None,
        grad_sample_mode: str = "hooks",
        wrap_model: bool = True,
        rand_on_empty: bool = False,
        noise: Any = "gaussian",
        epsilon0: float | None = None,
        k: float | None = None,
        target_delta0: float | None = None,
        q: float | None = None,
        sensitivity: str = "add_remove",
        **kwargs: Any,
    ) -> tuple:
        """Opacus' ``make_private`` plus the noise choice.

        Extra parameters
        ----------------
        noise:
            ``"gaussian"`` (Opacus' path, unchanged), ``"product"``, ``"l2"`` or any mechanism
            registered for DP-SGD (:func:`product_noise.register_mechanism`; names and aliases:
            :func:`noise_choices`); or a registered :class:`~product_noise.mechanisms.
            ScaledMechanism` subclass; or an instance of one, whose dimension must be the number
            of trainable values and which brings its noise multiplier (``scale/Δ``). Noise with
            a proven profile is accounted by the verified PLD accountant; a sampler without one
            trains, but its report is ``unverified`` and :meth:`get_epsilon` raises.
        noise_multiplier:
            For Gaussian noise, Opacus' σ/C. For joint noise, the scale of the noise law over
            the clip norm (σ/C for product noise, θ/C for the ℓ2 mechanism, ``scale/C`` for a
            user's mechanism).
        epsilon0, k, target_delta0, q:
            The product-noise paper's per-step calibration ``σ = Δ t_q(M, k) / ε₀`` with
            ``M`` = the number of trainable parameters; give ``k`` or ``target_delta0`` (then
            ``k`` solves the paper's claimed δ = target). A :class:`PrivacyWarning` states the
            true per-step δ at ε₀.
        sensitivity:
            ``"add_remove"`` (Δ = C, Opacus' convention, default) or ``"paper"`` (Δ = 2C, as the
            official code). It sets σ in the paper's calibration. The verified accountant always
            reports DP for the add/remove relation (shift C) with Poisson sampling, whatever σ is.

        Before anything is wrapped it refuses an empty ``data_loader``, a dataset without a
        length, a per-layer clip list of the wrong length and, with ``poisson_sampling=True``,
        a custom sampler or batch sampler that Poisson sampling would silently replace. If
        Opacus fails after wrapping the module, the hooks are removed again: the module,
        optimizer, loader and engine are left as they were.

        With ``poisson_sampling=False`` and more than one batch per epoch a
        :class:`PrivacyWarning` says that every accountant (Opacus' and the verified one) still
        assumes Poisson sampling, which fixed shuffled batches do not provide.
        """
        if criterion is None:
            criterion = nn.CrossEntropyLoss()
        opacus_args = dict(
            module=module,
            optimizer=optimizer,
            criterion=criterion,
            data_loader=data_loader,
            max_grad_norm=max_grad_norm,
            batch_first=batch_first,
            loss_reduction=loss_reduction,
            poisson_sampling=poisson_sampling,
            clipping=clipping,
            noise_generator=noise_generator,
            grad_sample_mode=grad_sample_mode,
            wrap_model=wrap_model,
            rand_on_empty=rand_on_empty,
            **kwargs,
        )
        nm, config, accountant = self._validate_make_private(
            opacus_args,
            noise=noise,
            noise_multiplier=noise_multiplier,
            epsilon0=epsilon0,
            k=k,
            target_delta0=target_delta0,
            q=q,
            sensitivity=sensitivity,
        )
        return self._wrap_or_roll_back(opacus_args, nm, config, accountant)

    def _validate_make_private(
        self, opacus_args: dict[str, Any], **noise_args: Any
    ) -> tuple[float, dict[str, Any], Any]:
        """``make_private``'s checks, before anything is wrapped: the loader, the clip norms,
        the noise arguments and the accountant. Returns (noise_multiplier, config, accountant)
        and changes nothing."""
        data_loader = opacus_args["data_loader"]
        optimizer = opacus_args["optimizer"]
        max_grad_norm = opacus_args["max_grad_norm"]
        _check_data_loader(data_loader, opacus_args["poisson_sampling"])
        _check_max_grad_norm(max_grad_norm)
        if not opacus_args["poisson_sampling"] and len(data_loader) > 1:
            warnings.warn(
                "poisson_sampling=False: the accountants (verified included) assume Poisson "
                f"sampling at rate 1/{len(data_loader)}; fixed shuffled batches are not covered "
                "by that proof, so the reported ε is not a guarantee for this loader",
                PrivacyWarning,
                stacklevel=3,  # the caller of make_private
            )
        if opacus_args["clipping"] == "per_layer":
            n_tensors = len(_trainable(optimizer))
            if not isinstance(max_grad_norm, (list, tuple)) or len(max_grad_norm) != n_tensors:
                raise ValueError(
                    f"clipping='per_layer' needs max_grad_norm as a list of {n_tensors} clip "
                    f"norms (one per trainable parameter tensor), got {max_grad_norm!r}"
                )
        nm, config = self._resolve_noise(optimizer=optimizer, **noise_args)
        accountant = self._accountant_for(
            config["noise"],
            opacus_args["module"],
            opacus_args["clipping"],
            opacus_args["grad_sample_mode"],
        )
        return nm, config, accountant

    def _accountant_for(
        self, family: str, module: nn.Module, clipping: str, grad_sample_mode: str
    ) -> Any:
        """The accountant a ``make_private`` call with noise ``family`` will use (refusing an
        optimizer mode or an accountant that does not fit that noise): Opacus' for the
        Gaussian, the verified PLD accountant for noise with a proven profile, the
        :class:`UnverifiedNoiseAccountant` (which records steps and computes no ε) otherwise."""
        accountant = self.accountant
        if family == GAUSSIAN:
            if accountant.mechanism() not in _GAUSSIAN_ACCOUNTANTS:
                raise ValueError(
                    f"noise='gaussian' with accountant {accountant.mechanism()!r}: use Opacus' "
                    "accountants ('prv', 'rdp', 'gdp') for Gaussian noise"
                )
            return accountant
        self._check_optimizer_mode(module, clipping, grad_sample_mode)
        proven = noise_family(family).provable
        make = ProductVerifiedAccountant if proven else UnverifiedNoiseAccountant
        if isinstance(accountant, VerifiedNoiseAccountant if proven else make):
            return accountant
        if len(accountant) > 0:
            mech = accountant.mechanism()
            what = "Gaussian" if mech in _GAUSSIAN_ACCOUNTANTS else f"{mech!r}"
            raise ValueError(
                f"this engine already accounted {what} steps; use a new PrivacyEngine for a run "
                "with another noise"
            )
        return make()

    def _wrap_or_roll_back(
        self,
        opacus_args: dict[str, Any],
        nm: float,
        config: dict[str, Any],
        accountant: Any,
    ) -> tuple:
        """Switch the engine to the new noise, run Opacus' ``make_private`` and attach the
        accountants; if any of it fails, put the engine back as it was and remove the hooks of
        a module wrapped in this call."""
        family = config["noise"]
        # if Opacus rejects the call (e.g. optimizer parameters not in the module), leave the
        # engine as it was: a failed call must not switch its noise or accountant
        saved = self._engine_state()
        self.accountant = accountant
        self.noise = family
        self.noise_config = config
        self._generator = opacus_args["noise_generator"]
        self._new_wrapper = None
        try:
            result = super().make_private(noise_multiplier=nm, **opacus_args)
            self._optimizer = result[1]
            if family != "gaussian":
                self._attach_accountants(result[1], result[-1], config)
            else:
                self.claimed_accountant = None
                self._attach_gaussian_checks(result[1], result[-1])
        except BaseException:
            self._restore_engine_state(saved)
            # Opacus wraps the module before it prepares the loader and the optimizer: a later
            # failure must not leave the user's module with per-sample-gradient hooks
            if self._new_wrapper is not None:
                self._new_wrapper.cleanup()
            raise
        finally:
            self._new_wrapper = None
        return result

    def _engine_state(self) -> tuple:
        """What a failed ``make_private`` restores."""
        return (
            self.accountant,
            self.noise,
            self.noise_config,
            self._generator,
            self._optimizer,
            self.claimed_accountant,
        )

    def _restore_engine_state(self, saved: tuple) -> None:
        (
            self.accountant,
            self.noise,
            self.noise_config,
            self._generator,
            self._optimizer,
            self.claimed_accountant,
        ) = saved

    def _prepare_model(self, module: nn.Module, **kwargs: Any) -> Any:
        wrapped = super()._prepare_model(module, **kwargs)
        if wrapped is not module:  # created in this call (not a pre-existing wrapper)
            self._new_wrapper = wrapped
        return wrapped

    def _prepare_optimizer(self, *, optimizer: torch.optim.Optimizer, **kwargs: Any) -> DPOptimizer:
        if self.noise == "gaussian":
            return super()._prepare_optimizer(optimizer=optimizer, **kwargs)
        if isinstance(optimizer, DPOptimizer):
            optimizer = optimizer.original_optimizer
        noise_generator = kwargs.pop("noise_generator", None)
        clipping = kwargs.pop("clipping", "flat")
        distributed = kwargs.pop("distributed", False)
        grad_sample_mode = kwargs.pop("grad_sample_mode", "hooks")
        opacus_class = get_optimizer_class(
            clipping=clipping, distributed=distributed, grad_sample_mode=grad_sample_mode
        )
        cls = joint_optimizer_class(opacus_class)
        opt = cls(
            optimizer=optimizer,
            noise_multiplier=kwargs.pop("noise_multiplier"),
            max_grad_norm=kwargs.pop("max_grad_norm"),
            expected_batch_size=kwargs.pop("expected_batch_size"),
            loss_reduction=kwargs.pop("loss_reduction", "mean"),
            generator=noise_generator,
            secure_mode=False,
        )
        opt.noise_family = noise_family(self.noise)
        opt.noise_name = self.noise
        return opt

    def _attach_gaussian_checks(self, optimizer: DPOptimizer, data_loader: DataLoader) -> None:
        """Opacus' Gaussian optimizer, unchanged, with two fixes: its accountant is stepped at
        the sampler's real rate, and a non-finite clipped gradient raises before any noise is
        added (as on the joint-noise path) instead of turning the parameters into NaN."""
        optimizer.attach_step_hook(
            self.accountant.get_optimizer_hook_fn(sample_rate=_sample_rate(data_loader))
        )
        add_noise = optimizer.add_noise

        def checked_add_noise() -> None:
            check_finite_gradients(optimizer.params)
            add_noise()

        optimizer.add_noise = checked_add_noise  # type: ignore[method-assign]

    def _attach_accountants(
        self, optimizer: DPOptimizer, data_loader: DataLoader, config: dict[str, Any]
    ) -> None:
        sample_rate = _sample_rate(data_loader)
        verified_hook = self.accountant.get_optimizer_hook_fn(sample_rate=sample_rate)
        paper = config.get("paper")
        if paper is None:
            self.claimed_accountant = None
            optimizer.attach_step_hook(verified_hook)
            return
        n = len(data_loader.dataset)  # type: ignore[arg-type]
        batch = expected_batch_size(n, sample_rate)
        claimed = PaperClaimedAccountant()
        claimed.configure(
            epsilon0=paper["epsilon0"],
            delta0=paper["claimed_delta0"],
            batch_size=max(batch, 1),
            num_samples=n,
        )
        self.claimed_accountant = claimed
        config["batch_size"] = max(batch, 1)
        config["num_samples"] = n
        # the paper's per-step claim refers to its own sensitivity convention (Δ = 2C for
        # "paper", C for "add_remove"): compare it with the exact δ at that shift
        step = self.current_mechanism()
        factor = SENSITIVITY_CONVENTIONS[config["sensitivity"]]
        mech = ProductNoise(step.dim, step.scale, factor * step.sensitivity)
        true_delta0 = float(mech.delta(paper["epsilon0"]))
        config["paper"]["true_delta0"] = true_delta0
        warnings.warn(
            f"product noise at the paper's calibration claims (eps0={paper['epsilon0']:g}, "
            f"delta0={paper['claimed_delta0']:.3g}) per step; the verified per-step delta at "
            f"eps0 is {true_delta0:.3g}. Report engine.get_privacy_report(delta), which labels "
            "the claimed and verified figures.",
            PrivacyWarning,
            stacklevel=4,  # the caller of make_private
        )

        def hook(optim: DPOptimizer) -> None:
            verified_hook(optim)
            claimed.step()

        optimizer.attach_step_hook(hook)

    # ================================================================== reports
    def current_mechanism(self) -> ScaledMechanism:
        """The per-step mechanism of the attached optimizer (sensitivity = the clip norm C)."""
        opt = self._optimizer
        if opt is None:
            raise RuntimeError("call make_private first")
        if isinstance(opt, JointNoiseMixin):
            return opt.current_mechanism()
        return Gaussian(
            sum(int(p.numel()) for p in opt.params),
            opt.noise_multiplier * opt.max_grad_norm,
            opt.max_grad_norm,
        )

    def get_epsilon(self, delta: float) -> float:
        """The verified ε at ``delta``: 0 before any step, else the ``verified`` figure of
        :meth:`get_privacy_report` (for ``accountant="gdp"`` that is the PLD bound, not GDP's
        approximation). ``delta`` is checked to lie in (0, 1) first, for every accountant.

        Raises
        ------
        UnverifiedError
            For noise without a proven privacy profile (a user's sampler only): no verified
            figure exists; audit the run for an empirical lower bound.
        """
        delta = check_delta(delta)
        reason = self.unverified_reason()
        if reason:
            raise UnverifiedError(reason)
        return self._verified_figure(delta).epsilon

    def unverified_reason(self) -> str:
        """Why this engine's run has no verified privacy figure (``""`` when it has one).

        Returns
        -------
        reason : str
            Non-empty when the noise — or any noise this engine's accountant recorded — is a
            mechanism without a proven privacy profile; it says how the noise was scaled.
        """
        acc = self.accountant
        families = acc.unverified_families() if isinstance(acc, JointNoiseAccountant) else []
        if self.noise != GAUSSIAN and not noise_family(self.noise).provable:
            families = list(dict.fromkeys([*families, self.noise]))
        if not families:
            return ""
        reason = unverified_reason(families)
        if self.noise_config.get("scale") == MATCHED_TO_GAUSSIAN:
            reason += f" (scaled by convention: {MATCHED_TO_GAUSSIAN})"
        return reason

    def get_privacy_report(self, delta: float) -> PrivacyReport:
        """Every applicable privacy figure, each labelled, as a :class:`PrivacyReport`.

        * ``verified``, always first: for Gaussian noise Opacus' accountant when its figure is
          a proven upper bound (``prv``, ``rdp``); for ``gdp`` the package's pessimistic PLD
          composition of the same steps. For joint noise the verified PLD accountant.
        * ``estimate``: Opacus' ``gdp`` figure, a central-limit approximation (neither an upper
          nor a lower bound), for comparison only.
        * ``claimed``: for the product-noise paper's calibration, the paper's composition.

        For noise without a proven profile (a user's sampler only) the report has no verified
        figure (``verified=None``) and says why in ``unverified`` (:meth:`unverified_reason`);
        no other figure — no Gaussian one — stands in for it.

        The report is a sequence of these figures in this order (``for fig in report``,
        ``len``, indexing), as the list this method returned before.
        """
        delta = check_delta(delta)
        what = f"DP-SGD with {self.noise} noise"
        reason = self.unverified_reason()
        if reason:
            return PrivacyReport.from_figures(
                (), source="product_noise.PrivacyEngine", what=what, unverified=reason
            )
        return PrivacyReport.from_figures(
            self._privacy_figures(delta), source="product_noise.PrivacyEngine", what=what
        )

    def _privacy_figures(self, delta: float) -> list[PrivacyFigure]:
        figures = [self._verified_figure(delta)]
        if self.noise == GAUSSIAN:
            if self.accountant.mechanism() not in _SOUND_OPACUS_ACCOUNTANTS:
                eps = self.accountant.get_epsilon(delta) if len(self.accountant) else 0.0
                figures.append(
                    PrivacyFigure(
                        float(eps),
                        delta,
                        ESTIMATE,
                        f"Opacus {self.accountant.mechanism()} accountant: GDP central-limit "
                        "approximation, not a bound",
                    )
                )
            return figures
        if self.claimed_accountant is not None:
            fig = self.claimed_accountant.claimed_figure()
            if fig is not None:
                figures.append(fig)
        return figures

    def _verified_figure(self, delta: float) -> PrivacyFigure:
        if self.noise != GAUSSIAN:
            return self.accountant.verified_figure(delta)  # type: ignore[attr-defined]
        name = self.accountant.mechanism()
        if name in _SOUND_OPACUS_ACCOUNTANTS:
            eps = self.accountant.get_epsilon(delta) if len(self.accountant) else 0.0
            return PrivacyFigure(
                float(eps), delta, VERIFIED, f"Opacus {name} accountant (subsampled Gaussian)"
            )
        # GDP is an approximation: compose the same steps with the verified PLD route
        if any(nm == 0 for nm, _, _ in self.accountant.history):
            return PrivacyFigure(math.inf, delta, VERIFIED, "a step without noise (σ = 0)")
        verified = VerifiedNoiseAccountant()
        dim = self.current_mechanism().dim if self._optimizer is not None else 1
        verified.history = [
            NoiseStep(GAUSSIAN, dim, nm, q, n) for nm, q, n in self.accountant.history
        ]
        fig = verified.verified_figure(delta)
        source = "pessimistic PLD (dp-accounting) of the subsampled Gaussian steps"
        return PrivacyFigure(fig.epsilon, delta, VERIFIED, source, fig.extra)

    # ================================================================== with epsilon
    def make_private_with_epsilon(  # type: ignore[override]
        self,
        *,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: nn.Module | None = None,
        data_loader: DataLoader,
        target_epsilon: float,
        target_delta: float,
        epochs: int,
        max_grad_norm: float | list[float],
        noise: Any = "gaussian",
        accounting: str = "verified",
        k: float | None = None,
        q: float | None = None,
        sensitivity: str = "add_remove",
        epsilon_tolerance: float = 0.01,
        **kwargs: Any,
    ) -> tuple:
        """Calibrate the noise for a target (ε, δ) over ``epochs``, then :meth:`make_private`.

        For ``noise="gaussian"`` this is Opacus' own calibration. For joint noise the default
        ``accounting="verified"`` finds the smallest scale whose *verified* ε is ≤ the target
        (and shows how much noise an honest guarantee needs). ``accounting="claimed"`` (product
        noise only) reproduces the paper: it chooses ε₀ (and ``k``, unless given) so that the
        paper's composition reaches the target, and warns with the true per-step δ.

        ``noise`` is a registered name or alias, or a registered class (not an instance: the
        calibration chooses the noise multiplier). A user's mechanism with a proven profile
        calibrates on its own verified accountant. One without (a sampler only) has no verified
        calibration: it runs at the noise multiplier the verified Gaussian needs for the same
        (ε, δ, steps, q) (:data:`~product_noise.mechanisms.custom.MATCHED_TO_GAUSSIAN`), a
        :class:`PrivacyWarning` says so, and its privacy report stays ``unverified``.
        """
        target_epsilon = check_epsilon(target_epsilon, "target_epsilon")
        target_delta = check_delta(target_delta, "target_delta")
        epochs = check_positive_int("epochs", epochs)
        if accounting not in ("verified", "claimed"):
            raise ValueError(f"accounting must be 'verified' or 'claimed', got {accounting!r}")
        if criterion is None:
            criterion = nn.CrossEntropyLoss()
        _check_data_loader(data_loader, kwargs.get("poisson_sampling", True))
        common = dict(
            module=module,
            optimizer=optimizer,
            criterion=criterion,
            data_loader=data_loader,
            max_grad_norm=max_grad_norm,
            **kwargs,
        )
        steps = epochs * _steps_per_epoch(data_loader, kwargs.get("poisson_sampling", True))
        noise_args = self._noise_for_target(
            noise,
            accounting,
            target_epsilon,
            target_delta,
            data_loader=data_loader,
            steps=steps,
            dim=sum(int(p.numel()) for p in _trainable(optimizer)),
            k=k,
            q=q,
            sensitivity=sensitivity,
            epsilon_tolerance=epsilon_tolerance,
        )
        matched = noise_args.pop("matched_to_gaussian", False)
        result = self.make_private(**noise_args, **common)
        if matched:
            self.noise_config["scale"] = MATCHED_TO_GAUSSIAN
            warnings.warn(
                f"noise {noise_args['noise']!r} has no proven privacy profile, so no verified "
                f"calibration: it runs at noise multiplier {noise_args['noise_multiplier']:.6g}, "
                f"the verified Gaussian's for epsilon={target_epsilon:g}, delta="
                f"{target_delta:g} over {steps} steps ({MATCHED_TO_GAUSSIAN}); its privacy "
                "report is unverified — audit the run for an empirical lower bound",
                PrivacyWarning,
                stacklevel=2,
            )
        return result

    def _noise_for_target(
        self,
        noise: str,
        accounting: str,
        target_epsilon: float,
        target_delta: float,
        *,
        data_loader: DataLoader,
        steps: int,
        dim: int,
        k: float | None,
        q: float | None,
        sensitivity: str,
        epsilon_tolerance: float,
    ) -> dict[str, Any]:
        """The noise arguments of :meth:`make_private` that reach the target (ε, δ) after
        ``steps`` (``make_private_with_epsilon``'s calibration)."""
        sample_rate = _sample_rate(data_loader)
        if isinstance(noise, ScaledMechanism):
            raise InputError(
                f"make_private_with_epsilon chooses the noise multiplier: pass the name or class "
                f"of {noise.describe()}, not an instance (or use make_private(noise=<instance>))"
            )
        noise = family_name(noise)
        if noise == GAUSSIAN:
            if accounting != "verified" or k is not None or q is not None:
                raise ValueError("accounting=, k= and q= apply to joint noise only")
            nm = self._calibrate_gaussian(
                target_epsilon, target_delta, sample_rate, steps, dim, epsilon_tolerance
            )
            return {"noise": GAUSSIAN, "noise_multiplier": nm}
        if accounting == "claimed":
            if noise != "product":
                raise ValueError("accounting='claimed' exists for product noise only")
            n = len(data_loader.dataset)  # type: ignore[arg-type]
            batch = expected_batch_size(n, sample_rate)
            eps0, k_used = calibrate_paper_epsilon0(
                target_epsilon,
                target_delta,
                dim=dim,
                batch_size=batch,
                num_samples=n,
                steps=steps,
                k=k,
                q=q,
            )
            return dict(noise="product", epsilon0=eps0, k=k_used, q=q, sensitivity=sensitivity)
        if k is not None or q is not None:
            raise ValueError("k= and q= belong to accounting='claimed'")
        family = noise_family(noise)
        if not family.provable:  # MATCHED_TO_GAUSSIAN: as much noise as the verified Gaussian
            nm = gaussian_noise_multiplier(
                target_epsilon,
                target_delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=self.gaussian_accountant_name,
                epsilon_tolerance=epsilon_tolerance,
                dim=dim,
            )
            return {
                "noise": noise,
                "noise_multiplier": nm,
                "sensitivity": sensitivity,
                "matched_to_gaussian": True,
            }
        nm = calibrate_verified_noise_multiplier(
            family,
            target_epsilon,
            target_delta,
            dim=dim,
            sample_rate=sample_rate,
            steps=steps,
        )
        return {"noise": noise, "noise_multiplier": nm, "sensitivity": sensitivity}

    def _calibrate_gaussian(
        self,
        target_epsilon: float,
        target_delta: float,
        sample_rate: float,
        steps: int,
        dim: int,
        epsilon_tolerance: float,
    ) -> float:
        """Gaussian noise multiplier for a target (ε, δ): Opacus' calibration on a sound
        accountant, the verified PLD route for ``gdp``."""
        return gaussian_noise_multiplier(
            target_epsilon,
            target_delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=self.accountant.mechanism(),
            epsilon_tolerance=epsilon_tolerance,
            dim=dim,
        )

    # ================================================================== checkpoints
    def save_checkpoint(  # type: ignore[override]
        self,
        *,
        path: Any,
        module: nn.Module,
        optimizer: DPOptimizer | None = None,
        checkpoint_dict: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Opacus' checkpoint plus the noise configuration, the claimed accountant and the
        noise generator's state (so a resumed run continues bit for bit)."""
        opt = optimizer if optimizer is not None else self._optimizer
        state: dict[str, Any] = {
            "noise_config": self.noise_config,
            "noise": self.noise,
            "noise_label": _noise_label(self.noise),
            "claimed_accountant": (
                None if self.claimed_accountant is None else self.claimed_accountant.state_dict()
            ),
            "generator_state": None if self._generator is None else self._generator.get_state(),
        }
        if opt is not None:
            state["noise_multiplier"] = float(opt.noise_multiplier)
            state["max_grad_norm"] = opt.max_grad_norm
        extra = {"product_noise": state, **(checkpoint_dict or {})}
        super().save_checkpoint(
            path=path, module=module, optimizer=optimizer, checkpoint_dict=extra, **kwargs
        )

    def load_checkpoint(  # type: ignore[override]
        self,
        *,
        path: Any,
        module: nn.Module,
        optimizer: DPOptimizer | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Restore an Opacus checkpoint written by :meth:`save_checkpoint`.

        Call it after :meth:`make_private` with the same arguments. Checks that the noise
        configuration matches, then restores the accountants and the generator state. With
        Gaussian noise a plain Opacus checkpoint also loads, exactly as Opacus loads it.
        """
        # a file-like ``path`` is read twice (here and by Opacus): remember where it starts
        start = path.tell() if hasattr(path, "seek") and hasattr(path, "tell") else None
        try:
            checkpoint = torch.load(path, weights_only=False, map_location="cpu")
        except Exception as err:  # corrupted or truncated file
            raise ValueError(f"cannot read checkpoint {path!s}: {err}") from err
        if not isinstance(checkpoint, dict):
            raise ValueError(f"{path!s} is not a checkpoint (got {type(checkpoint).__name__})")
        state = checkpoint.get("product_noise")
        if state is None:
            if self.noise == "gaussian":  # a plain Opacus checkpoint: Opacus' own behaviour
                if start is not None:
                    path.seek(start)
                return self._load_all_or_nothing(path, module, optimizer, None, kwargs)
            raise ValueError(f"{path!s} is not a product-noise checkpoint (no 'product_noise' key)")
        if not isinstance(state, dict) or not isinstance(state.get("noise_config"), dict):
            raise ValueError(f"{path!s}: damaged checkpoint ('product_noise' has no noise_config)")
        _check_checkpoint_noise(path, state, checkpoint.get("privacy_accountant_state_dict"))
        if _config_identity(state["noise_config"]) != _config_identity(self.noise_config):
            raise ValueError(
                f"checkpoint {path!s}: noise configuration {state['noise_config']} does not "
                f"match this engine's {self.noise_config}"
            )
        if start is not None:
            path.seek(start)
        return self._load_all_or_nothing(path, module, optimizer, state, kwargs)

    def _load_all_or_nothing(
        self,
        path: Any,
        module: nn.Module,
        optimizer: DPOptimizer | None,
        state: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        """Opacus' load plus our state; if any part fails (wrong keys or shapes, another
        optimizer), restore the module, optimizer, accountants and generator as they were."""
        opt = optimizer if optimizer is not None else self._optimizer
        snapshot = (
            copy.deepcopy(module.state_dict()),
            None if optimizer is None else copy.deepcopy(optimizer.state_dict()),
            copy.deepcopy(self.accountant.state_dict()),
            None
            if self.claimed_accountant is None
            else copy.deepcopy(self.claimed_accountant.state_dict()),
            None if self._generator is None else self._generator.get_state(),
            None if opt is None else (opt.noise_multiplier, opt.max_grad_norm),
        )
        try:
            rest = super().load_checkpoint(path=path, module=module, optimizer=optimizer, **kwargs)
            if state is None:
                return rest
            rest.pop("product_noise", None)
            if state.get("claimed_accountant") is not None and self.claimed_accountant is not None:
                self.claimed_accountant.load_state_dict(state["claimed_accountant"])
            if state.get("generator_state") is not None and self._generator is not None:
                self._generator.set_state(state["generator_state"])
            # joint noise: the scale is part of the noise configuration and is restored; the
            # Gaussian path keeps Opacus' semantics (noise_multiplier is not restored)
            if self.noise != "gaussian" and opt is not None and "noise_multiplier" in state:
                opt.noise_multiplier = float(state["noise_multiplier"])
                opt.max_grad_norm = state["max_grad_norm"]
            return rest
        except Exception as err:
            module.load_state_dict(snapshot[0])
            if optimizer is not None:
                optimizer.load_state_dict(snapshot[1])
            self.accountant.load_state_dict(snapshot[2])
            if snapshot[3] is not None:
                self.claimed_accountant.load_state_dict(snapshot[3])  # type: ignore[union-attr]
            if snapshot[4] is not None:
                self._generator.set_state(snapshot[4])  # type: ignore[union-attr]
            if snapshot[5] is not None:
                opt.noise_multiplier, opt.max_grad_norm = snapshot[5]  # type: ignore[union-attr]
            if isinstance(err, KeyError):
                err = ValueError(f"missing key {err}")
            raise ValueError(
                f"checkpoint {path!s} does not fit this model/optimizer "
                f"({type(err).__name__}: {err}); nothing was loaded"
            ) from err


def _noise_label(name: str) -> str:
    """``verified`` for noise with a proven profile, ``unverified`` for a sampler only."""
    return VERIFIED if noise_family(name).provable else UNVERIFIED


def _check_checkpoint_noise(path: Any, state: dict[str, Any], accountant_state: Any) -> None:
    """Every noise a checkpoint names must be registered now, as what it was when saved.

    Raises
    ------
    InputError
        A noise name that is not registered (register it first: the checkpoint stores the name,
        not the mechanism) or that is now registered with another privacy label.
    """
    names = [state["noise_config"].get("noise")]
    if isinstance(accountant_state, dict):
        history = accountant_state.get("history") or ()
        names += [h[0] for h in history if isinstance(h, (tuple, list)) and h]
    for name in dict.fromkeys(n for n in names if not isinstance(n, (int, float))):
        if not isinstance(name, str) or name not in REGISTRY:
            raise InputError(
                f"checkpoint {path!s} was written with noise {name!r}, which is not registered: "
                "register it first (product_noise.register_mechanism, or the plugin that "
                "provides it), then load the checkpoint"
            )
    label = state.get("noise_label")
    name = state["noise_config"].get("noise")
    if label is not None and _noise_label(name) != label:
        raise InputError(
            f"checkpoint {path!s}: noise {name!r} was {label} when saved but is registered as "
            f"{_noise_label(name)} now; register the mechanism the run used"
        )


def _config_identity(config: dict[str, Any]) -> tuple:
    """What must agree between a checkpoint and the engine: the noise, M and, for the paper's
    calibration, its constants (else the claimed accountant would continue another run)."""
    paper = config.get("paper")
    key = None
    if isinstance(paper, dict):
        key = tuple(paper.get(n) for n in ("epsilon0", "k", "q", "claimed_delta0"))
    return (config.get("noise"), config.get("dim"), key)
