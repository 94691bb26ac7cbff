"""Which search-space parameters a one-shot strategy (``supernet``, ``darts``) can search, pin or drop.

Every parameter of a space falls in one of four groups per strategy and model family:

* **searched**: shared or mixed inside the supernet (e.g. ``depth``, ``width``);
* **pinned**: a structural choice the strategy cannot share but that has a neutral value (``ffn: dense``,
  ``quant: fp32``, ``sparsity_kind: none``, the first ``activation``): fixed to it when it is a choice;
* **dropped**: training hyperparameters (``lr``, ``batch_size``, ``weight_decay``; the strategy trains with
  its own settings) and parameters that only exist under a pinned-away value (``rank`` when ``ffn: lowrank``);
* anything else is an error naming the parameter, raised before any training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hwnas.errors import ConfigError
from hwnas.space import Categorical, Float, Int, Param, SearchSpace, expression_names

HYPERPARAMS = ("lr", "batch_size", "weight_decay")
#: Structural parameters a strategy may pin to a neutral value, with that value.
NEUTRAL: dict[str, Any] = {"ffn": "dense", "quant": "fp32", "sparsity_kind": "none"}

#: strategy → model family → the parameters it searches (shares or mixes).
SEARCHED: dict[str, dict[str, tuple[str, ...]]] = {
    "supernet": {"mlp": ("depth", "width"), "transformer": ("depth", "d_model", "heads", "expansion")},
    "darts": {"mlp": ("depth", "width", "activation", "quant", "weight_bits")},
}


@dataclass
class Restriction:
    """The outcome for one space: the reduced space (searched params only) and what happened to the rest."""

    space: SearchSpace
    searched: tuple[str, ...]
    pinned: dict[str, Any] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    hyper: dict[str, Any] = field(default_factory=dict)  # training hyperparameters the strategy uses

    def describe(self) -> dict[str, Any]:
        return {"searched": list(self.searched), "pinned": dict(self.pinned), "dropped": list(self.dropped),
                "hyper": dict(self.hyper)}


def supported(strategy: str, model: str) -> tuple[str, ...]:
    """The parameters ``strategy`` searches for ``model`` (ConfigError when it does not cover the family)."""
    by_model = SEARCHED.get(strategy)
    if by_model is None:
        raise ConfigError(f"unknown strategy {strategy!r}; known: scratch, {', '.join(SEARCHED)}")
    if model not in by_model:
        raise ConfigError(f"strategy {strategy!r} supports model families {sorted(by_model)}, not {model!r}")
    return by_model[model]


def middle(param: Param) -> Any:
    """A representative value of a hyperparameter: the (geometric) midpoint of a range, the middle choice."""
    if isinstance(param, Categorical):
        return param.choices[len(param.choices) // 2]
    assert isinstance(param, (Int, Float))
    mid = math.sqrt(param.low * param.high) if param.log else (param.low + param.high) / 2
    if isinstance(param, Int):
        steps = round((mid - param.low) / param.step)
        return int(param.low + steps * param.step)
    if param.step:
        mid = param.low + round((mid - param.low) / param.step) * param.step
    return float(mid)


def restrict(space: SearchSpace, strategy: str) -> Restriction:
    """Split ``space`` for ``strategy``; ConfigError naming the first parameter it cannot handle."""
    searched = supported(strategy, space.model)
    pinned: dict[str, Any] = {}
    hyper: dict[str, Any] = {k: space.fixed[k] for k in HYPERPARAMS if k in space.fixed}
    keep: dict[str, Param] = {}
    dropped: list[str] = []
    for name, p in space.params.items():
        if name in searched:
            keep[name] = p
        elif name in HYPERPARAMS:
            hyper[name] = middle(p)
            dropped.append(name)
        elif name in NEUTRAL or name == "activation":
            value = NEUTRAL.get(name, p.choices[0] if isinstance(p, Categorical) else None)
            if not isinstance(p, Categorical) or value not in p.choices:
                raise ConfigError(
                    f"space {space.name!r}: param '{name}': strategy {strategy!r} cannot search it and needs "
                    f"{value!r} among its choices to pin it; supported params: {list(searched)}")
            pinned[name] = value
        elif p.when:
            continue  # decided below, once every pinned value is known
        else:
            raise _unsupported(space, strategy, name, searched)
    for name, p in space.params.items():
        if name in keep or name in pinned or name in dropped or not p.when:
            continue
        if any(key in pinned and pinned[key] not in allowed for key, allowed in p.when.items()):
            dropped.append(name)  # only exists under a choice the strategy pinned away
        else:
            raise _unsupported(space, strategy, name, searched)
    for name, p in keep.items():
        gone = [k for k in p.when if k not in keep]
        if gone:
            raise ConfigError(f"space {space.name!r}: param '{name}' depends on {gone}, which strategy "
                              f"{strategy!r} does not search")
    names = set(keep) | set(space.fixed) | set(pinned) | {"layer"}
    constraints = tuple(c for c in space.constraints if expression_names(str(c)) <= names)
    reduced = SearchSpace(space.name, space.model, keep, {**space.fixed, **pinned}, constraints,
                          space.description, space.source)
    return Restriction(reduced, tuple(keep), pinned, tuple(dropped), hyper)


def _unsupported(space: SearchSpace, strategy: str, name: str, searched: tuple[str, ...]) -> ConfigError:
    return ConfigError(f"space {space.name!r}: param '{name}' is not supported by strategy {strategy!r} for "
                       f"model {space.model!r}; it searches {list(searched)}, pins {sorted(NEUTRAL)} and "
                       f"activation to a neutral choice and drops {list(HYPERPARAMS)} (see docs/supernet.md)")
