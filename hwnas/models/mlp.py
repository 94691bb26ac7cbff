"""The MLP classifier family: raw features in, class scores out.

Every hidden layer chooses its structure (``ffn``: dense, lowrank, blockdiag, glu, swiglu, geglu, moe), its
precision (``quant``: fp32, fp16, int8, int4, ternary, binary; or ``weight_bits`` for k-bit fixed point) and its
sparsity (``sparsity_kind``: none, unstructured, nm (2:4), block; ``sparsity`` target fraction). Scalars apply
to every layer, lists give one value per layer. The output layer follows a scalar ``quant`` and stays fp32
under per-layer (mixed) precision.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from hwnas.models.deploy import DeployableModule
from hwnas.models.ffn import ModeQuant, make_ffn
from hwnas.models.fixed import integer_form_refusal, to_integer
from hwnas.models.layers import ACTIVATIONS, per_layer
from hwnas.models.preprocess import FixedPointInput, InputStats, Standardize
from hwnas.models.sparsity import SparsitySpec, sparsity_spec
from hwnas.precision import PRECISIONS, FixedPoint

#: Bits a fixed-point (printed) cost model sees for the baked low-precision modes: values in {-1, 0, +1}·s.
_MODE_BITS = {"ternary": 2, "binary": 2}


class MLP(DeployableModule):
    """Preprocess → hidden layers (structure + activation) → output layer."""

    def __init__(self, pre: nn.Module, hidden: Sequence[tuple[ModeQuant, str]], head: ModeQuant, dropout: float,
                 sparsity: SparsitySpec | None = None) -> None:
        super().__init__()
        self.pre = pre
        self.layers = nn.ModuleList(layer for layer, _ in hidden)
        self.acts = nn.ModuleList(ACTIVATIONS[a]() for _, a in hidden)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = head
        self.sparsity = sparsity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pre(x)
        for layer, act in zip(self.layers, self.acts):
            h = self.dropout(act(layer(h)))
        return self.head(h)

    def quant_layers(self) -> list[ModeQuant]:
        return [*self.layers, self.head]

    def prunable_layers(self) -> list[list[ModeQuant]]:
        """The layers each ``sparsity`` target applies to: one group per hidden layer."""
        return [[layer] for layer in self.layers]

    def integer_form_refusal(self) -> str | None:
        """Why this model has no exact integer (circuit) form, or None when it has one."""
        return integer_form_refusal(self.pre, self.quant_layers(), list(self.acts))

    def bake(self) -> None:
        """Bake the weights; a fixed-point MLP with an exact integer form is then rewritten into it, so that its
        ONNX file computes exactly what the bespoke circuit computes (:mod:`hwnas.models.fixed`)."""
        integer = not self.baked_integer and self.integer_form_refusal() is None
        super().bake()
        if integer:
            to_integer(self.pre, self.quant_layers())  # type: ignore[arg-type]

    def fixed_point(self) -> dict[str, Any] | None:
        """``{"weight_bits": [...per linear operator in graph order], "input_bits": b}`` or None (float)."""
        bits = []
        for layer in self.quant_layers():
            b = layer.bits if isinstance(layer.bits, int) else _MODE_BITS.get(str(layer.bits))
            bits += [b] * len(layer.weights())
        input_bits = self.pre.bits if isinstance(self.pre, FixedPointInput) else None
        if all(b is None for b in bits) and input_bits is None:
            return None
        return {"weight_bits": bits, "input_bits": input_bits, "integer": self.baked_integer}

    @property
    def baked_integer(self) -> bool:
        """Whether the model is in its exact integer form (outputs are accumulators, see hwnas.models.fixed)."""
        return bool(getattr(self.pre, "integer", False))


def precision(bits: Any, quant: str, default_bits: int | None, where: str) -> int | str | None:
    """One layer's precision from an explicit ``weight_bits``, a ``quant`` mode and a profile's default bits."""
    if quant not in PRECISIONS:
        raise ValueError(f"unknown quant {quant!r} for {where}; known: {list(PRECISIONS)}")
    if bits and quant != "fp32":
        raise ValueError(f"{where}: weight_bits={bits} and quant={quant!r} both set a precision; choose one")
    if bits:
        return int(bits)
    return quant if quant != "fp32" else default_bits


def build_mlp(
    config: Mapping[str, Any],
    *,
    n_features: int,
    n_classes: int,
    stats: InputStats,
    fixed_point: FixedPoint | None = None,
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
        if a not in ACTIVATIONS:
            raise ValueError(f"unknown activation {a!r}; known: {sorted(ACTIVATIONS)}")
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
