"""hwnas: hardware-aware neural architecture search over FFN structure, sparsity and quantization.

The public API (imported on first use, so that ``import hwnas`` stays fast)::

    hwnas.search(space, dataset, profiles, trials=..., out=...)   # or hwnas.search(config=hwnas.SearchConfig(...))
    hwnas.export(out)                                              # re-export a study's Pareto models
    hwnas.verify(out)                                              # re-measure them where the hardware is here
    hwnas.StopToken()                                              # stop a running search after its trial
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"
# ONNX Runtime (1.32) writes telemetry files into ~/.cache/Microsoft/DeveloperTools and $TMPDIR/.ses whenever a
# session is made: hwnas writes nowhere but where it is told. Set before anything imports onnxruntime; an
# explicit setting of the user's is kept.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# ONNX Runtime (1.32) writes a device id and a telemetry database into ~/.cache/Microsoft and $TMPDIR when it is
# imported; hwnas writes nothing outside its output folder and the profile folder (a user may still opt in).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

_API = {
    "search": "hwnas.api", "export": "hwnas.api", "verify": "hwnas.api", "SearchResult": "hwnas.api",
    "SearchConfig": "hwnas.engine.config", "StopToken": "hwnas.engine.stop",
}
__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    # Module attributes win over __getattr__, and the engine's packages are named so that none of them
    # shadows an API name (a subpackage ``hwnas.search`` would replace the function once imported).
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hwnas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
