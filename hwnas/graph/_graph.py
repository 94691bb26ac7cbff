"""One ONNX graph, read once: tensors, producers and consumers, constant values, static shapes and types.

:class:`Graph` loads a model (:func:`~hwnas.graph.load_model`: external data included), fixes the symbolic
leading dimension of every data input to ``batch_size`` (any other symbolic dimension is an error), runs ONNX
shape inference with data propagation (so ``Shape → Gather → Concat → Reshape`` chains resolve) and completes
it with a small shape rule of its own for operators ONNX does not know (``com.microsoft`` contrib ops such as
``FusedGemm``, ``QGemm``, ``MatMulNBits``; ``NonZero``, whose size is data-dependent).

Conventions every view of the graph shares:

* a *constant* is an initializer (dense or sparse), a ``Constant`` node, anything computed only from
  constants, or a *weight input*: a graph input that is the B operand of a MatMul-like op with a fully static
  shape (weights supplied at run time; constant for costing, but without a value);
* :meth:`Graph.value` folds constants through ONE table (:data:`_FOLD`): ``Identity``, ``Cast``, ``Neg``,
  ``Transpose``, ``Reshape``, ``Flatten``, ``(Un)Squeeze``, ``MatMul`` and ``DequantizeLinear`` (per tensor,
  per channel along ``axis``, or blocked with ``block_size``: the QDQ graphs of onnxruntime's quantizer);
* a ``NonZero`` over a top-k routing mask (a mixture of experts) selects ``N·k/E`` rows in expectation
  (:meth:`Graph.routing`); any other ``NonZero`` selects every element (its upper bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

from hwnas.errors import ProfileError
from hwnas.validation import check_int
from hwnas.graph._load import ModelLike, load_model, reading

#: Bytes per element by ONNX element type (4-bit types: half a byte).
ITEMSIZE: dict[int, float] = {
    TensorProto.FLOAT: 4, TensorProto.DOUBLE: 8, TensorProto.FLOAT16: 2, TensorProto.BFLOAT16: 2,
    TensorProto.INT8: 1, TensorProto.UINT8: 1, TensorProto.INT16: 2, TensorProto.UINT16: 2,
    TensorProto.INT32: 4, TensorProto.UINT32: 4, TensorProto.INT64: 8, TensorProto.UINT64: 8,
    TensorProto.BOOL: 1,
}
for _name, _size in (("INT4", 0.5), ("UINT4", 0.5), ("FLOAT8E4M3FN", 1), ("FLOAT8E5M2", 1)):
    if hasattr(TensorProto, _name):
        ITEMSIZE[getattr(TensorProto, _name)] = _size
INT4_TYPES = {getattr(TensorProto, n) for n in ("INT4", "UINT4") if hasattr(TensorProto, n)}
INT8_TYPES = {TensorProto.INT8, TensorProto.UINT8}

#: Operand positions (A, B, C) of MatMul-like ops; C is a bias (None: none).
MATMUL_OPERANDS: dict[str, tuple[int, int, int | None]] = {
    "MatMul": (0, 1, None), "FusedMatMul": (0, 1, None), "MatMulInteger": (0, 1, None),
    "MatMulIntegerToFloat": (0, 1, 6), "DynamicQuantizeMatMul": (0, 1, 4), "QLinearMatMul": (0, 3, None),
    "MatMulNBits": (0, 1, 5), "Gemm": (0, 1, 2), "FusedGemm": (0, 1, 2), "QGemm": (0, 3, 6),
}
GEMM_OPS = {"Gemm", "FusedGemm", "QGemm"}
#: Ops that reinterpret a tensor without touching its data.
LAYOUT_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout"}
#: Ops whose output holds the values of their data input, up to layout, type or a quantization round trip.
VALUE_OPS = LAYOUT_OPS | {"Transpose", "Cast", "QuantizeLinear", "DequantizeLinear"}
#: Ops a top-k routing mask passes through between ``Equal(TopK indices, e)`` and ``NonZero``.
_MASK_OPS = {"Cast", "ReduceSum", "ReduceMax", "Greater", "Squeeze", "Unsqueeze", "Or", "Identity"}
#: The largest tensor a graph may declare (petabytes): costs stay exact numbers, and no model is that large.
MAX_ELEMENTS = 10**15
#: The largest tensor hwnas (densifying a sparse initializer) or ONNX Runtime (folding constants) would allocate.
MAX_DENSE_ELEMENTS = 1 << 28
#: Rounds of ONNX shape inference, each after the shapes of operators it does not know were added (hwnas's own
#: graphs, ONNX Runtime's fused ones included, take at most 10).
MAX_INFERENCE_ROUNDS = 64


def attribute(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """The value of attribute ``name`` of ``node`` (``default`` when absent)."""
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


# --------------------------------------------------------------------------------------------- constants


def _sparse_to_dense(sp: onnx.SparseTensorProto) -> np.ndarray:
    size = math.prod(sp.dims)
    if size > MAX_DENSE_ELEMENTS:
        raise ProfileError(f"sparse initializer '{sp.values.name}' of shape {list(sp.dims)} is {size} elements "
                           f"dense, more than the {MAX_DENSE_ELEMENTS} hwnas reads")
    try:
        values = numpy_helper.to_array(sp.values)
        dense = np.zeros(size, dtype=values.dtype)
        idx = numpy_helper.to_array(sp.indices).astype(np.int64)
        if idx.ndim == 2:  # [NNZ, rank] coordinates
            idx = np.ravel_multi_index(tuple(idx.T), tuple(sp.dims))
        dense[idx.reshape(-1)] = values.reshape(-1)
        return dense.reshape(tuple(sp.dims))
    except (ValueError, IndexError, TypeError) as exc:
        raise ProfileError(f"sparse initializer '{sp.values.name}' is malformed: {exc}") from None


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value a ``Constant`` node holds (None for string values)."""
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name == "sparse_value":
            return _sparse_to_dense(a.sparse_tensor)
        if a.name in ("value_float", "value_int", "value_floats", "value_ints"):
            return np.asarray(helper.get_attribute_value(a))
    return None


def _dequantize(node: onnx.NodeProto, v: list[np.ndarray | None]) -> np.ndarray:
    """``(x - zero) * scale``: one scale, one per channel along ``axis``, or one per ``block_size`` block."""
    x, scale = v[0].astype(np.float64), np.asarray(v[1], dtype=np.float64)  # type: ignore[union-attr]
    zero = np.zeros_like(scale) if len(v) < 3 or v[2] is None else np.asarray(v[2], dtype=np.float64)
    if scale.size > 1:
        axis = int(attribute(node, "axis", 1)) % x.ndim
        block = int(attribute(node, "block_size", 0))
        if block:  # the scales have the shape of x with `axis` divided into blocks: repeat them along it
            crop = tuple(slice(0, s) for s in x.shape)
            scale = np.repeat(scale, block, axis=axis)[crop]
            zero = np.repeat(zero, block, axis=axis)[crop] if zero.size > 1 else zero
        else:
            shape = [1] * x.ndim
            shape[axis] = scale.size
            scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (x - zero) * scale


def _reshape(n: onnx.NodeProto, v: list[Any]) -> np.ndarray:
    return v[0].reshape([d if d else v[0].shape[i] for i, d in enumerate(v[1].tolist())])


def _flatten(n: onnx.NodeProto, v: list[Any]) -> np.ndarray:
    return v[0].reshape(int(np.prod(v[0].shape[: int(attribute(n, "axis", 1))])), -1)


def _axes(n: onnx.NodeProto, v: list[Any]) -> list[int] | None:
    """``axes`` of (Un)Squeeze: an input from opset 13, an attribute before."""
    return attribute(n, "axes") if len(v) < 2 or v[1] is None else v[1].tolist()


def _squeeze(n: onnx.NodeProto, v: list[Any]) -> np.ndarray:
    axes = _axes(n, v)
    return np.squeeze(v[0], axis=tuple(axes) if axes is not None else None)


def _unsqueeze(n: onnx.NodeProto, v: list[Any]) -> np.ndarray:
    return np.expand_dims(v[0], axis=tuple(_axes(n, v)))


#: Constant folding of the ops a stored weight passes through on its way to a MatMul (see the module docstring).
_FOLD: dict[str, Callable[[onnx.NodeProto, list[Any]], np.ndarray]] = {
    "Identity": lambda n, v: v[0], "Cast": lambda n, v: v[0], "Neg": lambda n, v: -v[0],
    "Transpose": lambda n, v: np.transpose(v[0], attribute(n, "perm")),
    "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "DequantizeLinear": _dequantize, "MatMul": lambda n, v: np.matmul(v[0], v[1]),
}


# ------------------------------------------------------------------------------------------------- graph


@dataclass(frozen=True)
class Routing:
    """What a ``NonZero`` over a top-k routing mask selects, under balanced routing (see :meth:`Graph.routing`)."""

    rows: int  # the count its static shape is given: max(1, round(expected))
    expected: float  # N·k/E rows
    hit: float  # probability that at least one row is routed here: 1 - (1 - k/E)^N


class Graph:
    """One shape-inferred ONNX graph at ``batch_size`` (see the module docstring for the conventions).

    ``model`` is the loaded ModelProto (batch fixed, ``value_info`` from shape inference), ``nodes`` its nodes
    in graph (topological) order, ``producer``/``consumers`` map tensor names to nodes, ``initializers`` holds
    the stored tensors (sparse ones densified), ``weight_inputs`` and ``constants`` the names described above,
    ``notes`` what reading the graph noticed (e.g. a static batch that differs from ``batch_size``).

    Raises :class:`~hwnas.errors.ProfileError` for unreadable models (:func:`load_model`), control flow,
    symbolic non-batch dimensions, failed shape inference and tensors too large to price (more than
    :data:`MAX_ELEMENTS`) or to fold (a constant computed in the graph of more than :data:`MAX_DENSE_ELEMENTS`,
    which ONNX Runtime would allocate); the message starts with the path when given one.
    """

    def __init__(self, model: ModelLike, batch_size: int = 1) -> None:
        batch_size = check_int(batch_size, "batch_size", low=1, high=1 << 20, error=ProfileError)
        proto = load_model(model)
        with reading(model):
            if any(n.op_type in ("If", "Loop", "Scan") for n in proto.graph.node):
                raise ProfileError("control-flow ops (If/Loop/Scan) are not supported")
            weights = _weight_inputs(proto)
            notes = _fix_batch(proto, batch_size, weights)
            _infer(proto, weights)
            self._index(proto, weights)
            self._check_sizes()
        self.batch_size = batch_size
        self.notes = notes

    def _check_sizes(self) -> None:
        """Refuse tensors too large to price or to fold (see the class docstring), without allocating them."""
        initializers = set(self.initializers)
        for name in [*self.initializers, *self._info]:
            shape = self.shape(name)
            size = math.prod(shape) if shape is not None else 0
            if size > MAX_ELEMENTS:
                raise ProfileError(f"tensor '{name}' of shape {shape} has {size} elements, more than the "
                                   f"{MAX_ELEMENTS:.0e} hwnas prices")
            if size > MAX_DENSE_ELEMENTS and name in self.constants and name not in initializers | self.weight_inputs:
                raise ProfileError(f"tensor '{name}' of shape {shape} is computed from constants alone: a runtime "
                                   f"folds it into a stored constant of {size} elements as it loads the model (at "
                                   f"most {MAX_DENSE_ELEMENTS})")

    @classmethod
    def _indexed(cls, model: onnx.ModelProto, weight_inputs: set[str]) -> Graph:
        """The index of ``model`` as it is: no loading, no batch fixing, no inference (shape inference's probe)."""
        graph = cls.__new__(cls)
        graph._index(model, weight_inputs)
        return graph

    def _index(self, model: onnx.ModelProto, weight_inputs: set[str]) -> None:
        g = model.graph
        self.model = model
        self.nodes = list(g.node)
        self.initializers: dict[str, np.ndarray | onnx.TensorProto] = {t.name: t for t in g.initializer}
        for sp in g.sparse_initializer:
            self.initializers[sp.values.name] = _sparse_to_dense(sp)
        self._info: dict[str, onnx.ValueInfoProto] = {}
        for vi in [*g.output, *g.input, *g.value_info]:  # a static shape wins over a symbolic declaration
            known = self._info.get(vi.name)
            if known is None or not _static(known) or _static(vi):
                self._info[vi.name] = vi
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.weight_inputs = weight_inputs
        self.constants = set(self.initializers) | weight_inputs
        for n in self.nodes:  # topological order: constant iff every input is
            if n.op_type == "Constant" or (n.input and all(not i or i in self.constants for i in n.input)):
                self.constants.update(n.output)
        self._values: dict[str, np.ndarray | None] = {}

    # shapes and types
    def shape(self, name: str) -> list[int] | None:
        """Static shape of tensor ``name`` (None when unknown or symbolic)."""
        if name in self.initializers:
            t = self.initializers[name]
            return list(t.shape) if isinstance(t, np.ndarray) else list(t.dims)
        vi = self._info.get(name)
        if vi is None or not vi.type.tensor_type.HasField("shape"):
            return None
        dims = _dims(vi)
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            return None
        return [int(d) for d in dims]  # type: ignore[arg-type]

    def elem_type(self, name: str) -> int:
        """ONNX element type of tensor ``name`` (``UNDEFINED`` when unknown)."""
        if name in self.initializers:
            t = self.initializers[name]
            return helper.np_dtype_to_tensor_dtype(t.dtype) if isinstance(t, np.ndarray) else t.data_type
        vi = self._info.get(name)
        return vi.type.tensor_type.elem_type if vi is not None else TensorProto.UNDEFINED

    def nbytes(self, name: str) -> float:
        shape = self.shape(name)
        if not name or shape is None:
            return 0.0
        return float(np.prod(shape, dtype=np.float64)) * ITEMSIZE.get(self.elem_type(name), 4)

    def elements(self, name: str) -> int:
        shape = self.shape(name)
        return int(np.prod(shape)) if shape is not None else 0

    # constants
    def value(self, name: str) -> np.ndarray | None:
        """The value of a constant tensor (None for non-constants, weight inputs and ops the table cannot fold)."""
        if not name:
            return None
        if name not in self._values:
            self._values[name] = self._fold(name)
        return self._values[name]

    def _fold(self, name: str) -> np.ndarray | None:
        if name in self.initializers:
            t = self.initializers[name]
            return t if isinstance(t, np.ndarray) else numpy_helper.to_array(t)
        node = self.producer.get(name)
        if node is None or name not in self.constants:
            return None
        if node.op_type == "Constant":
            return _constant_value(node)
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

    # walks
    def source(self, name: str) -> tuple[str, onnx.NodeProto | None]:
        """Follow ``name`` back through value-preserving ops to the tensor that is stored (a QuantizeLinear's
        output is stored: the float before it is not what the runtime reads); also the DequantizeLinear met."""
        dq = None
        for _ in range(32):
            node = self.producer.get(name)
            if node is None or node.op_type not in VALUE_OPS or node.op_type == "QuantizeLinear":
                break
            if node.op_type == "DequantizeLinear":
                dq = dq or node
            name = node.input[0]
        return name, dq

    def follow(self, name: str) -> onnx.NodeProto | None:
        """The first op after ``name`` past value-preserving ops (:data:`VALUE_OPS`), if the path does not branch."""
        while True:
            users = self.consumers.get(name, [])
            if len(users) != 1:
                return None
            node = users[0]
            if node.op_type not in VALUE_OPS or not node.output:
                return node
            name = node.output[0]

    def downstream(self, name: str, stop: Callable[[onnx.NodeProto], bool]) -> list[onnx.NodeProto]:
        """Nodes reachable from ``name`` without crossing a node for which ``stop`` is true."""
        seen: set[int] = set()
        found: list[onnx.NodeProto] = []
        stack = [name]
        while stack:
            for node in self.consumers.get(stack.pop(), []):
                if id(node) in seen or stop(node):
                    continue
                seen.add(id(node))
                found.append(node)
                stack.extend(node.output)
        return found

    def routing(self, node: onnx.NodeProto) -> Routing | None:
        """The routing a ``NonZero`` over a top-k routing mask does, else None.

        The pattern is the one a mixture-of-experts graph has per expert
        (:class:`hwnas.models.ffn.MixtureOfExperts`): ``NonZero(Greater(ReduceSum(Cast(Equal(TopK(logits,
        k).indices, e)))))``. With ``N`` rows and ``E`` routing choices (the last dimension of the TopK input),
        every row picks ``k`` distinct experts, so an expert gets ``N·k/E`` rows under balanced routing, and at
        least one row with probability ``1 - (1 - k/E)^N`` (an expert with no row reads no weights). Routing is
        data-dependent: these are expectations, not bounds."""
        if node.op_type != "NonZero" or not node.input:
            return None
        n_rows = self.elements(node.input[0])
        name = node.input[0]
        for _ in range(16):
            src = self.producer.get(name)
            if src is None:
                return None
            if src.op_type == "Equal":
                tops = [self.producer.get(i) for i in src.input]
                topk = next((t for t, i in zip(tops, src.input) if t is not None and t.op_type == "TopK"
                             and len(t.output) > 1 and t.output[1] == i), None)
                if topk is None:
                    return None
                k = self.value(topk.input[1]) if len(topk.input) > 1 else None
                scores = self.shape(topk.input[0])
                if k is None or scores is None or not n_rows:
                    return None
                share = min(1.0, float(np.asarray(k).reshape(-1)[0]) / scores[int(attribute(topk, "axis", -1))])
                expected = n_rows * share
                return Routing(max(1, int(round(expected))), expected, 1.0 - (1.0 - share) ** n_rows)
            if src.op_type not in _MASK_OPS:
                return None
            name = next((i for i in src.input if i and i not in self.constants), "")
        return None


# -------------------------------------------------------------------------------------------- reading


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
        pos = MATMUL_OPERANDS.get(node.op_type)
        if pos and len(node.input) > pos[1] and node.input[pos[1]] in inputs:
            found.add(node.input[pos[1]])
    return found


def _fix_batch(model: onnx.ModelProto, batch_size: int, weights: set[str]) -> list[str]:
    """Set the symbolic leading dimension of every data input to ``batch_size``; errors on other symbols."""
    notes = []
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


def broadcast(*shapes: list[int]) -> list[int]:
    """The numpy broadcast of ``shapes``."""
    out: list[int] = []
    for dims in zip(*[[1] * (max(map(len, shapes)) - len(s)) + list(s) for s in shapes]):
        out.append(max(dims))
    return out


def _matmul_shape(a: list[int], b: list[int]) -> list[int]:
    a2 = [1, *a] if len(a) == 1 else a
    b2 = [*b, 1] if len(b) == 1 else b
    out = [*broadcast(a2[:-2], b2[:-2]), a2[-2], b2[-1]]
    if len(a) == 1:
        out.pop(-2)
    if len(b) == 1:
        out.pop(-1)
    return out


def fused_matmul_view(node: onnx.NodeProto, a: list[int], b: list[int]) -> tuple[list[int], list[int]]:
    """FusedMatMul operands as plain MatMul operands: ``transBatch*`` moves the leading axis next to the last,
    then ``trans*`` swaps the last two."""
    out = []
    for dims, tb, t in ((a, "transBatchA", "transA"), (b, "transBatchB", "transB")):
        dims = list(dims)
        if attribute(node, tb, 0) and len(dims) > 2:
            dims = [*dims[1:-1], dims[0], dims[-1]]
        if attribute(node, t, 0) and len(dims) > 1:
            dims[-1], dims[-2] = dims[-2], dims[-1]
        out.append(dims)
    return out[0], out[1]


def _contrib_shape(g: Graph, node: onnx.NodeProto) -> tuple[list[int], int] | None:
    """(shape, elem type) of the first output of an op ONNX shape inference does not know (for ``NonZero``,
    whose count is data-dependent: the expected count of a routing mask, else every element)."""
    if node.op_type == "NonZero" and node.input and g.shape(node.input[0]) is not None:
        routed = g.routing(node)
        count = routed.rows if routed else g.elements(node.input[0])
        return [len(g.shape(node.input[0]) or [1]), count], TensorProto.INT64
    ins = [g.shape(i) if i else None for i in node.input]
    pos = MATMUL_OPERANDS.get(node.op_type)
    if pos and ins[pos[0]] is not None:
        a = list(ins[pos[0]])  # type: ignore[arg-type]
        if node.op_type == "MatMulNBits":
            return [*a[:-1], int(attribute(node, "N"))], g.elem_type(node.input[0])
        b = ins[pos[1]]
        if b is None:
            return None
        b = list(b)
        if node.op_type in GEMM_OPS:
            a = a[::-1] if attribute(node, "transA", 0) else a
            b = b[::-1] if attribute(node, "transB", 0) else b
        elif node.op_type == "FusedMatMul":
            a, b = fused_matmul_view(node, a, b)
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


def _infer(model: onnx.ModelProto, weights: set[str]) -> None:
    """Write ``value_info`` from ONNX shape inference into ``model``, completed with :func:`_contrib_shape` for
    the nodes it leaves without a shape, then re-run so that standard ops downstream see the new shapes.

    One round guesses every such node, in graph order, that is not downstream of a shape guessed in the same
    round, or that ONNX does not know (a chain of contrib ops takes one round); a standard op downstream of a
    guess waits for the next round, so that ONNX, not the elementwise guess, gives its shape. When ONNX knows
    every operator (and every constant is dense: it types a sparse one as no tensor), the first round is
    strict: operands that do not fit (a [N, 7] input to a [6, 5] weight) are an error, not a guess."""
    light = _without_weight_data(model)
    strict = not model.graph.sparse_initializer and all(onnx.defs.has(n.op_type, n.domain or "")
                                                         for n in model.graph.node)
    for _ in range(MAX_INFERENCE_ROUNDS):
        try:
            light = shape_inference.infer_shapes(light, strict_mode=strict, data_prop=True)
        except Exception as exc:  # noqa: BLE001 - onnx raises several types
            raise ProfileError(f"ONNX shape inference failed: {' '.join(str(exc).split())}") from None
        strict = False
        guessed = _guess_shapes(Graph._indexed(light, weights))
        if not guessed:
            break
        light.graph.value_info.extend(guessed)
    else:
        raise ProfileError(f"ONNX shape inference did not settle in {MAX_INFERENCE_ROUNDS} rounds of operators it "
                           "does not know")
    del model.graph.value_info[:]
    model.graph.value_info.extend(light.graph.value_info)


def _guess_shapes(g: Graph) -> list[onnx.ValueInfoProto]:
    """One round of :func:`_infer`: the shapes :func:`_contrib_shape` gives the nodes ONNX left without one.

    ``after`` holds the tensors downstream of a shape guessed in this round: a standard op there waits for the
    next round (ONNX may infer it then, from the guessed shape or a value it propagates, e.g. through Shape)."""
    guessed: list[onnx.ValueInfoProto] = []
    after: set[str] = set()
    for n in g.nodes:
        if after.intersection(n.input):
            after.update(n.output)
            if onnx.defs.has(n.op_type, n.domain or ""):
                continue
        if not n.output or n.op_type == "Constant" or g.shape(n.output[0]) is not None:
            continue
        found = _contrib_shape(g, n)
        if found is None:
            continue
        shape, elem = found
        info = helper.make_tensor_value_info(n.output[0], elem or TensorProto.FLOAT, shape)
        g._info[n.output[0]] = info
        guessed.append(info)
        after.update(n.output)
    return guessed
