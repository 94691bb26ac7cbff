"""The one training loop of hwnas, and the hooks that make it every task's and every strategy's trainer.

:class:`Trainer` runs epochs of optimiser steps: forward a batch, take the loss (plus what the hooks add),
check it is finite, step. Everything that differs between a candidate's training, a supernet's sandwich
training and a DARTS search is a hook, called in list order:

* :class:`EarlyStopping`: validation after every epoch, stop after ``patience`` epochs without improvement,
  best weights restored at the end (only epochs that every hook calls ``ready`` count, so a pruning schedule
  finishes before weights are kept);
* :class:`~hwnas.train.pruning.PruningHooks`: gradual magnitude pruning to exact zeros;
* :class:`Distillation`: extra students learn from the detached output of the step's forward (in-place
  distillation of a supernet's sandwich rule);
* strategy-specific hooks (checkpoints, DARTS's architecture steps) live with their strategy.

Hook order matters at the end: put :class:`EarlyStopping` first, so later hooks' ``on_fit_end`` see the
restored best weights (pruning finalises its masks on them).
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import CandidateError

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class TrainSettings:
    """Budget and optimiser settings (``lr``, ``batch_size``, ``weight_decay`` may come from the space)."""

    epochs: int = 100
    patience: int = 15
    lr: float = 1e-2
    batch_size: int = 64
    weight_decay: float = 0.0
    seed: int = 0
    #: torch intra-op threads while training; 1 is fastest and steadiest for small models on a shared CPU.
    threads: int = 1


@dataclass
class TrainState:
    """What the loop and its hooks share. ``epoch`` counts finished epochs (a resumed run starts above 0)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    steps: int = 0
    #: The current batch and the model's output on it (a distillation teacher reads it).
    batch: Batch | None = None
    output: torch.Tensor | None = None
    #: The main loss of the last step.
    loss: float = math.nan
    #: Whether every hook accepts this epoch's weights as a result (set before ``on_epoch_end``).
    ready: bool = True
    #: Set by a hook to end training after this epoch.
    stop: bool = False
    seconds: float = 0.0


class TrainHook:
    """Callbacks into :class:`Trainer`; the base class does nothing."""

    def on_fit_start(self, state: TrainState) -> None:
        """Before the first epoch (a checkpoint may restore ``state.epoch`` here)."""

    def on_epoch_start(self, state: TrainState) -> None:
        """Before the epoch's first step; ``state.epoch`` is the epoch about to run (from 1)."""

    def extra_loss(self, state: TrainState) -> torch.Tensor | None:
        """A term added to the step's loss before the backward pass (e.g. distillation), or None."""
        return None

    def on_step_end(self, state: TrainState) -> None:
        """After every optimiser step."""

    def ready(self, state: TrainState) -> bool:
        """Whether the weights after this epoch may be kept as a result (e.g. pruning has finished)."""
        return True

    def on_epoch_end(self, state: TrainState) -> None:
        """After the epoch's last step (validation, early stopping, checkpoints)."""

    def on_fit_end(self, state: TrainState) -> None:
        """After the last epoch, before the model is handed on (export)."""


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits ``[..., C]`` against integer targets ``[...]`` (classifiers and LMs)."""
    return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))


class Trainer:
    """Runs ``epochs`` epochs (in total, counting epochs a hook restored) of steps over ``batches()``."""

    def __init__(self, epochs: int, *, hooks: Sequence[TrainHook] = (), threads: int = 1,
                 grad_clip: float | None = None) -> None:
        self.epochs, self.hooks, self.threads, self.grad_clip = int(epochs), list(hooks), int(threads), grad_clip

    def fit(self, model: nn.Module, optimizer: torch.optim.Optimizer, batches: Callable[[], Iterable[Batch]], *,
            forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
            loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = cross_entropy) -> TrainState:
        """Train ``model`` in place; raise :class:`CandidateError` when a loss becomes NaN/inf (diverged).

        ``batches()`` yields one epoch of ``(x, y)``; ``forward(x)`` defaults to ``model(x)``."""
        forward = forward or model
        state = TrainState(model, optimizer)
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for h in self.hooks:
                h.on_fit_start(state)
            while state.epoch < self.epochs and not state.stop:
                began = time.perf_counter()
                state.epoch += 1
                model.train()
                for h in self.hooks:
                    h.on_epoch_start(state)
                for x, y in batches():
                    self._step(state, forward, loss, x, y)
                state.ready = all(h.ready(state) for h in self.hooks)
                state.seconds += time.perf_counter() - began
                for h in self.hooks:
                    h.on_epoch_end(state)
            for h in self.hooks:
                h.on_fit_end(state)
        finally:
            torch.set_num_threads(previous)
            model.eval()
        return state

    def _step(self, state: TrainState, forward: Callable[[torch.Tensor], torch.Tensor],
              loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> None:
        output = forward(x)
        loss = loss_fn(output, y)
        if not torch.isfinite(loss):
            raise CandidateError(f"training diverged: loss is {loss.item()} at epoch {state.epoch}, "
                                 f"step {state.steps + 1}")
        state.batch, state.output, state.loss = (x, y), output, loss.item()
        for h in self.hooks:
            extra = h.extra_loss(state)
            if extra is not None:
                loss = loss + extra
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(state.model.parameters(), self.grad_clip)
        state.optimizer.step()
        state.steps += 1
        for h in self.hooks:
            h.on_step_end(state)


class EarlyStopping(TrainHook):
    """Validate after every epoch; stop after ``patience`` epochs without a lower validation loss; restore the
    best weights at the end. Epochs some hook is not ``ready`` for are never kept, and patience counts from
    the first ready one."""

    def __init__(self, validate: Callable[[], float], patience: int) -> None:
        self.validate, self.patience = validate, int(patience)
        self.best_loss, self.best_epoch = math.inf, 0
        self._best_state: dict[str, Any] | None = None

    def on_fit_start(self, state: TrainState) -> None:
        self._best_state = copy.deepcopy(state.model.state_dict())

    def on_epoch_end(self, state: TrainState) -> None:
        state.model.eval()
        val = float(self.validate())
        if not math.isfinite(val):
            raise CandidateError(f"training diverged: validation loss is {val} at epoch {state.epoch}")
        if not state.ready:
            self.best_loss, self.best_epoch = math.inf, state.epoch
        elif val < self.best_loss - 1e-6:
            self.best_loss, self.best_epoch = val, state.epoch
            self._best_state = copy.deepcopy(state.model.state_dict())
        elif state.epoch - self.best_epoch >= self.patience:
            state.stop = True

    def on_fit_end(self, state: TrainState) -> None:
        if math.isfinite(self.best_loss) and self._best_state is not None:
            state.model.load_state_dict(self._best_state)


class Distillation(TrainHook):
    """In-place distillation: each student of ``students()`` (forward functions drawn anew every step) learns
    ``weight · KL(teacher ‖ student) + (1 − weight) · CE(labels)``, the teacher being the step's own detached
    output. A supernet's sandwich rule: the largest subnet is the teacher, the smallest and random subnets the
    students (BigNAS); ``weight`` 0 trains the students on the labels alone."""

    def __init__(self, students: Callable[[], Sequence[Callable[[torch.Tensor], torch.Tensor]]],
                 weight: float = 1.0) -> None:
        self.students, self.weight = students, float(weight)

    def extra_loss(self, state: TrainState) -> torch.Tensor | None:
        assert state.batch is not None and state.output is not None
        x, y = state.batch
        teacher = state.output.detach()
        soft = teacher.reshape(-1, teacher.shape[-1]).softmax(1)
        total = None
        for student in self.students():
            logits = student(x).reshape(soft.shape)
            term = self.weight * F.kl_div(logits.log_softmax(1), soft, reduction="batchmean")
            if self.weight < 1.0:
                term = term + (1.0 - self.weight) * F.cross_entropy(logits, y.reshape(-1))
            total = term if total is None else total + term
        return total


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def shuffled_batches(x: np.ndarray, y: np.ndarray, batch_size: int, generator: torch.Generator
                     ) -> Callable[[], Iterable[Batch]]:
    """One epoch of shuffled mini-batches of a tabular split per call (``generator`` draws the order)."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)

    def epoch() -> Iterable[Batch]:
        for idx in torch.randperm(len(xt), generator=generator).split(batch_size):
            yield xt[idx], yt[idx]

    return epoch


def adam(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
