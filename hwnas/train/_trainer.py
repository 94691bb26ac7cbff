"""Training loop: Adam, mini-batches, early stopping on validation loss, best weights restored."""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hwnas.errors import CandidateError


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


class TrainHooks:
    """Callbacks into the training loop (e.g. gradual pruning); the base class does nothing."""

    def start_epoch(self, epoch: int) -> None:
        """Before the epoch's first step (epochs count from 1)."""

    def after_step(self) -> None:
        """After every optimiser step."""

    def ready(self, epoch: int) -> bool:
        """Whether the weights after ``epoch`` may be kept as the best ones (e.g. pruning has finished)."""
        return True

    def finish(self) -> None:
        """After the best weights are restored, before export."""


@dataclass(frozen=True)
class TrainResult:
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    val_accuracy: float
    seconds: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a torch model on numpy data (eval mode)."""
    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()
    return float((pred == y).mean())


def train(model: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
          settings: TrainSettings, hooks: TrainHooks | None = None) -> TrainResult:
    """Train in place; restore the weights of the (ready) epoch with the lowest validation loss.

    Raises :class:`CandidateError` when the loss becomes NaN/inf (a diverged candidate).
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train(model, x_train, y_train, x_val, y_val, settings, hooks or TrainHooks())
    finally:
        torch.set_num_threads(previous_threads)


def _train(model: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
           settings: TrainSettings, hooks: TrainHooks) -> TrainResult:
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(settings.seed)
    xt = torch.as_tensor(x_train, dtype=torch.float32)
    yt = torch.as_tensor(y_train, dtype=torch.long)
    xv = torch.as_tensor(x_val, dtype=torch.float32)
    yv = torch.as_tensor(y_val, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    best = (math.inf, 0, copy.deepcopy(model.state_dict()))
    epoch = 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        hooks.start_epoch(epoch)
        for idx in torch.randperm(len(xt), generator=gen).split(settings.batch_size):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            if not torch.isfinite(loss):
                raise CandidateError(f"training diverged: loss is {loss.item()} at epoch {epoch}")
            loss.backward()
            opt.step()
            hooks.after_step()
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(xv), yv).item()
        if not math.isfinite(val_loss):
            raise CandidateError(f"training diverged: validation loss is {val_loss} at epoch {epoch}")
        if not hooks.ready(epoch):
            best = (math.inf, epoch, best[2])  # patience counts from the first ready epoch
        elif val_loss < best[0] - 1e-6:
            best = (val_loss, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= settings.patience:
            break
    if math.isfinite(best[0]):
        model.load_state_dict(best[2])
    hooks.finish()
    return TrainResult(epoch, best[1], best[0], accuracy(model, x_val, y_val), time.perf_counter() - start)
