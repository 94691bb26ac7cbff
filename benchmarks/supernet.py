"""One-shot strategies vs training every candidate from scratch, measured.

Per task (one tabular: ``--tab-dataset`` on ``--tab-space``; one Transformer LM: ``transformer_ffn`` on
``pydoc_topics``):

1. **Ranking fidelity** (:func:`hwnas.supernet.ranking_fidelity`): ``--subnets`` subnets, Kendall τ / Spearman
   between inherited-weight and stand-alone quality (accuracy or perplexity) and validation loss (target τ ≥ 0.7).
2. **Search at equal wall clock**: ``--strategy supernet`` with ``--trials`` evaluated subnets (NSGA-II), timed
   (supernet training included); then the from-scratch NSGA-II search stopped (a ``StopToken``) after the same number of
   seconds. Hypervolume of each final feasible Pareto front (Optuna's WFG via ``hwnas.engine.pareto``) against
   ONE reference point — error (1 − accuracy) 1.0 or perplexity ``ref-factor`` × the worst seen, and
   ``ref-factor`` × the largest cost seen in either run — normalised by the reference box.
3. **Compute**: seconds per evaluated subnet on each path and the ratio of the total compute of N = ``--trials``
   evaluations (supernet: training + N inherited evaluations, measured; scratch: N × the measured mean seconds
   per from-scratch trial — an extrapolation when the scratch run evaluated fewer; target ≥ 10× at N ≥ 500).
4. **DARTS** (tabular): the derived architecture's expected and per-op-table cost vs its profiled cost under a
   budget (is it met?) and its accuracy vs the best from-scratch trial within the same budget.

Prints a table; writes ``benchmarks/results/supernet.json`` (or ``--json``). ``--quick`` is a smoke run (~3 min);
the default fits ~20-25 min on 2 shared cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNS_DIR, environment, fnum, header, table, write_json  # noqa: E402

NAME = "supernet"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tab-dataset", default="digits")
    ap.add_argument("--tab-space", default="mlp_tabular")
    ap.add_argument("--profile", default="cpu-host-model", help="cost profile (cheap, analytical by default)")
    ap.add_argument("--subnets", type=int, default=30, help="subnets of each fidelity measurement")
    ap.add_argument("--trials", type=int, default=500, help="evaluated subnets of the tabular supernet search")
    ap.add_argument("--supernet-epochs", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=40, help="stand-alone / from-scratch training epochs (tabular)")
    ap.add_argument("--lm-trials", type=int, default=120, help="evaluated subnets of the Transformer search")
    ap.add_argument("--lm-subnets", type=int, default=30)
    ap.add_argument("--lm-supernet-epochs", type=int, default=16, help="x steps_per_epoch (50) steps")
    ap.add_argument("--lm-epochs", type=int, default=4, help="stand-alone / from-scratch LM epochs (x 50 steps)")
    ap.add_argument("--darts-epochs", type=int, default=40)
    ap.add_argument("--budget-quantile", type=float, default=0.3,
                    help="DARTS budget: this quantile of the profiled costs of the from-scratch trials")
    ap.add_argument("--ref-factor", type=float, default=1.1)
    ap.add_argument("--skip-lm", action="store_true", help="tabular task only")
    ap.add_argument("--skip-tab", action="store_true", help="Transformer task only (no DARTS)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir", type=Path, default=RUNS_DIR / NAME)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny budgets everywhere")
    args = ap.parse_args(argv)
    if args.quick:
        args.subnets, args.trials, args.supernet_epochs, args.epochs = 8, 40, 10, 10
        args.lm_trials, args.lm_subnets, args.lm_supernet_epochs, args.lm_epochs = 10, 6, 2, 1
        args.darts_epochs = 8
        args.json = args.json or RUNS_DIR / f"{NAME}.quick.json"
        args.runs_dir = args.runs_dir.with_name(args.runs_dir.name + "-quick")
    return args


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    return path


def _ok(study: Any) -> list[Any]:
    from hwnas.engine.records import Status, read_record

    return [t for t in study.trials if t.values is not None and (r := read_record(t)) is not None
            and r.status == Status.OK]


def _losses(trials: list[Any], maximize: bool) -> np.ndarray:
    from hwnas.engine.pareto import loss_points

    return loss_points(trials, maximize_first=maximize)


def timed_search(budget_s: float | None, **kwargs: Any) -> tuple[Any, float]:
    """``hwnas.search`` (stopped through a ``StopToken`` after ``budget_s`` seconds when given); (result, seconds)."""
    from hwnas.api import search
    from hwnas.engine.stop import StopToken

    stop = StopToken()
    timer = threading.Timer(budget_s, stop.stop) if budget_s else None
    began = time.perf_counter()
    if timer:
        timer.start()
    try:
        result = search(progress=False, stop=stop, **kwargs)
    finally:
        if timer:
            timer.cancel()
    return result, time.perf_counter() - began


def compare(name: str, task: Any, space: str, profile: str, trials: int, strategy_options: dict[str, Any],
            epochs: int, args: argparse.Namespace) -> dict[str, Any]:
    """Supernet search then a from-scratch NSGA-II search with the same wall clock; HV and compute."""
    from hwnas.engine.pareto import hypervolume

    sup, sup_s = timed_search(None, space=space, dataset=task, profiles=[profile], trials=trials, seed=args.seed,
                              out=_fresh(args.runs_dir / f"{name}-supernet"), strategy="supernet",
                              strategy_options=strategy_options, epochs=epochs)
    scr, scr_s = timed_search(sup_s, space=space, dataset=task, profiles=[profile], trials=10 * trials,
                              seed=args.seed, out=_fresh(args.runs_dir / f"{name}-scratch"), epochs=epochs)
    maximize = task.direction == "maximize"
    sup_ok, scr_ok = _ok(sup.study), _ok(scr.study)
    allpts = np.vstack([_losses(sup_ok, maximize), _losses(scr_ok, maximize)])
    ref = [1.0 if maximize else args.ref_factor * allpts[:, 0].max(), *(args.ref_factor * allpts[:, 1:].max(0))]
    box = float(np.prod(ref))

    def hv(result: Any) -> float:
        front = [t for t in result.study.trials if t.number in {r["trial"] for r in result.pareto}]
        return hypervolume(_losses(front, maximize), ref) / box

    from hwnas.engine.records import read_note, read_tag
    from hwnas.engine.study import evaluated_trials

    training = read_note(sup.study, "supernet", "training") or {}
    n_sup = len([t for t in evaluated_trials(sup.study) if read_tag(t).get("weights") == "inherited"])
    eval_s = sup_s - float(training.get("seconds", 0.0))
    n_scr = len(evaluated_trials(scr.study))
    per_scratch = scr_s / max(1, n_scr)
    best = (max if maximize else min)
    return {
        "supernet": {"seconds": sup_s, "trials": len(sup.study.trials), "inherited_trials": n_sup,
                     "training_seconds": training.get("seconds"), "seconds_per_subnet": eval_s / max(1, n_sup),
                     "pareto": len(sup.pareto), "hv": hv(sup),
                     "best_val": best(t.values[0] for t in sup_ok) if sup_ok else None},
        "scratch": {"seconds": scr_s, "trials": n_scr, "seconds_per_trial": per_scratch,
                    "pareto": len(scr.pareto), "hv": hv(scr),
                    "best_val": best(t.values[0] for t in scr_ok) if scr_ok else None},
        "reference": ref,
        "compute_ratio_at_n": {"n": trials, "supernet_seconds": sup_s, "scratch_seconds_estimated": per_scratch * trials,
                               "ratio": per_scratch * trials / sup_s,
                               "scratch_measured_trials": n_scr},
        "_scratch_study": scr.study,
    }


def darts_check(task: Any, space: str, profile: str, scratch_study: Any, args: argparse.Namespace) -> dict[str, Any]:
    """DARTS under a budget at a quantile of the from-scratch costs: expected/table vs profiled, accuracy."""
    metric = scratch_study.metric_names[1]  # the profile's primary metric, e.g. cpu-host-model.latency_ms
    ok = _ok(scratch_study)
    costs = np.array([t.values[1] for t in ok])
    bound = float(np.quantile(costs, args.budget_quantile))
    within = [t for t in ok if t.values[1] <= bound]
    out = _fresh(args.runs_dir / "tab-darts")
    result, seconds = timed_search(None, space=space, dataset=task, profiles=[profile], trials=1, seed=args.seed,
                                   out=out, strategy="darts", epochs=args.epochs,
                                   strategy_options={"darts_epochs": args.darts_epochs},
                                   constraints=[f"{metric}<={bound:.6g}"])
    from hwnas.engine.records import read_record, read_tag

    darts = json.loads((out / "darts.json").read_text())
    (trial,) = [t for t in result.study.trials if read_tag(t).get("name") == "darts"]
    record = read_record(trial)
    profiled = record.costs[profile][metric.split(".", 1)[1]].value
    return {
        "budget": bound, "metric": metric, "seconds": seconds, "derived": darts["derived"],
        "expected_cost": darts["expected_cost"][metric], "table_cost": darts["derived_table_cost"][metric],
        "profiled_cost": profiled, "table_error_pct": 100 * (darts["derived_table_cost"][metric] - profiled) / profiled,
        "met_expected": darts["expected_cost"][metric] <= bound, "met_profiled": profiled <= bound,
        "status": record.status.value, "val_accuracy": record.val_score,
        "best_scratch_within_budget": max((t.values[0] for t in within), default=None),
        "scratch_trials_within_budget": len(within), "projected": darts["projected"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from hwnas.space import load_space
    from hwnas.supernet import ranking_fidelity
    from hwnas.engine.tasks import make_task

    env = environment()
    print(header(env))
    report: dict[str, Any] = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "environment": env}
    began = time.perf_counter()

    if not args.skip_tab:
        tab = make_task("mlp", args.tab_dataset, target=None, seed=args.seed, fixed=load_space(args.tab_space).fixed)
        fid = ranking_fidelity(args.tab_space, tab, subnets=args.subnets, supernet_epochs=args.supernet_epochs,
                               standalone_epochs=args.epochs, seed=args.seed)
        print(f"[{time.perf_counter() - began:.0f}s] tabular fidelity: tau {fid['kendall_tau']:.3f}", flush=True)
        cmp_tab = compare("tab", tab, args.tab_space, args.profile, args.trials,
                          {"supernet_epochs": args.supernet_epochs}, args.epochs, args)
        print(f"[{time.perf_counter() - began:.0f}s] tabular search comparison done", flush=True)
        dts = darts_check(tab, args.tab_space, args.profile, cmp_tab.pop("_scratch_study"), args)
        print(f"[{time.perf_counter() - began:.0f}s] DARTS done", flush=True)
        report["tabular"] = {"fidelity": {k: v for k, v in fid.items() if k != "archs"}, "search": cmp_tab, "darts": dts}

    if not args.skip_lm:
        lm_space = load_space("transformer_ffn")
        lm = make_task("transformer", "pydoc_topics", target=None, seed=args.seed, fixed=lm_space.fixed)
        lfid = ranking_fidelity(lm_space, lm, subnets=args.lm_subnets, supernet_epochs=args.lm_supernet_epochs,
                                standalone_epochs=args.lm_epochs, seed=args.seed)
        print(f"[{time.perf_counter() - began:.0f}s] LM fidelity: tau {lfid['kendall_tau']:.3f}", flush=True)
        cmp_lm = compare("lm", lm, "transformer_ffn", "gpu-a100", args.lm_trials,
                         {"supernet_epochs": args.lm_supernet_epochs}, args.lm_epochs, args)
        cmp_lm.pop("_scratch_study")
        report["lm"] = {"fidelity": {k: v for k, v in lfid.items() if k != "archs"}, "search": cmp_lm}
    report["seconds"] = time.perf_counter() - began

    rows = []
    for key, label in (("tabular", f"{args.tab_space}/{args.tab_dataset}"), ("lm", "transformer_ffn/pydoc")):
        if key not in report:
            continue
        f, s = report[key]["fidelity"], report[key]["search"]
        rows.append([label, f["subnets"], fnum(f["kendall_tau"], 3), fnum(f["kendall_tau_loss"], 3),
                     "met" if f["kendall_tau"] >= 0.7 else "NOT met",
                     fnum(f["compute"]["ratio_seconds"], 3), s["supernet"]["inherited_trials"],
                     s["scratch"]["trials"], fnum(s["supernet"]["hv"], 4), fnum(s["scratch"]["hv"], 4),
                     fnum(s["compute_ratio_at_n"]["ratio"], 3)])
    print(table(["task", "subnets", "tau", "tau(loss)", "tau>=0.7", "fid. compute x", "sup trials",
                 "scratch trials", "HV sup", "HV scratch", "compute x@N"], rows))
    d = report.get("tabular", {}).get("darts")
    if d:
        print(f"DARTS ({d['metric']} <= {d['budget']:.4g}): expected {d['expected_cost']:.4g}, table {d['table_cost']:.4g}, "
              f"profiled {d['profiled_cost']:.4g} ({d['table_error_pct']:+.1f}%), budget met by expected: "
              f"{d['met_expected']}, by profiled: {d['met_profiled']}; val acc {d['val_accuracy']} vs best scratch "
              f"within budget {d['best_scratch_within_budget']} ({d['scratch_trials_within_budget']} trials)")
    path = write_json(NAME, report, args.json)
    print(f"wrote {path} ({report['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
