"""The ``printed`` kind: an analytical area / power / delay model of a bespoke printed-electronics (EGFET) MLP.

In a bespoke printed MLP every weight is a hard-wired constant. The model (``egfet-bespoke-v2``, see
``docs/printed_model.md`` for the derivation and its sources):

* weights are quantised per layer to signed ``weight_bits`` integers, ``q = round(W / s)``,
  ``s = max|W| / (2**(weight_bits-1) - 1)``;
* a multiplier by ``q`` is a shift-add network: ``d(q)`` non-zero canonical-signed-digit (CSD) digits need
  ``d - 1`` adders of ``input_width + 1`` full-adder (FA) bits (the bits below each shift are wires); powers
  of two are free shifts; zero weights cost nothing and drop out of the adder tree;
* a neuron sums its ``n`` operands (products, plus one constant for its bias) in a balanced adder tree of
  ``n - 1`` adders; a level-``l`` adder takes operands of ``p + l - 1`` bits, ``p = input_width + weight_bits``;
  the accumulator has ``p + ceil(log2 n)`` bits. The circuit is computed at full precision: a ReLU drops only
  the sign bit, so the next layer's inputs are ``acc - 1`` bits wide (``act_bits`` caps this, an approximation
  of the torch model, which does not quantise activations);
* synthesis-style clean-up: neurons whose outputs no later neuron reads are removed, and a neuron with no
  non-zero weight on a varying input is a constant folded into the next layer's bias;
* hidden neurons with an activation pay a ReLU (activations other than ReLU are priced as a ReLU and listed in
  ``details``); the output layer feeds an argmax comparator tree (``classes - 1`` comparators);
* area = FA bits x ``fa_area_mm2`` + ReLU + comparators; power = area x ``power_mw_per_cm2`` (leakage-dominated);
  delay = sum over layers of ``stage_delay_ms`` x (shift-add levels + tree levels + accumulator width, the
  ripple of the carries) + ReLU + ``ceil(log2 classes)`` comparator levels.

The model understands MLP-style graphs only (:data:`MLP_OPS`, what hwnas's MLPs and ordinary exported MLP
classifiers hold); any other operator is refused, unless ``unknown_ops: approximate``, which prices it as free
wiring (it adds no circuit) and lists it in ``details["approximated_ops"]``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx

from hwnas.errors import ProfileError
from hwnas.graph import ACTIVATION_OPS, LAYOUT_OPS, Graph, LinearLayer, io_sizes, linear_layers, reading
from hwnas.precision import FixedPoint
from hwnas.profiles.base import Bounds, Metric, Profile, ProfileResult, Range
from hwnas.profiles.registry import register_kind
from hwnas.validation import check_int

MODEL_NAME = "egfet-bespoke-v2"
METADATA_KEY = "hwnas.fixed_point"
#: How the model compares with published synthesised bespoke MLPs (benchmarks/printed_vs_published.py).
VALIDATION_ERROR = (
    "v2: the v1 constants (published EGFET cell, adder and component figures) scaled per metric by the median "
    "synthesised/analytical ratio over 134 trained circuits of the printed spaces (mlp_printed, mlp_tabular; "
    "10 UCI sets; 2-8-bit weights, pruned and not) synthesised with printed-egfet-synth (Yosys 0.70 + ABC, "
    "egfet.lib): area x0.519, power x0.606, delay x1.95. Held out by dataset (5 folds): area and power median "
    "|error| 19.4 %, MAPE 74.9 % (circuits synthesis collapses to a near-constant are overestimated up to "
    "100x), 27.6 % within 10 %, Spearman 0.88; delay median 12.6 %, MAPE 23.6 %, Spearman 0.77. Against the "
    "published exact bespoke MLPs see docs/printed_model.md; benchmarks/printed_synthesis.py"
)

#: The operators of an MLP-style graph, which the circuit model prices: linear layers and their bias; input
#: scaling and the fixed-point input grid ((x - mean) / std, round, clip); activations (priced as a ReLU);
#: Q/DQ round trips (int8 QDQ graphs); layout ops and the shape arithmetic of a dynamic-batch reshape;
#: argmax-style outputs.
MLP_OPS = frozenset({
    "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Round", "Clip", *ACTIVATION_OPS,
    "QuantizeLinear", "DequantizeLinear", *LAYOUT_OPS, "Transpose", "Cast",
    "Shape", "Gather", "Unsqueeze", "Concat", "Slice", "Constant", "ArgMax",
})


@dataclass(frozen=True)
class EgfetTech:
    """Technology constants (EGFET, 1 V); sources in docs/printed_model.md."""

    #: Area of one full-adder bit built from gates: the measured 8-bit adder, 22 mm^2 / 8 (Bleier ISCA'20).
    fa_area_mm2: float = 1.4278
    #: Leakage-dominated power density: published exact bespoke MLPs, 2.9-3.2 mW/cm^2 (Mubarik MICRO'20).
    power_mw_per_cm2: float = 3.62
    #: Delay of one adder stage (one carry step), 1.3-1.6 ms per logic level (MAC 27 ms / ~18 stages).
    stage_delay_ms: float = 2.823
    #: ReLU: 0.03 cm^2 and 2.54 ms for an (assumed) 8-bit value (MICRO'20 Table I).
    relu_area_mm2_per_bit: float = 0.1947
    relu_delay_ms: float = 4.946
    #: Comparator: 0.15 cm^2 and 11.2 ms for an (assumed) 8-bit value (MICRO'20 Table I).
    comparator_area_mm2_per_bit: float = 0.9735
    comparator_delay_ms: float = 21.81


@dataclass(frozen=True)
class LayerCost:
    """Cost of one linear layer (and its activation)."""

    fan_in: int
    fan_out: int
    weight_bits: int
    activation: str | None
    input_bits_max: int
    acc_bits_max: int
    nonzero_weights: int
    shift_only_multipliers: int
    multiplier_adders: int
    tree_adders: int
    fa_bits: int
    relus: int
    relu_mm2: float
    area_mm2: float
    delay_ms: float


@dataclass(frozen=True)
class CircuitCost:
    """The whole classifier: totals, a per-part area breakdown and one :class:`LayerCost` per layer."""

    area_cm2: float
    power_mw: float
    delay_ms: float
    area_mm2: dict[str, float]
    layers: list[LayerCost]
    comparators: int
    output_bits: int
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Totals over layers: multipliers (non-zero weights wired), adders, FA bits, ReLUs, comparators."""
        total = {k: sum(getattr(layer, k) for layer in self.layers)
                 for k in ("nonzero_weights", "shift_only_multipliers", "multiplier_adders", "tree_adders",
                           "fa_bits", "relus")}
        total["multipliers"] = total["nonzero_weights"]
        total["adders"] = total["multiplier_adders"] + total["tree_adders"]
        total["comparators"] = self.comparators
        return total

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts()}


# --------------------------------------------------------------------------------------------- arithmetic


def csd_digits(n: int) -> list[int]:
    """Canonical-signed-digit (non-adjacent form) digits of ``n``, least significant first, each -1, 0 or 1."""
    digits: list[int] = []
    while n:
        d = 2 - (n % 4) if n % 2 else 0
        digits.append(d)
        n = (n - d) // 2
    return digits


def csd_nonzero(q: np.ndarray | int) -> np.ndarray:
    """Number of non-zero CSD digits of each integer in ``q`` (vectorised non-adjacent form)."""
    n = np.abs(np.asarray(q, dtype=np.int64))
    count = np.zeros_like(n)
    while np.any(n):
        odd = (n & 1).astype(bool)
        d = np.where(odd, 2 - (n & 3), 0)
        count += d != 0
        n = (n - d) >> 1
    return count


def quantize_weights(w: np.ndarray, bits: int) -> np.ndarray:
    """Signed ``bits``-bit integers ``round(w / s)``, ``s = max|w| / (2**(bits-1) - 1)`` (idempotent on the grid)."""
    check_int(bits, "weight_bits", low=2, error=ValueError)  # signed: a sign bit and at least one more
    qmax = 2 ** (bits - 1) - 1
    peak = float(np.max(np.abs(w))) if np.size(w) else 0.0
    if peak == 0.0:
        return np.zeros(np.shape(w), dtype=np.int64)
    return np.clip(np.round(np.asarray(w, dtype=np.float64) / (peak / qmax)), -qmax, qmax).astype(np.int64)


def densest_weight(bits: int) -> int:
    """The integer of the signed ``bits``-bit grid (``|q| <= 2**(bits-1) - 1``) with the most non-zero CSD
    digits, the costliest constant multiplier of that precision: ``(2**b + 1) // 3`` (``0b1010…1011``) for
    ``b`` the odd one of ``bits`` and ``bits - 1``. It has ``ceil(bits / 2)`` digits, the most any integer
    below ``2**(bits-1)`` has: its CSD form is at most ``bits`` digits long with no two adjacent non-zero."""
    check_int(bits, "weight_bits", low=2, error=ValueError)
    odd = bits if bits % 2 else bits - 1
    return (2 ** odd + 1) // 3


def _tree(n_ops: int, p: int) -> tuple[int, int]:
    """``(fa_bits, levels)`` of a balanced tree adding ``n_ops`` operands of ``p`` bits."""
    fa_bits, level, count = 0, 0, n_ops
    while count > 1:
        level += 1
        pairs = count // 2
        fa_bits += pairs * (p + level - 1)
        count -= pairs
    return fa_bits, level


def _levels(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


# ------------------------------------------------------------------------------------------------ circuit


@dataclass
class _Inputs:
    """What one layer receives: per input, its bit-width (0: a constant) and its value if constant."""

    width: np.ndarray
    value: np.ndarray  # float value of constant inputs (nan for varying ones)


def _as_layer(layer: np.ndarray | LinearLayer, last: bool) -> LinearLayer:
    if isinstance(layer, LinearLayer):
        return layer
    return LinearLayer("layer", "array", np.asarray(layer, dtype=np.float64), None, None if last else "relu")


def _live_outputs(qs: list[np.ndarray]) -> list[np.ndarray]:
    """Per layer, which output neurons some later live neuron reads (all outputs of the last layer)."""
    live = [np.ones(q.shape[1], dtype=bool) for q in qs]
    for i in range(len(qs) - 1, 0, -1):
        live[i - 1] = np.any(qs[i][:, live[i]] != 0, axis=1)
    return live


def _layer(layer: LinearLayer, w: np.ndarray, q: np.ndarray, bits: int, inp: _Inputs, live: np.ndarray,
           last: bool, act_bits: int | None, tech: EgfetTech) -> tuple[LayerCost, _Inputs]:
    """Cost one layer and describe its outputs as the next layer's inputs."""
    varying = inp.width > 0
    wired = (q != 0) & varying[:, None] & live[None, :]
    const_in = (q != 0) & ~varying[:, None] & (np.nan_to_num(inp.value) != 0)[:, None]
    bias = layer.bias if layer.bias is not None else np.zeros(q.shape[1])
    has_const = (bias != 0) | np.any(const_in, axis=0)
    digits = csd_nonzero(q)
    mult_adders = np.where(wired, np.maximum(digits - 1, 0), 0)
    mult_bits = int(np.sum(mult_adders * (inp.width[:, None] + 1)))
    out_width = np.zeros(q.shape[1], dtype=np.int64)
    out_value = np.full(q.shape[1], np.nan)
    tree_bits = tree_adders = acc_max = stages_max = relus = 0
    relu = layer.activation is not None and not last
    for k in np.flatnonzero(live):
        n_prod = int(wired[:, k].sum())
        if n_prod == 0:  # a constant: fold it into the next layer's bias
            v = float(bias[k] + np.nansum(w[:, k] * np.where(varying, 0.0, np.nan_to_num(inp.value))))
            out_value[k] = max(v, 0.0) if relu else v
            continue
        n_ops = n_prod + int(has_const[k])
        p = int(inp.width[wired[:, k]].max()) + bits
        fa, levels = _tree(n_ops, p)
        acc = p + levels
        tree_bits, tree_adders = tree_bits + fa, tree_adders + n_ops - 1
        mult_levels = _levels(int(digits[wired[:, k], k].max()))
        stages_max = max(stages_max, mult_levels + levels + acc)
        acc_max = max(acc_max, acc)
        width = acc - 1 if relu else acc
        out_width[k] = min(width, act_bits) if act_bits and not last else width
        relus += int(relu)
    relu_area = float(np.sum(out_width)) * tech.relu_area_mm2_per_bit if relu else 0.0
    fa_bits = mult_bits + tree_bits
    cost = LayerCost(
        fan_in=q.shape[0], fan_out=q.shape[1], weight_bits=bits, activation=layer.activation,
        input_bits_max=int(inp.width.max(initial=0)), acc_bits_max=acc_max,
        nonzero_weights=int(wired.sum()), shift_only_multipliers=int((wired & (digits == 1)).sum()),
        multiplier_adders=int(mult_adders.sum()), tree_adders=tree_adders, fa_bits=fa_bits, relus=relus,
        relu_mm2=relu_area, area_mm2=fa_bits * tech.fa_area_mm2 + relu_area,
        delay_ms=stages_max * tech.stage_delay_ms + (tech.relu_delay_ms if relu and relus else 0.0),
    )
    return cost, _Inputs(out_width, out_value)


def estimate_circuit(
    layers: Sequence[np.ndarray | LinearLayer],
    weight_bits: int | Sequence[int],
    input_bits: int,
    *,
    tech: EgfetTech | None = None,
    act_bits: int | None = None,
    quantized: bool = False,
) -> CircuitCost:
    """Area, power and delay of the bespoke circuit of an MLP given its weight matrices.

    ``layers``: in order, ``[fan_in, fan_out]`` (or grouped ``[g, in/g, out/g]``) float arrays (hidden layers
    then get a ReLU, no bias) or :class:`~hwnas.graph.LinearLayer` objects. ``weight_bits``: one
    for all layers or one per layer. With ``quantized=True`` the arrays already hold the integers.
    """
    tech = tech or EgfetTech()
    if not layers:
        raise ValueError("no linear layers to cost")
    specs = [_as_layer(layer, i == len(layers) - 1) for i, layer in enumerate(layers)]
    bits = [int(weight_bits)] * len(specs) if isinstance(weight_bits, (int, np.integer)) else [int(b) for b in weight_bits]
    if len(bits) != len(specs):
        raise ValueError(f"{len(bits)} weight bit-widths for {len(specs)} linear layers")
    check_int(input_bits, "input_bits", low=1, error=ValueError)
    ws = [s.dense().astype(np.float64) for s in specs]
    for i in range(1, len(ws)):
        if ws[i].shape[0] != ws[i - 1].shape[1]:
            raise ValueError(f"layer {i} has fan-in {ws[i].shape[0]} but layer {i - 1} has {ws[i - 1].shape[1]} outputs")
    qs = [np.rint(w).astype(np.int64) if quantized else quantize_weights(w, b) for w, b in zip(ws, bits)]
    live = _live_outputs(qs)
    inp = _Inputs(np.full(ws[0].shape[0], input_bits, dtype=np.int64), np.full(ws[0].shape[0], np.nan))
    costs: list[LayerCost] = []
    for i, (spec, w, q, b) in enumerate(zip(specs, ws, qs, bits)):
        cost, inp = _layer(spec, w, q, b, inp, live[i], i == len(specs) - 1, act_bits, tech)
        costs.append(cost)
    classes = qs[-1].shape[1]
    out_bits = int(inp.width.max(initial=0))
    comparators = classes - 1 if classes > 1 and out_bits else 0
    argmax_mm2 = comparators * out_bits * tech.comparator_area_mm2_per_bit
    fa_bits = sum(c.fa_bits for c in costs)
    area_mm2 = {"adders": fa_bits * tech.fa_area_mm2, "relu": sum(c.relu_mm2 for c in costs), "argmax": argmax_mm2}
    area_cm2 = sum(area_mm2.values()) / 100.0
    delay = sum(c.delay_ms for c in costs) + (_levels(classes) * tech.comparator_delay_ms if comparators else 0.0)
    notes = [f"layer {i} activation '{s.activation}' priced as a ReLU" for i, s in enumerate(specs[:-1])
             if s.activation not in (None, "relu")]
    return CircuitCost(area_cm2, area_cm2 * tech.power_mw_per_cm2, delay, area_mm2, costs, comparators, out_bits, notes)


# ------------------------------------------------------------------------------------------------ profile


def _metadata_bits(model: onnx.ModelProto, n_layers: int, weight_bits: int, input_bits: int) -> tuple[list[int], int, bool]:
    """Bit-widths from ``metadata_props['hwnas.fixed_point']`` where present, else the profile's."""
    raw = next((p.value for p in model.metadata_props if p.key == METADATA_KEY), None)
    if raw is None:
        return [weight_bits] * n_layers, input_bits, False
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise ProfileError(f"metadata '{METADATA_KEY}' is not JSON: {raw!r}") from None
    if meta is None:
        return [weight_bits] * n_layers, input_bits, False
    wb = meta.get("weight_bits")
    if isinstance(wb, list):
        if len(wb) != n_layers:
            raise ProfileError(f"metadata '{METADATA_KEY}' lists {len(wb)} weight bit-widths for {n_layers} linear layers")
        bits = [weight_bits if b is None else int(b) for b in wb]
    else:
        bits = [weight_bits if wb is None else int(wb)] * n_layers
    ib = meta.get("input_bits")
    return bits, input_bits if ib is None else int(ib), True


@register_kind
class PrintedProfile(Profile):
    """Bespoke printed (EGFET) MLP circuit: area, power and delay predicted by ``egfet-bespoke-v2``."""

    kind = "printed"
    metrics = {"area_cm2": "cm2", "power_mw": "mW", "delay_ms": "ms"}
    #: Zero weights are free and each constant's CSD digits set its multiplier: every metric.
    weight_dependent = frozenset(metrics)
    primary_metric = "area_cm2"
    provenance = "predicted"
    defaults: dict[str, Any] = {
        "weight_bits": 8,
        "input_bits": 4,
        "act_bits": None,
        "unknown_ops": "refuse",
        **{f.name: f.default for f in fields(EgfetTech)},
    }
    #: Technology constants are physical quantities: positive, and at most 10^12 (mm², mW/cm², ms: far beyond
    #: any circuit, and no sum of them overflows).
    ranges = {"weight_bits": Range(2, 32, integer=True), "input_bits": Range(1, 32, integer=True),
              "act_bits": Range(1, 64, integer=True, nullable=True),
              **{f.name: Range(0.0, 1e12, low_open=True) for f in fields(EgfetTech)}}

    def fixed_point(self) -> FixedPoint:
        return FixedPoint(int(self.params["weight_bits"]), int(self.params["input_bits"]))

    def tech(self) -> EgfetTech:
        return EgfetTech(**{f.name: float(self.params[f.name]) for f in fields(EgfetTech)})

    def _circuit(self, onnx_path: Path) -> tuple[Graph, list[LinearLayer], list[int], int, bool, list[str]]:
        """The graph, its linear layers, their weight bit-widths, the input bits, whether the bits came from the
        file's metadata, and the operators priced as free wiring."""
        with reading(onnx_path):
            graph = Graph(onnx_path)
            layers = linear_layers(graph)  # first: it refuses what no setting can price (Conv, constant-less MatMul)
            approximated = self.approximated_ops(onnx_path, (n.op_type for n in graph.nodes
                                                             if n.op_type not in MLP_OPS),
                                                 "as free wiring: they add no circuit")
            if not layers:
                raise ProfileError("no linear layer (Gemm/MatMul with a constant weight) to cost")
            bits, input_bits, from_meta = _metadata_bits(
                graph.model, len(layers), int(self.params["weight_bits"]), int(self.params["input_bits"]))
        return graph, layers, bits, input_bits, from_meta, approximated

    def _estimate(self, onnx_path: Path, layers: Sequence[LinearLayer], bits: list[int], input_bits: int,
                  quantized: bool = False) -> CircuitCost:
        act_bits = self.params["act_bits"]
        with reading(onnx_path):
            try:
                return estimate_circuit(layers, bits, input_bits, tech=self.tech(), quantized=quantized,
                                        act_bits=int(act_bits) if act_bits is not None else None)
            except ValueError as exc:
                raise ProfileError(str(exc)) from None

    def screening_bounds(self, onnx_path: Path, untrained: ProfileResult) -> dict[str, Bounds]:
        """Every metric depends on the weight values, so the untrained circuit proves little.

        Lower bounds are 0: training may make every weight zero (zero is on every fixed-point grid, and
        sparsity only forces zeros), and then every neuron is a constant folded away — no multiplier, adder,
        ReLU or comparator remains, so area, power and delay are 0. No positive bound holds for all weights.

        Upper bounds: the circuit of the same layers and bit-widths with every weight non-zero with the most
        CSD digits its grid holds (:func:`densest_weight`) and every bias non-zero. Every part of the model
        grows with the number of wired weights, their digits and the operand widths, so no trained circuit
        exceeds it."""
        _, layers, bits, input_bits, _, _ = self._circuit(onnx_path)
        densest = [dataclasses.replace(layer, weight=np.full(layer.weight.shape, densest_weight(b), np.int64),
                                       bias=np.ones(layer.fan_out))
                   for layer, b in zip(layers, bits)]
        top = self._estimate(onnx_path, densest, bits, input_bits, quantized=True)
        high = {"area_cm2": top.area_cm2, "power_mw": top.power_mw, "delay_ms": top.delay_ms}
        return {name: Bounds(0.0, float(high[name])) for name in self.metrics}

    def profile(self, onnx_path: Path) -> ProfileResult:
        graph, layers, bits, input_bits, from_meta, approximated = self._circuit(onnx_path)
        act_bits = self.params["act_bits"]
        cost = self._estimate(onnx_path, layers, bits, input_bits)
        features, classes = io_sizes(graph)
        details = {
            "model": MODEL_NAME,
            "validation_error": VALIDATION_ERROR,
            "weight_bits": bits,
            "input_bits": input_bits,
            "act_bits": act_bits,
            "bits_from": METADATA_KEY if from_meta else "profile params",
            "features": features if features is not None else layers[0].fan_in,
            "classes": classes if classes is not None else layers[-1].fan_out,
            "topology": [layers[0].fan_in] + [layer.fan_out for layer in layers],
            "counts": cost.counts(),
            "area_mm2": cost.area_mm2,
            "layers": [asdict(c) for c in cost.layers],
            "notes": cost.notes,
        }
        if approximated:
            details["approximated_ops"] = approximated
        values = {"area_cm2": cost.area_cm2, "power_mw": cost.power_mw, "delay_ms": cost.delay_ms}
        return ProfileResult(self.name, {
            name: Metric(name, float(values[name]), unit, "predicted", details) for name, unit in self.metrics.items()
        })
