"""The MLP classifier family: raw features in, class scores out."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from hwnas.models.layers import QuantWeights, make_layer
from hwnas.models.preprocess import FixedPointInput, InputStats, Standardize

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def per_layer(value: Any, depth: int, name: str, default: Any = None) -> list[Any]:
    """A per-layer value list from a scalar (same for every layer) or a sequence of ``depth`` values."""
    if value is None:
        return [default] * depth
    if isinstance(value, (list, tuple)):
        if len(value) != depth:
            raise ValueError(f"'{name}' has {len(value)} values for {depth} layers")
        return [default if v is None else v for v in value]
    return [value] * depth


class MLP(nn.Module):
    """Preprocess → hidden layers (structure + activation) → output layer."""

    def __init__(self, pre: nn.Module, hidden: Sequence[tuple[QuantWeights, str]], head: QuantWeights, dropout: float) -> None:
        super().__init__()
        self.pre = pre
        self.layers = nn.ModuleList(layer for layer, _ in hidden)
        self.acts = nn.ModuleList(_ACTIVATIONS[a]() for _, a in hidden)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pre(x)
        for layer, act in zip(self.layers, self.acts):
            h = self.dropout(act(layer(h)))
        return self.head(h)

    def linear_layers(self) -> list[QuantWeights]:
        return [*self.layers, self.head]

    def bake(self) -> None:
        """Put fixed-point weights exactly on their grid (done once before export)."""
        for layer in self.linear_layers():
            layer.bake()

    def fixed_point(self) -> dict[str, Any] | None:
        """``{"weight_bits": [...per linear operator in graph order], "input_bits": b}`` or None (float)."""
        bits = [layer.bits for layer in self.linear_layers() for _ in layer.weights()]
        input_bits = self.pre.bits if isinstance(self.pre, FixedPointInput) else None
        if all(b is None for b in bits) and input_bits is None:
            return None
        return {"weight_bits": bits, "input_bits": input_bits}


def build_mlp(
    config: Mapping[str, Any],
    *,
    n_features: int,
    n_classes: int,
    stats: InputStats,
    fixed_point: Any = None,
) -> MLP:
    """Build an MLP from a config (``depth``, ``width``, ``activation``, ``ffn``, ``rank``, ``blocks``,
    ``weight_bits``, ``input_bits``, ``dropout``). ``fixed_point`` (a profile's :class:`FixedPoint`) supplies
    weight/input bit-widths the config leaves open."""
    depth = int(config.get("depth", 1))
    widths = per_layer(config.get("width"), depth, "width", 32)
    acts = per_layer(config.get("activation"), depth, "activation", "relu")
    ffns = per_layer(config.get("ffn"), depth, "ffn", "dense")
    ranks = per_layer(config.get("rank"), depth, "rank")
    blocks = per_layer(config.get("blocks"), depth, "blocks")
    default_bits = fixed_point.weight_bits if fixed_point else None
    bits = per_layer(config.get("weight_bits"), depth, "weight_bits", default_bits)
    head_bits = default_bits if default_bits else max((b for b in bits if b), default=None)
    input_bits = config.get("input_bits") or (fixed_point.input_bits if fixed_point else None)
    for a in acts:
        if a not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {a!r}; known: {sorted(_ACTIVATIONS)}")
    pre: nn.Module = FixedPointInput(stats, int(input_bits)) if input_bits else Standardize(stats)
    hidden = []
    n_in = n_features
    for i in range(depth):
        layer = make_layer(ffns[i], n_in, int(widths[i]), rank=ranks[i], blocks=blocks[i], bits=bits[i])
        hidden.append((layer, acts[i]))
        n_in = int(widths[i])
    head = make_layer("dense", n_in, n_classes, rank=None, blocks=None, bits=head_bits)
    return MLP(pre, hidden, head, float(config.get("dropout", 0.0)))
