"""One candidate, end to end: build → (screen cheap costs) → train → lower to ONNX → accuracy of the exported
file → hardware costs of that same file. Pure of Optuna: the study layer records what this returns."""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import onnx

from hwnas import __version__
from hwnas.errors import CandidateError, ConfigError, ProfileError
from hwnas.lowering.export import set_metadata
from hwnas.graph import graph_costs, totals
from hwnas.lowering.precision import CONVERTED, deploy, describe_weights, verify
from hwnas.models.ffn import model_summary
from hwnas.profiles import FixedPoint, Profile, ProfileResult
from hwnas.search.objectives import Constraint, violations
from hwnas.space import ArchConfig
from hwnas.train import TrainSettings, seed_everything
from hwnas.train.tasks import Task

_log = logging.getLogger(__name__)

#: fp32 exports must reproduce the torch model to this tolerance (max abs difference of class scores).
PARITY_TOLERANCE = 1e-4


@dataclass
class Timings:
    """Seconds spent per phase of one trial."""

    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start


@dataclass
class CandidateResult:
    """What one candidate produced. ``trained`` is False when a cheap constraint screened it out."""

    config: ArchConfig
    seed: int
    costs: dict[str, ProfileResult]
    violations: dict[str, float]
    trained: bool
    val_score: float | None = None  # the task's metric (e.g. accuracy) of the exported model
    test_score: float | None = None
    torch_val_score: float | None = None
    onnx_max_abs_diff: float | None = None
    onnx_path: Path | None = None
    graph_sha256: str | None = None
    epochs_run: int | None = None
    #: ``params``, ``macs_per_sample`` of the lowered graph (op_costs at batch 1; MoE experts at their expected
    #: routed rows) and, per MoE layer, dense-equivalent and active MACs per token.
    model: dict[str, Any] | None = None

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations.values())


def fixed_point_of(profiles: Sequence[Profile]) -> FixedPoint | None:
    """The one fixed-point deployment the chosen profiles require (conflicting requirements are an error)."""
    specs = {p.name: p.fixed_point() for p in profiles if p.fixed_point() is not None}
    if len(set(specs.values())) > 1:
        raise ConfigError(f"profiles require different fixed-point bit-widths: {specs}; choose one")
    return next(iter(specs.values()), None)


def candidate_seed(seed: int, config: ArchConfig) -> int:
    """Training seed derived from (search seed, config): a trial is reproducible from (space, config, seed)."""
    return int(hashlib.sha256(f"{seed}:{config.key}".encode()).hexdigest()[:8], 16)


def graph_digest(path: Path) -> str:
    """SHA-256 of the serialised graph (metadata excluded): equal for a candidate and its exported copy."""
    return hashlib.sha256(onnx.load(str(path)).graph.SerializeToString(deterministic=True)).hexdigest()


class CandidateEvaluator:
    """Evaluates configs of one task with fixed profiles, constraints and training budget."""

    def __init__(
        self,
        task: Task,
        profiles: Sequence[Profile],
        constraints: Sequence[Constraint],
        *,
        epochs: int,
        seed: int,
        workdir: Path,
        space_name: str,
        train_threads: int = 1,
    ) -> None:
        self.task = task
        self.profiles = list(profiles)
        self.constraints = list(constraints)
        self.epochs = epochs
        self.seed = seed
        self.workdir = workdir
        self.space_name = space_name
        self.train_threads = train_threads
        self.fixed_point = fixed_point_of(self.profiles)
        workdir.mkdir(parents=True, exist_ok=True)

    def _metadata(self, config: ArchConfig, seed: int, model: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "hwnas.version": __version__,
            "hwnas.arch": config.to_dict(),
            "hwnas.dataset": self.task.describe(),
            "hwnas.space": self.space_name,
            "hwnas.seed": seed,
        }
        fp = model.fixed_point() if hasattr(model, "fixed_point") else None
        if fp:
            meta["hwnas.fixed_point"] = fp
        return meta

    def _build(self, config: ArchConfig, seed: int) -> Any:
        seed_everything(seed)
        try:
            return self.task.build(config, self.fixed_point)
        except (ValueError, TypeError) as exc:
            raise CandidateError(f"cannot build {config.to_dict()['values']}: {exc}") from exc

    def _lower(self, model: Any, config: ArchConfig, seed: int, path: Path) -> Path:
        if hasattr(model, "bake"):
            model.bake()
        meta = self._metadata(config, seed, model)
        weights = describe_weights(model) if hasattr(model, "weight_modes") else []
        if weights:
            meta["hwnas.layers"] = weights  # per weight: precision, zero fraction, 2:4 — checked below
        self.task.export(model, path, meta)
        modes = converted_modes(model)
        if modes:  # per-layer int8 / int4 / fp16 nodes: convert the fp32 graph into what ORT deploys
            fp32 = path.with_suffix(".fp32.onnx")
            path.replace(fp32)
            deploy(fp32, path, modes, self.task.calibration_feeds())
            set_metadata(path, meta)
            fp32.unlink()
        verify(path, weights)
        return path

    def _profile(self, path: Path) -> dict[str, ProfileResult]:
        costs = {}
        for p in self.profiles:
            try:
                costs[p.name] = p.profile(path)
            except ProfileError as exc:
                raise CandidateError(f"profile {p.name} failed: {exc}") from exc
            except Exception as exc:  # a crashing profiler fails this candidate, never the search
                raise CandidateError(f"profile {p.name} crashed: {type(exc).__name__}: {exc}") from exc
        return costs

    def evaluate(self, config: ArchConfig, timings: Timings, name: str) -> CandidateResult:
        """Run the whole pipeline for ``config``; files go to ``workdir/name*.onnx`` (removed on failure)."""
        try:
            return self._evaluate(config, timings, name)
        except BaseException as exc:
            for leftover in self.workdir.glob(f"{name}.*"):
                leftover.unlink(missing_ok=True)
            if isinstance(exc, Exception) and not isinstance(exc, CandidateError):
                # Whatever breaks inside one candidate fails that candidate, never the search.
                _log.debug("candidate %s failed", name, exc_info=True)
                raise CandidateError(f"unexpected {type(exc).__name__}: {exc}") from exc
            raise

    def _evaluate(self, config: ArchConfig, timings: Timings, name: str) -> CandidateResult:
        seed = candidate_seed(self.seed, config)
        with timings.phase("build"):
            model = self._build(config, seed)
        if self.constraints:
            # Cheap objectives first: cost the untrained candidate; screened-out ones are never trained.
            screen = self.workdir / f"{name}.screen.onnx"
            with timings.phase("export"):
                self._lower(copy.deepcopy(model), config, seed, screen)
            with timings.phase("profile"):
                costs = self._profile(screen)
            screen.unlink(missing_ok=True)
            broken = violations(self.constraints, costs)
            if any(v > 0 for v in broken.values()):
                return CandidateResult(config, seed, costs, broken, trained=False)
        with timings.phase("train"):
            settings = TrainSettings(
                epochs=self.epochs, seed=seed,
                lr=float(config.get("lr", TrainSettings.lr)),
                batch_size=int(config.get("batch_size", TrainSettings.batch_size)),
                weight_decay=float(config.get("weight_decay", TrainSettings.weight_decay)),
                threads=self.train_threads,
            )
            torch_val, epochs_run = self.task.train(model, settings)
        return self.finish(model, config, seed, timings, name, torch_val, epochs_run)

    def finish(self, model: Any, config: ArchConfig, seed: int, timings: Timings, name: str,
               torch_val: float | None, epochs_run: int | None) -> CandidateResult:
        """Lower a model that has its final weights, score the exported file and cost it on every profile."""
        path = self.workdir / f"{name}.onnx"
        with timings.phase("export"):
            self._lower(model, config, seed, path)
            val = self.task.quality(path, "val")
            test = self.task.quality(path, "test")
            diff = None if converted_modes(model) else self._parity(model, path)
        with timings.phase("profile"):
            costs = self._profile(path)
        return CandidateResult(
            config, seed, costs, violations(self.constraints, costs), trained=True,
            val_score=val, test_score=test, torch_val_score=torch_val,
            onnx_max_abs_diff=diff, onnx_path=path, graph_sha256=graph_digest(path), epochs_run=epochs_run,
            model=summarize(model, path),
        )

    def _parity(self, model: Any, path: Path) -> float:
        diff = self.task.parity(model, path)
        if not diff <= PARITY_TOLERANCE:
            raise CandidateError(f"exported ONNX differs from the torch model by {diff:.3g} (> {PARITY_TOLERANCE})")
        return diff


def summarize(model: Any, path: Path) -> dict[str, Any]:
    """What :attr:`CandidateResult.model` holds for a trained candidate and its lowered file."""
    try:
        macs = totals(graph_costs(path, 1))["macs"]
    except (ProfileError, ValueError):  # a graph op_costs cannot read is still a valid candidate
        macs = None
    return {**model_summary(model), "macs_per_sample": macs}


def converted_modes(model: Any) -> dict[str, str]:
    """The weights whose precision needs a graph conversion (int8 / int4 / fp16), by initializer name."""
    modes = model.weight_modes() if hasattr(model, "weight_modes") else {}
    return {name: mode for name, mode in modes.items() if mode in CONVERTED}


def quality_value(result: CandidateResult, task: Task) -> float:
    """The quality objective: validation score of the exported model; the task's worst for untrained ones."""
    return result.val_score if result.val_score is not None else task.untrained_value


def cost_values(result: CandidateResult, objectives: Sequence[Any]) -> list[float]:
    return [result.costs[o.profile][o.metric].value for o in objectives]


def metrics_dict(costs: Mapping[str, ProfileResult]) -> dict[str, Any]:
    return {name: r.to_dict()["metrics"] for name, r in costs.items()}
