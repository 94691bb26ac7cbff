"""The seams between hwnas's packages stay public: no module reaches into another package's private names."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import hwnas

ROOT = Path(hwnas.__file__).parent


def _package(module: str) -> str:
    """``hwnas.engine.runner`` → ``engine``; a top-level module ``hwnas.api`` is its own package ``api``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _modules(root: Path) -> dict[str, ast.Module]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), filename=str(path))
    return out


def _defined_private(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Private attribute name → the packages that define it (as a function, class, method or ``self._x = ...``)."""
    owners: dict[str, set[str]] = defaultdict(set)
    for module, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _private(node.name):
                owners[node.name].add(_package(module))
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr):
                owners[node.attr].add(_package(module))
            elif isinstance(node, (ast.AnnAssign, ast.Assign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name) and _private(target.id):
                        owners[target.id].add(_package(module))
    return owners


def crossings(modules: dict[str, ast.Module]) -> list[str]:
    """Every place a module of one package imports, or reaches through an attribute, a private name that only
    other packages of hwnas define."""
    owners = _defined_private(modules)
    found = []
    for module, tree in modules.items():
        here = _package(module)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hwnas":
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if _package(full) != here and any(_private(p) for p in full.split(".")[1:]):
                        found.append(f"{module}:{node.lineno} imports {full}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == "hwnas" and _package(alias.name) != here and any(map(_private, parts[1:])):
                        found.append(f"{module}:{node.lineno} imports {alias.name}")
            elif isinstance(node, ast.Attribute) and _private(node.attr):
                value = node.value
                if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                    continue
                if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
                    continue
                packages = owners.get(node.attr, set())
                if packages and here not in packages:
                    found.append(f"{module}:{node.lineno} uses {ast.unparse(node)} (private to {sorted(packages)})")
    return found


def test_no_package_uses_another_packages_private_names():
    assert crossings(_modules(ROOT)) == []


def test_the_check_finds_private_imports_and_private_method_calls():
    modules = {
        "hwnas.engine.evaluator": ast.parse("class Evaluator:\n    def _build(self):\n        self._cache = 1\n"),
        "hwnas.engine._helpers": ast.parse("def helper():\n    pass\n"),
        "hwnas.strategies.x": ast.parse(
            "from hwnas.engine._helpers import helper\nimport hwnas.engine._helpers\n"
            "from hwnas.engine.evaluator import Evaluator\n"
            "def run(e):\n    e._build()\n    return e._cache\n"),
        "hwnas.engine.runner": ast.parse("def ok(e):\n    return e._build()\n"),  # same package: allowed
    }
    found = crossings(modules)
    assert len(found) == 4, found
    assert any("imports hwnas.engine._helpers.helper" in f for f in found)
    assert any(f.endswith("imports hwnas.engine._helpers") for f in found)
    assert any("e._build" in f for f in found) and any("e._cache" in f for f in found)
