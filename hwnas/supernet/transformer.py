"""A weight-entangled Transformer LM supernet: every subnet (depth k, d_model d, heads h, per-block FFN
expansion e_i) uses the first k blocks and the leading slices of the largest weights: embeddings ``[:, :d]``,
LayerNorms ``[:d]``, Q/K/V each ``[:d, :d]`` of their third of the fused projection, FFN ``[:d, :e_i·d]`` and
``[:e_i·d, :d]``, head ``[:d]`` (BigNAS / HAT-style sharing over width and depth)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError
from hwnas.models.layers import ACTIVATIONS
from hwnas.models.transformer import TinyTransformer, build_transformer
from hwnas.supernet.train import SubnetSampling
from hwnas.space import Categorical, Int, SearchSpace

Arch = dict[str, Any]


def _choices(space: SearchSpace, name: str, default: Any) -> tuple[Any, ...]:
    p = space.params.get(name)
    if p is None:
        value = space.fixed.get(name, default)
        return tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if isinstance(p, Categorical):
        return tuple(p.choices)
    if isinstance(p, Int):
        return tuple(range(p.low, p.high + 1, p.step))
    raise ConfigError(f"space {space.name!r}: param '{name}': the Transformer supernet needs a categorical or int")


@dataclass(frozen=True)
class TransformerArchSpace:
    """The subnets of a Transformer supernet: depth range and the choices of d_model, heads and expansion."""

    depth_low: int
    depth_high: int
    d_models: tuple[int, ...]
    heads: tuple[int, ...]
    expansions: tuple[float, ...]

    def largest(self) -> Arch:
        return {"depth": self.depth_high, "d_model": max(self.d_models), "heads": max(self.heads),
                "expansion": [max(self.expansions)] * self.depth_high}

    def smallest(self) -> Arch:
        return {"depth": self.depth_low, "d_model": min(self.d_models), "heads": min(self.heads),
                "expansion": [min(self.expansions)] * self.depth_low}

    def sample_arch(self, rng: random.Random) -> Arch:
        depth = rng.randint(self.depth_low, self.depth_high)
        return {"depth": depth, "d_model": rng.choice(self.d_models), "heads": rng.choice(self.heads),
                "expansion": [rng.choice(self.expansions) for _ in range(depth)]}


def transformer_arch_space(space: SearchSpace) -> TransformerArchSpace:
    """The ranges of a Transformer space (``depth`` int; ``d_model``, ``heads``, ``expansion`` choices)."""
    depth = space.params.get("depth")
    if space.model != "transformer" or not isinstance(depth, Int) or depth.step != 1:
        raise ConfigError(f"space {space.name!r}: a Transformer supernet needs a transformer space with an int "
                          "'depth' (step 1)")
    d_models = tuple(int(d) for d in _choices(space, "d_model", 64))
    heads = tuple(int(h) for h in _choices(space, "heads", 2))
    expansions = tuple(float(e) for e in _choices(space, "expansion", 4))
    bad = [(d, h) for d in d_models for h in heads if d % h]
    if bad:
        raise ConfigError(f"space {space.name!r}: param 'heads': every d_model must divide by every heads choice "
                          f"to share weights; not {bad}")
    return TransformerArchSpace(depth.low, depth.high, d_models, heads, expansions)


def _hidden(expansion: float, d: int) -> int:
    return max(1, round(float(expansion) * d))  # as hwnas.models.transformer.block_ffn


def _uniform(shape: tuple[int, ...], fan_in: int) -> nn.Parameter:
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class _SharedBlock(nn.Module):
    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.ln1_w, self.ln1_b = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d))
        self.qkv_w, self.qkv_b = _uniform((d, 3 * d), d), _uniform((3 * d,), d)
        self.proj_w, self.proj_b = _uniform((d, d), d), _uniform((d,), d)
        self.ln2_w, self.ln2_b = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d))
        self.ff1_w, self.ff1_b = _uniform((d, hidden), d), _uniform((hidden,), d)
        self.ff2_w, self.ff2_b = _uniform((hidden, d), hidden), _uniform((d,), hidden)

    def qkv(self, d: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The fused [d, 3d] projection of a width-d subnet: the leading d columns of each of Q, K and V."""
        full = self.qkv_w.shape[0]
        cols = [slice(j * full, j * full + d) for j in range(3)]
        return (torch.cat([self.qkv_w[:d, c] for c in cols], dim=1), torch.cat([self.qkv_b[c] for c in cols]))


class TransformerSupernet(SubnetSampling, nn.Module):
    """The largest Transformer LM of a space, every weight shared by the subnets (see the module docstring)."""

    def __init__(self, vocab_size: int, seq_len: int, space: TransformerArchSpace, activation: str = "gelu",
                 fixed: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
        self.space, self.vocab_size, self.seq_len, self.activation = space, vocab_size, seq_len, activation
        self.fixed = dict(fixed or {})
        d, hidden = max(space.d_models), _hidden(max(space.expansions), max(space.d_models))
        self.tok = nn.Parameter(torch.randn(vocab_size, d) * 0.02)
        self.pos = nn.Parameter(torch.randn(seq_len, d) * 0.02)
        self.blocks = nn.ModuleList(_SharedBlock(d, hidden) for _ in range(space.depth_high))
        self.lnf_w, self.lnf_b = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d))
        self.head_w, self.head_b = _uniform((d, vocab_size), d), _uniform((vocab_size,), d)
        self.register_buffer("mask", torch.full((seq_len, seq_len), float("-inf")).triu(1), persistent=False)
        self.act = ACTIVATIONS[activation]()

    @classmethod
    def from_space(cls, space: SearchSpace, vocab_size: int, seq_len: int) -> "TransformerSupernet":
        activation = str(space.fixed.get("activation", "gelu"))
        return cls(vocab_size, seq_len, transformer_arch_space(space), activation, space.fixed)

    @staticmethod
    def arch_of(config: Mapping[str, Any]) -> Arch:
        depth = int(config.get("depth", 2))
        e = config.get("expansion", 4)
        return {"depth": depth, "d_model": int(config.get("d_model", 64)), "heads": int(config.get("heads", 2)),
                "expansion": [float(x) for x in (e if isinstance(e, (list, tuple)) else [e] * depth)]}

    def check(self, arch: Mapping[str, Any]) -> tuple[int, int, int, list[float]]:
        depth, d, h = int(arch["depth"]), int(arch["d_model"]), int(arch["heads"])
        exps = [float(e) for e in arch["expansion"]]
        s = self.space
        if not s.depth_low <= depth <= s.depth_high or len(exps) != depth or d > max(s.d_models) or d % h:
            raise ValueError(f"subnet {dict(arch)} is not covered by the supernet {s}")
        if any(_hidden(e, d) > self.blocks[0].ff1_w.shape[1] for e in exps):
            raise ValueError(f"subnet {dict(arch)}: FFN wider than the supernet's")
        return depth, d, h, exps

    def macs(self, arch: Mapping[str, Any]) -> int:
        """Multiply-accumulates of one token's forward pass (projections, attention, FFN, head)."""
        depth, d, _, exps = self.check(arch)
        per_block = [4 * d * d + 2 * self.seq_len * d + 2 * d * _hidden(e, d) for e in exps]
        return sum(per_block) + d * self.vocab_size

    def forward(self, tokens: torch.Tensor, arch: Mapping[str, Any]) -> torch.Tensor:
        depth, d, heads, exps = self.check(arch)
        t = int(tokens.shape[1])
        dh = d // heads
        x = F.embedding(tokens, self.tok[:, :d]) + self.pos[:t, :d]
        for b, e in zip(self.blocks[:depth], exps):
            y = F.layer_norm(x, (d,), b.ln1_w[:d], b.ln1_b[:d])
            w, bias = b.qkv(d)
            q, k, v = (y @ w + bias).split(d, dim=-1)
            q = q.reshape(-1, t, heads, dh).transpose(1, 2)
            k = k.reshape(-1, t, heads, dh).permute(0, 2, 3, 1)
            v = v.reshape(-1, t, heads, dh).transpose(1, 2)
            scores = torch.matmul(q, k) * (1.0 / math.sqrt(dh)) + self.mask[:t, :t]
            att = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(-1, t, d)
            x = x + (att @ b.proj_w[:d, :d] + b.proj_b[:d])
            hid = _hidden(e, d)
            y = F.layer_norm(x, (d,), b.ln2_w[:d], b.ln2_b[:d])
            x = x + (self.act(y @ b.ff1_w[:d, :hid] + b.ff1_b[:hid]) @ b.ff2_w[:hid, :d] + b.ff2_b[:d])
        x = F.layer_norm(x, (d,), self.lnf_w[:d], self.lnf_b[:d])
        return x @ self.head_w[:d] + self.head_b

    def config(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        depth, d, h, exps = self.check(arch)
        exp_values: Sequence[Any] = [int(e) if float(e).is_integer() else e for e in exps]
        return {**self.fixed, "depth": depth, "d_model": d, "heads": h, "expansion": list(exp_values),
                "ffn": "dense", "activation": self.activation}

    @torch.no_grad()
    def extract(self, arch: Mapping[str, Any], fixed_point: Any = None) -> TinyTransformer:
        """A stand-alone :class:`TinyTransformer` carrying the subnet's inherited weights. LayerNorm has no
        running statistics, so an extracted subnet needs no recalibration."""
        depth, d, _, exps = self.check(arch)
        model = build_transformer(self.config(arch), vocab_size=self.vocab_size, seq_len=self.seq_len, task="lm",
                                  fixed_point=fixed_point)
        model.tok.weight.copy_(self.tok[:, :d])
        model.pos.copy_(self.pos[:, :d])
        for blk, b, e in zip(model.blocks, self.blocks, exps):
            hid = _hidden(e, d)
            blk.ln1.weight.copy_(b.ln1_w[:d]); blk.ln1.bias.copy_(b.ln1_b[:d])  # noqa: E702
            w, bias = b.qkv(d)
            blk.attn.qkv.weight.copy_(w); blk.attn.qkv.bias.copy_(bias)  # noqa: E702
            blk.attn.proj.weight.copy_(b.proj_w[:d, :d]); blk.attn.proj.bias.copy_(b.proj_b[:d])  # noqa: E702
            blk.ln2.weight.copy_(b.ln2_w[:d]); blk.ln2.bias.copy_(b.ln2_b[:d])  # noqa: E702
            blk.ffn.first.weight.copy_(b.ff1_w[:d, :hid]); blk.ffn.first.bias.copy_(b.ff1_b[:hid])  # noqa: E702
            blk.ffn.second.weight.copy_(b.ff2_w[:hid, :d]); blk.ffn.second.bias.copy_(b.ff2_b[:d])  # noqa: E702
        model.ln_f.weight.copy_(self.lnf_w[:d]); model.ln_f.bias.copy_(self.lnf_b[:d])  # noqa: E702
        model.head.weight.copy_(self.head_w[:d]); model.head.bias.copy_(self.head_b)  # noqa: E702
        return model
