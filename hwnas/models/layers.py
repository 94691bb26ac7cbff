"""Hidden-layer structures: dense, low-rank (U·V) and block-diagonal (grouped MatMul), with optional
fixed-point weights. Each layer lists its weight tensors in forward order (:meth:`weights`), which is also
the order of the linear operators in the exported ONNX graph.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hwnas.models.domains import ACTIVATION_MODULES
from hwnas.models.quant import fake_quant, quantize_weight

#: Activations of hidden layers and FFN blocks, by the name a space gives.
ACTIVATIONS: dict[str, type[nn.Module]] = {name: getattr(nn, module) for name, module in ACTIVATION_MODULES.items()}


class QuantWeights(nn.Module):
    """Mixin: weights fake-quantised to ``bits`` during training, baked onto the grid before export."""

    bits: int | None
    baked: bool = False

    def weights(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def q(self, w: torch.Tensor) -> torch.Tensor:
        return w if self.baked else fake_quant(w, self.bits)

    @torch.no_grad()
    def bake(self) -> None:
        """Replace the float weights by their quantised values (the exported constants); no training after."""
        if self.bits is not None and not self.baked:
            for w in self.weights():
                w.copy_(quantize_weight(w, self.bits))
        self.baked = True


def uniform_init(shape: tuple[int, ...], fan_in: int) -> nn.Parameter:
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class Dense(QuantWeights):
    """``x @ W + b`` with W of shape [in, out]."""

    def __init__(self, n_in: int, n_out: int, bits: int | None = None) -> None:
        super().__init__()
        self.bits = bits
        self.weight = uniform_init((n_in, n_out), n_in)
        self.bias = uniform_init((n_out,), n_in)

    def weights(self) -> list[nn.Parameter]:
        return [self.weight]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.q(self.weight) + self.bias


class LowRank(QuantWeights):
    """``(x @ U) @ V + b`` with U [in, rank] and V [rank, out]: two MatMuls of rank r."""

    def __init__(self, n_in: int, n_out: int, rank: int, bits: int | None = None) -> None:
        super().__init__()
        self.bits = bits
        self.u = uniform_init((n_in, rank), n_in)
        self.v = uniform_init((rank, n_out), rank)
        self.bias = uniform_init((n_out,), rank)

    def weights(self) -> list[nn.Parameter]:
        return [self.u, self.v]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.q(self.u)) @ self.q(self.v) + self.bias


class BlockDiagonal(QuantWeights):
    """``blocks`` independent [in/b, out/b] maps, lowered as one batched MatMul (no zeros are stored)."""

    def __init__(self, n_in: int, n_out: int, blocks: int, bits: int | None = None) -> None:
        super().__init__()
        if n_in % blocks or n_out % blocks:
            raise ValueError(f"block-diagonal layer {n_in}->{n_out} needs both sizes divisible by blocks={blocks}")
        self.bits = bits
        self.blocks = blocks
        self.weight = uniform_init((blocks, n_in // blocks, n_out // blocks), n_in // blocks)
        self.bias = uniform_init((n_out,), n_in // blocks)

    def weights(self) -> list[nn.Parameter]:
        return [self.weight]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        xb = x.reshape(n, self.blocks, -1).transpose(0, 1)  # [b, N, in/b]
        yb = torch.matmul(xb, self.q(self.weight))  # [b, N, out/b]
        return yb.transpose(0, 1).reshape(n, -1) + self.bias


def per_layer(value: Any, depth: int, name: str, default: Any = None) -> list[Any]:
    """A per-layer value list from a scalar (same for every layer) or a sequence of ``depth`` values."""
    if value is None:
        return [default] * depth
    if isinstance(value, (list, tuple)):
        if len(value) != depth:
            raise ValueError(f"'{name}' has {len(value)} values for {depth} layers")
        return [default if v is None else v for v in value]
    return [value] * depth
