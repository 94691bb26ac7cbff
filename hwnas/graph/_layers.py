"""The linear-layer view of a :class:`~hwnas.graph.Graph`: the layers of an MLP-style classifier, for every
profile that costs weights (:func:`linear_layers`).

The graph is walked in node order (ONNX graphs are topologically sorted); each linear operator (``Gemm``,
``MatMul``) with a constant weight is returned with that weight as a float array shaped ``[fan_in, fan_out]``
(or ``[groups, fan_in, fan_out]`` for the batched MatMul of a block-diagonal layer), the bias of a following
``Add`` and the activation that follows. Weights are the graph's folded constants (:meth:`Graph.value`:
initializers, ``Constant`` nodes, layout chains, ``DequantizeLinear`` per tensor / per channel / blocked). Ops
between layers (input normalisation, activations, reshapes, Q/DQ pairs on activations) are skipped for the
topology.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from hwnas.errors import ProfileError
from hwnas.graph._graph import Graph, attribute
from hwnas.graph._load import ModelLike, reading

_LINEAR = {"Gemm", "MatMul"}
#: Linear-algebra ops this reader cannot turn into a weight matrix.
_UNSUPPORTED = {"Conv", "ConvTranspose", "ConvInteger", "MatMulInteger", "QLinearMatMul", "QLinearConv",
                "QGemm", "Einsum", "MatMulNBits"}
#: Activation names by the op that reveals them (Erf: GELU exported as its erf formula; Sigmoid+Mul: SiLU).
ACTIVATION_OPS = {"Relu": "relu", "Gelu": "gelu", "Erf": "gelu", "Sigmoid": "sigmoid", "HardSigmoid": "sigmoid",
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


def _graph(model: Graph | ModelLike) -> Graph:
    return model if isinstance(model, Graph) else Graph(model)


def _is_layer(graph: Graph, node: onnx.NodeProto) -> bool:
    """A linear op that is not a fold of two constants."""
    return node.op_type in _LINEAR and sum(graph.value(i) is not None for i in node.input[:2]) < 2


def _clips_at_zero(graph: Graph, node: onnx.NodeProto) -> bool:
    """A QuantizeLinear to an unsigned type with zero point 0: the quantizer's fused ReLU."""
    if node.op_type != "QuantizeLinear":
        return False
    zero = graph.value(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(1, np.uint8)
    return zero is not None and zero.dtype.kind == "u" and not np.any(zero)


def _activation(graph: Graph, nodes: list[onnx.NodeProto]) -> str | None:
    """The activation among ``nodes`` (the ops between two layers), None if there is none."""
    ops = [n.op_type for n in nodes]
    names = [ACTIVATION_OPS[o] for o in ops if o in ACTIVATION_OPS]
    if any(_clips_at_zero(graph, n) for n in nodes):
        names.append("relu")  # onnxruntime's QDQ quantizer folds Relu into an unsigned zero-point-0 Q
    if not names:
        return None
    if "sigmoid" in names and "Mul" in ops:
        return "silu"
    return "relu" if "relu" in names else names[0]


def _weight_of(graph: Graph, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray | None]:
    """``(weight [.., fan_in, fan_out], gemm_bias)`` of one linear node; raises if the weight is not constant."""
    a, b = (graph.value(i) for i in node.input[:2])
    label = f"{node.op_type} '{node.name or node.output[0]}'"
    if a is None and b is None:
        raise ProfileError(
            f"{label}: neither operand is a constant (inputs {list(node.input[:2])}); only layers with "
            f"constant (hard-wired) weights can be costed"
        )
    bias = None
    if node.op_type == "Gemm":
        trans_a, trans_b = int(attribute(node, "transA", 0)), int(attribute(node, "transB", 0))
        alpha, beta = float(attribute(node, "alpha", 1.0)), float(attribute(node, "beta", 1.0))
        if b is not None:
            weight = (b.T if trans_b else b) * alpha
        else:  # y = W' @ x': weight on the left
            weight = (a.T if trans_a else a).T * alpha  # type: ignore[union-attr]
        c = graph.value(node.input[2]) if len(node.input) > 2 else None
        if len(node.input) > 2 and node.input[2] and c is None:
            raise ProfileError(f"{label}: bias input '{node.input[2]}' is not a constant")
        if c is not None:
            bias = np.broadcast_to(np.asarray(c, dtype=np.float64) * beta, (weight.shape[-1],)).copy()
    else:
        weight = b if b is not None else np.swapaxes(a, -1, -2)  # type: ignore[arg-type]
    if weight.ndim not in (2, 3):
        raise ProfileError(f"{label}: weight of shape {list(weight.shape)} is neither 2-D nor 3-D (grouped)")
    return np.asarray(weight, dtype=np.float64), bias


def _bias_after(graph: Graph, node: onnx.NodeProto, fan_out: int) -> np.ndarray | None:
    nxt = graph.follow(node.output[0])
    if nxt is None or nxt.op_type != "Add":
        return None
    const = next((v for v in (graph.value(i) for i in nxt.input) if v is not None), None)
    if const is None or const.size not in (1, fan_out):
        return None
    return np.broadcast_to(np.asarray(const, dtype=np.float64).reshape(-1), (fan_out,)).copy()


def linear_layers(model: Graph | ModelLike) -> list[LinearLayer]:
    """Every linear operator of ``model`` in topological order, with constant weight, bias and activation.

    Raises :class:`~hwnas.errors.ProfileError` for a linear op whose weight is not a constant, or for ops
    whose weights this reader cannot interpret (Conv, QLinearMatMul, ...).
    """
    graph = _graph(model)
    with reading(graph.model if isinstance(model, Graph) else model):  # a Graph's caller names it
        return _layers(graph)


def _layers(graph: Graph) -> list[LinearLayer]:
    layers: list[LinearLayer] = []
    for node in graph.nodes:
        if node.op_type in _UNSUPPORTED:
            raise ProfileError(f"{node.op_type} '{node.name or node.output[0]}': operator not supported for costing "
                               "linear layers")
        if not _is_layer(graph, node):
            continue
        weight, bias = _weight_of(graph, node)
        fan_out = weight.shape[0] * weight.shape[-1] if weight.ndim == 3 else weight.shape[-1]
        if bias is None:
            bias = _bias_after(graph, node, fan_out)
        activation = _activation(graph, graph.downstream(node.output[0], stop=lambda n: _is_layer(graph, n)))
        layers.append(LinearLayer(node.name or node.output[0], node.op_type, weight, bias, activation))
    return layers


def io_sizes(model: Graph | ModelLike) -> tuple[int | None, int | None]:
    """``(features, classes)``: last dimension of the first graph input and output (None if not static)."""
    graph = _graph(model).model.graph
    inits = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in inits]
    return (_last_dim(inputs[0]) if inputs else None), (_last_dim(graph.output[0]) if graph.output else None)


def _last_dim(value_info: onnx.ValueInfoProto) -> int | None:
    dims = value_info.type.tensor_type.shape.dim
    return int(dims[-1].dim_value) if dims and dims[-1].HasField("dim_value") else None
