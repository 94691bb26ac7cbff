"""The MLP classifier family: raw features in, class scores out.

Every hidden layer chooses its structure (``ffn``: dense, lowrank, blockdiag, glu, swiglu, geglu, moe), its
precision (``quant``: fp32, fp16, int8, int4, ternary, binary; or ``weight_bits`` for k-bit fixed point) and its
sparsity (``sparsity_kind``: none, unstructured, nm (2:4), block; ``sparsity`` target fraction). Scalars apply
to every layer, lists give one value per layer. The output layer follows a scalar ``quant`` and stays fp32
under per-layer (mixed) precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from hwnas.models.ffn import ModeQuant, make_ffn, weight_modes
from hwnas.models.preprocess import FixedPointInput, InputStats, Standardize

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
QUANT_MODES = ("fp32", "fp16", "int8", "int4", "ternary", "binary")
SPARSITY_KINDS = ("none", "unstructured", "nm", "block")
#: Bits a fixed-point (printed) cost model sees for the baked low-precision modes: values in {-1, 0, +1}·s.
_MODE_BITS = {"ternary": 2, "binary": 2}


def per_layer(value: Any, depth: int, name: str, default: Any = None) -> list[Any]:
    """A per-layer value list from a scalar (same for every layer) or a sequence of ``depth`` values."""
    if value is None:
        return [default] * depth
    if isinstance(value, (list, tuple)):
        if len(value) != depth:
            raise ValueError(f"'{name}' has {len(value)} values for {depth} layers")
        return [default if v is None else v for v in value]
    return [value] * depth


@dataclass(frozen=True)
class SparsitySpec:
    """What to prune: ``kind`` (unstructured, nm, block), a target per hidden layer, block side, scope."""

    kind: str
    targets: tuple[float, ...]
    block: int | None = None
    scope: str = "layer"


class MLP(nn.Module):
    """Preprocess → hidden layers (structure + activation) → output layer."""

    def __init__(self, pre: nn.Module, hidden: Sequence[tuple[ModeQuant, str]], head: ModeQuant, dropout: float,
                 sparsity: SparsitySpec | None = None) -> None:
        super().__init__()
        self.pre = pre
        self.layers = nn.ModuleList(layer for layer, _ in hidden)
        self.acts = nn.ModuleList(_ACTIVATIONS[a]() for _, a in hidden)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = head
        self.sparsity = sparsity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pre(x)
        for layer, act in zip(self.layers, self.acts):
            h = self.dropout(act(layer(h)))
        return self.head(h)

    def linear_layers(self) -> list[ModeQuant]:
        return [*self.layers, self.head]

    def bake(self) -> None:
        """Put fixed-point / ternary / binary weights exactly on their grid (done once before export)."""
        for layer in self.linear_layers():
            layer.bake()

    def weight_modes(self) -> dict[str, str]:
        """Parameter name (= ONNX initializer name) → precision mode of every weight, for deployment."""
        return weight_modes(self, self.linear_layers())

    def prunable_layers(self) -> list[list[ModeQuant]]:
        """The layers each ``sparsity`` target applies to: one group per hidden layer."""
        return [[layer] for layer in self.layers]

    def fixed_point(self) -> dict[str, Any] | None:
        """``{"weight_bits": [...per linear operator in graph order], "input_bits": b}`` or None (float)."""
        bits = []
        for layer in self.linear_layers():
            b = layer.bits if isinstance(layer.bits, int) else _MODE_BITS.get(str(layer.bits))
            bits += [b] * len(layer.weights())
        input_bits = self.pre.bits if isinstance(self.pre, FixedPointInput) else None
        if all(b is None for b in bits) and input_bits is None:
            return None
        return {"weight_bits": bits, "input_bits": input_bits}


def precision(bits: Any, quant: str, default_bits: int | None, where: str) -> int | str | None:
    """One layer's precision from an explicit ``weight_bits``, a ``quant`` mode and a profile's default bits."""
    if quant not in QUANT_MODES:
        raise ValueError(f"unknown quant {quant!r} for {where}; known: {list(QUANT_MODES)}")
    if bits and quant != "fp32":
        raise ValueError(f"{where}: weight_bits={bits} and quant={quant!r} both set a precision; choose one")
    if bits:
        return int(bits)
    return quant if quant != "fp32" else default_bits


def sparsity_spec(config: Mapping[str, Any], depth: int) -> SparsitySpec | None:
    """The pruning a config asks for (``sparsity_kind``, ``sparsity``, ``sparsity_block``, ``sparsity_scope``)."""
    kind = config.get("sparsity_kind", "none")
    if kind not in SPARSITY_KINDS:
        raise ValueError(f"unknown sparsity_kind {kind!r}; known: {list(SPARSITY_KINDS)}")
    if kind == "none":
        return None
    targets = per_layer(config.get("sparsity"), depth, "sparsity", 0.0 if kind != "nm" else 0.5)
    for s in targets:
        if not 0.0 <= float(s) < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {s}")
    block = config.get("sparsity_block")
    if kind == "block" and not block:
        raise ValueError("sparsity_kind 'block' needs sparsity_block (the side of a square block)")
    return SparsitySpec(kind, tuple(float(s) for s in targets), int(block) if block else None,
                        str(config.get("sparsity_scope", "layer")))


def build_mlp(
    config: Mapping[str, Any],
    *,
    n_features: int,
    n_classes: int,
    stats: InputStats,
    fixed_point: Any = None,
) -> MLP:
    """Build an MLP from a config (see the module docstring for the parameters). ``fixed_point`` (a profile's
    :class:`FixedPoint`) supplies weight/input bit-widths for the layers the config leaves at fp32."""
    depth = int(config.get("depth", 1))
    widths = per_layer(config.get("width"), depth, "width", 32)
    acts = per_layer(config.get("activation"), depth, "activation", "relu")
    ffns = per_layer(config.get("ffn"), depth, "ffn", "dense")
    opts = {k: per_layer(config.get(k), depth, k) for k in ("rank", "blocks", "expansion", "experts", "top_k")}
    quant = config.get("quant", "fp32")
    quants = per_layer(quant, depth, "quant", "fp32")
    default_bits = fixed_point.weight_bits if fixed_point else None
    bits = per_layer(config.get("weight_bits"), depth, "weight_bits")
    input_bits = config.get("input_bits") or (fixed_point.input_bits if fixed_point else None)
    for a in acts:
        if a not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {a!r}; known: {sorted(_ACTIVATIONS)}")
    pre: nn.Module = FixedPointInput(stats, int(input_bits)) if input_bits else Standardize(stats)
    hidden = []
    n_in = n_features
    for i in range(depth):
        mode = precision(bits[i], quants[i], default_bits, f"layer {i}")
        layer = make_ffn(ffns[i], n_in, int(widths[i]), bits=mode, **{k: v[i] for k, v in opts.items()})
        hidden.append((layer, acts[i]))
        n_in = int(widths[i])
    if isinstance(quant, str):
        head_mode = precision(None, quant, default_bits, "output layer")
    else:
        head_mode = default_bits or max((b for b in bits if b), default=None)
    head = make_ffn("dense", n_in, n_classes, bits=head_mode)
    return MLP(pre, hidden, head, float(config.get("dropout", 0.0)), sparsity_spec(config, depth))
