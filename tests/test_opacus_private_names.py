"""Every Opacus name our code relies on beyond Opacus' documented API still exists.

The list was built by reading ``product_noise/opacus/*.py``, the other modules that touch an
Opacus object (``audit/dpsgd.py``, ``compare/accounting.py``, ``compare/runners/dpsgd.py``) and
the blocks that ``patches/generate.py`` appends to Opacus' own files. Each entry says which of our
modules uses it. After an Opacus upgrade, :func:`test_opacus_names_exist` fails with the full list
of what is missing or changed, not only the first; the behavioural tests below cover what a name
check cannot (an attribute set in ``__init__``, the shape of ``accountant.history``, …).

Names not used anywhere (checked): ``DPOptimizer._is_last_step_skipped`` and
``opacus.data_loader.DPDataLoader`` are *not* referenced by our code, so they are not listed.
"""

from __future__ import annotations

import importlib
import inspect

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

#: (dotted name, kind, required parameters or None, our module(s) that use it)
#: kind: "module", "class", "callable" (function or method), "property", "attribute"
NAMES: list[tuple[str, str, tuple[str, ...] | None, str]] = [
    # ---------------------------------------------------------------- engine
    ("opacus.PrivacyEngine", "class", None, "opacus/engine.py (subclassed)"),
    (
        "opacus.PrivacyEngine.__init__",
        "callable",
        ("accountant", "secure_mode"),
        "opacus/engine.py (super().__init__)",
    ),
    (
        "opacus.PrivacyEngine.make_private",
        "callable",
        (
            "module",
            "optimizer",
            "criterion",
            "data_loader",
            "noise_multiplier",
            "max_grad_norm",
            "batch_first",
            "loss_reduction",
            "poisson_sampling",
            "clipping",
            "noise_generator",
            "grad_sample_mode",
            "wrap_model",
            "rand_on_empty",
        ),
        "opacus/engine.py (super().make_private, every keyword passed by name)",
    ),
    (
        "opacus.PrivacyEngine._prepare_model",
        "callable",
        ("module",),
        "opacus/engine.py (private override: remembers the new wrapper to clean it up)",
    ),
    (
        "opacus.PrivacyEngine._prepare_optimizer",
        "callable",
        (
            "optimizer",
            "noise_multiplier",
            "max_grad_norm",
            "expected_batch_size",
            "loss_reduction",
            "distributed",
            "clipping",
            "noise_generator",
            "grad_sample_mode",
        ),
        "opacus/engine.py (private override: pops exactly these keywords)",
    ),
    (
        "opacus.PrivacyEngine.save_checkpoint",
        "callable",
        ("path", "module", "optimizer", "checkpoint_dict"),
        "opacus/engine.py",
    ),
    (
        "opacus.PrivacyEngine.load_checkpoint",
        "callable",
        ("path", "module", "optimizer"),
        "opacus/engine.py",
    ),
    (
        "opacus.accountants.utils.get_noise_multiplier",
        "callable",
        (
            "target_epsilon",
            "target_delta",
            "sample_rate",
            "steps",
            "accountant",
            "epsilon_tolerance",
        ),
        "opacus/calibration.py, compare/accounting.py",
    ),
    (
        "opacus.distributed.DifferentiallyPrivateDistributedDataParallel",
        "class",
        None,
        "opacus/engine.py (DPDDP: distributed detection)",
    ),
    (
        "opacus.optimizers.get_optimizer_class",
        "callable",
        ("clipping", "distributed", "grad_sample_mode"),
        "opacus/engine.py",
    ),
    (
        "opacus.utils.uniform_sampler.UniformWithReplacementSampler",
        "class",
        None,
        "opacus/engine.py (Poisson loader detection, .sample_rate)",
    ),
    (
        "opacus.utils.uniform_sampler.DistributedUniformWithReplacementSampler",
        "class",
        None,
        "opacus/engine.py (Poisson loader detection, .sample_rate)",
    ),
    (
        "opacus.utils.uniform_sampler.DistributedUniformWithReplacementSampler.__init__",
        "callable",
        ("total_size", "sample_rate"),
        "opacus/engine.py (reads .sample_rate)",
    ),
    (
        "opacus.grad_sample.GradSampleModule.cleanup",
        "callable",
        (),
        "opacus/engine.py (_new_wrapper.cleanup() after a failed make_private)",
    ),
    # ---------------------------------------------------------------- optimizers
    ("opacus.optimizers.DPOptimizer", "class", None, "opacus/optimizers.py, opacus/engine.py"),
    (
        "opacus.optimizers.DPOptimizer.__init__",
        "callable",
        (
            "optimizer",
            "noise_multiplier",
            "max_grad_norm",
            "expected_batch_size",
            "loss_reduction",
            "generator",
            "secure_mode",
        ),
        "opacus/engine.py (_prepare_optimizer builds the joint class by keyword)",
    ),
    (
        "opacus.optimizers.DPOptimizer.add_noise",
        "callable",
        (),
        "opacus/optimizers.py (overridden), opacus/engine.py (wrapped), optimizer patch",
    ),
    (
        "opacus.optimizers.DPOptimizer.attach_step_hook",
        "callable",
        ("fn",),
        "opacus/engine.py (replaces Opacus' accountant hook)",
    ),
    ("opacus.optimizers.DPOptimizer.params", "property", None, "opacus/optimizers.py, engine.py"),
    (
        "opacus.optimizers.DPOptimizer.accumulated_iterations",
        "property",
        None,
        "opacus/accountants.py (hook: sample_rate × accumulated_iterations)",
    ),
    ("opacus.optimizers.DPPerLayerOptimizer", "class", None, "opacus/optimizers.py"),
    ("opacus.optimizers.DistributedDPOptimizer", "class", None, "opacus/optimizers.py"),
    ("opacus.optimizers.SimpleDistributedPerLayerOptimizer", "class", None, "opacus/optimizers.py"),
    ("opacus.optimizers.DPOptimizerFastGradientClipping", "class", None, "opacus/optimizers.py"),
    (
        "opacus.optimizers.DistributedDPOptimizerFastGradientClipping",
        "class",
        None,
        "opacus/optimizers.py",
    ),
    ("opacus.optimizers.AdaClipDPOptimizer", "class", None, "opacus/optimizers.py (rejected)"),
    (
        "opacus.optimizers.FSDPOptimizerFastGradientClipping",
        "class",
        None,
        "opacus/optimizers.py (rejected)",
    ),
    (
        "opacus.optimizers.optimizer._check_processed_flag",
        "callable",
        ("obj",),
        "opacus/optimizers.py (private: JointNoiseMixin.add_noise)",
    ),
    (
        "opacus.optimizers.optimizer._mark_as_processed",
        "callable",
        ("obj",),
        "opacus/optimizers.py (private: JointNoiseMixin.add_noise)",
    ),
    # ---------------------------------------------------------------- accountants
    ("opacus.accountants.IAccountant", "class", None, "opacus/accountants.py (subclassed)"),
    ("opacus.accountants.IAccountant.mechanism", "callable", (), "opacus/accountants.py, engine"),
    (
        "opacus.accountants.IAccountant.get_optimizer_hook_fn",
        "callable",
        ("sample_rate",),
        "opacus/accountants.py (overridden), opacus/engine.py",
    ),
    (
        "opacus.accountants.IAccountant.state_dict",
        "callable",
        ("destination",),
        "opacus/accountants.py (super().state_dict), opacus/engine.py",
    ),
    (
        "opacus.accountants.IAccountant.load_state_dict",
        "callable",
        ("state_dict",),
        "opacus/accountants.py (super().load_state_dict), opacus/engine.py",
    ),
    ("opacus.accountants.IAccountant.get_epsilon", "callable", ("delta",), "opacus/engine.py"),
    (
        "opacus.accountants.create_accountant",
        "callable",
        ("mechanism",),
        "compare/accounting.py (sets .history of a prv accountant)",
    ),
    (
        "opacus.accountants.registry._ACCOUNTANTS",
        "attribute",
        None,
        "opacus/accountants.py (private dict: is our accountant registered?)",
    ),
    (
        "opacus.accountants.registry.register_accountant",
        "callable",
        ("mechanism", "accountant", "force"),
        "opacus/accountants.py",
    ),
    # ---------------------------------------------------------------- patches/
    ("opacus.privacy_engine", "module", None, "patches/generate.py (block appended to it)"),
    (
        "opacus.privacy_engine.PrivacyEngine",
        "class",
        None,
        "privacy_engine patch (rebinds _OpacusPrivacyEngine = PrivacyEngine)",
    ),
    (
        "opacus.privacy_engine.warnings",
        "module",
        None,
        "privacy_engine patch (the appended block calls warnings.warn unimported)",
    ),
    ("opacus.optimizers.optimizer", "module", None, "patches/generate.py (block appended to it)"),
    (
        "opacus.optimizers.optimizer.DPOptimizer",
        "class",
        None,
        "optimizer patch (replaces DPOptimizer.add_noise, adds noise_family)",
    ),
    (
        "opacus.optimizers.ddpoptimizer.DistributedDPOptimizer",
        "class",
        None,
        "optimizer patch (_set_noise_family imports it from this module)",
    ),
    ("opacus.version.__version__", "attribute", None, "patches/apply.py (reads version.py)"),
]


def _resolve(dotted: str):
    """Import the longest importable module prefix, then walk attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = inspect.getattr_static(obj, attr) if isinstance(obj, type) else getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _problem(dotted: str, kind: str, params: tuple[str, ...] | None) -> str | None:
    try:
        obj = _resolve(dotted)
    except (ImportError, AttributeError) as err:
        return f"{dotted}: missing ({type(err).__name__}: {err})"
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    ok = {
        "module": inspect.ismodule(obj),
        "class": inspect.isclass(obj),
        "callable": callable(obj),
        "property": isinstance(obj, property),
        "attribute": True,
    }[kind]
    if not ok:
        return f"{dotted}: expected a {kind}, found {type(obj).__name__}"
    if params:
        have = set(inspect.signature(obj).parameters)
        lost = [p for p in params if p not in have]
        if lost:
            return f"{dotted}: parameters {lost} no longer exist (has {sorted(have)})"
    return None


def test_opacus_names_exist():
    problems = [p for name, kind, params, _ in NAMES if (p := _problem(name, kind, params))]
    assert not problems, "Opacus names our code relies on changed:\n  " + "\n  ".join(problems)


def test_the_check_detects_a_missing_name():
    assert _problem("opacus.optimizers.DPOptimizer.no_such_method", "callable", None)
    assert _problem("opacus.no_such_module.x", "class", None)
    assert _problem("opacus.optimizers.DPOptimizer.params", "callable", ("x",))  # a property
    assert _problem("opacus.optimizers.get_optimizer_class", "callable", ("no_such_param",))


# ------------------------------------------------------------------------- behaviour
def _tiny_private_step():
    """One real Opacus step on a 2 × 2 linear model; returns (engine, optimizer, summed_grads)."""
    from opacus import PrivacyEngine

    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    data = TensorDataset(torch.randn(8, 2), torch.randint(0, 2, (8,)))
    engine = PrivacyEngine(accountant="prv")
    model, opt, loader = engine.make_private(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        data_loader=DataLoader(data, batch_size=4),
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        poisson_sampling=False,
    )
    seen = []
    add_noise = opt.add_noise

    def spy() -> None:
        seen.append([getattr(p, "summed_grad", None) for p in opt.params])
        add_noise()

    opt.add_noise = spy
    xb, yb = next(iter(loader))
    nn.functional.cross_entropy(model(xb), yb).backward()
    opt.step()
    return engine, opt, seen


@pytest.mark.filterwarnings("ignore:Secure RNG turned off")
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_optimizer_and_accountant_attributes():
    engine, opt, seen = _tiny_private_step()
    # engine.py / audit/dpsgd.py / optimizers.py read these instance attributes
    for attr in (
        "original_optimizer",
        "noise_multiplier",
        "max_grad_norm",
        "expected_batch_size",
        "loss_reduction",
        "generator",
        "secure_mode",
        "step_hook",
    ):
        assert hasattr(opt, attr), attr
    assert isinstance(opt.original_optimizer, torch.optim.SGD)
    assert isinstance(opt.expected_batch_size, int)
    assert opt.accumulated_iterations == 1
    # optimizers.py: add_noise runs on the clipped, summed gradients in p.summed_grad
    assert seen and all(isinstance(s, torch.Tensor) for s in seen[0])
    # engine.py: attach_step_hook *replaces* the hook Opacus attached (not appended)
    hook = lambda optim: None  # noqa: E731
    opt.attach_step_hook(hook)
    assert opt.step_hook is hook
    # engine.py (GDP route) unpacks history as (noise_multiplier, sample_rate, steps);
    # compare/accounting.py assigns a history of that shape to a prv accountant
    assert engine.accountant.history == [(1.0, 0.5, 1)]
    assert len(engine.accountant) > 0 and engine.accountant.mechanism() == "prv"
    assert engine.secure_mode is False


def test_iaccountant_base_state():
    """accountants.py relies on IAccountant.__init__ creating ``history`` and on its
    state_dict carrying it."""
    from opacus.accountants import IAccountant

    class _Probe(IAccountant):
        def __init__(self):
            super().__init__()

        def step(self, *, noise_multiplier, sample_rate):
            self.history.append((noise_multiplier, sample_rate, 1))

        def get_epsilon(self, delta, *args, **kwargs):
            return 0.0

        def __len__(self):
            return len(self.history)

        @classmethod
        def mechanism(cls):
            return "probe"

    acc = _Probe()
    assert acc.history == []
    acc.step(noise_multiplier=1.0, sample_rate=0.1)
    state = acc.state_dict()
    assert state["history"] == [(1.0, 0.1, 1)]
    fresh = _Probe()
    fresh.load_state_dict(state)
    assert fresh.history == [(1.0, 0.1, 1)]


def test_poisson_loader_rate_and_length():
    """engine.py: the Poisson loader's batch sampler exposes ``sample_rate`` and its length is
    ``int(1/q)`` (``poisson_steps_per_epoch``: 93 batches give 92 steps)."""
    from opacus.data_loader import DPDataLoader
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    from product_noise.opacus.engine import poisson_steps_per_epoch

    loader = DataLoader(TensorDataset(torch.zeros(930, 2)), batch_size=10)
    dp = DPDataLoader.from_data_loader(loader)
    assert isinstance(dp.batch_sampler, UniformWithReplacementSampler)
    assert dp.batch_sampler.sample_rate == pytest.approx(1 / 93)
    assert len(dp) == poisson_steps_per_epoch(93) == 92


def test_distributed_add_noise_chains_to_super():
    """optimizers.py: the MRO of the distributed joint classes relies on Opacus' distributed
    ``add_noise`` calling ``super().add_noise()`` on rank 0."""
    from opacus.optimizers import (
        DistributedDPOptimizer,
        DistributedDPOptimizerFastGradientClipping,
    )

    for cls in (DistributedDPOptimizer, DistributedDPOptimizerFastGradientClipping):
        assert "add_noise" in vars(cls), cls.__name__
        assert "super().add_noise()" in inspect.getsource(cls.add_noise), cls.__name__


def test_make_private_goes_through_the_prepare_hooks():
    """engine.py overrides the private ``_prepare_model`` / ``_prepare_optimizer``: Opacus'
    ``make_private`` must still call them on ``self``."""
    from opacus import PrivacyEngine

    src = inspect.getsource(PrivacyEngine.make_private)
    assert "self._prepare_model(" in src
    assert "self._prepare_optimizer(" in src
