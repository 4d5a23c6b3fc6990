"""``product_noise.compare.run_comparison`` on a user's task: the same rows as the CLI on the same
data, one clear error before any training for a bad task, TOML ``task``/``plugins`` and resume."""

from __future__ import annotations

import csv
import math
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from product_noise.cli import main
from product_noise.compare import DPSGDTask, ERMTask, run_comparison
from product_noise.compare.config import ConfigError, expand_mechanisms, groups, load_toml
from product_noise.compare.data import load_erm_data, load_nn_data
from product_noise.compare.harness import prepare
from product_noise.compare.tasks import lower_erm_task
from product_noise.erm import PrivacyLeakWarning
from product_noise.mechanisms import SGG, register_mechanism

MECHS = ["dpsgd-gaussian", "nonprivate-nn", "erm-output-gaussian", "nonprivate-logreg"]
# the columns that must agree between the CLI and the task run (the dataset/model names differ)
SAME = (
    "mechanism",
    "seed",
    "target_label",
    "verified_target_epsilon",
    "claimed_target_epsilon",
    "verified_epsilon",
    "verified_delta",
    "claimed_epsilon",
    "noise_scale",
    "dim",
    "steps",
    "n_train",
    "accuracy",
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def mlp() -> nn.Module:
    """The CLI's default network on digits (64 → 32 → 10)."""
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def digits_task(**kw) -> DPSGDTask:
    """The CLI's digits split and default training settings, as a user's task (1 epoch)."""
    d = load_nn_data("digits")
    settings = dict(lr=0.2, momentum=0.9, batch_size=64, epochs=1, max_grad_norm=1.0)
    settings.update(kw)
    return DPSGDTask(
        "my-digits",
        train=(torch.from_numpy(d.X_train), torch.from_numpy(d.y_train)),
        test=(torch.from_numpy(d.X_test), torch.from_numpy(d.y_test)),
        model=mlp,
        **settings,
    )


def cancer_task(**kw) -> ERMTask:
    e = load_erm_data("breast_cancer")
    kw = {"data_norm": 1.0, **kw}
    return ERMTask("my-cancer", e.X_train, e.y_train, e.X_test, e.y_test, **kw)


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict]]:
    base = tmp_path_factory.mktemp("runcmp")
    cli, api = base / "cli", base / "api"
    args = ["compare", "--mechanisms", *MECHS, "--epsilons", "2", "--seeds", "0", "1"]
    args += ["--epochs", "1", "--no-plots", "--no-progress", "--out", str(cli)]
    assert main(args) == 0
    rows = run_comparison(
        task=[digits_task(), cancer_task(data_norm=1.0)],
        mechanisms=MECHS,
        epsilons=[2.0],
        seeds=[0, 1],
        out=api,
    )
    return cli, api, rows


def test_task_run_equals_cli_run(both_runs) -> None:
    cli, api, rows = both_runs
    want = {(r["mechanism"], r["seed"]): r for r in _rows(cli / "results.csv")}
    got = {(r["mechanism"], r["seed"]): r for r in rows}
    assert set(got) == set(want) and len(got) == 2 * len(MECHS)
    for k, r in got.items():
        assert {c: r[c] for c in SAME} == {c: want[k][c] for c in SAME}, k
    gauss = [r for r in rows if r["mechanism"] == "dpsgd-gaussian"]
    assert all(0.95 * 2 <= float(r["verified_epsilon"]) <= 2 for r in gauss)
    assert {r["dataset"] for r in rows} == {"my-digits", "my-cancer"}
    assert {r["model"] for r in rows if r["family"] != "erm"} - {"logreg"} == {"mlp"}


def test_task_run_writes_the_cli_outputs(both_runs) -> None:
    _, api, rows = both_runs
    assert rows == _rows(api / "results.csv")
    for name in ("report.md", "epochs.csv", "settings.json", "accounting.json"):
        assert (api / name).is_file(), name
    assert list(rows[0]) == list(_rows(both_runs[0] / "results.csv")[0])
    report = (api / "report.md").read_text()
    assert "my-digits / mlp" in report and "verified ε" in report
    assert "unverified" not in report  # no unverified mechanism ran


def test_resume_with_a_task_skips_and_checks_the_data(both_runs) -> None:
    _, api, rows = both_runs
    again = run_comparison(
        task=[digits_task(), cancer_task(data_norm=1.0)],
        mechanisms=MECHS,
        epsilons=[2.0],
        seeds=[0, 1],
        out=api,
        resume=True,
        plots=False,
    )
    assert again == rows  # nothing re-run
    other = digits_task()
    other.train = (other.train[0] * 0.5, other.train[1])  # other data: refused
    with pytest.raises(ConfigError, match="other settings.*data my-digits"):
        run_comparison(
            task=[other, cancer_task(data_norm=1.0)],
            mechanisms=MECHS,
            epsilons=[2.0],
            seeds=[0, 1],
            out=api,
            resume=True,
        )
    with pytest.raises(ConfigError, match="exists: pass --resume"):
        run_comparison(task=digits_task(), mechanisms=["nonprivate-nn"], epsilons=[2], out=api)


# ---------------------------------------------------------------------- bad tasks
class Frozen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(64, 10)
        self.lin.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class XOnly(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.zeros(64)


class Empty(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 0

    def __getitem__(self, i: int):  # pragma: no cover
        raise IndexError


def _X(n: int = 20, d: int = 64) -> torch.Tensor:
    return torch.rand(n, d)


def _y(n: int = 20) -> torch.Tensor:
    return torch.arange(n) % 10


BAD_NN = [
    (dict(train=(_X(), None)), "no labels"),
    (dict(train=XOnly()), "has no label"),
    (dict(train=Empty()), "is empty"),
    (dict(train=(_X(0), _y(0))), "is empty"),
    (dict(train=(_X(20), _y(19))), "20 rows but y has 19"),
    (dict(test=(_X(5, 63), _y(5))), "train items have shape (64,), test items (63,)"),
    (dict(model=Frozen), "no trainable parameters"),
    (dict(model=lambda: nn.Linear(10, 10)), "model fails on inputs of shape (2, 64)"),
    (dict(model=lambda: nn.Linear(64, 3)), "3 logits for 10 classes"),
    (dict(train=(_X().double() * np.nan, _y())), "NaN"),
    (dict(train=(_X(), _y() - 1)), "labels must be >= 0"),
    (dict(image_shape=(1, 7, 7)), "does not hold an item"),
    (dict(loss="mse"), "loss must be"),
]


@pytest.mark.parametrize("change, message", BAD_NN)
def test_bad_dpsgd_task_one_error_before_training(tmp_path: Path, monkeypatch, change, message):
    from product_noise.compare import runners

    def no_training(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("training started")

    monkeypatch.setattr(runners, "run_dpsgd", no_training)
    task = DPSGDTask("bad", train=(_X(), _y()), test=(_X(5), _y(5)), model=mlp, epochs=1)
    for k, v in change.items():
        setattr(task, k, v)
    out = tmp_path / "o"
    with pytest.raises(ConfigError) as err:
        run_comparison(task=task, mechanisms=["dpsgd-gaussian"], epsilons=[1.0], out=out)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()  # nothing written, nothing trained


@pytest.mark.parametrize(
    "mechanisms, declare, message",
    [
        (["dpmix-global"], {}, "DPMix needs a declared feature bound"),
        (["adlm"], {}, "needs image data; task 'bad' declares no image_shape"),
        (["erm-output-gaussian"], {}, "give an ERMTask"),
        (["dpmix-class"], {"bound": "l2"}, "rows of ℓ2 norm > 1"),
        (["dpmix-class"], {"bound": "pixel", "train": (_X() * 2, _y())}, "outside [0, 1]"),
    ],
)
def test_mechanisms_the_task_cannot_run(tmp_path: Path, mechanisms, declare, message) -> None:
    data = {"train": (_X(), _y()), "test": (_X(5), _y(5)), **declare}
    task = DPSGDTask("bad", model=mlp, **data)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_comparison(task=task, mechanisms=mechanisms, epsilons=[1.0], out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_groups_leave_out_what_the_task_cannot_run() -> None:
    from product_noise.compare.config import CompareConfig

    task = DPSGDTask("t", train=(_X(), _y()), test=(_X(5), _y(5)), model=mlp)
    cfg = CompareConfig(mechanisms=["default"])
    prepare(cfg, [task])
    assert cfg.mechanisms == ["dpsgd-gaussian", "dpsgd-product-paper", "dpsgd-product"] + [
        "dpsgd-l2",
        "ldp-paper",
        "ldp",
        "nonprivate-nn",
    ]
    assert "dpmix-global" in cfg.dropped and "adlm" in cfg.dropped
    assert "erm-output-gaussian" in cfg.dropped and cfg.nn_dataset == "t"


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(y_train=None), "no labels"),
        (dict(X_train=np.zeros(5)), "must be 2-D"),
        (dict(X_train=np.zeros((0, 30))), "is empty"),
        (dict(X_test=np.zeros((3, 29)), y_test=np.zeros(3)), "30 features, X_test 29"),
        # 364 training rows: breast cancer's 455 less its declared public split (91 rows)
        (dict(y_train=np.zeros(364)), "fewer than two classes"),
        (dict(y_train=np.zeros(7)), "364 rows but y has 7"),
        (dict(data_norm=-1.0), "data_norm must be finite and > 0"),
    ],
)
def test_bad_erm_task_one_error_before_training(tmp_path: Path, change, message) -> None:
    task = cancer_task()
    for k, v in change.items():
        setattr(task, k, v)
    with pytest.raises(ConfigError) as err:
        run_comparison(task=task, mechanisms=["erm-output-gaussian"], epsilons=[1], out=tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "results.csv").exists()


def test_erm_data_norm_from_data_warns_and_clipping_is_noted(tmp_path: Path) -> None:
    with pytest.warns(PrivacyLeakWarning, match="leaks privacy"):
        data = lower_erm_task(cancer_task(data_norm=None))
    assert math.isclose(data.data_norm, float(np.linalg.norm(data.X_train, axis=1).max()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyLeakWarning)  # a declared norm: no leak warning
        rows = run_comparison(
            task=cancer_task(data_norm=0.5),
            mechanisms=["erm-output-gaussian"],
            epsilons=[1.0],
            out=tmp_path / "o",
            plots=False,
        )
    n_over = int((np.linalg.norm(load_erm_data("breast_cancer").X_train, axis=1) > 0.5).sum())
    assert n_over > 0
    n = load_erm_data("breast_cancer").n_train  # 364: the public split is left out
    assert f"{n_over} of {n} training rows exceed the declared data_norm=0.5" in rows[0]["notes"]


def test_a_callable_metric_is_reported(tmp_path: Path) -> None:
    def half(logits: torch.Tensor, y: torch.Tensor) -> float:
        assert logits.shape == (len(y), 10)
        return 0.25

    task = DPSGDTask("t", train=(_X(), _y()), test=(_X(5), _y(5)), model=mlp, metric=half)
    rows = run_comparison(task=task, mechanisms=["nonprivate-nn"], epsilons=[1], out=tmp_path)
    assert [float(r["accuracy"]) for r in rows] == [0.25]


def test_a_callable_loss_equal_to_cross_entropy_gives_the_same_run(tmp_path: Path) -> None:
    """A task's own loss trains through the same engine, seeds and steps: the cross-entropy
    given as a callable reproduces the built-in loss' rows."""
    mechs = ["dpsgd-gaussian", "nonprivate-nn"]
    kw = dict(mechanisms=mechs, epsilons=[2.0], seeds=[0], plots=False)
    base = run_comparison(task=digits_task(), out=tmp_path / "a", **kw)
    ce = digits_task(loss=nn.functional.cross_entropy)
    own = run_comparison(task=ce, out=tmp_path / "b", **kw)
    assert [{c: r[c] for c in SAME} for r in own] == [{c: r[c] for c in SAME} for r in base]
    bad = digits_task(loss=lambda logits, y: logits.sum(1))  # not a scalar: the run fails
    with pytest.raises(RuntimeError, match="some runs failed"):
        run_comparison(task=bad, mechanisms=["nonprivate-nn"], epsilons=[1], out=tmp_path / "c")
    assert "finite scalar tensor" in (tmp_path / "c" / "report.md").read_text()


# ---------------------------------------------------------------------- TOML, plugins
def test_user_mechanisms_join_the_names_at_use_time() -> None:
    with pytest.raises(ConfigError, match="unknown mechanism"):
        expand_mechanisms(["dpsgd-my-l2"])
    register_mechanism("my_l2", radial=lambda d: SGG(d, d - 1.0, 1.0, 1.0))
    assert expand_mechanisms(["dpsgd-my-l2", "erm-amp-my-l2"]) == ["dpsgd-my-l2", "erm-amp-my-l2"]
    assert "dpsgd-my-l2" not in groups()["dpsgd"] and "dpsgd-my-l2" not in groups()["default"]
    assert expand_mechanisms(["user"]) == [
        "dpsgd-my-l2",
        "erm-output-my-l2",
        "erm-objective-my-l2",
        "erm-amp-my-l2",
    ]


def test_user_mechanisms_are_calibrated_in_this_process() -> None:
    """A user's law lives in this process (often a closure): its calibration is never sent to
    a worker process, which would not know the name."""
    from product_noise.compare.accounting import DPSGDKey, _portable

    register_mechanism("my_l2", radial=lambda d: SGG(d, d - 1.0, 1.0, 1.0))
    key = DPSGDKey("dpsgd-my-l2", 1.0, 1e-5, 100, 1000, 64, 1)
    assert not _portable("dpsgd", key)
    assert _portable("dpsgd", DPSGDKey("dpsgd-l2", 1.0, 1e-5, 100, 1000, 64, 1))


def _write_modules(root: Path) -> None:
    (root / "i17_task_mod.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn
            from product_noise.compare import DPSGDTask

            def model():
                return nn.Sequential(nn.Linear(8, 4))

            def task():
                g = torch.Generator().manual_seed(0)
                X = torch.rand(40, 8, generator=g)
                y = torch.arange(40) % 4
                return DPSGDTask("toml-task", train=(X, y), test=(X[:10], y[:10]), model=model,
                                 epochs=1, batch_size=8)
            """
        )
    )
    (root / "i17_plugin_mod.py").write_text(
        textwrap.dedent(
            """
            from product_noise.mechanisms import SGG, register_mechanism

            def register():
                register_mechanism("toml_l2", radial=lambda d: SGG(d, d - 1.0, 1.0, 1.0))
            """
        )
    )


def test_toml_task_and_plugins_round_trip(tmp_path: Path, monkeypatch, capsys) -> None:
    _write_modules(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    toml = tmp_path / "c.toml"
    toml.write_text(
        'task = "i17_task_mod:task"\nplugins = ["i17_plugin_mod:register"]\n'
        'mechanisms = ["nonprivate-nn"]\nepsilons = [1.0]\nseeds = [0, 1]\n'
    )
    cfg = load_toml(toml)
    assert cfg.task == "i17_task_mod:task" and cfg.plugins == ["i17_plugin_mod:register"]
    # the plugin's mechanism is known once the config is prepared (plugins before names)
    cfg.mechanisms = ["nonprivate-nn", "dpsgd-toml-l2"]
    tasks = prepare(cfg)
    assert cfg.mechanisms == ["nonprivate-nn", "dpsgd-toml-l2"] and cfg.nn_dataset == "toml-task"
    assert cfg.model == "model" and cfg.epochs == 1 and len(tasks) == 1
    out = tmp_path / "o"
    base = ["compare", "--config", str(toml), "--out", str(out), "--no-progress", "--no-plots"]
    assert main(base) == 0
    rows = _rows(out / "results.csv")
    assert sorted((r["dataset"], r["model"], r["seed"]) for r in rows) == [
        ("toml-task", "model", "0"),
        ("toml-task", "model", "1"),
    ]
    capsys.readouterr()
    assert main([*base, "--resume"]) == 0  # the same task again: everything skipped
    assert "0 runs finished, 2 skipped" in capsys.readouterr().out
    assert main([*base, "--resume", "--epochs", "3"]) == 0  # a task's own settings win
    sys.modules.pop("i17_task_mod", None)


def test_cli_task_and_plugin_options(tmp_path: Path, monkeypatch) -> None:
    from product_noise.mechanisms.registry import REGISTRY

    _write_modules(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "o"
    args = ["compare", "--task", "i17_task_mod:task", "--plugin", "i17_plugin_mod:register"]
    args += ["--mechanisms", "nonprivate-nn", "--seeds", "0", "--no-plots", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    assert "toml_l2" in REGISTRY
    assert [r["dataset"] for r in _rows(out / "results.csv")] == ["toml-task"]
    # without the plugin its mechanism is unknown: exit 2 before training
    REGISTRY.unregister("toml_l2")
    bad = ["compare", "--mechanisms", "dpsgd-toml-l2", "--out", str(tmp_path / "p")]
    assert main(bad) == 2 and not (tmp_path / "p").exists()


def test_bad_task_and_plugin_specs_exit_2(tmp_path: Path, capsys) -> None:
    toml = tmp_path / "c.toml"
    for text, message in [
        ('task = "no_such_module_i17:task"\n', "cannot import task"),
        ('task = "no_colon"\n', "package.module:callable"),
        ('plugins = ["no_such_plugin_i17"]\n', "cannot import mechanism plugin"),
        ('task = "math:pi"\n', "is not callable"),
        ('task = "builtins:dict"\n', "expected a DPSGDTask or an ERMTask"),
    ]:
        toml.write_text(text)
        assert main(["compare", "--config", str(toml), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, text
    assert not (tmp_path / "o").exists()
