"""Reading ONNX models: the one graph form every hardware profile reads.

* :func:`load_model` — a path or ModelProto, external data included; unreadable, empty, invalid or node-less
  files are a :class:`~hwnas.errors.ProfileError` naming the file (:func:`reading` names it for errors found
  later);
* :class:`Graph` — one shape-inferred graph at a batch size: producers, consumers, initializers, constant
  folding, static shapes and types, walks;
* the per-operator cost view — :func:`graph_costs` (one :class:`OpCost` per node: MACs, FLOPs, bytes, dtype,
  sparsity; ``known = False`` for ops it has no rule for), :func:`totals`, :func:`optimize_with_onnxruntime`
  (the graph ONNX Runtime runs) — read by the ``analytical`` and ``predictor`` profiles and model summaries;
* the linear-layer view — :func:`linear_layers` (:class:`LinearLayer`: constant weight, bias, activation) and
  :func:`io_sizes` — read by the ``printed`` profile.

Torch-free: onnx and numpy only (onnxruntime inside :func:`optimize_with_onnxruntime`).
"""

from hwnas.graph._costs import COPY_OPS, DTYPES, FLOPS_PER_ELEMENT, OpCost, graph_costs, totals
from hwnas.graph._graph import LAYOUT_OPS, Graph, Routing
from hwnas.graph._layers import ACTIVATION_OPS, LinearLayer, io_sizes, linear_layers
from hwnas.graph._load import check_file, load_model, optimize_with_onnxruntime, reading

__all__ = [
    "ACTIVATION_OPS",
    "COPY_OPS",
    "DTYPES",
    "FLOPS_PER_ELEMENT",
    "LAYOUT_OPS",
    "Graph",
    "LinearLayer",
    "OpCost",
    "Routing",
    "check_file",
    "graph_costs",
    "io_sizes",
    "linear_layers",
    "load_model",
    "optimize_with_onnxruntime",
    "reading",
    "totals",
]
