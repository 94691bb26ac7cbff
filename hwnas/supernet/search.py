"""The supernet strategy's work (:mod:`hwnas.strategies.supernet`): train one weight-sharing supernet, search its
subnets on inherited weights through the engine's runner, fine-tune the final Pareto subnets."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hwnas.engine.evaluator import Evaluator, Prepared, Timings
from hwnas.engine.pareto import pareto_trials
from hwnas.engine.records import read_tag, write_note
from hwnas.errors import CandidateError, ConfigError
from hwnas.space import ArchConfig, SearchSpace
from hwnas.supernet.mlp import MLPSupernet, arch_space
from hwnas.supernet.spaces import restrict
from hwnas.supernet.train import train_supernet
from hwnas.supernet.transformer import TransformerSupernet
from hwnas.train import seed_everything
from hwnas.engine.tasks import ClassificationTask, LanguageModelTask, Task

if TYPE_CHECKING:
    from hwnas.engine.session import SearchSession
    from hwnas.strategies.supernet import SupernetOptions

_log = logging.getLogger(__name__)


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


class InheritedWeights:
    """A subnet's weights inherited from ``supernet`` (no training), or after ``finetune_epochs`` of the task's
    normal training from those weights (at ``lr``, ``batch_size``)."""

    def __init__(self, supernet: torch.nn.Module, *, finetune_epochs: int = 0, lr: float = 1e-3,
                 batch_size: int = 32) -> None:
        self.supernet, self.finetune_epochs, self.lr, self.batch_size = supernet, finetune_epochs, lr, batch_size

    def prepare(self, evaluator: Evaluator, config: ArchConfig, seed: int, timings: Timings) -> Prepared:
        with timings.phase("build"):
            try:
                model = self.supernet.extract(self.supernet.arch_of(config), evaluator.fixed_point)
            except (ValueError, TypeError, KeyError) as exc:
                raise CandidateError(f"cannot extract subnet {config.to_dict()['values']}: {exc}") from exc
        if not self.finetune_epochs:
            return Prepared(model, None, 0)
        with timings.phase("train"):
            seed_everything(seed)
            settings = evaluator.train_settings(config, seed, epochs=self.finetune_epochs, lr=self.lr,
                                                batch_size=self.batch_size)
            torch_val, epochs_run = evaluator.train(model, settings)
        return Prepared(model, torch_val, epochs_run)


class SupernetSearch:
    """The ``supernet`` strategy for one space and task (validated on construction, before any training)."""

    def __init__(self, space: SearchSpace, task: Task, *, seed: int, epochs: int, options: "SupernetOptions") -> None:
        self.restriction = restrict(space, "supernet")
        self.task, self.seed = task, seed
        o = options
        self.supernet_epochs = int(o.supernet_epochs or epochs)
        default_lr = 1e-2 if space.model == "mlp" else 3e-3
        self.lr = float(o.supernet_lr or self.restriction.hyper.get("lr", default_lr))
        self.batch_size = int(o.supernet_batch_size or self.restriction.hyper.get("batch_size", 32))
        self.n_random, self.finetune_epochs = int(o.n_random), int(o.finetune_epochs)
        self.distill = float(default_distill(space.model) if o.distill is None else o.distill)
        self.supernet = build_supernet(self.restriction.space, task)  # checks the family before training

    def settings(self) -> dict[str, Any]:
        return {"supernet_epochs": self.supernet_epochs, "lr": self.lr, "batch_size": self.batch_size,
                "n_random": self.n_random, "distill": self.distill, "space": self.restriction.describe()}

    def train(self, checkpoint: Path) -> dict[str, Any]:
        """Train (or resume, or load) the supernet from ``checkpoint``."""
        seed_everything(self.seed)
        self.supernet = build_supernet(self.restriction.space, self.task)
        steps = getattr(self.task, "steps_per_epoch", 100)
        return train_supernet(self.supernet, self.task.data, epochs=self.supernet_epochs, lr=self.lr,
                              batch_size=self.batch_size, seed=self.seed, n_random=self.n_random,
                              checkpoint=checkpoint, steps_per_epoch=steps, distill=self.distill)

    def run(self, session: "SearchSession", checkpoint: Path) -> bool:
        stats = self.train(checkpoint)
        write_note(session.study, "supernet", "training", stats)
        (session.out / "supernet.json").write_text(
            json.dumps({"training": stats, "hwnas.strategy": {"name": "supernet", **self.settings()}}, indent=2))
        runner = session.runner(space=self.restriction.space, weights=InheritedWeights(self.supernet),
                                tag={"name": "supernet", "weights": "inherited"})
        complete = session.run_trials(runner)
        if self.finetune_epochs and not session.stop.stopped:
            self.finetune(session)
        return complete

    def finetune(self, session: "SearchSession") -> None:
        """Fine-tune every inherited-weight Pareto subnet not fine-tuned yet; each becomes a new trial."""
        weights = InheritedWeights(self.supernet, finetune_epochs=self.finetune_epochs, lr=self.lr / 10,
                                   batch_size=self.batch_size)
        done = {read_tag(t).get("finetuned_from") for t in session.study.trials}
        for source in pareto_trials(session.study):
            if read_tag(source).get("weights") != "inherited" or source.number in done:
                continue
            tag = {"name": "supernet", "weights": "finetuned", "finetuned_from": source.number,
                   "finetune_epochs": self.finetune_epochs}
            began = time.perf_counter()
            trial = session.evaluate_architecture(
                session.runner(space=self.restriction.space, weights=weights, tag=tag), source.params)
            _log.info("fine-tuned trial %d as trial %d in %.1fs", source.number, trial.number,
                      time.perf_counter() - began)
