"""The Python API behind the CLI: ``hwnas.search(...)`` and ``hwnas.export(...)``."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import optuna

from hwnas.data import Dataset
from hwnas.errors import ConfigError
from hwnas.profiles import Profile, get as get_profile
from hwnas.profiles.measure import for_search
from hwnas.search import report
from hwnas.search.evaluate import CandidateEvaluator
from hwnas.search.objectives import ACCURACY, parse_constraints, parse_objectives
from hwnas.search.pareto import pareto_trials
from hwnas.search.runner import STOP, Progress, TrialRunner, artifact_store, run_trials
from hwnas.search.study import default_storage, evaluated_trials, make_sampler, open_storage, open_study
from hwnas.space import SearchSpace, load_space
from hwnas.train.tasks import Task, make_task


@dataclass
class SearchResult:
    study: optuna.Study
    out: Path
    pareto: list[dict[str, Any]]

    artifacts: Path
    #: True when the search stopped early on request (Ctrl-C / SIGTERM); re-run to continue.
    stopped: bool = False
    #: True when it stopped because the sampler kept proposing invalid or already-evaluated architectures.
    exhausted: bool = False

    @property
    def n_trials(self) -> int:
        return len(self.study.trials)


def _profiles(names: Sequence[str | Profile], overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Profile]:
    out: dict[str, Profile] = {}
    for item in names:
        p = item if isinstance(item, Profile) else for_search(get_profile(item, dict(overrides.get(item, {}))))
        if p.name in out:
            raise ConfigError(f"profile {p.name!r} was given twice")
        out[p.name] = p
    unused = set(overrides) - set(out) - {str(n) for n in names}
    if unused:
        raise ConfigError(f"--profile-set names profile(s) {sorted(unused)} that are not chosen with --profile")
    return out


def _check_compatible(space: SearchSpace, profiles: Mapping[str, Profile]) -> None:
    printed = [p.name for p in profiles.values() if p.fixed_point() is not None]
    quant = space.params.get("quant")
    fixed = space.fixed.get("quant", "fp32")
    choices = set(getattr(quant, "choices", fixed if isinstance(fixed, (list, tuple)) else [fixed]))
    runtime_only = sorted(choices & {"int8", "int4", "fp16"})
    if printed and runtime_only:
        raise ConfigError(
            f"profile(s) {printed} cost fixed-point circuits, but space '{space.name}' offers quant {runtime_only} "
            "(ONNX Runtime formats): drop them from the space (fixed-point bits, ternary and binary fit), "
            "or drop the fixed-point profile"
        )


def _check_available(profiles: Mapping[str, Profile]) -> None:
    """A profile that cannot produce its numbers here fails the search up front, not every candidate."""
    for p in profiles.values():
        reason = p.available()
        if reason:
            raise ConfigError(f"profile {p.name!r} cannot run here: {reason}")


def search(
    space: str | Path | SearchSpace,
    dataset: str | Dataset | Task = "breast_cancer",
    profiles: Sequence[str | Profile] = ("cpu-ort",),
    *,
    trials: int = 40,
    sampler: str = "nsga2",
    seed: int = 0,
    out: str | Path = "runs/hwnas",
    study: str | None = None,
    storage: str | None = None,
    constraints: Sequence[str] = (),
    objectives: Sequence[str] = (),
    epochs: int | None = None,
    target: str | None = None,
    profile_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    population_size: int = 20,
    train_threads: int = 1,
    progress: bool = True,
    strategy: str = "scratch",
    strategy_options: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Run (or resume) a hardware-aware search; write ``pareto.json``, ``pareto.csv`` and ``models/`` to ``out``.

    ``trials`` counts evaluated architectures: proposals that break a space constraint and re-proposed
    architectures (whose results are reused) are recorded but do not use up the budget. Re-running with the
    same ``out``/``study`` resumes: finished trials are kept and the search continues until the study holds
    ``trials`` evaluated architectures.

    ``strategy``: ``scratch`` (train every candidate), ``supernet`` (subnets of one weight-sharing supernet,
    evaluated with inherited weights; own study ``NAME-supernet``) or ``darts`` (one differentiable search,
    its derived architecture trained and recorded in this study); ``strategy_options`` go to that strategy
    (see :mod:`hwnas.supernet.strategies` and docs/supernet.md).
    """
    if trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    STOP.clear()
    sp = space if isinstance(space, SearchSpace) else load_space(space)
    task = make_task(sp.model, dataset, target=target, seed=seed, fixed=sp.fixed)
    epochs = task.default_epochs if epochs is None else epochs
    if epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {epochs}")
    profs = _profiles(profiles, profile_overrides or {})
    if not profs:
        raise ConfigError("choose at least one hardware profile (--profile)")
    _check_compatible(sp, profs)
    _check_available(profs)
    objs = parse_objectives([o for o in objectives if o not in (ACCURACY, task.metric)], profs)
    cons = parse_constraints(constraints, profs)
    smp = make_sampler(sampler, seed, population_size)
    from hwnas.supernet.strategies import make_plan  # validates the space for the strategy, before training

    plan = make_plan(strategy, sp, task, cons, objs, strategy_options or {}, seed, epochs)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for p in profs.values():
        p.bind(out)
    url = storage or default_storage(out)
    name = study or f"{sp.name}-{task.name}{plan.study_suffix if plan else ''}"
    signature = {
        "hwnas.space": sp.describe(),
        "hwnas.dataset": task.describe(),
        "hwnas.profiles": {n: p.describe() | {"file": None} for n, p in profs.items()},
        "hwnas.objectives": [task.metric] + [o.name for o in objs],
        "hwnas.constraints": [c.name for c in cons],
        "hwnas.epochs": epochs,
        "hwnas.seed": seed,
        **(plan.signature() if plan else {}),
    }
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are reported by the progress callback
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    st = open_study(open_storage(url), name, smp, [task.metric] + [o.name for o in objs], signature, task.direction)
    artifacts = Path(st.user_attrs.get("hwnas.artifacts") or out / "artifacts")
    if "hwnas.artifacts" not in st.user_attrs:
        st.set_user_attr("hwnas.artifacts", str(artifacts.resolve()))
    evaluator = CandidateEvaluator(task, list(profs.values()), cons, epochs=epochs, seed=seed,
                                   workdir=out / "work", space_name=sp.name, train_threads=train_threads)
    runner = TrialRunner(sp, evaluator, objs, artifact_store(artifacts))
    done = len(evaluated_trials(st))
    bar = Progress(trials, min(done, trials), progress)
    bar.announce(task.metric, task.direction, objs, list(profs.values()))
    complete = True
    try:
        if plan is not None:
            complete = plan.run(st, evaluator, objs, artifact_store(artifacts), trials, bar, out)
        elif done < trials:
            complete = run_trials(st, runner, trials, bar, pareto_trials)
    finally:
        bar.close()
    rows = report.write_reports(st, out, artifacts)
    logging.getLogger("hwnas").info("wrote %d Pareto models to %s", len(rows), out)
    evaluated = len(evaluated_trials(st))
    return SearchResult(st, out, rows, artifacts, stopped=STOP.is_set() and evaluated < trials,
                        exhausted=not complete)


def open_existing_study(out: str | Path, *, storage: str | None = None, study: str | None = None,
                        artifacts: str | Path | None = None) -> tuple[optuna.Study, Path]:
    """Load a finished or running study and the folder of its stored ONNX files."""
    out = Path(out)
    if storage is None and not (out / "study.db").is_file():
        raise ConfigError(f"no study.db in {out}; pass --storage URL")
    url = storage or default_storage(out)
    store = open_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(store)]
    if study is None:
        if len(names) != 1:
            raise ConfigError(f"storage holds studies {names}; choose one with --study")
        study = names[0]
    if study not in names:
        raise ConfigError(f"no study {study!r} in {url}; studies there: {names}")
    st = optuna.load_study(study_name=study, storage=store)
    folder = Path(artifacts) if artifacts else Path(st.user_attrs.get("hwnas.artifacts", out / "artifacts"))
    return st, folder


def export(out: str | Path, *, storage: str | None = None, study: str | None = None,
           artifacts: str | Path | None = None, format: str = "onnx",
           tvm_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Re-export ``pareto.json``, ``pareto.csv`` and ``models/*.onnx`` of a study into ``out``.

    ``format="tvm"`` also compiles each model with TVM (:func:`hwnas.lowering.tvm_export.export_tvm`, which
    takes ``tvm_options``: ``target``, ``batch_size``, ``database``, ``cc``)."""
    if format not in ("onnx", "tvm"):
        raise ConfigError(f"--format must be onnx or tvm, got {format!r}")
    st, folder = open_existing_study(out, storage=storage, study=study, artifacts=artifacts)
    rows = report.write_reports(st, Path(out), folder)
    if format == "tvm":
        from hwnas.lowering.tvm_export import export_tvm, study_target

        options = dict(tvm_options or {})
        options["target"] = options.get("target") or study_target(st.user_attrs.get("hwnas.profiles"))
        rows = export_tvm(rows, Path(out), **options)
    return rows
