"""Build a ``predictor`` profile from measurements: ``hwnas profiles calibrate``.

:func:`calibrate_predictor` samples architectures from built-in search spaces, exports each to ONNX (int8 ones
through ONNX Runtime's static quantizer, as a search deploys them), measures every file at every batch size
with a measuring profile (any kind: ``cpu-ort``, a ``command`` profile running on a phone, ...) and, on this
host, runs ONNX Runtime's per-node profiler for the per-kernel times. It then fits the candidate predictors of
:mod:`hwnas.profiles.predictor` on a seeded half of the architectures, picks the one with the lowest
cross-validated error on that half, refits it there, and reports its error on the other (held-out) half.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from hwnas.errors import CandidateError, ProfileError
from hwnas.graph import OpCost
from hwnas.profiles import predictor as pred
from hwnas.profiles.base import check_name
from hwnas.profiles.onnxruntime import cpu_name
from hwnas.validation import check_int

#: Feature counts and class counts drawn for the calibration models (typical tabular problems).
N_FEATURES = (4, 8, 16, 30, 64)
N_CLASSES = (2, 3, 5, 10)


@dataclass
class Sample:
    """One (architecture, batch size) point: its kernel ops, measured latency and per-kernel times here."""

    arch: int
    space: str
    batch_size: int
    ops: list[OpCost]
    latency_ms: float
    kernel_us: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ architectures


def sample_architectures(spaces: Sequence[str], samples: int, seed: int) -> list[tuple[str, Any, int, int]]:
    """``samples`` distinct valid configs, split evenly over ``spaces``: (space, config, n_features, n_classes)."""
    from hwnas.space import load_space

    rng = random.Random(seed)
    out: list[tuple[str, Any, int, int]] = []
    for i, name in enumerate(spaces):
        space = load_space(name)
        want = samples // len(spaces) + (1 if i < samples % len(spaces) else 0)
        seen: set[str] = set()
        for _ in range(100 * max(want, 1)):
            if len(seen) >= want:
                break
            config = space.sample(rng)
            if space.violations(config.values) or config.key in seen:
                continue
            seen.add(config.key)
            out.append((name, config, rng.choice(N_FEATURES), rng.choice(N_CLASSES)))
    return out


def export_architecture(config: Any, n_features: int, n_classes: int, path: Path, seed: int) -> Path:
    """Build (random weights) and lower exactly as a search does (:func:`hwnas.lowering.lower`)."""
    import torch

    from hwnas.lowering import FeatureExporter, lower
    from hwnas.models import build_model
    from hwnas.models.preprocess import InputStats

    x = np.random.default_rng(seed).standard_normal((256, n_features)).astype(np.float32)
    torch.manual_seed(seed)
    model = build_model(config, n_features=n_features, n_classes=n_classes, stats=InputStats.of(x))
    return lower(model, path, FeatureExporter(n_features, x), check_parity=False).path


# ---------------------------------------------------------------------------------------------- measuring


def kernel_times(onnx_path: Path, batch_size: int, *, runs: int = 20, warmup: int = 3) -> dict[str, float]:
    """Median time per kernel (µs) of ``runs`` runs after ``warmup`` runs, from ONNX Runtime's profiler here.

    Kernels are keyed by node name in the graph ONNX Runtime runs (``extended`` optimizations, 1 thread): the
    names :func:`hwnas.profiles.predictor.kernel_ops` reports.
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="hwnas-prof-") as tmp:
        opts = ort.SessionOptions()
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        feeds = {i.name: np.random.default_rng(0).standard_normal(
            [d if isinstance(d, int) and d > 0 else batch_size for d in i.shape]).astype(np.float32)
            for i in sess.get_inputs()}
        for _ in range(warmup + runs):
            sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
    durations: dict[str, list[float]] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            durations.setdefault(event["name"][: -len("_kernel_time")], []).append(float(event["dur"]))
    return {name: float(np.median(d[warmup:] or d)) for name, d in durations.items()}


def measure_samples(
    measure_profile: str,
    archs: Sequence[tuple[str, Any, int, int]],
    batch_sizes: Sequence[int],
    *,
    seed: int = 0,
    rounds: int = 1,
    kernels: bool = True,
    log: Any = None,
) -> list[Sample]:
    """Export each architecture and measure it at every batch size (and its kernels here when ``kernels``).

    With ``rounds`` > 1 every file is measured again in later passes over all files and the fastest result is
    kept: on a shared or throttling machine, slow stretches then rarely hit the same file twice.
    """
    from hwnas.lowering.metadata import set_metadata
    from hwnas.profiles.registry import get

    profiles = {b: get(measure_profile, {"batch_size": b}) for b in batch_sizes}
    out: dict[tuple[int, int], Sample] = {}
    with tempfile.TemporaryDirectory(prefix="hwnas-calib-") as tmp:
        paths: list[tuple[int, Path]] = []
        for i, (space, config, n_features, n_classes) in enumerate(archs):
            try:
                path = export_architecture(config, n_features, n_classes, Path(tmp) / f"arch{i:04d}.onnx", seed + i)
            except CandidateError as exc:
                if log:
                    log(f"calibrate: architecture {i} skipped: {exc}")
                continue
            paths.append((i, path))
            for b in batch_sizes:
                latency = profiles[b].profile(path)[profiles[b].primary_metric].value
                ktimes = kernel_times(path, b) if kernels else {}
                out[i, b] = Sample(i, space, b, pred.kernel_ops(path, b), latency, ktimes)
            if log:
                log(f"calibrate: {i + 1}/{len(archs)} architectures measured")
        for r in range(1, rounds):
            for i, path in paths:
                set_metadata(path, {"hwnas.calibration_round": r})  # new bytes: no profile cache hit
                for b in batch_sizes:
                    again = profiles[b].profile(path)[profiles[b].primary_metric].value
                    out[i, b].latency_ms = min(out[i, b].latency_ms, again)
            if log:
                log(f"calibrate: round {r + 1}/{rounds} done")
    return list(out.values())


# ------------------------------------------------------------------------------------------------ fitting


def nnls_relative(a: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Non-negative ``(intercept, coef)`` minimising the squared *relative* error of ``intercept + a @ coef``."""
    from scipy.optimize import nnls

    design = np.hstack([np.ones((len(a), 1)), a]) / y[:, None]
    scale = np.abs(design).max(axis=0)
    scale[scale == 0] = 1.0
    solution, _ = nnls(design / scale, np.ones(len(y)), maxiter=50 * design.shape[1] + 1000)
    solution = solution / scale
    return float(solution[0]), solution[1:]


def _matrix(samples: Sequence[Sample]) -> np.ndarray:
    names = pred.feature_names()
    return np.array([[f[n] for n in names] for f in (pred.graph_features(s.ops) for s in samples)])


def _latencies(samples: Sequence[Sample]) -> np.ndarray:
    return np.array([s.latency_ms for s in samples])


def fit_graph(samples: Sequence[Sample]) -> pred.LatencyModel:
    """The ``graph`` family: graph features regressed directly on the measured latency."""
    intercept, coef = nnls_relative(_matrix(samples), _latencies(samples))
    return pred.LatencyModel("graph", intercept, dict(zip(pred.feature_names(), coef.tolist())))


def _kernel_regressions(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """Per class, non-negative per-kernel coefficients (µs) fitted on the profiled kernel times."""
    from scipy.optimize import nnls

    out: dict[str, dict[str, float]] = {}
    for cls in pred.CLASSES:
        names = pred.FEATURES[cls]
        rows = [(pred.op_features(op), s.kernel_us[op.name]) for s in samples for op in s.ops
                if pred.kernel_class(op) == cls and op.name in s.kernel_us]
        if not rows:
            out[cls] = dict.fromkeys(names, 0.0)
            continue
        a = np.array([[f[n] for n in names] for f, _ in rows])
        t = np.array([dur for _, dur in rows])
        w = 1.0 / np.maximum(t, 1.0)  # relative error, floored at the profiler's 1 µs resolution
        scale = np.abs(a * w[:, None]).max(axis=0)
        scale[scale == 0] = 1.0
        coef, _ = nnls(a * w[:, None] / scale, t * w, maxiter=50 * len(names) + 1000)
        out[cls] = dict(zip(names, (coef / scale).tolist()))
    return out


def fit_kernel(samples: Sequence[Sample]) -> pred.LatencyModel:
    """The ``kernel`` family: per-kernel regressions from the profiler, summed per class, then scaled.

    The per-class sums (without the per-kernel constant, which the profiler inflates) and the per-class kernel
    counts are regressed on the measured end-to-end latency, so one scale per class maps this host's kernel
    shapes onto the measuring device.
    """
    kernels = _kernel_regressions(samples)
    feats = _matrix(samples)
    index = {n: i for i, n in enumerate(pred.feature_names())}
    columns = []
    for cls in pred.CLASSES:
        variable = [f for f in pred.FEATURES[cls] if f != "one"]
        weights = np.array([kernels[cls][f] / 1000.0 for f in variable])
        columns += [feats[:, [index[f"{cls}.{f}"] for f in variable]] @ weights, feats[:, index[f"{cls}.one"]]]
    intercept, stack = nnls_relative(np.column_stack(columns), _latencies(samples))
    coef: dict[str, float] = {}
    for i, cls in enumerate(pred.CLASSES):
        scale, per_kernel = stack[2 * i], stack[2 * i + 1]
        for f in pred.FEATURES[cls]:
            coef[f"{cls}.{f}"] = float(per_kernel if f == "one" else scale * kernels[cls][f] / 1000.0)
    detail = {"per_kernel_us": kernels, "class_scale": dict(zip(pred.CLASSES, stack[0::2].tolist())),
              "per_kernel_ms": dict(zip(pred.CLASSES, stack[1::2].tolist()))}
    return pred.LatencyModel("kernel", intercept, coef, kernel_model=detail)


FAMILIES = {"graph": fit_graph, "kernel": fit_kernel}


# --------------------------------------------------------------------------------------------- validation


def errors(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """MAPE (%), share within ±10% (%), Kendall τ and the count."""
    from scipy.stats import kendalltau

    rel = np.abs(predicted - measured) / measured
    tau = float(kendalltau(predicted, measured)[0]) if len(measured) > 1 else float("nan")
    return {"mape_pct": round(float(rel.mean() * 100), 2), "within_10pct": round(float(np.mean(rel <= 0.1) * 100), 1),
            "kendall_tau": round(tau, 3), "n": int(len(measured))}


def evaluate(model: pred.LatencyModel, samples: Sequence[Sample]) -> dict[str, Any]:
    """Held-out figures of ``model`` on ``samples``: overall and per batch size."""
    predicted = np.array([model.predict_features(pred.graph_features(s.ops)) for s in samples])
    measured = _latencies(samples)
    out: dict[str, Any] = errors(predicted, measured)
    batches = np.array([s.batch_size for s in samples])
    out["per_batch_size"] = {str(b): errors(predicted[batches == b], measured[batches == b])
                             for b in sorted(set(batches.tolist()))}
    return out


def split_by_architecture(samples: Sequence[Sample], seed: int) -> tuple[list[Sample], list[Sample]]:
    """A seeded half of the architectures (all their batch sizes) for fitting, the rest for validation."""
    archs = sorted({s.arch for s in samples})
    order = np.random.default_rng(seed).permutation(len(archs))
    fit = {archs[i] for i in order[: max(1, len(archs) // 2)]}
    return [s for s in samples if s.arch in fit], [s for s in samples if s.arch not in fit]


def cross_validated_mape(family: str, samples: Sequence[Sample], *, folds: int = 4, seed: int = 0) -> float:
    """Mean relative error of a family over ``folds`` architecture-grouped folds of ``samples``."""
    archs = sorted({s.arch for s in samples})
    order = np.random.default_rng(seed + 1).permutation(len(archs))
    group = {archs[i]: k % folds for k, i in enumerate(order)}
    rel: list[float] = []
    for k in range(min(folds, len(archs))):
        train = [s for s in samples if group[s.arch] != k]
        test = [s for s in samples if group[s.arch] == k]
        model = FAMILIES[family](train)
        p = np.array([model.predict_features(pred.graph_features(s.ops)) for s in test])
        rel += (np.abs(p - _latencies(test)) / _latencies(test)).tolist()
    return float(np.mean(rel))


def fit_best(samples: Sequence[Sample], *, seed: int = 0) -> tuple[pred.LatencyModel, dict[str, float]]:
    """The family with the lowest cross-validated error on ``samples``, refitted on all of them."""
    families = [f for f in FAMILIES if f != "kernel" or all(s.kernel_us for s in samples)]
    cv = {f: round(cross_validated_mape(f, samples, seed=seed) * 100, 2) for f in families}
    best = min(cv, key=cv.__getitem__)
    return FAMILIES[best](samples), cv


# ------------------------------------------------------------------------------------------------ writing


def calibrate_predictor(
    measure_profile: str,
    out_yaml: Path | str,
    *,
    spaces: Sequence[str] = ("mlp_tabular", "mlp_wide"),
    samples: int = 200,
    batch_sizes: Sequence[int] = (1, 16, 256),
    seed: int = 0,
    name: str | None = None,
    rounds: int = 1,
    log: Any = None,
) -> dict[str, Any]:
    """Measure sampled architectures with ``measure_profile`` and write a ``predictor`` profile for it.

    ``measure_profile``: the profile that measures the target hardware (built-in name or YAML path; built once
    per batch size with ``{"batch_size": b}``). ``samples`` architectures are drawn from ``spaces`` (split
    evenly; int8 configs quantized as a search deploys them) and measured at every size in ``batch_sizes``.
    A seeded half of the architectures fits the predictor (the family with the lowest 4-fold cross-validated
    error on that half); the other half is held out. Writes ``<out_yaml stem>.json`` (the model) next to
    ``out_yaml`` and the profile YAML itself (``name`` defaults to the YAML's stem). ``rounds`` > 1 measures
    every file that many times and keeps the fastest (for noisy hosts). ``log``: an optional callable
    receiving progress lines.

    Returns the held-out figures: ``mape_pct``, ``within_10pct``, ``kendall_tau``, ``n`` overall and under
    ``per_batch_size``; plus ``family``, ``cv_mape_pct`` (per family), ``architectures``, ``samples``,
    ``model_file`` and ``yaml``.
    """
    out_yaml = Path(out_yaml)
    name = check_name(name or out_yaml.stem)  # before measuring: an invalid name would fail only at the end
    if not spaces:
        raise ProfileError("calibrate: name at least one search space")
    check_int(samples, "--samples", low=4, high=100_000, error=ProfileError)  # half fit, half validate
    check_int(rounds, "--rounds", low=1, high=100, error=ProfileError)
    if not batch_sizes:
        raise ProfileError("calibrate: give at least one --batch-size")
    for b in batch_sizes:
        check_int(b, "--batch-size", low=1, high=65536, error=ProfileError)
    archs = sample_architectures(spaces, samples, seed)
    measured = measure_samples(measure_profile, archs, batch_sizes, seed=seed, rounds=rounds, log=log)
    n_archs = len({s.arch for s in measured})
    if n_archs < 4:
        raise ProfileError(f"calibrate: only {n_archs} architectures could be measured; need at least 4")
    fit, held_out = split_by_architecture(measured, seed)
    model, cv = fit_best(fit, seed=seed)
    model.validation = evaluate(model, held_out)
    model.training = {
        "measured_on": measure_profile, "host": cpu_name(), "date": dt.date.today().isoformat(),
        "spaces": list(spaces), "architectures": n_archs, "batch_sizes": sorted(set(batch_sizes)),
        "fit_samples": len(fit), "held_out_samples": len(held_out), "seed": seed, "rounds": rounds,
        "cv_mape_pct": cv,
        "classes_seen": sorted({pred.kernel_class(op) for s in fit for op in s.ops}),
    }
    out_yaml.parent.mkdir(parents=True, exist_ok=True)
    model_file = model.save(out_yaml.with_suffix(".json"))
    out_yaml.write_text(_profile_yaml(name, model, model_file, measure_profile))
    return {**model.validation, "family": model.family, "cv_mape_pct": cv, "architectures": n_archs,
            "samples": len(measured), "model_file": str(model_file), "yaml": str(out_yaml)}


def _profile_yaml(name: str, model: pred.LatencyModel, model_file: Path, measure_profile: str) -> str:
    v, t = model.validation, model.training
    per_batch = "; ".join(f"batch {b}: MAPE {e['mape_pct']}%, {e['within_10pct']}% within ±10%, "
                          f"Kendall tau {e['kendall_tau']}" for b, e in v["per_batch_size"].items())
    is_file = measure_profile.endswith((".yaml", ".yml"))
    measure_with = str(Path(measure_profile).resolve()) if is_file else measure_profile
    data = {
        "name": name,
        "kind": "predictor",
        "description": (
            f"Latency of the hardware that profile '{measure_profile}' measures, predicted by a {model.family}-"
            f"level linear model of ONNX Runtime's kernels (per-class MACs, bytes, elements, counts; non-negative "
            f"coefficients). Held out ({v['n']} samples, architectures never seen in fitting): MAPE "
            f"{v['mape_pct']}%, {v['within_10pct']}% within ±10%, Kendall tau {v['kendall_tau']} ({per_batch})."
        ),
        "source": (
            f"hwnas profiles calibrate, {t['date']}: {t['architectures']} architectures from {', '.join(t['spaces'])} "
            f"at batch sizes {t['batch_sizes']}, measured by '{measure_profile}' with per-kernel times from "
            f"ONNX Runtime's profiler on {t['host']}; fitted on {t['fit_samples']} samples (seed {t['seed']})."
        ),
        "params": {"model_file": model_file.name, "batch_size": t["batch_sizes"][0], "measured_on": measure_profile,
                   "measure_with": measure_with},
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
