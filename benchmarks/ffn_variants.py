"""FFN structures × precisions: params, MACs, measured CPU latency and every analytical profile's prediction.

One fixed FFN block, d_model = 512 → hidden 2048 → d_model = 512, built with hwnas's MLP builder
(``hwnas.models.build_model``; 512 raw features in, 10 class scores out) in each structure:

* ``dense``            two hidden layers 512→2048→512 (ReLU after each), the reference;
* ``lowrank-r128/256`` the same two layers, each a low-rank pair U·V of rank 128 / 256;
* ``blockdiag-b4/b8``  the same two layers, each block-diagonal with 4 / 8 blocks (one batched MatMul);
* ``swiglu``           one hidden layer 512→512 that is a SwiGLU FFN, expansion 8/3 (hidden 1365: three
  [512×1365] weights = 2.097 M, the dense pair's 2.097 M — equal parameters, LLaMA's choice);
* ``moe8-e4-top1/2``   one hidden layer 512→512 that is a mixture of 8 ReLU experts 512→2048→512 (each expert
  is the dense FFN: 8× the parameters, top-1 active MACs ≈ dense; Switch-Transformer style);
* ``moe8-e0.5-top1/2`` 8 experts 512→256→512 (expansion 0.5: total parameters ≈ dense, top-1 active MACs ≈ 1/8).

followed by the output layer 512→10 (dense, fp32). Each structure is lowered at fp32, fp16, int8 and int4 (the
hidden layers' precision, ``quant`` per layer, so the tiny output layer stays fp32) exactly as a search lowers a
candidate (``hwnas.lowering.lower``: ``bake`` → ``export_onnx`` → ``deploy`` of the int8/int4/fp16 weights →
``verify``); a variant whose lowering fails ``verify`` is reported as not deployable. Weights are untrained
(``torch.manual_seed(0)``; latency does not depend on the values, only MoE routing does).

Measured: ONNX Runtime CPU EP with ``cpu-ort``'s own session settings (1 intra-op thread, graph optimization
``all``) and its random-normal inputs, at batch 1, 16 and 256. All (model, batch) pairs are measured side by
side: ``--rounds`` rounds, each in its own random order, each pair running ``--warmup`` untimed then ``--runs``
timed inferences per round; the median over all rounds' runs and its IQR are reported, and each ratio to the
dense fp32 baseline is also taken per round (paired in time) to show its spread.

Predicted: every analytical profile (``hwnas profiles list``) with ``{"batch_size": b}`` on the same files.
MACs: ``hwnas.graph.graph_costs`` of the lowered graph; for MoE it prices each expert at its
expected routed rows (balanced top-k routing, N·k/E rows; weights read with the probability that any row is
routed there), so the graph's MACs are the active ones; the dense-equivalent count (every expert on every row)
comes from ``MixtureOfExperts.costs``.

Run: ``python benchmarks/ffn_variants.py [--quick]``; JSON to ``benchmarks/results/ffn_variants.json``
(``--quick``: ``benchmarks/results/runs/ffn_variants.quick.json``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNS_DIR, environment, fnum, header, loadavg, table, write_json  # noqa: E402

NAME = "ffn_variants"
D_MODEL, HIDDEN, N_CLASSES = 512, 2048, 10
PRECISIONS = ("fp32", "fp16", "int8", "int4")
BATCHES = (1, 16, 256)
#: Analytical profiles shown in the tables (all analytical profiles go to the JSON).
SHOWN = ("cpu-host-model", "gpu-a100", "gpu-t4", "mobile-cortex-a76")
BASELINE = ("dense", "fp32")
FASTER = 0.9  # "really faster": measured ratio to the baseline below this

_TWO = {"depth": 2, "width": [HIDDEN, D_MODEL]}
_ONE = {"depth": 1, "width": [D_MODEL]}
#: name → (MLP config values without quant, one-line description)
STRUCTURES: dict[str, tuple[dict[str, Any], str]] = {
    "dense": ({**_TWO, "ffn": "dense"}, "512→2048→512, two dense layers"),
    "lowrank-r128": ({**_TWO, "ffn": "lowrank", "rank": 128}, "two layers, each U·V of rank 128"),
    "lowrank-r256": ({**_TWO, "ffn": "lowrank", "rank": 256}, "two layers, each U·V of rank 256"),
    "blockdiag-b4": ({**_TWO, "ffn": "blockdiag", "blocks": 4}, "two layers, each 4 diagonal blocks"),
    "blockdiag-b8": ({**_TWO, "ffn": "blockdiag", "blocks": 8}, "two layers, each 8 diagonal blocks"),
    "swiglu": ({**_ONE, "ffn": "swiglu", "expansion": 8 / 3}, "SwiGLU 512→1365→512 (expansion 8/3)"),
    "moe8-e4-top1": ({**_ONE, "ffn": "moe", "experts": 8, "top_k": 1, "expansion": 4},
                     "8 experts 512→2048→512, top-1"),
    "moe8-e4-top2": ({**_ONE, "ffn": "moe", "experts": 8, "top_k": 2, "expansion": 4},
                     "8 experts 512→2048→512, top-2"),
    "moe8-e0.5-top1": ({**_ONE, "ffn": "moe", "experts": 8, "top_k": 1, "expansion": 0.5},
                       "8 experts 512→256→512, top-1"),
    "moe8-e0.5-top2": ({**_ONE, "ffn": "moe", "experts": 8, "top_k": 2, "expansion": 0.5},
                       "8 experts 512→256→512, top-2"),
}
QUICK_STRUCTURES = ("dense", "lowrank-r128", "blockdiag-b4", "swiglu", "moe8-e0.5-top1")


# ------------------------------------------------------------------------------------------------ lowering


def build(values: Mapping[str, Any], x: np.ndarray, n_classes: int, seed: int = 0, fixed_point: Any = None) -> Any:
    """The untrained hwnas MLP of ``values`` (an ``mlp`` ArchConfig), eval mode."""
    import torch

    import hwnas.models
    from hwnas.models.preprocess import InputStats
    from hwnas.space import ArchConfig

    torch.manual_seed(seed)
    model = hwnas.models.build_model(ArchConfig("mlp", dict(values)), n_features=x.shape[1], n_classes=n_classes,
                                     stats=InputStats.of(x), fixed_point=fixed_point)
    return model.eval()


def lower(model: Any, n_features: int, path: Path, calibration: np.ndarray,
          prune: Callable[[Any], None] | None = None) -> Path:
    """Lower ``model`` to ``path`` exactly as a search lowers a candidate (:func:`hwnas.lowering.lower`: bake,
    export with the ``hwnas.layers`` / ``hwnas.fixed_point`` metadata, deploy the int8/int4/fp16 weights,
    verify). ``prune`` runs first (e.g. multiplying sparsity masks in, where ``GradualPruner.finalize`` leaves
    a trained model)."""
    import torch

    from hwnas.lowering import FeatureExporter
    from hwnas.lowering import lower as lower_model

    with torch.no_grad():
        if prune is not None:
            prune(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lower_model(model, path, FeatureExporter(n_features, calibration), check_parity=False).path


def scores(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def rel_rms(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - ref) ** 2)) / max(np.sqrt(np.mean(ref ** 2)), 1e-12))


# --------------------------------------------------------------------------------------------- measuring


def measure_interleaved(files: Mapping[str, Path], batches: Sequence[int], rounds: int, runs: int, warmup: int,
                        seed: int = 0, log: Callable[[str], None] | None = None) -> dict[tuple[str, int], dict]:
    """Latency (ms) of every (file, batch) pair, measured side by side.

    Sessions come from the ``cpu-ort`` profile (its thread count, graph optimization level and random inputs);
    each round visits every pair in its own random order: ``warmup`` untimed runs, then ``runs`` timed ones.
    Returns per pair all times, per-round medians, and median / IQR / min over all times."""
    import hwnas.profiles

    base = hwnas.profiles.get("cpu-ort")
    sessions = {k: base._session(Path(p)) for k, p in files.items()}  # same settings as cpu-ort.profile()
    any_sess = next(iter(sessions.values()))
    feeds = {b: hwnas.profiles.get("cpu-ort", {"batch_size": b})._inputs(any_sess) for b in batches}
    times: dict[tuple[str, int], list[list[float]]] = {(k, b): [] for k in files for b in batches}
    rng = np.random.default_rng(seed)
    pairs = list(times)
    for r in range(rounds):
        t0 = time.perf_counter()
        for i in rng.permutation(len(pairs)):
            key, b = pairs[i]
            sess, feed = sessions[key], feeds[b]
            for _ in range(warmup):
                sess.run(None, feed)
            ts = []
            for _ in range(runs):
                start = time.perf_counter_ns()
                sess.run(None, feed)
                ts.append((time.perf_counter_ns() - start) / 1e6)
            times[(key, b)].append(ts)
        if log:
            log(f"# round {r + 1}/{rounds}: {time.perf_counter() - t0:.1f} s, load {loadavg()}")
    out = {}
    for pair, per_round in times.items():
        flat = np.concatenate([np.asarray(t) for t in per_round])
        q1, med, q3 = np.percentile(flat, [25, 50, 75])
        out[pair] = {"median_ms": float(med), "iqr_ms": float(q3 - q1), "min_ms": float(flat.min()),
                     "n": int(flat.size), "round_medians_ms": [float(np.median(t)) for t in per_round]}
    return out


def paired_ratio(m: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, float]:
    """Ratio of medians over all runs, and the per-round ratios' median / min / max (paired in time)."""
    per = [a / b for a, b in zip(m["round_medians_ms"], base["round_medians_ms"])]
    return {"ratio": m["median_ms"] / base["median_ms"], "round_median": float(np.median(per)),
            "round_min": float(min(per)), "round_max": float(max(per))}


def analytical_profiles() -> list[str]:
    import hwnas.profiles

    return sorted(name for name in hwnas.profiles.definitions()
                  if _kind(name) == "analytical")


def _kind(name: str) -> str | None:
    import yaml

    import hwnas.profiles

    try:
        return yaml.safe_load(hwnas.profiles.definitions()[name].path.read_text()).get("kind")
    except Exception:  # noqa: BLE001 - an unreadable user profile is just not one of ours
        return None


def predict(path: Path, profiles: Sequence[str], batches: Sequence[int]) -> dict[str, dict[int, Any]]:
    """``{profile: {batch: latency_ms or {"error": ...}}}``; breakdown kept for the JSON."""
    import hwnas.profiles

    out: dict[str, dict[int, Any]] = {}
    for name in profiles:
        out[name] = {}
        for b in batches:
            try:
                m = hwnas.profiles.get(name, {"batch_size": b}).profile(path)["latency_ms"]
                out[name][b] = {"ms": m.value, "breakdown_ms": m.details.get("breakdown_ms"),
                                "dtypes": m.details.get("dtypes"), "macs": m.details.get("macs")}
            except Exception as exc:  # noqa: BLE001 - a profile that cannot price a graph is a finding
                out[name][b] = {"ms": None, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return out


def graph_macs(path: Path, batch: int = 1) -> dict[str, float]:
    from hwnas.graph import graph_costs, totals

    t = totals(graph_costs(path, batch))
    return {"macs": t["macs"], "weight_bytes": t["weight_bytes"], "ops": t["ops"]}


# ------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--structures", default=",".join(STRUCTURES), help="comma-separated subset of the structures")
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--rounds", type=int, default=10, help="measurement rounds (each in its own random order)")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per (model, batch) per round")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs before each pair's runs in a round")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the ONNX files here (default: a temp dir)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke check: structures {','.join(QUICK_STRUCTURES)}, 2 rounds × 10 runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.structures = ",".join(QUICK_STRUCTURES)
        args.rounds, args.runs, args.warmup = 2, 10, 2
        if args.json is None:
            args.json = RUNS_DIR / f"{NAME}.quick.json"
    args.structure_list = [s for s in args.structures.split(",") if s]
    args.precision_list = [p for p in args.precisions.split(",") if p]
    args.batch_list = [int(b) for b in args.batches.split(",") if b]
    bad = [s for s in args.structure_list if s not in STRUCTURES]
    if bad:
        ap.error(f"unknown structure(s) {bad}; known: {list(STRUCTURES)}")
    if BASELINE[0] not in args.structure_list or BASELINE[1] not in args.precision_list:
        ap.error("the baseline dense fp32 must be among the structures and precisions")
    return args


def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = environment()
    print(header(env))
    print(f"# settings: d_model={D_MODEL} hidden={HIDDEN} classes={N_CLASSES} structures={args.structure_list} "
          f"precisions={args.precision_list} batches={args.batch_list} rounds={args.rounds} runs={args.runs} "
          f"warmup={args.warmup}", flush=True)
    t_start = time.perf_counter()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1024, D_MODEL)).astype(np.float32)  # stats + int8 calibration (cpu-ort feeds N(0,1))
    x_check = rng.standard_normal((64, D_MODEL)).astype(np.float32)
    tmp = tempfile.TemporaryDirectory(prefix="hwnas-ffn-") if args.workdir is None else None
    workdir = Path(tmp.name) if tmp else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    profiles = analytical_profiles()

    structures: dict[str, dict[str, Any]] = {}
    variants: dict[str, dict[str, Any]] = {}  # "structure/precision" → record
    files: dict[str, Path] = {}
    for s in args.structure_list:
        values, desc = STRUCTURES[s]
        model = build({**values, "quant": ["fp32"] * values["depth"], "activation": "relu"}, x, N_CLASSES)
        ffn_params = sum(p.numel() for layer in model.layers for p in layer.parameters())
        total_params = sum(p.numel() for p in model.parameters())
        rec: dict[str, Any] = {"description": desc, "config": values, "ffn_params": ffn_params,
                               "total_params": total_params}
        moe = [layer for layer in model.layers if hasattr(layer, "experts") and hasattr(layer, "costs")]
        if moe:
            import torch

            c = moe[0].costs(1)
            rec["moe"] = {"dense_equivalent_macs_per_row": c["dense_equivalent_macs"],
                          "active_macs_per_row": c["active_macs"], "router_macs_per_row": c["router_macs_per_token"]}
            feed = hwnas_inputs(256)
            with torch.no_grad():
                top_i, _ = moe[0].route(model.pre(torch.from_numpy(feed)))
            load = np.bincount(top_i.flatten().numpy(), minlength=moe[0].experts)
            rec["moe"]["rows_per_expert_at_batch_256"] = load.tolist()
        structures[s] = rec
        for prec in args.precision_list:
            key = f"{s}/{prec}"
            path = workdir / f"{s}.{prec}.onnx"
            cfg = {**values, "quant": [prec] * values["depth"], "activation": "relu"}
            t0 = time.perf_counter()
            try:
                lower(build(cfg, x, N_CLASSES), D_MODEL, path, x[:512])
            except Exception as exc:  # noqa: BLE001 - a precision a structure cannot deploy is a result
                variants[key] = {"structure": s, "precision": prec, "deployable": False,
                                 "reason": f"{type(exc).__name__}: {exc}"[:300]}
                print(f"# {key}: not deployable: {variants[key]['reason']}", flush=True)
                continue
            variants[key] = {"structure": s, "precision": prec, "deployable": True,
                             "file_mb": os.path.getsize(path) / 1e6, "lower_s": time.perf_counter() - t0}
            files[key] = path
        base_path = files.get(f"{s}/fp32")
        g = graph_macs(base_path or next(p for k, p in files.items() if k.startswith(s + "/")))
        rec["graph_macs_per_row"] = g["macs"]
        # graph_costs prices MoE experts at their expected routed rows: the graph's MACs are the active ones
        rec["dense_equivalent_macs_per_row"] = (g["macs"] - rec["moe"]["active_macs_per_row"]
                                                + rec["moe"]["dense_equivalent_macs_per_row"]) if moe else g["macs"]
        if base_path:
            ref = scores(base_path, x_check)
            for prec in args.precision_list:
                key = f"{s}/{prec}"
                if key in files:
                    variants[key]["rel_rms_vs_fp32"] = rel_rms(scores(files[key], x_check), ref)
        print(f"# lowered {s} ({time.perf_counter() - t_start:.0f} s elapsed)", flush=True)

    t_pred = time.perf_counter()
    for key, path in files.items():
        variants[key]["predicted"] = predict(path, profiles, args.batch_list)
    pred_s = time.perf_counter() - t_pred
    print(f"# predicted {len(files)} files × {len(profiles)} profiles × {len(args.batch_list)} batches in "
          f"{pred_s:.0f} s; measuring ...", flush=True)

    t_meas = time.perf_counter()
    measured = measure_interleaved(files, args.batch_list, args.rounds, args.runs, args.warmup,
                                   log=lambda m: print(m, flush=True))
    meas_s = time.perf_counter() - t_meas
    base_key = "/".join(BASELINE)
    for key in files:
        variants[key]["measured"] = {}
        for b in args.batch_list:
            m = dict(measured[(key, b)])
            m.update(paired_ratio(m, measured[(base_key, b)]))
            variants[key]["measured"][b] = m
            for name in profiles:
                p = variants[key]["predicted"][name][b]
                pb = variants[base_key]["predicted"][name][b]
                p["ratio"] = p["ms"] / pb["ms"] if p.get("ms") and pb.get("ms") else None

    text = report(args, structures, variants, profiles)
    print()
    print(text)
    payload = {
        "benchmark": NAME, **env,
        "settings": {"d_model": D_MODEL, "hidden": HIDDEN, "n_classes": N_CLASSES,
                     "structures": args.structure_list, "precisions": args.precision_list,
                     "batches": args.batch_list, "rounds": args.rounds, "runs": args.runs, "warmup": args.warmup,
                     "baseline": base_key, "faster_threshold": FASTER, "profiles": profiles},
        "notes": [
            "Model: 512 raw features -> FFN block (structure below) -> dense fp32 output layer 512->10; "
            "untrained weights (torch.manual_seed(0)); the hidden layers' precision is per layer (quant list), "
            "so the output layer stays fp32.",
            "Lowering = hwnas.lowering.lower: bake -> export_onnx -> deploy(int8 QDQ / int4 MatMulNBits / "
            "fp16) -> verify. int8 calibrated on 512 N(0,1) rows.",
            "Measured: cpu-ort session settings (1 thread, optimization all) and inputs; rounds in random order; "
            "median and IQR over all rounds' runs; ratio = median / dense-fp32 median at the same batch; "
            "round_min/max = spread of the per-round (paired) ratios.",
            "graph_macs_per_row: graph_costs of the lowered graph at batch 1; for MoE graph_costs prices each expert at "
            "its expected routed rows (balanced top-k: N*k/E), i.e. the active MACs; "
            "dense_equivalent_macs_per_row (every expert on every row) uses MixtureOfExperts.costs.",
            "Predicted ratios are to the same profile's dense-fp32 prediction at the same batch.",
        ],
        "timing_s": {"total": time.perf_counter() - t_start, "predict": pred_s, "measure": meas_s},
        "loadavg_at_end": loadavg(),
        "structures": structures, "variants": variants, "report": text,
    }
    path = write_json(NAME, payload, args.json)
    print(f"\nwrote {path} ({time.perf_counter() - t_start:.0f} s)")
    if tmp:
        tmp.cleanup()


def hwnas_inputs(batch: int) -> np.ndarray:
    """The input cpu-ort feeds at this batch (random normal, seed 0)."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, D_MODEL)).astype(np.float32)


def report(args: argparse.Namespace, structures: Mapping[str, Any], variants: Mapping[str, Any],
           profiles: Sequence[str]) -> str:
    lines = [f"FFN block d_model {D_MODEL} → hidden {HIDDEN} → {D_MODEL}, then dense fp32 512→{N_CLASSES}; "
             "untrained weights"]
    rows = []
    for s, r in structures.items():
        moe = r.get("moe")
        rows.append([s, r["description"], f"{r['ffn_params'] / 1e6:.3f}", f"{r['graph_macs_per_row'] / 1e6:.3f}",
                     f"{r['dense_equivalent_macs_per_row'] / 1e6:.3f}",
                     "-" if not moe else "/".join(map(str, moe["rows_per_expert_at_batch_256"]))])
    lines.append(table(["structure", "shape", "FFN params M", "graph MACs/row M", "dense-equiv MACs/row M",
                        "MoE rows per expert (top-k slots, batch 256)"], rows, "llrrrl"))
    lines.append("graph MACs = graph_costs of the lowered graph, what the analytical profiles price (for MoE: router + "
                 "each expert at its expected routed rows N·k/E = the active MACs); dense-equivalent = every expert "
                 "on every row (MixtureOfExperts.costs).")
    lines.append("")
    rows = []
    for key, v in variants.items():
        if not v["deployable"]:
            rows.append([v["structure"], v["precision"], "no", "-", "-", v["reason"][:70]])
        else:
            rows.append([v["structure"], v["precision"], "yes", f"{v['file_mb']:.2f}",
                         fnum(v.get("rel_rms_vs_fp32"), 3), ""])
    lines.append("Lowered files (rel. RMS error of the class scores vs the fp32 file on 64 N(0,1) rows)")
    lines.append(table(["structure", "prec", "deployable", "file MB", "rel err", "why not"], rows, "llllrl"))
    base_key = "/".join(BASELINE)
    for b in args.batch_list:
        lines.append("")
        bm = variants[base_key]["measured"][b]
        lines.append(f"Batch {b}: measured cpu-ort (median of {bm['n']} runs, IQR) and predicted latency; "
                     f"ratio = to dense fp32 (measured {bm['median_ms']:.4g} ms)")
        rows = []
        for key, v in variants.items():
            if not v["deployable"]:
                continue
            m = v["measured"][b]
            row = [v["structure"], v["precision"], f"{m['median_ms']:.4g}", f"{m['iqr_ms']:.2g}",
                   f"{m['ratio']:.2f}", f"{m['round_min']:.2f}-{m['round_max']:.2f}"]
            host = v["predicted"].get("cpu-host-model", {}).get(b, {})
            for name in SHOWN:
                p = v["predicted"].get(name, {}).get(b, {})
                row += [fnum(p.get("ms"), 3), _fmt_ratio(p.get("ratio"))]
                if name == "cpu-host-model":
                    row.append(_fmt_ratio(host["ms"] / m["median_ms"]) if host.get("ms") else "-")
            rows.append(row)
        heads = ["structure", "prec", "meas ms", "IQR", "ratio", "rounds"]
        for name in SHOWN:
            short = {"cpu-host-model": "host", "gpu-a100": "A100", "gpu-t4": "T4", "mobile-cortex-a76": "A76"}[name]
            heads += [f"{short} ms", "ratio"] + (["host/meas"] if name == "cpu-host-model" else [])
        lines.append(table(heads, rows, "ll" + "r" * (len(heads) - 2)))
    lines.append("")
    lines.append("Summary: measured ratio to dense fp32 on this CPU (cpu-ort, 1 thread) at each batch, and what "
                 "cpu-host-model predicts; F = really faster (ratio < 0.9 and every round's paired ratio < 1), "
                 "= within 0.9-1.11, S = slower (> 1.11)")
    rows = []
    for key, v in variants.items():
        if not v["deployable"] or key == base_key:
            continue
        row = [key]
        for b in args.batch_list:
            m = v["measured"][b]
            verdict = ("F" if m["ratio"] < FASTER and m["round_max"] < 1.0
                       else "S" if m["ratio"] > 1.0 / FASTER else "=")
            row += [f"{m['ratio']:.2f} {verdict}",
                    _fmt_ratio(v["predicted"].get("cpu-host-model", {}).get(b, {}).get("ratio"))]
        rows.append(row)
    heads = ["variant"]
    for b in args.batch_list:
        heads += [f"b{b} meas", f"b{b} host"]
    lines.append(table(heads, rows))
    for b in args.batch_list:
        fast = [k for k, v in variants.items() if v["deployable"] and k != base_key
                and v["measured"][b]["ratio"] < FASTER and v["measured"][b]["round_max"] < 1.0]
        lines.append(f"really faster at batch {b}: {', '.join(fast) or 'none'}")
    lines.append("")
    lines.append("Where the analytical CPU model and the measurement disagree on 'faster' (ratio < 0.9):")
    rows = []
    for b in args.batch_list:
        for key, v in variants.items():
            if not v["deployable"] or key == base_key:
                continue
            m = v["measured"][b]["ratio"]
            p = v["predicted"].get("cpu-host-model", {}).get(b, {}).get("ratio")
            if p is not None and (m < FASTER) != (p < FASTER):
                rows.append([b, key, f"{m:.2f}", f"{p:.2f}"])
    lines.append(table(["batch", "variant", "measured ratio", "cpu-host-model ratio"], rows) if rows else "(none)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
