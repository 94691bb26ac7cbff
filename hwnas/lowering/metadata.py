"""The interface (input and output names) and ``hwnas.*`` metadata every lowered file carries, and the digest
that ties a recorded cost to a graph.
Torch-free: exporting and re-measuring a study's models reads and writes these without loading torch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import onnx

#: The interface of every exported file: feature-input classifiers and token-input models.
INPUT_NAME = "features"
OUTPUT_NAME = "scores"
TOKENS_INPUT = "tokens"
LOGITS_OUTPUT = "logits"


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


def graph_digest(path: Path | str) -> str:
    """SHA-256 of the serialised graph (metadata excluded): equal for a candidate and its exported copy, so a
    cost recorded for one graph can be tied to the file a user gets."""
    return hashlib.sha256(onnx.load(str(path)).graph.SerializeToString(deterministic=True)).hexdigest()
