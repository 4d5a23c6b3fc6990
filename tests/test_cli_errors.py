"""Typed input errors and one set of argument types for every subcommand.

Bad input (``InputError``: the ``check_*`` validators, ``CLIError``, ``ConfigError``,
``DatasetNotFoundError``) is one ``error:`` line, exit 2; any other exception is an internal error,
exit 1, with a hint to rerun with ``PRODUCT_NOISE_DEBUG=1`` (which prints the traceback).
Integer options accept integer-valued floats (``1e3``) and refuse others (``1.5``) everywhere.
"""

from __future__ import annotations

import argparse

import pytest

from product_noise.cli import COMMANDS, DEBUG_ENV, CLIError, main
from product_noise.cli import types as T
from product_noise.compare.config import ConfigError
from product_noise.data import DatasetNotFoundError
from product_noise.validation import InputError, check_delta, check_positive_int

CALIBRATE = ["calibrate", "--mechanism", "gaussian", "--epsilon", "1", "--delta", "1e-5"]
CALIBRATE += ["--dim", "10"]


# ------------------------------------------------------------------ the error classes
def test_input_errors_are_value_errors() -> None:
    for cls in (CLIError, ConfigError, DatasetNotFoundError):
        assert issubclass(cls, InputError) and issubclass(cls, ValueError)
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    with pytest.raises(InputError):
        check_delta(2.0)
    with pytest.raises(InputError):
        check_positive_int("n", 0)


# ------------------------------------------------------------------ main's mapping
def _patch_run(monkeypatch: pytest.MonkeyPatch, name: str, exc: BaseException) -> None:
    def run(args: argparse.Namespace) -> int:
        raise exc

    import dataclasses

    monkeypatch.setitem(COMMANDS, name, dataclasses.replace(COMMANDS[name], run=run))


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("boom"), ValueError("deep inside"), KeyError("k"), ZeroDivisionError("z")],
    ids=lambda e: type(e).__name__,
)
def test_internal_error_exit_1_with_hint(monkeypatch, capsys, exc) -> None:
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    _patch_run(monkeypatch, "calibrate", exc)
    assert main(CALIBRATE) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[0] == f"error: internal error: {type(exc).__name__}: {exc}"
    assert len(lines) == 2 and DEBUG_ENV + "=1" in lines[1]
    assert "Traceback" not in err


def test_debug_env_prints_the_traceback(monkeypatch, capsys) -> None:
    monkeypatch.setenv(DEBUG_ENV, "1")
    _patch_run(monkeypatch, "dpmix", RuntimeError("boom"))
    assert main(["dpmix", "--n", "10", "--l", "2", "--T", "1", "--sigma", "1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err
    assert err.strip().splitlines()[-1] == "error: internal error: RuntimeError: boom"


@pytest.mark.parametrize(
    "exc",
    [InputError("bad value"), CLIError("bad flag"), ConfigError("bad config")],
    ids=lambda e: type(e).__name__,
)
def test_input_error_from_run_exit_2_one_line(monkeypatch, capsys, exc) -> None:
    _patch_run(monkeypatch, "calibrate", exc)
    assert main(CALIBRATE) == 2
    assert capsys.readouterr().err == f"error: {exc}\n"


@pytest.mark.parametrize(("exc", "status"), [(KeyboardInterrupt(), 130)])
def test_interrupt_keeps_its_status(monkeypatch, capsys, exc, status) -> None:
    _patch_run(monkeypatch, "calibrate", exc)
    assert main(CALIBRATE) == status
    assert capsys.readouterr().err == "error: interrupted\n"


@pytest.mark.parametrize(
    "argv",
    [
        # raised deep inside (mechanisms, the sampler, dpmix's run): bad input all the same
        ["calibrate", "--mechanism", "product_paper", "--epsilon", "1", "--delta", "1e-5"]
        + ["--dim", "2"],
        ["audit", "--mechanism", "gaussian", "--epsilon", "1", "--delta", "1e-5", "--dim", "10"]
        + ["--samples", "10"],
        ["dpmix", "--n", "10", "--l", "11", "--T", "1", "--sigma", "1"],
        ["dpmix", "--n", "1", "--l", "1", "--T", "1", "--sigma", "1"],
    ],
    ids=["paper-formula-small-M", "audit-few-samples", "dpmix-l-above-n", "dpmix-delta-1"],
)
def test_bad_input_found_in_run_exit_2(capsys, argv) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "internal" not in err


# ------------------------------------------------------------------ one integer rule
INTEGER_OPTIONS = [
    (
        ["audit", "--mechanism", "gaussian", "--epsilon", "1", "--delta", "1e-5", "--dim", "10"],
        "--seed",
    ),
    (["compare"], "--seeds"),
    (["compare"], "--epochs"),
    (["compare"], "--workers"),
    (["compare"], "--max-train"),
    (["gridsearch", "output", "synthetic_l", "LR"], "--seed"),
    (["gridsearch", "output", "synthetic_l", "LR"], "--repeats"),
    (["audit-training"], "--seed"),
    (["audit-training"], "--steps"),
    (["dpmix", "--n", "10", "--l", "2", "--sigma", "1"], "--T"),
]


def _parse(argv: list[str]) -> argparse.Namespace:
    from product_noise.cli import build_parser

    return build_parser().parse_args(argv)


@pytest.mark.parametrize(("head", "flag"), INTEGER_OPTIONS, ids=lambda x: str(x))
def test_integer_valued_float_accepted_everywhere(head, flag) -> None:
    args = _parse([*head, flag, "1e3"])
    value = getattr(args, flag.lstrip("-").replace("-", "_"))
    value = value[0] if isinstance(value, list) else value
    assert value == 1000 and type(value) is int


@pytest.mark.parametrize(("head", "flag"), INTEGER_OPTIONS, ids=lambda x: str(x))
@pytest.mark.parametrize("text", ["1.5", "abc", "-1"])
def test_non_integer_refused_everywhere(capsys, head, flag, text) -> None:
    assert main([*head, flag, text]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: argument {flag}: ") and err.count("\n") == 1


def test_argument_types() -> None:
    assert T.positive_int("n")("7") == 7
    assert T.positive_int("n", minimum=20)("2e1") == 20
    assert T.nonnegative_int("seed")("0") == 0 == T.seed("0e0")
    assert T.positive_float("sigma")("0.5") == 0.5
    assert T.probability("p")("1") == 1.0
    assert T.probability("p", allow_zero=True)("0") == 0.0
    for parse, text in [
        (T.positive_int("n"), "0"),
        (T.positive_int("n"), "inf"),
        (T.positive_int("n", minimum=20), "19"),
        (T.nonnegative_int("seed"), "nan"),
        (T.positive_float("sigma"), "0"),
        (T.positive_float("sigma"), "inf"),
        (T.probability("p"), "0"),
        (T.probability("p"), "1.5"),
        (T.SEED, "1.5"),
        (T.confidence, "1"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_no_subcommand_defines_its_own_argument_types() -> None:
    """The old per-module helpers are gone: every subcommand uses ``cli/types.py``."""
    from product_noise.cli import audit_training, compare, dpmix, erm

    for mod, names in [
        (compare, ("_positive_float", "_int")),
        (dpmix, ("_pos_int", "_pos_float")),
        (erm, ("_epsilon", "_positive_int", "_seed")),
    ]:
        for name in names:
            assert not hasattr(mod, name), f"{mod.__name__}.{name}"
    parser = argparse.ArgumentParser()
    audit_training._add_arguments(parser)
    for action in parser._actions:
        assert action.type not in (int, float), action.dest
