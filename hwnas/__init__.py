"""hwnas: hardware-aware neural architecture search over FFN structure, sparsity and quantization."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "export", "search"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # Lazy: `import hwnas` stays fast and pulls in torch/optuna only when a search is run.
    if name in ("search", "export"):
        from hwnas.search import api

        return getattr(api, name)
    raise AttributeError(f"module 'hwnas' has no attribute {name!r}")
