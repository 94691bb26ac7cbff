"""Fixed-point weights and inputs (straight-through fake quantisation) for the printed/tiny regime."""

from __future__ import annotations

import torch

from hwnas.precision import PRECISIONS


def weight_scale(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-tensor symmetric scale: ``max|w| / (2**(bits-1) - 1)`` (the grid the printed profile re-derives)."""
    return w.detach().abs().max().clamp_min(1e-12) / (2 ** (bits - 1) - 1)


def quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Round ``w`` to signed ``bits``-bit integers times one scale (values, not a straight-through estimate)."""
    qmax = 2 ** (bits - 1) - 1
    scale = weight_scale(w, bits)
    return torch.clamp(torch.round(w / scale), -qmax, qmax) * scale


def fake_quant(w: torch.Tensor, bits: int | None) -> torch.Tensor:
    """Quantised values in the forward pass, identity gradient in the backward pass (STE)."""
    if bits is None:
        return w
    return w + (quantize_weight(w, bits) - w).detach()


# --- deployment precision modes (fp32 / fp16 / int8 / int4 weight-only, ternary, binary) -------------------------
#
# Weights are [..., in, out]: the reduction axis is -2, an output channel is one column (axis -1).

MODES = PRECISIONS


def _ste(w: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass, identity gradient w.r.t. ``w`` in the backward pass."""
    return w + (value - w).detach()


def ternary_value(w: torch.Tensor) -> torch.Tensor:
    """TWN ternary weights: ``{-s, 0, +s}`` with threshold ``0.7·mean|w|`` and ``s`` = mean |w| above it."""
    a = w.detach().abs()
    keep = a > 0.7 * a.mean()
    scale = a[keep].mean() if bool(keep.any()) else a.new_zeros(())
    return torch.sign(w.detach()) * keep * scale


def binary_value(w: torch.Tensor) -> torch.Tensor:
    """Binary weights ``±mean|w|`` (zeros map to ``+``, so binary weights are never sparse)."""
    scale = w.detach().abs().mean()
    return torch.where(w.detach() >= 0, scale, -scale)


def ternary(w: torch.Tensor) -> torch.Tensor:
    """Ternary weights in the forward pass, identity gradient (straight-through estimator)."""
    return _ste(w, ternary_value(w))


def binary(w: torch.Tensor) -> torch.Tensor:
    """Binary weights in the forward pass, identity gradient (straight-through estimator)."""
    return _ste(w, binary_value(w))


def channel_quant_value(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-output-channel fixed point: one scale ``max|w[..., :, j]| / (2**(bits-1)-1)`` per column."""
    qmax = 2 ** (bits - 1) - 1
    scale = w.detach().abs().amax(dim=-2, keepdim=True).clamp_min(1e-12) / qmax
    return torch.clamp(torch.round(w.detach() / scale), -qmax, qmax) * scale


INT4_BLOCK = 32  # rows per block of the int4 deployment (lowering.int4.quantize_int4's default block_size)


def int4_block_value(w: torch.Tensor, block: int = INT4_BLOCK) -> torch.Tensor:
    """ORT ``MatMulNBits`` symmetric int4 grid: per output column and per ``block`` consecutive rows of the
    reduction axis, ``scale = v / -8`` with ``v`` the entry of largest magnitude, ``q = clamp(round(w / scale),
    -8, 7)`` (so ``v`` itself is exact). Baked weights on this grid go through ``quantize_int4`` unchanged."""
    a = w.detach().transpose(-2, -1)  # [..., out, in]: blocks run along the last axis
    k = a.shape[-1]
    g = torch.nn.functional.pad(a, (0, (-k) % block)).reshape(*a.shape[:-1], -1, block)
    scale = g.gather(-1, g.abs().argmax(-1, keepdim=True)) / -8
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.clamp(torch.round(g / scale), -8, 7) * scale
    return q.reshape(*a.shape[:-1], -1)[..., :k].transpose(-2, -1).contiguous()


def quantize_mode(w: torch.Tensor, mode: str | int | None) -> torch.Tensor:
    """The values ``w`` takes under ``mode`` (plain values, for baking and checks; no gradient path)."""
    if mode is None or mode == "fp32":
        return w.detach().clone()
    if isinstance(mode, int):
        return quantize_weight(w.detach(), mode)
    if mode == "fp16":
        return w.detach().half().float()
    if mode == "int8":
        return channel_quant_value(w, 8)
    if mode == "int4":
        return int4_block_value(w)
    if mode == "ternary":
        return ternary_value(w)
    if mode == "binary":
        return binary_value(w)
    raise ValueError(f"unknown quantisation mode {mode!r}; known: {', '.join(MODES)} or an int bit-width")


def fake_quant_mode(w: torch.Tensor, mode: str | int | None) -> torch.Tensor:
    """Training-time view of ``w`` under ``mode`` (straight-through estimator).

    ``fp32``/None: ``w``; int bits: per-tensor fixed point (:func:`fake_quant`); ``fp16``: round trip through
    half; ``int8``: per-output-channel symmetric [-127, 127] (the weight grid of ``lowering.int8``'s per-channel
    QDQ; activations are quantised there too, not here); ``int4``: weight-only, the block-wise grid of ORT's
    ``MatMulNBits`` (:func:`int4_block_value`, what ``lowering.int4`` deploys);
    ``ternary``/``binary``: TWN ternary / sign·mean|w|."""
    if mode is None or mode == "fp32":
        return w
    if isinstance(mode, int):
        return fake_quant(w, mode)
    return _ste(w, quantize_mode(w, mode))
