"""The ``hwnas`` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
from typing import Any, Sequence

import yaml

from hwnas.errors import HwnasError
from hwnas.files import parse_yaml


def _format_metric(m: dict[str, Any]) -> str:
    tag = m["provenance"]  # measured / predicted / synthesised
    if m.get("details", {}).get("label"):  # e.g. TVM: tuned / partially tuned / untuned
        tag += f", {m['details']['label']}"
    return f"{m['value']:.4g} {m['unit']} ({tag})"


def _print_pareto(rows: list[dict[str, Any]], out: str) -> None:
    print(f"\n{len(rows)} Pareto-optimal model(s) written to {out}/models (pareto.json, pareto.csv):")
    for r in rows:
        costs = ", ".join(
            f"{p}.{k}={_format_metric(m)}" for p, ms in r["metrics"].items() for k, m in ms.items()
        )
        scores = " ".join(f"{k}={v:.4f}" for k, v in r.items() if k.startswith(("val_", "test_")))
        print(f"  trial {r['trial']:>4}  {scores}  {costs}")
        circuit = r.get("circuit") or {}
        if circuit.get("simulated"):
            print(f"              circuit {out}/models/{circuit['files'][0]}: bit-exact on {circuit['samples']} test "
                  f"samples ({circuit['simulator']}), circuit accuracy {circuit['circuit_accuracy']:.4f}")
        elif "error" in circuit:
            print(f"              no circuit: {circuit['error']}")
        elif circuit:
            print(f"              circuit {out}/models/{circuit['files'][0]} ({circuit['note']})")


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``hwnas search``, from the fields of :class:`~hwnas.engine.config.SearchConfig` and of every
    strategy's options dataclass (one declaration each)."""
    from hwnas.engine.config import SearchConfig
    from hwnas.strategies import strategies

    for f in dataclasses.fields(SearchConfig):
        flag, cli = f.metadata["flag"], dict(f.metadata["cli"])
        if f.name == "strategy_options":
            continue
        if flag is None:
            parser.add_argument(f.name, help=f.metadata["help"], **cli)
            continue
        action = cli.get("action")
        cli["default"] = [] if action == "append" else f.default if action != "store_false" else True
        if f.name == "strategy":
            cli["choices"] = sorted(strategies())
        if action not in ("store_true", "store_false"):
            cli.setdefault("metavar", _metavar(flag))
        parser.add_argument(flag, dest=f.name, help=_with_default(f.metadata["help"], f.default, action), **cli)
    for strategy in strategies().values():
        group = parser.add_argument_group(f"--strategy {strategy.name}", strategy.description)
        for f in dataclasses.fields(strategy.Options):
            flag, cli = strategy.Options.flags()[f.name], dict(f.metadata["cli"])
            if "action" not in cli:
                cli["type"] = _yaml_value  # numbers as YAML reads them (3, 0.5, 1e-3); checked by the options
                cli["metavar"] = _metavar(flag)
            group.add_argument(flag, dest=f"strategy.{f.name}", default=argparse.SUPPRESS,
                               help=_with_default(f.metadata["help"], f.default, cli.get("action")), **cli)


def _yaml_value(text: str) -> Any:
    try:
        return parse_yaml(text, "the value", HwnasError)
    except HwnasError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _metavar(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_").upper()


def _with_default(text: str, default: Any, action: str | None) -> str:
    """Help text that states the default, unless the text already explains it or there is none to state."""
    if "default" in text or action in ("store_true", "store_false", "append") or default in (None, (), [], {}):
        return text
    return f"{text} (default: {default})"


def _search_config(args: argparse.Namespace) -> Any:
    """The :class:`~hwnas.engine.config.SearchConfig` of the parsed ``hwnas search`` command line."""
    from hwnas.engine.config import SearchConfig, parse_profile_sets

    given = vars(args)
    fields = {f.name: given[f.name] for f in dataclasses.fields(SearchConfig) if f.name in given}
    fields["profiles"] = fields["profiles"] or ["cpu-ort"]
    fields["profile_overrides"] = parse_profile_sets(fields["profile_overrides"])
    fields["strategy_options"] = {k.split(".", 1)[1]: v for k, v in given.items() if k.startswith("strategy.")}
    return SearchConfig(**fields)


#: The exit code of a search that ran but whose every trial failed (2: bad input, refused before any work).
SEARCH_FAILED = 3


def cmd_search(args: argparse.Namespace) -> int:
    config = _search_config(args)  # bad options fail here, before torch and Optuna are imported
    from hwnas.api import search

    result = search(config=config, stop=args.stop)
    _print_pareto(result.pareto, str(result.out))
    if result.screened:
        from hwnas.engine.outputs import format_screened

        print(format_screened(result.screened))
    if args.verify and result.pareto:
        from hwnas.engine.verify import format_report, verify_study

        report = verify_study(result.study, result.artifacts)
        (result.out / "verify.json").write_text(json.dumps(report, indent=2))
        print(format_report(report))
    if result.exhausted:
        print("hwnas: stopped early: the sampler kept proposing invalid or already-evaluated architectures "
              "(the space may be exhausted)", file=sys.stderr)
    if result.stopped:
        print(f"hwnas: stopped early ({len(result.study.trials)} trials); re-run the same command to resume.",
              file=sys.stderr)
        return 130
    if result.failed:
        print(f"hwnas: error: {result.failed}", file=sys.stderr)
        return SEARCH_FAILED
    return 0


def cmd_fidelity(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hwnas.supernet.fidelity import ranking_fidelity

    r = ranking_fidelity(args.space, args.dataset, subnets=args.subnets, supernet_epochs=args.supernet_epochs,
                         standalone_epochs=args.standalone_epochs, seed=args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(r, indent=2, default=str))
    c = r["compute"]
    print(f"{r['subnets']} subnets of {r['space']} on {r['dataset']}: Kendall tau {r['kendall_tau']:.3f}, "
          f"Spearman {r['spearman_rho']:.3f} ({r['metric']}); on validation loss: tau {r['kendall_tau_loss']:.3f}, "
          f"Spearman {r['spearman_rho_loss']:.3f}")
    print(f"compute: supernet {c['supernet']['seconds']:.1f}s, stand-alone {c['standalone']['seconds']:.1f}s "
          f"({c['ratio_seconds']:.1f}x); samples processed ratio {c['ratio_sample_passes']:.1f}x; wrote {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hwnas.api import export

    tvm_options = {"target": args.target, "batch_size": args.batch_size, "database": args.tvm_db, "cc": args.cc}
    rows = export(args.out, storage=args.storage, study=args.study, artifacts=args.artifacts, format=args.format,
                  tvm_options=tvm_options if args.format == "tvm" else None)
    _print_pareto(rows, args.out)
    for r in rows:
        if "tvm_library" in r:
            print(f"  trial {r['trial']:>4}  TVM: {args.out}/{r['tvm_library']} (run: python {args.out}/{r['tvm_loader']})")
    return 0


def _overrides(items: Sequence[str], flag: str) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HwnasError(f"{flag} {item!r}: expected KEY=VALUE, e.g. batch_size=16")
        out[key] = parse_yaml(value, f"{flag} {item!r}", HwnasError)
    return out


def cmd_profiles(args: argparse.Namespace) -> int:
    from hwnas import profiles

    if args.action == "list":
        print(f"{'name':<18} {'kind':<12} {'numbers':<10} {'from':<10} description")
        for d, p in profiles.list_profiles():
            print(f"{p.name:<18} {p.kind:<12} {p.provenance:<10} {d.origin:<10} {p.description[:60]}")
        return 0
    if args.action == "show":
        print(yaml.safe_dump(profiles.get(args.name).describe(), sort_keys=False).rstrip())
        return 0
    if args.action == "add":
        dest = profiles.add(args.file, force=args.force)
        print(f"added profile from {args.file} as {dest}")
        return 0
    if args.action == "calibrate":
        return _calibrate(args)
    return _profile_run(args)


def _calibrate(args: argparse.Namespace) -> int:
    """``profiles calibrate``: learn a predictor profile from measurements of sampled architectures."""
    from pathlib import Path

    from hwnas import profiles
    from hwnas.calibrate import calibrate_predictor

    measured = Path(args.measure).stem if args.measure.endswith((".yaml", ".yml")) else args.measure
    name = args.name or (Path(args.out).stem if args.out else f"{measured}-predictor")
    out = Path(args.out) if args.out else profiles.user_dir() / f"{name}.yaml"  # calibrate_predictor checks name
    result = calibrate_predictor(
        args.measure, out, spaces=args.space or ("mlp_tabular", "mlp_wide"), samples=args.samples,
        batch_sizes=args.batch_size or (1, 16, 256), seed=args.seed, name=name, rounds=args.rounds,
        log=lambda line: print(line, file=sys.stderr),
    )
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"wrote {result['yaml']} ({result['family']} model, {result['architectures']} architectures); held out: "
              f"MAPE {result['mape_pct']:.1f}%, within ±10%: {result['within_10pct']:.0f}%, "
              f"Kendall tau {result['kendall_tau']:.2f}")
    return 0


def _profile_run(args: argparse.Namespace) -> int:
    """``profiles predict`` / ``profiles measure`` on any ONNX file."""
    from pathlib import Path

    from hwnas import profiles
    from hwnas.graph import check_file
    from hwnas.profiles.measure import measuring_profile

    model = Path(args.model)
    check_file(model)  # before any profile reads (or hashes) it: a FIFO would block
    profile = profiles.get(args.name, _overrides(args.set, "--set"))
    if args.action == "predict":
        if profile.provenance == "measured":
            raise HwnasError(f"profile {profile.name!r} measures; use `hwnas profiles measure {profile.name} MODEL`")
        runner = profile
    else:
        runner = measuring_profile(profile)
        if runner is None:
            raise HwnasError(f"profile {profile.name!r} predicts and names nothing that measures it (measure_with)")
        reason = runner.available()
        if reason:
            raise HwnasError(f"profile {profile.name!r} cannot measure here: {reason}")
    result = runner.profile(model)
    if args.json:
        print(json.dumps({"profile": profile.name, "model": str(model), **result.to_dict()}, indent=2))
    else:
        for m in result.metrics.values():
            print(f"{profile.name}.{m.name} = {m.value:.6g} {m.unit} ({m.provenance})")
        approximated = sorted({op for m in result.metrics.values() for op in m.details.get("approximated_ops", [])})
        if approximated:
            print(f"note: {profile.name} has no cost rule for {', '.join(approximated)}: priced approximately "
                  "(unknown_ops=approximate)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hwnas.api import verify
    from hwnas.engine.verify import format_report

    report = verify(args.out, storage=args.storage, study=args.study, artifacts=args.artifacts)
    (Path(args.out) / "verify.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
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
    _add_search_options(s)
    s.add_argument("--verify", action="store_true", help="afterwards, re-measure the Pareto models (hwnas verify)")
    s.set_defaults(func=cmd_search)

    f = sub.add_parser("supernet-fidelity", help="measure the ranking fidelity of a supernet (inherited vs "
                       "stand-alone training of sampled subnets)")
    f.add_argument("space")
    f.add_argument("--dataset", default="breast_cancer")
    f.add_argument("--subnets", type=int, default=30)
    f.add_argument("--supernet-epochs", type=int, default=40)
    f.add_argument("--standalone-epochs", type=int, default=40)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", default="fidelity.json", help="JSON file to write")
    f.set_defaults(func=cmd_fidelity)

    e = sub.add_parser("export", help="re-export the Pareto models of a study")
    e.add_argument("--out", required=True)
    e.add_argument("--storage")
    e.add_argument("--study")
    e.add_argument("--artifacts", help="folder of the study's stored ONNX files (default: as recorded)")
    e.add_argument("--format", choices=["onnx", "tvm", "verilog"], default="onnx",
                   help="tvm: also compile each model with Apache TVM into a .so plus a loader example; verilog: "
                   "also write each fixed-point model's bespoke circuit trial_N.v, a self-checking testbench and "
                   "its test vectors, simulated (iverilog) against the ONNX file on the whole test split")
    e.add_argument("--target", help='TVM target as a JSON dict (default: the study\'s cpu-tvm target, else {"kind": "llvm"}), e.g. '
                   '\'{"kind":"llvm","mtriple":"aarch64-linux-gnu","num-cores":4}\'')
    e.add_argument("--batch-size", type=int, default=1, help="static batch size of the TVM library (default 1)")
    e.add_argument("--tvm-db", help="MetaSchedule tuning database folder (default: OUT/tvm_db when present)")
    e.add_argument("--cc", help="linker for the .so (default: this host's; <mtriple>-gcc for other architectures)")
    e.set_defaults(func=cmd_export)

    p = sub.add_parser("profiles", help="hardware profiles: list, show, add, predict, measure")
    psub = p.add_subparsers(dest="action", required=True)
    psub.add_parser("list", help="every profile: name, kind, measured or predicted, origin")
    show = psub.add_parser("show", help="a profile's full definition")
    show.add_argument("name")
    add = psub.add_parser("add", help="validate a profile YAML and copy it into the user profile folder")
    add.add_argument("file")
    add.add_argument("--force", action="store_true", help="replace or shadow a profile of the same name")
    cal = psub.add_parser("calibrate", help="learn a predictor profile from measurements of sampled architectures")
    cal.add_argument("measure", help="the measuring profile (e.g. cpu-ort, or a command profile for a phone)")
    cal.add_argument("--name", help="name of the new profile (default: MEASURE-predictor)")
    cal.add_argument("--out", help="YAML to write (default: the user profile folder, so it is usable by name)")
    cal.add_argument("--space", action="append", help="search space to sample (repeatable; default mlp_tabular, mlp_wide)")
    cal.add_argument("--samples", type=int, default=200, help="architectures to measure (each at every batch size)")
    cal.add_argument("--batch-size", type=int, action="append", help="batch size (repeatable; default 1, 16, 256)")
    cal.add_argument("--seed", type=int, default=0)
    cal.add_argument("--rounds", type=int, default=1, help="measure each file this many times, keep the fastest")
    cal.add_argument("--json", action="store_true")
    for action, text in (("predict", "predict costs of an ONNX file"), ("measure", "measure an ONNX file here")):
        q = psub.add_parser(action, help=text)
        q.add_argument("name", help="profile name or YAML file")
        q.add_argument("model", help="ONNX file")
        q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a profile parameter")
        q.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_profiles)

    v = sub.add_parser("verify", help="re-measure a study's Pareto models on every profile that can measure here")
    v.add_argument("--out", required=True, help="the search's output folder (verify.json is written there)")
    v.add_argument("--storage")
    v.add_argument("--study")
    v.add_argument("--artifacts")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_verify)

    sp = sub.add_parser("spaces", help="list or show search spaces")
    sp.add_argument("action", choices=["list", "show"])
    sp.add_argument("name", nargs="?")
    sp.set_defaults(func=cmd_spaces)

    d = sub.add_parser("datasets", help="list the bundled datasets")
    d.set_defaults(func=cmd_datasets)
    return parser


class _WarningLines(logging.Handler):
    """hwnas's warnings (e.g. a user profile file skipped) as one ``hwnas: warning:`` line each, on the stderr
    of the moment."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"hwnas: warning: {record.getMessage()}", file=sys.stderr)


ABORTED = "\nhwnas: interrupted; finished trials are saved — re-run the same command to resume."


def _on_signal(stop: Any) -> Any:
    """The Ctrl-C / SIGTERM handler: the first sets ``stop`` (the search finishes its current trial, writes
    the reports and exits); a second aborts now.

    The abort exits the process rather than raising KeyboardInterrupt: a signal that lands while the
    interpreter runs a garbage-collection callback (SQLAlchemy registers several) would have its exception
    printed as "ignored" and the search would go on. Finished trials are committed already; the trial in
    flight is left RUNNING and failed by the storage heartbeat, as after a kill."""

    def handler(signum: int, frame: Any) -> None:
        if stop.stopped:
            print(ABORTED, file=sys.stderr, flush=True)
            os._exit(130)
        stop.stop()
        print("\nhwnas: stopping after the current trial (press Ctrl-C again to abort it)", file=sys.stderr)

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    from hwnas.engine.stop import StopToken

    log = logging.getLogger("hwnas")
    if not any(isinstance(h, _WarningLines) for h in log.handlers):
        log.addHandler(_WarningLines(logging.WARNING))
    args = build_parser().parse_args(argv)
    args.stop = StopToken()
    signal.signal(signal.SIGINT, _on_signal(args.stop))
    signal.signal(signal.SIGTERM, _on_signal(args.stop))
    try:
        return args.func(args)
    except HwnasError as exc:
        print(f"hwnas: error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever a tool said
        return 2
    except KeyboardInterrupt:
        print(ABORTED, file=sys.stderr)
        return 130
    finally:
        # Everything is saved by now: a late Ctrl-C / SIGTERM must not turn the exit into a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
