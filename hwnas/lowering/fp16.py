"""fp16 deployment: fp16 weights and compute, fp32 graph inputs/outputs.

Uses the fp16 converter that ships with onnxruntime (``onnxruntime.transformers.float16``, the same code as
onnxconverter-common): float initializers, constants and activations become float16, a ``Cast`` follows each
graph input and precedes each output (``keep_io_types``), and ops ORT only runs in fp32 (its default block list,
e.g. ``TopK``) are wrapped in Casts. Exact zeros stay zero (only non-zero values below fp16's smallest
subnormal are clamped to it). On the CPU execution provider, ORT itself may run some fp16 nodes through fp32
kernels with inserted casts; the file is still an fp16 model (what an fp16 accelerator would run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import onnx

from hwnas.errors import CandidateError


def _toposort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` topologically (the converter appends its input Casts after their consumers)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        runnable = [n for n in pending if all(i in ready for i in n.input)]
        if not runnable:
            raise ValueError("graph has a cycle or an undefined input")
        for node in runnable:
            ready.update(node.output)
        ordered += runnable
        pending = [n for n in pending if not any(n is r for r in runnable)]
    del graph.node[:]
    graph.node.extend(ordered)


def to_fp16(src: Path, dst: Path, nodes: Sequence[str] | None = None) -> Path:
    """Write an fp16 copy of the fp32 ONNX model ``src`` to ``dst`` (inputs/outputs stay fp32); with ``nodes``,
    only those nodes run in fp16 (Casts around them), the rest stays fp32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        model = onnx.load(str(src))
        keep = None if nodes is None else [n.name for n in model.graph.node if n.name not in set(nodes)]
        model = convert_float_to_float16(model, keep_io_types=True, node_block_list=keep)
        _toposort(model.graph)
        onnx.checker.check_model(model)
        onnx.save(model, str(dst))
    except Exception as exc:
        raise CandidateError(f"fp16 conversion failed: {type(exc).__name__}: {exc}") from exc
    return dst
