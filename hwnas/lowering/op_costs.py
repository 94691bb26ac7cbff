"""Per-operator costs of any ONNX graph: MACs, FLOPs, bytes moved, weight bytes, compute dtype, weight sparsity.

:func:`graph_costs` fixes the symbolic batch dimension of the graph inputs to ``batch_size``, runs ONNX shape
inference (with data propagation, so ``Shape → Gather → Concat → Reshape`` chains resolve) and, for operators
ONNX does not know (``com.microsoft`` contrib ops such as ``FusedGemm``, ``QGemm``, ``MatMulNBits``), a small
shape rule of its own. It then returns one :class:`OpCost` per node, in graph order.

Conventions:

* MatMul-like ops (``MatMul``, ``Gemm``, ``FusedMatMul``, ``FusedGemm``, ``QLinearMatMul``, ``QGemm``,
  ``MatMulInteger(ToFloat)``, ``DynamicQuantizeMatMul``, ``MatMulNBits``): ``macs = batch·m·k·n``,
  ``flops = 2·macs`` (+ one per output element for a bias, + the activation of a fused epilogue);
* everything else is elementwise-like: ``flops = FLOPS_PER_ELEMENT[op] × elements`` (1 when unknown, with a
  note); layout ops (Reshape, Squeeze, ...) move no data, Transpose/Concat/Gather copy it; ``dims["run"]`` of a
  broadcasting op or a Q/DQ is the number of contiguous elements that share one operand pattern / one scale
  (``x[256, 11] - mean[11]``: 11; a per-channel DequantizeLinear along the last axis: 1);
* an operand produced by ``DequantizeLinear`` is read in its quantized type (the runtime reads int8, not the
  dequantized floats), and a MatMul/Gemm whose weight comes from a DequantizeLinear of an int8 (int4) tensor is
  int8 (int4) compute; ``MatMulNBits`` is int4 weight-only; float16/bfloat16 tensors give fp16/bf16;
* a *weight* is a constant operand: an initializer (dense or sparse), a ``Constant``, anything computed only
  from constants, or a graph input that is the B operand of a MatMul-like op with a fully static shape
  (weights supplied as graph inputs). Its exact zeros give ``weight_sparsity`` and the 2:4 check.

:func:`optimize_with_onnxruntime` returns the graph ONNX Runtime's CPU EP actually executes (fused Gemm +
activation, QGemm, ...); cost it with ``graph_costs(..., qdq_int8=False)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

from hwnas.errors import ProfileError

log = logging.getLogger(__name__)

DTYPES = ("fp32", "fp16", "bf16", "int8", "int4")

_ITEMSIZE = {
    TensorProto.FLOAT: 4, TensorProto.DOUBLE: 8, TensorProto.FLOAT16: 2, TensorProto.BFLOAT16: 2,
    TensorProto.INT8: 1, TensorProto.UINT8: 1, TensorProto.INT16: 2, TensorProto.UINT16: 2,
    TensorProto.INT32: 4, TensorProto.UINT32: 4, TensorProto.INT64: 8, TensorProto.UINT64: 8,
    TensorProto.BOOL: 1,
}
for _name, _size in (("INT4", 0.5), ("UINT4", 0.5), ("FLOAT8E4M3FN", 1), ("FLOAT8E5M2", 1)):
    if hasattr(TensorProto, _name):
        _ITEMSIZE[getattr(TensorProto, _name)] = _size
_INT4_TYPES = {getattr(TensorProto, n) for n in ("INT4", "UINT4") if hasattr(TensorProto, n)}
_INT8_TYPES = {TensorProto.INT8, TensorProto.UINT8}

#: Operand positions (A, B, C) of MatMul-like ops; C is a bias (None: none).
_MATMUL_OPERANDS: dict[str, tuple[int, int, int | None]] = {
    "MatMul": (0, 1, None), "FusedMatMul": (0, 1, None), "MatMulInteger": (0, 1, None),
    "MatMulIntegerToFloat": (0, 1, 6), "DynamicQuantizeMatMul": (0, 1, 4), "QLinearMatMul": (0, 3, None),
    "MatMulNBits": (0, 1, 5), "Gemm": (0, 1, 2), "FusedGemm": (0, 1, 2), "QGemm": (0, 3, 6),
}
_GEMM = {"Gemm", "FusedGemm", "QGemm"}
_INT8_OPS = {"QLinearMatMul", "QGemm", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"}

#: FLOPs per output element of elementwise-like ops (rough operation counts of the usual implementations).
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
}
#: Ops that reinterpret a tensor without touching its data.
LAYOUT_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout"}
#: Ops that copy data without arithmetic.
COPY_OPS = {"Transpose", "Concat", "Split", "Slice", "Gather", "Expand", "Tile", "Pad", "Pack", "Shape", "Size",
            "Constant", "ConstantOfShape", "Range"}
#: Activations a fused MatMul/Gemm epilogue may carry (FusedGemm/FusedMatMul ``activation`` attribute).
_EPILOGUE_FLOPS = {"Relu": 1, "LeakyRelu": 2, "Sigmoid": 4, "Tanh": 6, "HardSigmoid": 3}


@dataclass(frozen=True)
class OpCost:
    """The cost of one ONNX node (see the module docstring for the conventions).

    The first eleven fields are the shared interface; ``inputs``/``outputs`` (tensor names), ``constant``
    (every input is a constant: the node can be folded when the model is loaded), ``shape_op`` (it only
    computes a shape: small integer outputs) and ``notes`` are extras.
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

    @property
    def is_matmul(self) -> bool:
        return self.macs > 0


# ------------------------------------------------------------------------------------------------ loading


def _load(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return copy
    try:
        return onnx.load(str(model))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, OSError, ValidationError, ...
        raise ProfileError(f"cannot read ONNX model {model}: {exc}") from exc


def _dims(vi: onnx.ValueInfoProto) -> list[int | str | None]:
    if not vi.type.tensor_type.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]


def _static(vi: onnx.ValueInfoProto) -> bool:
    return vi.type.tensor_type.HasField("shape") and all(isinstance(d, int) and d > 0 for d in _dims(vi))


def _weight_inputs(model: onnx.ModelProto) -> set[str]:
    """Graph inputs used as the B operand of a MatMul-like op: weights supplied at run time."""
    inits = {t.name for t in model.graph.initializer} | {s.values.name for s in model.graph.sparse_initializer}
    inputs = {v.name for v in model.graph.input if v.name not in inits}
    found = set()
    for node in model.graph.node:
        pos = _MATMUL_OPERANDS.get(node.op_type)
        if pos and len(node.input) > pos[1] and node.input[pos[1]] in inputs:
            found.add(node.input[pos[1]])
    return found


def _fix_batch(model: onnx.ModelProto, batch_size: int) -> list[str]:
    """Set the symbolic leading dimension of every data input to ``batch_size``; errors on other symbols."""
    notes = []
    weights = _weight_inputs(model)
    inits = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        for axis, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if axis == 0 and vi.name not in weights:
                d.Clear()
                d.dim_value = batch_size
                continue
            what = "weight input" if vi.name in weights else "input"
            raise ProfileError(
                f"{what} '{vi.name}' has a symbolic dimension {d.dim_param or '?'!r} at axis {axis}: only the "
                "leading (batch) dimension of data inputs may be symbolic; give the model static shapes"
            )
        if dims and dims[0].dim_value != batch_size and vi.name not in weights:
            notes.append(f"input '{vi.name}' has a static batch of {dims[0].dim_value} (batch_size ignored)")
    return notes


# --------------------------------------------------------------------------------------------- constants


def _sparse_to_dense(sp: onnx.SparseTensorProto) -> np.ndarray:
    values = numpy_helper.to_array(sp.values)
    dense = np.zeros(int(np.prod(sp.dims)), dtype=values.dtype)
    idx = numpy_helper.to_array(sp.indices).astype(np.int64)
    if idx.ndim == 2:  # [NNZ, rank] coordinates
        idx = np.ravel_multi_index(tuple(idx.T), tuple(sp.dims))
    dense[idx.reshape(-1)] = values.reshape(-1)
    return dense.reshape(tuple(sp.dims))


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _dequantize(node: onnx.NodeProto, v: list[np.ndarray | None]) -> np.ndarray:
    x, scale = v[0].astype(np.float64), np.asarray(v[1], dtype=np.float64)  # type: ignore[union-attr]
    zero = np.zeros_like(scale) if len(v) < 3 or v[2] is None else np.asarray(v[2], dtype=np.float64)
    if scale.size > 1 and not _attr(node, "block_size", 0):
        shape = [1] * x.ndim
        shape[int(_attr(node, "axis", 1)) % x.ndim] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    elif scale.size > 1:  # blocked: repeat along the axis
        axis = int(_attr(node, "axis", 1)) % x.ndim
        rep = int(_attr(node, "block_size"))
        scale = np.repeat(scale, rep, axis=axis)[tuple(slice(0, s) for s in x.shape)]
        zero = np.repeat(zero, rep, axis=axis)[tuple(slice(0, s) for s in x.shape)] if zero.size > 1 else zero
    return (x - zero) * scale


def _reshape(n: onnx.NodeProto, v: list[Any]) -> np.ndarray:
    return v[0].reshape([d if d else v[0].shape[i] for i, d in enumerate(v[1].tolist())])


def _flatten(n: onnx.NodeProto, v: list[Any]) -> np.ndarray:
    return v[0].reshape(int(np.prod(v[0].shape[: int(_attr(n, "axis", 1))])), -1)


def _squeeze(n: onnx.NodeProto, v: list[Any]) -> np.ndarray:
    axes = _attr(n, "axes") if len(v) < 2 or v[1] is None else v[1].tolist()
    return np.squeeze(v[0], axis=tuple(axes) if axes is not None else None)


def _unsqueeze(n: onnx.NodeProto, v: list[Any]) -> np.ndarray:
    axes = _attr(n, "axes") if len(v) < 2 or v[1] is None else v[1].tolist()
    return np.expand_dims(v[0], axis=tuple(axes))


#: Constant folding of the ops a stored weight passes through on its way to a MatMul.
_FOLD: dict[str, Callable[[onnx.NodeProto, list[Any]], np.ndarray]] = {
    "Identity": lambda n, v: v[0], "Cast": lambda n, v: v[0], "Neg": lambda n, v: -v[0],
    "Transpose": lambda n, v: np.transpose(v[0], _attr(n, "perm")),
    "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "DequantizeLinear": _dequantize,
}


class _Graph:
    """Tensor metadata (shape, type), producers/consumers and constant values of one shape-inferred graph."""

    def __init__(self, model: onnx.ModelProto, weight_inputs: set[str]) -> None:
        g = model.graph
        self.nodes = list(g.node)
        self.init: dict[str, np.ndarray | onnx.TensorProto] = {t.name: t for t in g.initializer}
        for sp in g.sparse_initializer:
            self.init[sp.values.name] = _sparse_to_dense(sp)
        self.info: dict[str, onnx.ValueInfoProto] = {}
        for vi in [*g.output, *g.input, *g.value_info]:  # a static shape wins over a symbolic declaration
            known = self.info.get(vi.name)
            if known is None or not _static(known) or _static(vi):
                self.info[vi.name] = vi
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.weight_inputs = weight_inputs
        self.const_names = set(self.init) | weight_inputs
        for n in self.nodes:  # topological order: constant iff every input is
            if n.op_type == "Constant" or (n.input and all(not i or i in self.const_names for i in n.input)):
                self.const_names.update(n.output)
        self._values: dict[str, np.ndarray | None] = {}

    # shapes and types
    def shape(self, name: str) -> list[int] | None:
        """Static shape of tensor ``name`` (None when unknown or symbolic)."""
        if name in self.init:
            t = self.init[name]
            return list(t.shape) if isinstance(t, np.ndarray) else list(t.dims)
        vi = self.info.get(name)
        if vi is None or not vi.type.tensor_type.HasField("shape"):
            return None
        dims = _dims(vi)
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            return None
        return [int(d) for d in dims]  # type: ignore[arg-type]

    def elem_type(self, name: str) -> int:
        if name in self.init:
            t = self.init[name]
            if isinstance(t, np.ndarray):
                return helper.np_dtype_to_tensor_dtype(t.dtype)
            return t.data_type
        vi = self.info.get(name)
        return vi.type.tensor_type.elem_type if vi is not None else TensorProto.UNDEFINED

    def nbytes(self, name: str) -> float:
        shape = self.shape(name)
        if not name or shape is None:
            return 0.0
        return float(np.prod(shape, dtype=np.float64)) * _ITEMSIZE.get(self.elem_type(name), 4)

    def elements(self, name: str) -> int:
        shape = self.shape(name)
        return int(np.prod(shape)) if shape is not None else 0

    # constants
    def value(self, name: str) -> np.ndarray | None:
        """The value of a constant tensor (None for weight inputs, unknown folds or non-constants)."""
        if name not in self._values:
            self._values[name] = self._fold(name)
        return self._values[name]

    def _fold(self, name: str) -> np.ndarray | None:
        if name in self.init:
            t = self.init[name]
            return t if isinstance(t, np.ndarray) else numpy_helper.to_array(t)
        node = self.producer.get(name)
        if node is None or name not in self.const_names:
            return None
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
                if a.name in ("value_float", "value_int", "value_floats", "value_ints"):
                    return np.asarray(helper.get_attribute_value(a))
            return None
        fold = _FOLD.get(node.op_type)
        if fold is None:
            return None
        values = [self.value(i) if i else None for i in node.input]
        if values[0] is None or any(v is None for v, i in zip(values, node.input) if i):
            return None
        try:
            return np.asarray(fold(node, values))
        except (ValueError, TypeError, IndexError):
            return None

    def source(self, name: str) -> tuple[str, onnx.NodeProto | None]:
        """Follow ``name`` back through layout ops to the tensor that is stored; also the DequantizeLinear met."""
        dq = None
        seen = 0
        while seen < 32:
            seen += 1
            node = self.producer.get(name)
            if node is None or node.op_type not in (*LAYOUT_OPS, "Transpose", "Cast", "DequantizeLinear"):
                break
            if node.op_type == "DequantizeLinear":
                dq = dq or node
            name = node.input[0]
        return name, dq


# -------------------------------------------------------------------------------------- shape inference


def _broadcast(*shapes: list[int]) -> list[int]:
    out: list[int] = []
    for dims in zip(*[[1] * (max(map(len, shapes)) - len(s)) + list(s) for s in shapes]):
        out.append(max(dims))
    return out


def _matmul_shape(a: list[int], b: list[int]) -> list[int]:
    a2 = [1, *a] if len(a) == 1 else a
    b2 = [*b, 1] if len(b) == 1 else b
    out = [*_broadcast(a2[:-2], b2[:-2]), a2[-2], b2[-1]]
    if len(a) == 1:
        out.pop(-2)
    if len(b) == 1:
        out.pop(-1)
    return out


def _fused_matmul_view(node: onnx.NodeProto, a: list[int], b: list[int]) -> tuple[list[int], list[int]]:
    """FusedMatMul operands as plain MatMul operands: ``transBatch*`` moves the leading axis next to the last,
    then ``trans*`` swaps the last two."""
    out = []
    for dims, tb, t in ((a, "transBatchA", "transA"), (b, "transBatchB", "transB")):
        dims = list(dims)
        if _attr(node, tb, 0) and len(dims) > 2:
            dims = [*dims[1:-1], dims[0], dims[-1]]
        if _attr(node, t, 0) and len(dims) > 1:
            dims[-1], dims[-2] = dims[-2], dims[-1]
        out.append(dims)
    return out[0], out[1]


#: Ops a top-k routing mask passes through between ``Equal(TopK indices, e)`` and ``NonZero``.
_MASK_OPS = {"Cast", "ReduceSum", "ReduceMax", "Greater", "Squeeze", "Unsqueeze", "Or", "Identity"}
#: Ops whose output is no longer per routed row (the routed rows are written back into a full tensor).
_UNROUTE_OPS = {"ScatterElements", "ScatterND", "Shape", "Size"}


@dataclass(frozen=True)
class Routing:
    """What a ``NonZero`` over a top-k routing mask selects, under balanced routing (see :func:`routed_rows`)."""

    rows: int  # the count its static shape is given: max(1, round(expected))
    expected: float  # N·k/E rows
    hit: float  # probability that at least one row is routed here: 1 - (1 - k/E)^N


def routed_rows(g: _Graph, node: onnx.NodeProto) -> Routing | None:
    """The routing a ``NonZero`` over a top-k routing mask does, else None.

    The pattern is the one a mixture-of-experts graph has per expert (:class:`hwnas.models.ffn.MixtureOfExperts`):
    ``NonZero(Greater(ReduceSum(Cast(Equal(TopK(logits, k).indices, e)))))``. With ``N`` rows and ``E`` routing
    choices (the last dimension of the TopK input), every row picks ``k`` distinct experts, so an expert gets
    ``N·k/E`` rows under balanced routing, and at least one row with probability ``1 - (1 - k/E)^N`` (an expert
    with no row reads no weights). Routing is data-dependent: these are expectations, not bounds."""
    if node.op_type != "NonZero" or not node.input:
        return None
    n_rows = g.elements(node.input[0])
    name, seen = node.input[0], 0
    while seen < 16:
        seen += 1
        src = g.producer.get(name)
        if src is None:
            return None
        if src.op_type == "Equal":
            tops = [g.producer.get(i) for i in src.input]
            topk = next((t for t, i in zip(tops, src.input) if t is not None and t.op_type == "TopK"
                         and len(t.output) > 1 and t.output[1] == i), None)
            if topk is None:
                return None
            k = g.value(topk.input[1]) if len(topk.input) > 1 else None
            scores = g.shape(topk.input[0])
            if k is None or scores is None or not n_rows:
                return None
            share = min(1.0, float(np.asarray(k).reshape(-1)[0]) / scores[int(_attr(topk, "axis", -1))])
            expected = n_rows * share
            return Routing(max(1, int(round(expected))), expected, 1.0 - (1.0 - share) ** n_rows)
        if src.op_type not in _MASK_OPS:
            return None
        name = next((i for i in src.input if i and i not in g.const_names), "")


def _contrib_shape(g: _Graph, node: onnx.NodeProto) -> tuple[list[int], int] | None:
    """(shape, elem type) of the first output of an op ONNX shape inference does not know (for ``NonZero``,
    whose count is data-dependent: the expected count of a routing mask, else every element)."""
    if node.op_type == "NonZero" and node.input and g.shape(node.input[0]) is not None:
        routed = routed_rows(g, node)
        count = routed.rows if routed else g.elements(node.input[0])
        return [len(g.shape(node.input[0]) or [1]), count], TensorProto.INT64
    ins = [g.shape(i) if i else None for i in node.input]
    pos = _MATMUL_OPERANDS.get(node.op_type)
    if pos and ins[pos[0]] is not None:
        a = list(ins[pos[0]])  # type: ignore[arg-type]
        if node.op_type == "MatMulNBits":
            return [*a[:-1], int(_attr(node, "N"))], g.elem_type(node.input[0])
        b = ins[pos[1]]
        if b is None:
            return None
        b = list(b)
        if node.op_type in _GEMM:
            a = a[::-1] if _attr(node, "transA", 0) else a
            b = b[::-1] if _attr(node, "transB", 0) else b
        elif node.op_type == "FusedMatMul":
            a, b = _fused_matmul_view(node, a, b)
        if node.op_type in ("QGemm", "QLinearMatMul"):
            zp = node.input[-1] if len(node.input) > (8 if node.op_type == "QGemm" else 7) else ""
            out_type = g.elem_type(zp) if zp else TensorProto.FLOAT
        elif node.op_type == "MatMulInteger":
            out_type = TensorProto.INT32
        elif node.op_type in ("MatMulIntegerToFloat", "DynamicQuantizeMatMul"):
            out_type = g.elem_type(node.input[2])
        else:
            out_type = g.elem_type(node.input[0])
        return _matmul_shape(a, b), out_type
    if node.input and ins[0] is not None:
        return list(ins[0]), g.elem_type(node.input[0])  # elementwise-like: the shape of the data input
    return None


_DATA_FIELDS = ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")


def _without_weight_data(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose large initializers keep their shape but drop their values (shape inference needs only the
    small integer constants), so that repeated inference does not copy the weights."""
    light = onnx.ModelProto()
    light.CopyFrom(model)
    for t in light.graph.initializer:
        if int(np.prod(t.dims)) > 64:
            for name in _DATA_FIELDS:
                t.ClearField(name)
    return light


def _infer(model: onnx.ModelProto, weights: set[str]) -> onnx.ModelProto:
    """``model`` with value_info from ONNX shape inference, completed with :func:`_contrib_shape` for unknown
    ops (one at a time, re-running ONNX inference so that standard ops downstream see the new shape)."""
    light = _without_weight_data(model)
    for _ in range(len(model.graph.node) + 1):
        try:
            light = shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
        except Exception as exc:  # noqa: BLE001 - onnx raises several types
            raise ProfileError(f"ONNX shape inference failed: {exc}") from exc
        g = _Graph(light, weights)
        node = next((n for n in g.nodes if n.output and n.op_type != "Constant" and g.shape(n.output[0]) is None
                     and _contrib_shape(g, n) is not None), None)
        if node is None:
            break
        shape, elem = _contrib_shape(g, node)  # type: ignore[misc]
        light.graph.value_info.append(helper.make_tensor_value_info(node.output[0], elem or TensorProto.FLOAT, shape))
    del model.graph.value_info[:]
    model.graph.value_info.extend(light.graph.value_info)
    return model


# ------------------------------------------------------------------------------------------------- costs


def _dtype_of(elem: int) -> str:
    if elem == TensorProto.FLOAT16:
        return "fp16"
    if elem == TensorProto.BFLOAT16:
        return "bf16"
    if elem in _INT8_TYPES:
        return "int8"
    if elem in _INT4_TYPES:
        return "int4"
    return "fp32"


def _read_bytes(g: _Graph, name: str) -> float:
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


def _weight_value(g: _Graph, name: str) -> np.ndarray | None:
    """The weight's values, zeros where the stored (quantized) value equals its zero point."""
    value = g.value(name)
    if value is not None:
        return value
    src, _ = g.source(name)
    return g.value(src) if src in g.init else None


def _matmul_cost(g: _Graph, node: onnx.NodeProto, name: str, qdq_int8: bool = True) -> OpCost:
    ia, ib, ic = _MATMUL_OPERANDS[node.op_type]
    a_name, b_name = node.input[ia], node.input[ib]
    a, b = g.shape(a_name), g.shape(b_name)
    out = g.shape(node.output[0])
    notes = []
    if node.op_type == "MatMulNBits":
        k, n = int(_attr(node, "K")), int(_attr(node, "N"))
        m_rows = int(np.prod(a[:-1])) if a else 1
        batch, m = 1, m_rows
        dtype = "int4" if int(_attr(node, "bits", 4)) <= 4 else "int8"
    else:
        if a is None or b is None:
            raise ProfileError(f"{node.op_type} '{name}': operand shapes unknown after shape inference")
        a2, b2 = (list(a) if len(a) > 1 else [1, *a]), (list(b) if len(b) > 1 else [*b, 1])
        if node.op_type == "FusedMatMul":
            a2, b2 = _fused_matmul_view(node, a2, b2)
        elif _attr(node, "transA", 0):
            a2[-1], a2[-2] = a2[-2], a2[-1]
        if node.op_type != "FusedMatMul" and _attr(node, "transB", 0):
            b2[-1], b2[-2] = b2[-2], b2[-1]
        m, k, n = a2[-2], a2[-1], b2[-1]
        batch = int(np.prod(_broadcast(a2[:-2], b2[:-2]))) if len(a2) > 2 or len(b2) > 2 else 1
        dtype = _dtype_of(g.elem_type(node.output[0]))
        if node.op_type in _INT8_OPS:
            dtype = "int8"
        elif qdq_int8:
            _, dq = g.source(b_name)
            if dq is None and a_name in g.const_names:
                _, dq = g.source(a_name)
            if dq is not None:
                dtype = _dtype_of(g.elem_type(dq.input[0]))
    macs = float(batch) * m * k * n
    out_elems = float(np.prod(out)) if out else float(batch * m * n)
    flops = 2.0 * macs
    if ic is not None and len(node.input) > ic and node.input[ic]:
        flops += out_elems
    act = _attr(node, "activation")
    if act:
        act = act.decode() if isinstance(act, bytes) else str(act)
        flops += _EPILOGUE_FLOPS.get(act, 4) * out_elems
    # the weight: the constant operand (B, else A), read in its stored type
    w_name = b_name if b_name in g.const_names else (a_name if a_name in g.const_names else "")
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
                axis = -1 if _attr(node, "transB", 0) else -2
            else:
                axis = -2 if _attr(node, "transA", 0) else -1
            sparsity, two_four = _sparsity(w, axis)
        elif w_name in g.weight_inputs:
            notes.append(f"weight '{w_name}' is a graph input: sparsity unknown")
    bytes_read = read(a_name) + (weight_bytes if node.op_type == "MatMulNBits" else read(b_name))
    if bias:
        bytes_read += g.nbytes(bias)
        if bias in g.const_names:
            weight_bytes += g.nbytes(bias)
    dims = {"batch": batch, "m": m, "k": k, "n": n}
    return OpCost(
        name, node.op_type, macs, flops, float(bytes_read), float(g.nbytes(node.output[0])), float(weight_bytes),
        dtype, sparsity, two_four, dims,
        tuple(node.input), tuple(node.output), all(i in g.const_names for i in node.input if i), False,
        "; ".join(notes),
    )


_QUANT_RUN_OPS = {"QuantizeLinear", "DequantizeLinear"}


def _quant_run(g: _Graph, node: onnx.NodeProto) -> int:
    """Contiguous elements that share one scale: all of them per tensor, the inner dims per axis (1 when the
    axis is the last one: every neighbour has its own scale)."""
    shape = g.shape(node.input[0]) or []
    total = int(np.prod(shape)) if shape else 1
    scale = g.shape(node.input[1]) if len(node.input) > 1 else None
    if not shape or not scale or int(np.prod(scale)) <= 1:
        return total
    axis = int(_attr(node, "axis", 1)) % len(shape)
    inner = int(np.prod(shape[axis + 1:])) if axis + 1 < len(shape) else 1
    return inner * int(_attr(node, "block_size", 0) or 1)


def _broadcast_run(g: _Graph, node: onnx.NodeProto, out: str) -> int:
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


def _elementwise_cost(g: _Graph, node: onnx.NodeProto, name: str) -> OpCost:
    op = node.op_type
    outs = [o for o in node.output if o]
    elements = sum(g.elements(o) for o in outs)
    notes = ""
    if op in LAYOUT_OPS:
        flops, read, written = 0.0, 0.0, 0.0
    elif op in COPY_OPS:
        flops = 0.0
        read = sum(g.nbytes(i) for i in node.input[:1] if i)
        written = sum(g.nbytes(o) for o in outs)
    else:
        per = FLOPS_PER_ELEMENT.get(op)
        if per is None:
            per = 1.0
            notes = f"unknown op type {op}: costed as a generic elementwise op"
            log.info("op_costs: %s '%s': %s", op, name, notes)
        if op in ("Softmax", "LogSoftmax", "LayerNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "ArgMax"):
            elements = max(elements, g.elements(node.input[0]))
        flops = per * elements
        read = sum(g.nbytes(i) for i in node.input if i)
        written = sum(g.nbytes(o) for o in outs)
    weight_bytes = sum(g.nbytes(i) for i in node.input if i and i in g.const_names and op not in LAYOUT_OPS)
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
        all(i in g.const_names for i in node.input if i), shape_op, notes,
    )


def graph_costs(model: onnx.ModelProto | str | Path, batch_size: int = 1, *, qdq_int8: bool = True) -> list[OpCost]:
    """One :class:`OpCost` per node of ``model`` (graph order), with the batch dimension set to ``batch_size``.

    ``qdq_int8``: a plain MatMul/Gemm whose weight comes out of a DequantizeLinear of an int8 (int4) tensor is
    int8 (int4) compute reading the quantized operands (the QDQ contract). False costs it as the float op it is
    in the graph, reading the dequantized floats: right for a graph a runtime has already optimized, where any
    QDQ pattern it could run in int8 was turned into QGemm/QLinearMatMul.

    Raises :class:`~hwnas.errors.ProfileError` for unreadable models, symbolic non-batch dimensions, or
    MatMul-like ops whose operand shapes cannot be inferred.
    """
    if batch_size < 1:
        raise ProfileError(f"batch_size must be >= 1, got {batch_size}")
    proto = _load(model)
    if any(n.op_type in ("If", "Loop", "Scan") for n in proto.graph.node):
        raise ProfileError("control-flow ops (If/Loop/Scan) are not supported by op_costs")
    weights = _weight_inputs(proto)
    notes = _fix_batch(proto, batch_size)
    proto = _infer(proto, weights)
    g = _Graph(proto, weights)
    costs = []
    routed: dict[str, Routing] = {}  # tensors per routed row → the routing that selected the rows
    for i, node in enumerate(g.nodes):
        name = node.name or (node.output[0] if node.output else f"{node.op_type}_{i}")
        if node.op_type in _MATMUL_OPERANDS:
            cost = _matmul_cost(g, node, name, qdq_int8)
        else:
            cost = _elementwise_cost(g, node, name)
        routing = routed_rows(g, node) or next((routed[t] for t in node.input if t in routed), None)
        if routing and node.op_type not in _UNROUTE_OPS:
            routed.update((o, routing) for o in node.output)
            cost = _routed(cost, routing)
        costs.append(cost)
    if notes and costs:
        first = costs[0]
        costs[0] = OpCost(**{**first.__dict__, "notes": "; ".join(filter(None, [first.notes, *notes]))})
    return costs


def _routed(cost: OpCost, r: Routing) -> OpCost:
    """``cost`` of an op on routed rows, in expectation: per-row work (MACs, FLOPs, activation bytes) × expected
    rows / the rows of its static shape; weights read with the probability that any row is routed there."""
    f = r.expected / r.rows
    act_read = max(0.0, cost.bytes_read - cost.weight_bytes)
    note = f"routed rows: {r.expected:.3g} expected (balanced top-k routing), weights read with p={r.hit:.3g}"
    return OpCost(**{**cost.__dict__, "macs": cost.macs * f, "flops": cost.flops * f,
                     "bytes_read": act_read * f + cost.weight_bytes * r.hit, "bytes_written": cost.bytes_written * f,
                     "weight_bytes": cost.weight_bytes * r.hit, "notes": "; ".join(filter(None, [cost.notes, note]))})


def totals(costs: Iterable[OpCost]) -> dict[str, float]:
    """Sums over ops: macs, flops, bytes_read, bytes_written, weight_bytes; and the op count."""
    costs = list(costs)
    out = {k: float(sum(getattr(c, k) for c in costs)) for k in ("macs", "flops", "bytes_read", "bytes_written",
                                                                 "weight_bytes")}
    out["ops"] = float(len(costs))
    return out


def optimize_with_onnxruntime(model: onnx.ModelProto | str | Path, level: str = "extended") -> onnx.ModelProto:
    """The graph ONNX Runtime's CPU execution provider runs: its graph optimizations (MatMul+Add → Gemm,
    Gemm+activation → FusedGemm, GELU/SiLU pattern fusion, QDQ → QGemm/QLinearMatMul, ...) applied and saved.

    ``level`` is ``basic`` or ``extended`` (``all`` adds only hardware-specific layout transforms).
    """
    import tempfile

    import onnxruntime as ort

    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}
    if level not in levels:
        raise ProfileError(f"optimize_with_onnxruntime: level must be one of {sorted(levels)}, got {level!r}")
    with tempfile.TemporaryDirectory(prefix="hwnas-ortopt-") as tmp:
        src = Path(tmp) / "in.onnx"
        if isinstance(model, onnx.ModelProto):
            onnx.save(model, str(src))
        else:
            src = Path(model)
        dst = Path(tmp) / "opt.onnx"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = levels[level]
        opts.optimized_model_filepath = str(dst)
        opts.log_severity_level = 3
        opts.intra_op_num_threads = 1
        try:
            ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise ProfileError(f"onnxruntime cannot optimize the model: {exc}") from exc
        return onnx.load(str(dst))
