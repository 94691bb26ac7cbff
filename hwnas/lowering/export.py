"""torch → ONNX export of the two input kinds hwnas models take, and the ``hwnas.*`` metadata every file carries.

* feature inputs: ``features`` float32 ``[batch, n_features]`` → ``scores`` ``[batch, n_classes]`` (the MLP
  classifiers: raw features in, input scaling is part of the model);
* token inputs: ``tokens`` int64 ``[batch, seq_len]`` → ``logits`` ``[batch, seq_len, vocab]`` (language
  models) or ``[batch, n_classes]`` (sequence classifiers).

Both use torch's legacy (TorchScript) exporter at opset 17 with a dynamic batch axis: 0.1 s per model against
~3 s for the dynamo exporter, and its graphs keep the parameter names as initializer names, which is how
:func:`hwnas.lowering.lower` finds the node of each weight. An :class:`Exporter` bundles one input kind with
the inputs that calibrate int8 nodes and check parity.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np
import onnx
import torch

from hwnas.errors import CandidateError
from hwnas.lowering.metadata import INPUT_NAME, LOGITS_OUTPUT, OUTPUT_NAME, TOKENS_INPUT, set_metadata

OPSET = 17


def _export(model: torch.nn.Module, example: torch.Tensor, path: Path, names: tuple[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(path), dynamo=False, opset_version=OPSET,
                input_names=[names[0]], output_names=[names[1]],
                dynamic_axes={names[0]: {0: "batch"}, names[1]: {0: "batch"}},
            )
        onnx.checker.check_model(str(path))
    except Exception as exc:  # the exporter raises many types; any of them fails this candidate
        raise CandidateError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
    return path


def export_onnx(model: torch.nn.Module, n_features: int, path: Path, metadata: Mapping[str, Any] | None = None) -> Path:
    """Export a feature-input model (raw features in, class scores out, dynamic batch) and check the file."""
    _export(model, torch.zeros(2, n_features), path, (INPUT_NAME, OUTPUT_NAME))
    if metadata:
        set_metadata(path, metadata)
    return path


def export_tokens(model: torch.nn.Module, seq_len: int, path: Path | str,
                  metadata: Mapping[str, Any] | None = None) -> Path:
    """Export a token-input model (``tokens`` int64 [batch, seq_len] → ``logits``, dynamic batch)."""
    path = Path(path)
    _export(model, torch.zeros(2, int(seq_len), dtype=torch.long), path, (TOKENS_INPUT, LOGITS_OUTPUT))
    if metadata:
        set_metadata(path, metadata)
    return path


class Exporter(Protocol):
    """How a task's models become fp32 ONNX files, and the inputs that calibrate and check them."""

    def export(self, model: torch.nn.Module, path: Path, metadata: Mapping[str, Any]) -> Path:
        """Write the fp32 graph of ``model`` (weights as they are) with ``metadata``."""

    def calibration_feeds(self) -> list[dict[str, np.ndarray]]:
        """Input batches for static (int8) quantisation, drawn from training data."""

    def parity(self, model: torch.nn.Module, path: Path) -> float:
        """Max abs difference between the torch model's outputs and the file's (onnxruntime)."""


@dataclass(frozen=True)
class FeatureExporter:
    """Feature-input classifiers; ``samples`` (raw training features) calibrate int8 and probe parity."""

    n_features: int
    samples: np.ndarray

    def export(self, model: torch.nn.Module, path: Path, metadata: Mapping[str, Any]) -> Path:
        return export_onnx(model, self.n_features, path, metadata)

    def calibration_feeds(self) -> list[dict[str, np.ndarray]]:
        x = np.asarray(self.samples[:512], dtype=np.float32)
        return [{INPUT_NAME: b} for b in np.array_split(x, max(1, len(x) // 64))]

    def parity(self, model: torch.nn.Module, path: Path) -> float:
        from hwnas.lowering.runtime import predict_scores

        x = np.asarray(self.samples[:512], dtype=np.float32)
        model.eval()
        with torch.no_grad():
            ref = model(torch.as_tensor(x)).numpy()
        return float(np.abs(predict_scores(path, x) - ref).max())


@dataclass(frozen=True)
class TokenExporter:
    """Token-input models of ``seq_len`` tokens; ``samples`` (training windows) calibrate int8; parity is
    probed on ``probes`` random sequences over ``vocab_size`` ids."""

    seq_len: int
    vocab_size: int
    samples: np.ndarray
    probes: int = 4

    def export(self, model: torch.nn.Module, path: Path, metadata: Mapping[str, Any]) -> Path:
        return export_tokens(model, self.seq_len, path, metadata)

    def calibration_feeds(self) -> list[dict[str, np.ndarray]]:
        x = np.asarray(self.samples[:256], dtype=np.int64)
        return [{TOKENS_INPUT: b} for b in np.array_split(x, max(1, len(x) // 32))]

    def parity(self, model: torch.nn.Module, path: Path) -> float:
        from hwnas.lowering.runtime import onnx_logits

        tokens = np.random.default_rng(0).integers(0, self.vocab_size, size=(self.probes, self.seq_len),
                                                   dtype=np.int64)
        model.eval()
        with torch.no_grad():
            ref = model(torch.from_numpy(tokens)).numpy()
        return float(np.abs(onnx_logits(path, tokens) - ref).max())
