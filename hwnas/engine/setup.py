"""A :class:`~hwnas.engine.config.SearchConfig` resolved into what a search runs with — space, task, profiles,
objectives, constraints — every cross-check done, before any study is opened or candidate trained."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from hwnas.engine.config import SearchConfig
from hwnas.data import load_for_family
from hwnas.engine.objectives import ACCURACY, Constraint, Objective, parse_constraints, parse_objectives
from hwnas.errors import ConfigError
from hwnas.profiles import Profile, get as get_profile
from hwnas.profiles.measure import for_search
from hwnas.space import SearchSpace, load_space

if TYPE_CHECKING:
    from hwnas.engine.tasks import Task


@dataclass(frozen=True)
class SearchSetup:
    """The resolved search. ``profiles`` by name, in the order given; ``epochs`` with the task's default."""

    config: SearchConfig
    space: SearchSpace
    task: "Task"
    profiles: dict[str, Profile]
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    epochs: int

    @property
    def metric_names(self) -> list[str]:
        """The study's objectives: the task's quality, then every hardware objective."""
        return [self.task.metric] + [o.name for o in self.objectives]

    def signature(self) -> dict[str, Any]:
        """What a resumed search must share with the one that made the study."""
        return {
            "hwnas.space": self.space.describe(),
            "hwnas.dataset": self.task.describe(),
            "hwnas.profiles": {n: p.describe() | {"file": None} for n, p in self.profiles.items()},
            "hwnas.objectives": self.metric_names,
            "hwnas.constraints": [c.name for c in self.constraints],
            "hwnas.epochs": self.epochs,
            "hwnas.seed": self.config.seed,
        }


def resolve(config: SearchConfig) -> SearchSetup:
    """Load and cross-check everything ``config`` names; ConfigError (or another HwnasError) on bad input.

    The cheap checks come first and torch is imported last, so that a mistake is reported at once."""
    space = config.space if isinstance(config.space, SearchSpace) else load_space(config.space)
    profiles = _profiles(config.profiles, config.profile_overrides)
    _check_compatible(space, profiles)
    parse_objectives([o for o in config.objectives if "." in o], profiles)  # PROFILE.METRIC typos, at once
    constraints = parse_constraints(config.constraints, profiles)
    data = config.dataset  # a name or path is loaded here; a loaded dataset or a Task goes to make_task as it is
    if isinstance(data, (str, Path)):
        data = load_for_family(space.model, data, target=config.target, seed=config.seed, fixed=space.fixed)
    from hwnas.engine.tasks import make_task

    task = make_task(space.model, data, target=config.target, seed=config.seed, fixed=space.fixed)
    objectives = parse_objectives(config.objectives, profiles, quality=(ACCURACY, task.metric))
    _check_available(profiles)
    epochs = task.default_epochs if config.epochs is None else config.epochs
    return SearchSetup(config, space, task, profiles, tuple(objectives), tuple(constraints), epochs)


def _profiles(names: Sequence[Any], overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Profile]:
    out: dict[str, Profile] = {}
    for item in names:
        p = item if isinstance(item, Profile) else for_search(get_profile(str(item), dict(overrides.get(item, {}))))
        if p.name in out:
            raise ConfigError(f"profile {p.name!r} was given twice")
        out[p.name] = p
    if not out:
        raise ConfigError("choose at least one hardware profile (--profile)")
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
        reason = p.available() or p.preflight()
        if reason:
            raise ConfigError(f"profile {p.name!r} cannot run here: {reason}")
