"""TVM (Relax + MetaSchedule, shared tuning database) vs ONNX Runtime on the models of an ``mlp_wide`` search.

1. One search on ``mlp_wide`` with two measured profiles side by side, ``cpu-ort`` and ``cpu-tvm``
   (tuned, ``--trials`` MetaSchedule trials per new workload, one tuning database for the whole search, in
   the search's folder): per candidate, in trial order, the workloads it has, how many the database already
   held (hit rate), the seconds spent tuning the new ones, and both latencies (batch 1) → Kendall tau.
2. For each Pareto model and each ``--batches`` size: ORT latency, TVM untuned (TVM's default schedules),
   TVM tuned (same database, extended with that batch's workloads) and the tuning seconds, in one run.

Targets: tuned TVM <= 1.0x ORT at batch >= 16; mean new tuning <= 30 s per candidate after the first few
(``--warm-after``); the hit rate over the search. Both runtimes use 1 thread.

Prints tables and writes ``benchmarks/results/tvm_vs_ort.json`` (or ``--json``).
Run: ``python benchmarks/tvm_vs_ort.py`` (50 candidates, 32 trials; hours on 2 cores) or scaled down, e.g.
``--candidates 12 --trials 8 --epochs 3`` (~6 min on 2 shared cores; ``--candidates 20 --trials 24 --epochs 10``:
~21 min). From the repository root: ``PYTHONPATH=. python benchmarks/tvm_vs_ort.py ...``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNS_DIR, environment, fnum, header, loadavg, table, write_json  # noqa: E402

NAME = "tvm_vs_ort"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", type=int, default=50, help="architectures the search evaluates (default 50)")
    ap.add_argument("--trials", type=int, default=32, help="MetaSchedule trials per new workload (default 32)")
    ap.add_argument("--batches", default="1,16,64", help="batch sizes for the Pareto models (default 1,16,64)")
    ap.add_argument("--epochs", type=int, default=10, help="training epochs per candidate (default 10)")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--space", default="mlp_wide")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=100, help="timed runs per measurement, both runtimes")
    ap.add_argument("--warm-after", type=int, default=3, help="candidates counted as 'the first few' (default 3)")
    ap.add_argument("--max-pareto", type=int, default=4, help="at most this many Pareto models in part 2")
    ap.add_argument("--runs-dir", type=Path, default=RUNS_DIR / NAME, help="the search's out folder goes here")
    ap.add_argument("--json", type=Path, default=None, help="output JSON path (default benchmarks/results/)")
    args = ap.parse_args(argv)
    args.batch_list = [int(b) for b in args.batches.split(",") if b.strip()]
    return args


def kendall(x: list[float], y: list[float]) -> float | None:
    from scipy.stats import kendalltau

    return float(kendalltau(x, y).statistic) if len(x) >= 3 else None


def search_part(args: argparse.Namespace) -> dict[str, Any]:
    """Part 1: the search, with cpu-ort and a tuned cpu-tvm sharing one database."""
    from hwnas.api import search
    from hwnas.engine.records import Status, read_arch, read_record

    out = args.runs_dir / "search"
    if out.exists():
        shutil.rmtree(out)  # a fresh study and a fresh (empty) tuning database
    sets = {"cpu-ort": {"repeats": args.repeats},
            "cpu-tvm": {"repeats": args.repeats, "tuning_trials": args.trials, "timeout_s": 3600}}
    start = time.perf_counter()
    res = search(args.space, args.dataset, ["cpu-ort", "cpu-tvm"], trials=args.candidates, epochs=args.epochs,
                 seed=args.seed, out=out, profile_overrides=sets, progress=False)
    wall = time.perf_counter() - start
    rows = []
    for t in sorted(res.study.get_trials(deepcopy=False), key=lambda t: t.number):
        rec = read_record(t)
        if rec is None or rec.reused_from is not None or "cpu-tvm" not in rec.costs:
            if rec is not None and rec.status == Status.FAILED:
                rows.append({"trial": t.number, "status": "failed", "reason": rec.reason})
            continue
        tvm, ort = rec.costs["cpu-tvm"]["latency_ms"], rec.costs["cpu-ort"]["latency_ms"]
        d = tvm.details
        arch = read_arch(t)
        rows.append({
            "trial": t.number, "status": rec.status.value, "arch": arch.to_dict() if arch else None,
            "ort_ms": ort.value, "tvm_tuned_ms": tvm.value, "label": d["label"],
            "workloads": d["workloads_total"], "already_tuned": d["workloads_already_tuned"],
            "newly_tuned": d["workloads_newly_tuned"], "failed": d["workloads_failed"], "tuning_s": d["tuning_s"],
        })
    return {"out": str(out), "wall_s": wall, "candidates": rows,
            "pareto": [{"trial": r["trial"], "file": str(out / r["file"])} for r in res.pareto]}


def pareto_part(args: argparse.Namespace, part1: dict[str, Any]) -> list[dict[str, Any]]:
    """Part 2: each Pareto model at each batch size: ORT, TVM untuned, TVM tuned (+ tuning seconds)."""
    from hwnas import profiles

    database = str(Path(part1["out"]) / "tvm_db")
    rows = []
    for batch in args.batch_list:
        ort = profiles.get("cpu-ort", {"batch_size": batch, "repeats": max(50, args.repeats)})
        untuned = profiles.get("cpu-tvm", {"batch_size": batch, "repeats": args.repeats, "tuning_trials": 0})
        tuned = profiles.get("cpu-tvm", {"batch_size": batch, "repeats": args.repeats, "tuning_trials": args.trials,
                                         "database": database, "timeout_s": 3600})
        for model in part1["pareto"][: args.max_pareto]:
            path = Path(model["file"])
            row: dict[str, Any] = {"trial": model["trial"], "batch": batch}
            try:
                row["ort_ms"] = ort.profile(path)["latency_ms"].value
                row["tvm_untuned_ms"] = untuned.profile(path)["latency_ms"].value
                start = time.perf_counter()
                m = tuned.profile(path)["latency_ms"]
                row.update(tvm_tuned_ms=m.value, tuning_s=m.details["tuning_s"], label=m.details["label"],
                           workloads=m.details["workloads_total"], already_tuned=m.details["workloads_already_tuned"],
                           newly_tuned=m.details["workloads_newly_tuned"], wall_s=time.perf_counter() - start)
            except Exception as exc:  # report and go on
                row["error"] = str(exc)[:500]
            rows.append(row)
            print(f"  trial {row['trial']} batch {batch}: {row}", file=sys.stderr, flush=True)
        for p in (untuned, tuned):
            p.worker().close()
    return rows


def summarise(args: argparse.Namespace, part1: dict[str, Any], part2: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [c for c in part1["candidates"] if "tvm_tuned_ms" in c]
    total = sum(c["workloads"] for c in ok)
    hits = sum(c["already_tuned"] for c in ok)
    warm = [c["tuning_s"] for c in ok[args.warm_after:]]
    ratios: dict[int, list[float]] = {}
    for r in part2:
        if "tvm_tuned_ms" in r:
            ratios.setdefault(r["batch"], []).append(r["tvm_tuned_ms"] / r["ort_ms"])
    median_ratio = {b: statistics.median(v) for b, v in ratios.items()}
    big = [v for b, v in median_ratio.items() if b >= 16]
    mean_warm = statistics.fmean(warm) if warm else None
    return {
        "candidates_measured": len(ok),
        "candidates_failed": len(part1["candidates"]) - len(ok),
        "workloads_total": total,
        "db_hit_rate": hits / total if total else None,
        "hit_rate_after_warm": (sum(c["already_tuned"] for c in ok[args.warm_after:])
                                / max(1, sum(c["workloads"] for c in ok[args.warm_after:]))),
        "tuning_s_first": [c["tuning_s"] for c in ok[: args.warm_after]],
        "mean_new_tuning_s_after_warm": mean_warm,
        "median_new_tuning_s_after_warm": statistics.median(warm) if warm else None,
        "kendall_tau_search_batch1": kendall([c["tvm_tuned_ms"] for c in ok], [c["ort_ms"] for c in ok]),
        "kendall_tau_pareto_all_batches": kendall([r["tvm_tuned_ms"] for r in part2 if "tvm_tuned_ms" in r],
                                                  [r["ort_ms"] for r in part2 if "tvm_tuned_ms" in r]),
        "median_tuned_over_ort_by_batch": median_ratio,
        "median_untuned_over_ort_by_batch": {
            b: statistics.median([r["tvm_untuned_ms"] / r["ort_ms"] for r in part2 if r["batch"] == b and "tvm_untuned_ms" in r])
            for b in ratios},
        "targets": {
            "tuned_le_1x_ort_at_batch_ge_16": (all(v <= 1.0 for v in big) if big else None),
            "mean_new_tuning_le_30s_after_warm": (mean_warm <= 30.0 if mean_warm is not None else None),
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment()
    print(header(env))
    print(f"# {args.space} on {args.dataset}: {args.candidates} candidates, {args.epochs} epochs, "
          f"{args.trials} MetaSchedule trials per new workload, batches {args.batch_list}, 1 thread", flush=True)
    start = time.perf_counter()
    part1 = search_part(args)
    print(f"\n## Search ({part1['wall_s']:.0f} s): per candidate, shared tuning database\n")
    print(table(["trial", "workloads", "hits", "new", "tuning s", "ORT ms", "TVM tuned ms", "label"],
                [[c["trial"], c.get("workloads", "-"), c.get("already_tuned", "-"), c.get("newly_tuned", "-"),
                  fnum(c.get("tuning_s")), fnum(c.get("ort_ms")), fnum(c.get("tvm_tuned_ms")),
                  c.get("label", c.get("status"))] for c in part1["candidates"]]))
    part2 = pareto_part(args, part1)
    print("\n## Pareto models: ORT vs TVM untuned vs TVM tuned\n")
    print(table(["trial", "batch", "ORT ms", "TVM untuned ms", "TVM tuned ms", "tuned/ORT", "tuning s", "new wl"],
                [[r["trial"], r["batch"], fnum(r.get("ort_ms")), fnum(r.get("tvm_untuned_ms")),
                  fnum(r.get("tvm_tuned_ms")),
                  fnum(r["tvm_tuned_ms"] / r["ort_ms"], 3) if "tvm_tuned_ms" in r else r.get("error", "-")[:40],
                  fnum(r.get("tuning_s")), r.get("newly_tuned", "-")] for r in part2]))
    summary = summarise(args, part1, part2)
    print("\n## Summary\n")
    for key, value in summary.items():
        print(f"{key}: {value}")
    payload = {"benchmark": NAME, "environment": env, "settings": {k: v for k, v in vars(args).items()},
               "search": part1, "pareto": part2, "summary": summary, "wall_s": time.perf_counter() - start,
               "loadavg_end": loadavg()}
    print(f"\nwrote {write_json(NAME, payload, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
