"""Reading an ONNX model: the one loader every graph reader uses, and the graph ONNX Runtime actually runs.

A file is read only if it is a regular file (a FIFO would wait forever) of at most :data:`MAX_MODEL_BYTES`
(protobuf's limit), with at most :data:`MAX_NODES` nodes, that the ONNX checker accepts (topologically sorted,
single assignment, initializers holding the data their shapes declare, known operators in the ONNX domain) at
an opset this onnx knows; external data is read only from files inside the model's folder. An in-memory model
gets the same checks but the checker's.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Iterator

import onnx
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_model, uses_external_data

from hwnas.errors import ProfileError
from hwnas.files import regular_file_size

ModelLike = onnx.ModelProto | str | Path

#: Protobuf cannot hold a larger message: bigger weights belong in external data.
MAX_MODEL_BYTES = 2 << 30
#: Far beyond any model hwnas lowers (hundreds of nodes); reading a graph is linear in them, and more.
MAX_NODES = 100_000


_IN_MEMORY = "the model"


def model_name(model: ModelLike) -> str:
    """How messages name ``model``: its path, or ``the model`` for an in-memory ModelProto."""
    return _IN_MEMORY if isinstance(model, onnx.ModelProto) else str(model)


@contextlib.contextmanager
def reading(model: ModelLike) -> Iterator[None]:
    """A ProfileError raised inside starts with the file's name (once, instead of ``the model`` of a graph
    derived from it in memory); an in-memory model's errors are left as they are (its caller names it)."""
    try:
        yield
    except ProfileError as exc:
        where, message = model_name(model), str(exc)
        if isinstance(model, onnx.ModelProto) or message.startswith(where):
            raise
        raise ProfileError(f"{where}: {message.removeprefix(_IN_MEMORY + ': ')}") from None


def check_file(path: str | Path) -> None:
    """ProfileError naming ``path`` unless it is a regular file of 1 to :data:`MAX_MODEL_BYTES` bytes: what a
    profile checks before it reads (or hashes) a file it is handed."""
    size = regular_file_size(path, ProfileError, what="an ONNX file", missing="no such ONNX file")
    if size == 0:
        raise ProfileError(f"{path}: empty file (0 bytes), not an ONNX model")
    if size > MAX_MODEL_BYTES:
        raise ProfileError(f"{path}: {size} bytes, larger than an ONNX file can be ({MAX_MODEL_BYTES} "
                           "bytes): not an ONNX model (large weights are stored as external data)")


def _read(path: Path) -> onnx.ModelProto:
    """The ModelProto in the file ``path`` (external data not loaded), after the file checks."""
    check_file(path)
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError, onnx ValidationError, ...
        raise ProfileError(f"{path}: not an ONNX model: {exc}") from None


def _external_files(path: Path, proto: onnx.ModelProto) -> list[str]:
    """The external data files of ``proto``, each a regular file inside the folder of ``path``."""
    locations = sorted({ExternalDataInfo(t).location for t in _stored_tensors(proto) if uses_external_data(t)})
    folder = path.parent.resolve()
    outside = [loc for loc in locations if not (folder / loc).resolve().is_relative_to(folder)]
    if outside:
        raise ProfileError(f"{path}: its external data file(s) {', '.join(outside)} lie outside its folder; "
                           "hwnas reads external data only next to the .onnx file")
    missing = [loc for loc in locations if not (path.parent / loc).is_file()]
    if missing:
        raise ProfileError(f"{path}: its weights are stored in external data file(s) {', '.join(missing)}, "
                           f"missing from {path.parent}: keep them next to the .onnx file")
    return locations


def _check(proto: onnx.ModelProto, where: str) -> None:
    """The structure every graph reader relies on (see the module docstring); ProfileError naming ``where``."""
    if not proto.graph.node:
        raise ProfileError(f"{where}: the ONNX graph has no nodes: nothing to cost")
    if len(proto.graph.node) > MAX_NODES:
        raise ProfileError(f"{where}: the ONNX graph has {len(proto.graph.node)} nodes, more than the {MAX_NODES} "
                           "hwnas reads")
    newest = onnx.defs.onnx_opset_version()
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version > newest:
            raise ProfileError(f"{where}: ONNX opset {opset.version} is newer than any this onnx knows ({newest})")


def _validate(proto: onnx.ModelProto, where: str) -> None:
    """The ONNX checker's verdict on ``proto`` (its external data loaded), as a ProfileError naming ``where``."""
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001 - ValidationError, and a C++ error for a few malformed protos
        raise ProfileError(f"{where}: not a valid ONNX model: {' '.join(str(exc).split())}") from None


def _stored_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [*model.graph.initializer, *(s.values for s in model.graph.sparse_initializer)]


def load_model(model: ModelLike) -> onnx.ModelProto:
    """``model`` as a ModelProto of the caller's own (a copy when one is given), external data loaded.

    ``torch.onnx.export``'s default (dynamo) exporter writes the weights next to the graph (``model.onnx`` +
    ``model.onnx.data``); they are read from the folder of the ``.onnx`` file. Raises
    :class:`~hwnas.errors.ProfileError` naming the file when it is missing, no regular file, empty (0 bytes),
    too large, not ONNX, invalid (see the module docstring), its external data is missing or outside its
    folder, or its graph has no nodes (nothing to cost: an empty protobuf parses as one).
    """
    where = model_name(model)
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
    else:
        path = Path(model)
        proto = _read(path)
        locations = _external_files(path, proto)
        _check(proto, where)  # before the (possibly large) external data is read
        try:
            load_external_data_for_model(proto, str(path.parent))
        except Exception as exc:  # noqa: BLE001 - truncated or unreadable data files
            raise ProfileError(f"{path}: cannot read its external data ({', '.join(locations)}): {exc}") from None
    if any(uses_external_data(t) for t in _stored_tensors(proto)):
        raise ProfileError(f"{where}: its external data is not loaded; pass the .onnx path (or onnx.load it)")
    if isinstance(model, onnx.ModelProto):
        _check(proto, where)  # not the checker: a graph ONNX Runtime optimized in memory may not pass it
    else:
        _validate(proto, where)
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
    from hwnas.graph._graph import Graph

    proto = load_model(model)
    with reading(model):
        Graph(proto)  # bounded first: ONNX Runtime allocates the constants it folds
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
