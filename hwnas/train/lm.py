"""Training and evaluation of the Transformer family: language modelling (loss / perplexity) and sequence
classification (accuracy), of a torch model or of any function from token ids to logits (the task passes
the exported ONNX file's, run in ONNX Runtime).

Both trainers are :class:`~hwnas.train.trainer.Trainer` runs: Adam with gradient clipping, early stopping on
the validation loss after every epoch (best weights restored), the model's pruning hooks, and
:class:`~hwnas.errors.CandidateError` when a loss becomes NaN/inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.data.text import DEFAULT_EVAL_WINDOWS, SequenceDataset, TextDataset
from hwnas.train.trainer import Batch, EarlyStopping, Trainer, TrainHook, TrainState

#: A torch model, or a function from token ids [n, T] to logits.
Logits = nn.Module | Callable[[np.ndarray], np.ndarray]
GRAD_CLIP = 1.0


@dataclass(frozen=True)
class LMResult:
    """Best validation loss (mean nats per token) and its perplexity, optimiser steps run, wall seconds."""

    val_loss: float
    val_perplexity: float
    steps: int
    seconds: float
    epochs_run: int = 0
    best_epoch: int = 0


@dataclass(frozen=True)
class ClassifierResult:
    """Best validation loss and the validation accuracy of the restored weights."""

    val_loss: float
    val_accuracy: float
    steps: int
    seconds: float
    epochs_run: int = 0
    best_epoch: int = 0


# --- logits and losses ------------------------------------------------------------------------------------------


def logits_of(model: Logits, tokens: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits for token ids ``tokens`` [n, T] of a torch model (eval mode, no grad, in batches) or a function."""
    if not isinstance(model, nn.Module):
        return np.asarray(model(tokens))
    model.eval()
    x = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).numpy()


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy (nats) of ``logits`` [..., C] against integer ``targets`` [...] (float64, stable)."""
    z = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    picked = z[np.arange(len(z)), targets.reshape(-1)]
    return float((log_norm - picked).mean())


def evaluate_lm(model: Logits, data: TextDataset, split: str = "val", *,
                max_eval_windows: int | None = DEFAULT_EVAL_WINDOWS, batch_size: int = 256) -> tuple[float, float]:
    """(mean next-token loss in nats, perplexity) on the deterministic evaluation windows of ``split``."""
    x, y = data.eval_windows(split, max_eval_windows)
    loss = cross_entropy(logits_of(model, x, batch_size), y)
    return loss, _perplexity(loss)


def evaluate_classifier(model: Logits, data: SequenceDataset, split: str = "val", *,
                        batch_size: int = 256) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on ``split``."""
    x, y = data.split(split)
    logits = logits_of(model, x, batch_size)
    return cross_entropy(logits, y), float((logits.argmax(-1) == y).mean())


def _perplexity(loss: float) -> float:
    return math.exp(min(loss, 700.0))


# --- training -------------------------------------------------------------------------------------------------


def _fit(model: nn.Module, batches: Callable[[], Iterator[Batch]], validate: Callable[[], float], *, epochs: int,
         lr: float, weight_decay: float, seed: int, patience: int, threads: int,
         hooks: Sequence[TrainHook]) -> tuple[TrainState, EarlyStopping]:
    """One :class:`Trainer` run: early stopping first, then ``hooks`` (Adam, gradient clipping)."""
    torch.manual_seed(seed)  # dropout
    stopping = EarlyStopping(validate, patience)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    state = Trainer(epochs, hooks=[stopping, *hooks], threads=threads, grad_clip=GRAD_CLIP).fit(
        model, opt, batches)
    return state, stopping


def _tensors(batches: Iterator[tuple[np.ndarray, np.ndarray]]) -> Iterator[Batch]:
    for x, y in batches:
        yield torch.from_numpy(x), torch.from_numpy(y)


def train_lm(model: nn.Module, data: TextDataset, *, epochs: int = 10, steps_per_epoch: int = 100,
             batch_size: int = 32, lr: float = 3e-3, seed: int = 0, patience: int = 3, weight_decay: float = 0.0,
             max_eval_windows: int | None = DEFAULT_EVAL_WINDOWS, threads: int = 1,
             hooks: Sequence[TrainHook] = ()) -> LMResult:
    """Train ``model`` (tokens [N, T] → logits [N, T, vocab]) in place on random training windows
    (``steps_per_epoch`` batches per epoch, drawn from ``numpy.random.default_rng(seed)``); early stopping on
    the validation loss of :func:`evaluate_lm`. Same model init + same seed = same result."""
    rng = np.random.default_rng(seed)

    def batches() -> Iterator[Batch]:
        return _tensors(data.random_windows(rng, batch_size) for _ in range(steps_per_epoch))

    def validate() -> float:
        return evaluate_lm(model, data, "val", max_eval_windows=max_eval_windows)[0]

    state, stopping = _fit(model, batches, validate, epochs=epochs, lr=lr, weight_decay=weight_decay,
                           seed=seed, patience=patience, threads=threads, hooks=hooks)
    loss = stopping.best_loss
    if not math.isfinite(loss):  # never ready (pruning outlasted the budget): evaluate what is there
        loss = validate()
    return LMResult(loss, _perplexity(loss), state.steps, state.seconds, state.epoch, stopping.best_epoch)


def train_sequence_classifier(model: nn.Module, data: SequenceDataset, *, epochs: int = 30, batch_size: int = 32,
                              lr: float = 3e-3, seed: int = 0, patience: int = 5, weight_decay: float = 0.0,
                              threads: int = 1, hooks: Sequence[TrainHook] = ()) -> ClassifierResult:
    """Train ``model`` (tokens [N, T] → logits [N, n_classes]) in place on shuffled mini-batches of the
    training split; early stopping on validation loss; accuracy of the restored weights."""
    rng = np.random.default_rng(seed)
    x_train, y_train = data.split("train")

    def batches() -> Iterator[Batch]:
        order = rng.permutation(len(y_train))
        return _tensors((x_train[order[i : i + batch_size]], y_train[order[i : i + batch_size]])
                        for i in range(0, len(order), batch_size))

    def validate() -> float:
        return evaluate_classifier(model, data, "val")[0]

    state, stopping = _fit(model, batches, validate, epochs=epochs, lr=lr, weight_decay=weight_decay,
                           seed=seed, patience=patience, threads=threads, hooks=hooks)
    return ClassifierResult(stopping.best_loss, evaluate_classifier(model, data, "val")[1], state.steps,
                            state.seconds, state.epoch, stopping.best_epoch)
