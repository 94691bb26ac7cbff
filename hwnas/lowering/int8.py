"""int8 deployment: onnxruntime's static quantisation (QDQ, per-channel weights, calibrated on training data)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from hwnas.errors import CandidateError
from hwnas.lowering.export import INPUT_NAME


def _reader(x: np.ndarray, batch: int = 64):  # type: ignore[no-untyped-def]
    """An onnxruntime ``CalibrationDataReader`` over mini-batches of training features."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(np.array_split(x.astype(np.float32), max(1, len(x) // batch)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self._batches, None)
            return None if item is None else {INPUT_NAME: item}

    return Reader()


def quantize_int8(src: Path, dst: Path, calibration: np.ndarray, max_samples: int = 512) -> Path:
    """Write a static int8 QDQ model of ``src`` to ``dst`` (weights int8 per channel, activations int8)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = _reader(calibration[:max_samples])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(
                str(pre), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
    except Exception as exc:
        raise CandidateError(f"int8 quantisation failed: {type(exc).__name__}: {exc}") from exc
    return dst
