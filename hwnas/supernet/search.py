"""``--strategy supernet``: train one weight-sharing supernet (sandwich rule, in-place distillation), then run
the usual Optuna multi-objective search over its subnets, each evaluated with **inherited weights** and
exported / profiled / recorded exactly like a trained-from-scratch trial; optionally fine-tune the final
Pareto subnets (recorded as extra trials) before the Pareto files are written."""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore

from hwnas.errors import CandidateError, ConfigError
from hwnas.search.evaluate import CandidateEvaluator, CandidateResult, Timings, candidate_seed
from hwnas.search.objectives import Objective
from hwnas.search.pareto import pareto_trials
from hwnas.search.runner import STOP, Progress, run_trials
from hwnas.search.study import RESULT, evaluated_trials
from hwnas.space import ArchConfig, SearchSpace
from hwnas.supernet.mlp import MLPSupernet, arch_space
from hwnas.supernet.spaces import restrict
from hwnas.supernet.strategies import STRATEGY_ATTR, TaggedRunner
from hwnas.supernet.train import train_supernet
from hwnas.supernet.transformer import TransformerSupernet
from hwnas.train import TrainSettings, seed_everything
from hwnas.train.tasks import ClassificationTask, LanguageModelTask, Task

_log = logging.getLogger(__name__)
CHECKPOINT = "supernet.pt"


def build_supernet(space: SearchSpace, task: Task) -> torch.nn.Module:
    """The supernet covering a (restricted) space for a task: MLP on tabular data, Transformer LM on text."""
    if isinstance(task, ClassificationTask) and space.model == "mlp":
        activation = str(space.fixed.get("activation", "relu"))
        return MLPSupernet.from_space(arch_space(space), task.data.n_features, task.data.n_classes, task.stats,
                                      activation)
    if isinstance(task, LanguageModelTask) and space.model == "transformer":
        return TransformerSupernet.from_space(space, task.data.vocab_size, task.data.seq_len)
    raise ConfigError(f"strategy 'supernet' covers MLP classifiers on tabular data and Transformer language "
                      f"models; not model {space.model!r} on dataset {task.name!r}")


def default_distill(model: str) -> float:
    """Weight of in-place distillation for the non-largest subnets: BigNAS's 1 for MLPs; 0 (hard labels) for
    Transformer LMs, where distilling from a still-untrained teacher over a whole vocabulary held the largest
    subnet at perplexity 26 after 100 sandwich steps vs 12.4 with hard labels (stand-alone: 12.3)."""
    return 1.0 if model == "mlp" else 0.0


class InheritedEvaluator(CandidateEvaluator):
    """Evaluates a subnet config with the weights it inherits from ``supernet`` (no training), or after
    ``finetune_epochs`` of normal training from those weights; export, quality and profiles as usual."""

    def __init__(self, base: CandidateEvaluator, supernet: torch.nn.Module, *, finetune_epochs: int = 0,
                 lr: float = 1e-3, batch_size: int = 32) -> None:
        super().__init__(base.task, base.profiles, base.constraints, epochs=base.epochs, seed=base.seed,
                         workdir=base.workdir, space_name=base.space_name, train_threads=base.train_threads)
        self.supernet, self.finetune_epochs, self.lr, self.batch_size = supernet, finetune_epochs, lr, batch_size

    def _evaluate(self, config: ArchConfig, timings: Timings, name: str) -> CandidateResult:
        seed = candidate_seed(self.seed, config)
        with timings.phase("build"):
            try:
                model = self.supernet.extract(self.supernet.arch_of(config), self.fixed_point)
            except (ValueError, TypeError, KeyError) as exc:
                raise CandidateError(f"cannot extract subnet {config.to_dict()['values']}: {exc}") from exc
        torch_val, epochs_run = None, 0
        if self.finetune_epochs:
            with timings.phase("train"):
                seed_everything(seed)
                settings = TrainSettings(epochs=self.finetune_epochs, seed=seed, lr=self.lr,
                                         batch_size=self.batch_size, threads=self.train_threads)
                torch_val, epochs_run = self.task.train(model, settings)
        return self.finish(model, config, seed, timings, name, torch_val, epochs_run)


class SupernetPlan:
    """The ``supernet`` strategy for one space and task (validated on construction, before any training)."""

    study_suffix = "-supernet"

    def __init__(self, space: SearchSpace, task: Task, *, seed: int, epochs: int, supernet_epochs: int | None = None,
                 supernet_lr: float | None = None, n_random: int = 2, finetune_epochs: int = 0,
                 batch_size: int | None = None, distill: float | None = None) -> None:
        self.restriction = restrict(space, "supernet")
        self.task, self.seed = task, seed
        self.supernet_epochs = int(supernet_epochs or epochs)
        default_lr = 1e-2 if space.model == "mlp" else 3e-3
        self.lr = float(supernet_lr or self.restriction.hyper.get("lr", default_lr))
        self.batch_size = int(batch_size or self.restriction.hyper.get("batch_size", 32))
        self.n_random, self.finetune_epochs = int(n_random), int(finetune_epochs)
        self.distill = float(default_distill(space.model) if distill is None else distill)
        if not 0.0 <= self.distill <= 1.0:
            raise ConfigError(f"distill must be in [0, 1], got {self.distill}")
        for key, value, low in (("supernet-epochs", self.supernet_epochs, 1), ("finetune-epochs", self.finetune_epochs, 0),
                                ("n-random", self.n_random, 0), ("batch-size", self.batch_size, 1)):
            if value < low:
                raise ConfigError(f"--{key} must be >= {low}, got {value}")
        self.supernet = build_supernet(self.restriction.space, task)  # checks the family before training

    def signature(self) -> dict[str, Any]:
        return {"hwnas.strategy": {"name": "supernet", "supernet_epochs": self.supernet_epochs, "lr": self.lr,
                                   "batch_size": self.batch_size, "n_random": self.n_random,
                                   "distill": self.distill,
                                   "space": self.restriction.describe()}}

    def train(self, out: Path) -> dict[str, Any]:
        """Train (or resume, or load) the supernet; its checkpoint is ``out/supernet.pt``."""
        seed_everything(self.seed)
        self.supernet = build_supernet(self.restriction.space, self.task)
        steps = getattr(self.task, "steps_per_epoch", 100)
        return train_supernet(self.supernet, self.task.data, epochs=self.supernet_epochs, lr=self.lr,
                              batch_size=self.batch_size, seed=self.seed, n_random=self.n_random,
                              checkpoint=out / CHECKPOINT, steps_per_epoch=steps, distill=self.distill)

    def run(self, study: optuna.Study, evaluator: CandidateEvaluator, objectives: Sequence[Objective],
            artifacts: FileSystemArtifactStore, trials: int, progress: Progress, out: Path) -> bool:
        stats = self.train(out)
        study.set_user_attr("hwnas.supernet.training", stats)
        (out / "supernet.json").write_text(json.dumps({"training": stats, **self.signature()}, indent=2))
        inherited = InheritedEvaluator(evaluator, self.supernet)
        runner = TaggedRunner(self.restriction.space, inherited, objectives, artifacts,
                              {"name": "supernet", "weights": "inherited"})
        complete = True
        if len(evaluated_trials(study)) < trials:
            complete = run_trials(study, runner, trials, progress, pareto_trials)
        if self.finetune_epochs and not STOP.is_set():
            self.finetune(study, runner)
        return complete

    def finetune(self, study: optuna.Study, runner: TaggedRunner) -> None:
        """Fine-tune every inherited-weight Pareto subnet not fine-tuned yet; each becomes a new trial."""
        tuner = InheritedEvaluator(runner.evaluator, self.supernet, finetune_epochs=self.finetune_epochs,
                                   lr=self.lr / 10, batch_size=self.batch_size)
        done = {t.user_attrs.get(STRATEGY_ATTR, {}).get("finetuned_from") for t in study.trials}
        for source in pareto_trials(study):
            if source.user_attrs.get(STRATEGY_ATTR, {}).get("weights") != "inherited" or source.number in done:
                continue
            study.enqueue_trial(source.params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with Study.optimize"
                trial = study.ask()
            trial.set_user_attr(STRATEGY_ATTR, {"name": "supernet", "weights": "finetuned",
                                                "finetuned_from": source.number,
                                                "finetune_epochs": self.finetune_epochs})
            config = runner.space.suggest(trial)
            trial.set_user_attr("arch", {"key": config.key, **config.to_dict()})
            timings = Timings()
            began = time.perf_counter()
            try:
                result = tuner.evaluate(config, timings, name=f"trial_{trial.number:05d}")
                values, record = runner._record(trial, result)
            except CandidateError as exc:
                trial.set_user_attr(RESULT, {"status": "failed", "fail_reason": str(exc), "timings": timings.phases})
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            trial.set_user_attr(RESULT, {**record, "timings": timings.phases})
            study.tell(trial, values)
            _log.info("fine-tuned trial %d as trial %d in %.1fs", source.number, trial.number,
                      time.perf_counter() - began)
