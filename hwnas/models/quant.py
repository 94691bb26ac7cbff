"""Fixed-point weights and inputs (straight-through fake quantisation) for the printed/tiny regime."""

from __future__ import annotations

import torch


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
