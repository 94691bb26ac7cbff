"""An open search: the study, the evaluator, the artifact store, the progress bar and the stop token a
strategy runs with. The seam between the engine and the strategies: a strategy uses this object's methods
and the public methods of the evaluator and runner it hands out, nothing else of the engine."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import optuna

from hwnas.engine.artifacts import Artifacts
from hwnas.engine.evaluator import Evaluator, Weights
from hwnas.engine.progress import Progress
from hwnas.engine.records import artifact_dir, set_artifact_dir
from hwnas.engine.runner import TrialRunner, evaluate_architecture, run_trials
from hwnas.engine.stop import StopToken
from hwnas.engine.samplers import make_sampler
from hwnas.engine.setup import SearchSetup
from hwnas.engine.study import all_failed, default_storage, evaluated_trials, open_storage, open_study
from hwnas.errors import CandidateError
from hwnas.space import SearchSpace


@dataclass
class SearchSession:
    """See the module docstring. ``trials`` is the study's budget of evaluated architectures; ``first_trial``
    the number of the first trial this session adds to the study."""

    setup: SearchSetup
    study: optuna.Study
    evaluator: Evaluator
    artifacts: Artifacts
    progress: Progress
    stop: StopToken
    out: Path
    first_trial: int = 0
    #: Why the strategy itself failed (its own training diverged), when it did.
    aborted: str | None = None

    @property
    def trials(self) -> int:
        return self.setup.config.trials

    def evaluated(self) -> int:
        """Architectures the study holds evaluated (what ``--trials`` counts)."""
        return len(evaluated_trials(self.study))

    def run(self, strategy: Any) -> bool:
        """Run ``strategy`` (a :class:`~hwnas.strategies.Strategy`) in this session. A candidate failure that
        escapes it — the strategy's own training, of a supernet or of DARTS, diverged — ends the search as one
        whose every trial failed (:meth:`failure` says why), not with a traceback."""
        try:
            return strategy.run(self)
        except CandidateError as exc:
            self.aborted = f"--strategy {strategy.name} failed: {exc}"
            return True

    def failure(self) -> str | None:
        """None unless every architecture this session evaluated failed (it evaluated at least one), or the
        strategy itself failed: then why, for the user (:func:`~hwnas.engine.study.all_failed`). The same for
        every strategy, so that no search whose candidates all fail ends as if it had succeeded."""
        if self.aborted:
            return f"the search found no model: {self.aborted}"
        summary = all_failed(evaluated_trials(self.study, since=self.first_trial))
        if summary is None:
            return None
        early = f", so the search stopped before the {self.trials} asked for" if self.evaluated() < self.trials else ""
        return f"the search found no model: {summary}{early} (the study keeps every trial and its reason)"

    def runner(self, *, space: SearchSpace | None = None, weights: Weights | None = None,
               tag: Mapping[str, Any] | None = None) -> TrialRunner:
        """A trial runner over ``space`` (default: the search's), with candidates' weights from ``weights``
        (default: trained from scratch), its trials tagged ``tag``."""
        return TrialRunner(space or self.setup.space, self.evaluator, self.setup.objectives, self.artifacts,
                           weights=weights, tag=tag)

    def run_trials(self, runner: TrialRunner) -> bool:
        """Propose and evaluate until the budget is met or the stop token is set; False when the sampler
        kept proposing nothing new (the space may be exhausted)."""
        if self.evaluated() >= self.trials:
            return True
        return run_trials(self.study, runner, self.trials, self.progress, self.stop)

    def evaluate_architecture(self, runner: TrialRunner, params: Mapping[str, Any]) -> optuna.trial.FrozenTrial:
        """Evaluate one given architecture (Optuna parameters of ``runner``'s space) as a new trial."""
        return evaluate_architecture(self.study, runner, params, self.progress)


def open_session(setup: SearchSetup, *, stop: StopToken, study_suffix: str = "",
                 signature: Mapping[str, Any] | None = None) -> SearchSession:
    """Create or resume the study of ``setup`` (its signature plus a strategy's ``signature``) in the output
    folder, with the evaluator, artifact store and progress bar of the search."""
    config = setup.config
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    for p in setup.profiles.values():
        p.bind(out)
    name = config.study or f"{setup.space.name}-{setup.task.name}{study_suffix}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are reported by the progress bar
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler = make_sampler(config.sampler, config.seed, config.population_size)
    study = open_study(open_storage(config.storage or default_storage(out)), name, sampler, setup.metric_names,
                       {**setup.signature(), **(signature or {})}, setup.task.direction)
    folder = artifact_dir(study)
    if folder is None:
        folder = out / "artifacts"
        set_artifact_dir(study, folder)
    evaluator = Evaluator(setup.task, list(setup.profiles.values()), setup.constraints, epochs=setup.epochs,
                          seed=config.seed, workdir=out / "work", space_name=setup.space.name,
                          train_threads=config.train_threads)
    progress = Progress(config.trials, min(len(evaluated_trials(study)), config.trials), config.progress)
    progress.announce(setup.task.metric, setup.task.direction, setup.objectives, list(setup.profiles.values()))
    return SearchSession(setup, study, evaluator, Artifacts(folder), progress, stop, out, len(study.trials))
