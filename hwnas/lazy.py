"""Public names of a package imported on first use (PEP 562), so that importing the package stays cheap: the
TVM worker imports ``hwnas.lowering.tvm`` without torch, the CLI builds its parser without Optuna."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping


def exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public ``names`` live in the given modules (absolute,
    or relative to the package when they start with a dot)."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name], package), name)

    def __dir__() -> list[str]:
        return sorted(set(names) | set(getattr(sys.modules[package], "__all__", ())))

    return __getattr__, __dir__
