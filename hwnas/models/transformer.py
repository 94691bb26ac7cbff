"""The Transformer / tiny-LM family: a small pre-LayerNorm Transformer over token ids.

``tokens [N, T] → token embedding + learned positional embedding → depth × (x + Attn(LN(x)); x + FFN(LN(x)))
→ LN →`` an LM head (``logits [N, T, vocab]``, ``task="lm"``, causal attention) or a masked mean-pool and a
classifier (``logits [N, n_classes]``, ``task="classify"``, bidirectional attention).

* Attention is plain ``MatMul → Mul(scale) → Add(mask) → Softmax → MatMul`` (not
  ``F.scaled_dot_product_attention``) so the legacy ONNX exporter emits ops the profiles can read; the causal
  mask is a constant [seq_len, seq_len] buffer of 0 / -inf.
* Each block's FFN comes from :func:`hwnas.models.ffn.make_ffn`: the single-layer structures (``dense``,
  ``lowrank``, ``blockdiag``) become ``layer(d → hidden) → act → layer(hidden → d)``; the gated and mixture
  kinds (``glu``, ``swiglu``, ``geglu``, ``moe``) are already d → hidden → d.
* The LM head is **untied** (its own [d, vocab] weight): one more MatMul initializer instead of a transposed
  copy of the embedding, and it can be quantised like any other linear layer.
* Every linear layer (QKV, attention output, FFN, head) is a :class:`~hwnas.models.layers.QuantWeights`, so a
  per-block precision (int bits or a mode name of :func:`hwnas.models.quant.fake_quant_mode`) trains with
  straight-through fake quantisation and :meth:`TinyTransformer.bake` puts the weights on the grid.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from hwnas.models.deploy import DeployableModule
from hwnas.models.ffn import make_ffn  # the one place the FFN structures come from
from hwnas.models.layers import ACTIVATIONS, QuantWeights, per_layer
from hwnas.models.mlp import precision
from hwnas.models.sparsity import sparsity_spec
from hwnas.precision import FixedPoint
from hwnas.validation import check_int

TASKS = ("lm", "classify")
SINGLE_LAYER_FFNS = ("dense", "lowrank", "blockdiag")


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused QKV projection; causal (``mask`` buffer) or bidirectional."""

    def __init__(self, d_model: int, heads: int, seq_len: int, causal: bool, bits: int | str | None = None) -> None:
        super().__init__()
        self.heads, self.d_head = heads, d_model // heads
        self.qkv = make_ffn("dense", d_model, 3 * d_model, bits=bits)
        self.proj = make_ffn("dense", d_model, d_model, bits=bits)
        self.scale = 1.0 / math.sqrt(self.d_head)
        self.causal = causal
        mask = torch.full((seq_len, seq_len), float("-inf")).triu(1) if causal else torch.zeros(0, 0)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # int(): the exported graph reshapes to constant shapes ([-1, T, H, dh]; T is fixed at export)
        t, d = int(x.shape[1]), int(x.shape[2])
        q, k, v = self.qkv(x).split(d, dim=-1)
        q = q.reshape(-1, t, self.heads, self.d_head).transpose(1, 2)  # [N, H, T, dh]
        k = k.reshape(-1, t, self.heads, self.d_head).permute(0, 2, 3, 1)  # [N, H, dh, T]
        v = v.reshape(-1, t, self.heads, self.d_head).transpose(1, 2)  # [N, H, T, dh]
        scores = torch.matmul(q, k) * self.scale  # [N, H, T, T]
        if self.causal:
            scores = scores + (self.mask if self.mask.shape[0] == t else self.mask[:t, :t])
        attn = torch.softmax(scores, dim=-1)
        y = torch.matmul(attn, v).transpose(1, 2).reshape(-1, t, d)
        return self.proj(y)


class TwoLayerFFN(nn.Module):
    """``second(act(first(x)))`` for the single-layer FFN structures (dense, lowrank, blockdiag)."""

    def __init__(self, first: nn.Module, second: nn.Module, activation: str) -> None:
        super().__init__()
        self.first, self.act, self.second = first, ACTIVATIONS[activation](), second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.act(self.first(x)))


def block_ffn(kind: str, d_model: int, activation: str = "gelu", **kwargs: Any) -> nn.Module:
    """The FFN of one block (d_model → hidden → d_model) built with :func:`make_ffn`.

    ``kwargs`` are make_ffn's (``hidden``, ``expansion``, ``rank``, ``blocks``, ``experts``, ``top_k``, ``bits``);
    the hidden width is ``hidden`` or ``round(expansion × d_model)`` (expansion defaults to 4)."""
    kwargs = _given(kwargs)
    hidden = int(kwargs.pop("hidden", 0) or max(1, round(float(kwargs.pop("expansion", 4)) * d_model)))
    kwargs.pop("expansion", None)
    if kind in SINGLE_LAYER_FFNS:
        layer_kw = {k: kwargs[k] for k in ("rank", "blocks", "bits") if k in kwargs}
        first = make_ffn(kind, d_model, hidden, **layer_kw)
        second = make_ffn(kind, hidden, d_model, **layer_kw)
        return TwoLayerFFN(first, second, activation)
    return make_ffn(kind, d_model, d_model, hidden=hidden, **kwargs)


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: ``x + Attn(LN(x))`` then ``x + FFN(LN(x))``."""

    def __init__(self, d_model: int, heads: int, seq_len: int, causal: bool, ffn: nn.Module, dropout: float,
                 bits: int | str | None = None) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, heads, seq_len, causal, bits)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = ffn
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.ffn(self.ln2(x)))


class TinyTransformer(DeployableModule):
    """A small Transformer over token ids ``[N, T]`` (T ≤ seq_len); see the module docstring.

    ``ffn_kinds[i]`` / ``ffn_kwargs[i]``: block i's FFN (:func:`block_ffn`). ``block_bits[i]``: default
    precision of block i's linear layers (attention and FFN; a ``bits`` in ``ffn_kwargs[i]`` overrides it for
    the FFN); ``head_bits``: the head's. ``pad_id`` (classify): tokens equal to it are left out of the mean-pool.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        depth: int,
        heads: int,
        ffn_kinds: Sequence[str],
        ffn_kwargs: Sequence[Mapping[str, Any]],
        seq_len: int,
        task: str = "lm",
        n_classes: int | None = None,
        dropout: float = 0.0,
        *,
        activation: str = "gelu",
        block_bits: Sequence[int | str | None] | None = None,
        head_bits: int | str | None = None,
        pad_id: int | None = None,
    ) -> None:
        super().__init__()
        _check_shape(vocab_size, d_model, depth, heads, seq_len, task, n_classes, activation)
        if len(ffn_kinds) != depth or len(ffn_kwargs) != depth:
            raise ValueError(f"need one FFN kind and kwargs per block: depth={depth}, got "
                             f"{len(ffn_kinds)} kinds and {len(ffn_kwargs)} kwargs")
        bits = list(block_bits) if block_bits is not None else [None] * depth
        if len(bits) != depth:
            raise ValueError(f"block_bits has {len(bits)} values for {depth} blocks")
        self.task, self.seq_len, self.vocab_size, self.pad_id = task, seq_len, vocab_size, pad_id
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(torch.zeros(seq_len, d_model))
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.blocks = nn.ModuleList(
            Block(d_model, heads, seq_len, task == "lm",
                  block_ffn(kind, d_model, activation, **{"bits": bits[i], **_given(kw)}), dropout, bits[i])
            for i, (kind, kw) in enumerate(zip(ffn_kinds, ffn_kwargs))
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.head = make_ffn("dense", d_model, vocab_size if task == "lm" else int(n_classes or 0), bits=head_bits)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        if t > self.seq_len:
            raise ValueError(f"sequence of {t} tokens is longer than the model's seq_len ({self.seq_len})")
        h = self.drop(self.tok(tokens) + (self.pos if t == self.seq_len else self.pos[:t]))
        for block in self.blocks:
            h = block(h)
        h = self.ln_f(h)
        if self.task == "lm":
            return self.head(h)
        return self.head(self._pool(h, tokens))

    def _pool(self, h: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Mean over positions, skipping ``pad_id`` tokens (an all-padding row pools to zeros)."""
        if self.pad_id is None:
            return h.mean(dim=1)
        keep = (tokens != self.pad_id).to(h.dtype).unsqueeze(-1)  # [N, T, 1]
        return (h * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)

    def prunable_layers(self) -> list[list[QuantWeights]]:
        """One group per block: the linear layers of its FFN (what ``sparsity`` prunes)."""
        return [[m for m in block.ffn.modules() if isinstance(m, QuantWeights)] for block in self.blocks]

    def quant_layers(self) -> list[QuantWeights]:
        """Every quantisable linear layer, in forward order."""
        return [m for m in self.modules() if isinstance(m, QuantWeights)]


def _given(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``kwargs`` that are not None."""
    return {k: v for k, v in kwargs.items() if v is not None}


def _check_shape(vocab_size: int, d_model: int, depth: int, heads: int, seq_len: int, task: str,
                 n_classes: int | None, activation: str) -> None:
    """ValueError for sizes that cannot build a model."""
    for name, value in (("vocab_size", vocab_size), ("d_model", d_model), ("depth", depth), ("heads", heads),
                        ("seq_len", seq_len)):
        check_int(value, name, low=1, error=ValueError)
    if d_model % heads:
        raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    if task == "classify" and (not n_classes or n_classes < 2):
        raise ValueError(f"task 'classify' needs n_classes >= 2, got {n_classes!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")


def build_transformer(
    config: Mapping[str, Any],
    *,
    vocab_size: int,
    seq_len: int,
    task: str = "lm",
    n_classes: int | None = None,
    fixed_point: FixedPoint | None = None,
) -> TinyTransformer:
    """Build a :class:`TinyTransformer` from a config (an ``ArchConfig`` or any mapping).

    Parameters (per-block ones take a scalar or a list of ``depth`` values): ``depth`` (2), ``d_model`` (64),
    ``heads`` (2), ``ffn`` (per block, "dense"), ``expansion`` (per block, FFN hidden = expansion × d_model, 4),
    ``rank``, ``blocks``, ``experts``, ``top_k`` (per block, for lowrank / blockdiag / moe), ``weight_bits``
    (per block: int bits or a precision mode), ``activation`` ("gelu"; dense/lowrank/blockdiag FFNs),
    ``dropout`` (0). ``fixed_point`` (a profile's FixedPoint) supplies ``weight_bits`` for every block and the
    head when the config gives none. ``task="classify"`` masks token id 0 (padding) out of the mean-pool.
    """
    depth = int(config.get("depth", 2))
    d_model, heads = int(config.get("d_model", 64)), int(config.get("heads", 2))
    default_bits = fixed_point.weight_bits if fixed_point else None
    kinds = per_layer(config.get("ffn"), depth, "ffn", "dense")
    per_block = {key: per_layer(config.get(key), depth, key)
                 for key in ("expansion", "rank", "blocks", "experts", "top_k")}
    per_block["expansion"] = [4 if e is None else e for e in per_block["expansion"]]
    explicit = per_layer(config.get("weight_bits"), depth, "weight_bits")
    quants = per_layer(config.get("quant"), depth, "quant", "fp32")
    bits = [b or default_bits for b in explicit]
    kwargs = [{key: values[i] for key, values in per_block.items()} for i in range(depth)]
    for i in range(depth):  # ``quant`` sets the precision of block i's FFN; attention keeps the block's bits
        kwargs[i]["bits"] = precision(explicit[i], quants[i], default_bits, f"block {i}")
    model = TinyTransformer(
        vocab_size, d_model, depth, heads, kinds, kwargs, seq_len, task, n_classes,
        float(config.get("dropout", 0.0)), activation=str(config.get("activation", "gelu")),
        block_bits=bits, head_bits=default_bits, pad_id=0 if task == "classify" else None,
    )
    model.sparsity = sparsity_spec(config, depth)
    return model
