"""Objectives and constraints, declared once: parsed from ``PROFILE.METRIC`` strings and checked against
the chosen profiles before a search starts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from hwnas.errors import ConfigError
from hwnas.profiles import Bounds, Profile, ProfileResult

ACCURACY = "accuracy"
_CONSTRAINT = re.compile(r"^\s*([\w.\-]+)\.(\w+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Objective:
    """A hardware metric to minimise: ``profile.metric``."""

    profile: str
    metric: str

    @property
    def name(self) -> str:
        return f"{self.profile}.{self.metric}"


@dataclass(frozen=True)
class Constraint:
    """A hard bound on a hardware metric, e.g. ``cpu-ort.latency_ms<=0.05``."""

    profile: str
    metric: str
    op: str
    bound: float

    @property
    def name(self) -> str:
        return f"{self.profile}.{self.metric}{self.op}{self.bound:g}"

    def violation(self, value: float) -> float:
        """Optuna's convention: <= 0 when satisfied, the distance to the bound otherwise."""
        if self.op in ("<=", "<"):
            v = value - self.bound
            return v if self.op == "<=" or v != 0 else math.ulp(self.bound) or 1e-300
        v = self.bound - value
        return v if self.op == ">=" or v != 0 else math.ulp(self.bound) or 1e-300

    def least_violation(self, bounds: Bounds) -> float | None:
        """The violation the trained candidate is certain to have at least, by ``bounds`` (its lower bound for
        ``<=``/``<``, its upper bound for ``>=``/``>``); None when that bound is not provable."""
        value = bounds.low if self.op in ("<=", "<") else bounds.high
        return None if value is None else self.violation(value)


def _check_metric(profiles: Mapping[str, Profile], profile: str, metric: str, what: str) -> None:
    if profile not in profiles:
        raise ConfigError(f"{what} names profile {profile!r}, which is not among the chosen profiles {sorted(profiles)}")
    known = profiles[profile].metrics
    if metric not in known:
        raise ConfigError(f"{what}: profile {profile!r} reports {sorted(known)}, not {metric!r}")


def parse_objectives(specs: Sequence[str], profiles: Mapping[str, Profile],
                     quality: Sequence[str] = (ACCURACY,)) -> list[Objective]:
    """The hardware objectives: each profile adds its primary metric unless ``specs`` name others. ``quality``
    names the task's own objective (always optimised; naming it is allowed and changes nothing)."""
    chosen: dict[str, list[str]] = {}
    for spec in specs:
        if spec in quality:
            continue
        profile, _, metric = spec.rpartition(".")
        if not profile:
            raise ConfigError(f"objective {spec!r}: expected PROFILE.METRIC (e.g. printed-egfet.power_mw)")
        _check_metric(profiles, profile, metric, f"objective {spec!r}")
        if metric not in chosen.setdefault(profile, []):
            chosen[profile].append(metric)
    return [
        Objective(name, metric)
        for name, profile in profiles.items()
        for metric in chosen.get(name, [profile.primary_metric])
    ]


def parse_constraints(specs: Sequence[str], profiles: Mapping[str, Profile]) -> list[Constraint]:
    out = []
    for spec in specs:
        m = _CONSTRAINT.match(spec)
        if not m:
            raise ConfigError(f"constraint {spec!r}: expected PROFILE.METRIC<=VALUE (or >=, <, >), e.g. cpu-ort.latency_ms<=0.05")
        profile, metric, op, bound = m.groups()
        _check_metric(profiles, profile, metric, f"constraint {spec!r}")
        try:
            value = float(bound)
        except ValueError:
            raise ConfigError(f"constraint {spec!r}: {bound!r} is not a number") from None
        if not math.isfinite(value):
            raise ConfigError(f"constraint {spec!r}: the bound must be finite")
        if value <= 0 and op in ("<=", "<"):
            raise ConfigError(f"constraint {spec!r} is impossible: hardware costs are positive")
        out.append(Constraint(profile, metric, op, value))
    return out


def violations(constraints: Sequence[Constraint], results: Mapping[str, ProfileResult]) -> dict[str, float]:
    """Constraint name → violation (<= 0 satisfied) for the given profile results."""
    return {c.name: c.violation(results[c.profile][c.metric].value) for c in constraints}


def screening_violations(constraints: Sequence[Constraint], bounds: Mapping[str, Mapping[str, Bounds]]
                         ) -> dict[str, float]:
    """Constraint name → :meth:`Constraint.least_violation` by the untrained candidate's ``bounds`` (profile →
    metric → :class:`~hwnas.profiles.Bounds`); > 0: no trained weights can satisfy it, so the candidate need
    not be trained. 0.0 where nothing is provable (neither satisfied nor violated: the samplers learn nothing)."""
    out = {}
    for c in constraints:
        v = c.least_violation(bounds[c.profile].get(c.metric, Bounds()))
        out[c.name] = 0.0 if v is None else v
    return out
