"""Old import paths of modules that moved when the package was split into layers.

``import product_noise.train`` (and the other names in :data:`MOVED`) keeps working: it returns
the module at its new place, with a :class:`DeprecationWarning` naming that place. The finder is
installed by ``import product_noise``; it handles only the names below and never shadows a real
module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

#: old dotted name → new dotted name
MOVED: dict[str, str] = {
    "product_noise._validation": "product_noise.validation",
    "product_noise.train": "product_noise.training.loop",
    "product_noise.models": "product_noise.training.models",
    "product_noise.plots": "product_noise.training.plots",
    "product_noise.epsilon_axis": "product_noise.training.epsilon_axis",
    "product_noise.tables": "product_noise.compare.mechanism_table",
    "product_noise.training_audit": "product_noise.audit",
    "product_noise.compare.cli": "product_noise.cli.compare",
    "product_noise.erm.cli": "product_noise.cli.erm",
    "dpmix.cli": "product_noise.cli.dpmix",
}


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name as the already-importable module at its new name."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._own_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} has moved to {self.target}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.target)
        self._own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the alias' spec on the real module: give it back its own
        module.__spec__ = self._own_spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(MOVED[fullname]))


def install() -> None:
    """Put the finder on :data:`sys.meta_path` once (idempotent)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
