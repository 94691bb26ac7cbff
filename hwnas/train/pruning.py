"""Gradual pruning inside the training loop, from a model's :class:`~hwnas.models.mlp.SparsitySpec`."""

from __future__ import annotations

from typing import Any

from hwnas.models.sparsity import GradualPruner, sparsity_report
from hwnas.train._trainer import TrainHooks


class PruningHooks(TrainHooks):
    """Prune from 10% to 60% of the epoch budget (Zhu & Gupta cubic schedule); keep best weights only once the
    target sparsity is reached; leave exact zeros at the end (so the exported ONNX holds them)."""

    def __init__(self, groups: list[list[Any]], spec: Any, epochs: int) -> None:
        start, end = max(1, epochs // 10), max(1, (6 * epochs) // 10)
        kind = {"nm": "2:4"}.get(spec.kind, spec.kind)
        block = (spec.block, spec.block) if spec.block else None
        layers = [layer for group in groups for layer in group]
        if spec.scope == "global":
            self.pruners = [GradualPruner(layers, kind, spec.targets[0], start_epoch=start, end_epoch=end,
                                          block=block, scope="global")]
        else:
            self.pruners = [GradualPruner(group, kind, s, start_epoch=start, end_epoch=end, block=block)
                            for group, s in zip(groups, spec.targets) if s > 0 or kind == "2:4"]
        self.layers = layers
        self.end = end

    def start_epoch(self, epoch: int) -> None:
        for p in self.pruners:
            p.step(epoch - 1)  # the schedule's value after the previous epoch

    def after_step(self) -> None:
        for p in self.pruners:
            p.apply()

    def ready(self, epoch: int) -> bool:
        return epoch > self.end

    def finish(self) -> None:
        for p in self.pruners:
            p.step(self.end)  # the final masks, whatever epoch early stopping restored
            p.finalize()

    def report(self) -> list[dict]:
        return sparsity_report(self.layers)


def hooks_for(model: Any, epochs: int) -> TrainHooks | None:
    """Pruning hooks when the model asks for sparsity, else None."""
    spec = getattr(model, "sparsity", None)
    if spec is None:
        return None
    return PruningHooks(model.prunable_layers(), spec, epochs)
