"""The ``tvm`` and ``tvm-rpc`` profile kinds: latency of the candidate compiled with Apache TVM (Relax).

ONNX → ``tvm.relax.frontend.onnx.from_onnx`` (static batch) → fusion → MetaSchedule tuning of the workloads
the shared database lacks → ``compile_relax`` (tuned schedules from the database; TVM's defaults, dlight rules
on GPUs, elsewhere) → Relax VM, outputs checked against ONNX Runtime → ``time_evaluator``: ``warmup`` runs,
then ``repeats`` timings of ``number`` runs each; median, IQR and CV recorded.

All TVM work happens in a worker process (:mod:`hwnas.lowering.tvm_worker`) bounded by ``timeout_s`` and
``memory_gb``: a crash, hang or OOM there fails this candidate with a ProfileError, never the search.

The tuning database (``database``; default ``<search out>/tvm_db``, bound by :meth:`TVMProfile.bind`) is shared
by every candidate of a search and by any search given the same path. ``tuning_trials: 0`` measures TVM's
untuned default schedules, and the metric says so (``details.tuned: false``, ``label: untuned``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import ProfileError
from hwnas.profiles.base import Metric, Profile, ProfileResult, Range
from hwnas.profiles.onnxruntime import cpu_name, file_digest, gpu_names
from hwnas.profiles.registry import register_kind
from hwnas.validation import shown

INSTALL_HINT = "apache-tvm is not installed: pip install 'hwnas[tvm]'"
DATABASE_DIR = "tvm_db"
PROBE_TIMEOUT_S = 300.0  # starting the worker and importing TVM (``timeout_s`` bounds each candidate)


def tvm_installed() -> bool:
    """Whether apache-tvm can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("tvm") is not None
    except ValueError:  # sys.modules["tvm"] is None: blocked
        return False


def default_database() -> Path:
    """Where the tuning database lives when no search names an output folder (``hwnas profiles measure``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "hwnas" / DATABASE_DIR


def parse_target(name: str, value: Any) -> dict[str, Any]:
    """A target as a JSON dict (a mapping, or a JSON string of one, e.g. from ``--profile-set``): a string
    ``kind`` and options that are strings, numbers, booleans or lists of them (what TVM's target JSON holds)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise ProfileError(f"profile '{name}': target must be a JSON dict such as "
                               f'{{"kind": "llvm", "num-cores": 1}}, got {shown(value)}') from None
    if not _is_target(value):
        raise ProfileError(f"profile '{name}': target must be a mapping with a 'kind' and options that are "
                           f'strings, numbers or lists of them (e.g. {{"kind": "llvm", "num-cores": 1}}), '
                           f"got {shown(value)}")
    return dict(value)


def _is_target(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str) or not value["kind"]:
        return False
    return all(isinstance(k, str) and (_is_option(v) or isinstance(v, list) and all(map(_is_option, v)))
               for k, v in value.items())


def _is_option(value: Any) -> bool:
    return isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value))


@register_kind
class TVMProfile(Profile):
    """Latency of the TVM-compiled candidate on this machine (``target`` kind ``llvm``: CPU; ``cuda``: GPU).

    Results are cached per (file content, settings, database) for the life of the process."""

    kind = "tvm"
    metrics = {"latency_ms": "ms"}
    primary_metric = "latency_ms"
    provenance = "measured"
    defaults: dict[str, Any] = {
        "target": {"kind": "llvm", "mcpu": "native", "num-cores": 1},
        "threads": 1,
        "batch_size": 1,
        "warmup": 10,
        "repeats": 100,
        "number": 1,
        "tuning_trials": 32,
        "database": None,
        "allow_untuned_workloads": False,
        "check_outputs": True,
        "tolerance": 1e-3,
        "timeout_s": 1800.0,
        "memory_gb": 8.0,
        "seed": 0,
    }
    ranges = {"threads": Range(1, 256, integer=True), "batch_size": Range(1, 65536, integer=True),
              "warmup": Range(0, 10_000, integer=True), "repeats": Range(1, 100_000, integer=True),
              "number": Range(1, 10_000, integer=True), "tuning_trials": Range(0, 100_000, integer=True),
              "tolerance": Range(0.0, 1e6, low_open=True), "timeout_s": Range(0.0, 7 * 24 * 3600.0, low_open=True),
              "memory_gb": Range(0.0, 1 << 20, low_open=True, nullable=True), "seed": Range(0, 2**31 - 1, integer=True)}
    _cache: dict[tuple[str, ...], ProfileResult] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._out_dir: Path | None = None
        self._worker: Any = None
        self._probe: dict[str, Any] | None = None

    def _validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        if "target" in params:  # a JSON string (e.g. from --profile-set) or a mapping
            params = {**params, "target": parse_target(self.name, params["target"])}
        merged = super()._validate_params(params)
        if merged["database"] is not None and (not isinstance(merged["database"], str) or "\0" in merged["database"]):
            raise ProfileError(f"profile '{self.name}': database must be a folder path, got {shown(merged['database'])}")
        return merged

    # ---- where the database lives --------------------------------------------------------------------------

    def bind(self, out_dir: Path) -> None:
        """The search's output folder: the default tuning database is ``<out_dir>/tvm_db``."""
        self._out_dir = Path(out_dir)

    def database(self) -> Path:
        """The tuning database folder this profile reads and extends."""
        if self.params["database"]:
            try:
                return Path(self.params["database"]).expanduser().resolve()
            except RuntimeError:  # ~user of no such user
                return Path(self.params["database"]).resolve()
        return (self._out_dir / DATABASE_DIR).resolve() if self._out_dir else default_database()

    # ---- the worker ----------------------------------------------------------------------------------------

    def worker(self) -> Any:
        """The worker process that does this profile's TVM work (started on first use)."""
        from hwnas.lowering.tvm_worker import TVMWorker

        if self._worker is None:
            self._worker = TVMWorker(memory_gb=self.params["memory_gb"], threads=self.params["threads"],
                                     label="TVM worker")
        return self._worker

    def _rpc(self) -> dict[str, Any] | None:
        return None

    def available(self) -> str | None:
        if not tvm_installed():
            return INSTALL_HINT
        if self._probe is None:
            try:
                self._probe = self.worker().request(
                    {"op": "probe", "target": self.params["target"], "rpc": self._rpc()},
                    timeout_s=PROBE_TIMEOUT_S)
            except ProfileError as exc:  # a bad target, or TVM does not start here
                return str(exc)
        return self._probe["reason"]

    # ---- measuring -----------------------------------------------------------------------------------------

    def profile(self, onnx_path: Path) -> ProfileResult:
        try:
            key = (file_digest(onnx_path), repr(sorted(self.params.items())), str(self.database()))
        except OSError as exc:
            raise ProfileError(f"profile '{self.name}': cannot read {onnx_path}: {exc}") from None
        if key not in self._cache:
            self._cache[key] = ProfileResult(self.name, {"latency_ms": self._measure(Path(onnx_path))})
        return self._cache[key]

    def _measure(self, onnx_path: Path) -> Metric:
        if not tvm_installed():
            raise ProfileError(f"profile '{self.name}': {INSTALL_HINT}")
        p = self.params
        tuned_asked = p["tuning_trials"] > 0
        request = {
            "op": "profile", "onnx": str(onnx_path.resolve()), "target": p["target"], "batch_size": p["batch_size"],
            "tuning_trials": p["tuning_trials"], "database": str(self.database()) if tuned_asked else None,
            "warmup": p["warmup"], "repeats": p["repeats"], "number": p["number"],
            "check_outputs": p["check_outputs"], "seed": p["seed"], "rpc": self._rpc(),
        }
        try:
            answer = self.worker().request(request, timeout_s=p["timeout_s"])
        except ProfileError as exc:
            raise ProfileError(f"profile '{self.name}': {exc}") from None
        diff = answer["max_abs_diff_vs_ort"]
        if diff is not None and not diff <= p["tolerance"]:
            raise ProfileError(f"profile '{self.name}': TVM's outputs differ from ONNX Runtime's by {diff:.3g} "
                               f"(> tolerance {p['tolerance']:g}) on {onnx_path.name}")
        if tuned_asked and answer["workloads_failed"] and not p["allow_untuned_workloads"]:
            raise ProfileError(
                f"profile '{self.name}': tuning found no valid schedule for workload(s) {answer['workloads_failed']} "
                f"({p['tuning_trials']} trials each); the latency would not be a tuned deployment's "
                "(raise tuning_trials, or set allow_untuned_workloads: true to report it as partially tuned)")
        times = np.asarray(answer["times_ms"])
        q1, median, q3 = np.percentile(times, [25, 50, 75])
        untuned = answer["workloads_untuned"]
        tuned = tuned_asked and not untuned
        label = "tuned" if tuned else "partially tuned" if tuned_asked and len(untuned) < answer["workloads_total"] else "untuned"
        details = {
            "repeats": len(times), "warmup": p["warmup"], "number": p["number"], "iqr_ms": float(q3 - q1),
            "cv": float(times.std() / times.mean()) if times.mean() > 0 else 0.0, "min_ms": float(times.min()),
            "batch_size": p["batch_size"], "threads": p["threads"], "target": answer["target"],
            "tvm": answer["tvm"], "where": answer["where"], "host": self._host(),
            "tuned": tuned, "label": label, "tuning_trials": p["tuning_trials"],
            "workloads_total": answer["workloads_total"],
            "workloads_already_tuned": answer["workloads_already_tuned"],
            "workloads_newly_tuned": answer["workloads_newly_tuned"],
            "workloads_failed": answer["workloads_failed"], "workloads_untuned": untuned,
            "workloads": answer["workloads"], "tuning_s": answer["tuning_s"], "compile_s": answer["compile_s"],
            "database": str(self.database()) if tuned_asked else None, "max_abs_diff_vs_ort": diff,
        }
        return Metric("latency_ms", float(median), "ms", "measured", details)

    def _host(self) -> str:
        return ", ".join(gpu_names()) if self.params["target"].get("kind") == "cuda" else cpu_name()


@register_kind
class TVMRPCProfile(TVMProfile):
    """Latency of the TVM-compiled candidate on a remote device, through TVM's RPC server.

    The module is compiled here for ``target`` (cross-linked with ``cc``, e.g. ``aarch64-linux-gnu-gcc``),
    uploaded to the server (``host``/``port``, or a ``tracker`` ``HOST:PORT`` and ``key``), loaded there and
    timed there with ``time_evaluator``. MetaSchedule tuning needs a runner on the device, which this kind
    does not drive: it measures TVM's default schedules, labelled ``untuned`` (``tuning_trials`` must be 0)."""

    kind = "tvm-rpc"
    defaults = {
        **TVMProfile.defaults,
        "tuning_trials": 0,
        "host": "127.0.0.1",
        "port": 9090,
        "tracker": "",
        "key": "",
        "device": "cpu",
        "cc": "",
        "session_timeout_s": 0,
        "remote_name": "",
    }
    ranges = {**TVMProfile.ranges, "port": Range(1, 65535, integer=True),
              "session_timeout_s": Range(0, 7 * 24 * 3600, integer=True)}

    def _validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        merged = super()._validate_params(params)
        if merged["tracker"] and ":" not in merged["tracker"]:
            raise ProfileError(f"profile '{self.name}': tracker must be HOST:PORT, got {shown(merged['tracker'])}")
        if merged["tracker"] and not merged["key"]:
            raise ProfileError(f"profile '{self.name}': a tracker needs the device's key")
        if merged["tuning_trials"] > 0:
            raise ProfileError(f"profile '{self.name}': tuning over RPC is not supported; tune the workloads with a "
                               "'tvm' profile of the same target into the shared database, or use tuning_trials: 0")
        return merged

    def _rpc(self) -> dict[str, Any]:
        p = self.params
        return {"host": p["host"], "port": p["port"], "tracker": p["tracker"], "key": p["key"],
                "device": p["device"], "cc": p["cc"], "session_timeout_s": p["session_timeout_s"]}

    def _host(self) -> str:
        return self.params["remote_name"] or (self.params["tracker"] and f"tracker key {self.params['key']}") \
            or f"{self.params['host']}:{self.params['port']}"
