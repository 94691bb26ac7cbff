"""Input preprocessing that lives inside the model (and so inside the exported ONNX: raw features in)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class InputStats:
    """Per-feature statistics of the training split."""

    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> "InputStats":
        x = np.asarray(x, dtype=np.float64)
        return cls(x.mean(0), x.std(0), x.min(0), x.max(0))


def _buffer(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


class Standardize(nn.Module):
    """``(x - mean) / std`` with training-split statistics (constant features get std 1)."""

    def __init__(self, stats: InputStats) -> None:
        super().__init__()
        std = np.where(stats.std > 1e-8, stats.std, 1.0)
        self.register_buffer("mean", _buffer(stats.mean))
        self.register_buffer("inv_std", _buffer(1.0 / std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


class FixedPointInput(nn.Module):
    """Min-max scale to [0, 1] (training range, clipped) and round to ``bits``-bit codes, as a printed
    circuit's sensor interface delivers them: the first layer sees ``code / (2**bits - 1)``, or the codes
    themselves (float64) once the model is in its exact integer form (:mod:`hwnas.models.fixed`)."""

    integer: bool = False

    def __init__(self, stats: InputStats, bits: int) -> None:
        super().__init__()
        span = np.where(stats.high - stats.low > 1e-12, stats.high - stats.low, 1.0)
        self.bits = bits
        self.levels = float(2**bits - 1)
        self.register_buffer("low", _buffer(stats.low))
        self.register_buffer("inv_span", _buffer(1.0 / span))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes = torch.round(torch.clamp((x - self.low) * self.inv_span, 0.0, 1.0) * self.levels)
        return codes.double() if self.integer else codes / self.levels
