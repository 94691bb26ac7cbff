"""The feasible Pareto set and its hypervolume, from Optuna's own utilities."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import optuna
from optuna._hypervolume import compute_hypervolume  # Optuna's exact WFG hypervolume (no public alias yet)

from hwnas.engine.records import Status, arch_key, read_record


def pareto_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Optuna's ``best_trials`` (feasible ones only when constraints exist), trained ones, one per architecture."""
    seen: set[str] = set()
    out = []
    for t in sorted(study.best_trials, key=lambda t: t.number):
        key = arch_key(t) or str(t.number)
        record = read_record(t)
        if record is None or record.status != Status.OK or key in seen:
            continue
        seen.add(key)
        out.append(t)
    return out


def loss_points(trials: Sequence[optuna.trial.FrozenTrial], maximize_first: bool = True) -> np.ndarray:
    """Objective vectors as losses to minimise: (1 - accuracy, cost_1, ...), or (perplexity, cost_1, ...)
    when the quality objective is minimised already."""
    if not trials:
        return np.zeros((0, 0))
    return np.array([[1.0 - t.values[0] if maximize_first else t.values[0], *t.values[1:]] for t in trials],
                    dtype=float)


def hypervolume(points: np.ndarray, reference: Sequence[float]) -> float:
    """Hypervolume dominated by ``points`` (losses) up to ``reference``; points beyond it are ignored."""
    ref = np.asarray(reference, dtype=float)
    if len(points) == 0:
        return 0.0
    inside = points[np.all(points < ref, axis=1)]
    return float(compute_hypervolume(inside, ref)) if len(inside) else 0.0
