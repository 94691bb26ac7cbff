"""Optuna's samplers by the short names a search takes (importing this module does not import Optuna)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from hwnas.errors import ConfigError

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("nsga2", "nsga3", "tpe", "random", "gp")


def make_sampler(name: str, seed: int, population_size: int) -> "optuna.samplers.BaseSampler":
    """Optuna's sampler by short name. Constraints reach every sampler through ``trial.set_constraint``."""
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population_size)
    if name == "nsga3":
        return optuna.samplers.NSGAIIISampler(seed=seed, population_size=population_size)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=10)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        if importlib.util.find_spec("scipy") is None:
            raise ConfigError("sampler 'gp' needs scipy: pip install scipy")
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=10)
    raise ConfigError(f"--sampler must be one of {list(SAMPLERS)}, got {name!r}")
