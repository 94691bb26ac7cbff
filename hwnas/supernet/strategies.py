"""Search strategies besides training every candidate from scratch: the plan ``hwnas.search`` delegates to.

A plan is made (and validates the space and options, before any training) from the space and the task, adds
its settings to the study signature, and then runs the search into the opened study with the same evaluator,
objectives and artifact store as a from-scratch search, so its trials land in the same study / Pareto outputs.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import optuna
from optuna.artifacts import FileSystemArtifactStore

from hwnas.errors import ConfigError
from hwnas.search.evaluate import CandidateEvaluator
from hwnas.search.objectives import Constraint, Objective
from hwnas.search.runner import Progress, TrialRunner
from hwnas.space import SearchSpace
from hwnas.train.tasks import Task

STRATEGIES = ("scratch", "supernet", "darts")
#: The trial user attribute that says how a trial was produced (absent: trained from scratch).
STRATEGY_ATTR = "strategy"


class Plan(Protocol):
    #: Appended to the default study name (a supernet search keeps its own study; DARTS joins the scratch one).
    study_suffix: str

    def signature(self) -> dict[str, Any]: ...

    def run(self, study: optuna.Study, evaluator: CandidateEvaluator, objectives: Sequence[Objective],
            artifacts: FileSystemArtifactStore, trials: int, progress: Progress, out: Path) -> bool: ...


class TaggedRunner(TrialRunner):
    """A :class:`TrialRunner` that records ``tag`` as the trial's ``strategy`` user attribute."""

    def __init__(self, space: SearchSpace, evaluator: CandidateEvaluator, objectives: Sequence[Objective],
                 artifacts: FileSystemArtifactStore, tag: Mapping[str, Any]) -> None:
        super().__init__(space, evaluator, objectives, artifacts)
        self.tag = dict(tag)

    def __call__(self, trial: optuna.Trial) -> list[float]:
        trial.set_user_attr(STRATEGY_ATTR, self.tag)
        return super().__call__(trial)


def _flags(names: Sequence[str]) -> list[str]:
    return ["--" + n.replace("_", "-") for n in sorted(names)]


def make_plan(strategy: str, space: SearchSpace, task: Task, constraints: Sequence[Constraint],
              objectives: Sequence[Objective], options: Mapping[str, Any], seed: int, epochs: int) -> Plan | None:
    """The plan of ``strategy`` (None for ``scratch``); ConfigError for bad options or unsupported params."""
    if strategy == "scratch":
        if options:
            raise ConfigError(f"{', '.join(_flags(options))} need --strategy supernet or darts")
        return None
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown --strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    from hwnas.supernet.darts import DartsPlan
    from hwnas.supernet.search import SupernetPlan

    cls = SupernetPlan if strategy == "supernet" else DartsPlan
    known = set(inspect.signature(cls).parameters) - {"space", "task", "constraints", "objectives", "seed", "epochs"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"strategy {strategy!r} takes no option(s) {_flags(unknown)}; it takes {_flags(known)}")
    if cls is SupernetPlan:
        return SupernetPlan(space, task, seed=seed, epochs=epochs, **options)
    return DartsPlan(space, task, constraints, objectives, seed=seed, **options)
