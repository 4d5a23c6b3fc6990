"""Robustness: bad input to the public entry points and interrupted runs.

* ``PrivacyEngine.make_private`` / ``make_private_with_epsilon``: unusable data loaders (empty,
  no length, a sampler Poisson sampling would silently replace, not a loader), bad targets and a
  failure inside Opacus after the module was wrapped raise a clear error, and leave the model,
  optimizer and engine exactly as they were (no hooks, no ``grad_sample``, same param groups);
  the engine is reusable afterwards;
* checkpoints: wrong keys (another model of the same size), another noise configuration, a
  damaged ``product_noise`` entry → ``ValueError`` and nothing loaded (parameters, optimizer
  state, accountant history, noise generator unchanged);
* data files: truncated or garbled IDX / CIFAR / Adult / KDD / LIBSVM files → ``ValueError``
  naming the file; a damaged cache is rebuilt;
* estimators: a failed ``fit`` keeps the previous fitted state (or none); DPMix likewise;
* results files are replaced atomically: a failing write keeps the earlier file;
* interruption: ``run_compare`` interrupted after k runs keeps them, a resumed run redoes none
  and ends with the table of an uninterrupted run (also after a torn last CSV line); ``train``
  and the example scripts (``--resume``) continue from the last finished epoch and give the
  history of an uninterrupted run (same parameters, same privacy figures).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import gzip
import importlib.util
import json
import math
import pickle
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset, WeightedRandomSampler

from product_noise import PrivacyEngine
from product_noise.privacy import PrivacyWarning
from product_noise.training.loop import TrainConfig, save_history, train

pytestmark = pytest.mark.filterwarnings(
    "ignore:Secure RNG turned off",
    "ignore:Full backward hook is firing",
    "ignore:Using a non-full backward hook",
    "ignore:Optimal order is the",
    "ignore::product_noise.privacy.PrivacyWarning",
    "ignore:CMS11 objective perturbation fallback",
)

TESTS = Path(__file__).resolve().parent
EXAMPLES = TESTS.parent / "examples"
for _p in (TESTS, EXAMPLES):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


# =================================================================================== helpers
class Net(nn.Module):
    """Linear(8, 6) → Tanh → Linear(6, 3): M = 75."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 6)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


class OtherNet(nn.Module):
    """The same parameter shapes as :class:`Net` under other names (wrong checkpoint keys)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 6)
        self.b = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)))


def _data(n: int = 64, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 8, generator=g), torch.randint(0, 3, (n,), generator=g))


def _setup(cls: type = Net, seed: int = 0):
    torch.manual_seed(seed)
    model = cls()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, opt


def _hooks(module: nn.Module) -> int:
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in module.modules()
    )


def _snapshot(model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    return {
        "model_type": type(model),
        "params": [p.detach().clone() for p in model.parameters()],
        "groups": [
            {k: (list(map(id, v)) if k == "params" else v) for k, v in g.items()}
            for g in opt.param_groups
        ],
        "opt_type": type(opt),
        "state": copy.deepcopy(opt.state_dict()["state"]),
    }


def _assert_untouched(model: nn.Module, opt: torch.optim.Optimizer, snap: dict) -> None:
    assert type(model) is snap["model_type"] and type(opt) is snap["opt_type"]
    assert _hooks(model) == 0, "per-sample-gradient hooks left on the model"
    for p in model.parameters():
        for attr in ("grad_sample", "_forward_counter", "_current_grad_sample", "summed_grad"):
            assert not hasattr(p, attr), attr
    assert all(torch.equal(a, b) for a, b in zip(snap["params"], model.parameters()))
    assert _snapshot(model, opt)["groups"] == snap["groups"]
    assert opt.state_dict()["state"].keys() == snap["state"].keys()


def _engine_state(engine: PrivacyEngine) -> tuple:
    return (
        engine.noise,
        dict(engine.noise_config),
        engine.accountant.mechanism(),
        len(engine.accountant),
        engine._optimizer,
        engine.claimed_accountant,
    )


def _noise_kwargs(noise: str) -> dict[str, Any]:
    if noise == "product":
        return {"noise": "product", "epsilon0": 0.5, "k": 1000.0}
    return {"noise": noise, "noise_multiplier": 1.0}


def _private(engine: PrivacyEngine, model, opt, loader, noise: str, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return engine.make_private(
            module=model,
            optimizer=opt,
            data_loader=loader,
            **{"max_grad_norm": 1.0, **_noise_kwargs(noise), **kw},
        )


def _step(model, opt, loader) -> None:
    xb, yb = next(iter(loader))
    opt.zero_grad()
    nn.functional.cross_entropy(model(xb), yb).backward()
    opt.step()


class _Stream(IterableDataset):
    def __iter__(self):
        yield from _data(8)


# =================================================================================== engine
BAD_LOADERS = {
    "empty": (
        lambda ds: DataLoader(TensorDataset(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long))),
        ValueError,
        r"data_loader is empty \(0 examples",
    ),
    "no-length": (
        lambda ds: DataLoader(_Stream(), batch_size=4),
        ValueError,
        r"data_loader: its dataset has no length",
    ),
    "weighted-sampler": (
        lambda ds: DataLoader(ds, batch_size=8, sampler=WeightedRandomSampler([1.0] * 64, 64)),
        ValueError,
        r"data_loader uses a WeightedRandomSampler, which poisson_sampling=True would silently",
    ),
    "custom-batch-sampler": (
        lambda ds: DataLoader(ds, batch_sampler=[[0, 1, 2], [3, 4]]),
        ValueError,
        r"data_loader uses a list",
    ),
    "not-a-loader": (lambda ds: [ds[i] for i in range(4)], TypeError, r"data_loader must be a"),
}


@pytest.mark.parametrize("noise", ["gaussian", "product", "l2"])
@pytest.mark.parametrize("case", list(BAD_LOADERS))
def test_make_private_bad_loader_changes_nothing(noise: str, case: str) -> None:
    make_loader, exc, match = BAD_LOADERS[case]
    model, opt = _setup()
    snap = _snapshot(model, opt)
    engine = PrivacyEngine()
    state = _engine_state(engine)
    with pytest.raises(exc, match=match):
        _private(engine, model, opt, make_loader(_data()), noise)
    _assert_untouched(model, opt, snap)
    assert _engine_state(engine) == state
    # the engine, model and optimizer are usable as if nothing happened
    dp_model, dp_opt, dp_loader = _private(
        engine, model, opt, DataLoader(_data(), batch_size=16), noise
    )
    _step(dp_model, dp_opt, dp_loader)
    assert engine.accountant.history and engine.noise == noise


def test_keep_own_sampler_without_poisson_sampling() -> None:
    """The sampler check is not over-broad: with poisson_sampling=False the loader is kept."""
    model, opt = _setup()
    loader = DataLoader(_data(), batch_size=8, sampler=WeightedRandomSampler([1.0] * 64, 64))
    with pytest.warns(PrivacyWarning, match="assume Poisson"):
        _, _, out = PrivacyEngine().make_private(
            module=model,
            optimizer=opt,
            data_loader=loader,
            max_grad_norm=1.0,
            poisson_sampling=False,
            **_noise_kwargs("l2"),
        )
    assert out is loader


@pytest.mark.parametrize("noise", ["gaussian", "product"])
def test_per_layer_clip_list_checked_first(noise: str) -> None:
    """Regression: a clip list of the wrong length reached Opacus, which failed with a bare
    AssertionError after wrapping the module."""
    model, opt = _setup()
    snap = _snapshot(model, opt)
    engine = PrivacyEngine()
    with pytest.raises(ValueError, match=r"max_grad_norm as a list of 4 clip norms"):
        _private(
            engine,
            model,
            opt,
            DataLoader(_data(), batch_size=16),
            noise,
            clipping="per_layer",
            max_grad_norm=[1.0, 1.0],
        )
    _assert_untouched(model, opt, snap)


@pytest.mark.parametrize("noise", ["gaussian", "product", "l2"])
def test_failure_after_wrapping_removes_hooks(noise: str, monkeypatch) -> None:
    """Opacus wraps the module before it builds the optimizer: a failure there (injected) must
    not leave the model with GradSampleModule hooks or per-sample attributes."""
    model, opt = _setup()
    snap = _snapshot(model, opt)
    engine = PrivacyEngine()
    state = _engine_state(engine)

    def broken(**kwargs):
        raise RuntimeError("optimizer construction failed")

    monkeypatch.setattr(engine, "_prepare_optimizer", broken)
    with pytest.raises(RuntimeError, match="optimizer construction failed"):
        _private(engine, model, opt, DataLoader(_data(), batch_size=16), noise)
    _assert_untouched(model, opt, snap)
    assert _engine_state(engine) == state
    monkeypatch.undo()
    dp_model, dp_opt, dp_loader = _private(
        engine, model, opt, DataLoader(_data(), batch_size=16), noise
    )
    _step(dp_model, dp_opt, dp_loader)


BAD_TARGETS = [
    ({"target_epsilon": 0.0}, "target_epsilon must be > 0"),
    ({"target_epsilon": -1.0}, "target_epsilon must be > 0"),
    ({"target_epsilon": math.nan}, "target_epsilon must be a finite"),
    ({"target_epsilon": math.inf}, "target_epsilon must be a finite"),
    ({"target_delta": 0.0}, "target_delta must lie strictly between 0 and 1"),
    ({"target_delta": 1.0}, "target_delta must lie strictly between 0 and 1"),
    ({"target_delta": math.nan}, "target_delta must lie strictly between 0 and 1"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"noise": "laplace"}, "unknown noise 'laplace'"),
    ({"accounting": "paper"}, "accounting must be 'verified' or 'claimed'"),
    ({"noise": "l2", "accounting": "claimed"}, "accounting='claimed' exists for product noise"),
]


@pytest.mark.parametrize(
    ("kw", "match"), BAD_TARGETS, ids=[str(i) for i in range(len(BAD_TARGETS))]
)
def test_make_private_with_epsilon_bad_targets(kw: dict[str, Any], match: str) -> None:
    model, opt = _setup()
    snap = _snapshot(model, opt)
    engine = PrivacyEngine()
    state = _engine_state(engine)
    args = {"target_epsilon": 2.0, "target_delta": 1e-5, "epochs": 1, "noise": "product", **kw}
    with pytest.raises(ValueError, match=match):
        engine.make_private_with_epsilon(
            module=model,
            optimizer=opt,
            data_loader=DataLoader(_data(), batch_size=16),
            max_grad_norm=1.0,
            **args,
        )
    _assert_untouched(model, opt, snap)
    assert _engine_state(engine) == state


def test_make_private_with_epsilon_empty_loader() -> None:
    """Regression: ZeroDivisionError (1 / len(loader)) instead of a message."""
    model, opt = _setup()
    empty = DataLoader(TensorDataset(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long)))
    with pytest.raises(ValueError, match="data_loader is empty"):
        PrivacyEngine().make_private_with_epsilon(
            module=model,
            optimizer=opt,
            data_loader=empty,
            max_grad_norm=1.0,
            target_epsilon=2.0,
            target_delta=1e-5,
            epochs=1,
            noise="l2",
        )
    assert _hooks(model) == 0


@pytest.mark.parametrize("noise", ["gaussian", "l2"])
@pytest.mark.parametrize("delta", [0.0, 1.0, -1.0, math.nan])
def test_privacy_queries_check_delta(noise: str, delta: float) -> None:
    """Regression: Opacus' PRV accountant answered δ = 0 with ZeroDivisionError, δ = NaN with
    'cannot convert float NaN to integer'."""
    engine, _, _ = _trained(noise, steps=1)
    history = list(engine.accountant.history)
    for query in (engine.get_epsilon, engine.get_privacy_report):
        with pytest.raises(ValueError, match="delta must lie strictly between 0 and 1"):
            query(delta)
    assert engine.accountant.history == history


# =================================================================================== checkpoints
def _trained(noise: str, cls: type = Net, steps: int = 2, **kw):
    model, opt = _setup(cls)
    engine = PrivacyEngine()
    gen = torch.Generator().manual_seed(3)
    loader = DataLoader(_data(), batch_size=16, generator=torch.Generator().manual_seed(0))
    dp_model, dp_opt, dp_loader = _private(
        engine, model, opt, loader, noise, noise_generator=gen, **kw
    )
    for _ in range(steps):
        _step(dp_model, dp_opt, dp_loader)
    return engine, dp_model, dp_opt


def _engine_full_state(engine: PrivacyEngine, model: nn.Module, opt) -> tuple:
    claimed = engine.claimed_accountant
    return (
        [p.detach().clone() for p in model.parameters()],
        copy.deepcopy(opt.state_dict()),
        list(engine.accountant.history),
        None if claimed is None else copy.deepcopy(claimed.state_dict()),
        engine._generator.get_state().clone(),
        opt.noise_multiplier,
    )


def _same_state(a: tuple, b: tuple) -> bool:
    params = all(torch.equal(x, y) for x, y in zip(a[0], b[0]))
    opt_state = (
        all(
            torch.equal(a[1]["state"][i]["momentum_buffer"], b[1]["state"][i]["momentum_buffer"])
            for i in a[1]["state"]
        )
        and a[1]["param_groups"] == b[1]["param_groups"]
    )
    return params and opt_state and a[2:4] == b[2:4] and torch.equal(a[4], b[4]) and a[5] == b[5]


def _bad_checkpoints(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    out: dict[str, tuple[Path, str]] = {}
    # another model with the same parameter count (so the noise configuration agrees)
    engine, model, opt = _trained("product", OtherNet)
    p = tmp_path / "other_model.pt"
    engine.save_checkpoint(path=p, module=model, optimizer=opt)
    out["wrong-keys"] = (
        p,
        r"(?s)does not fit this model/optimizer .*Missing key.*nothing was loaded",
    )
    # the same model under another paper calibration (k): the claimed accountant differs
    engine, model, opt = _trained("product", k=2000.0)
    p = tmp_path / "other_k.pt"
    engine.save_checkpoint(path=p, module=model, optimizer=opt)
    out["other-noise-config"] = (p, r"noise configuration .* does not match")
    # l2 noise instead of product noise
    engine, model, opt = _trained("l2")
    p = tmp_path / "l2.pt"
    engine.save_checkpoint(path=p, module=model, optimizer=opt)
    out["other-noise"] = (p, r"does not match")
    # a good checkpoint without the module's state
    engine, model, opt = _trained("product")
    p = tmp_path / "no_module.pt"
    engine.save_checkpoint(path=p, module=model, optimizer=opt)
    ckpt = torch.load(p, weights_only=False)
    del ckpt["module_state_dict"]
    torch.save(ckpt, p)
    out["missing-key"] = (p, r"missing key 'module_state_dict'")
    p = tmp_path / "damaged.pt"
    torch.save({"product_noise": 5, "module_state_dict": {}}, p)
    out["damaged-entry"] = (p, r"damaged checkpoint")
    good = tmp_path / "good.pt"
    engine.save_checkpoint(path=good, module=model, optimizer=opt)
    raw = good.read_bytes()
    p = tmp_path / "truncated.pt"
    p.write_bytes(raw[: len(raw) // 3])
    out["truncated"] = (p, r"cannot read checkpoint .*truncated.pt")
    return out


def test_bad_checkpoints_load_nothing(tmp_path: Path) -> None:
    bad = _bad_checkpoints(tmp_path)
    engine, model, opt = _trained("product", steps=3)
    before = _engine_full_state(engine, model, opt)
    assert before[2] and before[3]["history"]  # something that a partial load would change
    for name, (path, match) in bad.items():
        with pytest.raises(ValueError, match=match):
            engine.load_checkpoint(path=path, module=model, optimizer=opt)
        assert _same_state(before, _engine_full_state(engine, model, opt)), name
        assert _hooks(model._module) > 0  # still the working private model
    # and it still trains and loads a good checkpoint afterwards
    good = tmp_path / "again.pt"
    engine.save_checkpoint(path=good, module=model, optimizer=opt)
    engine.load_checkpoint(path=good, module=model, optimizer=opt)
    assert _same_state(before, _engine_full_state(engine, model, opt))


# =================================================================================== data files
def _corrupt_tail(path: Path, keep: float = 0.5) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


def _edit_line(path: Path, lineno: int, edit) -> None:
    lines = path.read_text().splitlines()
    lines[lineno] = edit(lines[lineno])
    path.write_text("\n".join(lines) + "\n")


def _field(i: int, value: str):
    def edit(line: str) -> str:
        parts = line.split(", ")
        parts[i] = value
        return ", ".join(parts)

    return edit


def _append_clean_row_with_label(label: str):
    """Append a copy of a row without '?' (rows with '?' are skipped by the ERM loader)."""

    def edit(path: Path) -> None:
        clean = next(ln for ln in path.read_text().splitlines() if ln and "?" not in ln)
        path.write_text(path.read_text() + _field(14, label)(clean) + "\n")

    return edit


def _cifar_pickle(obj: Any):
    def write(path: Path) -> None:
        with path.open("wb") as fh:
            pickle.dump(obj, fh)

    return write


def _data_cases() -> dict[str, tuple]:
    from test_dpsgd_data import write_adult, write_cifar, write_mnist, write_u_data

    from product_noise.data import loaders
    from product_noise.data.dpsgd import load_adult_dpsgd, load_cifar10, load_mnist_dpsgd
    from product_noise.data.dpsgd import load_movielens as load_ml

    def mnist(gz: bool):
        return lambda r: write_mnist(r, layout="flat", gz=gz)

    def idx_labels_out_of_range(p: Path) -> None:
        raw = bytearray(p.read_bytes())
        raw[8] = 200
        p.write_bytes(bytes(raw))

    def kdd(r: Path) -> None:
        r.mkdir(parents=True)
        row = ",".join(["0", "tcp", "http", "SF"] + ["1"] * 37 + ["normal."])
        with gzip.open(r / "kddcup.data_10_percent.gz", "wt") as fh:
            fh.write((row + "\n") * 50)

    def realsim(r: Path) -> None:
        r.mkdir(parents=True)
        (r / "real-sim").write_text("+1 1:0.5 3:0.25\n-1 2:0.5\n")

    cifar_dir = "cifar-10-batches-py"
    # name: (writer, relative file, corruption, loader, message pattern)
    return {
        "idx-bad-magic": (
            mnist(False),
            "train-images-idx3-ubyte",
            lambda p: p.write_bytes(b"\x08\x08\x08\x08" + p.read_bytes()[4:]),
            load_mnist_dpsgd,
            r"train-images-idx3-ubyte: not an unsigned-byte IDX file",
        ),
        "idx-short-payload": (
            mnist(False),
            "train-images-idx3-ubyte",
            lambda p: _corrupt_tail(p, 0.9),
            load_mnist_dpsgd,
            r"train-images-idx3-ubyte: header says \(48, 28, 28\) but holds",
        ),
        "idx-truncated-gzip": (
            mnist(True),
            "train-images-idx3-ubyte.gz",
            _corrupt_tail,
            load_mnist_dpsgd,
            r"train-images-idx3-ubyte.gz: truncated or damaged IDX file",
        ),
        "idx-labels-not-digits": (
            mnist(False),
            "train-labels-idx1-ubyte",
            idx_labels_out_of_range,
            load_mnist_dpsgd,
            r"train-labels-idx1-ubyte: labels must be digits 0..9, found 200",
        ),
        "cifar-truncated-pickle": (
            write_cifar,
            f"{cifar_dir}/data_batch_3",
            _corrupt_tail,
            load_cifar10,
            r"data_batch_3: not a CIFAR-10 python pickle",
        ),
        "cifar-label-12": (
            write_cifar,
            f"{cifar_dir}/test_batch",
            _cifar_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 12]}),
            load_cifar10,
            r"test_batch: CIFAR-10 labels must lie in 0..9",
        ),
        "adult-missing-fields": (
            write_adult,
            "adult.data",
            lambda p: _edit_line(p, 3, lambda ln: ", ".join(ln.split(", ")[:9])),
            load_adult_dpsgd,
            r"adult.data, line 4: expected 15 comma-separated fields, got 9",
        ),
        "adult-non-numeric": (
            write_adult,
            "adult.data",
            lambda p: _edit_line(p, 5, _field(0, "forty")),
            load_adult_dpsgd,
            r"adult.data, line 6: non-numeric value 'forty' in column 1",
        ),
        "adult-bad-label": (
            write_adult,
            "adult.data",
            lambda p: _edit_line(p, 2, _field(14, ">=50K")),
            load_adult_dpsgd,
            r"adult.data, line 3: label '>=50K' is neither",
        ),
        "erm-adult-bad-label": (
            write_adult,
            "adult.data",
            _append_clean_row_with_label("50K"),
            loaders.load_adult,
            r"adult.data, line \d+: label '50K' is not <=50K/>50K",
        ),
        "erm-adult-truncated": (
            write_adult,
            "adult.data",
            lambda p: _corrupt_tail(p, 0.4),
            loaders.load_adult,
            r"adult.data, line 25: expected 15 comma-separated fields, got 4 \(a truncated line",
        ),
        "erm-adult-empty": (
            write_adult,
            "adult.data",
            lambda p: p.write_text(""),
            loaders.load_adult,
            r"adult.data: no data rows",
        ),
        "movielens-bad-row": (
            write_u_data,
            "ml-100k/u.data",
            lambda p: p.write_text(p.read_text() + "7\t8\tfive\t0\n"),
            load_ml,
            r"ml-100k/u.data, line 201: expected 4 integer fields",
        ),
        "kdd-truncated-gzip": (
            kdd,
            "kddcup.data_10_percent.gz",
            lambda p: _corrupt_tail(p, 0.6),
            loaders.load_kddcup99,
            r"kddcup.data_10_percent.gz: ",
        ),
        "libsvm-garbage": (
            realsim,
            "real-sim",
            lambda p: p.write_text("+1 1:0.5 3:x\n"),
            loaders.load_realsim,
            r"real-sim: could not convert",
        ),
    }


DATA_CASES = [
    "idx-bad-magic",
    "idx-short-payload",
    "idx-truncated-gzip",
    "idx-labels-not-digits",
    "cifar-truncated-pickle",
    "cifar-label-12",
    "adult-missing-fields",
    "adult-non-numeric",
    "adult-bad-label",
    "erm-adult-bad-label",
    "erm-adult-truncated",
    "erm-adult-empty",
    "movielens-bad-row",
    "kdd-truncated-gzip",
    "libsvm-garbage",
]


@pytest.mark.parametrize("case", DATA_CASES)
def test_damaged_data_file_names_the_file(tmp_path: Path, case: str) -> None:
    writer, rel, corrupt, loader, match = _data_cases()[case]
    root = tmp_path / "data"
    writer(root)
    loader(root)  # the intact fixture loads
    corrupt(root / rel)
    with pytest.raises(ValueError, match=match):
        loader(root)


def test_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    from test_dpsgd_data import write_adult

    from product_noise.data.loaders import load_adult

    write_adult(tmp_path / "data")
    first = load_adult(tmp_path / "data", cache_dir=tmp_path / "cache")
    (cache,) = (tmp_path / "cache").glob("adult-*.npz")
    _corrupt_tail(cache, 0.5)
    again = load_adult(tmp_path / "data", cache_dir=tmp_path / "cache")
    assert np.array_equal(first.X_train, again.X_train)
    assert np.array_equal(first.y_test, again.y_test)
    third = load_adult(tmp_path / "data", cache_dir=tmp_path / "cache")  # the rebuilt cache
    assert np.array_equal(first.X_train, third.X_train)


# =================================================================================== estimators
@pytest.fixture(scope="module")
def erm_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = X[:120] / np.linalg.norm(X[:120], axis=1).max()
    return X, y[:120]


def _bad_fits(X: np.ndarray, y: np.ndarray) -> dict[str, tuple[Any, Any, str]]:
    Xn = X.copy()
    Xn[3, 1] = np.nan
    Xi = X.copy()
    Xi[0, 0] = np.inf
    return {
        "nan": (Xn, y, "NaN"),
        "inf": (Xi, y, "infinity"),
        "empty": (X[:0], y[:0], "0 sample"),
        "length-mismatch": (X, y[:-1], "inconsistent numbers of samples"),
        "one-class": (X[:, :5], np.zeros(len(y)), "at least 2 classes"),
        "continuous-target": (X, np.linspace(0, 1, len(y)), "Unknown label type"),
    }


@pytest.mark.parametrize("method", ["output", "objective"])
def test_failed_fit_keeps_previous_state(erm_data, method: str) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from product_noise.erm import PrivateLogisticRegression

    X, y = erm_data
    est = PrivateLogisticRegression(data_norm=1.0, method=method, epsilon=2.0, random_state=0)
    fresh = PrivateLogisticRegression(data_norm=1.0, method=method)
    est.fit(X, y)
    coef, intercept, privacy = est.coef_.copy(), est.intercept_.copy(), est.privacy_
    classes, n_in = est.classes_.copy(), est.n_features_in_
    pred = est.predict(X)
    for name, (Xb, yb, match) in _bad_fits(X, y).items():
        with pytest.raises(ValueError, match=match):
            est.fit(Xb, yb)
        assert np.array_equal(est.coef_, coef) and np.array_equal(est.intercept_, intercept), name
        assert est.privacy_ is privacy and np.array_equal(est.classes_, classes), name
        assert est.n_features_in_ == n_in, name  # regression: "one-class" reset it to 5
        assert np.array_equal(est.predict(X), pred), name
        with pytest.raises(ValueError, match=match):
            fresh.fit(Xb, yb)
        with pytest.raises(NotFittedError):
            check_is_fitted(fresh)
        assert not [k for k in vars(fresh) if k.endswith("_") and not k.startswith("_")], name


def test_dpmix_empty_and_bad_data_keep_release() -> None:
    from dpmix import DPMix

    rng = np.random.default_rng(0)
    X = rng.random((20, 4)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[np.arange(20) % 3]
    mix = DPMix(l=3, T=10, sigma_x=1.0, seed=0)
    mix.publish(X, Y)
    release = mix.release_
    bad = {
        "empty": (X[:0], Y[:0], r"X has no records \(shape \(0, 4\)\)"),
        "nan": (np.where(X > 0.9, np.nan, X), Y, "X contains NaN"),
        "rows": (X, Y[:5], "X has 20 records but Y has 5 rows"),
        "bound": (X * 5, Y, "outside the declared PixelBound"),
    }
    for name, (xb, yb, match) in bad.items():
        with pytest.raises(ValueError, match=match):
            mix.publish(xb, yb)
        assert mix.release_ is release, name


# =================================================================================== result files
def test_failed_history_write_keeps_earlier_results(tmp_path: Path, monkeypatch) -> None:
    """Regression: the CSV was opened with "w" (truncated) before the rows were written."""
    cfg = TrainConfig(noise="none")
    rows = [{"epoch": 1, "steps": 4, "noise": "none", "test_accuracy": 0.5}]
    json_path, csv_path = save_history(rows, tmp_path, "run", cfg)
    old_json, old_csv = json_path.read_bytes(), csv_path.read_bytes()

    def boom(self, rows):
        raise OSError("disk full")

    monkeypatch.setattr(csv.DictWriter, "writerows", boom)
    with pytest.raises(OSError, match="disk full"):
        save_history([{**rows[0], "test_accuracy": 0.9}], tmp_path, "run", cfg)
    assert csv_path.read_bytes() == old_csv and json_path.read_bytes() == old_json
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv", "run.json"]  # no leftovers


# =================================================================================== compare
def _compare_cfg():
    from product_noise.compare import quick_config

    return dataclasses.replace(
        quick_config(),
        mechanisms=["erm-output-gaussian", "erm-objective-gamma", "nonprivate-logreg"],
        epsilons=[1.0, 4.0],
        seeds=[0, 1],
        workers=1,
    ).validate()


def _table(out: Path) -> list[dict[str, Any]]:
    from product_noise.compare.report import read_rows, summarize

    rows = read_rows(out / "results.csv")
    summary = summarize(rows, order=_compare_cfg().mechanisms)
    return [{k: v for k, v in s.items() if k != "seconds"} for s in summary]


def _result_rows(out: Path) -> dict[str, dict[str, str]]:
    from product_noise.compare.report import read_rows

    timing = ("seconds", "train_seconds", "accounting_seconds")
    return {
        r["run_id"]: {k: v for k, v in r.items() if k not in timing}
        for r in read_rows(out / "results.csv")
    }


def test_compare_interrupted_then_resumed_equals_uninterrupted(tmp_path: Path, monkeypatch):
    from product_noise.compare import plan_runs, run_compare, runners
    from product_noise.compare.config import ConfigError

    cfg = _compare_cfg()
    planned = {s.run_id for s in plan_runs(cfg)}
    assert len(planned) == 10
    ref = run_compare(cfg, tmp_path / "ref", progress=False, plots=False)
    assert ref.status == 0 and set(_result_rows(tmp_path / "ref")) == planned

    real = runners.run_erm
    calls: list[tuple] = []

    def interrupted_after_3(cfg_, data, method, noise, eps, delta, seed, *rest):
        calls.append((method, noise, eps, seed))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(cfg_, data, method, noise, eps, delta, seed, *rest)

    monkeypatch.setattr(runners, "run_erm", interrupted_after_3)
    out = tmp_path / "run"
    first = run_compare(cfg, out, progress=False, plots=False)
    assert first.status == 130
    done = _result_rows(out)
    assert len(done) == 2 + 3  # the two references, then three ERM runs
    assert "interrupted" in (out / "report.md").read_text()
    # a new run into the same directory without resume must not touch the results
    before = (out / "results.csv").read_bytes()
    with pytest.raises(ConfigError, match="pass --resume"):
        run_compare(cfg, out, progress=False, plots=False)
    assert (out / "results.csv").read_bytes() == before

    calls.clear()
    monkeypatch.setattr(runners, "run_erm", lambda *a: (calls.append(a[2:7:2]), real(*a))[1])
    again = run_compare(cfg, out, resume=True, progress=False, plots=False)
    assert again.status == 0 and again.skipped == len(done) and again.finished == 10 - len(done)
    redone = {(m, e, s) for m, e, s in calls}
    assert len(redone) == len(calls) == 10 - len(done)  # nothing twice, nothing finished again
    after = _result_rows(out)
    assert all(after[k] == v for k, v in done.items())  # finished rows kept as they were
    assert after == _result_rows(tmp_path / "ref")
    assert _table(out) == _table(tmp_path / "ref")


def test_compare_resume_after_torn_last_line(tmp_path: Path) -> None:
    """A hard kill while a row was being written leaves a last line without newline: that run
    is not finished. Regression: it counted as done (skipped) and the next row was glued to it."""
    from product_noise.compare import run_compare

    cfg = dataclasses.replace(_compare_cfg(), mechanisms=["nonprivate-logreg"], seeds=[0, 1, 2])
    cfg = cfg.validate()
    out = tmp_path / "run"
    assert run_compare(cfg, out, progress=False, plots=False).status == 0
    path = out / "results.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 4
    torn = lines[-1][: len(lines[-1]) // 2]  # run_id complete, the rest missing
    assert b"seed=2" in torn
    path.write_bytes(b"".join(lines[:-1]) + torn)
    res = run_compare(cfg, out, resume=True, progress=False, plots=False)
    assert res.status == 0 and res.skipped == 2 and res.finished == 1
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["seed"] for r in rows] == ["0", "1", "2"]
    assert all(None not in r.values() and float(r["accuracy"]) > 0.5 for r in rows)


# =================================================================================== train resume
def _train_cfg(noise: str, **kw) -> TrainConfig:
    base: dict[str, Any] = dict(
        noise=noise, epochs=3, batch_size=16, lr=0.2, momentum=0.5, seed=4, delta=1e-5
    )
    if noise in ("gaussian", "l2"):
        base["sigma"] = 1.1
    if noise == "product":
        base.update(epsilon0=0.5, k=1000.0)
    base.update(kw)
    return TrainConfig(**base)


def _strip(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the wall-clock time, NaN made comparable (NaN != NaN)."""

    def same(v: Any) -> Any:
        return "nan" if isinstance(v, float) and math.isnan(v) else v

    return [{k: same(v) for k, v in r.items() if k != "seconds"} for r in history]


def _train_run(cfg: TrainConfig, **kw) -> tuple[list[dict[str, Any]], nn.Module]:
    torch.manual_seed(0)
    model = Net()
    history = train(model, _data(96, 1), _data(32, 2), cfg, progress=False, **kw)
    return history, model


class _Interrupt(KeyboardInterrupt):
    pass


def _stop_at(epoch: int):
    def on_epoch(row: dict[str, Any]) -> None:
        if row["epoch"] == epoch:
            raise _Interrupt

    return on_epoch


@pytest.mark.parametrize("noise", ["product", "gaussian", "none"])
def test_train_interrupted_then_resumed_equals_uninterrupted(tmp_path: Path, noise: str):
    """Interrupted after epoch 2 of 3, resumed: the same history (losses, accuracies, privacy
    figures), the same parameters and the same accountants as the uninterrupted run. Product
    noise (paper's calibration) is compared on its accountants' state (verified history, the
    paper's claimed accountant) instead of its verified ε, which takes seconds per evaluation."""
    every = 0 if noise == "product" else 3  # figures after the last epoch
    cfg = _train_cfg(noise, privacy_every=every)
    engines = [PrivacyEngine() if noise != "none" else None for _ in range(3)]
    ref, ref_model = _train_run(cfg, engine=engines[0])
    ckpt = tmp_path / "run.ckpt.pt"
    with pytest.raises(_Interrupt):
        _train_run(cfg, checkpoint=ckpt, on_epoch=_stop_at(2), engine=engines[1])
    resumed_rows: list[dict[str, Any]] = []
    history, model = _train_run(
        cfg, checkpoint=ckpt, resume=True, on_epoch=resumed_rows.append, engine=engines[2]
    )
    assert [r["epoch"] for r in resumed_rows] == [3]  # epochs 1 and 2 were not trained again
    assert _strip(history) == _strip(ref)
    assert all(torch.equal(a, b) for a, b in zip(ref_model.parameters(), model.parameters()))
    if noise != "none":
        ref_engine, engine = engines[0], engines[2]
        assert engine.accountant.history == ref_engine.accountant.history
        assert engine.accountant.history[-1][-1] == 18  # 3 epochs × 6 steps, all accounted
    if noise == "product":
        claimed, ref_claimed = engine.claimed_accountant, ref_engine.claimed_accountant
        assert claimed.num_steps == ref_claimed.num_steps == 18
        assert claimed.config == ref_claimed.config
        assert str(claimed.claimed_figure()) == str(ref_claimed.claimed_figure())
    else:
        assert ("verified_epsilon" in history[-1]) == (noise != "none")
    # a finished checkpoint resumes to the same history without training
    again, _ = _train_run(cfg, checkpoint=ckpt, resume=True, on_epoch=_stop_at(1))
    assert _strip(again) == _strip(ref)


BAD_TRAIN_CONFIGS = [
    ({"noise": "laplace"}, "unknown noise 'laplace'"),
    ({"delta": 0.0}, "delta must lie strictly between 0 and 1"),
    ({"delta": 1.0}, "delta must lie strictly between 0 and 1"),
    ({"delta": math.nan}, "delta must lie strictly between 0 and 1"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"lr": math.inf}, "lr must be a finite positive number"),
    ({"noise": "gaussian", "sigma": math.nan}, "sigma must be a finite positive number"),
    ({"noise": "gaussian", "sigma": 0.0}, "sigma must be > 0"),
    ({"noise": "l2", "sigma": None}, "noise='l2' needs sigma"),
    ({"epsilon0": 0.0}, "epsilon0 must be > 0"),
    ({"epsilon0": math.inf}, "epsilon0 must be a finite positive number"),
    ({"k": math.nan}, "k must be a finite positive number"),  # regression: NaN passed
    ({"k": 1.0}, "k must be > 1"),
]


@pytest.mark.parametrize(
    ("kw", "match"), BAD_TRAIN_CONFIGS, ids=[str(i) for i in range(len(BAD_TRAIN_CONFIGS))]
)
def test_train_bad_config_changes_nothing(kw: dict[str, Any], match: str) -> None:
    torch.manual_seed(0)
    model = Net()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=match):
        cfg = _train_cfg(**{"noise": "product", **kw})
        train(model, _data(32), _data(8), cfg, progress=False)
    assert _hooks(model) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("noise", ["gaussian", "none"])
def test_train_bad_data(noise: str) -> None:
    """Empty sets, train/test shapes that differ and NaN features: clear errors, and no step
    is taken with a NaN loss (regression: Gaussian and non-private runs trained on NaN)."""
    torch.manual_seed(0)
    model = Net()
    before = [p.detach().clone() for p in model.parameters()]
    cfg = _train_cfg(noise, epochs=1)
    empty = TensorDataset(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="train_set is empty"):
        train(model, empty, _data(8), cfg, progress=False)
    with pytest.raises(ValueError, match="test_set is empty"):
        train(model, _data(8), empty, cfg, progress=False)
    wide = TensorDataset(torch.zeros(4, 9), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(8,\) but test_set examples have shape \(9,\)"):
        train(model, _data(8), wide, cfg, progress=False)
    assert _hooks(model) == 0
    x, y = _data(32).tensors
    nan_set = TensorDataset(torch.full_like(x, math.nan), y)
    with pytest.raises(FloatingPointError, match="non-finite training loss at epoch 1, step 1"):
        train(model, nan_set, _data(8), cfg, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_resume_is_not_trivially_equal(tmp_path: Path) -> None:
    """The resume test can fail: continuing from the checkpoint's weights but with fresh RNG
    states (what a naive resume does) gives another history."""
    cfg = _train_cfg("gaussian", privacy_every=3)
    ref, _ = _train_run(cfg)
    ckpt = tmp_path / "run.ckpt.pt"
    with pytest.raises(_Interrupt):
        _train_run(cfg, checkpoint=ckpt, on_epoch=_stop_at(1))
    ck = torch.load(ckpt, weights_only=False)
    ck["train_state"]["torch_rng"] = torch.manual_seed(123).get_state()
    ck["train_state"]["loader_rng"] = torch.Generator().manual_seed(123).get_state()
    torch.save(ck, ckpt)
    history, _ = _train_run(cfg, checkpoint=ckpt, resume=True)
    assert _strip(history)[0] == _strip(ref)[0]  # epoch 1 comes from the checkpoint
    assert _strip(history)[1:] != _strip(ref)[1:]


def test_train_resume_refuses_bad_checkpoints(tmp_path: Path) -> None:
    cfg = _train_cfg("l2", privacy_every=0)
    ckpt = tmp_path / "run.ckpt.pt"
    with pytest.raises(_Interrupt):
        _train_run(cfg, checkpoint=ckpt, on_epoch=_stop_at(1))
    raw = ckpt.read_bytes()
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed
    with pytest.raises(ValueError, match=r"written with other settings \(lr, sigma\)"):
        _train_run(
            _train_cfg("l2", lr=0.3, sigma=2.0, privacy_every=0), checkpoint=ckpt, resume=True
        )
    with pytest.raises(ValueError, match=r"other settings \(noise\)"):
        _train_run(_train_cfg("gaussian", privacy_every=0), checkpoint=ckpt, resume=True)
    with pytest.raises(ValueError, match="resume=True needs checkpoint="):
        _train_run(cfg, resume=True)
    assert ckpt.read_bytes() == raw  # refused before anything was trained or written
    ckpt.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cannot read checkpoint .*run.ckpt.pt"):
        _train_run(cfg, checkpoint=ckpt, resume=True)
    torch.save({"module_state_dict": {}}, ckpt)
    with pytest.raises(ValueError, match="has no training state"):
        _train_run(cfg, checkpoint=ckpt, resume=True)


# =================================================================================== examples
def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"robust_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _example_argv(tmp_path: Path, out: str, noise: str, *extra: str) -> list[str]:
    return [
        "--data-root",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / out),
        "--noise",
        noise,
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--privacy-every",
        "3",
        "--no-progress",
        *extra,
    ]


@pytest.mark.parametrize("noise", ["gaussian", "none"])
def test_example_resume_gives_the_uninterrupted_history(
    tmp_path: Path, monkeypatch, capsys, noise: str
) -> None:
    """``--resume`` in a script (product noise: see the train() test, its verified ε is slow)."""
    import _common
    from test_dpsgd_data import write_adult

    write_adult(tmp_path / "data")
    mod = _script("adult")
    ref = mod.main(_example_argv(tmp_path, "ref", noise))

    real = _common.format_epoch

    def stop_after_2(row, metric, epochs):
        if row["epoch"] == 2:
            raise KeyboardInterrupt
        return real(row, metric, epochs)

    monkeypatch.setattr(_common, "format_epoch", stop_after_2)
    with pytest.raises(KeyboardInterrupt):
        mod.main(_example_argv(tmp_path, "run", noise))
    ckpt = tmp_path / "run" / f"adult_{noise}.ckpt.pt"
    assert ckpt.is_file() and not (tmp_path / "run" / f"adult_{noise}.json").exists()
    monkeypatch.setattr(_common, "format_epoch", real)
    capsys.readouterr()
    res = mod.main(_example_argv(tmp_path, "run", noise, "--resume"))
    out = capsys.readouterr().out
    assert f"resuming from {ckpt}" in out
    assert "epoch 3/3" in out and "epoch 1/3" not in out and "epoch 2/3" not in out
    assert _strip(res["history"]) == _strip(ref["history"])
    saved = json.loads(Path(res["json"]).read_text())
    assert _strip(saved["history"]) == _strip(json.loads(Path(ref["json"]).read_text())["history"])
    # other settings: refused with the checkpoint named, nothing overwritten
    before = Path(res["json"]).read_bytes()
    with pytest.raises(ValueError, match=r"adult_.*ckpt.pt was written with other settings \(lr\)"):
        mod.main(_example_argv(tmp_path, "run", noise, "--resume", "--lr", "0.3"))
    assert Path(res["json"]).read_bytes() == before


def test_example_failing_run_keeps_earlier_results(tmp_path: Path, monkeypatch) -> None:
    import _common
    from test_dpsgd_data import write_adult

    write_adult(tmp_path / "data")
    mod = _script("adult")
    res = mod.main(_example_argv(tmp_path, "out", "none"))
    json_before, csv_before = Path(res["json"]).read_bytes(), Path(res["csv"]).read_bytes()

    def failing(*args, **kwargs):
        raise FloatingPointError("non-finite loss")

    monkeypatch.setattr(_common, "train", failing)
    with pytest.raises(FloatingPointError):
        mod.main(_example_argv(tmp_path, "out", "none"))
    assert Path(res["json"]).read_bytes() == json_before
    assert Path(res["csv"]).read_bytes() == csv_before


def test_entry_interrupt_and_training_errors(capsys) -> None:
    from _common import entry

    def interrupted(argv: Any) -> None:
        raise KeyboardInterrupt

    def nan_loss(argv: Any) -> None:
        raise FloatingPointError("non-finite training loss at epoch 1, step 3")

    with pytest.raises(SystemExit) as exc:
        entry(interrupted)
    assert exc.value.code == 130 and "--resume" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        entry(nan_loss)
    assert exc.value.code == 1
    assert "error: non-finite training loss at epoch 1" in capsys.readouterr().err
