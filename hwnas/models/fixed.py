"""The exact integer form of a fixed-point MLP: what a bespoke (printed) circuit computes, and what its ONNX
file then computes too, so that the circuit can be proven bit-exact against the file.

A trained fixed-point MLP holds weights ``W = q·s`` (``q`` signed integers, one scale ``s`` per tensor) and sees
inputs ``c / L`` (``c`` the unsigned input codes, ``L = 2**input_bits - 1``). Every operator between the codes
and the class decision is positively homogeneous (MatMul, bias, ReLU, argmax), so the scales can be taken out:
with ``S`` the product of the input step and the scales met so far, a layer computes ``acc = q·x + B`` with
``B = round(b / S)`` (the bias on the accumulator grid, the one rounding this form adds) and the class is the
argmax of the last accumulators. :func:`to_integer` rewrites a baked model into that form: integer-valued
float64 weights and biases (float64 is exact below 2**53; float32 is not above 2**24, and two-layer
accumulators reach 30 bits), codes instead of ``c / L``. Its outputs are the accumulators (scores in units of
``S``), whose argmax is the circuit's class.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.models.ffn import BlockDiagonalFFN, DenseFFN, LowRankFFN, ModeQuant
from hwnas.models.preprocess import FixedPointInput

#: The layer structures that are sums of constant products (GLU and MoE multiply or route activations).
INTEGER_LAYERS = (DenseFFN, LowRankFFN, BlockDiagonalFFN)


def integer_form_refusal(pre: nn.Module, layers: list[ModeQuant], acts: list[nn.Module]) -> str | None:
    """Why a model with these parts has no exact integer form (None: it has one)."""
    if not isinstance(pre, FixedPointInput):
        return "its inputs are not fixed-point codes (no input_bits)"
    for i, layer in enumerate(layers):
        if not isinstance(layer, INTEGER_LAYERS):
            return f"layer {i} is a {type(layer).__name__}, not a dense, low-rank or block-diagonal layer"
        if not isinstance(layer.bits, int):
            return f"layer {i} has precision {layer.bits!r}, not k-bit fixed point"
    for i, act in enumerate(acts):
        if not isinstance(act, (nn.ReLU, nn.Identity)):
            return f"hidden layer {i} has activation {type(act).__name__}, which no exact fixed-point circuit computes"
    return None


#: Every value of the integer form must stay exact in float64 (and in the circuit's int64 reference).
MAX_MAGNITUDE = 2.0**52


@torch.no_grad()
def to_integer(pre: FixedPointInput, layers: list[ModeQuant]) -> bool:
    """Rewrite baked ``layers`` (in forward order, the output layer last) and ``pre`` into the integer form
    (see the module docstring); call once, after :meth:`~hwnas.models.deploy.DeployableModule.bake`. Returns
    False, changing nothing, when some accumulator could reach 2**52 (deep low-rank chains of 8-bit
    weights do: such a model stays float and has no exact circuit)."""
    step = 1.0 / pre.levels  # the value of one input code
    bound = float(pre.levels)  # the largest |value| entering the next weight
    updates: list[tuple[torch.Tensor, torch.Tensor]] = []
    for layer in layers:
        qmax = 2 ** (int(layer.bits) - 1) - 1  # type: ignore[arg-type]
        for w in layer.weights():
            wide = w.detach().double()
            top = float(wide.abs().max())
            scale = top / qmax if top > 0 else 1.0  # an all-zero tensor: any scale, its products are 0
            q = torch.round(wide / scale)
            updates.append((w, q))
            step *= scale
            bound *= float(q.abs().reshape(-1, q.shape[-1]).sum(0).max()) if q.numel() else 0.0
        bias = torch.round(layer.bias.detach().double() / step)
        updates.append((layer.bias, bias))
        bound += float(bias.abs().max()) if bias.numel() else 0.0
        if not bound < MAX_MAGNITUDE:
            return False
    for param, value in updates:
        param.data = value
    pre.integer = True
    return True
