"""Training of tabular classifiers: Adam on shuffled mini-batches, early stopping on validation loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwnas.train.trainer import EarlyStopping, Trainer, TrainHook, TrainSettings, adam, shuffled_batches


@dataclass(frozen=True)
class TrainResult:
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    val_accuracy: float
    seconds: float


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a torch model on numpy data (eval mode)."""
    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()
    return float((pred == y).mean())


def train(model: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
          settings: TrainSettings, hooks: list[TrainHook] | tuple[TrainHook, ...] = ()) -> TrainResult:
    """Train in place; restore the weights of the (ready) epoch with the lowest validation loss; ``hooks`` run
    after early stopping (e.g. pruning). Raises :class:`~hwnas.errors.CandidateError` when a loss becomes
    NaN/inf (a diverged candidate)."""
    xv = torch.as_tensor(x_val, dtype=torch.float32)
    yv = torch.as_tensor(y_val, dtype=torch.long)

    def validate() -> float:
        with torch.no_grad():
            return F.cross_entropy(model(xv), yv).item()

    stopping = EarlyStopping(validate, settings.patience)
    gen = torch.Generator().manual_seed(settings.seed)
    state = Trainer(settings.epochs, hooks=[stopping, *hooks], threads=settings.threads).fit(
        model, adam(model, settings), shuffled_batches(x_train, y_train, settings.batch_size, gen))
    return TrainResult(state.epoch, stopping.best_epoch, stopping.best_loss, accuracy(model, x_val, y_val),
                       state.seconds)
