"""Weight sparsity: masks (unstructured magnitude, N:M, block), gradual pruning and a per-weight report.

Weights follow :mod:`hwnas.models.layers`: ``[in, out]`` (2-D) or ``[b, in/b, out/b]`` (block-diagonal), so the
reduction axis is ``-2`` and a mask is a bool tensor of the weight's shape (True = kept). Masks are applied to
the weights in place, so after :meth:`GradualPruner.finalize` the weights hold exact zeros and the ONNX
initializers exported from them do too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F

from hwnas.models.domains import SPARSITY_KINDS, SPARSITY_SCOPES
from hwnas.models.layers import QuantWeights, per_layer
from hwnas.validation import check_choice, check_float

PRUNE_KINDS = ("unstructured", "block", "N:M (e.g. 2:4)")


@dataclass(frozen=True)
class SparsitySpec:
    """What to prune: ``kind`` (unstructured, nm, block), a target per hidden layer, block side, scope."""

    kind: str
    targets: tuple[float, ...]
    block: int | None = None
    scope: str = "layer"


def sparsity_spec(config: Mapping[str, Any], depth: int) -> SparsitySpec | None:
    """The pruning a config asks for (``sparsity_kind``, ``sparsity``, ``sparsity_block``, ``sparsity_scope``)."""
    kind = config.get("sparsity_kind", "none")
    if kind not in SPARSITY_KINDS:
        raise ValueError(f"unknown sparsity_kind {kind!r}; known: {list(SPARSITY_KINDS)}")
    if kind == "none":
        return None
    targets = per_layer(config.get("sparsity"), depth, "sparsity", 0.0 if kind != "nm" else 0.5)
    for s in targets:
        check_float(s, "sparsity", low=0.0, high=1.0, high_inclusive=False, error=ValueError)
    block = config.get("sparsity_block")
    if kind == "block" and not block:
        raise ValueError("sparsity_kind 'block' needs sparsity_block (the side of a square block)")
    scope = check_choice(config.get("sparsity_scope", "layer"), "sparsity_scope", SPARSITY_SCOPES, error=ValueError)
    if scope == "global" and kind != "unstructured":
        raise ValueError(f"sparsity_scope 'global' prunes unstructured only, not sparsity_kind {kind!r}")
    return SparsitySpec(kind, tuple(float(s) for s in targets), int(block) if block else None, scope)


def _check(sparsity: float) -> None:
    check_float(sparsity, "sparsity", low=0.0, high=1.0, error=ValueError)


def unstructured_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep all but the ``round(sparsity · numel)`` smallest-magnitude entries (exact count, ties by position)."""
    _check(sparsity)
    k = round(sparsity * w.numel())
    keep = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
    if k:
        keep[torch.argsort(w.detach().abs().flatten(), stable=True)[:k]] = False
    return keep.view(w.shape)


def nm_mask(w: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Keep the ``n`` largest-magnitude of every ``m`` consecutive weights along the reduction axis (-2): the
    pattern sparse tensor cores need for 2:4. A trailing group shorter than ``m`` keeps its ``n`` largest."""
    if w.dim() < 2 or not 0 < n <= m:
        raise ValueError(f"N:M mask needs a >=2-D weight and 0 < n <= m, got shape {tuple(w.shape)}, {n}:{m}")
    a = w.detach().abs().transpose(-2, -1)  # [..., out, in]: groups run along the last axis
    k_in = a.shape[-1]
    a = F.pad(a, (0, (-k_in) % m), value=-1.0)  # padding is never among the kept (|w| >= 0)
    groups = a.reshape(*a.shape[:-1], -1, m)
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter(-1, groups.topk(n, dim=-1).indices, True)
    return keep.reshape(a.shape)[..., :k_in].transpose(-2, -1).contiguous()


def block_mask(w: torch.Tensor, sparsity: float, block: tuple[int, int]) -> torch.Tensor:
    """Zero the ``round(sparsity · blocks)`` [bi, bo] tiles of the last two axes with the smallest L1 norm
    (edge tiles may be partial when the sizes are not multiples of the block)."""
    if w.dim() < 2:
        raise ValueError(f"block mask needs a >=2-D weight, got shape {tuple(w.shape)}")
    bi, bo = block
    rows, cols = w.shape[-2:]
    a = F.pad(w.detach().abs(), (0, (-cols) % bo, 0, (-rows) % bi))
    nr, nc = a.shape[-2] // bi, a.shape[-1] // bo
    norms = a.reshape(*a.shape[:-2], nr, bi, nc, bo).sum(dim=(-3, -1))  # [..., nr, nc]
    keep = unstructured_mask(norms, sparsity)
    return keep.repeat_interleave(bi, -2).repeat_interleave(bo, -1)[..., :rows, :cols].contiguous()


def global_unstructured_masks(weights: Sequence[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Unstructured masks with one magnitude threshold across all ``weights`` (exact total count)."""
    flat = unstructured_mask(torch.cat([w.detach().abs().flatten() for w in weights]), sparsity)
    return [part.view(w.shape) for part, w in zip(flat.split([w.numel() for w in weights]), weights)]


def satisfies_nm(w: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """At most ``n`` non-zeros in every ``m`` consecutive weights along the reduction axis (-2)."""
    if w.dim() < 2:
        return False
    nz = (w.detach() != 0).transpose(-2, -1).float()
    nz = F.pad(nz, (0, (-nz.shape[-1]) % m))
    return bool((nz.reshape(*nz.shape[:-1], -1, m).sum(-1) <= n).all())


def _parse_kind(kind: str) -> tuple[str, tuple[int, int] | None]:
    if kind in ("unstructured", "block"):
        return kind, None
    if kind == "nm":
        return "nm", (2, 4)
    parts = kind.split(":")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return "nm", (int(parts[0]), int(parts[1]))
    raise ValueError(f"unknown pruning kind {kind!r}; known: {', '.join(PRUNE_KINDS)}")


class GradualPruner:
    """Gradual magnitude pruning of the ``weights()`` of QuantWeights layers (e.g. ``MLP.linear_layers()``).

    Schedule (Zhu & Gupta 2017): ``s(epoch) = s_f · (1 - (1 - t)^3)``, ``t = (epoch - start) / (end - start)``
    clipped to [0, 1] — 0 up to ``start_epoch``, ``s_f`` from ``end_epoch`` on. N:M (``kind="2:4"``) is
    all-or-nothing: its masks switch on at ``start_epoch``. ``scope="global"`` (unstructured only) uses one
    magnitude threshold across all layers. Use: :meth:`apply` after every optimiser step, :meth:`step` at the
    end of every epoch, :meth:`finalize` before bake/export.
    """

    def __init__(
        self,
        model_layers: Iterable[QuantWeights],
        kind: str,
        sparsity: float = 0.0,
        *,
        start_epoch: int,
        end_epoch: int,
        block: tuple[int, int] | None = None,
        scope: str = "layer",
    ) -> None:
        self.kind, self.nm = _parse_kind(kind)
        if self.kind == "block" and not block:
            raise ValueError("block pruning needs block=(rows, cols)")
        if scope not in SPARSITY_SCOPES or (scope == "global" and self.kind != "unstructured"):
            raise ValueError(f"scope must be 'layer' or 'global' (global: unstructured only), got {scope!r}")
        if end_epoch < start_epoch:
            raise ValueError(f"end_epoch {end_epoch} < start_epoch {start_epoch}")
        _check(sparsity)
        self.layers = list(model_layers)
        self.params = [w for layer in self.layers for w in layer.weights()]
        self.final_sparsity = 1.0 - self.nm[0] / self.nm[1] if self.nm else sparsity
        self.start_epoch, self.end_epoch = start_epoch, end_epoch
        self.block, self.scope = block, scope
        self.masks = [torch.ones_like(w, dtype=torch.bool) for w in self.params]
        self.current = 0.0

    def target(self, epoch: int) -> float:
        """Scheduled sparsity after the end of ``epoch``."""
        if self.nm:
            return self.final_sparsity if epoch >= self.start_epoch else 0.0
        if epoch >= self.end_epoch:
            t = 1.0
        elif self.end_epoch == self.start_epoch:
            t = 0.0
        else:
            t = max(0.0, (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch))
        return self.final_sparsity * (1.0 - (1.0 - t) ** 3)

    def _masks(self, s: float) -> list[torch.Tensor]:
        if self.nm:
            return [nm_mask(w, *self.nm) if s > 0 else torch.ones_like(w, dtype=torch.bool) for w in self.params]
        if self.scope == "global":
            return global_unstructured_masks(self.params, s)
        if self.kind == "block":
            assert self.block is not None
            return [block_mask(w, s, self.block) for w in self.params]
        return [unstructured_mask(w, s) for w in self.params]

    def step(self, epoch: int) -> float:
        """Recompute the masks for the scheduled sparsity of ``epoch`` (call at its end), apply them, return it."""
        self.current = self.target(epoch)
        self.masks = self._masks(self.current)
        self.apply()
        return self.current

    @torch.no_grad()
    def apply(self) -> None:
        """Zero the pruned weights in place (call after every optimiser step)."""
        for w, mask in zip(self.params, self.masks):
            w.mul_(mask)

    def finalize(self) -> list[dict]:
        """Leave exact zeros in the weights (what export writes) and return :func:`sparsity_report`."""
        self.apply()
        return sparsity_report(self.layers)


def sparsity_report(layers: Iterable[QuantWeights]) -> list[dict]:
    """Per weight tensor, in graph order: layer index and type, shape, zero count, zero fraction and whether it
    satisfies 2:4 along the reduction axis."""
    rows = []
    for i, layer in enumerate(layers):
        for j, w in enumerate(layer.weights()):
            zeros = int((w.detach() == 0).sum())
            rows.append({
                "layer": i, "layer_type": type(layer).__name__, "weight": j, "shape": list(w.shape),
                "zeros": zeros, "sparsity": zeros / w.numel(), "nm_2_4": satisfies_nm(w, 2, 4),
            })
    return rows
