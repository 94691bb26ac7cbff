"""fp16 deployment: fp16 weights and compute, fp32 graph inputs/outputs.

Uses the fp16 converter that ships with onnxruntime (``onnxruntime.transformers.float16``, the same code as
onnxconverter-common): float initializers, constants and activations become float16, a ``Cast`` follows each
graph input and precedes each output (``keep_io_types``), and ops ORT only runs in fp32 (its default block list,
e.g. ``TopK``) are wrapped in Casts. Exact zeros stay zero (only non-zero values below fp16's smallest
subnormal are clamped to it). On the CPU execution provider, ORT itself may run some fp16 nodes through fp32
kernels with inserted casts; the file is still an fp16 model (what an fp16 accelerator would run).
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Sequence

import onnx

from hwnas.errors import CandidateError


def _toposort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` topologically, keeping the original order wherever the data flow allows (the
    converter appends its input Casts after their consumers). Kahn's algorithm: linear in the graph, where the
    repeated sweeps of a naive sort took seconds on a 60-layer MLP."""
    nodes = list(graph.node)
    producer = {out: i for i, n in enumerate(nodes) for out in n.output if out}
    waiting = [0] * len(nodes)
    users: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        deps = {producer[name] for name in n.input if name in producer}
        waiting[i] = len(deps)
        for d in deps:
            users.setdefault(d, []).append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for u in users.get(i, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        raise ValueError("graph has a cycle")
    del graph.node[:]
    graph.node.extend(order)


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
