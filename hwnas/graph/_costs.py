"""The per-operator cost view of a :class:`~hwnas.graph.Graph`: MACs, FLOPs, bytes moved, weight bytes, compute
dtype, weight sparsity — one :class:`OpCost` per node, in graph order (:func:`graph_costs`).

Conventions:

* MatMul-like ops (``MatMul``, ``Gemm``, ``FusedMatMul``, ``FusedGemm``, ``QLinearMatMul``, ``QGemm``,
  ``MatMulInteger(ToFloat)``, ``DynamicQuantizeMatMul``, ``MatMulNBits``): ``macs = batch·m·k·n``,
  ``flops = 2·macs`` (+ one per output element for a bias, + the activation of a fused epilogue);
* everything else is elementwise-like: ``flops = FLOPS_PER_ELEMENT[op] × elements``; layout ops (Reshape,
  Squeeze, ...) move no data, Transpose/Concat/Gather copy it; ``dims["run"]`` of a broadcasting op or a Q/DQ
  is the number of contiguous elements that share one operand pattern / one scale (``x[256, 11] - mean[11]``:
  11; a per-channel DequantizeLinear along the last axis: 1);
* an op with no rule here (not MatMul-like, not in ``FLOPS_PER_ELEMENT``, ``LAYOUT_OPS`` or ``COPY_OPS``:
  Conv, pooling, ...) has ``known = False`` and is costed as a generic elementwise op (1 FLOP per output
  element): a lower bound that profiles refuse unless told to approximate (``unknown_ops``);
* an operand produced by ``DequantizeLinear`` is read in its quantized type (the runtime reads int8, not the
  dequantized floats), and a MatMul/Gemm whose weight comes from a DequantizeLinear of an int8 (int4) tensor is
  int8 (int4) compute; ``MatMulNBits`` is int4 weight-only; float16/bfloat16 tensors give fp16/bf16;
* a *weight* is a constant operand (:class:`~hwnas.graph.Graph`: initializers, ``Constant``, constant-only
  subgraphs, weight inputs); its exact zeros give ``weight_sparsity`` and the 2:4 check;
* ops downstream of a top-k routing ``NonZero`` (a mixture of experts), up to the ``ScatterElements`` that
  writes the rows back, are costed at the expected fraction of their rows (:meth:`Graph.routing`).

:func:`~hwnas.graph.optimize_with_onnxruntime` returns the graph ONNX Runtime's CPU EP actually executes (fused
Gemm + activation, QGemm, ...); cost it with ``graph_costs(..., qdq_int8=False)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np
import onnx
from onnx import TensorProto

from hwnas.errors import ProfileError
from hwnas.graph._graph import (INT4_TYPES, INT8_TYPES, LAYOUT_OPS, MATMUL_OPERANDS, Graph, Routing, attribute,
                                broadcast, fused_matmul_view)
from hwnas.graph._load import ModelLike, reading

log = logging.getLogger(__name__)

DTYPES = ("fp32", "fp16", "bf16", "int8", "int4")

_INT8_OPS = {"QLinearMatMul", "QGemm", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"}

#: FLOPs per output element of elementwise-like ops (rough operation counts of the usual implementations; the
#: routing ops of a mixture of experts — TopK, NonZero, ScatterElements — 1, as the profiles were calibrated).
FLOPS_PER_ELEMENT: dict[str, float] = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Neg": 1, "Abs": 1, "Max": 1, "Min": 1, "Relu": 1, "Round": 1,
    "Floor": 1, "Ceil": 1, "Sqrt": 1, "Reciprocal": 1, "Pow": 4, "Clip": 2, "LeakyRelu": 2, "PRelu": 2,
    "Where": 1, "Equal": 1, "Less": 1, "Greater": 1, "Not": 1, "And": 1, "Or": 1, "Cast": 1, "Sign": 1,
    "Exp": 4, "Log": 4, "Sigmoid": 4, "HardSigmoid": 3, "HardSwish": 4, "Tanh": 6, "Erf": 8, "Elu": 5,
    "Selu": 6, "Softplus": 6, "Mish": 12, "Gelu": 10, "BiasGelu": 11, "FastGelu": 12, "QuickGelu": 6,
    "Softmax": 5, "LogSoftmax": 6, "LayerNormalization": 8, "SkipLayerNormalization": 9,
    "SimplifiedLayerNormalization": 6, "RMSNormalization": 6, "BatchNormalization": 2, "InstanceNormalization": 8,
    "ReduceMean": 1, "ReduceSum": 1, "ReduceMax": 1, "ArgMax": 1,
    "QuantizeLinear": 4, "DequantizeLinear": 2, "DynamicQuantizeLinear": 6, "BiasAdd": 1,
    "TopK": 1, "NonZero": 1, "ScatterElements": 1,
}
#: Ops that copy data without arithmetic.
COPY_OPS = {"Transpose", "Concat", "Split", "Slice", "Gather", "Expand", "Tile", "Pad", "Pack", "Shape", "Size",
            "Constant", "ConstantOfShape", "Range"}
#: Activations a fused MatMul/Gemm epilogue may carry (FusedGemm/FusedMatMul ``activation`` attribute).
_EPILOGUE_FLOPS = {"Relu": 1, "LeakyRelu": 2, "Sigmoid": 4, "Tanh": 6, "HardSigmoid": 3}
_QUANT_RUN_OPS = {"QuantizeLinear", "DequantizeLinear"}
_REDUCING_OPS = {"Softmax", "LogSoftmax", "LayerNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "ArgMax"}
#: Ops whose output is no longer per routed row (the routed rows are written back into a full tensor).
_UNROUTE_OPS = {"ScatterElements", "ScatterND", "Shape", "Size"}


@dataclass(frozen=True)
class OpCost:
    """The cost of one ONNX node (see the module docstring for the conventions).

    The first eleven fields are the shared interface; ``inputs``/``outputs`` (tensor names), ``constant``
    (every input is a constant: the node can be folded when the model is loaded), ``shape_op`` (it only
    computes a shape: small integer outputs), ``notes`` and ``known`` (False: no cost rule for this op type,
    costed as a generic elementwise op) are extras.
    """

    name: str
    op_type: str
    macs: float
    flops: float
    bytes_read: float
    bytes_written: float
    weight_bytes: float
    dtype: str
    weight_sparsity: float
    sparse_2_4: bool
    dims: dict[str, int]
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    constant: bool = False
    shape_op: bool = False
    notes: str = ""
    known: bool = True

    @property
    def is_matmul(self) -> bool:
        return self.macs > 0


def _dtype_of(elem: int) -> str:
    if elem == TensorProto.FLOAT16:
        return "fp16"
    if elem == TensorProto.BFLOAT16:
        return "bf16"
    if elem in INT8_TYPES:
        return "int8"
    if elem in INT4_TYPES:
        return "int4"
    return "fp32"


def _read_bytes(g: Graph, name: str) -> float:
    """Bytes an op reads for operand ``name``: the quantized tensor when it comes out of a DequantizeLinear."""
    node = g.producer.get(name)
    if node is not None and node.op_type == "DequantizeLinear":
        return g.nbytes(node.input[0])
    return g.nbytes(name)


def _sparsity(w: np.ndarray | None, reduction_axis: int) -> tuple[float, bool]:
    """Fraction of exact zeros, and whether every 4 consecutive values along the reduction axis hold >= 2 zeros."""
    if w is None or w.size == 0:
        return 0.0, False
    zero = np.asarray(w) == 0
    frac = float(zero.mean())
    k = w.shape[reduction_axis] if w.ndim else 0
    if frac < 0.5 or k % 4:
        return frac, False
    groups = np.moveaxis(zero, reduction_axis, -1).reshape(-1, 4)
    return frac, bool(np.all(groups.sum(axis=1) >= 2))


def _weight_value(g: Graph, name: str) -> np.ndarray | None:
    """The weight's values, zeros where the stored (quantized) value equals its zero point."""
    value = g.value(name)
    if value is not None:
        return value
    src, _ = g.source(name)
    return g.value(src) if src in g.initializers else None


def _matmul_cost(g: Graph, node: onnx.NodeProto, name: str, qdq_int8: bool = True) -> OpCost:
    ia, ib, ic = MATMUL_OPERANDS[node.op_type]
    a_name, b_name = node.input[ia], node.input[ib]
    a, b = g.shape(a_name), g.shape(b_name)
    out = g.shape(node.output[0])
    notes = []
    if node.op_type == "MatMulNBits":
        k, n = int(attribute(node, "K")), int(attribute(node, "N"))
        m_rows = int(np.prod(a[:-1])) if a else 1
        batch, m = 1, m_rows
        dtype = "int4" if int(attribute(node, "bits", 4)) <= 4 else "int8"
    else:
        if a is None or b is None:
            raise ProfileError(f"{node.op_type} '{name}': operand shapes unknown after shape inference")
        a2, b2 = (list(a) if len(a) > 1 else [1, *a]), (list(b) if len(b) > 1 else [*b, 1])
        if node.op_type == "FusedMatMul":
            a2, b2 = fused_matmul_view(node, a2, b2)
        elif attribute(node, "transA", 0):
            a2[-1], a2[-2] = a2[-2], a2[-1]
        if node.op_type != "FusedMatMul" and attribute(node, "transB", 0):
            b2[-1], b2[-2] = b2[-2], b2[-1]
        m, k, n = a2[-2], a2[-1], b2[-1]
        batch = int(np.prod(broadcast(a2[:-2], b2[:-2]))) if len(a2) > 2 or len(b2) > 2 else 1
        dtype = _dtype_of(g.elem_type(node.output[0]))
        if node.op_type in _INT8_OPS:
            dtype = "int8"
        elif qdq_int8:
            _, dq = g.source(b_name)
            if dq is None and a_name in g.constants:
                _, dq = g.source(a_name)
            if dq is not None:
                dtype = _dtype_of(g.elem_type(dq.input[0]))
    macs = float(batch) * m * k * n
    out_elems = float(np.prod(out)) if out else float(batch * m * n)
    flops = 2.0 * macs
    if ic is not None and len(node.input) > ic and node.input[ic]:
        flops += out_elems
    act = attribute(node, "activation")
    if act:
        act = act.decode() if isinstance(act, bytes) else str(act)
        flops += _EPILOGUE_FLOPS.get(act, 4) * out_elems
    # the weight: the constant operand (B, else A), read in its stored type
    w_name = b_name if b_name in g.constants else (a_name if a_name in g.constants else "")
    bias = node.input[ic] if ic is not None and len(node.input) > ic and node.input[ic] else ""
    weight_bytes = 0.0
    sparsity, two_four = 0.0, False
    read = (lambda t: _read_bytes(g, t)) if dtype in ("int8", "int4") else g.nbytes
    if node.op_type == "MatMulNBits":
        weight_bytes = sum(g.nbytes(i) for i in node.input[1:4] if i)
        notes.append("MatMulNBits: packed 4-bit weights, sparsity not examined")
    elif w_name:
        weight_bytes = read(w_name)
        w = _weight_value(g, w_name)
        if w is not None and w.ndim >= 2:
            if w_name == b_name:
                axis = -1 if attribute(node, "transB", 0) else -2
            else:
                axis = -2 if attribute(node, "transA", 0) else -1
            sparsity, two_four = _sparsity(w, axis)
        elif w_name in g.weight_inputs:
            notes.append(f"weight '{w_name}' is a graph input: sparsity unknown")
    bytes_read = read(a_name) + (weight_bytes if node.op_type == "MatMulNBits" else read(b_name))
    if bias:
        bytes_read += g.nbytes(bias)
        if bias in g.constants:
            weight_bytes += g.nbytes(bias)
    dims = {"batch": batch, "m": m, "k": k, "n": n}
    return OpCost(
        name, node.op_type, macs, flops, float(bytes_read), float(g.nbytes(node.output[0])), float(weight_bytes),
        dtype, sparsity, two_four, dims,
        tuple(node.input), tuple(node.output), all(i in g.constants for i in node.input if i), False,
        "; ".join(notes),
    )


def _quant_run(g: Graph, node: onnx.NodeProto) -> int:
    """Contiguous elements that share one scale: all of them per tensor, the inner dims per axis (1 when the
    axis is the last one: every neighbour has its own scale)."""
    shape = g.shape(node.input[0]) or []
    total = int(np.prod(shape)) if shape else 1
    scale = g.shape(node.input[1]) if len(node.input) > 1 else None
    if not shape or not scale or int(np.prod(scale)) <= 1:
        return total
    axis = int(attribute(node, "axis", 1)) % len(shape)
    inner = int(np.prod(shape[axis + 1:])) if axis + 1 < len(shape) else 1
    return inner * int(attribute(node, "block_size", 0) or 1)


def _broadcast_run(g: Graph, node: onnx.NodeProto, out: str) -> int:
    """Contiguous output elements over which every operand keeps one access pattern (all its elements, or one
    repeated value): ``x[256, 11] - mean[11]`` runs 11 at a time, ``x + scalar`` or equal shapes run through."""
    shape = g.shape(out)
    if not shape:
        return max(g.elements(out), 1)
    ins = [g.shape(i) for i in node.input if i]
    ins = [s for s in ins if s is not None and int(np.prod(s)) > 1]  # scalars broadcast for free
    patterns = []
    for axis in range(1, len(shape) + 1):
        dims = [(s[-axis] if axis <= len(s) else 1) for s in ins]
        patterns.append(tuple(d == shape[-axis] or shape[-axis] == 1 for d in dims))
    run = 1
    for axis, pattern in enumerate(patterns, start=1):
        if pattern != patterns[0]:
            break
        run *= shape[-axis]
    return max(run, 1)


def _elementwise_cost(g: Graph, node: onnx.NodeProto, name: str) -> OpCost:
    op = node.op_type
    outs = [o for o in node.output if o]
    elements = sum(g.elements(o) for o in outs)
    notes = ""
    known = True
    if op in LAYOUT_OPS:
        flops, read, written = 0.0, 0.0, 0.0
    elif op in COPY_OPS:
        flops = 0.0
        read = sum(g.nbytes(i) for i in node.input[:1] if i)
        written = sum(g.nbytes(o) for o in outs)
    else:
        per = FLOPS_PER_ELEMENT.get(op)
        if per is None:
            per, known = 1.0, False
            notes = f"unknown op type {op}: costed as a generic elementwise op"
            log.info("graph costs: %s '%s': %s", op, name, notes)
        if op in _REDUCING_OPS:
            elements = max(elements, g.elements(node.input[0]))
        flops = per * elements
        read = sum(g.nbytes(i) for i in node.input if i)
        written = sum(g.nbytes(o) for o in outs)
    weight_bytes = sum(g.nbytes(i) for i in node.input if i and i in g.constants and op not in LAYOUT_OPS)
    dtype = _dtype_of(g.elem_type(node.input[0] if op == "QuantizeLinear" else (outs[0] if outs else "")))
    dims = {"elements": int(elements)}
    if op in _QUANT_RUN_OPS:
        dims["run"] = _quant_run(g, node)
    elif flops and len([i for i in node.input if i]) > 1:
        dims["run"] = _broadcast_run(g, node, outs[0] if outs else "")
    shape_op = op in ("Shape", "Size") or bool(outs) and elements <= 64 and all(
        g.elem_type(o) in (TensorProto.INT64, TensorProto.INT32) for o in outs)
    return OpCost(
        name, op, 0.0, float(flops), float(read), float(written), float(weight_bytes), dtype, 0.0, False,
        dims, tuple(node.input), tuple(node.output),
        all(i in g.constants for i in node.input if i), shape_op, notes, known,
    )


def graph_costs(model: ModelLike, batch_size: int = 1, *, qdq_int8: bool = True) -> list[OpCost]:
    """One :class:`OpCost` per node of ``model`` (graph order), with the batch dimension set to ``batch_size``.

    ``qdq_int8``: a plain MatMul/Gemm whose weight comes out of a DequantizeLinear of an int8 (int4) tensor is
    int8 (int4) compute reading the quantized operands (the QDQ contract). False costs it as the float op it is
    in the graph, reading the dequantized floats: right for a graph a runtime has already optimized, where any
    QDQ pattern it could run in int8 was turned into QGemm/QLinearMatMul.

    Raises :class:`~hwnas.errors.ProfileError` for models :class:`~hwnas.graph.Graph` cannot read, or
    MatMul-like ops whose operand shapes cannot be inferred.
    """
    g = Graph(model, batch_size)
    with reading(model):
        return _costs(g, qdq_int8)


def _costs(g: Graph, qdq_int8: bool) -> list[OpCost]:
    costs = []
    routed: dict[str, Routing] = {}  # tensors per routed row → the routing that selected the rows
    for i, node in enumerate(g.nodes):
        name = node.name or (node.output[0] if node.output else f"{node.op_type}_{i}")
        if node.op_type in MATMUL_OPERANDS:
            cost = _matmul_cost(g, node, name, qdq_int8)
        else:
            cost = _elementwise_cost(g, node, name)
        routing = g.routing(node) or next((routed[t] for t in node.input if t in routed), None)
        if routing and node.op_type not in _UNROUTE_OPS:
            routed.update((o, routing) for o in node.output)
            cost = _routed(cost, routing)
        costs.append(cost)
    if g.notes and costs:
        costs[0] = replace(costs[0], notes="; ".join(filter(None, [costs[0].notes, *g.notes])))
    return costs


def _routed(cost: OpCost, r: Routing) -> OpCost:
    """``cost`` of an op on routed rows, in expectation: per-row work (MACs, FLOPs, activation bytes) × expected
    rows / the rows of its static shape; weights read with the probability that any row is routed there."""
    f = r.expected / r.rows
    act_read = max(0.0, cost.bytes_read - cost.weight_bytes)
    note = f"routed rows: {r.expected:.3g} expected (balanced top-k routing), weights read with p={r.hit:.3g}"
    return replace(cost, macs=cost.macs * f, flops=cost.flops * f,
                   bytes_read=act_read * f + cost.weight_bytes * r.hit, bytes_written=cost.bytes_written * f,
                   weight_bytes=cost.weight_bytes * r.hit, notes="; ".join(filter(None, [cost.notes, note])))


def totals(costs: Iterable[OpCost]) -> dict[str, float]:
    """Sums over ops: macs, flops, bytes_read, bytes_written, weight_bytes; and the op count."""
    costs = list(costs)
    out = {k: float(sum(getattr(c, k) for c in costs)) for k in ("macs", "flops", "bytes_read", "bytes_written",
                                                                 "weight_bytes")}
    out["ops"] = float(len(costs))
    return out
