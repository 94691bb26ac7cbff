"""Optuna study plumbing: storage, the search's signature (so a resume cannot mix searches), which trials count."""

from __future__ import annotations

import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import optuna
import sqlalchemy

from hwnas.engine.records import Status, read_record, read_signature, write_signature
from hwnas.errors import ConfigError


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Write-ahead log: readers never block the writer and a commit is one append (several times faster per
    # trial than the default rollback journal). synchronous=NORMAL keeps every committed trial across a
    # killed process; only an OS crash or power loss could drop the last commits, never corrupt the file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_OPEN_ATTEMPTS = 3


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats, so trials of a killed process are marked failed, not left running."""
    sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {"engine_kwargs": {"connect_args": {"timeout": 60}}} if sqlite else {}
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=90, **kwargs)
            break
        except Exception as exc:
            # Another process creating the same new database's tables at this moment makes one of the two
            # fail (duplicate schema rows): the tables are there once it is done, so try again.
            if attempt + 1 == _OPEN_ATTEMPTS:
                raise ConfigError(f"cannot open storage {url!r}: {type(exc).__name__}: {exc}") from None
            time.sleep(1.0)
    if sqlite:
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # reconnect with the pragmas
    return storage


def open_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    sampler: optuna.samplers.BaseSampler,
    metric_names: list[str],
    signature: Mapping[str, Any],
    quality_direction: str = "maximize",
) -> optuna.Study:
    """Create the study, or load it to resume — refusing one that was created for a different search.

    The first objective is the task's quality (``quality_direction``); the others are costs to minimise."""
    directions = [quality_direction] + ["minimize"] * (len(metric_names) - 1)
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=sampler, directions=directions, load_if_exists=True
    )
    existing = read_signature(study)
    if existing is None:
        study.set_metric_names(metric_names)
        write_signature(study, signature)
    elif existing != dict(signature):
        differ = sorted(k for k in set(existing) | set(signature) if existing.get(k) != signature.get(k))
        raise ConfigError(
            f"study {name!r} in this storage was made by a different search (differs in: {', '.join(differ)}); "
            "use another --study or --out to start a new one, or the same options to resume"
        )
    return study


_STATUS_OF = {optuna.trial.TrialState.COMPLETE: (Status.OK, Status.INFEASIBLE),
              optuna.trial.TrialState.FAIL: (Status.FAILED,)}
_FINISHED = tuple(_STATUS_OF)


def is_evaluated(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether ``trial`` counts towards ``--trials``: an architecture actually evaluated (trained, screened out
    by a constraint, or failed with a recorded reason). Proposals that break a space constraint, re-proposed
    architectures (reused results) and trials cut off by a kill do not count."""
    # The record must agree with the trial's state: a process killed after a trial's record was written but
    # before Optuna was told its values leaves it RUNNING (later FAIL, through the heartbeat) with an "ok"
    # record; its architecture is evaluated again on resume.
    if trial.state not in _STATUS_OF:
        return False
    record = read_record(trial)
    return record is not None and record.reused_from is None and record.status in _STATUS_OF[trial.state]


def evaluated_trials(study: optuna.Study, since: int = 0) -> list[optuna.trial.FrozenTrial]:
    """The trials that count towards ``--trials`` (:func:`is_evaluated`), of those numbered ``since`` or later."""
    return [t for t in study.get_trials(deepcopy=False, states=_FINISHED) if t.number >= since and is_evaluated(t)]


def all_failed(trials: Sequence[optuna.trial.FrozenTrial]) -> str | None:
    """None unless ``trials`` (evaluated ones) are there and every one failed; then what the user reads: how
    many, and the most common reason (what went wrong is usually one thing, e.g. a profile's broken number)."""
    if not trials or any(t.state != optuna.trial.TrialState.FAIL for t in trials):
        return None
    reasons = Counter(" ".join((read_record(t).reason or "none recorded").split())  # type: ignore[union-attr]
                      for t in trials)
    reason, count = reasons.most_common(1)[0]
    return f"all {len(trials)} evaluated trial(s) failed; the most common reason ({count} of {len(trials)}): {reason}"


def find_study(storage: str, study: str | None) -> optuna.Study:
    """Load the one study of ``storage`` (or the named one); ConfigError naming what is there otherwise."""
    store = open_storage(storage)
    names = [s.study_name for s in optuna.get_all_study_summaries(store)]
    if study is None:
        if len(names) != 1:
            raise ConfigError(f"storage holds studies {names}; choose one with --study")
        study = names[0]
    if study not in names:
        raise ConfigError(f"no study {study!r} in {storage}; studies there: {names}")
    return optuna.load_study(study_name=study, storage=store)
