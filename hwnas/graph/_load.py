"""Reading an ONNX model: the one loader every graph reader uses, and the graph ONNX Runtime actually runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_model, uses_external_data

from hwnas.errors import ProfileError

ModelLike = onnx.ModelProto | str | Path


def model_name(model: ModelLike) -> str:
    """How messages name ``model``: its path, or ``the model`` for an in-memory ModelProto."""
    return "the model" if isinstance(model, onnx.ModelProto) else str(model)


def _stored_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [*model.graph.initializer, *(s.values for s in model.graph.sparse_initializer)]


def load_model(model: ModelLike) -> onnx.ModelProto:
    """``model`` as a ModelProto of the caller's own (a copy when one is given), external data loaded.

    ``torch.onnx.export``'s default (dynamo) exporter writes the weights next to the graph (``model.onnx`` +
    ``model.onnx.data``); they are read from the folder of the ``.onnx`` file. Raises
    :class:`~hwnas.errors.ProfileError` naming the file when it is missing, empty (0 bytes), not ONNX, its
    external data is missing, or its graph has no nodes (nothing to cost: an empty protobuf parses as one).
    """
    where = model_name(model)
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
    else:
        path = Path(model)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ProfileError(f"cannot read ONNX model {path}: {exc.strerror}") from None
        if size == 0:
            raise ProfileError(f"{path}: empty file (0 bytes), not an ONNX model")
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError, onnx ValidationError, ...
            raise ProfileError(f"cannot read ONNX model {path}: {exc}") from None
        locations = sorted({ExternalDataInfo(t).location for t in _stored_tensors(proto) if uses_external_data(t)})
        missing = [loc for loc in locations if not (path.parent / loc).is_file()]
        if missing:
            raise ProfileError(f"{path}: its weights are stored in external data file(s) {', '.join(missing)}, "
                               f"missing from {path.parent}: keep them next to the .onnx file")
        try:
            load_external_data_for_model(proto, str(path.parent))
        except Exception as exc:  # noqa: BLE001 - truncated or unreadable data files
            raise ProfileError(f"{path}: cannot read its external data ({', '.join(locations)}): {exc}") from None
    if any(uses_external_data(t) for t in _stored_tensors(proto)):
        raise ProfileError(f"{where}: its external data is not loaded; pass the .onnx path (or onnx.load it)")
    if not proto.graph.node:
        raise ProfileError(f"{where}: the ONNX graph has no nodes: nothing to cost")
    return proto


def optimize_with_onnxruntime(model: ModelLike, level: str = "extended") -> onnx.ModelProto:
    """The graph ONNX Runtime's CPU execution provider runs: its graph optimizations (MatMul+Add → Gemm,
    Gemm+activation → FusedGemm, GELU/SiLU pattern fusion, QDQ → QGemm/QLinearMatMul, ...) applied and saved.

    ``level`` is ``basic`` or ``extended`` (``all`` adds only hardware-specific layout transforms). The model
    is handed over in memory with its external data loaded, so the saved graph holds every weight inline.
    """
    import onnxruntime as ort

    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}
    if level not in levels:
        raise ProfileError(f"optimize_with_onnxruntime: level must be one of {sorted(levels)}, got {level!r}")
    proto = load_model(model)
    with tempfile.TemporaryDirectory(prefix="hwnas-ortopt-") as tmp:
        dst = Path(tmp) / "opt.onnx"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = levels[level]
        opts.optimized_model_filepath = str(dst)
        opts.log_severity_level = 3
        opts.intra_op_num_threads = 1
        try:
            ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise ProfileError(f"{model_name(model)}: onnxruntime cannot optimize the model: {exc}") from exc
        return onnx.load(str(dst))
