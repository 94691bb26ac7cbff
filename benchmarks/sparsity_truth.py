"""Sparsity, measured and predicted: unstructured / 2:4 / block zeros vs. CPU latency, GPU predictions, printed area.

Two models, both hwnas MLPs lowered exactly as a search lowers a candidate (``ffn_variants.lower``: masks
multiplied in where ``GradualPruner.finalize`` leaves them, then bake → export → deploy → verify):

* **CPU/GPU**: the dense FFN block of ``ffn_variants.py`` — 512 raw features → 512→2048→512 (two dense hidden
  layers, ReLU) → dense fp32 output 512→10 — at fp32, fp16 and int8 (QDQ). The masks go on the two hidden
  weights (``model.prunable_layers()``), the output layer stays dense. Measured with ``cpu-ort``'s session
  settings (1 thread) at batch 1, 16 and 256, every (file, batch) pair side by side in random order per round
  (``ffn_variants.measure_interleaved``); predicted by every analytical profile (the tables show ``gpu-a100``,
  ``gpu-h100``, ``gpu-t4`` and ``cpu-host-model``). ONNX Runtime's CPU EP runs a dense MatMul whatever the
  zeros, so no CPU speed-up is expected; the GPU profiles give 2:4 weights ×2 on the sparse tensor cores of
  Ampere/Hopper for fp16/bf16/int8 only (none on the T4, none for fp32, nothing for unstructured or block).
* **Printed**: a cardio-sized 21-8-3 MLP with the ``printed-egfet`` deployment (8-bit weights, 4-bit inputs;
  input statistics from cardio's training split), priced by ``printed-egfet`` (area, power, delay); zero
  weights cost no multiplier and no adder-tree input. The mask goes on the hidden layer (21×8), the 8×3 output
  layer stays dense. Untrained weights, ``--printed-seeds`` seeds: medians and ratios per seed.

Patterns: none; unstructured 50/70/90% (magnitude, per tensor, ``unstructured_mask``); 2:4 along the reduction
axis (``nm_mask``, 50%); 4×4 blocks 50/70/90% (smallest L1 tiles, ``block_mask``). Untrained weights: latency
does not depend on the values; printed area does (CSD digits), hence the seeds.

Run: ``python benchmarks/sparsity_truth.py [--quick]``; JSON to ``benchmarks/results/sparsity_truth.json``
(``--quick``: ``benchmarks/results/runs/sparsity_truth.quick.json``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNS_DIR, environment, fnum, header, loadavg, table, write_json  # noqa: E402
from ffn_variants import (D_MODEL, HIDDEN, N_CLASSES, analytical_profiles, build, lower,  # noqa: E402
                          measure_interleaved, paired_ratio, predict)

NAME = "sparsity_truth"
#: name → (kind, sparsity); kind in none / unstructured / nm / block
PATTERNS: dict[str, tuple[str, float]] = {
    "dense": ("none", 0.0),
    "unstr-50": ("unstructured", 0.5),
    "unstr-70": ("unstructured", 0.7),
    "unstr-90": ("unstructured", 0.9),
    "2:4": ("nm", 0.5),
    "block4x4-50": ("block", 0.5),
    "block4x4-70": ("block", 0.7),
    "block4x4-90": ("block", 0.9),
}
QUICK_PATTERNS = ("dense", "unstr-70", "2:4", "block4x4-70")
PRECISIONS = ("fp32", "fp16", "int8")
BATCHES = (1, 16, 256)
SHOWN = ("gpu-a100", "gpu-h100", "gpu-t4", "cpu-host-model")
SHORT = {"gpu-a100": "A100", "gpu-h100": "H100", "gpu-t4": "T4", "cpu-host-model": "host"}
BLOCK = (4, 4)
PRINTED_TOPOLOGY = (21, 8, 3)


def masker(kind: str, sparsity: float) -> Callable[[Any], None] | None:
    """Multiply the pattern's mask into every weight of ``model.prunable_layers()`` (in place)."""
    from hwnas.models.sparsity import block_mask, nm_mask, unstructured_mask

    if kind == "none":
        return None

    def apply(model: Any) -> None:
        for group in model.prunable_layers():
            for layer in group:
                for w in layer.weights():
                    if kind == "unstructured":
                        mask = unstructured_mask(w, sparsity)
                    elif kind == "nm":
                        mask = nm_mask(w, 2, 4)
                    else:
                        mask = block_mask(w, sparsity, BLOCK)
                    w.mul_(mask)

    return apply


def ffn_weight_stats(path: Path) -> dict[str, Any]:
    """Zero fraction and 2:4 flag of each MatMul weight, as graph_costs (and so every analytical profile) sees it."""
    from hwnas.graph import graph_costs

    mm = [c for c in graph_costs(path, 1) if c.macs > 0]
    return {"matmuls": [{"op": c.op_type, "dtype": c.dtype, "k": c.dims.get("k"), "n": c.dims.get("n"),
                         "weight_sparsity": c.weight_sparsity, "sparse_2_4": c.sparse_2_4} for c in mm],
            "sparse_2_4_ops": sum(c.sparse_2_4 for c in mm), "matmul_ops": len(mm)}


def printed_part(seeds: list[int], patterns: list[str]) -> dict[str, Any]:
    import hwnas.profiles
    from hwnas.data import load_dataset

    data = load_dataset("cardio", seed=0)
    x = data.X_train.astype(np.float32)
    prof = hwnas.profiles.get("printed-egfet")
    fp = prof.fixed_point()
    n_in, width, n_out = PRINTED_TOPOLOGY
    assert n_in == data.n_features and n_out == data.n_classes
    out: dict[str, Any] = {"topology": "-".join(map(str, PRINTED_TOPOLOGY)), "weight_bits": fp.weight_bits,
                           "input_bits": fp.input_bits, "seeds": seeds, "patterns": {}}
    with tempfile.TemporaryDirectory(prefix="hwnas-sparsity-printed-") as tmp:
        for name in patterns:
            kind, s = PATTERNS[name]
            rows = []
            for seed in seeds:
                model = build({"depth": 1, "width": [width], "activation": "relu"}, x, n_out, seed=seed,
                              fixed_point=fp)
                path = lower(model, n_in, Path(tmp) / f"{name}.{seed}.onnx", x[:512], masker(kind, s))
                hidden = model.layers[0].weights()[0].detach()
                r = prof.profile(path)
                rows.append({"seed": seed, "hidden_zero_fraction": float((hidden == 0).float().mean()),
                             "area_cm2": r["area_cm2"].value, "power_mw": r["power_mw"].value,
                             "delay_ms": r["delay_ms"].value,
                             "nonzero_weights": r["area_cm2"].details["counts"]["nonzero_weights"],
                             "fa_bits": r["area_cm2"].details["counts"]["fa_bits"]})
            out["patterns"][name] = {"kind": kind, "target": s, "per_seed": rows}
    dense = {r["seed"]: r for r in out["patterns"]["dense"]["per_seed"]}
    for name, rec in out["patterns"].items():
        per = rec["per_seed"]
        rec["median"] = {k: float(np.median([r[k] for r in per])) for k in
                         ("hidden_zero_fraction", "area_cm2", "power_mw", "delay_ms", "nonzero_weights", "fa_bits")}
        for k in ("area_cm2", "power_mw", "delay_ms"):
            ratios = [r[k] / dense[r["seed"]][k] for r in per]
            rec[f"{k}_ratio"] = {"median": float(np.median(ratios)), "min": float(min(ratios)),
                                 "max": float(max(ratios))}
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patterns", default=",".join(PATTERNS))
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--predict-batches", default="8192",
                    help="extra batch sizes priced by the analytical profiles only (not measured): where the "
                         "GEMMs are large enough for the sparse tensor cores to matter")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--printed-seeds", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke check: patterns {','.join(QUICK_PATTERNS)}, 2 rounds × 10 runs, 3 printed seeds")
    args = ap.parse_args(argv)
    if args.quick:
        args.patterns = ",".join(QUICK_PATTERNS)
        args.rounds, args.runs, args.warmup, args.printed_seeds = 2, 10, 2, 3
        if args.json is None:
            args.json = RUNS_DIR / f"{NAME}.quick.json"
    args.pattern_list = [p for p in args.patterns.split(",") if p]
    args.precision_list = [p for p in args.precisions.split(",") if p]
    args.batch_list = [int(b) for b in args.batches.split(",") if b]
    args.extra_batches = [int(b) for b in args.predict_batches.split(",") if b and int(b) not in args.batch_list]
    bad = [p for p in args.pattern_list if p not in PATTERNS]
    if bad or "dense" not in args.pattern_list:
        ap.error(f"patterns must include 'dense' and come from {list(PATTERNS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = environment()
    print(header(env))
    print(f"# settings: FFN {D_MODEL}-{HIDDEN}-{D_MODEL}-{N_CLASSES} patterns={args.pattern_list} "
          f"precisions={args.precision_list} batches={args.batch_list} rounds={args.rounds} runs={args.runs} "
          f"warmup={args.warmup}; printed {'-'.join(map(str, PRINTED_TOPOLOGY))} seeds={args.printed_seeds}",
          flush=True)
    t_start = time.perf_counter()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1024, D_MODEL)).astype(np.float32)
    profiles = analytical_profiles()
    variants: dict[str, dict[str, Any]] = {}
    files: dict[str, Path] = {}
    tmp = tempfile.TemporaryDirectory(prefix="hwnas-sparsity-")
    values = {"depth": 2, "width": [HIDDEN, D_MODEL], "ffn": "dense", "activation": "relu"}
    for name in args.pattern_list:
        kind, s = PATTERNS[name]
        for prec in args.precision_list:
            key = f"{name}/{prec}"
            path = Path(tmp.name) / f"{name.replace(':', 'of')}.{prec}.onnx"
            model = build({**values, "quant": [prec, prec]}, x, N_CLASSES)
            try:
                lower(model, D_MODEL, path, x[:512], masker(kind, s))
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                variants[key] = {"pattern": name, "precision": prec, "deployable": False,
                                 "reason": f"{type(exc).__name__}: {exc}"[:300]}
                print(f"# {key}: not deployable: {variants[key]['reason']}", flush=True)
                continue
            hidden = [w.detach() for group in model.prunable_layers() for layer in group for w in layer.weights()]
            zeros = float(sum(int((w == 0).sum()) for w in hidden) / sum(w.numel() for w in hidden))
            variants[key] = {"pattern": name, "kind": kind, "target": s, "precision": prec, "deployable": True,
                             "ffn_zero_fraction": zeros, "graph": ffn_weight_stats(path)}
            files[key] = path
        print(f"# lowered {name} ({time.perf_counter() - t_start:.0f} s elapsed)", flush=True)
    t0 = time.perf_counter()
    for key, path in files.items():
        variants[key]["predicted"] = predict(path, profiles, args.batch_list + args.extra_batches)
    print(f"# predicted in {time.perf_counter() - t0:.0f} s; measuring ...", flush=True)
    t0 = time.perf_counter()
    measured = measure_interleaved(files, args.batch_list, args.rounds, args.runs, args.warmup,
                                   log=lambda m: print(m, flush=True))
    meas_s = time.perf_counter() - t0
    tmp.cleanup()
    for key in files:
        v = variants[key]
        base = f"dense/{v['precision']}"
        v["measured"] = {}
        for b in args.batch_list:
            m = dict(measured[(key, b)])
            m.update(paired_ratio(m, measured[(base, b)]))
            m["ratio_to_dense_fp32"] = m["median_ms"] / measured[("dense/fp32", b)]["median_ms"] \
                if ("dense/fp32", b) in measured else None
            v["measured"][b] = m
        for b in args.batch_list + args.extra_batches:
            for name in profiles:
                p, pb = v["predicted"][name][b], variants[base]["predicted"][name][b]
                p["ratio"] = p["ms"] / pb["ms"] if p.get("ms") and pb.get("ms") else None
    t0 = time.perf_counter()
    printed = printed_part(list(range(args.printed_seeds)), args.pattern_list)
    printed_s = time.perf_counter() - t0
    text = report(args, variants, printed)
    print()
    print(text)
    payload = {
        "benchmark": NAME, **env,
        "settings": {"ffn": f"{D_MODEL}-{HIDDEN}-{D_MODEL}-{N_CLASSES}", "patterns": args.pattern_list,
                     "block": list(BLOCK), "precisions": args.precision_list, "batches": args.batch_list,
                     "predict_only_batches": args.extra_batches, "rounds": args.rounds, "runs": args.runs, "warmup": args.warmup, "profiles": profiles,
                     "printed_topology": list(PRINTED_TOPOLOGY), "printed_seeds": args.printed_seeds},
        "notes": [
            "Masks on the hidden (prunable) layers only; the output layer stays dense. Masks are multiplied in "
            "before bake, where GradualPruner.finalize leaves a trained model; then export -> deploy -> verify.",
            "Ratios are to the dense model of the same precision at the same batch (measured: ratio of medians; "
            "round_min/max: per-round paired ratios); ratio_to_dense_fp32 also given.",
            "graph.matmuls: zero fraction and 2:4 flag per MatMul as graph_costs sees them (what the analytical "
            "profiles price).",
            "Printed: untrained weights per seed, 8-bit weights / 4-bit inputs (printed-egfet deployment); "
            "medians over seeds; ratios per seed to the dense model of the same seed.",
        ],
        "timing_s": {"total": time.perf_counter() - t_start, "measure": meas_s, "printed": printed_s},
        "loadavg_at_end": loadavg(), "variants": variants, "printed": printed, "report": text,
    }
    path = write_json(NAME, payload, args.json)
    print(f"\nwrote {path} ({time.perf_counter() - t_start:.0f} s)")


def report(args: argparse.Namespace, variants: Mapping[str, Any], printed: Mapping[str, Any]) -> str:
    lines = [f"CPU/GPU model: {D_MODEL} features → {D_MODEL}→{HIDDEN}→{D_MODEL} (masked) → {N_CLASSES} (dense); "
             "ratio = to the dense model of the same precision, same batch"]
    for b in args.batch_list + args.extra_batches:
        lines.append("")
        lines.append(f"Batch {b}: measured cpu-ort (median, IQR, per-round ratio range) and predicted latency (ms)"
                     if b in args.batch_list else f"Batch {b}: predicted only (not measured)")
        rows = []
        for key, v in variants.items():
            if not v["deployable"]:
                rows.append([v["pattern"], v["precision"], "not deployable: " + v["reason"][:60]])
                continue
            m = v["measured"].get(b)
            g = v["graph"]
            row = [v["pattern"], v["precision"], f"{100 * v['ffn_zero_fraction']:.0f}%",
                   f"{g['sparse_2_4_ops']}/{g['matmul_ops']}"]
            row += ([f"{m['median_ms']:.4g}", f"{m['iqr_ms']:.2g}", f"{m['ratio']:.2f}",
                     f"{m['round_min']:.2f}-{m['round_max']:.2f}"] if m else ["-"] * 4)
            for name in SHOWN:
                p = v["predicted"].get(name, {}).get(b, {})
                row += [fnum(p.get("ms"), 3), "-" if p.get("ratio") is None else f"{p['ratio']:.2f}"]
            rows.append(row)
        heads = ["pattern", "prec", "zeros", "2:4 ops", "meas ms", "IQR", "ratio", "rounds"]
        for name in SHOWN:
            heads += [f"{SHORT[name]} ms", "ratio"]
        lines.append(table(heads, rows, "ll" + "r" * (len(heads) - 2)))
    lines.append("zeros = exact zeros in the two hidden weights; 2:4 ops = MatMuls graph_costs flags as 2:4 sparse / all "
                 "MatMuls (incl. the dense output layer)")
    lines.append("")
    lines.append(f"Printed ({printed['topology']}, {printed['weight_bits']}-bit weights, {printed['input_bits']}-bit "
                 f"inputs, printed-egfet), median over {len(printed['seeds'])} seeds of untrained weights; "
                 "ratio = per seed to the dense model, median [min-max]")
    rows = []
    for name, rec in printed["patterns"].items():
        md = rec["median"]
        rows.append([name, f"{100 * md['hidden_zero_fraction']:.0f}%", f"{md['nonzero_weights']:.0f}",
                     f"{md['area_cm2']:.1f}",
                     f"{rec['area_cm2_ratio']['median']:.2f} [{rec['area_cm2_ratio']['min']:.2f}-"
                     f"{rec['area_cm2_ratio']['max']:.2f}]",
                     f"{md['power_mw']:.1f}", f"{rec['power_mw_ratio']['median']:.2f}", f"{md['delay_ms']:.0f}",
                     f"{rec['delay_ms_ratio']['median']:.2f}"])
    lines.append(table(["pattern", "hidden zeros", "wired weights", "area cm2", "area ratio", "power mW",
                        "power ratio", "delay ms", "delay ratio"], rows))
    lines.append("")
    lines.append("Summary")
    keys = [k for k, v in variants.items() if v["deployable"] and v["pattern"] != "dense"]
    for b in (args.batch_list + args.extra_batches) if keys else []:
        if b in args.batch_list:
            r = [variants[k]["measured"][b]["ratio"] for k in keys]
            robust = [f"{k} {variants[k]['measured'][b]['ratio']:.2f}" for k in keys
                      if variants[k]["measured"][b]["ratio"] < 0.9 and variants[k]["measured"][b]["round_max"] < 1.0]
            lines.append(f"  CPU batch {b}: measured ratios of the sparse models to dense {min(r):.2f}-{max(r):.2f} "
                         f"(median {np.median(r):.2f}); below 0.9 with every round < 1: {', '.join(robust) or 'none'}")
        else:
            lines.append(f"  batch {b} (predicted only):")
        for name in ("gpu-a100", "gpu-h100", "gpu-t4"):
            faster = [f"{k} {variants[k]['predicted'][name][b]['ratio']:.2f}" for k in keys
                      if (variants[k]["predicted"][name][b].get("ratio") or 1.0) < 0.99]
            lines.append(f"    {name} predicts faster than dense: {', '.join(faster) or 'none'}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
