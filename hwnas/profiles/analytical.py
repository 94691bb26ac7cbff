"""The ``analytical`` profile kind: latency predicted by a per-operator roofline model of the lowered ONNX graph.

For every operator that runs (:func:`hwnas.graph.graph_costs`; see ``fusion``)::

    t_op      = op_overhead[op] + max(t_compute, t_memory)      (fused epilogue ops: t_compute only)
    t_compute = flops / (peak[dtype] · eff)                      (÷ sparse speed-up where the hardware has one)
    eff       = efficiency.matmul · m/(m+m_half) · n/(n+n_half) · k/(k+k_half)   MatMul/Gemm
              = efficiency.elementwise · run/(run+run_half)                      elementwise ops
              = efficiency.quant · run/(run+quant_run_half)                      Q/DQ ops
    t_memory  = weight_bytes / bw(all weights of the model) + activation_bytes / bw(activation bytes of the op)
    latency   = inference_overhead + Σ t_op

``bw(x)`` is the bandwidth of the smallest cache level (``cache_bytes`` / ``cache_gbps``, ascending) that holds
``x`` bytes, else ``memory_gbps``: weights are re-read by every inference, so their level is set by all the
weights of the model (the working set between two inferences). ``x/(x+x_half)`` are half-performance lengths
(register tiles, pipeline fill, vector-loop start-up over runs of ``run`` contiguous elements). A dtype missing
from ``peak_gflops`` falls back to the next wider one (int4 → int8 → fp16 → fp32, bf16 → fp32). A weight in
the 2:4 pattern runs ``sparse_2_4_speedup`` × faster and is stored compressed (half the values + 2 bits of
index per kept value), only for ``sparse_2_4_dtypes``; unstructured zeros give nothing unless
``unstructured_sparsity_speedup`` (a cap) is set: then compute shrinks by ``min(cap, 1/(1-sparsity))``.
``repack_batched_weights``: the runtime pre-packs only 2-D weights, so a batched (3-D) weight is read and
written once more before each GEMM with m > 1 (ONNX Runtime's MLAS).

``fusion`` says which graph runs: ``none`` (every node is a kernel), ``epilogue`` (elementwise and Q/DQ ops
computed only from one MatMul/Gemm's output fold into it, DequantizeLinear ops feeding one fold into it,
constant-only subgraphs are folded at load time: what TensorRT / cuBLASLt epilogues / XNNPACK do) or
``onnxruntime`` (the graph after ONNX Runtime's own CPU graph optimizations, costed as it is then executed).

An operator the cost view has no rule for (Conv, pooling, ...: ``OpCost.known`` false) is refused — its
MACs are unknown, a generic elementwise cost would be far below the truth — unless ``unknown_ops:
approximate``, which prices it as a generic elementwise op and lists it in ``details["approximated_ops"]``.

:func:`calibrate` fits the free constants to measured latencies by least squares on log error (scipy).
``docs/profiles.md`` derives the constants of the built-in profiles and reports the validation.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import onnx

from hwnas.errors import ProfileError
from hwnas.graph import (COPY_OPS, DTYPES, LAYOUT_OPS, OpCost, check_file, graph_costs, optimize_with_onnxruntime,
                         reading)
from hwnas.profiles.base import Metric, Profile, ProfileResult, Range
from hwnas.profiles.onnxruntime import host_mismatch
from hwnas.profiles.registry import register_kind
from hwnas.validation import check_float, shown

MODEL_NAME = "roofline-ops-v1"
#: A dtype without a peak of its own runs at the peak of the next wider one.
DTYPE_FALLBACK = {"int4": "int8", "int8": "fp16", "bf16": "fp32", "fp16": "fp32"}
#: Operator classes; ``op_overhead_us`` takes an op type, a class or ``default``.
CLASSES = ("matmul", "qmatmul", "elementwise", "quant", "copy", "layout", "shape")
FUSIONS = ("none", "epilogue", "onnxruntime")
EFFICIENCY_KEYS = ("matmul", "m_half", "n_half", "k_half", "elementwise", "run_half", "quant", "quant_run_half")
_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "int8": 8, "int4": 4}

Sample = tuple[Any, int, float]  # (ONNX path or ModelProto, batch size, measured latency in ms)


def op_class(cost: OpCost) -> str:
    """The class of an operator (for overheads and efficiencies)."""
    if cost.macs > 0:
        return "qmatmul" if cost.dtype in ("int8", "int4") else "matmul"
    if cost.shape_op:
        return "shape"
    if cost.op_type in _QUANT_OPS:
        return "quant"
    if cost.op_type in LAYOUT_OPS:
        return "layout"
    if cost.op_type in COPY_OPS:
        return "copy"
    return "elementwise"


# ------------------------------------------------------------------------------------------------ fusion


def _fusion_flags(costs: Sequence[OpCost], fusion: str) -> tuple[np.ndarray, np.ndarray]:
    """(``folded``: costs nothing, ``fused``: pays compute only) per operator."""
    n = len(costs)
    folded = np.array([c.op_type == "Constant" for c in costs], dtype=bool)
    fused = np.zeros(n, dtype=bool)
    if fusion != "epilogue":
        return folded, fused
    folded |= np.array([c.constant for c in costs], dtype=bool)
    producer = {o: i for i, c in enumerate(costs) for o in c.outputs}
    consumers: dict[str, list[int]] = {}
    for i, c in enumerate(costs):
        for name in c.inputs:
            consumers.setdefault(name, []).append(i)
    classes = [op_class(c) for c in costs]
    group = [i if cl in ("matmul", "qmatmul") else -1 for i, cl in enumerate(classes)]
    for i, c in enumerate(costs):  # epilogues: elementwise ops computed only from one MatMul/Gemm's output
        if classes[i] not in ("elementwise", "quant", "layout") or folded[i]:
            continue
        groups = {group[producer[x]] for x in c.inputs if x in producer and not folded[producer[x]]}
        if len(groups) == 1 and -1 not in groups:
            group[i] = groups.pop()
            fused[i] = True
    for i in reversed(range(n)):  # prologues: Q/DQ ops whose outputs only feed (fused) MatMul/Gemm operands
        if classes[i] != "quant" or folded[i] or fused[i]:
            continue
        users = [u for o in costs[i].outputs for u in consumers.get(o, [])]
        if users and all(classes[u] in ("matmul", "qmatmul") or (fused[u] and classes[u] == "quant") for u in users):
            fused[i] = True
    return folded, fused


# ------------------------------------------------------------------------------------------------- table


@dataclass
class _Table:
    """The operators of several samples as flat arrays (one evaluation of the model is a few numpy ops)."""

    sample: np.ndarray
    op_type: list[str]
    cls: list[str]
    dtype: list[str]
    flops: np.ndarray
    batch: np.ndarray
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    run: np.ndarray
    weight_bytes: np.ndarray
    act_bytes: np.ndarray
    sparse_2_4: np.ndarray
    sparsity: np.ndarray
    folded: np.ndarray
    fused: np.ndarray
    model_weight_bytes: np.ndarray  # per sample
    n_samples: int

    def __post_init__(self) -> None:
        self.is_matmul = np.array([c in ("matmul", "qmatmul") for c in self.cls], dtype=bool)
        self.is_quant = np.array([c == "quant" for c in self.cls], dtype=bool)
        self.dtypes, self.dtype_idx = _codes(self.dtype)
        self.op_keys, self.op_key_idx = _codes(list(zip(self.op_type, self.cls)))


def _codes(values: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    """(unique values, index of each value into them)."""
    uniq: dict[Any, int] = {}
    idx = np.array([uniq.setdefault(v, len(uniq)) for v in values], dtype=int)
    return list(uniq), idx


_COLUMNS = ("flops", "batch", "m", "n", "k", "run", "weight_bytes", "act_bytes", "sparsity")


def _row(c: OpCost) -> tuple[float, ...]:
    """The numeric columns of one operator (``_COLUMNS``)."""
    d = c.dims
    act = max(0.0, c.bytes_read + c.bytes_written - c.weight_bytes)
    return (c.flops, d.get("batch", 1), d.get("m", 1), d.get("n", 1), d.get("k", 1),
            d.get("run", d.get("elements", 1)), c.weight_bytes, act, c.weight_sparsity)


def build_table(cost_lists: Sequence[Sequence[OpCost]], fusion: str) -> _Table:
    """One table over the operators of every sample in ``cost_lists`` (fusion flags applied per sample)."""
    flags = [_fusion_flags(costs, fusion) for costs in cost_lists]
    ops = [c for costs in cost_lists for c in costs]
    num = np.array([_row(c) for c in ops], dtype=float).reshape(len(ops), len(_COLUMNS))
    col = {name: num[:, i] for i, name in enumerate(_COLUMNS)}
    folded = np.concatenate([f for f, _ in flags]) if ops else np.zeros(0, bool)
    fused = np.concatenate([f for _, f in flags]) if ops else np.zeros(0, bool)
    weights = [sum(c.weight_bytes for c, f in zip(costs, fl) if not f) for costs, (fl, _) in zip(cost_lists, flags)]
    return _Table(
        sample=np.repeat(np.arange(len(cost_lists)), [len(c) for c in cost_lists]).astype(int),
        op_type=[c.op_type for c in ops], cls=[op_class(c) for c in ops], dtype=[c.dtype for c in ops],
        **col, sparse_2_4=np.array([c.sparse_2_4 for c in ops], dtype=bool), folded=folded, fused=fused,
        model_weight_bytes=np.asarray(weights, dtype=float), n_samples=len(cost_lists),
    )


# --------------------------------------------------------------------------------------------- the model


def resolve_dtype(dtype: str, peaks: Mapping[str, float]) -> str:
    """The dtype whose peak ``dtype`` runs at: itself, else the next wider one that has a peak."""
    d = dtype if dtype in _BITS else "fp32"
    while d not in peaks and d in DTYPE_FALLBACK:
        d = DTYPE_FALLBACK[d]
    if d not in peaks:
        raise ProfileError(f"no peak for dtype {dtype!r} or any wider one in peak_gflops {dict(peaks)}")
    return d


def _overhead_us(params: Mapping[str, Any], op_type: str, cls: str) -> float:
    ov = params["op_overhead_us"]
    if not isinstance(ov, Mapping):
        return float(ov)
    for key in (op_type, cls, "default"):
        if key in ov:
            return float(ov[key])
    return 0.0


def _bandwidth(nbytes: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Bytes/s of the smallest level holding ``nbytes`` (DRAM when none does)."""
    bw = np.full(nbytes.shape, float(params["memory_gbps"]) * 1e9)
    for cap, gbps in reversed(list(zip(params["cache_bytes"], params["cache_gbps"]))):
        bw = np.where(nbytes <= float(cap), float(gbps) * 1e9, bw)
    return bw


@dataclass
class OpTimes:
    """Seconds per operator of a :class:`_Table` (compute, memory, overhead) and per-sample totals."""

    compute: np.ndarray
    memory: np.ndarray
    overhead: np.ndarray
    total: np.ndarray  # per op
    latency_s: np.ndarray  # per sample


def _sat(x: np.ndarray, half: float) -> np.ndarray:
    """Half-performance-length factor ``x / (x + half)`` (``x`` at least 1)."""
    x = np.maximum(x, 1.0)
    return x / (x + max(float(half), 0.0))


def _efficiency(table: _Table, eff: Mapping[str, float]) -> np.ndarray:
    """Fraction of the dtype's peak each operator reaches."""
    gemm = float(eff["matmul"]) * _sat(table.m, eff["m_half"]) * _sat(table.n, eff["n_half"])
    gemm = gemm * _sat(table.k, eff["k_half"])
    quant = float(eff["quant"]) * _sat(table.run, eff["quant_run_half"])
    other = float(eff["elementwise"]) * _sat(table.run, eff["run_half"])
    return np.where(table.is_matmul, gemm, np.where(table.is_quant, quant, other))


def _sparsity(table: _Table, params: Mapping[str, Any], resolved: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(compute speed-up, weight bytes) per operator after what the hardware does with zeros."""
    speed = np.ones(len(table.cls))
    wbytes = table.weight_bytes.copy()
    if float(params["sparse_2_4_speedup"]) > 1.0:
        supported = np.array([r in params["sparse_2_4_dtypes"] for r in resolved] or [False])[table.dtype_idx]
        ok = table.sparse_2_4 & table.is_matmul & supported
        speed = np.where(ok, float(params["sparse_2_4_speedup"]), speed)
        compressed = np.array([0.5 + 0.5 * 2.0 / _BITS[r] for r in resolved] or [1.0])[table.dtype_idx]
        wbytes = np.where(ok, wbytes * compressed, wbytes)
    cap = params.get("unstructured_sparsity_speedup")
    if cap:
        gain = np.minimum(float(cap), 1.0 / np.maximum(1.0 - table.sparsity, 1e-9))
        speed = np.where(table.is_matmul & (table.sparsity > 0) & ~(speed > 1.0), gain, speed)
    return speed, wbytes


def evaluate(table: _Table, params: Mapping[str, Any]) -> OpTimes:
    """The model of the module docstring over every operator of ``table``."""
    peaks = params["peak_gflops"]
    resolved = [resolve_dtype(d, peaks) for d in table.dtypes]
    peak = np.array([float(peaks[d]) for d in resolved] or [1.0])[table.dtype_idx] * 1e9
    speed, wbytes = _sparsity(table, params, resolved)
    compute = table.flops / (peak * np.maximum(_efficiency(table, params["efficiency"]), 1e-12)) / speed
    ws = table.model_weight_bytes[table.sample] if table.n_samples else np.zeros(0)
    memory = wbytes / _bandwidth(ws, params) + table.act_bytes / _bandwidth(table.act_bytes, params)
    overhead = np.array([_overhead_us(params, o, c) for o, c in table.op_keys] or [0.0])[table.op_key_idx] * 1e-6
    if params["repack_batched_weights"]:  # a batched (3-D) weight is packed again (read + write) before each GEMM
        repack = table.is_matmul & (table.batch > 1) & (table.m > 1)
        overhead = overhead + np.where(repack, 2.0 * table.weight_bytes / _bandwidth(ws, params), 0.0)
    fused, live = table.fused, ~table.folded
    total = np.where(live, np.where(fused, compute, overhead + np.maximum(compute, memory)), 0.0)
    latency = np.bincount(table.sample, weights=total, minlength=table.n_samples)
    latency = latency + float(params["inference_overhead_us"]) * 1e-6
    return OpTimes(np.where(live, compute, 0.0), np.where(live & ~fused, memory, 0.0),
                   np.where(live & ~fused, overhead, 0.0), total, latency)


def lowered_costs(model: onnx.ModelProto | str | Path, batch_size: int, fusion: str) -> list[OpCost]:
    """Per-operator costs of the graph that runs under ``fusion`` (see the module docstring)."""
    if fusion == "onnxruntime":
        with reading(model):  # the optimized graph is in memory: errors found in it name the file
            return graph_costs(optimize_with_onnxruntime(model), batch_size, qdq_int8=False)
    return graph_costs(model, batch_size)


def predict_ms(samples: Sequence[tuple[Any, int]], params: Mapping[str, Any]) -> np.ndarray:
    """Predicted latency (ms) of each ``(model, batch_size)`` under ``params``."""
    costs = [lowered_costs(m, b, params["fusion"]) for m, b in samples]
    return evaluate(build_table(costs, params["fusion"]), params).latency_s * 1e3


# ------------------------------------------------------------------------------------------- calibration


def _get(params: Mapping[str, Any], path: str) -> float:
    head, _, key = path.partition(".")
    value = params[head]
    if not key:
        return float(value)
    if isinstance(value, list):
        return float(value[int(key)])
    if not isinstance(value, Mapping):  # a scalar op_overhead_us
        return float(value)
    if head == "op_overhead_us" and key not in value:
        return _overhead_us(params, key, key)
    if head == "peak_gflops" and key not in value:
        return float(value[resolve_dtype(key, value)])
    return float(value[key])


def _set(params: dict[str, Any], path: str, value: float) -> None:
    head, _, key = path.partition(".")
    if not key:
        params[head] = value
    elif isinstance(params[head], list):
        params[head][int(key)] = value
    else:
        if not isinstance(params[head], dict):
            params[head] = {"default": params[head]}
        params[head][key] = value


def default_free(table: _Table, params: Mapping[str, Any]) -> list[str]:
    """The constants ``table``'s operators depend on: overheads of the classes that run, peaks of the dtypes
    of their MatMuls, efficiencies, and the bandwidths of the levels their bytes come from."""
    live = ~table.folded
    free = ["inference_overhead_us"]
    free += [f"op_overhead_us.{c}" for c in CLASSES if any(live & ~table.fused & (np.array(table.cls) == c))]
    dts = {resolve_dtype(d, params["peak_gflops"]) for d, mm, lv in zip(table.dtype, table.is_matmul, live)
           if mm and lv}
    free += [f"peak_gflops.{d}" for d in DTYPES if d in dts]
    free += ["efficiency.m_half", "efficiency.n_half", "efficiency.k_half", "efficiency.elementwise"]
    free.append("efficiency.run_half")
    if any(table.is_quant & live):
        free += ["efficiency.quant", "efficiency.quant_run_half"]
    levels = list(params["cache_bytes"]) + [math.inf]
    used = set()
    ws = table.model_weight_bytes[table.sample]
    for x in (ws[live & (table.weight_bytes > 0)], table.act_bytes[live]):
        used.update(int(np.searchsorted(levels, v, side="left")) for v in x)
    free += [f"cache_gbps.{i}" if i < len(levels) - 1 else "memory_gbps" for i in sorted(used)]
    return free


def calibrate(
    samples: Sequence[Sample],
    base_params: Mapping[str, Any],
    free: Sequence[str] | None = None,
    *,
    loss: str = "soft_l1",
    f_scale: float = 0.05,
) -> dict[str, Any]:
    """Fit the free constants of ``base_params`` to measured latencies; returns the full, updated params.

    ``samples``: ``(onnx path or ModelProto, batch_size, measured_ms)``. ``free``: parameter paths
    (``inference_overhead_us``, ``op_overhead_us.matmul``, ``peak_gflops.fp32``, ``efficiency.k_half``,
    ``cache_gbps.0``, ``memory_gbps``, ...); default :func:`default_free`. Each is fitted in log space
    (positive, within 1/1000..1000 × its start) by ``scipy.optimize.least_squares`` on
    ``log(predicted / measured)`` with a robust ``loss``; constants the samples do not influence stay put.
    """
    if not samples:
        raise ProfileError("calibrate: no samples")
    params = _full_params(base_params)
    costs = [lowered_costs(m, int(b), params["fusion"]) for m, b, _ in samples]
    measured = np.array([s[2] for s in samples], dtype=float)
    return calibrate_table(build_table(costs, params["fusion"]), measured, params, free, loss=loss, f_scale=f_scale)


def calibrate_table(
    table: _Table, measured_ms: np.ndarray, base_params: Mapping[str, Any], free: Sequence[str] | None = None,
    *, loss: str = "soft_l1", f_scale: float = 0.05,
) -> dict[str, Any]:
    """:func:`calibrate` on a prebuilt table (the benchmark reuses one table for many fits)."""
    from scipy.optimize import least_squares

    params = _full_params(base_params)
    free = list(free) if free is not None else default_free(table, params)
    target = np.log(np.asarray(measured_ms, float) * 1e-3)
    if np.any(~np.isfinite(target)):
        raise ProfileError("calibrate: measured latencies must be positive")

    def model(x: np.ndarray) -> np.ndarray:
        trial = copy.deepcopy(params)
        for path, v in zip(free, np.exp(x)):
            _set(trial, path, float(v))
        return np.log(evaluate(table, trial).latency_s)

    x0 = np.log([max(_get(params, p), 1e-3) for p in free])
    base = model(x0)  # keep only the constants that move a prediction
    keep = [i for i in range(len(free)) if np.max(np.abs(model(x0 + np.eye(len(free))[i] * 0.4) - base)) > 1e-9]
    if keep:
        def residuals(y: np.ndarray) -> np.ndarray:
            x = x0.copy()
            x[keep] = y
            return model(x) - target

        span = math.log(1e3)
        fit = least_squares(residuals, x0[keep], bounds=(x0[keep] - span, x0[keep] + span), loss=loss,
                            f_scale=f_scale, diff_step=1e-3, max_nfev=400 * len(keep))
        x0[keep] = fit.x
    for path, v in zip(free, np.exp(x0)):
        _set(params, path, _round(float(v)))
    return params


def _round(v: float) -> float:
    return float(f"{v:.4g}")


# ---------------------------------------------------------------------------------------------- profile


def _full_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults completed with ``params`` (dict-valued efficiency/op_overhead merged, not replaced)."""
    out = copy.deepcopy({**getattr(Profile, "common", {}), **AnalyticalProfile.defaults})
    for key, value in params.items():
        if key in ("efficiency", "op_overhead_us") and isinstance(value, Mapping) and isinstance(out[key], Mapping):
            out[key] = {**out[key], **copy.deepcopy(dict(value))}
        else:
            out[key] = copy.deepcopy(value)
    return out


#: The largest value of any constant: far beyond any hardware (1 TB, 10^12 GB/s, 10^12 µs), and small enough
#: that no sum of costs overflows to infinity.
CONSTANT_MAX = 1e12


def _number(name: str, key: str, value: Any, low: float = 0.0, strict: bool = False) -> float:
    """A finite number >= ``low`` (> ``low`` when ``strict``) and <= :data:`CONSTANT_MAX` for one entry of a
    profile parameter."""
    return check_float(value, f"profile '{name}': parameter '{key}'", low=low, high=CONSTANT_MAX,
                       low_inclusive=not strict, error=ProfileError)


@register_kind
class AnalyticalProfile(Profile):
    """Latency predicted per operator by a roofline model with overheads (see the module docstring)."""

    kind = "analytical"
    metrics = {"latency_ms": "ms"}
    primary_metric = "latency_ms"
    provenance = "predicted"
    defaults: dict[str, Any] = {
        "batch_size": 1,
        "fusion": "none",
        "peak_gflops": {"fp32": 100.0},
        "efficiency": {"matmul": 1.0, "m_half": 0.0, "n_half": 0.0, "k_half": 0.0, "elementwise": 0.25,
                       "run_half": 0.0, "quant": 0.25, "quant_run_half": 0.0},
        "memory_gbps": 50.0,
        "cache_bytes": [],
        "cache_gbps": [],
        "sparse_2_4_speedup": 1.0,
        "sparse_2_4_dtypes": ["fp16", "bf16", "int8"],
        "unstructured_sparsity_speedup": None,
        "repack_batched_weights": False,
        "op_overhead_us": {"default": 1.0},
        "inference_overhead_us": 5.0,
        "model_name": MODEL_NAME,
        "validation_error": "not validated",
        # the CPU this model was calibrated on (a substring of its /proc/cpuinfo model name), for models of the
        # host itself: on another CPU the predictions say that the validation error does not apply here
        "calibrated_on": "",
        "measure_with": None,
        "unknown_ops": "refuse",
    }
    ranges = {"batch_size": Range(1, 65536, integer=True), "memory_gbps": Range(0.0, CONSTANT_MAX, low_open=True),
              "inference_overhead_us": Range(0.0, CONSTANT_MAX), "sparse_2_4_speedup": Range(1.0, CONSTANT_MAX)}
    choices = {**Profile.choices, "fusion": FUSIONS}
    #: Parameters made of numbers (mappings, lists, or a number or a mapping), checked entry by entry here;
    #: the others are checked by :meth:`Profile._check_param` against ``ranges``, ``choices`` or their type.
    NESTED = ("peak_gflops", "efficiency", "op_overhead_us", "cache_bytes", "cache_gbps", "sparse_2_4_dtypes",
              "unstructured_sparsity_speedup")
    _cache: dict[tuple[str, int, str], list[OpCost]] = {}

    def _validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        checked = super()._validate_params({k: v for k, v in params.items() if k not in self.NESTED})
        p = _full_params(params)  # mappings given in part complete the defaults
        p.update((k, v) for k, v in checked.items() if k not in self.NESTED)
        name = self.name
        self._check_mapping("peak_gflops", p["peak_gflops"], DTYPES, strict=True)
        if "fp32" not in p["peak_gflops"]:
            raise ProfileError(f"profile '{name}': peak_gflops needs an 'fp32' entry (every dtype falls back to it)")
        self._check_mapping("efficiency", p["efficiency"], EFFICIENCY_KEYS)
        for key in ("matmul", "elementwise", "quant"):
            _number(name, f"efficiency.{key}", p["efficiency"][key], 0.0, strict=True)
        if isinstance(p["op_overhead_us"], Mapping):
            for key, value in p["op_overhead_us"].items():
                _number(name, f"op_overhead_us.{key}", value)
        else:
            _number(name, "op_overhead_us", p["op_overhead_us"])
        caps, bws = p["cache_bytes"], p["cache_gbps"]
        if not isinstance(caps, list) or not isinstance(bws, list) or len(caps) != len(bws):
            raise ProfileError(f"profile '{name}': cache_bytes and cache_gbps must be lists of equal length "
                               f"(one per cache level, smallest first), got {shown(caps)} and {shown(bws)}")
        for i, (c, b) in enumerate(zip(caps, bws)):
            _number(name, f"cache_bytes[{i}]", c, 0.0, strict=True)
            _number(name, f"cache_gbps[{i}]", b, 0.0, strict=True)
        if list(caps) != sorted(caps):
            raise ProfileError(f"profile '{name}': cache_bytes must be ascending (L1, L2, ...), got {shown(caps)}")
        sparse_dtypes = p["sparse_2_4_dtypes"]
        bad = [d for d in sparse_dtypes if d not in DTYPES] if isinstance(sparse_dtypes, list) else [sparse_dtypes]
        if bad:
            raise ProfileError(f"profile '{name}': sparse_2_4_dtypes: unknown dtype(s) {shown(bad)}; "
                               f"known {list(DTYPES)}")
        cap = p["unstructured_sparsity_speedup"]
        if cap not in (None, False):
            _number(name, "unstructured_sparsity_speedup", cap, 1.0)
        if not p["validation_error"].strip():
            raise ProfileError(f"profile '{name}': validation_error must say how good the model is")
        return p

    def _check_mapping(self, key: str, value: Any, allowed: Iterable[str], strict: bool = False) -> None:
        if not isinstance(value, Mapping):
            raise ProfileError(f"profile '{self.name}': parameter '{key}' must be a mapping, got {shown(value)}")
        unknown = sorted(set(value) - set(allowed), key=str)
        if unknown:
            raise ProfileError(f"profile '{self.name}': {key}: unknown key(s) {shown(unknown)}; allowed: {list(allowed)}")
        for k, v in value.items():
            _number(self.name, f"{key}.{k}", v, 0.0, strict=strict)

    def costs(self, onnx_path: Path | str) -> list[OpCost]:
        """Per-operator costs of the graph this profile runs (cached per file content and settings)."""
        from hwnas.profiles.onnxruntime import file_digest

        check_file(onnx_path)  # before it is hashed: a FIFO would block, a huge file take long
        key = (file_digest(Path(onnx_path)), self.params["batch_size"], self.params["fusion"])
        if key not in self._cache:
            self._cache[key] = lowered_costs(onnx_path, self.params["batch_size"], self.params["fusion"])
        return self._cache[key]

    def profile(self, onnx_path: Path) -> ProfileResult:
        costs = self.costs(onnx_path)
        approximated = self.approximated_ops(onnx_path, (c.op_type for c in costs if not c.known),
                                             "as generic elementwise ops, 1 FLOP per output element")
        table = build_table([costs], self.params["fusion"])
        times = evaluate(table, self.params)
        details = self._details(costs, table, times)
        if approximated:
            details["approximated_ops"] = approximated
        metric = Metric("latency_ms", float(times.latency_s[0] * 1e3), "ms", "predicted", details)
        return ProfileResult(self.name, {"latency_ms": metric})

    def _details(self, costs: list[OpCost], table: _Table, t: OpTimes) -> dict[str, Any]:
        live = ~(table.folded | table.fused)
        compute_bound = live & (t.compute >= t.memory)
        per_type: dict[str, float] = {}
        for c, sec in zip(costs, t.total):
            if sec > 0:
                per_type[c.op_type] = per_type.get(c.op_type, 0.0) + sec * 1e3
        notes = sorted({c.notes for c in costs if c.notes})
        return {
            "model": self.params["model_name"],
            "validation_error": self.params["validation_error"],
            "batch_size": self.params["batch_size"],
            "fusion": self.params["fusion"],
            "breakdown_ms": {
                "compute_bound": float(np.sum(np.where(compute_bound, t.compute, 0.0)) * 1e3
                                       + np.sum(np.where(table.fused & ~table.folded, t.compute, 0.0)) * 1e3),
                "memory_bound": float(np.sum(np.where(live & ~compute_bound, t.memory, 0.0)) * 1e3),
                "op_overhead": float(np.sum(t.overhead) * 1e3),
                "inference_overhead": float(self.params["inference_overhead_us"]) * 1e-3,
                "per_op_type": {k: round(v, 6) for k, v in sorted(per_type.items(), key=lambda kv: -kv[1])},
            },
            "ops": int(np.sum(~table.folded)),
            "ops_fused": int(np.sum(table.fused & ~table.folded)),
            "macs": float(sum(c.macs for c in costs)),
            "dtypes": sorted({c.dtype for c in costs if c.macs > 0}),
            "sparse_2_4_ops": int(sum(c.sparse_2_4 for c in costs)),
            "notes": notes,
            "measure_with": self.params["measure_with"],
            **host_mismatch(self.params["calibrated_on"]),
        }
