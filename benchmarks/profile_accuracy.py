"""Accuracy of the analytical latency model (``cpu-host-model``) against ONNX Runtime measurements (``cpu-ort``).

Architectures are sampled from the built-in spaces ``mlp_tabular`` (a third; half of them exported with
fixed-point inputs and weights, as a search with ``printed-egfet`` exports them) and ``mlp_wide`` (two thirds;
fp32 or int8 QDQ as the config says), built untrained with ``hwnas.models.build_model`` on random N(0, 1)
input statistics (latency does not depend on weight values) and exported with ``export_onnx``
(``quantize_int8`` for int8). Every architecture is measured with ``cpu-ort`` (1 thread, median of 100 runs after
10 warm-ups) at every batch size, in a seeded random order so that drift of the shared host spreads evenly.

The architectures are split in halves (seeded): :func:`hwnas.profiles.analytical.calibrate` fits the model
constants on the first half, starting from ``hw_profiles/cpu-host-model.yaml``; the table reports the other
half: share of predictions within ±10%, MAPE, Kendall τ, per batch size and overall, next to two proxies fitted on
the same half: ``flops`` (latency = s × FLOPs, one scale) and ``flops+c`` (latency = a + s × FLOPs).

Writes ``benchmarks/results/profile_accuracy.json``. ``--write-profile`` stores the fitted constants and the
held-out error in ``hw_profiles/cpu-host-model.yaml``. ``--reuse FILE`` refits on the measurements of an earlier
run (models are re-exported; no measuring). Run: ``python benchmarks/profile_accuracy.py`` (full, ~15 min on 2
cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNS_DIR, cpu_name, environment, header, loadavg, table, write_json  # noqa: E402

NAME = "profile_accuracy"
PROFILE = "cpu-host-model"
BATCHES = (1, 16, 256)
TABULAR_FEATURES, TABULAR_CLASSES = (4, 8, 11, 16, 21, 30), (2, 3, 6, 10)
WIDE_FEATURES, WIDE_CLASSES = (16, 30, 64, 128), (2, 10)
ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", type=int, default=240, help="architectures (default 240: 80 tabular, 160 wide)")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)), help="batch sizes (default 1,16,256)")
    ap.add_argument("--seed", type=int, default=0, help="sampling / split seed")
    ap.add_argument("--repeats", type=int, default=100, help="cpu-ort timed runs (default 100)")
    ap.add_argument("--rounds", type=int, default=3, help="measurement rounds; the median counts (default 3)")
    ap.add_argument("--reuse", type=Path, help="refit on the measurements stored in this JSON (no measuring)")
    ap.add_argument("--write-profile", action="store_true", help=f"write the fit into hw_profiles/{PROFILE}.yaml")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="smoke check: 24 architectures, batches 1 and 16")
    args = ap.parse_args(argv)
    if args.quick:
        args.archs = min(args.archs, 24)
        args.batches = "1,16"
        args.rounds = 1
        if args.json is None:
            args.json = RUNS_DIR / f"{NAME}.quick.json"
    args.batch_list = [int(b) for b in args.batches.split(",") if b.strip()]
    if args.archs < 4:
        ap.error("--archs must be >= 4")
    return args


# ----------------------------------------------------------------------------------------- architectures


def sample_archs(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` valid architectures (a third tabular, the rest wide) with their export settings."""
    from hwnas.space import load_space

    rng = random.Random(seed)
    spaces = {name: load_space(name) for name in ("mlp_tabular", "mlp_wide")}
    archs = []
    draw = seed * 100_003
    for i in range(n):
        name = "mlp_tabular" if i % 3 == 0 else "mlp_wide"
        space = spaces[name]
        while True:
            draw += 1
            config = space.sample(draw)
            if not space.violations(config.values):
                break
        tab = name == "mlp_tabular"
        archs.append({
            "id": i, "space": name, "draw": draw, "config": config.to_dict(),
            "n_features": rng.choice(TABULAR_FEATURES if tab else WIDE_FEATURES),
            "n_classes": rng.choice(TABULAR_CLASSES if tab else WIDE_CLASSES),
            "fixed_point": tab and rng.random() < 0.5,
            "quant": config.values.get("quant", "fp32"),
        })
    return archs


def export_arch(arch: dict[str, Any], folder: Path) -> Path:
    """Build the untrained model of ``arch`` and write its ONNX file (int8 QDQ when ``quant: int8``)."""
    import torch

    from hwnas.lowering.export import export_onnx
    from hwnas.lowering.int8 import quantize_int8
    from hwnas.models import build_model
    from hwnas.models.preprocess import InputStats
    from hwnas.profiles import FixedPoint
    from hwnas.space import load_space

    config = load_space(arch["space"]).sample(arch["draw"])
    torch.manual_seed(arch["id"])
    x = np.random.default_rng(arch["id"]).standard_normal((256, arch["n_features"])).astype(np.float32)
    fp = FixedPoint(8, 4) if arch["fixed_point"] else None
    model = build_model(config, n_features=arch["n_features"], n_classes=arch["n_classes"], stats=InputStats.of(x),
                        fixed_point=fp)
    model.bake()
    path = export_onnx(model, arch["n_features"], folder / f"arch{arch['id']:04d}.onnx")
    if arch["quant"] == "int8":
        path = quantize_int8(path, folder / f"arch{arch['id']:04d}.int8.onnx", x)
    return path


def describe(arch: dict[str, Any]) -> str:
    c = arch["config"]["values"] if "values" in arch["config"] else arch["config"]
    widths = c.get("width")
    widths = widths if isinstance(widths, list) else [widths]
    kinds = c.get("ffn") or ["dense"] * len(widths)
    kinds = kinds if isinstance(kinds, list) else [kinds]
    layers = "-".join(f"{w}{k[0] if k != 'dense' else ''}" for w, k in zip(widths, kinds))
    return f"{arch['n_features']}-{layers}-{arch['n_classes']} {arch['quant']}{' fxp' if arch['fixed_point'] else ''}"


# -------------------------------------------------------------------------------------------- measuring


def measure(archs: list[dict[str, Any]], paths: dict[int, Path], batches: list[int], repeats: int,
            seed: int, rounds: int) -> list[dict[str, Any]]:
    """cpu-ort latency of every (architecture, batch): ``rounds`` rounds over all jobs, each in its own seeded
    random order (the cache cleared between rounds); the median of the round medians is the measurement, so
    one round disturbed by another process on the shared host does not count."""
    from hwnas.profiles import get as get_profile
    from hwnas.profiles.onnxruntime import OnnxRuntimeProfile

    jobs = [(a["id"], b) for a in archs for b in batches]
    profiles = {b: get_profile("cpu-ort", {"batch_size": b, "repeats": repeats}) for b in batches}
    runs: dict[tuple[int, int], list[float]] = {job: [] for job in jobs}
    t0 = time.perf_counter()
    for r in range(rounds):
        OnnxRuntimeProfile._cache.clear()
        order = list(jobs)
        random.Random(seed + 1 + r).shuffle(order)
        for aid, b in order:
            runs[(aid, b)].append(profiles[b].profile(paths[aid])["latency_ms"].value)
        print(f"# round {r + 1}/{rounds} measured {len(order)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return [{"arch": aid, "batch": b, "measured_ms": float(np.median(runs[(aid, b)])), "rounds_ms": runs[(aid, b)]}
            for aid, b in jobs]


# ---------------------------------------------------------------------------------------------- scoring


def scores(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    from scipy.stats import kendalltau

    ratio = pred / meas
    tau = kendalltau(pred, meas).statistic if len(pred) > 1 else float("nan")
    return {"n": int(len(pred)), "within_10pct": float(np.mean(np.abs(ratio - 1) <= 0.10)),
            "within_20pct": float(np.mean(np.abs(ratio - 1) <= 0.20)),
            "mape": float(np.mean(np.abs(ratio - 1))), "kendall_tau": float(tau),
            "median_ratio": float(np.median(ratio)), "worst_ratio_low": float(ratio.min()),
            "worst_ratio_high": float(ratio.max())}


def fit_flops(flops: np.ndarray, meas: np.ndarray) -> tuple[float, float, float]:
    """(s of latency = s·FLOPs; a, s of latency = a + s·FLOPs), both by least squares on log error."""
    from scipy.optimize import least_squares

    s = float(np.exp(np.mean(np.log(meas / flops))))
    fit = least_squares(lambda x: np.log(np.exp(x[0]) + np.exp(x[1]) * flops) - np.log(meas),
                        [np.log(np.min(meas) / 2), np.log(s)])
    return s, float(np.exp(fit.x[0])), float(np.exp(fit.x[1]))


# ------------------------------------------------------------------------------------------------ main


def write_profile(params: dict[str, Any], held_out: dict[str, Any], n_fit: int, env: dict[str, Any]) -> Path:
    """Rewrite ``hw_profiles/cpu-host-model.yaml`` with the fitted constants and the held-out error."""
    path = ROOT / "hw_profiles" / f"{PROFILE}.yaml"
    data = yaml.safe_load(path.read_text())
    date = _dt.date.today().isoformat()
    cpu = env["machine"]["cpu"]
    o = held_out["overall"]
    per_b = ", ".join(f"batch {b}: {100 * s['within_10pct']:.0f}% / {100 * s['mape']:.1f}% / {s['kendall_tau']:.3f}"
                      for b, s in held_out["per_batch"].items())
    params = dict(params)
    params["validation_error"] = (
        f"held-out (benchmarks/profile_accuracy.py, {o['n']} measurements of {held_out['archs']} architectures "
        f"not used in the fit; fitted on {n_fit}): {100 * o['within_10pct']:.1f}% within ±10%, "
        f"MAPE {100 * o['mape']:.1f}%, Kendall tau {o['kendall_tau']:.3f} against cpu-ort on {cpu}, {date} "
        f"(within ±10% / MAPE / tau: {per_b})"
    )
    data["params"] = {k: params[k] for k in data["params"]} | {k: v for k, v in params.items() if k not in data["params"]}
    data["description"] = (
        f"Analytical roofline model of THIS host's CPU ({cpu}) running ONNX Runtime's CPU EP with 1 thread, "
        f"calibrated on {date} against cpu-ort measurements of hwnas MLPs (benchmarks/profile_accuracy.py, "
        f"fitting half); predicts without running the model. Only valid on this CPU and ONNX Runtime version "
        f"({env['versions']['onnxruntime']}): re-run the benchmark with --write-profile on another host."
    )
    text = yaml.safe_dump(data, sort_keys=False, width=110, allow_unicode=True)
    path.write_text(f"# Written by benchmarks/profile_accuracy.py --write-profile on {date} ({cpu}).\n" + text)
    return path


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = environment()
    print(header(env))
    import hwnas.profiles.analytical as an
    from hwnas.lowering.op_costs import graph_costs
    from hwnas.profiles import get as get_profile

    base = get_profile(PROFILE).params
    t0 = time.perf_counter()
    if args.reuse:
        old = json.loads(args.reuse.read_text())
        archs, rows = old["archs"], old["measurements"]
        print(f"# reusing {len(rows)} measurements of {len(archs)} architectures from {args.reuse}")
    else:
        archs = sample_archs(args.archs, args.seed)
        rows = []
    with tempfile.TemporaryDirectory(prefix="hwnas-acc-") as tmp:
        paths = {a["id"]: export_arch(a, Path(tmp)) for a in archs}
        print(f"# exported {len(paths)} models ({time.perf_counter() - t0:.0f} s)", flush=True)
        if not args.reuse:
            rows = measure(archs, paths, args.batch_list, args.repeats, args.seed, args.rounds)
        t_measure = time.perf_counter() - t0
        # costs once per (model, batch) — the fits below re-evaluate the model on these tables only
        fusion = base["fusion"]
        costs = [an.lowered_costs(paths[r["arch"]], r["batch"], fusion) for r in rows]
        flops = np.array([sum(c.flops for c in graph_costs(paths[r["arch"]], r["batch"])) for r in rows])
    meas = np.array([r["measured_ms"] for r in rows])
    ids = sorted({a["id"] for a in archs})
    order = np.random.default_rng(args.seed).permutation(ids)
    fit_ids = set(order[: len(ids) // 2].tolist())
    is_fit = np.array([r["arch"] in fit_ids for r in rows])
    fit_table = an.build_table([c for c, f in zip(costs, is_fit) if f], fusion)
    t1 = time.perf_counter()
    params = an.calibrate_table(fit_table, meas[is_fit], base)
    t_fit = time.perf_counter() - t1
    pred = an.evaluate(an.build_table(costs, fusion), params).latency_s * 1e3
    s, a0, a1 = fit_flops(flops[is_fit], meas[is_fit])
    proxies = {"analytical": pred, "flops": s * flops, "flops+c": a0 + a1 * flops}
    batches = sorted({r["batch"] for r in rows})
    held = ~is_fit
    result: dict[str, Any] = {}
    for name, p in proxies.items():
        result[name] = {
            "overall": scores(p[held], meas[held]),
            "per_batch": {b: scores(p[held & (np.array([r["batch"] for r in rows]) == b)],
                                    meas[held & (np.array([r["batch"] for r in rows]) == b)]) for b in batches},
            "fit_half": scores(p[is_fit], meas[is_fit]),
        }
    space_of = {a["id"]: (a["space"], a["quant"]) for a in archs}
    groups = sorted({space_of[r["arch"]] for r in rows})
    per_group = {f"{sp}/{q}": scores(pred[held & np.array([space_of[r["arch"]] == (sp, q) for r in rows])],
                                     meas[held & np.array([space_of[r["arch"]] == (sp, q) for r in rows])])
                 for sp, q in groups}
    result["analytical"]["per_group"] = per_group
    result["analytical"]["archs"] = len(ids) - len(fit_ids)

    print(f"\nHeld-out accuracy: {int(held.sum())} measurements of {len(ids) - len(fit_ids)} architectures "
          f"(fitted on {int(is_fit.sum())} of {len(fit_ids)}); cpu-ort = truth")
    head = ["batch", "n", "model", "within ±10%", "within ±20%", "MAPE", "Kendall τ", "median pred/meas"]
    trows = []
    for b in [*batches, "all"]:
        for name in proxies:
            sc = result[name]["overall"] if b == "all" else result[name]["per_batch"][b]
            trows.append([b, sc["n"], name, f"{100 * sc['within_10pct']:.1f}%", f"{100 * sc['within_20pct']:.1f}%",
                          f"{100 * sc['mape']:.1f}%", f"{sc['kendall_tau']:.3f}", f"{sc['median_ratio']:.3f}"])
    print(table(head, trows, "lrlrrrrr"))
    print("\nAnalytical model by space / precision (held out):")
    print(table(["group", "n", "within ±10%", "MAPE", "Kendall τ"],
                [[g, sc["n"], f"{100 * sc['within_10pct']:.1f}%", f"{100 * sc['mape']:.1f}%",
                  f"{sc['kendall_tau']:.3f}"] for g, sc in per_group.items()]))
    ratio = pred / meas
    worst = np.argsort(-np.abs(np.log(ratio)) * held)[:8]
    print("\nWorst held-out predictions:")
    arch_by_id = {a["id"]: a for a in archs}
    print(table(["arch", "batch", "measured µs", "predicted µs", "pred/meas"],
                [[describe(arch_by_id[rows[i]["arch"]]), rows[i]["batch"], f"{1000 * meas[i]:.1f}",
                  f"{1000 * pred[i]:.1f}", f"{ratio[i]:.2f}"] for i in worst], "lrrrr"))
    fitted = {k: params[k] for k in ("peak_gflops", "efficiency", "cache_bytes", "cache_gbps", "memory_gbps",
                                     "op_overhead_us", "inference_overhead_us")}
    print("\nFitted constants:", json.dumps(fitted))
    print(f"FLOPs proxy: {s * 1e9:.4g} ms per GFLOP; affine: {a0 * 1e3:.2f} µs + {a1 * 1e9:.4g} ms per GFLOP")
    payload = {"benchmark": NAME, **env, "settings": {
        "archs": len(archs), "batches": batches, "seed": args.seed, "repeats": args.repeats, "quick": args.quick,
        "profile": PROFILE, "base_params": base, "fusion": fusion, "reused_from": str(args.reuse) if args.reuse else None,
        "split": "by architecture, seeded permutation, first half fits"},
        "loadavg_at_end": loadavg(), "measure_wall_s": t_measure, "fit_wall_s": t_fit,
        "fitted_params": params, "flops_proxy": {"ms_per_flop": s, "affine_ms": a0, "affine_ms_per_flop": a1},
        "results": result, "archs": archs, "measurements": [
            {**r, "fit": bool(f), "predicted_ms": float(p), "flops": float(fl)}
            for r, f, p, fl in zip(rows, is_fit, pred, flops)]}
    path = write_json(NAME, payload, args.json)
    print(f"\nwrote {path}")
    if args.write_profile:
        held_out = {"overall": result["analytical"]["overall"], "per_batch": result["analytical"]["per_batch"],
                    "archs": len(ids) - len(fit_ids)}
        print(f"wrote {write_profile(params, held_out, int(is_fit.sum()), env)}")


if __name__ == "__main__":
    main()
