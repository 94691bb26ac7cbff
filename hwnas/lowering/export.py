"""torch → ONNX export and the ``hwnas.*`` metadata every exported file carries."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Mapping

import onnx
import torch

from hwnas.errors import CandidateError

INPUT_NAME = "features"
OUTPUT_NAME = "scores"
OPSET = 17


def export_onnx(model: torch.nn.Module, n_features: int, path: Path, metadata: Mapping[str, Any] | None = None) -> Path:
    """Export ``model`` (raw features in, class scores out, dynamic batch) and check the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    example = torch.zeros(2, n_features)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(path), dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        onnx.checker.check_model(str(path))
    except Exception as exc:  # the exporter raises many types; any of them fails this candidate
        raise CandidateError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
    if metadata:
        set_metadata(path, metadata)
    return path


def _encode(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def set_metadata(path: Path, metadata: Mapping[str, Any]) -> None:
    """Add or replace ``metadata_props`` entries (non-strings are stored as JSON); the graph is untouched."""
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props.update({k: _encode(v) for k, v in metadata.items()})
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def read_metadata(path: Path | str) -> dict[str, Any]:
    """``metadata_props`` as a dict, JSON values decoded."""
    model = onnx.load(str(path), load_external_data=False)
    out: dict[str, Any] = {}
    for p in model.metadata_props:
        try:
            out[p.key] = json.loads(p.value)
        except json.JSONDecodeError:
            out[p.key] = p.value
    return out
