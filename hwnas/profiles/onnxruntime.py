"""The ``onnxruntime`` profile kind: latency measured by running the ONNX file in ONNX Runtime here."""

from __future__ import annotations

import hashlib
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import ProfileError
from hwnas.graph import load_model
from hwnas.profiles.base import Metric, Profile, ProfileResult, Range
from hwnas.profiles.registry import register_kind

_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
#: The most bytes of random inputs a measurement feeds (a batch of 65536 rows of 4096 floats).
MAX_INPUT_BYTES = 1 << 30


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (the identity a measurement is cached under)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cpu_name() -> str:
    """A human-readable name of this host's CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_mismatch(calibrated_on: str) -> dict[str, str]:
    """``{"host_mismatch": ...}`` when a model calibrated on the CPU named ``calibrated_on`` (a substring of its
    model name) predicts on another CPU; ``{}`` when it is this one or unnamed."""
    here = cpu_name()
    if not calibrated_on or calibrated_on.lower() in here.lower():
        return {}
    return {"host_mismatch": f"calibrated on {calibrated_on!r}, running on {here!r}: its validation error was "
                             "measured there, not here; re-calibrate on this host"}


def gpu_names() -> list[str]:
    """Names of the NVIDIA GPUs here (empty when there are none or nvidia-smi is missing)."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


@register_kind
class OnnxRuntimeProfile(Profile):
    """Median latency of ``repeats`` timed runs after ``warmup`` runs, one session per file.

    Inputs are random tensors shaped like the graph inputs, with the batch dimension set to ``batch_size``.
    ``provider: auto`` measures on a CUDA GPU when onnxruntime-gpu and a GPU are present, else on the CPU.
    Results are cached per (file content, settings) for the life of the process.
    """

    kind = "onnxruntime"
    metrics = {"latency_ms": "ms"}
    primary_metric = "latency_ms"
    provenance = "measured"
    defaults = {
        "provider": "CPUExecutionProvider",
        "threads": 1,
        "batch_size": 1,
        "warmup": 10,
        "repeats": 100,
        "optimization": "all",
        # a substring the GPU's name must contain (e.g. "H100") for a CUDA measurement to count as this device
        "device_match": "",
    }
    #: ``repeats`` >= 50 for a stable median; the upper bounds keep a typo from running for hours.
    ranges = {"threads": Range(1, 256, integer=True), "batch_size": Range(1, 65536, integer=True),
              "warmup": Range(0, 10_000, integer=True), "repeats": Range(50, 100_000, integer=True)}
    choices = {**Profile.choices, "optimization": ("disable", "basic", "extended", "all")}
    _cache: dict[tuple[str, str], ProfileResult] = {}

    def provider(self) -> str:
        """The execution provider to use: ``auto`` is CUDA when onnxruntime-gpu sees a GPU, else the CPU."""
        import onnxruntime as ort

        provider = self.params["provider"]
        if provider == "auto":
            cuda = "CUDAExecutionProvider"
            return cuda if cuda in ort.get_available_providers() and gpu_names() else "CPUExecutionProvider"
        return provider

    def available(self) -> str | None:
        import onnxruntime as ort

        provider = self.provider()
        if provider not in ort.get_available_providers():
            return f"execution provider {provider} is not available here (available: {ort.get_available_providers()})"
        match = self.params["device_match"]
        if match:
            names = gpu_names()
            if not any(match.lower() in n.lower() for n in names):
                return f"no GPU whose name contains {match!r} here (found: {names or 'none'})"
        return None

    def _session(self, path: Path):  # type: ignore[no-untyped-def]
        import onnxruntime as ort

        reason = self.available()
        if reason:
            raise ProfileError(f"profile '{self.name}': {reason}")
        provider = self.provider()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.params["threads"]
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.params["optimization"]]
        try:
            return ort.InferenceSession(str(path), opts, providers=[provider])
        except Exception as exc:
            raise ProfileError(f"profile '{self.name}': onnxruntime cannot load {path}: {exc}") from exc

    def _inputs(self, sess: Any, path: Path) -> dict[str, np.ndarray]:
        """Random inputs of the shapes the graph declares, at most :data:`MAX_INPUT_BYTES` in all (a declared
        [1e9, 1e9] input is refused before anything is allocated)."""
        rng = np.random.default_rng(0)
        shapes = {}
        for arg in sess.get_inputs():
            dtype = _DTYPES.get(arg.type)
            if dtype is None:
                raise ProfileError(f"profile '{self.name}': {path}: input '{arg.name}' has unsupported type {arg.type}")
            shape = []
            for axis, dim in enumerate(arg.shape):
                if isinstance(dim, int) and dim > 0:
                    shape.append(dim)
                elif axis == 0:
                    shape.append(self.params["batch_size"])
                else:
                    raise ProfileError(
                        f"profile '{self.name}': {path}: input '{arg.name}' has a symbolic non-batch dimension "
                        f"{dim!r} (give the model static shapes except the batch)"
                    )
            shapes[arg.name] = (shape, dtype)
        size = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in shapes.values())
        if size > MAX_INPUT_BYTES:
            raise ProfileError(f"profile '{self.name}': {path}: its inputs "
                               f"{ {name: shape for name, (shape, _) in shapes.items()} } are {size} bytes, more "
                               f"than the {MAX_INPUT_BYTES >> 30} GB hwnas feeds a model it measures")
        return {name: (rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
                       if np.issubdtype(dtype, np.floating) else np.zeros(shape, dtype))
                for name, (shape, dtype) in shapes.items()}

    def profile(self, onnx_path: Path) -> ProfileResult:
        try:
            load_model(onnx_path)  # what every profile refuses (no model, invalid, too large), this one refuses
        except ProfileError as exc:  # its message starts with the file
            raise ProfileError(f"profile '{self.name}': cannot load {exc}") from None
        key = (file_digest(onnx_path), repr(sorted(self.params.items())))
        if key in self._cache:
            return self._cache[key]
        sess = self._session(onnx_path)
        feeds = self._inputs(sess, onnx_path)
        try:
            for _ in range(self.params["warmup"]):
                sess.run(None, feeds)
            times = np.empty(self.params["repeats"])
            for i in range(len(times)):
                start = time.perf_counter_ns()
                sess.run(None, feeds)
                times[i] = (time.perf_counter_ns() - start) / 1e6
        except Exception as exc:
            raise ProfileError(f"profile '{self.name}': inference failed on {onnx_path}: {exc}") from exc
        q1, median, q3 = np.percentile(times, [25, 50, 75])
        import onnxruntime as ort

        metric = Metric(
            "latency_ms", float(median), "ms", "measured",
            {
                "repeats": len(times), "warmup": self.params["warmup"], "iqr_ms": float(q3 - q1),
                "cv": float(times.std() / times.mean()), "min_ms": float(times.min()),
                "batch_size": self.params["batch_size"], "threads": self.params["threads"],
                "provider": self.provider(), "onnxruntime": ort.__version__,
                "host": cpu_name() if self.provider() == "CPUExecutionProvider" else ", ".join(gpu_names()),
            },
        )
        result = ProfileResult(self.name, {"latency_ms": metric})
        self._cache[key] = result
        return result
