"""The ``hwnas`` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any, Sequence

import yaml

from hwnas.errors import HwnasError


def _key_value(text: str) -> tuple[str, str, Any]:
    """``NAME.KEY=VALUE`` → (NAME, KEY, VALUE parsed as YAML scalar)."""
    left, sep, value = text.partition("=")
    name, dot, key = left.rpartition(".")
    if not sep or not dot or not name or not key:
        raise HwnasError(f"--profile-set {text!r}: expected PROFILE.KEY=VALUE, e.g. cpu-ort.batch_size=16")
    return name, key, yaml.safe_load(value)


def _format_metric(m: dict[str, Any]) -> str:
    tag = "measured" if m["provenance"] == "measured" else "predicted"
    return f"{m['value']:.4g} {m['unit']} ({tag})"


def _print_pareto(rows: list[dict[str, Any]], out: str) -> None:
    print(f"\n{len(rows)} Pareto-optimal model(s) written to {out}/models (pareto.json, pareto.csv):")
    for r in rows:
        costs = ", ".join(
            f"{p}.{k}={_format_metric(m)}" for p, ms in r["metrics"].items() for k, m in ms.items()
        )
        print(f"  trial {r['trial']:>4}  val_acc={r['val_accuracy']:.4f} test_acc={r['test_accuracy']:.4f}  {costs}")


def cmd_search(args: argparse.Namespace) -> int:
    from hwnas.search.api import search

    overrides: dict[str, dict[str, Any]] = {}
    for item in args.profile_set:
        name, key, value = _key_value(item)
        overrides.setdefault(name, {})[key] = value
    result = search(
        args.space, args.dataset, args.profile or ["cpu-ort"], trials=args.trials, sampler=args.sampler,
        seed=args.seed, out=args.out, study=args.study, storage=args.storage, constraints=args.constraint,
        objectives=args.objective, epochs=args.epochs, target=args.target, profile_overrides=overrides,
        population_size=args.population, progress=not args.no_progress,
    )
    _print_pareto(result.pareto, str(result.out))
    if result.stopped:
        print(f"hwnas: stopped early ({len(result.study.trials)} trials); re-run the same command to resume.",
              file=sys.stderr)
        return 130
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hwnas.search.api import export

    rows = export(args.out, storage=args.storage, study=args.study, artifacts=args.artifacts)
    _print_pareto(rows, args.out)
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    from hwnas import profiles

    if args.action == "list":
        print(f"{'name':<18} {'kind':<12} {'numbers':<10} description")
        for p in profiles.list_profiles():
            print(f"{p.name:<18} {p.kind:<12} {p.provenance:<10} {p.description[:70]}")
        return 0
    if not args.name:
        raise HwnasError("profiles show: give a profile name or a YAML path")
    print(yaml.safe_dump(profiles.get(args.name).describe(), sort_keys=False).rstrip())
    return 0


def cmd_spaces(args: argparse.Namespace) -> int:
    from hwnas.space import list_spaces, load_space

    if args.action == "list":
        for name in list_spaces():
            print(f"{name:<16} {load_space(name).description}")
        return 0
    if not args.name:
        raise HwnasError("spaces show: give a space name or a YAML path")
    print(yaml.safe_dump(load_space(args.name).describe(), sort_keys=False).rstrip())
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from hwnas.data import list_datasets

    print("\n".join(list_datasets()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwnas", description="Hardware-aware neural architecture search.")
    parser.add_argument("--version", action="version", version=f"hwnas {__import__('hwnas').__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="run or resume a search")
    s.add_argument("space", help="built-in space name (see `hwnas spaces list`) or a YAML file")
    s.add_argument("--dataset", default="breast_cancer", help="bundled name (`hwnas datasets`) or a .csv/.npz path")
    s.add_argument("--target", help="label column of a CSV (name or 0-based index; default: last column)")
    s.add_argument("--profile", action="append", default=[], help="hardware profile name or YAML (repeatable)")
    s.add_argument("--profile-set", action="append", default=[], metavar="NAME.KEY=VALUE",
                   help="override a profile parameter for this search (repeatable)")
    s.add_argument("--objective", action="append", default=[], metavar="PROFILE.METRIC",
                   help="minimise this metric instead of the profile's primary one (repeatable)")
    s.add_argument("--constraint", action="append", default=[], metavar="PROFILE.METRIC<=VALUE",
                   help="hard bound checked before training (repeatable)")
    s.add_argument("--trials", type=int, default=40, help="total finished trials wanted in the study")
    s.add_argument("--sampler", default="nsga2", help="nsga2, nsga3, tpe, random or gp")
    s.add_argument("--population", type=int, default=20, help="population size of nsga2/nsga3")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--epochs", type=int, default=100, help="training epochs budget (early stopping on validation)")
    s.add_argument("--out", default="runs/hwnas", help="output folder (study.db, pareto.*, models/)")
    s.add_argument("--study", help="study name (default: SPACE-DATASET)")
    s.add_argument("--storage", help="Optuna storage URL (default: sqlite:///OUT/study.db)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_search)

    e = sub.add_parser("export", help="re-export the Pareto models of a study")
    e.add_argument("--out", required=True)
    e.add_argument("--storage")
    e.add_argument("--study")
    e.add_argument("--artifacts", help="folder of the study's stored ONNX files (default: as recorded)")
    e.set_defaults(func=cmd_export)

    p = sub.add_parser("profiles", help="list or show hardware profiles")
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("name", nargs="?")
    p.set_defaults(func=cmd_profiles)

    sp = sub.add_parser("spaces", help="list or show search spaces")
    sp.add_argument("action", choices=["list", "show"])
    sp.add_argument("name", nargs="?")
    sp.set_defaults(func=cmd_spaces)

    d = sub.add_parser("datasets", help="list the bundled datasets")
    d.set_defaults(func=cmd_datasets)
    return parser


def _stop(signum: int, frame: Any) -> None:
    """First Ctrl-C / SIGTERM: finish the current trial, write the reports, exit. Second: abort now."""
    from hwnas.search.runner import STOP

    if STOP.is_set():
        raise KeyboardInterrupt
    STOP.set()
    print("\nhwnas: stopping after the current trial (press Ctrl-C again to abort it)", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        return args.func(args)
    except HwnasError as exc:
        print(f"hwnas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nhwnas: interrupted; finished trials are saved — re-run the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
