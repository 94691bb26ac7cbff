"""Accuracy of the analytical latency model (``cpu-host-model``) against ONNX Runtime measurements (``cpu-ort``).

Architectures are sampled from the built-in spaces ``mlp_tabular`` (a third; half of them exported with
fixed-point inputs and weights, as a search with ``printed-egfet`` exports them) and ``mlp_wide`` (two thirds;
fp32 or int8 QDQ as the config says), built untrained with ``hwnas.models.build_model`` on random N(0, 1)
input statistics (latency does not depend on weight values) and lowered as a search lowers a candidate
(``hwnas.lowering.lower``; int8 QDQ for int8). Every architecture is measured with ``cpu-ort`` (1 thread, median of 100 runs
after 10 warm-ups) at every batch size, in rounds of seeded random order; a canary before and after every
measurement tells quiet rounds from rounds disturbed by other processes on the shared host, and the truth is
the minimum of the quiet rounds (see :func:`measure`).

The architectures are split in halves (seeded): :func:`hwnas.profiles.analytical.calibrate_table` fits the model
constants on the first half, starting from ``hw_profiles/cpu-host-model.yaml``; the table reports the other
half: share of predictions within ±10%, MAPE, Kendall τ, per batch size and overall, next to two proxies fitted on
the same half: ``flops`` (latency = s × FLOPs, one scale) and ``flops+c`` (latency = a + s × FLOPs). It also
checks the GPU profiles against published large-GEMM measurements and how much their L2 level matters.

Writes ``benchmarks/results/profile_accuracy.json``. ``--write-profile`` stores the fitted constants and the
held-out error in ``hw_profiles/cpu-host-model.yaml``. ``--reuse FILE`` refits on the measurements of an earlier
run (models are re-exported; no measuring). Run: ``python benchmarks/profile_accuracy.py`` (full, ~3-5 min on 2
cores) or ``--quick`` (24 architectures, one round).
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
from _common import RUNS_DIR, environment, header, loadavg, table, write_json  # noqa: E402

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
    ap.add_argument("--rounds", type=int, default=3, help="cpu-ort measurement rounds over all jobs (default 3)")
    ap.add_argument("--confirm", type=int, default=4,
                    help="extra rounds for jobs without two quiet rounds within 5%% (default 4)")
    ap.add_argument("--reference", choices=("min", "median"), default="min",
                    help="the truth: min of the quiet round medians (default) or median of all rounds")
    ap.add_argument("--reuse", type=Path, help="refit on the measurements stored in this JSON (no measuring)")
    ap.add_argument("--write-profile", action="store_true", help=f"write the fit into hw_profiles/{PROFILE}.yaml")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="smoke check: 24 architectures, batches 1 and 16")
    args = ap.parse_args(argv)
    if args.quick:
        args.archs = min(args.archs, 24)
        args.batches = "1,16"
        args.rounds, args.confirm = 1, 0
        if args.json is None:
            args.json = RUNS_DIR / f"{NAME}.quick.json"
    args.batch_list = [int(b) for b in args.batches.split(",") if b.strip()]
    if args.archs < 4:
        ap.error("--archs must be >= 4")
    if args.quick and args.write_profile:
        ap.error("--write-profile needs a full run (a --quick fit is not worth keeping)")
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
    """Build the untrained model of ``arch`` and lower it as a search does (int8 QDQ when ``quant: int8``)."""
    import torch

    from hwnas.lowering import FeatureExporter, lower
    from hwnas.models import build_model
    from hwnas.models.preprocess import InputStats
    from hwnas.precision import FixedPoint
    from hwnas.space import load_space

    config = load_space(arch["space"]).sample(arch["draw"])
    torch.manual_seed(arch["id"])
    x = np.random.default_rng(arch["id"]).standard_normal((256, arch["n_features"])).astype(np.float32)
    fp = FixedPoint(8, 4) if arch["fixed_point"] else None
    model = build_model(config, n_features=arch["n_features"], n_classes=arch["n_classes"], stats=InputStats.of(x),
                        fixed_point=fp)
    path = folder / f"arch{arch['id']:04d}{'.int8' if arch['quant'] == 'int8' else ''}.onnx"
    return lower(model, path, FeatureExporter(arch["n_features"], x), check_parity=False).path


def describe(arch: dict[str, Any]) -> str:
    c = arch["config"]["values"] if "values" in arch["config"] else arch["config"]
    widths = c.get("width")
    widths = widths if isinstance(widths, list) else [widths]
    kinds = c.get("ffn") or ["dense"] * len(widths)
    kinds = kinds if isinstance(kinds, list) else [kinds]
    layers = "-".join(f"{w}{k[0] if k != 'dense' else ''}" for w, k in zip(widths, kinds))
    return f"{arch['n_features']}-{layers}-{arch['n_classes']} {arch['quant']}{' fxp' if arch['fixed_point'] else ''}"


# -------------------------------------------------------------------------------------------- measuring


def canary(folder: Path) -> Any:
    """A probe of how busy the shared host is right now: a fixed MLP (16-256-256-2, batch 16) in one ONNX
    Runtime session; each call returns the median of 30 runs in ms (~0.5 ms of work)."""
    import onnxruntime as ort

    from hwnas.lowering import FeatureExporter, lower
    from hwnas.models import build_model
    from hwnas.models.preprocess import InputStats
    from hwnas.space import ArchConfig

    x = np.random.default_rng(0).standard_normal((256, 16)).astype(np.float32)
    config = ArchConfig("mlp", {"depth": 2, "width": [256, 256], "ffn": ["dense", "dense"], "activation": "relu"})
    model = build_model(config, n_features=16, n_classes=2, stats=InputStats.of(x))
    path = lower(model, folder / "canary.onnx", FeatureExporter(16, x)).path
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x[:16]}

    def probe() -> float:
        times = []
        for _ in range(30):
            start = time.perf_counter_ns()
            sess.run(None, feed)
            times.append((time.perf_counter_ns() - start) / 1e6)
        return float(np.median(times))

    return probe


def measure(archs: list[dict[str, Any]], paths: dict[int, Path], batches: list[int], repeats: int,
            seed: int, rounds: int, confirm: int) -> list[dict[str, Any]]:
    """cpu-ort latency of every (architecture, batch) in ``rounds`` rounds over all jobs, each in its own seeded
    random order (the cache cleared between rounds). A canary (:func:`canary`) runs before every job; a round
    counts as *quiet* when the canaries before and after it are within 10% of the quietest canary seen. Up to
    ``confirm`` extra rounds go to the jobs without two quiet rounds within 5% of each other.
    :func:`reference` turns the rounds into one number."""
    from hwnas.profiles import get as get_profile
    from hwnas.profiles.onnxruntime import OnnxRuntimeProfile

    jobs = [(a["id"], b) for a in archs for b in batches]
    profiles = {b: get_profile("cpu-ort", {"batch_size": b, "repeats": repeats}) for b in batches}
    runs: dict[tuple[int, int], list[tuple[float, float, float]]] = {job: [] for job in jobs}
    probe = canary(paths[archs[0]["id"]].parent)
    t0 = time.perf_counter()

    def quiet(job: tuple[int, int]) -> list[float]:
        floor = min(c for rs in runs.values() for _, c0, c1 in rs for c in (c0, c1))
        return sorted(v for v, c0, c1 in runs[job] if max(c0, c1) <= 1.10 * floor)

    def unconfirmed() -> list[tuple[int, int]]:
        return [j for j in jobs if len(quiet(j)) < 2 or quiet(j)[1] > 1.05 * quiet(j)[0]]

    for r in range(rounds + confirm):
        todo = list(jobs) if r < rounds else unconfirmed()
        if not todo:
            break
        OnnxRuntimeProfile._cache.clear()
        random.Random(seed + 1 + r).shuffle(todo)
        before = probe()
        for aid, b in todo:
            value = profiles[b].profile(paths[aid])["latency_ms"].value
            after = probe()
            runs[(aid, b)].append((value, before, after))
            before = after
        print(f"# round {r + 1}: measured {len(todo)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    out = []
    for aid, b in jobs:
        q = quiet((aid, b))
        out.append({"arch": aid, "batch": b, "rounds_ms": [v for v, _, _ in runs[(aid, b)]],
                    "canary_ms": [max(c0, c1) for _, c0, c1 in runs[(aid, b)]], "quiet_ms": q})
    return out


def reference(row: dict[str, Any], how: str) -> float:
    """The measurement a prediction is scored against: ``min`` of the quiet round medians (other processes on
    the shared host only ever add time; rounds during which the canary ran > 10% slow do not count unless no
    round was quiet) or the ``median`` of all round medians."""
    values = row.get("quiet_ms") or row["rounds_ms"]
    return float(np.min(values) if how == "min" else np.median(row["rounds_ms"]))


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


def cpu_id(name: str) -> str:
    """The CPU's model name with its family/model/stepping (a VM may report only 'AMD EPYC')."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return name
    fields = [f"{k} {info[k]}" for k in ("cpu family", "model", "stepping") if k in info]
    return f"{name} ({', '.join(fields)})" if fields else name


def write_profile(params: dict[str, Any], held_out: dict[str, Any], n_fit: int, env: dict[str, Any]) -> Path:
    """Rewrite ``hw_profiles/cpu-host-model.yaml`` with the fitted constants and the held-out error."""
    path = ROOT / "hw_profiles" / f"{PROFILE}.yaml"
    data = yaml.safe_load(path.read_text())
    date = _dt.date.today().isoformat()
    cpu = cpu_id(env["machine"]["cpu"])
    o = held_out["overall"]
    per_b = ", ".join(f"batch {b}: {100 * s['within_10pct']:.0f}% / {100 * s['mape']:.1f}% / {s['kendall_tau']:.3f}"
                      for b, s in held_out["per_batch"].items())
    params = dict(params)
    params["calibrated_on"] = env["machine"]["cpu"]
    params["validation_error"] = (
        f"held-out (benchmarks/profile_accuracy.py, {o['n']} measurements of {held_out['archs']} architectures "
        f"not used in the fit, truth = {held_out['reference']} of {held_out['rounds']} cpu-ort rounds; fitted on "
        f"{n_fit}): {100 * o['within_10pct']:.1f}% within ±10%, "
        f"MAPE {100 * o['mape']:.1f}%, Kendall tau {o['kendall_tau']:.3f} against cpu-ort on {cpu}, {date} "
        f"(within ±10% / MAPE / tau: {per_b})"
    )
    data["params"] = {**{k: params[k] for k in data["params"]}, **params}  # keep the file's order, add new keys
    data["description"] = (
        f"Analytical roofline model of THIS host's CPU ({cpu}) running ONNX Runtime's CPU EP with 1 thread, "
        f"calibrated on {date} against cpu-ort measurements of hwnas MLPs (benchmarks/profile_accuracy.py, "
        f"fitting half); predicts without running the model. Only valid on this CPU and ONNX Runtime version "
        f"({env['versions']['onnxruntime']}): re-run the benchmark with --write-profile on another host."
    )
    text = yaml.safe_dump(data, sort_keys=False, width=110, allow_unicode=True)
    path.write_text(f"# Written by benchmarks/profile_accuracy.py --write-profile on {date} ({cpu}).\n" + text)
    return path


def published_checks() -> list[dict[str, Any]]:
    """Large-GEMM throughput of the GPU profiles against published measurements (kernel time: the MatMul's
    max(compute, memory), launch and per-inference overheads excluded, as the sources time many back-to-back
    kernels). Weights are graph inputs, so no 8192^2 tensor is materialised."""
    from onnx import TensorProto, helper

    import hwnas.profiles.analytical as an
    from hwnas.graph import graph_costs
    from hwnas.profiles import get as get_profile

    h100 = "github.com/waynehacking8/blackwell-tensorcore-kernels results/bench_sm90a.csv (cuBLAS, H100 80GB HBM3)"
    t4 = "forums.developer.nvidia.com 'About GPU peak performance' (cuBLAS, T4, power-capped at 70 W)"
    cases = [("gpu-h100", "fp16", 2048, 540.87, h100), ("gpu-h100", "fp16", 4096, 726.40, h100),
             ("gpu-h100", "fp16", 8192, 749.89, h100), ("gpu-h100", "fp32", 2048, 21.82, h100),
             ("gpu-h100", "fp32", 4096, 45.68, h100), ("gpu-h100", "fp32", 8192, 50.49, h100),
             ("gpu-t4", "fp16", 4096, 24.0, t4)]
    out = []
    for name, dtype, size, published, source in cases:
        elem = TensorProto.FLOAT16 if dtype == "fp16" else TensorProto.FLOAT
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "gemm",
                                  [helper.make_tensor_value_info("x", elem, ["batch", size]),
                                   helper.make_tensor_value_info("w", elem, [size, size])],
                                  [helper.make_tensor_value_info("y", elem, ["batch", size])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        params = get_profile(name).params
        times = an.evaluate(an.build_table([graph_costs(model, size)], params["fusion"]), params)
        seconds = float(np.max([times.compute[0], times.memory[0]]))
        predicted = 2.0 * size**3 / seconds / 1e12
        out.append({"profile": name, "dtype": dtype, "gemm": f"{size}^3", "published_tflops": published,
                    "predicted_tflops": round(predicted, 1), "error": predicted / published - 1, "source": source})
    return out


def l2_sensitivity(paths: list[Path], batches: list[int]) -> dict[str, float]:
    """Largest relative change of the GPU predictions for hwnas MLPs when the L2 level is removed."""
    import hwnas.profiles.analytical as an
    from hwnas.profiles import get as get_profile

    out = {}
    for name in ("gpu-h100", "gpu-a100", "gpu-t4", "gpu-rtx4090"):
        params = get_profile(name).params
        no_l2 = {**params, "cache_bytes": [], "cache_gbps": []}
        pairs = [(p, b) for p in paths for b in batches]
        a, b = an.predict_ms(pairs, params), an.predict_ms(pairs, no_l2)
        out[name] = float(np.max(np.abs(b / a - 1)))
    return out


def split_scores(pred: np.ndarray, meas: np.ndarray, rows: list[dict[str, Any]], mask: np.ndarray) -> dict[str, Any]:
    """Scores on the rows in ``mask``: overall and per batch size."""
    batch = np.array([r["batch"] for r in rows])
    return {"overall": scores(pred[mask], meas[mask]),
            "per_batch": {int(b): scores(pred[mask & (batch == b)], meas[mask & (batch == b)])
                          for b in sorted(set(batch.tolist()))}}


def print_tables(result: dict[str, Any], proxies: list[str], title: str) -> None:
    head = ["batch", "n", "model", "within ±10%", "within ±20%", "MAPE", "Kendall τ", "median pred/meas"]
    trows = []
    for b in [*result[proxies[0]]["held_out"]["per_batch"], "all"]:
        for name in proxies:
            part = result[name]["held_out"]
            sc = part["overall"] if b == "all" else part["per_batch"][b]
            trows.append([b, sc["n"], name, f"{100 * sc['within_10pct']:.1f}%", f"{100 * sc['within_20pct']:.1f}%",
                          f"{100 * sc['mape']:.1f}%", f"{sc['kendall_tau']:.3f}", f"{sc['median_ratio']:.3f}"])
    print(f"\n{title}")
    print(table(head, trows, "lrlrrrrr"))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = environment()
    print(header(env))
    import hwnas.profiles.analytical as an
    from hwnas.graph import graph_costs
    from hwnas.profiles import get as get_profile

    base = get_profile(PROFILE).params
    fusion = base["fusion"]
    t0 = time.perf_counter()
    if args.reuse:
        old = json.loads(args.reuse.read_text())
        archs, rows = old["archs"], old["measurements"]
        for r in rows:
            r.setdefault("rounds_ms", [r.get("measured_ms")])
        print(f"# reusing {len(rows)} measurements of {len(archs)} architectures from {args.reuse}")
    else:
        archs, rows = sample_archs(args.archs, args.seed), []
    with tempfile.TemporaryDirectory(prefix="hwnas-acc-") as tmp:
        paths = {a["id"]: export_arch(a, Path(tmp)) for a in archs}
        print(f"# exported {len(paths)} models ({time.perf_counter() - t0:.0f} s)", flush=True)
        if not args.reuse:
            rows = measure(archs, paths, args.batch_list, args.repeats, args.seed, args.rounds, args.confirm)
        t_measure = time.perf_counter() - t0
        # costs once per (model, batch); every fit below re-evaluates the model on these tables only
        costs = [an.lowered_costs(paths[r["arch"]], r["batch"], fusion) for r in rows]
        flops = np.array([sum(c.flops for c in graph_costs(paths[r["arch"]], r["batch"])) for r in rows])
        wide = [paths[a["id"]] for a in archs if a["space"] == "mlp_wide"][:24]
        sensitivity = l2_sensitivity(wide, sorted({r["batch"] for r in rows}))
    ids = sorted({a["id"] for a in archs})
    fit_ids = set(np.random.default_rng(args.seed).permutation(ids)[: len(ids) // 2].tolist())
    is_fit = np.array([r["arch"] in fit_ids for r in rows])
    held = ~is_fit
    measured = {how: np.array([reference(r, how) for r in rows]) for how in ("min", "median")}
    meas = measured[args.reference]
    t1 = time.perf_counter()
    params = an.calibrate_table(an.build_table([c for c, f in zip(costs, is_fit) if f], fusion), meas[is_fit], base)
    t_fit = time.perf_counter() - t1
    pred = an.evaluate(an.build_table(costs, fusion), params).latency_s * 1e3
    s, a0, a1 = fit_flops(flops[is_fit], meas[is_fit])
    proxies = {"analytical": pred, "flops": s * flops, "flops+c": a0 + a1 * flops}
    result: dict[str, Any] = {name: {"held_out": split_scores(p, meas, rows, held),
                                     "fit_half": split_scores(p, meas, rows, is_fit)} for name, p in proxies.items()}
    other = "median" if args.reference == "min" else "min"
    result["analytical_vs_" + other] = {"held_out": split_scores(pred, measured[other], rows, held)}
    first = np.array([r["rounds_ms"][0] for r in rows])
    result["repeatability"] = {"held_out": split_scores(first, meas, rows, held),
                               "note": "round 1 alone scored against the reference: the noise floor of the truth"}
    space_of = {a["id"]: f"{a['space']}/{a['quant']}" for a in archs}
    group = np.array([space_of[r["arch"]] for r in rows])
    result["analytical"]["per_group"] = {g: scores(pred[held & (group == g)], meas[held & (group == g)])
                                         for g in sorted(set(group.tolist()))}
    checks = published_checks()

    n_held = len(ids) - len(fit_ids)
    n_rounds = f"{min(len(r['rounds_ms']) for r in rows)}-{max(len(r['rounds_ms']) for r in rows)}"
    print_tables(result, list(proxies), f"Held-out accuracy ({args.reference} of {n_rounds} "
                 f"cpu-ort rounds = truth): {int(held.sum())} measurements of {n_held} architectures; fitted on "
                 f"{int(is_fit.sum())} measurements of the other {len(fit_ids)}")
    o = result["analytical_vs_" + other]["held_out"]["overall"]
    r_ = result["repeatability"]["held_out"]["overall"]
    print(f"analytical vs the {other} of the rounds: {100 * o['within_10pct']:.1f}% within ±10%, MAPE "
          f"{100 * o['mape']:.1f}%, τ {o['kendall_tau']:.3f}; noise floor (round 1 vs reference): "
          f"{100 * r_['within_10pct']:.1f}% within ±10%, MAPE {100 * r_['mape']:.1f}%")
    print("\nAnalytical model by space / precision (held out):")
    print(table(["group", "n", "within ±10%", "MAPE", "Kendall τ"],
                [[g, sc["n"], f"{100 * sc['within_10pct']:.1f}%", f"{100 * sc['mape']:.1f}%",
                  f"{sc['kendall_tau']:.3f}"] for g, sc in result["analytical"]["per_group"].items()]))
    ratio = pred / meas
    worst = np.argsort(-np.abs(np.log(ratio)) * held)[:8]
    arch_by_id = {a["id"]: a for a in archs}
    print("\nWorst held-out predictions:")
    print(table(["arch", "batch", "rounds µs", "predicted µs", "pred/meas"],
                [[describe(arch_by_id[rows[i]["arch"]]), rows[i]["batch"],
                  "/".join(f"{1000 * x:.1f}" for x in rows[i]["rounds_ms"]), f"{1000 * pred[i]:.1f}",
                  f"{ratio[i]:.2f}"] for i in worst], "lrrrr"))
    fitted = {k: params[k] for k in ("peak_gflops", "efficiency", "cache_gbps", "memory_gbps", "op_overhead_us",
                                     "inference_overhead_us")}
    print("\nFitted constants:", json.dumps(fitted))
    print(f"FLOPs proxy: {s * 1e9:.4g} ms per GFLOP; affine: {a0 * 1e3:.2f} µs + {a1 * 1e9:.4g} ms per GFLOP")
    print("\nGPU profiles against published large-GEMM measurements (kernel time, overheads excluded):")
    print(table(["profile", "dtype", "GEMM", "published TFLOPS", "predicted", "error"],
                [[c["profile"], c["dtype"], c["gemm"], c["published_tflops"], c["predicted_tflops"],
                  f"{100 * c['error']:+.0f}%"] for c in checks]))
    print("GPU predictions of hwnas MLPs without the L2 level, largest change: "
          + ", ".join(f"{k} {100 * v:.1f}%" for k, v in sensitivity.items()))
    payload = {"benchmark": NAME, **env, "settings": {
        "archs": len(archs), "batches": sorted({r["batch"] for r in rows}), "seed": args.seed,
        "repeats": args.repeats, "rounds": args.rounds, "confirm_rounds": args.confirm, "reference": args.reference,
        "quick": args.quick, "profile": PROFILE, "base_params": base, "fusion": fusion,
        "reused_from": str(args.reuse) if args.reuse else None,
        "split": "by architecture, seeded permutation, first half fits"},
        "loadavg_at_end": loadavg(), "measure_wall_s": t_measure, "fit_wall_s": t_fit,
        "fitted_params": params, "flops_proxy": {"ms_per_flop": s, "affine_ms": a0, "affine_ms_per_flop": a1},
        "results": result, "published_checks": checks, "gpu_l2_sensitivity": sensitivity, "archs": archs,
        "measurements": [{**r, "measured_ms": float(m), "fit": bool(f), "predicted_ms": float(p),
                          "flops": float(fl)} for r, m, f, p, fl in zip(rows, meas, is_fit, pred, flops)]}
    path = write_json(NAME, payload, args.json)
    print(f"\nwrote {path}")
    if args.write_profile:
        held_out = {**result["analytical"]["held_out"], "archs": n_held, "reference": args.reference,
                    "rounds": n_rounds}
        print(f"wrote {write_profile(params, held_out, int(is_fit.sum()), env)}")


if __name__ == "__main__":
    main()
