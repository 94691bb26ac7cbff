"""Gradual pruning inside the training loop, from a model's :class:`~hwnas.models.sparsity.SparsitySpec`."""

from __future__ import annotations

from typing import Any

from hwnas.models.deploy import DeployableModule
from hwnas.models.sparsity import GradualPruner, SparsitySpec, sparsity_report
from hwnas.train.trainer import TrainHook, TrainState


class PruningHooks(TrainHook):
    """Prune from 10% to 60% of the epoch budget (Zhu & Gupta cubic schedule); keep best weights only once the
    target sparsity is reached; leave exact zeros at the end (so the exported ONNX holds them)."""

    def __init__(self, groups: list[list[Any]], spec: SparsitySpec, epochs: int) -> None:
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

    def on_epoch_start(self, state: TrainState) -> None:
        for p in self.pruners:
            p.step(state.epoch - 1)  # the schedule's value after the previous epoch

    def on_step_end(self, state: TrainState) -> None:
        for p in self.pruners:
            p.apply()

    def ready(self, state: TrainState) -> bool:
        return state.epoch > self.end

    def on_fit_end(self, state: TrainState) -> None:
        for p in self.pruners:
            p.step(self.end)  # the final masks, whatever epoch early stopping restored
            p.finalize()

    def report(self) -> list[dict]:
        return sparsity_report(self.layers)


def hooks_for(model: DeployableModule, epochs: int) -> list[TrainHook]:
    """The hooks a model's own settings ask for: gradual pruning when it has a sparsity spec."""
    if model.sparsity is None:
        return []
    return [PruningHooks(model.prunable_layers(), model.sparsity, epochs)]
