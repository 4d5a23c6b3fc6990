"""The package's layers: a module imports only from its own layer or below.

core (privacy figures, validation, data, mechanisms, accounting) → methods (opacus, erm,
baselines, training, dpmix) → evidence (audit) → harness (compare, cli). Every ``import`` and
``from … import`` statement is parsed, including those inside functions (lazy imports count:
they are dependencies all the same). ``dpmix`` imports only public names of ``product_noise``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: top-level unit (first component after ``product_noise``, or ``dpmix``) → layer rank
LAYERS: dict[str, int] = {
    "privacy": 0,
    "validation": 0,
    "data": 0,
    "mechanisms": 0,
    "accounting": 0,
    "opacus": 1,
    "erm": 1,
    "baselines": 1,
    "training": 1,
    "dpmix": 1,
    "audit": 2,
    "compare": 3,
    "cli": 3,
}
LAYER_NAMES = ("core", "methods", "evidence", "harness")
#: modules outside the layering: the public facade and the old-path aliases
FACADES = {"product_noise/__init__.py", "product_noise/_compat.py"}


def _unit(dotted: str) -> str | None:
    parts = dotted.split(".")
    if parts[0] == "dpmix":
        return "dpmix"
    if parts[0] == "product_noise":
        return parts[1] if len(parts) > 1 else "product_noise"
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Absolute dotted names of every package-internal import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if node.module is None or node.level and not node.module:
                out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, mod))
    return [(n, m) for n, m in out if _unit(m) is not None]


def _sources() -> list[Path]:
    files = sorted((ROOT / "product_noise").rglob("*.py")) + sorted((ROOT / "dpmix").rglob("*.py"))
    return [f for f in files if str(f.relative_to(ROOT)) not in FACADES]


def test_every_unit_has_a_layer() -> None:
    units = {_unit(_module_name(f)) for f in _sources()}
    assert units <= set(LAYERS), f"assign a layer to: {sorted(units - set(LAYERS))}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_its_own_layer_or_below(path: Path) -> None:
    rank = LAYERS[_unit(_module_name(path))]
    bad = []
    for line, mod in _imports(path):
        unit = _unit(mod)
        if unit == "product_noise":  # `from product_noise import X`: the facade is not a layer
            bad.append(f"line {line}: imports the package facade ({mod}); import the module")
        elif LAYERS.get(unit, -1) > rank:
            bad.append(f"line {line}: {mod} ({LAYER_NAMES[LAYERS[unit]]})")
    assert not bad, f"{LAYER_NAMES[rank]} module imports from above:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", sorted((ROOT / "dpmix").rglob("*.py")), ids=lambda p: p.name)
def test_dpmix_uses_only_public_product_noise_names(path: Path) -> None:
    private = [
        f"line {line}: {mod}"
        for line, mod in _imports(path)
        if mod.startswith("product_noise") and any(p.startswith("_") for p in mod.split("."))
    ]
    assert not private, "\n".join(private)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The parser resolves relative imports (else every test above would pass vacuously)."""
    fake = ROOT / "product_noise" / "mechanisms" / "base.py"
    found = dict((m, n) for n, m in _imports(fake))
    assert "product_noise.validation" in found or "product_noise.privacy" in found
    cli = ROOT / "product_noise" / "cli" / "compare.py"
    assert any(m.startswith("product_noise.compare") for _, m in _imports(cli))


def test_comparison_adapters_live_in_the_harness() -> None:
    """``run_for_compare`` adapters belong to compare/runners/, not to the methods."""
    misplaced = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _sources()
        if "compare" not in path.relative_to(ROOT).parts
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name == "run_for_compare"
    ]
    assert not misplaced, misplaced
