"""Reading the linear layers of an exported ONNX classifier (reusable by every profile that costs weights).

:func:`linear_layers` walks the graph in node order (ONNX graphs are topologically sorted) and returns each
linear operator (``Gemm``, ``MatMul``) with its constant weight as a float array shaped ``[fan_in, fan_out]``
(or ``[groups, fan_in, fan_out]`` for the batched MatMul of a block-diagonal layer), the bias of a following
``Add`` and the activation that follows. Constants are resolved through initializers, ``Constant`` nodes and
constant-only chains of ``Identity``/``Cast``/``Transpose``/``Reshape``/``(Un)Squeeze``/``Flatten``/``Neg`` and
``DequantizeLinear`` (QDQ graphs from onnxruntime's quantizer; per-tensor or per-channel). Ops between layers
(input normalisation, activations, reshapes, Q/DQ pairs on activations) are skipped for the topology.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from hwnas.errors import ProfileError

#: Ops that carry a layer's output unchanged in value (layout or Q/DQ round trips) on the way to its bias Add.
_PASS_THROUGH = {"Identity", "Cast", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten",
                 "QuantizeLinear", "DequantizeLinear"}
_LINEAR = {"Gemm", "MatMul"}
#: Linear-algebra ops this reader cannot turn into a weight matrix.
_UNSUPPORTED = {"Conv", "ConvTranspose", "ConvInteger", "MatMulInteger", "QLinearMatMul", "QLinearConv",
                "QGemm", "Einsum", "MatMulNBits"}
#: Activation names by the op that reveals them (Erf: GELU exported as its erf formula; Sigmoid+Mul: SiLU).
_ACTIVATION_OPS = {"Relu": "relu", "Gelu": "gelu", "Erf": "gelu", "Sigmoid": "sigmoid", "HardSigmoid": "sigmoid",
                   "Tanh": "tanh", "LeakyRelu": "leaky_relu", "Elu": "elu", "Selu": "selu", "Softplus": "softplus",
                   "Clip": "clip", "Softmax": "softmax", "LogSoftmax": "softmax", "HardSwish": "silu"}


@dataclass(frozen=True)
class LinearLayer:
    """One linear operator: ``y = x @ weight (+ bias)``, then ``activation`` (None: nothing or unknown ops).

    ``weight`` is ``[fan_in, fan_out]``, or ``[groups, fan_in/groups, fan_out/groups]`` for a block-diagonal
    layer (input block ``g`` feeds output block ``g``); ``bias`` is flat ``[fan_out]``.
    """

    name: str
    op_type: str
    weight: np.ndarray
    bias: np.ndarray | None = None
    activation: str | None = None

    @property
    def groups(self) -> int:
        return self.weight.shape[0] if self.weight.ndim == 3 else 1

    @property
    def fan_in(self) -> int:
        return self.groups * self.weight.shape[-2]

    @property
    def fan_out(self) -> int:
        return self.groups * self.weight.shape[-1]

    def dense(self) -> np.ndarray:
        """The weight as one ``[fan_in, fan_out]`` matrix (block-diagonal layers get their zero blocks)."""
        if self.weight.ndim == 2:
            return self.weight
        g, i, o = self.weight.shape
        out = np.zeros((g * i, g * o), dtype=self.weight.dtype)
        for b in range(g):
            out[b * i:(b + 1) * i, b * o:(b + 1) * o] = self.weight[b]
        return out


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _dequantize(node: onnx.NodeProto, x: np.ndarray, scale: np.ndarray, zero: np.ndarray | None) -> np.ndarray:
    if _attr(node, "block_size", 0):
        raise ProfileError(f"DequantizeLinear '{node.name}': blocked quantization is not supported")
    x = x.astype(np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    zero = np.zeros_like(scale) if zero is None else np.asarray(zero, dtype=np.float64)
    if scale.size > 1:  # per-channel along `axis`
        axis = int(_attr(node, "axis", 1)) % x.ndim  # type: ignore[arg-type]
        shape = [1] * x.ndim
        shape[axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (x - zero) * scale


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray:
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name in ("value_float", "value_int", "value_floats", "value_ints"):
            return np.asarray(onnx.helper.get_attribute_value(a))
    raise ProfileError(f"Constant node '{node.name}': unsupported value attribute")


_FOLD: dict[str, Callable[[onnx.NodeProto, list[np.ndarray | None]], np.ndarray]] = {
    "Identity": lambda n, v: v[0],
    "Cast": lambda n, v: v[0],
    "Neg": lambda n, v: -v[0],
    "Transpose": lambda n, v: np.transpose(v[0], _attr(n, "perm")),  # type: ignore[arg-type]
    "Reshape": lambda n, v: v[0].reshape([d if d else v[0].shape[i] for i, d in enumerate(v[1].tolist())]),
    "Flatten": lambda n, v: v[0].reshape(int(np.prod(v[0].shape[: int(_attr(n, "axis", 1))])), -1),  # type: ignore[call-overload]
    "Squeeze": lambda n, v: np.squeeze(v[0], axis=tuple(v[1].tolist()) if len(v) > 1 and v[1] is not None else None),
    "Unsqueeze": lambda n, v: np.expand_dims(v[0], axis=tuple(v[1].tolist())),
    "DequantizeLinear": lambda n, v: _dequantize(n, v[0], v[1], v[2] if len(v) > 2 else None),
    "MatMul": lambda n, v: np.matmul(v[0], v[1]),
}


class _Graph:
    """Producers, consumers and a memoised constant folder over one ONNX graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.nodes = list(graph.node)
        self.initializers = {t.name: t for t in graph.initializer}
        self.producer = {out: n for n in self.nodes for out in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for n in self.nodes:
            for name in n.input:
                self.consumers[name].append(n)
        self._cache: dict[str, np.ndarray | None] = {}

    def const(self, name: str) -> np.ndarray | None:
        """The value of tensor ``name`` if it is a constant of the graph, else None."""
        if not name:
            return None
        if name not in self._cache:
            self._cache[name] = self._fold(name)
        return self._cache[name]

    def _fold(self, name: str) -> np.ndarray | None:
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is None:
            return None  # a graph input
        if node.op_type == "Constant":
            return _constant_node_value(node)
        if node.op_type not in _FOLD:
            return None
        values = [self.const(i) if i else None for i in node.input]
        if values[0] is None or any(v is None for v, i in zip(values, node.input) if i):
            return None
        return _FOLD[node.op_type](node, values)

    def follow(self, name: str) -> onnx.NodeProto | None:
        """The first op after ``name`` past value-preserving ops, if the path does not branch."""
        while True:
            users = self.consumers.get(name, [])
            if len(users) != 1:
                return None
            node = users[0]
            if node.op_type not in _PASS_THROUGH or not node.output:
                return node
            name = node.output[0]

    def downstream(self, name: str) -> list[onnx.NodeProto]:
        """Nodes reachable from ``name`` without crossing a linear operator."""
        seen: set[int] = set()
        found: list[onnx.NodeProto] = []
        stack = [name]
        while stack:
            for node in self.consumers.get(stack.pop(), []):
                if id(node) in seen or (node.op_type in _LINEAR and self._is_layer(node)):
                    continue
                seen.add(id(node))
                found.append(node)
                stack.extend(node.output)
        return found

    def clips_at_zero(self, node: onnx.NodeProto) -> bool:
        """A QuantizeLinear to an unsigned type with zero point 0: the quantizer's fused ReLU."""
        if node.op_type != "QuantizeLinear":
            return False
        zero = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(1, np.uint8)
        return zero is not None and zero.dtype.kind == "u" and not np.any(zero)

    def _is_layer(self, node: onnx.NodeProto) -> bool:
        values = [self.const(i) for i in node.input[:2]]
        return sum(v is not None for v in values) < 2


def _activation(graph: _Graph, nodes: list[onnx.NodeProto]) -> str | None:
    """The activation among ``nodes`` (the ops between two layers), None if there is none."""
    ops = [n.op_type for n in nodes]
    names = [_ACTIVATION_OPS[o] for o in ops if o in _ACTIVATION_OPS]
    if any(graph.clips_at_zero(n) for n in nodes):
        names.append("relu")  # onnxruntime's QDQ quantizer folds Relu into an unsigned zero-point-0 Q
    if not names:
        return None
    if "sigmoid" in names and "Mul" in ops:
        return "silu"
    return "relu" if "relu" in names else names[0]


def _weight_of(graph: _Graph, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray | None]:
    """``(weight [.., fan_in, fan_out], gemm_bias)`` of one linear node; raises if the weight is not constant."""
    a, b = (graph.const(i) for i in node.input[:2])
    label = f"{node.op_type} '{node.name or node.output[0]}'"
    if a is None and b is None:
        raise ProfileError(
            f"{label}: neither operand is a constant (inputs {list(node.input[:2])}); only layers with "
            f"constant (hard-wired) weights can be costed"
        )
    bias = None
    if node.op_type == "Gemm":
        trans_a, trans_b = int(_attr(node, "transA", 0)), int(_attr(node, "transB", 0))  # type: ignore[arg-type]
        alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))  # type: ignore[arg-type]
        if b is not None:
            weight = (b.T if trans_b else b) * alpha
        else:  # y = W' @ x': weight on the left
            weight = (a.T if trans_a else a).T * alpha  # type: ignore[union-attr]
        c = graph.const(node.input[2]) if len(node.input) > 2 else None
        if len(node.input) > 2 and node.input[2] and c is None:
            raise ProfileError(f"{label}: bias input '{node.input[2]}' is not a constant")
        if c is not None:
            bias = np.broadcast_to(np.asarray(c, dtype=np.float64) * beta, (weight.shape[-1],)).copy()
    else:
        weight = b if b is not None else np.swapaxes(a, -1, -2)  # type: ignore[arg-type]
    if weight.ndim not in (2, 3):
        raise ProfileError(f"{label}: weight of shape {list(weight.shape)} is neither 2-D nor 3-D (grouped)")
    return np.asarray(weight, dtype=np.float64), bias


def _bias_after(graph: _Graph, node: onnx.NodeProto, fan_out: int) -> np.ndarray | None:
    nxt = graph.follow(node.output[0])
    if nxt is None or nxt.op_type != "Add":
        return None
    values = [graph.const(i) for i in nxt.input]
    const = next((v for v in values if v is not None), None)
    if const is None or const.size not in (1, fan_out):
        return None
    return np.broadcast_to(np.asarray(const, dtype=np.float64).reshape(-1), (fan_out,)).copy()


def linear_layers(model: onnx.ModelProto) -> list[LinearLayer]:
    """Every linear operator of ``model`` in topological order, with constant weight, bias and activation.

    Raises :class:`~hwnas.errors.ProfileError` for a linear op whose weight is not a constant, or for ops
    whose weights this reader cannot interpret (Conv, QLinearMatMul, ...).
    """
    graph = _Graph(model)
    layers: list[LinearLayer] = []
    for node in graph.nodes:
        if node.op_type in _UNSUPPORTED:
            raise ProfileError(f"{node.op_type} '{node.name}': operator not supported for costing linear layers")
        if node.op_type not in _LINEAR or not graph._is_layer(node):
            continue
        weight, bias = _weight_of(graph, node)
        fan_out = weight.shape[0] * weight.shape[-1] if weight.ndim == 3 else weight.shape[-1]
        if bias is None:
            bias = _bias_after(graph, node, fan_out)
        activation = _activation(graph, graph.downstream(node.output[0]))
        layers.append(LinearLayer(node.name or node.output[0], node.op_type, weight, bias, activation))
    return layers


def _last_dim(value_info: onnx.ValueInfoProto) -> int | None:
    dims = value_info.type.tensor_type.shape.dim
    return int(dims[-1].dim_value) if dims and dims[-1].HasField("dim_value") else None


def io_sizes(model: onnx.ModelProto) -> tuple[int | None, int | None]:
    """``(features, classes)``: last dimension of the first graph input and output (None if not static)."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in inits]
    features = _last_dim(inputs[0]) if inputs else None
    classes = _last_dim(model.graph.output[0]) if model.graph.output else None
    return features, classes
