"""The description of a search: one validated :class:`SearchConfig`, shared by the CLI and the Python API.

Every field declares its command-line flag and help (:func:`field_option`), so ``hwnas search``'s options are
generated from this one declaration, as are the strategies' (:mod:`hwnas.strategies`). Construction checks
everything that needs no file, model or profile: types and bounds and the sampler. The strategy and its
options are the strategies' business (:meth:`hwnas.strategies.Strategy.parse_options`, called by
:func:`hwnas.search` first); what needs loading (the space, the dataset, the profiles, objectives and
constraints against those profiles) is resolved by :func:`hwnas.engine.setup.resolve` — all before any work.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence


from hwnas.engine.samplers import SAMPLERS
from hwnas.errors import ConfigError
from hwnas.files import parse_yaml
from hwnas.validation import check_choice, check_int


def field_option(default: Any, flag: str | None, help: str, **cli: Any) -> Any:
    """A dataclass field with its command-line flag (None: positional or not on the command line) and help;
    ``cli`` holds further argparse settings (``action``, ``metavar``, ``dest`` …)."""
    meta = {"flag": flag, "help": help, "cli": cli}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def parse_profile_sets(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` strings (``--profile-set``) → ``{NAME: {KEY: VALUE}}``, values read as YAML scalars."""
    out: dict[str, dict[str, Any]] = {}
    for text in items:
        left, sep, value = text.partition("=")
        name, dot, key = left.rpartition(".")
        if not sep or not dot or not name or not key:
            raise ConfigError(f"--profile-set {text!r}: expected PROFILE.KEY=VALUE, e.g. cpu-ort.batch_size=16")
        out.setdefault(name, {})[key] = parse_yaml(value, f"--profile-set {text!r}", ConfigError)
    return out


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search (see the README's ``hwnas search`` section for each option)."""

    space: Any = field_option(None, None, "built-in space name (see `hwnas spaces list`) or a YAML file",
                              metavar="SPACE")
    dataset: Any = field_option("breast_cancer", "--dataset",
                                "bundled name (`hwnas datasets`) or a .csv/.npz/.txt/.jsonl path")
    profiles: tuple[Any, ...] = field_option(("cpu-ort",), "--profile",
                                             "hardware profile name or YAML file (repeatable; default: cpu-ort)", action="append")
    trials: int = field_option(40, "--trials", "architectures to evaluate in the study, in total "
                               "(invalid and repeated proposals do not count)", type=int)
    sampler: str = field_option("nsga2", "--sampler", f"Optuna sampler: {', '.join(SAMPLERS)}")
    population_size: int = field_option(20, "--population", "population size of nsga2/nsga3", type=int)
    seed: int = field_option(0, "--seed", "seed of the sampler and of every candidate's training", type=int)
    epochs: int | None = field_option(None, "--epochs", "training epochs budget, early stopping on validation "
                                      "(default: 100 for tabular data, 10 rounds of 100 steps for language models)",
                                      type=int)
    train_threads: int = field_option(1, "--train-threads", "torch threads while training", type=int)
    out: Path = field_option(Path("runs/hwnas"), "--out", "output folder (study.db, pareto.*, models/)")
    study: str | None = field_option(None, "--study", "study name (default: SPACE-DATASET)")
    storage: str | None = field_option(None, "--storage", "Optuna storage URL (default: sqlite:///OUT/study.db)")
    target: str | None = field_option(None, "--target",
                                      "label column of a CSV (name or 0-based index; default: the last column)")
    constraints: tuple[str, ...] = field_option((), "--constraint", "hard bound checked before training, e.g. "
                                                "cpu-ort.latency_ms<=0.05 (repeatable)", action="append",
                                                metavar="PROFILE.METRIC<=VALUE")
    objectives: tuple[str, ...] = field_option((), "--objective", "minimise this metric instead of the profile's "
                                               "primary one (repeatable)", action="append", metavar="PROFILE.METRIC")
    profile_overrides: Mapping[str, Mapping[str, Any]] = field_option(
        {}, "--profile-set", "override a profile parameter for this search (repeatable)", action="append",
        metavar="NAME.KEY=VALUE")
    progress: bool = field_option(True, "--no-progress", "no progress bar", action="store_false")
    strategy: str = field_option("scratch", "--strategy", "how candidates get their weights")
    #: ``{option: value}`` of the strategy (each strategy declares its options and their flags).
    strategy_options: Mapping[str, Any] = field_option({}, None, "options of the strategy (their own flags)")

    def __post_init__(self) -> None:
        if self.space is None:
            raise ConfigError("a search needs a space (a built-in name or a YAML file)")
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen dataclass
        set_("profiles", tuple(self.profiles) if not isinstance(self.profiles, str) else (self.profiles,))
        set_("constraints", tuple(self.constraints))
        set_("objectives", tuple(self.objectives))
        set_("out", Path(self.out))
        set_("trials", check_int(self.trials, "--trials", low=1))
        set_("population_size", check_int(self.population_size, "--population", low=2))
        set_("seed", check_int(self.seed, "--seed"))
        set_("train_threads", check_int(self.train_threads, "--train-threads", low=1, high=1024))
        if self.epochs is not None:
            set_("epochs", check_int(self.epochs, "--epochs", low=1))
        check_choice(self.sampler, "--sampler", SAMPLERS)
        if not isinstance(self.profile_overrides, Mapping) or not all(
                isinstance(v, Mapping) for v in self.profile_overrides.values()):
            raise ConfigError("--profile-set: expected PROFILE.KEY=VALUE entries")
        set_("profile_overrides", {str(k): dict(v) for k, v in self.profile_overrides.items()})
        if not isinstance(self.strategy, str):
            raise ConfigError(f"--strategy must be a strategy's name, got {self.strategy!r}")
        if not isinstance(self.strategy_options, Mapping):
            raise ConfigError(f"strategy_options must be a mapping of option names to values, got "
                              f"{self.strategy_options!r}")
        set_("strategy_options", dict(self.strategy_options))

    def replace(self, **changes: Any) -> "SearchConfig":
        return dataclasses.replace(self, **changes)
