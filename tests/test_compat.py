"""Old import paths of moved modules still work, warn once, and return the module itself."""

from __future__ import annotations

import importlib
import sys

import pytest

from product_noise._compat import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_returns_the_new_module_with_a_warning(old: str) -> None:
    new = importlib.import_module(MOVED[old])
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=MOVED[old].replace(".", r"\.")):
        alias = importlib.import_module(old)
    assert alias is new
    assert new.__spec__.name == MOVED[old]  # the alias does not take over the module's identity
    sys.modules.pop(old, None)


def test_from_import_of_a_moved_name() -> None:
    sys.modules.pop("product_noise.train", None)
    with pytest.warns(DeprecationWarning):
        from product_noise.train import train
    from product_noise.training.loop import train as new_train

    assert train is new_train
    sys.modules.pop("product_noise.train", None)


def test_unknown_names_are_not_invented() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("product_noise.no_such_module")
