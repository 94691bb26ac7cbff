"""int8 deployment: onnxruntime's static quantisation (QDQ, per-channel weights, calibrated on training data)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.errors import CandidateError


def _reader(feeds: Sequence[dict[str, np.ndarray]]):  # type: ignore[no-untyped-def]
    """An onnxruntime ``CalibrationDataReader`` over the given input feeds."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    return Reader()


def quantize_int8(src: Path, dst: Path, calibration: Sequence[dict[str, np.ndarray]],
                  nodes: Sequence[str] | None = None) -> Path:
    """Write a static int8 QDQ model of ``src`` to ``dst`` (weights int8 per channel, activations int8),
    calibrated on input feeds (e.g. an :class:`~hwnas.lowering.export.Exporter`'s). With ``nodes``, only those
    MatMul/Gemm nodes are quantised (per-layer mixed precision)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = _reader(list(calibration))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pre = Path(tmp) / "pre.onnx"
            # ORT's pre-optimisation fuses and renames nodes: keep the names when quantising chosen nodes only.
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True, skip_optimization=nodes is not None)
            quantize_static(
                str(pre), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                nodes_to_quantize=list(nodes) if nodes is not None else None,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
    except Exception as exc:
        raise CandidateError(f"int8 quantisation failed: {type(exc).__name__}: {exc}") from exc
    return dst
