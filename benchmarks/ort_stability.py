"""Stability of the cpu-ort latency measurement: the same ONNX file profiled repeatedly.

Untrained MLPs (``hwnas.models.build_model``, 30 features, 2 classes, input statistics of N(0, 1) data) are
lowered with ``hwnas.lowering.lower`` (as a search lowers a candidate):

* ``tiny``   30-8-4-2, fixed-point (8-bit weights, 4-bit inputs, as a search with printed-egfet exports it);
* ``small``  30-32-32-32-2, fixed-point: the largest architecture of the ``mlp_tabular`` space;
* ``wide``   30-512-1024-1024-512-2, fp32 (``mlp_wide`` regime).

Each file is profiled ``--runs`` times with the ``cpu-ort`` profile (its defaults: 1 thread, batch 1, 10 warm-up
runs, median of ``--repeats`` timed runs, a new InferenceSession per profiling), with
``OnnxRuntimeProfile._cache`` cleared before every profiling and the models interleaved round-robin (so host
drift hits every model alike). Per model: the median of the run medians, the CV of the run medians
(sample std / mean) and their max/min, and the within-run spread (IQR and CV of the repeats, median over runs).

Writes ``benchmarks/results/ort_stability.json`` (or ``--json``). Run: ``python benchmarks/ort_stability.py``
(full) or ``--quick`` (smoke check).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNS_DIR, environment, header, loadavg, table, write_json  # noqa: E402

NAME = "ort_stability"
N_FEATURES, N_CLASSES = 30, 2
MODELS: dict[str, dict[str, Any]] = {
    "tiny": {"depth": 2, "width": [8, 4], "fixed_point": True},
    "small": {"depth": 3, "width": [32, 32, 32], "fixed_point": True},
    "wide": {"depth": 4, "width": [512, 1024, 1024, 512], "fixed_point": False},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10, help="profilings per model (default 10)")
    ap.add_argument("--repeats", type=int, default=100, help="timed runs per profiling (cpu-ort default 100)")
    ap.add_argument("--warmup", type=int, default=10, help="warm-up runs per profiling (cpu-ort default 10)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (cpu-ort default 1)")
    ap.add_argument("--batch-size", type=int, default=1, help="batch size (cpu-ort default 1)")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {list(MODELS)}")
    ap.add_argument("--seed", type=int, default=0, help="weights / input-statistics seed")
    ap.add_argument("--interval", type=float, default=0.0,
                    help="seconds to sleep between rounds (default 0: back to back; > 0 samples host drift "
                         "over a longer span, as a search's trials see it)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="smoke check: 3 runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs = 3
        if args.json is None:
            args.json = RUNS_DIR / f"{NAME}.quick.json"
    args.model_list = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(args.model_list) - set(MODELS)
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}; choose from {list(MODELS)}")
    if args.runs < 2:
        ap.error("--runs must be >= 2 for a CV")
    return args


def export_model(name: str, spec: dict[str, Any], folder: Path, seed: int) -> tuple[Path, dict[str, Any]]:
    from hwnas.lowering import FeatureExporter, lower
    from hwnas.models import build_model
    from hwnas.models.preprocess import InputStats
    from hwnas.precision import FixedPoint
    from hwnas.space import ArchConfig
    from hwnas.train import seed_everything

    seed_everything(seed)
    x = np.random.default_rng(seed).standard_normal((256, N_FEATURES)).astype(np.float32)
    depth = spec["depth"]
    config = ArchConfig("mlp", {"depth": depth, "width": spec["width"], "ffn": ["dense"] * depth,
                                "activation": "relu"})
    fp = FixedPoint(8, 4) if spec["fixed_point"] else None
    model = build_model(config, n_features=N_FEATURES, n_classes=N_CLASSES, stats=InputStats.of(x), fixed_point=fp)
    path = lower(model, folder / f"{name}.onnx", FeatureExporter(N_FEATURES, x), check_parity=False).path
    params = sum(p.numel() for p in model.parameters())
    topology = [N_FEATURES, *spec["width"], N_CLASSES]
    macs = sum(a * b for a, b in zip(topology, topology[1:]))
    return path, {"topology": topology, "fixed_point": spec["fixed_point"], "parameters": params, "macs": macs,
                  "file_bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = environment()
    print(header(env))
    from hwnas.profiles import get as get_profile
    from hwnas.profiles.onnxruntime import OnnxRuntimeProfile

    overrides = {"repeats": args.repeats, "warmup": args.warmup, "threads": args.threads,
                 "batch_size": args.batch_size}
    prof = get_profile("cpu-ort", overrides)
    print(f"# settings: models={args.model_list} runs={args.runs} interval={args.interval}s "
          f"cpu-ort params={prof.params}")
    results: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwnas-ort-") as tmp:
        paths = {}
        for name in args.model_list:
            paths[name], info = export_model(name, MODELS[name], Path(tmp), args.seed)
            results[name] = {**info, "runs": []}
        for run in range(args.runs):
            if run and args.interval > 0:
                time.sleep(args.interval)
            for name in args.model_list:  # round-robin: drift affects all models alike
                OnnxRuntimeProfile._cache.clear()
                start = time.perf_counter()
                m = prof.profile(paths[name])["latency_ms"]
                results[name]["runs"].append({"median_ms": m.value, "iqr_ms": m.details["iqr_ms"],
                                              "cv": m.details["cv"], "min_ms": m.details["min_ms"],
                                              "wall_s": time.perf_counter() - start})
    rows = []
    for name in args.model_list:
        r = results[name]
        med = np.array([x["median_ms"] for x in r["runs"]])
        iqr = np.array([x["iqr_ms"] for x in r["runs"]])
        cv_in = np.array([x["cv"] for x in r["runs"]])
        r["summary"] = {
            "median_of_medians_ms": float(np.median(med)),
            "mean_of_medians_ms": float(med.mean()),
            "cv_of_medians": float(med.std(ddof=1) / med.mean()),
            "min_median_ms": float(med.min()), "max_median_ms": float(med.max()),
            "max_over_min": float(med.max() / med.min()),
            "within_run_iqr_ms_median": float(np.median(iqr)),
            "within_run_iqr_rel_median": float(np.median(iqr / med)),
            "within_run_cv_median": float(np.median(cv_in)),
            "within_run_cv_max": float(cv_in.max()),
        }
        s = r["summary"]
        rows.append([name, "-".join(map(str, r["topology"])), "fxp" if r["fixed_point"] else "fp32",
                     f"{r['macs']:,}", f"{1000 * s['median_of_medians_ms']:.2f}",
                     f"{1000 * s['min_median_ms']:.2f}-{1000 * s['max_median_ms']:.2f}",
                     f"{100 * s['cv_of_medians']:.1f}%", f"{s['max_over_min']:.2f}",
                     f"{1000 * s['within_run_iqr_ms_median']:.2f}", f"{100 * s['within_run_iqr_rel_median']:.1f}%",
                     f"{100 * s['within_run_cv_median']:.1f}%", f"{100 * s['within_run_cv_max']:.0f}%"])
    print()
    print(f"cpu-ort latency, {args.runs} profilings per model (cache cleared each time, {args.interval:g} s "
          "between rounds), "
          f"{args.repeats} timed runs each; times in microseconds")
    print(table(["model", "topology", "dtype", "MACs", "med of med", "range of med", "CV of med", "max/min",
                 "IQR (med)", "IQR/med", "CV in run", "CV max"], rows, "lllr" + "r" * 8))
    names = args.model_list
    if len(names) > 1:
        print()
        print("Separation between models: ratio of medians of medians; do the ranges of run medians overlap?")
        prs = []
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                sa, sb = results[a]["summary"], results[b]["summary"]
                overlap = sa["min_median_ms"] <= sb["max_median_ms"] and sb["min_median_ms"] <= sa["max_median_ms"]
                prs.append([f"{b}/{a}", f"{sb['median_of_medians_ms'] / sa['median_of_medians_ms']:.2f}x",
                            "yes" if overlap else "no"])
        print(table(["pair", "ratio", "ranges overlap"], prs))
    payload = {"benchmark": NAME, **env, "settings": {
        "models": {n: MODELS[n] for n in names}, "runs": args.runs, "profile": "cpu-ort",
        "profile_params": prof.params, "seed": args.seed, "interval_s": args.interval, "quick": args.quick,
        "n_features": N_FEATURES, "n_classes": N_CLASSES,
        "weights": "untrained (build_model init), input stats of N(0,1) data"},
        "loadavg_at_end": loadavg(), "total_wall_s": time.perf_counter() - t0, "results": results}
    path = write_json(NAME, payload, args.json)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
