"""FFN structures for MLP hidden layers and Transformer FFN blocks, built by :func:`make_ffn`.

* ``dense`` / ``lowrank`` / ``blockdiag``: the layers of :mod:`hwnas.models.layers` (block-diagonal is one
  batched MatMul over a [b, in/b, out/b] weight);
* ``glu`` / ``swiglu`` / ``geglu``: ``(act(x @ W_gate) * (x @ W_up)) @ W_down + b`` (:class:`GLU`);
* ``moe``: a top-k routed mixture of 2-layer ReLU experts (:class:`MixtureOfExperts`) whose exported graph
  computes each expert only on the rows routed to it.

Every module takes ``[..., d_in]`` (``[N, d]`` or ``[N, T, d]``) and returns ``[..., d_out]``. Each is a
:class:`~hwnas.models.layers.QuantWeights`: :meth:`weights` lists the weight tensors in the order of the linear
operators (MatMuls) of the exported ONNX graph and :meth:`bake` puts them on their grid before export. ``bits``
is an int (per-tensor fixed point, as in layers.py) or a precision mode of
:func:`hwnas.models.quant.fake_quant_mode` (``fp32``, ``fp16``, ``int8``, ``int4``, ``ternary``, ``binary``), so
the precision can differ per layer.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.models.domains import FFN_KINDS
from hwnas.models.layers import BlockDiagonal, Dense, LowRank, QuantWeights, uniform_init
from hwnas.models.quant import fake_quant_mode, quantize_mode

_BAKED_MODES = ("ternary", "binary")


class ModeQuant(QuantWeights):
    """:class:`QuantWeights` whose ``bits`` may also be a precision mode name.

    Training sees :func:`fake_quant_mode`. :meth:`bake` writes int-bit, ternary and binary values into the
    weights (ternary/binary deploy as fp32 MatMuls whose initializers hold only ``{-s, 0, +s}`` / ``{-s, +s}``,
    which ORT runs as is and the printed/analytical profiles read); ``fp16``/``int8``/``int4`` weights stay fp32
    because the deployment converters (``lowering.fp16`` / ``lowering.int8`` / ``lowering.int4``) round them."""

    bits: int | str | None

    def q(self, w: torch.Tensor) -> torch.Tensor:
        return w if self.baked else fake_quant_mode(w, self.bits)

    @torch.no_grad()
    def bake(self) -> None:
        if not self.baked and (isinstance(self.bits, int) or self.bits in _BAKED_MODES):
            for w in self.weights():
                w.copy_(quantize_mode(w, self.bits))
        self.baked = True


class DenseFFN(ModeQuant, Dense):
    """:class:`Dense` (``x @ W + b``) with precision modes."""


class LowRankFFN(ModeQuant, LowRank):
    """:class:`LowRank` (``(x @ U) @ V + b``) with precision modes."""


class BlockDiagonalFFN(ModeQuant, BlockDiagonal):
    """:class:`BlockDiagonal` (one batched MatMul) with precision modes and any leading dims."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return super().forward(x)
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)


_GLU_ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "swiglu": F.silu,
    "geglu": F.gelu,
    "glu": torch.sigmoid,
}


class GLU(ModeQuant):
    """Gated linear unit ``(act(x @ W_gate) * (x @ W_up)) @ W_down + b``; act = SiLU (swiglu), GELU (geglu) or
    sigmoid (glu). Weights W_gate, W_up [d_in, hidden] and W_down [hidden, d_out], in that (graph) order."""

    def __init__(
        self, d_in: int, d_out: int, hidden: int, variant: str = "swiglu", bits: int | str | None = None
    ) -> None:
        super().__init__()
        if variant not in _GLU_ACTS:
            raise ValueError(f"unknown GLU variant {variant!r}; known: {', '.join(_GLU_ACTS)}")
        self.bits = bits
        self.variant = variant
        self.w_gate = uniform_init((d_in, hidden), d_in)
        self.w_up = uniform_init((d_in, hidden), d_in)
        self.w_down = uniform_init((hidden, d_out), hidden)
        self.bias = uniform_init((d_out,), hidden)

    def weights(self) -> list[nn.Parameter]:
        return [self.w_gate, self.w_up, self.w_down]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = _GLU_ACTS[self.variant]
        return (act(x @ self.q(self.w_gate)) * (x @ self.q(self.w_up))) @ self.q(self.w_down) + self.bias


class MixtureOfExperts(ModeQuant):
    """Top-k mixture of ``experts`` 2-layer ReLU MLPs (d_in → hidden → d_out).

    Router: ``logits = x @ W_r + b_r`` ([d_in, experts]); the top-k logits of a token are softmax-normalised
    into its gates; output ``y = Σ_{e in top-k} gate_e · expert_e(x)``.

    * training (``self.training``): dense — every expert runs on every token, gates of unselected experts are 0
      (:meth:`forward_dense`);
    * eval and the exported ONNX graph (:meth:`forward_routed`): router ``MatMul, Add`` → ``TopK`` →
      ``Softmax`` (gates); then, unrolled per expert e: ``Equal``(top-k indices, e) → any over the k slots
      (``Cast, ReduceSum, Greater``) → ``NonZero`` = the row indices routed to e → ``Gather`` of those rows of x
      and of their gates → ``MatMul, Add, Relu, MatMul, Add`` on just those rows → ``Mul`` by the gates →
      ``ScatterElements`` into a zero [N, d_out] tensor + ``Add`` to the output (torch's ``index_add``; exact
      because a token reaches an expert at most once). An expert no token picked runs its MatMuls on 0 rows
      (ORT fuses each MatMul+Add into a Gemm, whose output is [0, ·]), so ORT computes what a deployed MoE
      does: router + top_k experts per token, plus O(N·experts) routing bookkeeping. Row counts are
      data-dependent (symbolic in the graph): take the cost from :meth:`costs`, not from static shapes.

    Weights in graph order: W_r, then W1_e, W2_e for e = 0..experts-1.
    """

    def __init__(
        self, d_in: int, d_out: int, hidden: int, experts: int, top_k: int, bits: int | str | None = None
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= experts:
            raise ValueError(f"MoE needs 1 <= top_k <= experts, got top_k={top_k}, experts={experts}")
        self.bits = bits
        self.d_in, self.d_out, self.hidden = d_in, d_out, hidden
        self.experts, self.top_k = experts, top_k
        self.router_w = uniform_init((d_in, experts), d_in)
        self.router_b = uniform_init((experts,), d_in)
        self.w1 = nn.ParameterList(uniform_init((d_in, hidden), d_in) for _ in range(experts))
        self.b1 = nn.ParameterList(uniform_init((hidden,), d_in) for _ in range(experts))
        self.w2 = nn.ParameterList(uniform_init((hidden, d_out), hidden) for _ in range(experts))
        self.b2 = nn.ParameterList(uniform_init((d_out,), hidden) for _ in range(experts))

    def weights(self) -> list[nn.Parameter]:
        return [self.router_w, *(w for e in range(self.experts) for w in (self.w1[e], self.w2[e]))]

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x @ self.q(self.w1[e]) + self.b1[e]) @ self.q(self.w2[e]) + self.b2[e]

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k expert indices [N, k] and their softmax gates [N, k] for tokens x [N, d_in]."""
        logits = x @ self.q(self.router_w) + self.router_b
        top_v, top_i = logits.topk(self.top_k, dim=-1)
        return top_i, torch.softmax(top_v, dim=-1)

    def forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert on every token, mixed by gates that are 0 for unselected experts ([N, d_in] in)."""
        top_i, gates = self.route(x)
        mix = torch.zeros(x.shape[0], self.experts, dtype=x.dtype, device=x.device).scatter(1, top_i, gates)
        outs = torch.stack([self.expert(e, x) for e in range(self.experts)], dim=1)  # [N, E, d_out]
        return (mix.unsqueeze(-1) * outs).sum(1)

    def forward_routed(self, x: torch.Tensor) -> torch.Tensor:
        """Each expert only on the rows routed to it, scatter-added back ([N, d_in] in; the exported path)."""
        top_i, gates = self.route(x)
        out = x.new_zeros((x.shape[0], self.d_out))
        for e in range(self.experts):
            hit = top_i == e  # [N, k]; a token picks an expert at most once
            rows = torch.nonzero(hit.any(dim=-1)).squeeze(-1)
            gate = (gates * hit).sum(-1).index_select(0, rows).unsqueeze(-1)
            out = out.index_add(0, rows, gate * self.expert(e, x.index_select(0, rows)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x if x.dim() == 2 else x.reshape(-1, x.shape[-1])
        y = self.forward_dense(x2) if self.training else self.forward_routed(x2)
        return y if x.dim() == 2 else y.reshape(*x.shape[:-1], self.d_out)

    def costs(self, batch: int) -> dict[str, int]:
        """MACs: ``dense_equivalent_macs`` (router + all experts on ``batch`` tokens, what the training forward
        computes), ``active_macs_per_token`` (router + top_k experts, what the exported graph computes) and
        ``active_macs`` (= batch × active_macs_per_token)."""
        router = self.d_in * self.experts
        expert = self.d_in * self.hidden + self.hidden * self.d_out
        active = router + self.top_k * expert
        return {
            "dense_equivalent_macs": batch * (router + self.experts * expert),
            "active_macs_per_token": active,
            "active_macs": batch * active,
            "router_macs_per_token": router,
            "expert_macs_per_token": expert,
        }


def _hidden(kind: str, d_in: int, hidden: int | None, expansion: float | None) -> int:
    if hidden:
        return int(hidden)
    if not expansion:
        raise ValueError(f"ffn {kind!r} needs hidden or expansion")
    return max(1, round(expansion * d_in))


def make_ffn(
    kind: str,
    d_in: int,
    d_out: int,
    *,
    hidden: int | None = None,
    rank: int | None = None,
    blocks: int | None = None,
    expansion: float | None = None,
    experts: int | None = None,
    top_k: int | None = None,
    bits: int | str | None = None,
) -> ModeQuant:
    """The FFN structure ``kind`` (one of :data:`FFN_KINDS`); ``glu``-family and ``moe`` hidden width is
    ``hidden`` or ``round(expansion × d_in)``; ``moe`` needs ``experts`` (``top_k`` defaults to 1)."""
    if kind == "dense":
        return DenseFFN(d_in, d_out, bits)
    if kind == "lowrank":
        if not rank:
            raise ValueError("ffn 'lowrank' needs a rank")
        return LowRankFFN(d_in, d_out, rank, bits)
    if kind == "blockdiag":
        if not blocks:
            raise ValueError("ffn 'blockdiag' needs blocks")
        if bits == "int4":
            raise ValueError("ffn 'blockdiag' cannot be deployed at int4: ONNX Runtime's MatMulNBits takes 2-D "
                             "weights and a block-diagonal layer is one batched MatMul; choose another precision "
                             "for block-diagonal layers (e.g. the constraint quant != 'int4' or ffn != 'blockdiag')")
        return BlockDiagonalFFN(d_in, d_out, blocks, bits)
    if kind in _GLU_ACTS:
        return GLU(d_in, d_out, _hidden(kind, d_in, hidden, expansion), kind, bits)
    if kind == "moe":
        if not experts:
            raise ValueError("ffn 'moe' needs experts")
        return MixtureOfExperts(d_in, d_out, _hidden(kind, d_in, hidden, expansion), experts, top_k or 1, bits)
    raise ValueError(f"unknown ffn structure {kind!r}; known: {', '.join(FFN_KINDS)}")


def model_summary(model: nn.Module) -> dict:
    """Parameter count and, per mixture-of-experts layer, its dense-equivalent and active MACs per token
    (:meth:`MixtureOfExperts.costs`): what a trial records next to its lowered graph's MACs."""
    moe = [{"layer": name, "experts": m.experts, "top_k": m.top_k,
            "dense_equivalent_macs_per_token": m.costs(1)["dense_equivalent_macs"],
            "active_macs_per_token": m.costs(1)["active_macs_per_token"]}
           for name, m in model.named_modules() if isinstance(m, MixtureOfExperts)]
    out: dict = {"params": int(sum(p.numel() for p in model.parameters()))}
    if moe:
        out["moe"] = moe
    return out
