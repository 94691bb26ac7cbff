"""hwnas: hardware-aware neural architecture search over FFN structure, sparsity and quantization.

The public API (imported on first use, so that ``import hwnas`` stays fast)::

    hwnas.search(space, dataset, profiles, trials=..., out=...)   # or hwnas.search(config=hwnas.SearchConfig(...))
    hwnas.export(out)                                              # re-export a study's Pareto models
    hwnas.verify(out)                                              # re-measure them where the hardware is here
    hwnas.StopToken()                                              # stop a running search after its trial
"""

from __future__ import annotations

import os

__version__ = "0.1.0"
# ONNX Runtime (1.32) writes telemetry files into ~/.cache/Microsoft/DeveloperTools and $TMPDIR/.ses whenever a
# session is made: hwnas writes nowhere but where it is told. Set before anything imports onnxruntime; an
# explicit setting of the user's is kept.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# The engine's packages are named so that none of them shadows an API name: a subpackage ``hwnas.search`` would
# replace the function as soon as it is imported.
_API = {
    "search": "hwnas.api", "export": "hwnas.api", "verify": "hwnas.api", "SearchResult": "hwnas.api",
    "SearchConfig": "hwnas.engine.config", "StopToken": "hwnas.engine.stop",
}
__all__ = ["__version__", *sorted(_API)]

from hwnas.lazy import exports  # noqa: E402 - after the environment is set

__getattr__, __dir__ = exports(__name__, _API)
