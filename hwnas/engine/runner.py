"""The search loop: Optuna proposes, the :class:`~hwnas.engine.evaluator.Evaluator` evaluates, the study records.

:class:`TrialRunner` is the Optuna objective; :func:`run_trials` proposes until the study holds the wanted
number of evaluated architectures or a :class:`StopToken` is set; :func:`evaluate_architecture` evaluates one
given architecture as a new trial (a strategy's derived or fine-tuned candidate).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Mapping, Sequence

import optuna

from hwnas.engine.artifacts import Artifacts
from hwnas.engine.evaluator import CandidateResult, Evaluator, Timings, Weights, quality_value
from hwnas.engine.objectives import Objective
from hwnas.engine.progress import Progress
from hwnas.engine.records import (Status, TrialRecord, arch_key, read_record, write_arch, write_record,
                                  write_tag)
from hwnas.engine.stop import StopToken
from hwnas.engine.study import evaluated_trials, is_evaluated
from hwnas.errors import CandidateError
from hwnas.space import SearchSpace

#: Stop when this many proposals in a row evaluate nothing new: the space is (nearly) exhausted.
MAX_IDLE_PROPOSALS = 50
#: Stop when this many evaluated architectures failed and none succeeded: every candidate fails.
MAX_FAILED_START = 10


class TrialRunner:
    """The Optuna objective: one call evaluates one proposed architecture and records everything about it.

    ``weights``: where candidates' weights come from (None: trained from scratch); ``tag``: how the trials
    were produced (recorded as their ``strategy`` attribute)."""

    def __init__(self, space: SearchSpace, evaluator: Evaluator, objectives: Sequence[Objective],
                 artifacts: Artifacts, *, weights: Weights | None = None,
                 tag: Mapping[str, Any] | None = None) -> None:
        self.space = space
        self.evaluator = evaluator
        self.objectives = list(objectives)
        self.artifacts = artifacts
        self.weights = weights
        self.tag = dict(tag) if tag else None
        self._done: dict[str, int] = {}  # arch key → number of a finished trial with that architecture
        self.idle = 0  # consecutive proposals that evaluated nothing new (invalid or already evaluated)

    def remember(self, study: optuna.Study) -> None:
        """Index finished architectures so that a re-proposed one is reused, not retrained."""
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            key = arch_key(t)
            if key:
                self._done.setdefault(key, t.number)

    def __call__(self, trial: optuna.Trial) -> list[float]:
        timings = Timings()
        if self.tag:
            write_tag(trial, self.tag)
        with timings.phase("sample"):
            config = self.space.suggest(trial)
        write_arch(trial, config)
        broken = self.space.violations(config.values)
        metric = self.evaluator.task.metric
        if broken:
            self.idle += 1
            write_record(trial, TrialRecord(Status.INVALID, metric, reason=f"violates space constraint(s): {broken}"))
            raise optuna.TrialPruned(f"violates {broken}")
        if config.key in self._done:
            self.idle += 1
            return self._reuse(trial, self._done[config.key])
        self.idle = 0
        try:
            result = self.evaluator.evaluate(config, timings, f"trial_{trial.number:05d}", self.weights)
        except CandidateError as exc:
            kept = self.artifacts.upload(trial, exc.artifact) if exc.artifact and exc.artifact.is_file() else None
            write_record(trial, TrialRecord(Status.FAILED, metric, reason=str(exc), artifact_id=kept,
                                            timings=timings.phases))
            raise
        with timings.phase("bookkeeping"):
            values, record = self.record(trial, result)
        write_record(trial, dataclasses.replace(record, timings=timings.phases))
        self._done[config.key] = trial.number
        return values

    def record(self, trial: optuna.Trial, r: CandidateResult) -> tuple[list[float], TrialRecord]:
        """The objective values and the record of an evaluated candidate (its ONNX file goes to the artifact
        store); its constraint violations go to Optuna, so the samplers learn the feasible region."""
        for name, v in r.violations.items():
            trial.set_constraint(name, v)
        task = self.evaluator.task
        artifact_id = None
        if r.lowered is not None:
            artifact_id = self.artifacts.upload(trial, r.lowered.path)
        reason = None
        if not r.trained:
            reason = (f"screened out before training: no trained weights can meet {', '.join(r.screened_by)}; "
                      f"{task.metric} objective set to {task.untrained_value}")
        record = TrialRecord(
            Status.OK if r.trained and r.feasible else Status.INFEASIBLE, task.metric, reason=reason,
            trained=r.trained, seed=r.seed, costs=r.costs, violations=r.violations, val_score=r.val_score,
            test_score=r.test_score, torch_val_score=r.torch_val_score,
            onnx_max_abs_diff=r.lowered.max_abs_diff if r.lowered else None,
            graph_sha256=r.lowered.graph_sha256 if r.lowered else None, epochs_run=r.epochs_run, model=r.model,
            artifact_id=artifact_id, screened_by=r.screened_by,
        )
        values = [quality_value(r, task), *(r.costs[o.profile][o.metric].value for o in self.objectives)]
        return values, record

    def _reuse(self, trial: optuna.Trial, number: int) -> list[float]:
        """Copy the results of an identical architecture (same config and seed give the same model)."""
        src = trial.study.get_trials(deepcopy=False)[number]
        for key, value in src.system_attrs.items():
            if key.startswith("constraints:"):
                trial.set_constraint(key.split(":", 1)[1], value)
        record = read_record(src)
        assert record is not None and src.values is not None
        write_record(trial, record.reused(number))
        return list(src.values)


def run_trials(study: optuna.Study, runner: TrialRunner, wanted: int, progress: Progress, stop: StopToken) -> bool:
    """Propose until the study holds ``wanted`` evaluated architectures (see :func:`evaluated_trials`).

    Candidate failures are recorded and the search goes on — unless the first :data:`MAX_FAILED_START`
    architectures this call evaluates all fail: then something fails every candidate (a profile's broken
    number, a diverging learning rate), and it stops (the session reports it:
    :meth:`~hwnas.engine.session.SearchSession.failure`). Returns False when it stopped early because the
    sampler kept proposing invalid or already-evaluated architectures."""
    runner.remember(study)
    tally = {"ok": 0, "failed": 0}  # architectures this call evaluated

    def failing() -> bool:
        return tally["ok"] == 0 and tally["failed"] >= MAX_FAILED_START

    def after_trial(s: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        progress.update(s, t)
        if is_evaluated(t):
            tally["failed" if t.state == optuna.trial.TrialState.FAIL else "ok"] += 1
        if stop.stopped or runner.idle >= MAX_IDLE_PROPOSALS or failing():
            s.stop()

    while not stop.stopped and runner.idle < MAX_IDLE_PROPOSALS and not failing():
        remaining = wanted - len(evaluated_trials(study))
        if remaining <= 0:
            return True
        study.optimize(runner, n_trials=remaining, catch=(CandidateError,), callbacks=[after_trial],
                       gc_after_trial=False)
    return runner.idle < MAX_IDLE_PROPOSALS


def evaluate_architecture(study: optuna.Study, runner: TrialRunner, params: Mapping[str, Any],
                          progress: Progress) -> optuna.trial.FrozenTrial:
    """Evaluate the architecture with Optuna parameters ``params`` as a new trial of ``study`` (recorded like
    any other, tagged with the runner's tag); a failure is a FAILed trial with its reason."""
    study.enqueue_trial(dict(params))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with Study.optimize"
        trial = study.ask()
    try:
        values = runner(trial)
    except CandidateError:
        frozen = study.tell(trial, state=optuna.trial.TrialState.FAIL)
    except optuna.TrialPruned:
        frozen = study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        frozen = study.tell(trial, values)
    progress.update(study, frozen)
    return frozen
