"""A printed-circuit search on UCI data vs the published exact bespoke printed MLPs.

For each dataset (default: cardio and redwine), in this process and one after the other:

1. **The search**: ``hwnas.api.search("mlp_printed", dataset, ["printed-egfet"], objectives=[area_cm2,
   power_mw], sampler="nsga2", seed=0)`` — depth 1-2, width 2-12 per layer, weight bits 2-8 per layer, no or
   unstructured pruning 20-80%, learning rate; inputs 4-bit, the output layer 8-bit (the ``printed-egfet``
   deployment). Objectives: validation accuracy (max), area and power (min; power is 3.1 mW/cm² × area in this
   model, so the front is effectively accuracy vs area).
2. **The published topology trained by hwnas**: a space file (written to a temp dir) fixing depth 1, the
   published hidden width, 8-bit weights, no pruning, with only the learning rate free (log-uniform
   3e-3…3e-2, the same range as ``mlp_printed``), searched with ``--ref-trials`` random trials; the trial with
   the best validation accuracy is "hwnas, same topology": what hwnas predicts for the published design,
   trained and priced like every search candidate (8-bit weights, 4-bit inputs).
3. **Comparison**: the published figures (area cm², power mW, accuracy; exact designs, 8-bit weights, 4-bit
   inputs: Mubarik et al. MICRO'20 / Armeniakos et al. DATE'22, see REFERENCES.md); hwnas's same topology; and
   the smallest-area Pareto point whose accuracy is ≥ the published accuracy (chosen on validation accuracy, its
   test accuracy shown; and the same chosen on test accuracy), with area/power ratios to the published design
   and to hwnas's same topology.

The printed model overestimates the published areas by 1.3-2.1× when pricing the published topologies with
random weights (docs/printed_model.md): ratios to the published figures mix that model error with the search's
gain; ratios to "hwnas, same topology" compare like with like (same model, same training, same data split).
Accuracies are of the exported ONNX files on hwnas's seeded stratified 60/20/20 split (seed 0), not the
published papers' splits.

Run: ``python benchmarks/printed_uci_search.py [--quick]``; JSON to ``benchmarks/results/printed_uci_search.json``
(``--quick``: ``benchmarks/results/runs/printed_uci_search.quick.json``); studies under
``benchmarks/results/runs/printed_uci_search[-quick]/``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNS_DIR, environment, fnum, header, loadavg, table, trial_record, write_json  # noqa: E402

NAME = "printed_uci_search"
PROFILE = "printed-egfet"
OBJECTIVES = [f"{PROFILE}.area_cm2", f"{PROFILE}.power_mw"]
#: hwnas dataset → (published name, topology, area cm², power mW, accuracy, other reported power)
PUBLISHED: dict[str, tuple[str, tuple[int, ...], float, float, float, float | None]] = {
    "cardio": ("Cardio", (21, 3, 3), 33.4, 97.3, 0.88, 124.2),
    "pendigits": ("Pendigits", (16, 5, 10), 67.0, 213.0, 0.94, None),
    "redwine": ("RedWine", (11, 2, 6), 17.6, 53.3, 0.56, None),
    "whitewine": ("WhiteWine", (11, 4, 7), 31.2, 98.4, 0.54, None),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="cardio,redwine", help=f"comma-separated, from {list(PUBLISHED)}")
    ap.add_argument("--space", default="mlp_printed")
    ap.add_argument("--trials", type=int, default=160, help="evaluated architectures per dataset search")
    ap.add_argument("--ref-trials", type=int, default=6, help="learning rates tried for the published topology")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the task's, 100)")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir", type=Path, default=RUNS_DIR / NAME)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="smoke check: cardio, 12 trials, 2 reference trials, 20 epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.datasets, args.trials, args.ref_trials, args.epochs = "cardio", 12, 2, 20
        args.population = 6
        args.runs_dir = args.runs_dir.with_name(args.runs_dir.name + "-quick")
        if args.json is None:
            args.json = RUNS_DIR / f"{NAME}.quick.json"
    args.dataset_list = [d for d in args.datasets.split(",") if d]
    bad = [d for d in args.dataset_list if d not in PUBLISHED]
    if bad:
        ap.error(f"no published design for {bad}; known: {list(PUBLISHED)}")
    return args


def point(p: Mapping[str, Any]) -> dict[str, Any]:
    """A Pareto entry reduced to what the tables show."""
    m = p["metrics"][PROFILE]
    d = m["area_cm2"]["details"]
    v = p["arch"]["values"]
    return {
        "trial": p["trial"], "topology": "-".join(map(str, d["topology"])), "weight_bits": d["weight_bits"],
        "sparsity": v.get("sparsity", 0.0) if v.get("sparsity_kind", "none") != "none" else 0.0,
        "lr": v.get("lr"), "val_accuracy": p["val_accuracy"], "test_accuracy": p["test_accuracy"],
        "area_cm2": m["area_cm2"]["value"], "power_mw": m["power_mw"]["value"], "delay_ms": m["delay_ms"]["value"],
        "nonzero_weights": d["counts"]["nonzero_weights"], "arch": v,
    }


def counts(result: Any) -> dict[str, int]:
    recs = [trial_record(t) for t in result.study.get_trials(deepcopy=False)]
    out = {s: sum(r.get("status") == s for r in recs) for s in ("ok", "infeasible", "invalid", "failed")}
    out["reused"] = sum(r.get("reused_from") is not None for r in recs)
    out["total"] = len(recs)
    return out


def run_search(space: Any, dataset: str, out: Path, trials: int, sampler: str, args: argparse.Namespace) -> dict:
    from hwnas.api import search

    if out.exists():
        shutil.rmtree(out)  # a leftover study would be resumed instead of started afresh
    start = time.perf_counter()
    res = search(space, dataset, [PROFILE], objectives=OBJECTIVES, trials=trials, sampler=sampler, seed=args.seed,
                 out=out, epochs=args.epochs, population_size=args.population, progress=False)
    wall = time.perf_counter() - start
    trained = []
    for t in res.study.get_trials(deepcopy=False):
        rec = trial_record(t)
        if rec.get("status") == "ok" and t.values is not None:
            trained.append({"trial": t.number, "params": dict(t.params), "values": list(t.values)})
    return {"wall_s": wall, "counts": counts(res), "pareto": sorted((point(p) for p in res.pareto),
                                                                     key=lambda q: q["area_cm2"]),
            "out": str(out), "exhausted": res.exhausted, "trained": trained}


def reference_space(dataset: str, tmp: Path) -> Path:
    _, topo, *_ = PUBLISHED[dataset]
    spec = {
        "name": f"published_{dataset}_{'-'.join(map(str, topo))}",
        "description": f"the published bespoke topology {'-'.join(map(str, topo))} at 8-bit weights, lr searched",
        "model": "mlp",
        "params": {"lr": {"type": "float", "low": 3.0e-3, "high": 3.0e-2, "log": True}},
        "fixed": {"depth": 1, "width": topo[1], "weight_bits": 8, "activation": "relu", "batch_size": 32,
                  "sparsity_kind": "none"},
    }
    path = tmp / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def reference(dataset: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The published topology trained by hwnas: best validation accuracy over the learning-rate trials."""
    space = reference_space(dataset, tmp)
    out = args.runs_dir / f"{dataset}-published-topology"
    r = run_search(str(space), dataset, out, args.ref_trials, "random", args)
    rows = [{"trial": t["trial"], "lr": t["params"].get("lr"), "values": t["values"]} for t in r["trained"]]
    # the best-accuracy trial is always on the (accuracy, area, power) front
    best = max(r["pareto"], key=lambda q: (q["val_accuracy"], -q["area_cm2"]))
    return {"space": str(space), "space_text": space.read_text(), "search": r, "trials": rows, "best": best}


def pick(front: list[dict[str, Any]], acc: float, key: str) -> dict[str, Any] | None:
    ok = [q for q in front if q[key] >= acc - 1e-12]
    return min(ok, key=lambda q: (q["area_cm2"], -q[key])) if ok else None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = environment()
    print(header(env))
    print(f"# settings: space={args.space} datasets={args.dataset_list} profile={PROFILE} objectives=accuracy+"
          f"{OBJECTIVES} trials={args.trials} ref_trials={args.ref_trials} epochs={args.epochs or 'task default'} "
          f"sampler=nsga2 population={args.population} seed={args.seed}", flush=True)
    t_start = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hwnas-printed-ref-") as tmp:
        for ds in args.dataset_list:
            search_res = run_search(args.space, ds, args.runs_dir / ds, args.trials, "nsga2", args)
            print(f"# {ds}: search {search_res['counts']} in {search_res['wall_s']:.0f} s "
                  f"(elapsed {time.perf_counter() - t_start:.0f} s, load {loadavg()})", flush=True)
            ref = reference(ds, args, Path(tmp))
            print(f"# {ds}: published topology, {len(ref['trials'])} trainings in {ref['search']['wall_s']:.0f} s",
                  flush=True)
            name, topo, area, power, acc, power2 = PUBLISHED[ds]
            front = search_res["pareto"]
            results[ds] = {
                "published": {"name": name, "topology": "-".join(map(str, topo)), "area_cm2": area,
                              "power_mw": power, "power_mw_other_report": power2, "accuracy": acc},
                "search": search_res, "same_topology": ref,
                "smallest_at_published_accuracy": {"by_val": pick(front, acc, "val_accuracy"),
                                                   "by_test": pick(front, acc, "test_accuracy")},
            }
    text = report(args, results)
    print()
    print(text)
    payload = {
        "benchmark": NAME, **env,
        "settings": {"space": args.space, "datasets": args.dataset_list, "profile": PROFILE,
                     "objectives": ["accuracy", *OBJECTIVES], "trials": args.trials, "ref_trials": args.ref_trials,
                     "epochs": args.epochs, "sampler": "nsga2", "population": args.population, "seed": args.seed},
        "notes": [
            "printed-egfet overestimates the published areas by 1.3-2.1x on random weights of the published "
            "topologies (docs/printed_model.md); ratios to 'hwnas, same topology' compare like with like.",
            "Accuracy = of the exported ONNX file on hwnas's seeded stratified split (60/20/20, seed 0); the "
            "published accuracies come from the papers' own splits.",
            "smallest_at_published_accuracy.by_val: the smallest-area Pareto point with validation accuracy >= the "
            "published accuracy (model selection on validation); by_test: the same on test accuracy.",
            "Power is area x 3.62 mW/cm2 in egfet-bespoke-v2, so accuracy-area-power fronts are accuracy-area fronts.",
        ],
        "total_wall_s": time.perf_counter() - t_start, "loadavg_at_end": loadavg(),
        "published_all": {k: {"name": v[0], "topology": "-".join(map(str, v[1])), "area_cm2": v[2],
                              "power_mw": v[3], "accuracy": v[4], "power_mw_other_report": v[5]}
                          for k, v in PUBLISHED.items()},
        "results": results, "report": text,
    }
    path = write_json(NAME, payload, args.json)
    print(f"\nwrote {path} ({time.perf_counter() - t_start:.0f} s)")


def _bits(q: Mapping[str, Any]) -> str:
    return "/".join(map(str, q["weight_bits"]))


def _row(label: str, q: Mapping[str, Any] | None, pub: Mapping[str, Any], same: Mapping[str, Any] | None) -> list:
    if q is None:
        return [label, "none on the front", *[""] * 10]
    return [label, q["topology"], _bits(q), f"{q['sparsity']:.1f}", f"{q['val_accuracy']:.3f}",
            f"{q['test_accuracy']:.3f}", f"{q['area_cm2']:.1f}", f"{q['power_mw']:.1f}", f"{q['delay_ms']:.0f}",
            f"{q['area_cm2'] / pub['area_cm2']:.2f}", f"{q['power_mw'] / pub['power_mw']:.2f}",
            f"{q['area_cm2'] / same['area_cm2']:.2f}" if same else "-"]


def report(args: argparse.Namespace, results: Mapping[str, Any]) -> str:
    lines = ["Published exact bespoke printed MLPs (8-bit weights, 4-bit inputs; MICRO'20 / DATE'22)"]
    rows = [[v[0], "-".join(map(str, v[1])), v[2], f"{v[3]}" + (f" (other report {v[5]})" if v[5] else ""), v[4],
             "searched" if k in results else ""] for k, v in PUBLISHED.items()]
    lines.append(table(["dataset", "topology", "area cm2", "power mW", "accuracy", ""], rows, "llrlrl"))
    for ds, r in results.items():
        pub, s = r["published"], r["search"]
        c = s["counts"]
        lines.append("")
        lines.append(f"{pub['name']} ({ds}): Pareto front of the {args.space} search (accuracy vs area/power), "
                     f"{c['ok']} trained, {c['failed']} failed, {c['invalid']} invalid, {c['reused']} reused, "
                     f"{s['wall_s']:.0f} s; sorted by area")
        rows = [[q["trial"], q["topology"], _bits(q), f"{q['sparsity']:.1f}", q["nonzero_weights"],
                 f"{q['val_accuracy']:.3f}", f"{q['test_accuracy']:.3f}", f"{q['area_cm2']:.1f}",
                 f"{q['power_mw']:.1f}", f"{q['delay_ms']:.0f}"] for q in s["pareto"]]
        lines.append(table(["trial", "topology", "w bits", "pruned", "weights", "val acc", "test acc", "area cm2",
                            "power mW", "delay ms"], rows))
        same = r["same_topology"]["best"]
        lines.append("")
        lines.append(f"{pub['name']}: comparison (published: {pub['topology']}, {pub['area_cm2']} cm², "
                     f"{pub['power_mw']} mW, accuracy {pub['accuracy']}); ratios: area and power to the published "
                     "design, and area to hwnas's same topology (like with like)")
        rows = [[f"published {pub['name']}", pub["topology"], "8", "0.0", "-", f"{pub['accuracy']:.3f}",
                 f"{pub['area_cm2']:.1f}", f"{pub['power_mw']:.1f}", "-", "1.00", "1.00", "-"],
                _row("hwnas, same topology", same, pub, None),
                _row("smallest, val acc >= pub.", r["smallest_at_published_accuracy"]["by_val"], pub, same),
                _row("smallest, test acc >= pub.", r["smallest_at_published_accuracy"]["by_test"], pub, same)]
        lines.append(table(["design", "topology", "w bits", "pruned", "val acc", "test acc", "area cm2", "power mW",
                            "delay ms", "area/pub", "power/pub", "area/same"], rows, "ll" + "r" * 10))
        lrs = ", ".join(f"lr {fnum(t['lr'], 3)}: val {t['values'][0]:.3f}" for t in r["same_topology"]["trials"])
        lines.append(f"  same topology trained with {len(r['same_topology']['trials'])} learning rates ({lrs}); "
                     "best validation accuracy shown")
    lines.append("")
    lines.append("Caution: printed-egfet overestimates published areas by 1.3-2.1x on random weights "
                 "(docs/printed_model.md); 'area/pub' mixes that model error with the search's gain, 'area/same' "
                 "compares like with like within hwnas. Accuracies are on hwnas's own split, not the papers'.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
