"""Search efficiency of Optuna samplers on a hwnas search: hypervolume of the feasible Pareto front vs trials.

For each seed, and for each sampler side by side (so that every sampler sees the same host state and the same
ONNX Runtime measurement noise), one ``hwnas.api.search`` runs in this process (sequentially) into its
own fresh out folder. Afterwards, for each checkpoint N, the trials numbered < N with status ``ok`` give loss
vectors (1 - val accuracy, cost_1, cost_2, ...) and their hypervolume (``hwnas.engine.pareto.hypervolume``,
Optuna's exact WFG) is taken against ONE reference point common to all samplers and seeds: error 1.0 and
``--ref-factor`` (1.1) x the maximum of each cost over every ok trial of every run. Normalised HV divides by the
volume of the box [0, ref]. Dominated points do not change a hypervolume, so all ok points are passed.

Prints the mean (sample std, ddof=1) over seeds per sampler and checkpoint, the ratios of each sampler's mean
to random's at the last checkpoint (target >= 1.15x), and the per-run details; writes
``benchmarks/results/search_efficiency.json`` (or ``--json``).

Run: ``python benchmarks/search_efficiency.py`` (full) or ``--quick`` (smoke check, < 2 min).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNS_DIR, environment, fnum, header, loadavg, table, trial_record, write_json  # noqa: E402

NAME = "search_efficiency"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samplers", default="nsga2,tpe,random", help="comma-separated (default nsga2,tpe,random)")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated search seeds (default 0,1,2,3,4)")
    ap.add_argument("--trials", type=int, default=100, help="trials per search (default 100)")
    ap.add_argument("--checkpoints", default="25,50,100", help="trial counts at which HV is reported")
    ap.add_argument("--epochs", type=int, default=30, help="max training epochs per candidate (default 30)")
    ap.add_argument("--dataset", default="breast_cancer")
    ap.add_argument("--space", default="mlp_tabular")
    ap.add_argument("--profiles", default="cpu-ort,printed-egfet", help="comma-separated profile names")
    ap.add_argument("--population-size", type=int, default=20, help="NSGA-II population (hwnas default 20)")
    ap.add_argument("--ref-factor", type=float, default=1.1, help="reference = factor x max cost over all runs")
    ap.add_argument("--baseline", default="random", help="sampler the ratios are taken against")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch.set_num_threads for training (default 1: faster and steadier for these tiny "
                         "models on a shared 2-core host; 0 leaves torch's default)")
    ap.add_argument("--runs-dir", type=Path, default=RUNS_DIR / NAME, help="where each search's out folder goes")
    ap.add_argument("--json", type=Path, default=None, help="output JSON path (default benchmarks/results/)")
    ap.add_argument("--quick", action="store_true", help="smoke check: 1 seed, 10 trials, 5 epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.trials, args.checkpoints, args.epochs = "0", 10, "5,10", 5
        if args.json is None:
            args.json = RUNS_DIR / f"{NAME}.quick.json"
        args.runs_dir = args.runs_dir.with_name(args.runs_dir.name + "-quick")
    args.sampler_list = [s.strip() for s in args.samplers.split(",") if s.strip()]
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.profile_list = [s.strip() for s in args.profiles.split(",") if s.strip()]
    args.checkpoint_list = sorted({int(c) for c in args.checkpoints.split(",") if c.strip()})
    if not args.checkpoint_list or any(c > args.trials or c < 1 for c in args.checkpoint_list):
        ap.error(f"checkpoints must lie in 1..{args.trials}")
    if args.baseline not in args.sampler_list:
        ap.error(f"--baseline {args.baseline} is not among --samplers")
    return args


def run_one(args: argparse.Namespace, sampler: str, seed: int) -> dict[str, Any]:
    """One search into a fresh folder; returns the per-trial records the analysis needs."""
    from hwnas.api import search

    out = args.runs_dir / f"{sampler}-seed{seed}"
    if out.exists():
        shutil.rmtree(out)  # a leftover study.db would make search() resume instead of starting afresh
    start = time.perf_counter()
    res = search(args.space, args.dataset, args.profile_list, trials=args.trials, sampler=sampler, seed=seed,
                 out=out, epochs=args.epochs, population_size=args.population_size, progress=False)
    wall = time.perf_counter() - start
    study = res.study
    trials = []
    for t in study.get_trials(deepcopy=False):
        rec = trial_record(t)
        trials.append({
            "number": t.number,
            "state": t.state.name,
            "status": rec.get("status"),
            "reused_from": rec.get("reused_from"),
            "values": list(t.values) if t.values is not None else None,
        })
    return {"sampler": sampler, "seed": seed, "out": str(out), "wall_s": wall,
            "metric_names": list(study.metric_names or []), "n_pareto_reported": len(res.pareto),
            "trials": trials}


def evaluated(run: dict[str, Any], n: int | None = None) -> list[dict[str, Any]]:
    """The first n evaluated architectures (the search budget: invalid and reused proposals do not count)."""
    out = [t for t in sorted(run["trials"], key=lambda t: t["number"])
           if t["status"] in ("ok", "infeasible", "failed") and t["reused_from"] is None]
    return out if n is None else out[:n]


def losses(run: dict[str, Any], n: int | None = None) -> np.ndarray:
    """Loss vectors (1 - accuracy, costs...) of the feasible trained ones among the first n evaluated."""
    pts = [[1.0 - t["values"][0], *t["values"][1:]] for t in evaluated(run, n)
           if t["status"] == "ok" and t["values"] is not None]
    return np.array(pts, dtype=float).reshape(len(pts), len(run["metric_names"]) if not pts else len(pts[0]))


def hv(points: np.ndarray, ref: np.ndarray, dims: list[int] | None = None) -> float:
    from hwnas.engine.pareto import hypervolume

    if len(points) == 0:
        return 0.0
    if dims is not None:
        points, ref = points[:, dims], ref[dims]
    return hypervolume(points, ref)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def analyse(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    all_pts = np.vstack([p for r in runs if len(p := losses(r))])
    n_obj = all_pts.shape[1]
    ref = np.array([1.0, *(args.ref_factor * all_pts[:, 1:].max(axis=0))])
    box = float(np.prod(ref))
    names = runs[0]["metric_names"] or [f"obj{i}" for i in range(n_obj)]
    # Supplementary: HV over (error, each single cost), to see which objective drives the differences.
    pairs = {f"error+{names[i]}": [0, i] for i in range(1, n_obj)} if n_obj > 2 else {}
    # Supplementary: every objective scaled to [0, 1] between its min and max over all runs (error linear,
    # costs in log10, as they span decades), reference 1.1 in each; divided by the box volume 1.1^k.
    lo = np.array([all_pts[:, 0].min(), *np.log10(all_pts[:, 1:].min(axis=0))])
    hi = np.array([all_pts[:, 0].max(), *np.log10(all_pts[:, 1:].max(axis=0))])
    span = np.where(hi > lo, hi - lo, 1.0)

    def scaled(pts: np.ndarray) -> np.ndarray:
        if len(pts) == 0:
            return pts
        z = np.column_stack([pts[:, 0], np.log10(pts[:, 1:])])
        return (z - lo) / span

    ref_s = np.full(n_obj, 1.1)
    for r in runs:
        r["hv"], r["hv_norm"], r["hv_pairs_norm"], r["hv_logscaled"] = {}, {}, {}, {}
        for c in args.checkpoint_list:
            pts = losses(r, c)
            r["hv"][c] = hv(pts, ref)
            r["hv_norm"][c] = r["hv"][c] / box
            r["hv_logscaled"][c] = hv(scaled(pts), ref_s) / float(np.prod(ref_s))
            r["hv_pairs_norm"][c] = {k: hv(pts, ref, d) / float(np.prod(ref[d])) for k, d in pairs.items()}
        ok = [t for t in r["trials"] if t["status"] == "ok"]
        r["counts"] = {s: sum(t["status"] == s for t in r["trials"]) for s in ("ok", "infeasible", "invalid", "failed")}
        r["counts"]["reused"] = sum(t["reused_from"] is not None for t in r["trials"])
        r["counts"]["total"] = len(r["trials"])
        r["best_accuracy"] = max((t["values"][0] for t in ok), default=None)
    summary: dict[str, Any] = {}
    for s in args.sampler_list:
        mine = [r for r in runs if r["sampler"] == s]
        summary[s] = {}
        for c in args.checkpoint_list:
            m, sd = mean_std([r["hv"][c] for r in mine])
            mn, sdn = mean_std([r["hv_norm"][c] for r in mine])
            pair_means = {k: statistics.fmean(r["hv_pairs_norm"][c][k] for r in mine) for k in pairs}
            ml, sdl = mean_std([r["hv_logscaled"][c] for r in mine])
            summary[s][c] = {"hv_mean": m, "hv_std": sd, "hv_norm_mean": mn, "hv_norm_std": sdn,
                             "hv_logscaled_mean": ml, "hv_logscaled_std": sdl,
                             "hv_norm_per_seed": {r["seed"]: r["hv_norm"][c] for r in mine},
                             "pairs_norm_mean": pair_means}
    last = args.checkpoint_list[-1]
    base = summary[args.baseline][last]["hv_mean"]
    ratios = {}
    for s in args.sampler_list:
        if s == args.baseline:
            continue
        per_seed = {}
        for seed in args.seed_list:
            a = next((r["hv"][last] for r in runs if r["sampler"] == s and r["seed"] == seed), None)
            b = next((r["hv"][last] for r in runs if r["sampler"] == args.baseline and r["seed"] == seed), None)
            per_seed[seed] = a / b if a is not None and b else None
        ratios[s] = {"ratio_of_means": summary[s][last]["hv_mean"] / base if base else None,
                     "per_seed_ratio": per_seed, "target": 1.15,
                     "meets_target": bool(base and summary[s][last]["hv_mean"] / base >= 1.15),
                     "logscaled_ratio_of_means": (summary[s][last]["hv_logscaled_mean"]
                                                  / summary[args.baseline][last]["hv_logscaled_mean"]
                                                  if summary[args.baseline][last]["hv_logscaled_mean"] else None)}
    # Upper bound of any ratio: the HV of the union of every run's ok points (the best front known here).
    union = {"hv": hv(all_pts, ref), "hv_logscaled": hv(scaled(all_pts), ref_s) / float(np.prod(ref_s))}
    union["hv_norm"] = union["hv"] / box
    union["bound_ratio_to_baseline"] = union["hv"] / base if base else None
    bl = summary[args.baseline][last]["hv_logscaled_mean"]
    union["bound_ratio_to_baseline_logscaled"] = union["hv_logscaled"] / bl if bl else None
    return {"union_of_all_runs": union,
            "logscaled_bounds": {"min": lo.tolist(), "max": hi.tolist(),
                                 "note": "error linear, costs log10; reference 1.1 in scaled units"},
            "reference_point": dict(zip(["error", *names[1:]], ref.tolist())), "reference_box_volume": box,
            "objective_names": names, "summary": summary, "ratios_at_last_checkpoint": ratios,
            "ratios_checkpoint": last, "pairs": list(pairs)}


def report(args: argparse.Namespace, analysis: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    cps = args.checkpoint_list
    lines = ["Reference point (common to all runs): "
             + ", ".join(f"{k}={v:.4g}" for k, v in analysis["reference_point"].items())
             + f"; box volume {analysis['reference_box_volume']:.4g}", ""]
    lines.append("Normalised hypervolume (HV / box volume), mean ± std over seeds "
                 f"{args.seed_list} [raw HV mean in brackets]")
    rows = []
    for s in args.sampler_list:
        row = [s]
        for c in cps:
            d = analysis["summary"][s][c]
            row.append(f"{d['hv_norm_mean']:.4f} ± {d['hv_norm_std']:.4f} [{fnum(d['hv_mean'])}]")
        rows.append(row)
    lines.append(table(["sampler", *[f"HV@{c}" for c in cps]], rows))
    lines.append("")
    last = analysis["ratios_checkpoint"]
    rrows = []
    for s, d in analysis["ratios_at_last_checkpoint"].items():
        per = ", ".join(f"s{k}:{fnum(v, 3)}" for k, v in d["per_seed_ratio"].items())
        rrows.append([f"{s}/{args.baseline}", f"{d['ratio_of_means']:.3f}x", per,
                      "yes" if d["meets_target"] else "NO"])
    lines.append(f"Hypervolume ratio to {args.baseline} at {last} trials (ratio of seed means; target >= 1.15x)")
    lines.append(table(["ratio", "of means", "per seed", ">=1.15x"], rrows))
    u = analysis["union_of_all_runs"]
    lines.append(f"Best front known (union of all runs' ok points): normalised HV {u['hv_norm']:.4f}, i.e. at most "
                 f"{u['bound_ratio_to_baseline']:.3f}x the {args.baseline} mean at {last} trials "
                 "(an upper bound of any sampler's ratio under this reference)")
    lines.append("")
    lines.append("Supplementary: HV with each objective min-max scaled over all runs (error linear, costs log10), "
                 "reference 1.1, normalised; mean ± std over seeds")
    lrows = []
    for s in args.sampler_list:
        lrows.append([s, *[f"{analysis['summary'][s][c]['hv_logscaled_mean']:.4f} ± "
                           f"{analysis['summary'][s][c]['hv_logscaled_std']:.4f}" for c in cps]])
    for s, d in analysis["ratios_at_last_checkpoint"].items():
        lrows.append([f"{s}/{args.baseline}", *([""] * (len(cps) - 1)), f"{fnum(d['logscaled_ratio_of_means'], 4)}x"])
    lrows.append(["union (bound)", *([""] * (len(cps) - 1)), f"{u['hv_logscaled']:.4f} = "
                  f"{fnum(u['bound_ratio_to_baseline_logscaled'], 4)}x"])
    lines.append(table(["sampler", *[f"@{c}" for c in cps]], lrows))
    if analysis["pairs"]:
        lines.append("")
        lines.append("Supplementary: normalised 2-objective HV (error + one cost), mean over seeds")
        prow = []
        for s in args.sampler_list:
            for k in analysis["pairs"]:
                prow.append([s, k, *[f"{analysis['summary'][s][c]['pairs_norm_mean'][k]:.4f}" for c in cps]])
        lines.append(table(["sampler", "objectives", *[f"@{c}" for c in cps]], prow, "ll" + "r" * len(cps)))
    lines.append("")
    lines.append("Per run")
    prs = []
    for r in runs:
        c = r["counts"]
        prs.append([r["sampler"], r["seed"], f"{r['wall_s']:.0f}", c["ok"], c["invalid"], c["failed"],
                    c["infeasible"], c["reused"], r["n_pareto_reported"], fnum(r["best_accuracy"]),
                    *[f"{r['hv_norm'][cp]:.4f}" for cp in cps]])
    lines.append(table(["sampler", "seed", "wall s", "ok", "invalid", "failed", "infeas.", "reused", "pareto",
                        "best acc", *[f"nHV@{c}" for c in cps]], prs))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = environment()
    import torch

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    env["torch_threads"] = torch.get_num_threads()
    print(header(env))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                if k not in ("sampler_list", "seed_list", "profile_list", "checkpoint_list")}
    settings.update(samplers=args.sampler_list, seeds=args.seed_list, profiles=args.profile_list,
                    checkpoints=args.checkpoint_list)
    print(f"# settings: space={args.space} dataset={args.dataset} profiles={args.profile_list} "
          f"samplers={args.sampler_list} seeds={args.seed_list} trials={args.trials} epochs={args.epochs} "
          f"population={args.population_size} checkpoints={args.checkpoint_list} torch_threads={env['torch_threads']}")
    runs = []
    t0 = time.perf_counter()
    for seed in args.seed_list:  # samplers side by side within each seed
        for sampler in args.sampler_list:
            r = run_one(args, sampler, seed)
            runs.append(r)
            print(f"# {sampler:>6} seed {seed}: {len(r['trials'])} trials in {r['wall_s']:.1f} s "
                  f"(elapsed {time.perf_counter() - t0:.0f} s, load {loadavg()})", flush=True)
    analysis = analyse(args, runs)
    text = report(args, analysis, runs)
    print()
    print(text)
    payload = {"benchmark": NAME, **env, "settings": settings,
               "notes": [
                   "HV at N from the first N evaluated architectures (hwnas's --trials budget: proposals that break "
                   "a space constraint and re-proposed architectures are recorded but do not count; failed ones do).",
                   "Reference point common to all samplers/seeds: error 1.0, ref_factor x max cost over all runs.",
                   "Normalised HV = HV / prod(reference) (box from the origin to the reference).",
                   "With one seed, nsga2 (first generation of population_size trials), tpe (10 startup trials) "
                   "and random draw the same first configurations, so early checkpoints can coincide.",
                   "std is the sample std (ddof=1) over seeds; the data split also depends on the seed.",
                   "cpu-ort latencies are cached per (ONNX file hash, settings) within the process, so an "
                   "identical file in two runs gets the same measured latency.",
               ],
               "total_wall_s": time.perf_counter() - t0, "loadavg_at_end": loadavg(),
               **analysis, "runs": runs}
    path = write_json(NAME, payload, args.json)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
