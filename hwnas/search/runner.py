"""The search loop: Optuna proposes, :class:`CandidateEvaluator` evaluates, the study records."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from hwnas.errors import CandidateError
from hwnas.profiles.onnxruntime import host_mismatch
from hwnas.search.evaluate import CandidateEvaluator, CandidateResult, Timings, cost_values, metrics_dict, quality_value
from hwnas.search.objectives import Objective
from hwnas.search.study import RESULT, evaluated_trials, record_of
from hwnas.space import SearchSpace


#: Set (by the CLI's Ctrl-C / SIGTERM handler, or by any caller) to stop the search after the current trial.
STOP = threading.Event()


class TrialRunner:
    """The Optuna objective: one call evaluates one proposed architecture and records everything about it."""

    def __init__(self, space: SearchSpace, evaluator: CandidateEvaluator, objectives: Sequence[Objective],
                 artifacts: FileSystemArtifactStore) -> None:
        self.space = space
        self.evaluator = evaluator
        self.objectives = list(objectives)
        self.artifacts = artifacts
        self._done: dict[str, int] = {}  # arch key → number of a finished trial with that architecture
        self.idle = 0  # consecutive proposals that evaluated nothing new (invalid or already evaluated)

    def remember(self, study: optuna.Study) -> None:
        """Index finished architectures so that a re-proposed one is reused, not retrained."""
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            self._done.setdefault(t.user_attrs.get("arch", {}).get("key", ""), t.number)

    def __call__(self, trial: optuna.Trial) -> list[float]:
        timings = Timings()
        with timings.phase("sample"):
            config = self.space.suggest(trial)
        trial.set_user_attr("arch", {"key": config.key, **config.to_dict()})
        broken = self.space.violations(config.values)
        if broken:
            self.idle += 1
            trial.set_user_attr(RESULT, {"status": "invalid", "reason": f"violates space constraint(s): {broken}"})
            raise optuna.TrialPruned(f"violates {broken}")
        if config.key in self._done:
            self.idle += 1
            return self._reuse(trial, self._done[config.key])
        self.idle = 0
        try:
            result = self.evaluator.evaluate(config, timings, name=f"trial_{trial.number:05d}")
        except CandidateError as exc:
            trial.set_user_attr(RESULT, {"status": "failed", "fail_reason": str(exc), "timings": timings.phases})
            raise
        with timings.phase("bookkeeping"):
            values, record = self._record(trial, result)
        trial.set_user_attr(RESULT, {**record, "timings": timings.phases})
        self._done[config.key] = trial.number
        return values

    def _record(self, trial: optuna.Trial, r: CandidateResult) -> tuple[list[float], dict[str, Any]]:
        for name, v in r.violations.items():
            trial.set_constraint(name, v)
        metric = self.evaluator.task.metric
        record: dict[str, Any] = {
            "status": "ok" if r.trained and r.feasible else "infeasible",
            "trained": r.trained,
            "seed": r.seed,
            "metrics": metrics_dict(r.costs),
            "violations": r.violations,
            f"val_{metric}": r.val_score,
            f"test_{metric}": r.test_score,
            f"torch_val_{metric}": r.torch_val_score,
            "onnx_max_abs_diff": r.onnx_max_abs_diff,
            "graph_sha256": r.graph_sha256,
            "epochs_run": r.epochs_run,
            "model": r.model,
        }
        if not r.trained:
            record["reason"] = (f"screened out before training by a hardware constraint; {metric} objective set to "
                                f"{self.evaluator.task.untrained_value}")
        if r.onnx_path is not None:
            record["artifact_id"] = upload_artifact(
                artifact_store=self.artifacts, file_path=str(r.onnx_path), study_or_trial=trial,
                mimetype="application/octet-stream",
            )
            r.onnx_path.unlink()
        return [quality_value(r, self.evaluator.task), *cost_values(r, self.objectives)], record

    def _reuse(self, trial: optuna.Trial, number: int) -> list[float]:
        """Copy the results of an identical architecture (same config and seed give the same model)."""
        src = trial.study.get_trials(deepcopy=False)[number]
        for key, value in src.system_attrs.items():
            if key.startswith("constraints:"):
                trial.set_constraint(key.split(":", 1)[1], value)
        trial.set_user_attr(RESULT, {**record_of(src), "reused_from": number, "timings": {}})
        assert src.values is not None
        return list(src.values)


class Progress:
    """A tqdm bar: trials done, feasible count, Pareto size, best accuracy so far."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="trial", dynamic_ncols=True)
        self.skipped = 0

    def announce(self, metric: str, direction: str, objectives: Sequence[Objective], profiles: Sequence[Any]) -> None:
        """Say what is optimised and where each number comes from (measured here, or predicted by what)."""
        if self.bar.disable:
            return
        by_name = {p.name: p for p in profiles}
        self.bar.write(f"objectives: {metric} ({direction[:3]}, validation split of the exported model)")
        for o in objectives:
            p = by_name[o.profile]
            origin = "measured here" if p.provenance == "measured" else f"predicted ({p.kind} model)"
            self.bar.write(f"            {o.name} (min, {origin})")
            warning = host_mismatch(str(p.params.get("calibrated_on") or ""))
            if warning:
                self.bar.write(f"            warning: {p.name} was {warning['host_mismatch']}")

    def update(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
               pareto: Callable[[optuna.Study], list[Any]]) -> None:
        record = record_of(trial)
        if trial.state == optuna.trial.TrialState.FAIL and "fail_reason" in record:
            self.bar.write(f"trial {trial.number} failed: {record['fail_reason']}")
        if record.get("status") not in ("ok", "infeasible", "failed") or "reused_from" in record:
            self.skipped += 1
            return  # an invalid or repeated proposal: nothing new was evaluated
        if self.bar.disable:
            self.bar.update(1)
            return
        trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        ok = [t for t in trials if record_of(t).get("status") == "ok"]
        pick = max if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else min
        best = pick((t.values[0] for t in ok), default=float("nan"))
        self.bar.set_postfix(feasible=len(ok), pareto=len(pareto(study)), best=f"{best:.4f}",
                             skipped=self.skipped, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


#: Stop when this many proposals in a row evaluate nothing new: the space is (nearly) exhausted.
MAX_IDLE_PROPOSALS = 50


def run_trials(study: optuna.Study, runner: TrialRunner, wanted: int, progress: Progress,
               pareto: Callable[[optuna.Study], list[Any]]) -> bool:
    """Propose until the study holds ``wanted`` evaluated architectures (see :func:`evaluated_trials`).

    Candidate failures are recorded and the search goes on. Returns False when it stopped early because the
    sampler kept proposing invalid or already-evaluated architectures.
    """
    runner.remember(study)

    def after_trial(s: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        progress.update(s, t, pareto)
        if STOP.is_set() or runner.idle >= MAX_IDLE_PROPOSALS:
            s.stop()

    while not STOP.is_set() and runner.idle < MAX_IDLE_PROPOSALS:
        remaining = wanted - len(evaluated_trials(study))
        if remaining <= 0:
            return True
        study.optimize(runner, n_trials=remaining, catch=(CandidateError,), callbacks=[after_trial],
                       gc_after_trial=False)
    return runner.idle < MAX_IDLE_PROPOSALS


def artifact_store(path: Path) -> FileSystemArtifactStore:
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(path))
