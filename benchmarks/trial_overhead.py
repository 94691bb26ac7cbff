"""Where the time of a hwnas search goes: per-trial phases, Optuna's share, and everything that is not training.

Runs one ``hwnas.api.search`` (default: mlp_tabular on breast_cancer, cpu-ort + printed-egfet, NSGA-II,
30 trials, hwnas' default 100 max epochs) into a fresh folder, then reads each trial's phase timings
(``timings`` in the trial's record: sample, build, train, export, profile, bookkeeping seconds) and its wall time
(``datetime_complete - datetime_start``). "optuna (in trial)" = trial wall time - sum of the phases: Optuna's
relative sampling (e.g. NSGA-II crossover, done when the trial is created), storage writes of attributes and
values, and anything else the phases do not cover. Outside the trials: the gaps between one trial's completion
and the next one's start (callbacks, sampler bookkeeping), the set-up before the first trial and the report
writing after the last.

Invalid (pruned by a space constraint) and reused (re-proposed architecture) trials have no phase timings: they
are skipped from the per-phase statistics and counted; their wall time is shown on its own row. Failed trials
with partial timings are skipped too and counted.

Prints medians, means and totals per phase and the share of everything-but-training (target <= 10% of trial
time); writes ``benchmarks/results/trial_overhead.json`` (or ``--json``).

Run: ``python benchmarks/trial_overhead.py`` (full) or ``--quick`` (smoke check).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNS_DIR, environment, header, loadavg, table, trial_record, write_json  # noqa: E402

NAME = "trial_overhead"
PHASES = ("sample", "build", "train", "export", "profile", "bookkeeping")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=30, help="trials in the search (default 30)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sampler", default="nsga2")
    ap.add_argument("--epochs", type=int, default=100, help="max training epochs (default 100, hwnas' default)")
    ap.add_argument("--dataset", default="breast_cancer")
    ap.add_argument("--space", default="mlp_tabular")
    ap.add_argument("--profiles", default="cpu-ort,printed-egfet", help="comma-separated profile names")
    ap.add_argument("--population-size", type=int, default=20)
    ap.add_argument("--target-share", type=float, default=0.10, help="target for the non-training share")
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="torch.set_num_threads before the search (default 0: leave torch's default, as hwnas does)")
    ap.add_argument("--runs-dir", type=Path, default=RUNS_DIR / NAME, help="the search's out folder")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="smoke check: 8 trials, 10 epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.trials, args.epochs = 8, 10
        if args.json is None:
            args.json = RUNS_DIR / f"{NAME}.quick.json"
        args.runs_dir = args.runs_dir.with_name(args.runs_dir.name + "-quick")
    args.profile_list = [p.strip() for p in args.profiles.split(",") if p.strip()]
    return args


def _values(trial: Any) -> dict[str, Any] | None:
    from hwnas.engine.records import read_arch

    arch = read_arch(trial)
    return arch.to_dict()["values"] if arch else None


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "median": float("nan"), "mean": float("nan"), "total": 0.0, "max": float("nan")}
    return {"n": len(values), "median": statistics.median(values), "mean": statistics.fmean(values),
            "total": sum(values), "max": max(values)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = environment()
    import torch

    from hwnas.api import search

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    env["torch_threads"] = torch.get_num_threads()
    print(header(env))
    print(f"# settings: space={args.space} dataset={args.dataset} profiles={args.profile_list} "
          f"sampler={args.sampler} seed={args.seed} trials={args.trials} epochs={args.epochs} "
          f"population={args.population_size} torch_threads={env['torch_threads']}")
    out = args.runs_dir
    if out.exists():
        shutil.rmtree(out)  # never resume a previous study
    started_at = dt.datetime.now()
    t0 = time.perf_counter()
    res = search(args.space, args.dataset, args.profile_list, trials=args.trials, sampler=args.sampler,
                 seed=args.seed, out=out, epochs=args.epochs, population_size=args.population_size,
                 progress=False)
    search_wall = time.perf_counter() - t0
    ended_at = dt.datetime.now()

    trials = sorted(res.study.get_trials(deepcopy=False), key=lambda t: t.number)
    rows: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    skipped_wall = 0.0
    for t in trials:
        rec = trial_record(t)
        wall = ((t.datetime_complete - t.datetime_start).total_seconds()
                if t.datetime_complete and t.datetime_start else None)
        timings = rec.get("timings") or {}
        status = rec.get("status")
        reason = None
        if rec.get("reused_from") is not None:
            reason = "reused"
        elif status == "invalid":
            reason = "invalid"
        elif status == "failed":
            reason = "failed"
        elif not timings:
            reason = f"no timings ({status})"
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            skipped_wall += wall or 0.0
            continue
        phases = {p: float(timings.get(p, 0.0)) for p in PHASES}
        extra = {k: float(v) for k, v in timings.items() if k not in PHASES}
        phases.update(extra)
        optuna_s = wall - sum(phases.values())
        rows.append({"number": t.number, "status": status, "wall": wall, "phases": phases, "optuna": optuna_s,
                     "epochs_run": rec.get("epochs_run"), "arch": _values(t)})

    phase_names = list(PHASES) + sorted({k for r in rows for k in r["phases"]} - set(PHASES))
    trial_wall_total = sum(r["wall"] for r in rows)
    per_phase = {p: _stats([r["phases"][p] for r in rows]) for p in phase_names}
    per_phase["optuna (in trial)"] = _stats([r["optuna"] for r in rows])
    per_phase["trial wall"] = _stats([r["wall"] for r in rows])

    # Outside the trials: set-up, gaps between consecutive trials, report writing.
    timed = [t for t in trials if t.datetime_start and t.datetime_complete]
    gaps = [(b.datetime_start - a.datetime_complete).total_seconds() for a, b in zip(timed, timed[1:])]
    setup = (timed[0].datetime_start - started_at).total_seconds() if timed else float("nan")
    teardown = (ended_at - timed[-1].datetime_complete).total_seconds() if timed else float("nan")

    train_total = per_phase["train"]["total"]
    share_trial = (trial_wall_total - train_total) / trial_wall_total if trial_wall_total else float("nan")
    share_search = (search_wall - train_total) / search_wall if search_wall else float("nan")
    optuna_share = per_phase["optuna (in trial)"]["total"] / trial_wall_total if trial_wall_total else float("nan")

    def ms(x: float) -> str:
        return f"{1000 * x:.1f}"

    trows = []
    for p in [*phase_names, "optuna (in trial)", "trial wall"]:
        s = per_phase[p]
        share = s["total"] / trial_wall_total if trial_wall_total else float("nan")
        trows.append([p, s["n"], ms(s["median"]), ms(s["mean"]), ms(s["max"]), f"{s['total']:.2f}",
                      f"{100 * share:.1f}%"])
    g = _stats(gaps)
    trows.append(["skipped trials (wall)", sum(skipped.values()), "", "", "", f"{skipped_wall:.2f}", ""])
    trows.append(["between trials (gaps)", g["n"], ms(g["median"]), ms(g["mean"]), ms(g["max"]),
                  f"{g['total']:.2f}", ""])
    trows.append(["set-up before trial 0", 1, "", "", "", f"{setup:.2f}", ""])
    trows.append(["after last trial", 1, "", "", "", f"{teardown:.2f}", ""])
    trows.append(["search() total", 1, "", "", "", f"{search_wall:.2f}", ""])

    print()
    print(f"Per-trial time over {len(rows)} measured trials of {len(trials)} "
          f"(skipped: {', '.join(f'{k} {v}' for k, v in sorted(skipped.items())) or 'none'}); "
          "ms unless stated; share = of the measured trials' wall time")
    print(table(["phase", "n", "median ms", "mean ms", "max ms", "total s", "share"], trows))
    print()
    target = args.target_share
    print(f"Everything but training, share of measured trial wall time: {100 * share_trial:.1f}% "
          f"(target <= {100 * target:.0f}%: {'met' if share_trial <= target else 'NOT met'})")
    print(f"Everything but training, share of search() wall time (incl. gaps, set-up, reports): "
          f"{100 * share_search:.1f}%")
    print(f"Optuna in-trial overhead: {100 * optuna_share:.1f}% of trial wall time; median per trial "
          f"{ms(per_phase['optuna (in trial)']['median'])} ms")
    epochs = [r["epochs_run"] for r in rows if r["epochs_run"] is not None]
    if epochs:
        print(f"Epochs run (early stopping, max {args.epochs}): median {statistics.median(epochs)}, "
              f"min {min(epochs)}, max {max(epochs)}")
    print()
    print("Slowest 5 measured trials")
    slow = sorted(rows, key=lambda r: -r["wall"])[:5]
    print(table(["trial", "wall s", "train s", "epochs", "arch"],
                [[r["number"], f"{r['wall']:.2f}", f"{r['phases']['train']:.2f}", r["epochs_run"],
                  str({k: v for k, v in (r["arch"] or {}).items() if k in ("depth", "width", "ffn", "rank")})]
                 for r in slow], "rrrrl"))

    payload = {"benchmark": NAME, **env, "settings": {
        "space": args.space, "dataset": args.dataset, "profiles": args.profile_list, "sampler": args.sampler,
        "seed": args.seed, "trials": args.trials, "epochs": args.epochs, "population_size": args.population_size,
        "quick": args.quick, "out": str(out), "target_share": target,
        "torch_threads_option": args.torch_threads},
        "loadavg_at_end": loadavg(),
        "n_trials": len(trials), "n_measured": len(rows), "skipped": skipped, "skipped_wall_s": skipped_wall,
        "per_phase_s": per_phase, "gaps_s": g, "setup_s": setup, "after_last_trial_s": teardown,
        "search_wall_s": search_wall, "non_training_share_of_trial_wall": share_trial,
        "non_training_share_of_search_wall": share_search, "optuna_share_of_trial_wall": optuna_share,
        "meets_target": share_trial <= target, "trials": rows, "gap_list_s": gaps}
    path = write_json(NAME, payload, args.json)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
