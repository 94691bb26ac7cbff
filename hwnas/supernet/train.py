"""Sandwich-rule supernet training with in-place distillation (BigNAS), checkpointed after every epoch: one
:class:`~hwnas.train.trainer.Trainer` run whose step is the largest subnet's loss on the labels, with a
:class:`~hwnas.train.trainer.Distillation` hook for the other subnets and a checkpoint hook.

Works for any supernet with ``largest() / smallest() / sample_arch(rng) / forward(x, arch) / macs(arch)``:
:class:`~hwnas.supernet.mlp.MLPSupernet` on a tabular :class:`~hwnas.data.Dataset` (an epoch is one pass
over the shuffled training split) and :class:`~hwnas.supernet.transformer.TransformerSupernet` on a
:class:`~hwnas.data.text.TextDataset` (an epoch is ``steps_per_epoch`` batches of random training windows;
``sample_macs`` then counts per token)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from hwnas.data import Dataset
from hwnas.data.text import TextDataset
from hwnas.errors import ConfigError, clip
from hwnas.train.trainer import Batch, Distillation, Trainer, TrainHook, TrainState, shuffled_batches
from hwnas.validation import check_float, check_int

_COUNTERS = ("steps", "subnet_passes", "sample_passes", "sample_macs", "seconds")


class SubnetSampling:
    """``largest() / smallest() / sample_arch(rng)`` of a supernet, from its arch space ``self.space`` (any object
    with those three methods): the part of the protocol above that every supernet shares."""

    space: Any

    def largest(self) -> dict[str, Any]:
        return self.space.largest()

    def smallest(self) -> dict[str, Any]:
        return self.space.smallest()

    def sample_arch(self, rng: random.Random) -> dict[str, Any]:
        return self.space.sample_arch(rng)


def _save(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a killed save never leaves a truncated checkpoint behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class _Sandwich(TrainHook):
    """Draws each step's students (the smallest and ``n_random`` random subnets; the largest is the trainer's
    own forward) and counts the work done."""

    def __init__(self, supernet: torch.nn.Module, rng: random.Random, n_random: int) -> None:
        self.supernet, self.rng, self.n_random = supernet, rng, n_random
        self.stats: dict[str, float] = {k: 0 for k in _COUNTERS}
        self._archs: list[dict[str, Any]] = []

    def students(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        net = self.supernet
        self._archs = [net.smallest(), *(net.sample_arch(self.rng) for _ in range(self.n_random))]
        return [lambda x, a=a: net(x, a) for a in self._archs]

    def on_step_end(self, state: TrainState) -> None:
        assert state.batch is not None
        archs = [self.supernet.largest(), *self._archs]
        n = state.batch[1].numel()  # samples (tabular) or tokens (text)
        self.stats["steps"] += 1
        self.stats["subnet_passes"] += len(archs)
        self.stats["sample_passes"] += len(archs) * n
        self.stats["sample_macs"] += sum(self.supernet.macs(a) for a in archs) * n


class _Checkpoint(TrainHook):
    """Resume from ``path`` when it exists (``torch.load(weights_only=True)``: no code runs), save after every
    epoch, so that a resumed run follows the same batches and subnets as an uninterrupted one. A file there that
    is not such a checkpoint (garbage, truncated, of another supernet) is a ConfigError naming it, before any
    training."""

    def __init__(self, path: Path | None, sandwich: _Sandwich, generators: dict[str, Any]) -> None:
        self.path, self.sandwich, self.generators = path, sandwich, generators
        self.start = 0
        self._seconds = 0.0  # of the epochs before this run

    def _unusable(self, what: str) -> ConfigError:
        return ConfigError(f"{self.path}: {what}; delete it (or use another --out) to train the supernet anew")

    def on_fit_start(self, state: TrainState) -> None:
        if self.path is None or not os.path.lexists(self.path):
            return
        if not self.path.is_file():
            raise self._unusable("not a file, so not a supernet checkpoint")
        try:
            saved = torch.load(self.path, weights_only=True)
        except Exception:  # truncated, empty or foreign files raise many types; their advice is no help here
            raise self._unusable("not a PyTorch checkpoint that loads with weights_only=True (truncated, not written "
                                 "by torch.save, or holding more than tensors and plain values)") from None
        try:
            state.model.load_state_dict(saved["model"])
            state.optimizer.load_state_dict(saved["opt"])
            rng = saved["rng"]
            self.generators["torch"].set_state(rng["torch"])
            self.generators["python"].setstate(_tuple(rng["python"]))
            if "numpy" in rng:
                self.generators["numpy"].bit_generator.state = rng["numpy"]
            stats = {k: saved["stats"][k] for k in _COUNTERS}
            for k, v in stats.items():
                check_float(v, f"stats.{k}", low=0.0)  # numbers, so that counting goes on from them
            epoch = check_int(saved["epoch"], "epoch", low=0)
        except Exception as exc:
            raise self._unusable(f"not a checkpoint of this search's supernet ({_first_problem(exc)})") from None
        self.sandwich.stats.update(stats)
        self.start = state.epoch = epoch
        self._seconds = float(stats["seconds"])

    def on_epoch_end(self, state: TrainState) -> None:
        self.sandwich.stats["seconds"] = self._seconds + state.seconds
        if self.path is None:
            return
        g = self.generators
        _save(self.path, {"model": state.model.state_dict(), "opt": state.optimizer.state_dict(),
                          "epoch": state.epoch,
                          "rng": {"torch": g["torch"].get_state(), "python": list(_list(g["python"].getstate())),
                                  "numpy": g["numpy"].bit_generator.state},
                          "stats": dict(self.sandwich.stats)})


class _StopAfter(TrainHook):
    """End this run after ``epochs`` more epochs (a deliberate interruption, as a kill would be)."""

    def __init__(self, checkpoint: _Checkpoint, epochs: int) -> None:
        self.checkpoint, self.epochs = checkpoint, epochs

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch >= self.checkpoint.start + self.epochs:
            state.stop = True


def train_supernet(supernet: torch.nn.Module, data: Dataset | TextDataset, *, epochs: int, lr: float = 1e-2,
                   batch_size: int = 32, seed: int = 0, n_random: int = 2, checkpoint: str | Path | None = None,
                   threads: int = 1, steps_per_epoch: int = 100, stop_after: int | None = None,
                   distill: float = 1.0) -> dict[str, Any]:
    """Train ``supernet`` in place for ``epochs`` epochs in total (counting epochs of a resumed checkpoint).

    Every step: the largest subnet learns from the hard labels; the smallest and ``n_random`` random subnets
    learn ``distill · KL(largest ‖ subnet) + (1 − distill) · CE(labels)`` (1: BigNAS in-place distillation;
    0: every subnet learns from the labels); one Adam step on the summed gradients (clipped for text). After
    each epoch ``{"model", "opt", "epoch", "rng", "stats"}`` is saved with ``torch.save`` to ``checkpoint``;
    an existing checkpoint is resumed (a file that is not one is a ConfigError naming it).

    Returns cumulative ``epochs``, ``steps``, ``seconds``, ``subnet_passes`` (subnet forward passes on a
    batch), ``sample_passes`` (sample × subnet forward passes) and ``sample_macs`` (their multiply-accumulates),
    plus ``start_epoch`` (0, or the epoch resumed from) and the final ``loss`` of the largest subnet.
    ``stop_after`` ends this call after that many epochs (a deliberate interruption, as a kill would).
    """
    opt = torch.optim.Adam(supernet.parameters(), lr=lr)
    generators = {"torch": torch.Generator().manual_seed(seed), "python": random.Random(seed),
                  "numpy": np.random.default_rng(seed)}
    text = isinstance(data, TextDataset)
    if text:
        def batches() -> Iterator[Batch]:
            for _ in range(steps_per_epoch):
                x, y = data.random_windows(generators["numpy"], batch_size)
                yield torch.from_numpy(x), torch.from_numpy(y)
    else:
        batches = shuffled_batches(data.X_train, data.y_train, batch_size, generators["torch"])
    sandwich = _Sandwich(supernet, generators["python"], n_random)
    saving = _Checkpoint(Path(checkpoint) if checkpoint is not None else None, sandwich, generators)
    hooks: list[TrainHook] = [saving, Distillation(sandwich.students, distill), sandwich]
    if stop_after is not None:
        hooks.append(_StopAfter(saving, stop_after))
    state = Trainer(epochs, hooks=hooks, threads=threads, grad_clip=1.0 if text else None).fit(
        supernet, opt, batches, forward=lambda x: supernet(x, supernet.largest()))
    return {"epochs": state.epoch, "start_epoch": saving.start, **{k: sandwich.stats[k] for k in _COUNTERS},
            "loss": state.loss}


def _first_problem(exc: Exception) -> str:
    """One line of what ``exc`` says: for ``load_state_dict``'s list of mismatches, the first of them."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):  # "Error(s) in loading state_dict for ...:" then one per key
        lines = lines[1:]
    return clip(f"{type(exc).__name__}: {lines[0] if lines else ''}", 300)


def _list(value: Any) -> Any:
    """Python RNG state (nested tuples) as nested lists: plain types that ``weights_only`` loading accepts."""
    return [_list(v) for v in value] if isinstance(value, tuple) else value


def _tuple(value: Any) -> Any:
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value
