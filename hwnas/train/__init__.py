"""Training: one loop (:class:`Trainer`) with hooks for early stopping, gradual pruning and distillation, used
by every task and strategy; tasks tie a dataset to a model family (:mod:`hwnas.engine.tasks`)."""

from hwnas.train.tabular import TrainResult, accuracy, train
from hwnas.train.trainer import (Distillation, EarlyStopping, Trainer, TrainHook, TrainSettings, TrainState,
                                 seed_everything)

__all__ = ["Distillation", "EarlyStopping", "TrainHook", "TrainResult", "TrainSettings", "TrainState", "Trainer",
           "accuracy", "seed_everything", "train"]
