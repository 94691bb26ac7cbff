"""One candidate, end to end: build → (screen the cheap costs) → train → lower to ONNX → quality of the exported
file → hardware costs of that same file. Pure of Optuna: the runner records what this returns.

Strategies compose the public steps (:meth:`Evaluator.build`, :meth:`~Evaluator.train`,
:meth:`~Evaluator.lower`, :meth:`~Evaluator.profile`, :meth:`~Evaluator.finish`), or hand
:meth:`Evaluator.evaluate` a :class:`Weights` source when a candidate's weights do not come from training it
from scratch (e.g. inherited from a supernet).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import math
import numbers
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Sequence

from hwnas.engine.objectives import Constraint, screening_violations, violations
from hwnas.errors import CandidateError, ConfigError, ProfileError, SpaceError
from hwnas.lowering import LoweredModel, lower
from hwnas.models.deploy import DeployableModule
from hwnas.models.ffn import model_summary
from hwnas.precision import FixedPoint
from hwnas.profiles import Bounds, Metric, Profile, ProfileResult
from hwnas.space import ArchConfig, SearchSpace
from hwnas.train import TrainSettings, seed_everything
from hwnas.engine.tasks import Task

_log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class CandidateResult:
    """What one candidate produced. ``trained`` is False when constraints (``screened_by``) screened it out:
    then there is no lowered file and no quality, ``costs`` are the untrained candidate's and ``violations``
    the least the trained one would have (:func:`~hwnas.engine.objectives.screening_violations`)."""

    config: ArchConfig
    seed: int
    costs: dict[str, ProfileResult]
    violations: dict[str, float]
    trained: bool
    val_score: float | None = None  # the task's metric (e.g. accuracy) of the exported model
    test_score: float | None = None
    torch_val_score: float | None = None
    lowered: LoweredModel | None = None
    epochs_run: int | None = None
    #: ``params``, ``macs_per_sample`` of the lowered graph (op_costs at batch 1; MoE experts at their expected
    #: routed rows) and, per MoE layer, dense-equivalent and active MACs per token.
    model: dict[str, Any] | None = None
    #: The constraints that screened it out before training (each proved broken for any trained weights).
    screened_by: tuple[str, ...] = ()

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations.values())


@dataclass(frozen=True)
class Prepared:
    """A candidate model with its final weights, and what its training (if any) reported."""

    model: DeployableModule
    torch_val: float | None = None
    epochs_run: int | None = None


class Weights(Protocol):
    """Where a candidate's final weights come from when it is not trained from scratch."""

    def prepare(self, evaluator: "Evaluator", config: ArchConfig, seed: int, timings: Timings) -> Prepared: ...


def fixed_point_of(profiles: Sequence[Profile]) -> FixedPoint | None:
    """The one fixed-point deployment the chosen profiles require (conflicting requirements are an error)."""
    specs = {p.name: p.fixed_point() for p in profiles if p.fixed_point() is not None}
    if len(set(specs.values())) > 1:
        raise ConfigError(f"profiles require different fixed-point bit-widths: {specs}; choose one")
    return next(iter(specs.values()), None)


def dry_build(space: SearchSpace, task: Task, profiles: Sequence[Profile]) -> None:
    """Build the smallest and the largest configuration of ``space`` (:meth:`SearchSpace.extremes`) for
    ``task`` on torch's meta device (shapes only: no memory, no training), so that a mistake between
    parameters (heads that do not divide d_model, blocks that do not divide a width, int4 block-diagonal
    layers) is one SpaceError before any study is opened, not a failure of every trial."""
    import torch

    fixed_point = fixed_point_of(profiles)
    for side, config in space.extremes().items():
        try:
            with torch.device("meta"):
                task.build(config, fixed_point)
        except Exception as exc:  # whatever a builder raises, the space cannot be searched
            reason = (str(exc).strip().splitlines() or [""])[0]
            if not isinstance(exc, ValueError):
                reason = f"{type(exc).__name__}: {reason}"
            values = ", ".join(f"{k}={v}" for k, v in config.to_dict()["values"].items())
            values = values if len(values) <= 300 else values[:300] + " …"
            raise SpaceError(f"{space.origin}: the {side} configuration cannot be built: {reason} ({values})") from None


def candidate_seed(seed: int, config: ArchConfig) -> int:
    """Training seed derived from (search seed, config): a trial is reproducible from (space, config, seed)."""
    return int(hashlib.sha256(f"{seed}:{config.key}".encode()).hexdigest()[:8], 16)


class Evaluator:
    """Evaluates configs of one task with fixed profiles, constraints and training budget."""

    def __init__(self, task: Task, profiles: Sequence[Profile], constraints: Sequence[Constraint], *, epochs: int,
                 seed: int, workdir: Path, space_name: str, train_threads: int = 1) -> None:
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

    # -- the steps ----------------------------------------------------------------------------------------
    def seed_for(self, config: ArchConfig) -> int:
        return candidate_seed(self.seed, config)

    def build(self, config: ArchConfig, seed: int) -> DeployableModule:
        """The untrained model of ``config`` (initialised from ``seed``), at the profiles' fixed point."""
        seed_everything(seed)
        try:
            return self.task.build(config, self.fixed_point)
        except (ValueError, TypeError) as exc:
            raise CandidateError(f"cannot build {config.to_dict()['values']}: {exc}") from exc

    def train_settings(self, config: ArchConfig, seed: int, *, epochs: int | None = None, lr: float | None = None,
                       batch_size: int | None = None) -> TrainSettings:
        """The search's training settings, with the config's ``lr`` / ``batch_size`` / ``weight_decay``."""
        return TrainSettings(
            epochs=epochs or self.epochs, seed=seed,
            lr=float(lr or config.get("lr", TrainSettings.lr)),
            batch_size=int(batch_size or config.get("batch_size", TrainSettings.batch_size)),
            weight_decay=float(config.get("weight_decay", TrainSettings.weight_decay)),
            threads=self.train_threads,
        )

    def train(self, model: DeployableModule, settings: TrainSettings) -> tuple[float, int]:
        """Train in place with the task's trainer; (validation quality of the torch model, epochs run)."""
        return self.task.train(model, settings)

    def lower(self, model: DeployableModule, config: ArchConfig, seed: int, path: Path, *,
              check_parity: bool = True) -> LoweredModel:
        """Lower ``model`` exactly as it is deployed, with the metadata that makes the file self-describing."""
        meta = {"hwnas.arch": config.to_dict(), "hwnas.dataset": self.task.describe(), "hwnas.space": self.space_name,
                "hwnas.seed": seed}
        return lower(model, path, self.task.exporter, meta, check_parity=check_parity)

    def profile(self, path: Path) -> dict[str, ProfileResult]:
        """Every profile's costs of one lowered file; a failing profile fails this candidate, not the search,
        and so does one that returns no number, or one that is not a cost (NaN, inf, negative: Optuna would
        refuse the trial, or the Pareto set would be nonsense)."""
        costs = {}
        for p in self.profiles:
            try:
                result = p.profile(path)
            except ProfileError as exc:
                raise CandidateError(f"profile {p.name} failed: {exc}") from exc
            except Exception as exc:  # a crashing profiler fails this candidate, never the search
                raise CandidateError(f"profile {p.name} crashed: {type(exc).__name__}: {exc}") from exc
            costs[p.name] = _checked_costs(p, result)
        return costs

    def bounds(self, path: Path, costs: Mapping[str, ProfileResult]) -> dict[str, dict[str, Bounds]]:
        """Every profile's :meth:`~hwnas.profiles.Profile.screening_bounds` of the untrained file ``path``
        (priced ``costs``); a failing profile, or a bound that is not a number >= 0, fails this candidate."""
        out = {}
        for p in self.profiles:
            try:
                bounds = p.screening_bounds(path, costs[p.name])
            except ProfileError as exc:
                raise CandidateError(f"profile {p.name} failed to bound its metrics: {exc}") from exc
            except Exception as exc:  # a crashing profiler fails this candidate, never the search
                raise CandidateError(f"profile {p.name} crashed bounding its metrics: {type(exc).__name__}: {exc}"
                                     ) from exc
            out[p.name] = _checked_bounds(p, bounds)
        return out

    def screen(self, model: DeployableModule, config: ArchConfig, seed: int, timings: Timings,
               name: str) -> CandidateResult | None:
        """Cheap objectives first: cost the untrained candidate; the result when a constraint screens it out
        (it is then never trained), None when it may be trained.

        The untrained weights are not the trained ones, and some metrics depend on the weight values (a printed
        circuit's area), so a constraint screens a candidate out only when the profile's
        :meth:`~hwnas.profiles.Profile.screening_bounds` prove that no trained weights can meet it; a candidate
        whose violations are unproven is trained and checked on its final costs."""
        if not self.constraints:
            return None
        screen = self.workdir / f"{name}.screen.onnx"
        with timings.phase("export"):
            self.lower(copy.deepcopy(model), config, seed, screen, check_parity=False)  # untrained: costs only
        with timings.phase("profile"):
            costs = self.profile(screen)
            bounds = self.bounds(screen, costs)
        screen.unlink(missing_ok=True)
        least = screening_violations(self.constraints, bounds)
        screened_by = tuple(c for c, v in least.items() if v > 0)
        if screened_by:
            return CandidateResult(config, seed, costs, least, trained=False, screened_by=screened_by)
        return None

    def finish(self, model: DeployableModule, config: ArchConfig, seed: int, timings: Timings, name: str,
               torch_val: float | None, epochs_run: int | None) -> CandidateResult:
        """Lower a model that has its final weights, score the exported file and cost it on every profile."""
        path = self.workdir / f"{name}.onnx"
        with timings.phase("export"):
            lowered = self.lower(model, config, seed, path)
            val = _checked_quality(self.task, self.task.quality(path, "val"), "validation")
            test = _checked_quality(self.task, self.task.quality(path, "test"), "test")
        with timings.phase("profile"):
            costs = self.profile(path)
        return CandidateResult(
            config, seed, costs, violations(self.constraints, costs), trained=True, val_score=val, test_score=test,
            torch_val_score=torch_val, lowered=lowered, epochs_run=epochs_run, model=summarize(model, path),
        )

    # -- the whole pipeline -------------------------------------------------------------------------------
    def evaluate(self, config: ArchConfig, timings: Timings, name: str, weights: Weights | None = None
                 ) -> CandidateResult:
        """Run the pipeline for ``config``: trained from scratch, or with the weights ``weights`` prepares.

        Files go to ``workdir/name*.onnx``. Any exception fails this candidate with a
        :class:`~hwnas.errors.CandidateError` whose ``artifact`` is the last file it lowered (kept for
        inspection); the other leftovers are removed."""
        try:
            seed = self.seed_for(config)
            if weights is not None:
                prepared = weights.prepare(self, config, seed, timings)
            else:
                with timings.phase("build"):
                    model = self.build(config, seed)
                screened = self.screen(model, config, seed, timings, name)
                if screened is not None:
                    return screened
                with timings.phase("train"):
                    torch_val, epochs_run = self.train(model, self.train_settings(config, seed))
                prepared = Prepared(model, torch_val, epochs_run)
            return self.finish(prepared.model, config, seed, timings, name, prepared.torch_val, prepared.epochs_run)
        except BaseException as exc:
            failed = isinstance(exc, Exception)  # an interrupt (Ctrl-C) keeps nothing: there is no trial to keep it
            kept = self._clean_up(name, keep=failed)
            if isinstance(exc, CandidateError):
                exc.artifact = kept
                raise
            if failed:  # whatever breaks inside one candidate fails it, never the search
                _log.debug("candidate %s failed", name, exc_info=True)
                raise CandidateError(f"unexpected {type(exc).__name__}: {exc}", artifact=kept) from exc
            raise

    def _clean_up(self, name: str, *, keep: bool) -> Path | None:
        """Remove a failed candidate's files but (with ``keep``) its newest lowered one, renamed
        ``name.failed.onnx`` and returned."""
        leftovers = sorted(self.workdir.glob(f"{name}.*"), key=lambda p: p.stat().st_mtime_ns)
        onnx_files = [p for p in leftovers if p.suffix == ".onnx"]
        kept = None
        if keep and onnx_files:
            kept = onnx_files[-1].replace(self.workdir / f"{name}.failed.onnx")
        for leftover in leftovers:
            if leftover != kept:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        return kept


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _checked_costs(profile: Profile, result: Any) -> ProfileResult:
    """``result`` when it holds every metric of ``profile``, each a finite number >= 0; CandidateError if not."""
    if not isinstance(result, ProfileResult):
        raise CandidateError(f"profile {profile.name} returned {type(result).__name__}, not a ProfileResult")
    for name in profile.metrics:
        metric = result.metrics.get(name)
        if not isinstance(metric, Metric):
            raise CandidateError(f"profile {profile.name} returned no metric {name!r}")
    for name, metric in result.metrics.items():
        if not (_finite(metric.value) and metric.value >= 0):
            raise CandidateError(f"profile {profile.name} returned {name} = {metric.value!r}: a cost must be a "
                                 "finite number >= 0")
    return result


def _checked_bounds(profile: Profile, bounds: Any) -> dict[str, Bounds]:
    """``bounds`` when each is a :class:`Bounds` of finite numbers >= 0; CandidateError if not. A metric the
    profile leaves out proves nothing (``Bounds()``)."""
    if not isinstance(bounds, Mapping):
        raise CandidateError(f"profile {profile.name} returned {type(bounds).__name__} as screening bounds, not a "
                             "mapping")
    for name, b in bounds.items():
        if not (isinstance(b, Bounds) and _finite(b.low) and b.low >= 0
                and (b.high is None or (_finite(b.high) and b.high >= b.low))):
            raise CandidateError(f"profile {profile.name} returned {name} bounds {b!r}: need finite 0 <= low <= high")
    return dict(bounds)


def _checked_quality(task: Task, value: Any, split: str) -> float:
    """The exported model's quality on a split, when it is a finite number; CandidateError if not."""
    if not _finite(value):
        raise CandidateError(f"the exported model's {split} {task.metric} is {value!r}, not a finite number")
    return float(value)


def summarize(model: DeployableModule, path: Path) -> dict[str, Any]:
    """What :attr:`CandidateResult.model` holds for a trained candidate and its lowered file."""
    from hwnas.graph import graph_costs, totals

    try:
        macs = totals(graph_costs(path, 1))["macs"]
    except (ProfileError, ValueError):  # a graph op_costs cannot read is still a valid candidate
        macs = None
    return {**model_summary(model), "macs_per_sample": macs}


def quality_value(result: CandidateResult, task: Task) -> float:
    """The quality objective: validation score of the exported model; the task's worst for untrained ones."""
    return result.val_score if result.val_score is not None else task.untrained_value

