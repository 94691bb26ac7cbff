"""Per-layer precision deployment: each weight's precision becomes what ONNX Runtime runs for its node.

``fp32`` and the baked modes (``ternary``, ``binary``, fixed-point bits) stay fp32 MatMuls whose constants hold
the quantised values; ``int8`` nodes become static QDQ (onnxruntime's ``quantize_static``), ``int4`` nodes
``MatMulNBits`` (weight-only), ``fp16`` nodes fp16 compute with Casts around them. Weights are matched to
nodes by initializer name (the exporter keeps parameter names).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import onnx

from hwnas.lowering.fp16 import to_fp16
from hwnas.lowering.int4 import quantize_int4
from hwnas.lowering.int8 import quantize_int8

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "fp16", "int8", "int4", "ternary", "binary")
#: Modes that need a graph conversion (the others are values baked into fp32 weights).
CONVERTED = ("int8", "int4", "fp16")


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


def deploy(src: Path, dst: Path, modes: Mapping[str, str],
           calibration: np.ndarray | Sequence[dict[str, np.ndarray]]) -> Path:
    """Write ``src`` (fp32) to ``dst`` with each weight's node in its precision (``modes``: weight name → mode)."""
    consumers = weight_consumers(onnx.load(str(src)))
    nodes = {m: [n for w, mode in modes.items() if mode == m for n in consumers.get(w, [])] for m in CONVERTED}
    with tempfile.TemporaryDirectory() as tmp:
        current = src
        for mode, step in (("int8", _int8), ("int4", _int4), ("fp16", _fp16)):
            if nodes[mode]:
                nxt = Path(tmp) / f"{mode}.onnx"
                step(current, nxt, nodes[mode], calibration)
                current = nxt
        shutil.copyfile(current, dst)
    return dst


def _int8(src: Path, dst: Path, nodes: list[str], calibration: object) -> None:
    quantize_int8(src, dst, calibration, nodes=nodes)  # type: ignore[arg-type]


def _int4(src: Path, dst: Path, nodes: list[str], calibration: object) -> None:
    quantize_int4(src, dst, nodes=nodes)


def _fp16(src: Path, dst: Path, nodes: list[str], calibration: object) -> None:
    to_fp16(src, dst, nodes=nodes)


def describe_weights(model: "torch.nn.Module") -> list[dict]:
    """Per weight (graph order): name, precision, fraction of exact zeros, whether it is 2:4 sparse.
    Call after ``bake()`` (the values that are exported)."""
    from hwnas.models.sparsity import satisfies_nm

    params = dict(model.named_parameters())
    out = []
    for name, mode in model.weight_modes().items():  # type: ignore[operator]
        w = params[name].detach()
        out.append({"weight": name, "precision": mode, "zeros": round(float((w == 0).float().mean()), 6),
                    "nm_2_4": bool(satisfies_nm(w, 2, 4))})
    return out


def verify(path: Path, weights: list[dict]) -> None:
    """Check that the ONNX file holds each weight in its stated precision, with its stated zeros.

    Raises ``CandidateError`` naming the first weight that differs (the metadata must describe the graph)."""
    from onnx import numpy_helper

    from hwnas.errors import CandidateError

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    nbits = {i for n in model.graph.node if n.op_type == "MatMulNBits" for i in n.input}
    expected_type = {"int8": onnx.TensorProto.INT8, "fp16": onnx.TensorProto.FLOAT16}
    for w in weights:
        name, mode = w["weight"], w["precision"]
        if mode == "int4":
            if f"{name}_Q4" not in nbits:
                raise CandidateError(f"{name}: stated int4, but no MatMulNBits reads it")
            continue  # packed 4-bit blocks: zeros are not stored as zeros
        stored = inits.get(f"{name}_quantized" if mode == "int8" else name)
        if stored is None or stored.data_type != expected_type.get(mode, onnx.TensorProto.FLOAT):
            raise CandidateError(f"{name}: stated {mode}, but the graph stores it otherwise")
        values = numpy_helper.to_array(stored)
        zeros = float((values == 0).mean())
        if abs(zeros - w["zeros"]) > 1e-6 and not (mode in ("int8", "fp16") and zeros >= w["zeros"]):
            raise CandidateError(f"{name}: stated {w['zeros']:.3f} zeros, the graph holds {zeros:.3f}")
        distinct = len(np.unique(values))
        if (mode == "ternary" and distinct > 3) or (mode == "binary" and distinct > 2):
            raise CandidateError(f"{name}: stated {mode}, but the graph holds {distinct} distinct values")
