"""Apache TVM (Relax) lowering: ONNX → Relax → MetaSchedule tuning with a shared database → compiled module.

Runs **inside the TVM worker process only** (:mod:`hwnas.lowering.tvm_worker`): it imports ``tvm`` at module
level, and a TVM crash takes its process down. hwnas itself talks to it through that worker.

Workloads are the fused TIR functions of a candidate (``fused_matmul_add_relu`` …): they depend on shapes,
not on weights (weights stay Relax constants), so candidates that share a layer shape share a workload. A
workload is tuned once per (database, target); later candidates and later searches reuse its record.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import onnx
import tvm
from tvm import relax
from tvm.ir.utils import derived_object
from tvm.relax.frontend.onnx import from_onnx
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
from tvm.s_tir.meta_schedule.runner import EvaluatorConfig, PyRunner
from tvm.s_tir.meta_schedule.runner.local_runner import LocalRunnerFuture
from tvm.s_tir.meta_schedule.runner.utils import alloc_argument_common, run_evaluator_common

_ONNX_DTYPES = {1: "float32", 10: "float16", 11: "float64", 7: "int64", 6: "int32", 3: "int8", 2: "uint8", 9: "bool"}


class LoweringError(Exception):
    """A candidate cannot be imported, tuned, compiled or run by TVM (the message says which and why)."""


# ---- targets and import -----------------------------------------------------------------------------------


def make_target(spec: dict[str, Any] | str) -> tvm.target.Target:
    """A TVM target from its JSON dict (or a JSON string of one), with a clear error for a bad one.

    ``"mcpu": "native"`` becomes this host's CPU as LLVM names it (e.g. ``rocketlake``)."""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise LoweringError(f"target {spec!r} is not a JSON dict: {exc}") from None
    spec = dict(spec)
    if spec.get("mcpu") == "native":  # this host's CPU, by LLVM's name for it (records then say which CPU)
        spec["mcpu"] = tvm.target.codegen.llvm_get_system_cpu()
    try:
        return tvm.target.Target(spec)
    except Exception as exc:  # TVM raises ValueError / TVMError / AttributeError for unknown kinds and keys
        raise LoweringError(f"invalid TVM target {json.dumps(spec)}: {str(exc).splitlines()[-1] if str(exc) else exc}") from None


def input_specs(model: onnx.ModelProto, batch_size: int) -> list[tuple[str, list[int], str]]:
    """(name, static shape, dtype) of every graph input, the batch (first, symbolic) axis set to ``batch_size``."""
    weights = {init.name for init in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in weights:
            continue
        tensor = value.type.tensor_type
        shape = []
        for axis, dim in enumerate(tensor.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(int(dim.dim_value))
            elif axis == 0:
                shape.append(batch_size)
            else:
                raise LoweringError(f"input {value.name!r} has a symbolic non-batch dimension {dim.dim_param!r}")
        dtype = _ONNX_DTYPES.get(tensor.elem_type)
        if dtype is None:
            raise LoweringError(f"input {value.name!r} has an unsupported element type {tensor.elem_type}")
        specs.append((value.name, shape, dtype))
    return specs


def import_onnx(path: str | Path, batch_size: int) -> tuple[tvm.IRModule, list[tuple[str, list[int], str]]]:
    """The Relax module of an ONNX file with static shapes (batch ``batch_size``), weights as constants."""
    model = onnx.load(str(path))
    specs = input_specs(model, batch_size)
    try:
        mod = from_onnx(model, shape_dict={n: s for n, s, _ in specs}, dtype_dict={n: d for n, _, d in specs})
    except Exception as exc:
        raise LoweringError(f"TVM's ONNX importer cannot convert {Path(path).name}: {type(exc).__name__}: "
                            f"{_last_line(exc)}") from None
    mod = tvm.transform.Sequential([relax.transform.DecomposeOpsForInference(),
                                    relax.transform.CanonicalizeBindings()])(mod)
    return mod, specs


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else repr(exc)


def fused(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    """The module after legalization and operator fusion: what MetaSchedule extracts workloads from.

    The same passes, in the same order, run in :func:`compile_module` (through ``compile_relax``), so the
    workload keys match the database's."""
    try:
        dispatch = relax.pipeline.library_dispatch_passes(target)
    except ValueError:
        dispatch = []
    passes = [*dispatch, relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
              relax.transform.FoldConstant(), relax.transform.FuseOps(), relax.transform.FuseTIR()]
    with target:
        return tvm.transform.Sequential(passes)(mod)


# ---- the shared tuning database --------------------------------------------------------------------------


def database_folder(database: str | Path, target: tvm.target.Target) -> Path:
    """The folder of ``target``'s records inside a tuning database: one sub-folder per target.

    MetaSchedule looks records up by workload only, so a schedule tuned for one CPU would otherwise be applied
    (and reported as tuned) when compiling for another."""
    spec = json.loads(str(target)) if str(target).startswith("{") else {"kind": target.kind.name}
    name = "-".join(str(spec[k]) for k in ("kind", "mtriple", "mcpu", "arch") if spec.get(k))
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:10]
    return Path(database) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{digest}"


@contextlib.contextmanager
def locked_database(database: str | Path, target: tvm.target.Target) -> Iterator[ms.database.JSONDatabase]:
    """``target``'s JSON tuning database in ``database``, opened under an exclusive file lock (searches may
    share one)."""
    folder = database_folder(database, target)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield ms.database.JSONDatabase(work_dir=str(folder))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _is_tuned(db: ms.database.Database, task: Any, target: tvm.target.Target) -> bool:
    return db.query_tuning_record(task.dispatched[0], target, task.task_name) is not None


# Compiled candidate schedules, by artifact path, handed from the in-process builder to the in-process runner.
_BUILT: dict[str, Any] = {}


@derived_object
class InProcessBuilder(PyBuilder):
    """Builds MetaSchedule candidates in this process.

    TVM's ``LocalBuilder`` starts a fresh pool of Python workers for every batch; each imports TVM, which
    costs tens of seconds on a loaded 2-core host (more than a whole tuning budget). This worker process is
    already the sandbox, so candidates are built here."""

    def build(self, build_inputs: list[Any]) -> list[Any]:
        import tvm.s_tir.tensor_intrin  # noqa: F401  (registers the intrinsics schedules may use)
        from tvm.driver import build as tvm_build
        from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

        results = []
        for item in build_inputs:
            try:
                mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(item.mod)
                built = tvm_build(mod, target=item.target)
                # MetaSchedule removes the artifact's folder after measuring it: give it a real one.
                path = os.path.join(tempfile.mkdtemp(prefix="hwnas-ms-"), "module")
                _BUILT[path] = built
                results.append(BuilderResult(path, None))
            except Exception as exc:
                results.append(BuilderResult(None, f"build failed: {type(exc).__name__}: {_last_line(exc)}"))
        return results


@derived_object
class InProcessRunner(PyRunner):
    """Times MetaSchedule candidates built by :class:`InProcessBuilder` on this machine's device."""

    def __init__(self, number: int = 3, repeat: int = 1, min_repeat_ms: int = 10) -> None:
        super().__init__()
        self.config = EvaluatorConfig(number=number, repeat=repeat, min_repeat_ms=min_repeat_ms,
                                      enable_cpu_cache_flush=False)

    def run(self, runner_inputs: list[Any]) -> list[Any]:
        fill = tvm.get_global_func("tvm.contrib.random.random_fill_for_measure", allow_missing=True)
        futures = []
        for item in runner_inputs:
            built = _BUILT.pop(str(item.artifact_path), None)
            try:
                if built is None:
                    raise LoweringError(f"no built module for {item.artifact_path}")
                dev = tvm.runtime.device(str(item.device_type), 0)
                args = alloc_argument_common(fill, dev, [a.as_json() for a in item.args_info], 1)
                futures.append(LocalRunnerFuture(res=run_evaluator_common(built, dev, self.config, args)))
            except Exception as exc:
                futures.append(LocalRunnerFuture(error_message=f"run failed: {type(exc).__name__}: {_last_line(exc)}"))
        return futures


def tune(mod: tvm.IRModule, target: tvm.target.Target, database: str | Path | None, trials: int,
         seed: int = 0) -> dict[str, Any]:
    """Tune the workloads of ``mod`` that ``database`` has no record of, ``trials`` trials each.

    Returns what the profile reports: ``workloads`` (names), ``workloads_total``, ``workloads_already_tuned``,
    ``workloads_newly_tuned``, ``workloads_failed`` (tuning found no valid schedule), ``workloads_untuned``
    (left with TVM's default schedules) and ``tuning_s``. ``database=None`` only counts the workloads, as does
    ``trials=0`` when the database has no records for ``target``."""
    tasks = ms.relax_integration.extract_tasks(fused(mod, target), target)
    names = [t.task_name for t in tasks]
    if database is None or (trials == 0 and not (database_folder(database, target) / "database_workload.json").is_file()):
        return {"workloads": names, "workloads_total": len(tasks), "workloads_already_tuned": 0,
                "workloads_newly_tuned": 0, "workloads_failed": [], "workloads_untuned": names, "tuning_s": 0.0}
    start = time.perf_counter()
    with locked_database(database, target) as db:
        todo = [t for t in tasks if not _is_tuned(db, t, target)]
        if todo and trials > 0:
            logs = tempfile.mkdtemp(prefix="hwnas-ms-logs-")
            try:
                strategy = ms.search_strategy.EvolutionarySearch(
                    population_size=max(32, 4 * trials), init_min_unmeasured=min(50, max(16, 2 * trials)),
                    genetic_num_iters=2)
                contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
                    todo, work_dir=logs, strategy=strategy, num_threads=1, seed=seed)
                ms.tune.tune_tasks(
                    tasks=contexts, task_weights=weights, work_dir=logs, max_trials_global=trials * len(contexts),
                    max_trials_per_task=trials, num_trials_per_iter=min(trials, 64), database=db,
                    builder=InProcessBuilder(), runner=InProcessRunner(),
                    cost_model=ms.cost_model.XGBModel(num_tuning_cores=1))
            finally:
                shutil.rmtree(logs, ignore_errors=True)
        untuned = [t.task_name for t in todo if not _is_tuned(db, t, target)]
    tuned_now = trials > 0 and bool(todo)
    return {
        "workloads": names,
        "workloads_total": len(tasks),
        "workloads_already_tuned": len(tasks) - len(todo),
        "workloads_newly_tuned": len(todo) - len(untuned) if tuned_now else 0,
        "workloads_failed": untuned if tuned_now else [],
        "workloads_untuned": untuned,
        "tuning_s": round(time.perf_counter() - start, 3) if tuned_now else 0.0,
    }


# ---- compile, run, measure, export -----------------------------------------------------------------------


def compile_module(mod: tvm.IRModule, target: tvm.target.Target, database: str | Path | None) -> Any:
    """A Relax VM executable: tuned schedules from ``database`` where it has them; elsewhere TVM's defaults
    (on GPUs, the dlight rules)."""
    try:
        if database is not None and (database_folder(database, target) / "database_workload.json").is_file():
            with locked_database(database, target) as db:
                return ms.relax_integration.compile_relax(db, mod, target, None)
        return ms.relax_integration.compile_relax(ms.database.MemoryDatabase(), mod, target, None)
    except Exception as exc:
        raise LoweringError(f"TVM cannot compile for {target}: {type(exc).__name__}: {_last_line(exc)}") from None


def random_inputs(specs: list[tuple[str, list[int], str]], seed: int = 0) -> list[np.ndarray]:
    """Random inputs shaped like the graph inputs (floats ~ N(0, 1), integers zero) — as the ORT profile uses."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) if np.issubdtype(np.dtype(dtype), np.floating)
            else np.zeros(shape, dtype) for _, shape, dtype in specs]


def _outputs(result: Any) -> list[np.ndarray]:
    if hasattr(result, "numpy"):
        return [result.numpy()]
    return [x for item in result for x in _outputs(item)]


def run_once(vm: Any, dev: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The VM's outputs for one set of inputs."""
    return _outputs(vm["main"](*[tvm.runtime.tensor(x, dev) for x in inputs]))


def ort_max_abs_diff(onnx_path: str | Path, specs: list[tuple[str, list[int], str]],
                     inputs: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    """Largest absolute difference between TVM's outputs and ONNX Runtime's on the same inputs."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = sess.run(None, {name: x for (name, _, _), x in zip(specs, inputs)})
    if len(expected) != len(outputs):
        raise LoweringError(f"TVM returned {len(outputs)} outputs, ONNX Runtime {len(expected)}")
    return max(float(np.max(np.abs(e.astype(np.float64) - o.astype(np.float64)))) if e.size else 0.0
               for e, o in zip(expected, outputs))


def time_vm(vm: Any, dev: Any, inputs: list[np.ndarray], *, warmup: int, repeats: int,
            number: int) -> np.ndarray:
    """Milliseconds per run: ``repeats`` timings (each the mean of ``number`` runs) after ``warmup`` runs."""
    args = [tvm.runtime.tensor(x, dev) for x in inputs]
    for _ in range(warmup):
        vm["main"](*args)
    dev.sync()
    timer = vm.time_evaluator("main", dev, number=number, repeat=repeats)
    return np.asarray(timer(*args).results, dtype=float) * 1e3


def export(executable: Any, dest: str | Path, cc: str | None) -> Path:
    """Write a compiled executable as a shared library (``.so``, linked by ``cc`` when given, e.g. a cross
    compiler) or, for ``.tar``, as an archive of object files that any linker for that platform can use."""
    from tvm.support import cc as tvm_cc
    from tvm.support import tar

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix == ".tar":
        executable.export_library(str(dest), fcompile=tar.tar)
    elif cc:
        executable.export_library(str(dest), fcompile=tvm_cc.cross_compiler(cc))
    else:
        executable.export_library(str(dest))
    return dest
