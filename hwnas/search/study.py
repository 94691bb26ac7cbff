"""Optuna study plumbing: storage, samplers, the search's signature (so a resume cannot mix searches)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any, Mapping

import optuna

from hwnas.errors import ConfigError

SAMPLERS = ("nsga2", "nsga3", "tpe", "random", "gp")
SIGNATURE_ATTR = "hwnas.signature"
#: The user attribute holding a trial's whole record (status, metrics, accuracies, timings, ...), written
#: once at the end of the trial. A FAILed trial without it was interrupted (Ctrl-C, kill): not counted as done.
RESULT = "result"


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats, so trials of a killed process are marked failed, not left running."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=90, **kwargs)
    except Exception as exc:
        raise ConfigError(f"cannot open storage {url!r}: {type(exc).__name__}: {exc}") from None


def make_sampler(name: str, seed: int, population_size: int) -> optuna.samplers.BaseSampler:
    """Optuna's sampler by short name. Constraints reach every sampler through ``trial.set_constraint``."""
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
    raise ConfigError(f"The 'sampler' option must be one of {list(SAMPLERS)}. Got {name!r} instead.")


def open_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    sampler: optuna.samplers.BaseSampler,
    metric_names: list[str],
    signature: Mapping[str, Any],
) -> optuna.Study:
    """Create the study, or load it to resume — refusing one that was created for a different search."""
    directions = ["maximize"] + ["minimize"] * (len(metric_names) - 1)
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=sampler, directions=directions, load_if_exists=True
    )
    existing = study.user_attrs.get(SIGNATURE_ATTR)
    if existing is None:
        study.set_metric_names(metric_names)
        for key, value in signature.items():
            study.set_user_attr(key, value)
        study.set_user_attr(SIGNATURE_ATTR, dict(signature))
    elif existing != dict(signature):
        differ = sorted(k for k in set(existing) | set(signature) if existing.get(k) != signature.get(k))
        raise ConfigError(
            f"study {name!r} in this storage was made by a different search (differs in: {', '.join(differ)}); "
            "use another --study or --out to start a new one, or the same options to resume"
        )
    return study


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count towards the requested total: complete, pruned, and failed with a recorded reason."""
    states = optuna.trial.TrialState
    return [
        t for t in study.get_trials(deepcopy=False)
        if t.state in (states.COMPLETE, states.PRUNED) or (t.state == states.FAIL and RESULT in t.user_attrs)
    ]


def record_of(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The trial's record (``status`` ok / infeasible / invalid / failed, metrics, accuracies, timings)."""
    return trial.user_attrs.get(RESULT, {})
