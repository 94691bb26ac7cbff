"""The ``predictor`` profile kind: latency predicted by a regression model learned from measured samples.

The graph is first put in the form ONNX Runtime runs it (:func:`kernel_ops`: its ``extended`` graph
optimizations — MatMul+Add → Gemm, Gemm+activation → FusedGemm, QDQ → QGemm/QLinearMatMul — then
:func:`hwnas.graph.graph_costs`), so that one op is one kernel. Every kernel falls into a class
(:data:`CLASSES`) whose features (:data:`FEATURES`: count, MACs, bytes, elements) are non-negative.

Two model families (both linear with non-negative coefficients, so a bigger graph never predicts faster):

* ``kernel`` (nn-Meter's idea): one regression per kernel class fitted on per-kernel times from ONNX Runtime's
  profiler, summed over the graph per class; the per-class sums are then scaled to the measured end-to-end
  latency of the target device (plus a per-inference intercept);
* ``graph``: the class features summed over the graph, regressed directly on the measured latency.

A kernel the cost view has no rule for (``OpCost.known`` false: Conv, pooling, ...) is refused unless
``unknown_ops: approximate`` (then it counts as an elementwise kernel and is listed in the metric's details).

Calibration keeps the family with the lower cross-validated error (``graph`` when end-to-end samples are
plentiful; ``kernel`` generalises better from few, as its per-kernel shapes come from thousands of kernels).

A fitted model is a small JSON file (:class:`LatencyModel`), written by
:func:`hwnas.calibrate.calibrate_predictor`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hwnas.errors import ProfileError
from hwnas.files import read_text
from hwnas.graph import COPY_OPS, LAYOUT_OPS, OpCost, check_file, graph_costs, optimize_with_onnxruntime, reading
from hwnas.profiles.base import Metric, Profile, ProfileResult, Range
from hwnas.profiles.onnxruntime import file_digest, host_mismatch
from hwnas.profiles.registry import register_kind
from hwnas.validation import check_float, shown

FORMAT = "hwnas-latency-predictor"
VERSION = 1
QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
CLASSES = ("gemm_fp32", "gemm_int8", "quant", "dequant_weight", "elementwise", "layout")
_GEMM_FEATURES = ("one", "macs", "io_bytes", "weight_bytes", "macs_gemv", "rows")
#: Per-kernel features of each class (all non-negative; ``one`` is the per-kernel launch cost).
FEATURES: dict[str, tuple[str, ...]] = {
    "gemm_fp32": _GEMM_FEATURES,
    "gemm_int8": _GEMM_FEATURES,
    "quant": ("one", "elements"),
    "dequant_weight": ("one", "elements", "strided_elements"),
    "elementwise": ("one", "elements", "flops"),
    "layout": ("one", "bytes"),
}
#: Runs of elements sharing one dequantization scale (``OpCost.dims["run"]``; 1 for per-channel scales along
#: the last axis, which ONNX Runtime dequantizes element by element) shorter than this make ``strided_elements``.
SHORT_RUN = 8
#: Rows (batch × m) up to which a MatMul-like kernel counts as a matrix-vector product (``macs_gemv``).
GEMV_ROWS = 4


def kernel_ops(model: Any, batch_size: int) -> list[OpCost]:
    """The kernels ONNX Runtime runs for ``model`` (path or ModelProto) at ``batch_size``, with their costs."""
    with reading(model):  # the optimized graph is in memory: errors found in it name the file
        return graph_costs(optimize_with_onnxruntime(model, "extended"), batch_size, qdq_int8=False)


def kernel_class(op: OpCost) -> str:
    """Which of :data:`CLASSES` one kernel belongs to (weight dequantization that runs every inference, as
    ONNX Runtime does for QDQ weights it cannot fuse, is its own class: it costs far more per element)."""
    if op.macs > 0:
        return "gemm_int8" if op.dtype in ("int8", "int4") else "gemm_fp32"
    if op.op_type in QUANT_OPS:
        return "dequant_weight" if op.constant else "quant"
    if op.op_type in LAYOUT_OPS or op.op_type in COPY_OPS:
        return "layout"
    return "elementwise"


def op_features(op: OpCost) -> dict[str, float]:
    """The features of one kernel, by name (see :data:`FEATURES`)."""
    io = op.bytes_read + op.bytes_written
    rows = float(op.dims.get("m", 0) * op.dims.get("batch", 1))
    values = {
        "one": 1.0, "macs": op.macs, "io_bytes": io - op.weight_bytes, "weight_bytes": op.weight_bytes,
        "macs_gemv": op.macs if rows <= GEMV_ROWS else 0.0, "rows": rows,
        "elements": float(op.dims.get("elements", 0)), "flops": op.flops, "bytes": io,
        "strided_elements": float(op.dims.get("elements", 0)) if op.dims.get("run", SHORT_RUN) < SHORT_RUN else 0.0,
    }
    return {name: max(0.0, values[name]) for name in FEATURES[kernel_class(op)]}


def feature_names() -> list[str]:
    """Every graph feature, ``CLASS.FEATURE``, in a fixed order."""
    return [f"{c}.{f}" for c in CLASSES for f in FEATURES[c]]


def graph_features(ops: list[OpCost]) -> dict[str, float]:
    """Per-class feature sums over a graph's kernels, named ``CLASS.FEATURE``."""
    out = dict.fromkeys(feature_names(), 0.0)
    for op in ops:
        cls = kernel_class(op)
        for name, value in op_features(op).items():
            out[f"{cls}.{name}"] += value
    return out


@dataclass
class LatencyModel:
    """A fitted predictor: ``latency_ms = intercept_ms + sum(coef[f] * graph_features[f])``.

    Both families reduce to this form (the ``kernel`` family's coefficients are its per-kernel regressions
    times its per-class scales; ``kernel_model`` keeps those parts). ``validation`` holds the held-out figures,
    ``training`` what it was learned from.
    """

    family: str
    intercept_ms: float
    coef: dict[str, float]
    validation: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    kernel_model: dict[str, Any] | None = None

    def predict_features(self, features: Mapping[str, float]) -> float:
        return self.intercept_ms + sum(c * features.get(name, 0.0) for name, c in self.coef.items())

    def predict(self, model: Any, batch_size: int) -> float:
        """Predicted latency (ms) of an ONNX model (path or ModelProto) at ``batch_size``."""
        return self.predict_features(graph_features(kernel_ops(model, batch_size)))

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def from_json(cls, data: Any, where: str = "<model>") -> "LatencyModel":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProfileError(f"{where}: not a {FORMAT} file")
        if data.get("version") != VERSION:
            raise ProfileError(f"{where}: {FORMAT} version {shown(data.get('version'))} is not supported "
                               f"(this is {VERSION})")
        coef = data.get("coef")
        if not isinstance(coef, dict):
            raise ProfileError(f"{where}: coef must be a mapping of feature names to numbers, got {shown(coef)}")
        unknown = sorted(set(coef) - set(feature_names()), key=str)
        if unknown:
            raise ProfileError(f"{where}: unknown feature(s) {shown(unknown)}; known: {feature_names()}")
        for key in ("validation", "training", "kernel_model"):
            if not isinstance(data.get(key), (dict, type(None))):
                raise ProfileError(f"{where}: {key} must be a mapping, got {shown(data.get(key))}")
        if not isinstance(data.get("family"), str):
            raise ProfileError(f"{where}: family must be a string, got {shown(data.get('family'))}")
        return cls(data["family"], check_float(data.get("intercept_ms"), f"{where}: intercept_ms", error=ProfileError),
                   {k: check_float(v, f"{where}: coef.{k}", error=ProfileError) for k, v in coef.items()},
                   dict(data.get("validation") or {}), dict(data.get("training") or {}), data.get("kernel_model"))

    @classmethod
    def load(cls, path: Path) -> "LatencyModel":
        if not os.path.lexists(path):
            raise ProfileError(f"predictor model file {path} does not exist (run `hwnas profiles calibrate`)")
        text = read_text(path, ProfileError)  # a folder, a FIFO, too large, not UTF-8: an error naming it
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ProfileError(f"predictor model file {path} cannot be read: "
                               f"{'nested too deeply' if isinstance(exc, RecursionError) else exc}") from None
        return cls.from_json(data, str(path))

    def describe(self) -> str:
        t = self.training
        return (f"{FORMAT} v{VERSION} ({self.family}), fitted on {t.get('fit_samples', '?')} samples measured "
                f"with {t.get('measured_on', '?')} on {t.get('host', '?')} ({t.get('date', '?')})")


@register_kind
class PredictorProfile(Profile):
    """Latency predicted by a :class:`LatencyModel` file that ``hwnas profiles calibrate`` fitted.

    ``model_file`` is resolved against the profile YAML's folder when relative. Results are cached per
    (file content, settings) for the life of the process.
    """

    kind = "predictor"
    metrics = {"latency_ms": "ms"}
    primary_metric = "latency_ms"
    provenance = "predicted"
    defaults = {"model_file": None, "batch_size": 1, "measured_on": "", "unknown_ops": "refuse"}
    ranges = {"batch_size": Range(1, 65536, integer=True)}
    _cache: dict[tuple[str, str], ProfileResult] = {}

    def _validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        merged = super()._validate_params(params)
        if merged["model_file"] is None:
            raise ProfileError(f"profile '{self.name}': parameter 'model_file' (the fitted predictor JSON) is required")
        if not isinstance(merged["model_file"], str) or not merged["model_file"]:
            raise ProfileError(f"profile '{self.name}': parameter 'model_file' must be a path to the fitted predictor "
                               f"JSON, got {shown(merged['model_file'])}")
        path = Path(merged["model_file"])
        try:
            path = path.expanduser()
        except RuntimeError:  # ~user of no such user: the file will not be found
            pass
        if not path.is_absolute() and self.path is not None:
            path = Path(self.path).resolve().parent / path
        merged["model_file"] = str(path)
        try:
            self._model = LatencyModel.load(path)
        except ProfileError as exc:
            raise ProfileError(f"profile '{self.name}': {exc}") from None
        self._model_digest = file_digest(path)
        return merged

    def model(self) -> LatencyModel:
        """The fitted model (read when the profile was built)."""
        return self._model

    def profile(self, onnx_path: Path) -> ProfileResult:
        try:
            check_file(onnx_path)  # before it is hashed: a FIFO would block, a huge file take long
            key = (file_digest(onnx_path), repr((self._model_digest, sorted(self.params.items()))))
        except ProfileError as exc:
            raise ProfileError(f"profile '{self.name}': {exc}") from None
        except OSError as exc:
            raise ProfileError(f"profile '{self.name}': cannot read {onnx_path}: {exc}") from None
        if key not in self._cache:
            self._cache[key] = ProfileResult(self.name, {"latency_ms": self._predict(onnx_path)})
        return self._cache[key]

    def _predict(self, onnx_path: Path) -> Metric:
        model = self.model()
        batch = self.params["batch_size"]
        try:
            ops = kernel_ops(onnx_path, batch)
        except ProfileError as exc:  # reading the file names it
            raise ProfileError(f"profile '{self.name}': {exc}") from None
        approximated = self.approximated_ops(onnx_path, (op.op_type for op in ops if not op.known),
                                             "as elementwise kernels")
        value = model.predict_features(graph_features(ops))
        details: dict[str, Any] = {
            "model": model.describe(), "model_file": self.params["model_file"],
            "validation_error": model.validation, "batch_size": batch,
            "measured_on": self.params["measured_on"] or model.training.get("measured_on", ""),
            **host_mismatch(str(model.training.get("host", ""))),
        }
        trained = model.training.get("batch_sizes") or []
        if trained and not min(trained) <= batch <= max(trained):
            details["extrapolated"] = f"batch_size {batch} is outside the calibrated {min(trained)}-{max(trained)}"
        seen = model.training.get("classes_seen")
        unseen = sorted({kernel_class(op) for op in ops} - set(seen)) if seen is not None else []
        if unseen:
            details["unseen_kernel_classes"] = unseen  # costed at zero: calibrate with models that have them
        if approximated:
            details["approximated_ops"] = approximated
        return Metric("latency_ms", float(value), "ms", "predicted", details)
