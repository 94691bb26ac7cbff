"""Tasks: what a candidate learns and how its quality is measured — on the exported ONNX file.

A task ties a dataset to a model family and owns the steps that depend on both: build the model for a
config, train it (one :class:`~hwnas.train.trainer.Trainer` with early stopping and the model's pruning
hooks), the :class:`~hwnas.lowering.export.Exporter` that lowers its models (input kind, calibration data),
and its quality on an ONNX file (the exported, possibly quantised one). The search evaluator only talks to
this interface.
"""

from __future__ import annotations

import abc
import functools
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hwnas.data import Dataset, load_for_family
from hwnas.data.text import SequenceDataset, TextDataset
from hwnas.lowering.export import Exporter, FeatureExporter, TokenExporter
from hwnas.lowering.runtime import onnx_accuracy, onnx_logits
from hwnas.models import build_model
from hwnas.models.deploy import DeployableModule
from hwnas.models.preprocess import InputStats
from hwnas.models.transformer import build_transformer
from hwnas.precision import FixedPoint
from hwnas.train.lm import evaluate_classifier, evaluate_lm, train_lm, train_sequence_classifier
from hwnas.train.pruning import hooks_for
from hwnas.train.tabular import train
from hwnas.train.trainer import TrainSettings


class Task(abc.ABC):
    """One learning problem. ``metric`` is the quality objective, ``direction`` how Optuna optimises it."""

    metric: str
    direction: str  # "maximize" or "minimize"
    #: The quality recorded for a candidate that was never trained (screened out by a hardware constraint).
    untrained_value: float
    #: Training budget (``--epochs``) when the user gives none.
    default_epochs: int = 100

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able identity of the data (name, source, sizes, seed)."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The dataset's name (part of the default study name)."""

    @abc.abstractmethod
    def build(self, config: Mapping[str, Any], fixed_point: FixedPoint | None) -> DeployableModule: ...

    @abc.abstractmethod
    def train(self, model: DeployableModule, settings: TrainSettings) -> tuple[float, int]:
        """Train in place; return (validation quality of the torch model, epochs run)."""

    @property
    @abc.abstractmethod
    def exporter(self) -> Exporter:
        """How this task's models are exported (input kind, calibration and parity inputs)."""

    @abc.abstractmethod
    def quality(self, onnx_path: Path, split: str) -> float:
        """Quality of an exported model on ``split`` ("val" or "test"), run in ONNX Runtime."""


class ClassificationTask(Task):
    """Tabular classification: raw features in, class scores out; quality = accuracy."""

    metric = "accuracy"
    direction = "maximize"
    untrained_value = 0.0

    def __init__(self, data: Dataset) -> None:
        self.data = data
        self.stats = InputStats.of(data.X_train)

    @property
    def name(self) -> str:
        return self.data.name

    def describe(self) -> dict[str, Any]:
        return self.data.describe()

    def build(self, config: Mapping[str, Any], fixed_point: FixedPoint | None) -> DeployableModule:
        return build_model(config, n_features=self.data.n_features, n_classes=self.data.n_classes,
                           stats=self.stats, fixed_point=fixed_point)

    def train(self, model: DeployableModule, settings: TrainSettings) -> tuple[float, int]:
        d = self.data
        result = train(model, d.X_train, d.y_train, d.X_val, d.y_val, settings, hooks_for(model, settings.epochs))
        return result.val_accuracy, result.epochs_run

    @functools.cached_property
    def exporter(self) -> Exporter:
        return FeatureExporter(self.data.n_features, self.data.X_train)

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        return {"val": (d.X_val, d.y_val), "test": (d.X_test, d.y_test), "train": (d.X_train, d.y_train)}[split]

    def quality(self, onnx_path: Path, split: str) -> float:
        return onnx_accuracy(onnx_path, *self._split(split))


class LanguageModelTask(Task):
    """Next-token prediction on text (``pydoc_topics`` or a .txt file); quality = validation perplexity.

    An epoch is ``steps_per_epoch`` optimiser steps on random training windows. A candidate screened out
    before training is recorded with the perplexity of a uniform guess (the vocabulary size)."""

    metric = "perplexity"
    direction = "minimize"
    default_epochs = 10

    def __init__(self, data: TextDataset, steps_per_epoch: int = 100) -> None:
        self.data = data
        self.steps_per_epoch = steps_per_epoch
        self.untrained_value = float(data.vocab_size)

    @property
    def name(self) -> str:
        return self.data.name

    def describe(self) -> dict[str, Any]:
        return {**self.data.describe(), "task": "lm", "steps_per_epoch": self.steps_per_epoch}

    def build(self, config: Mapping[str, Any], fixed_point: FixedPoint | None) -> DeployableModule:
        return build_transformer(config, vocab_size=self.data.vocab_size, seq_len=self.data.seq_len, task="lm",
                                 fixed_point=fixed_point)

    def train(self, model: DeployableModule, settings: TrainSettings) -> tuple[float, int]:
        result = train_lm(model, self.data, epochs=settings.epochs, steps_per_epoch=self.steps_per_epoch,
                          batch_size=settings.batch_size, lr=settings.lr, seed=settings.seed, patience=settings.patience,
                          weight_decay=settings.weight_decay, threads=settings.threads,
                          hooks=hooks_for(model, settings.epochs))
        return result.val_perplexity, result.epochs_run

    @functools.cached_property
    def exporter(self) -> Exporter:
        d = self.data
        return TokenExporter(d.seq_len, d.vocab_size, d.eval_windows("train", 256)[0])

    def quality(self, onnx_path: Path, split: str) -> float:
        return evaluate_lm(lambda tokens: onnx_logits(onnx_path, tokens), self.data, split)[1]


class SequenceClassificationTask(Task):
    """Text classification from a user file (CSV/TSV with text and label columns, or JSONL); quality = accuracy."""

    metric = "accuracy"
    direction = "maximize"
    untrained_value = 0.0
    default_epochs = 30

    def __init__(self, data: SequenceDataset) -> None:
        self.data = data

    @property
    def name(self) -> str:
        return self.data.name

    def describe(self) -> dict[str, Any]:
        return {**self.data.describe(), "task": "classify"}

    def build(self, config: Mapping[str, Any], fixed_point: FixedPoint | None) -> DeployableModule:
        return build_transformer(config, vocab_size=self.data.vocab_size, seq_len=self.data.seq_len,
                                 task="classify", n_classes=self.data.n_classes, fixed_point=fixed_point)

    def train(self, model: DeployableModule, settings: TrainSettings) -> tuple[float, int]:
        result = train_sequence_classifier(model, self.data, epochs=settings.epochs, batch_size=settings.batch_size,
                                           lr=settings.lr, seed=settings.seed, patience=settings.patience,
                                           weight_decay=settings.weight_decay, threads=settings.threads,
                                           hooks=hooks_for(model, settings.epochs))
        return result.val_accuracy, result.epochs_run

    @functools.cached_property
    def exporter(self) -> Exporter:
        d = self.data
        return TokenExporter(d.seq_len, d.vocab_size, d.split("train")[0])

    def quality(self, onnx_path: Path, split: str) -> float:
        return evaluate_classifier(lambda tokens: onnx_logits(onnx_path, tokens), self.data, split)[1]


def make_task(model: str, dataset: str | Any, *, target: str | None, seed: int,
              fixed: Mapping[str, Any]) -> Task:
    """The task for a model family and a dataset name/path (see :func:`hwnas.data.load_for_family`), an
    already-loaded dataset, or a task (returned as it is). ``fixed`` is the space's fixed values
    (``seq_len``, ``level``, ``steps_per_epoch`` configure text tasks)."""
    if isinstance(dataset, Task):
        return dataset
    data = load_for_family(model, dataset, target=target, seed=seed, fixed=fixed)
    if isinstance(data, TextDataset):
        return LanguageModelTask(data, int(fixed.get("steps_per_epoch", 100)))
    if isinstance(data, SequenceDataset):
        return SequenceClassificationTask(data)
    return ClassificationTask(data)
