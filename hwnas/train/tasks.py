"""Tasks: what a candidate learns and how its quality is measured — on the exported ONNX file.

A task ties a dataset to a model family and owns the steps that depend on both: build the model for a
config, train it, export it, measure its quality on an ONNX file (the exported, possibly quantised one),
and supply calibration inputs for static quantisation. The search evaluator only talks to this interface.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from hwnas.data import Dataset
from hwnas.lowering.export import INPUT_NAME, export_onnx
from hwnas.lowering.runtime import onnx_accuracy, predict_scores
from hwnas.models import build_model
from hwnas.models.preprocess import InputStats
from hwnas.profiles import FixedPoint
from hwnas.train._trainer import TrainSettings, train
from hwnas.train.pruning import hooks_for


class Task(abc.ABC):
    """One learning problem. ``metric`` is the quality objective, ``direction`` how Optuna optimises it."""

    metric: str
    direction: str  # "maximize" or "minimize"
    #: The quality recorded for a candidate that was never trained (screened out by a hardware constraint).
    untrained_value: float

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able identity of the data (name, source, sizes, seed)."""

    @abc.abstractmethod
    def build(self, config: Mapping[str, Any], fixed_point: FixedPoint | None) -> torch.nn.Module: ...

    @abc.abstractmethod
    def train(self, model: torch.nn.Module, settings: TrainSettings) -> tuple[float, int]:
        """Train in place; return (validation quality of the torch model, epochs run)."""

    @abc.abstractmethod
    def export(self, model: torch.nn.Module, path: Path, metadata: Mapping[str, Any]) -> Path: ...

    @abc.abstractmethod
    def quality(self, onnx_path: Path, split: str) -> float:
        """Quality of an exported model on ``split`` ("val" or "test"), run in ONNX Runtime."""

    @abc.abstractmethod
    def parity(self, model: torch.nn.Module, onnx_path: Path) -> float:
        """Max abs difference between torch and ONNX Runtime outputs on validation inputs."""

    @abc.abstractmethod
    def calibration_feeds(self, max_samples: int = 512) -> list[dict[str, np.ndarray]]:
        """Input batches from the training split for static quantisation."""


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

    def build(self, config: Mapping[str, Any], fixed_point: FixedPoint | None) -> torch.nn.Module:
        return build_model(config, n_features=self.data.n_features, n_classes=self.data.n_classes,
                           stats=self.stats, fixed_point=fixed_point)

    def train(self, model: torch.nn.Module, settings: TrainSettings) -> tuple[float, int]:
        d = self.data
        result = train(model, d.X_train, d.y_train, d.X_val, d.y_val, settings, hooks_for(model, settings.epochs))
        return result.val_accuracy, result.epochs_run

    def export(self, model: torch.nn.Module, path: Path, metadata: Mapping[str, Any]) -> Path:
        return export_onnx(model, self.data.n_features, path, metadata)

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        return {"val": (d.X_val, d.y_val), "test": (d.X_test, d.y_test), "train": (d.X_train, d.y_train)}[split]

    def quality(self, onnx_path: Path, split: str) -> float:
        return onnx_accuracy(onnx_path, *self._split(split))

    def parity(self, model: torch.nn.Module, onnx_path: Path) -> float:
        x = self.data.X_val
        model.eval()
        with torch.no_grad():
            ref = model(torch.as_tensor(x, dtype=torch.float32)).numpy()
        return float(np.abs(predict_scores(onnx_path, x) - ref).max())

    def calibration_feeds(self, max_samples: int = 512) -> list[dict[str, np.ndarray]]:
        x = self.data.X_train[:max_samples].astype(np.float32)
        return [{INPUT_NAME: b} for b in np.array_split(x, max(1, len(x) // 64))]
