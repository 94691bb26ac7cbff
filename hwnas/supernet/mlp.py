"""A weight-entangled MLP supernet: every subnet (depth d, widths w_0..w_{d-1}) uses the first d hidden layers
and the top-left ``[:in, :out]`` slices of the largest weights (BigNAS-style sharing over width and depth)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from hwnas.models.layers import ACTIVATIONS, uniform_init
from hwnas.models.mlp import MLP, build_mlp
from hwnas.models.preprocess import InputStats, Standardize
from hwnas.errors import ConfigError
from hwnas.supernet.train import SubnetSampling
from hwnas.space import ArchConfig, Int, SearchSpace

#: A subnet: ``{"depth": d, "width": [w_0, ..., w_{d-1}]}``.
Arch = dict[str, Any]


@dataclass(frozen=True)
class ArchSpace:
    """The subnets a supernet covers: depth in [depth_low, depth_high], every width in [width_low, width_high]
    (drawn log-uniformly when ``width_log``, as :meth:`SearchSpace.sample` does)."""

    depth_low: int
    depth_high: int
    width_low: int
    width_high: int
    width_log: bool = False
    width_step: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.depth_low <= self.depth_high or not 1 <= self.width_low <= self.width_high:
            raise ValueError(f"empty or invalid arch space {self}")
        if self.width_step < 1 or (self.width_log and self.width_step != 1):
            raise ValueError(f"invalid width step in {self}")

    @property
    def width_max(self) -> int:
        """The largest width on the step grid."""
        return self.width_low + (self.width_high - self.width_low) // self.width_step * self.width_step

    def largest(self) -> Arch:
        return {"depth": self.depth_high, "width": [self.width_max] * self.depth_high}

    def smallest(self) -> Arch:
        return {"depth": self.depth_low, "width": [self.width_low] * self.depth_low}

    def sample_arch(self, rng: random.Random) -> Arch:
        """A uniformly random depth and independent per-layer widths."""
        depth = rng.randint(self.depth_low, self.depth_high)
        return {"depth": depth, "width": [self._width(rng) for _ in range(depth)]}

    def _width(self, rng: random.Random) -> int:
        if self.width_log:
            w = int(round(math.exp(rng.uniform(math.log(self.width_low), math.log(self.width_high)))))
            return min(max(w, self.width_low), self.width_high)
        return rng.randrange(self.width_low, self.width_max + 1, self.width_step)


def arch_space(space: SearchSpace) -> ArchSpace:
    """The depth / width ranges of an MLP search space with an Int ``depth`` and a per-layer Int ``width``
    (other parameters such as ``ffn`` are ignored here; :func:`hwnas.supernet.spaces.restrict` decides them)."""
    depth, width = space.params.get("depth"), space.params.get("width")
    if space.model != "mlp" or not isinstance(depth, Int) or not isinstance(width, Int):
        raise ConfigError(f"space {space.name!r}: a supernet needs an mlp space with int 'depth' and 'width' params")
    if width.per_layer not in (None, "depth") or depth.step != 1:
        raise ConfigError(f"space {space.name!r}: param 'width' must be per layer of 'depth' (depth with step 1)")
    return ArchSpace(depth.low, depth.high, width.low, width.high, width.log, width.step)



class MLPSupernet(SubnetSampling, nn.Module):
    """Standardize → up to ``max_depth`` dense hidden layers of up to ``max_width`` units → head.

    Weights are stored as [in, out] (like :class:`hwnas.models.layers.Dense`) at their largest shapes; a
    subnet slices ``W[:in, :out]`` and ``b[:out]``; the head is sliced to the last hidden width.
    """

    def __init__(self, n_features: int, n_classes: int, stats: InputStats, max_depth: int, max_width: int,
                 activation: str = "relu", space: ArchSpace | None = None) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
        self.space = space or ArchSpace(1, max_depth, 1, max_width)
        if self.space.depth_high > max_depth or self.space.width_max > max_width:
            raise ValueError(f"arch space {self.space} exceeds the supernet ({max_depth} x {max_width})")
        self.n_features, self.n_classes, self.stats = n_features, n_classes, stats
        self.max_depth, self.max_width, self.activation = max_depth, max_width, activation
        self.pre = Standardize(stats)
        ins = [n_features] + [max_width] * (max_depth - 1)
        self.weights = nn.ParameterList(uniform_init((n, max_width), n) for n in ins)
        self.biases = nn.ParameterList(uniform_init((max_width,), n) for n in ins)
        self.head_weight = uniform_init((max_width, n_classes), max_width)
        self.head_bias = uniform_init((n_classes,), max_width)
        self.act = ACTIVATIONS[activation]()

    @classmethod
    def from_space(cls, space: SearchSpace | ArchSpace, n_features: int, n_classes: int, stats: InputStats,
                   activation: str = "relu") -> "MLPSupernet":
        """The supernet covering exactly a search space's depth / width ranges."""
        a = space if isinstance(space, ArchSpace) else arch_space(space)
        return cls(n_features, n_classes, stats, a.depth_high, a.width_max, activation, space=a)

    # -- subnets ----------------------------------------------------------------------------------------
    @staticmethod
    def arch_of(config: Mapping[str, Any]) -> Arch:
        """The subnet of an MLP config (its ``depth`` and ``width``)."""
        depth = int(config["depth"])
        widths = config["width"]
        widths = list(widths) if isinstance(widths, (list, tuple)) else [widths] * depth
        return {"depth": depth, "width": [int(w) for w in widths]}

    def check(self, arch: Mapping[str, Any]) -> tuple[int, list[int]]:
        """``(depth, widths)`` of a subnet, validated against the supernet's largest shapes."""
        depth = int(arch["depth"])
        widths = arch["width"]
        widths = [int(w) for w in (widths if isinstance(widths, (list, tuple)) else [widths] * depth)]
        if not 1 <= depth <= self.max_depth or len(widths) != depth:
            raise ValueError(f"subnet {dict(arch)}: depth must be 1..{self.max_depth} with one width per layer")
        if not all(1 <= w <= self.max_width for w in widths):
            raise ValueError(f"subnet {dict(arch)}: widths must be 1..{self.max_width}")
        return depth, widths

    def macs(self, arch: Mapping[str, Any]) -> int:
        """Multiply-accumulates of one sample's forward pass through a subnet."""
        _, widths = self.check(arch)
        sizes = [self.n_features, *widths, self.n_classes]
        return sum(a * b for a, b in zip(sizes, sizes[1:]))

    def forward(self, x: torch.Tensor, arch: Mapping[str, Any]) -> torch.Tensor:
        depth, widths = self.check(arch)
        h = self.pre(x)
        n_in = self.n_features
        for i, w in enumerate(widths):
            h = self.act(h @ self.weights[i][:n_in, :w] + self.biases[i][:w])
            n_in = w
        return h @ self.head_weight[:n_in] + self.head_bias

    def config(self, arch: Mapping[str, Any]) -> ArchConfig:
        """The hwnas MLP config of a subnet (dense layers, the supernet's activation)."""
        depth, widths = self.check(arch)
        return ArchConfig("mlp", {"depth": depth, "width": widths, "activation": self.activation, "ffn": "dense"})

    @torch.no_grad()
    def extract(self, arch: Mapping[str, Any], fixed_point: Any = None) -> MLP:
        """A stand-alone :class:`MLP` of the subnet carrying its inherited (sliced, copied) weights.

        With a profile's ``fixed_point`` the MLP is built as the search builds it for that profile (fixed-point
        input and weights): the inherited weights are then quantised when baked (post-training quantisation).
        The MLP has no normalisation layer with running statistics, so nothing needs recalibrating."""
        depth, widths = self.check(arch)
        model = build_mlp(self.config(arch), n_features=self.n_features, n_classes=self.n_classes, stats=self.stats,
                          fixed_point=fixed_point)
        if type(model.pre) is type(self.pre):
            model.pre.load_state_dict(self.pre.state_dict())
        n_in = self.n_features
        for i, w in enumerate(widths):
            model.layers[i].weight.copy_(self.weights[i][:n_in, :w])
            model.layers[i].bias.copy_(self.biases[i][:w])
            n_in = w
        model.head.weight.copy_(self.head_weight[:n_in])
        model.head.bias.copy_(self.head_bias)
        return model
