"""Lowering: a trained torch model → the ONNX file that is deployed (:func:`lower`: fp32 export, int8 QDQ,
fp16, int4 ``MatMulNBits``, fixed-point grids, checked against the model); ONNX → Apache TVM (Relax,
MetaSchedule) in a worker process (``tvm``, ``tvm_worker``, ``tvm_export``).

Names are imported on first use, so that ``import hwnas.lowering.tvm`` in the TVM worker does not load torch.
"""

from __future__ import annotations

from hwnas.lazy import exports

_PUBLIC = {
    "lower": ".pipeline", "LoweredModel": ".pipeline", "Lowerable": ".pipeline", "PARITY_TOLERANCE": ".pipeline",
    "converted_weights": ".pipeline",
    "Exporter": ".export", "FeatureExporter": ".export", "TokenExporter": ".export", "export_onnx": ".export",
    "export_tokens": ".export", "graph_digest": ".metadata", "read_metadata": ".metadata", "set_metadata": ".metadata",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = exports(__name__, _PUBLIC)
