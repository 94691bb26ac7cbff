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
from typing import Any, Iterable, Sequence

import numpy as np
import yaml

from hwnas.errors import ProfileError
from hwnas.lowering.op_costs import OpCost
from hwnas.profiles import predictor as pred
from hwnas.profiles.onnxruntime import cpu_name

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
    """Build (random weights), export to ONNX and, for ``quant: int8`` configs, quantize as a search does."""
    import torch

    from hwnas.lowering.export import export_onnx
    from hwnas.lowering.int8 import quantize_int8
    from hwnas.models import build_model
    from hwnas.models.preprocess import InputStats

    x = np.random.default_rng(seed).standard_normal((256, n_features)).astype(np.float32)
    torch.manual_seed(seed)
    model = build_model(config, n_features=n_features, n_classes=n_classes, stats=InputStats.of(x))
    if config.get("quant", "fp32") != "int8":
        return export_onnx(model, n_features, path)
    fp32 = export_onnx(model, n_features, path.with_suffix(".fp32.onnx"))
    quantize_int8(fp32, path, x)
    fp32.unlink()
    return path


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
    archs: Iterable[tuple[str, Any, int, int]],
    batch_sizes: Sequence[int],
    *,
    seed: int = 0,
    kernels: bool = True,
    log: Any = None,
) -> list[Sample]:
    """Export each architecture and measure it at every batch size (and its kernels here when ``kernels``)."""
    from hwnas.profiles.registry import get

    profiles = {b: get(measure_profile, {"batch_size": b}) for b in batch_sizes}
    out: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="hwnas-calib-") as tmp:
        for i, (space, config, n_features, n_classes) in enumerate(archs):
            path = export_architecture(config, n_features, n_classes, Path(tmp) / f"arch{i:04d}.onnx", seed + i)
            for b in batch_sizes:
                latency = profiles[b].profile(path)[profiles[b].primary_metric].value
                ktimes = kernel_times(path, b) if kernels else {}
                out.append(Sample(i, space, b, pred.kernel_ops(path, b), latency, ktimes))
            if log:
                log(f"calibrate: {i + 1} architectures measured")
    return out
