"""Per-layer precision deployment: each weight's precision becomes what ONNX Runtime runs for its node.

``fp32`` and the baked modes (``ternary``, ``binary``, fixed-point bits) stay fp32 MatMuls whose constants hold
the quantised values; ``int8`` nodes become static QDQ (onnxruntime's ``quantize_static``), ``fp16`` nodes fp16
compute with Casts around them, ``int4`` nodes ``MatMulNBits`` (weight-only). Weights are matched to nodes by
initializer name (the exporter keeps parameter names).

The conversions run in that order: the fp16 converter decides where to put its Casts from the types it can
infer, and ONNX shape inference knows nothing of the ``MatMulNBits`` contrib op, so converting int4 before fp16
left an fp16 MatMul reading the float output of a MatMulNBits (a graph ONNX Runtime rejects).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from hwnas.errors import CandidateError
from hwnas.lowering.fp16 import to_fp16
from hwnas.lowering.int4 import quantize_int4
from hwnas.lowering.int8 import quantize_int8
from hwnas.precision import CONVERTED, WeightPrecision


def weight_consumers(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Initializer name → names of the MatMul/Gemm nodes that read it."""
    inits = {i.name for i in model.graph.initializer}
    out: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            for name in node.input:
                if name in inits:
                    out.setdefault(name, []).append(node.name)
    return out


def deploy(src: Path, dst: Path, modes: Mapping[str, str], calibration: Sequence[dict[str, np.ndarray]]) -> Path:
    """Write ``src`` (fp32) to ``dst`` with each weight's node in its precision (``modes``: weight name → mode)."""
    consumers = weight_consumers(onnx.load(str(src)))
    nodes = {m: [n for w, mode in modes.items() if mode == m for n in consumers.get(w, [])] for m in CONVERTED}
    with tempfile.TemporaryDirectory() as tmp:
        current = src
        for mode in ("int8", "fp16", "int4"):
            if nodes[mode]:
                nxt = Path(tmp) / f"{mode}.onnx"
                if mode == "int8":
                    quantize_int8(current, nxt, calibration, nodes=nodes[mode])
                elif mode == "fp16":
                    to_fp16(current, nxt, nodes=nodes[mode])
                else:
                    quantize_int4(current, nxt, nodes=nodes[mode])
                current = nxt
        shutil.copyfile(current, dst)
    return dst


def verify(path: Path, weights: Sequence[WeightPrecision]) -> None:
    """Check that the ONNX file holds each weight in its stated precision, with its stated zeros.

    Raises ``CandidateError`` naming the first weight that differs (the metadata must describe the graph)."""
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    nbits = {i for n in model.graph.node if n.op_type == "MatMulNBits" for i in n.input}
    expected_type = {"int8": onnx.TensorProto.INT8, "fp16": onnx.TensorProto.FLOAT16}
    for w in weights:
        name, mode = w.weight, w.precision
        if mode == "int4":
            if f"{name}_Q4" not in nbits:
                raise CandidateError(f"{name}: stated int4, but no MatMulNBits reads it")
            continue  # packed 4-bit blocks: zeros are not stored as zeros
        stored = inits.get(f"{name}_quantized" if mode == "int8" else name)
        # fp32-stored modes: float, or float64 for a fixed-point model in its exact integer form
        allowed = (expected_type[mode],) if mode in expected_type else (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE)
        if stored is None or stored.data_type not in allowed:
            raise CandidateError(f"{name}: stated {mode}, but the graph stores it otherwise")
        values = numpy_helper.to_array(stored)
        zeros = float((values == 0).mean())
        if abs(zeros - w.zeros) > 1e-6 and not (mode in ("int8", "fp16") and zeros >= w.zeros):
            raise CandidateError(f"{name}: stated {w.zeros:.3f} zeros, the graph holds {zeros:.3f}")
        distinct = len(np.unique(values))
        if (mode == "ternary" and distinct > 3) or (mode == "binary" and distinct > 2):
            raise CandidateError(f"{name}: stated {mode}, but the graph holds {distinct} distinct values")
