"""The search space: typed parameters, per-layer and conditional parameters, constraints between them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from hwnas.errors import SpaceError
from hwnas.space import _expr
from hwnas.space._config import ArchConfig
from hwnas.space._params import Categorical, Draw, Float, Int, Param, check_param


@dataclass(frozen=True)
class SearchSpace:
    """What may vary. Build from Python or load from YAML (:func:`hwnas.space.load_space`).

    ``params`` maps names to :class:`Int` / :class:`Float` / :class:`Categorical`; ``fixed`` holds constants
    passed to the model builder unchanged; ``constraints`` are expressions over parameter names that every
    valid config satisfies (evaluated per layer when they mention per-layer parameters).
    """

    name: str
    model: str
    params: Mapping[str, Param]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    constraints: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    _order: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _trees: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "fixed", dict(self.fixed))
        object.__setattr__(self, "constraints", tuple(self.constraints))
        self._validate()

    # -- validation -------------------------------------------------------------------------------------
    def _fail(self, where: str, message: str) -> None:
        origin = self.source or f"space '{self.name}'"
        raise SpaceError(f"{origin}: {where}: {message}")

    def _validate(self) -> None:
        from hwnas.models import accepted_params

        if not self.params:
            self._fail("params", "expected at least one parameter")
        accepted = accepted_params(self.model)
        if accepted is None:
            from hwnas.models import list_models

            self._fail("model", f"unknown model {self.model!r}; known models: {list_models()}")
        for name, param in self.params.items():
            where = f"params.{name}"
            check_param(name, param, lambda f, m, w=where: self._fail(f"{w}.{f}", m))
            if name not in accepted:
                self._fail(where, f"model '{self.model}' does not use a parameter {name!r}; it uses {sorted(accepted)}")
            if name in self.fixed:
                self._fail(where, "a parameter cannot be both searched (params) and fixed")
            self._check_links(name, param)
        for name in self.fixed:
            if name not in accepted:
                self._fail(f"fixed.{name}", f"model '{self.model}' does not use {name!r}; it uses {sorted(accepted)}")
        object.__setattr__(self, "_order", self._topological_order())
        object.__setattr__(self, "_trees", tuple(self._parse_constraint(i, c) for i, c in enumerate(self.constraints)))
        self._check_satisfiable()

    def _check_links(self, name: str, param: Param) -> None:
        where = f"params.{name}"
        if param.per_layer is not None:
            depth = self.params.get(param.per_layer)
            if depth is None:
                self._fail(f"{where}.per_layer", f"refers to unknown parameter {param.per_layer!r}")
            if not isinstance(depth, Int) or depth.per_layer or depth.when:
                self._fail(f"{where}.per_layer", f"{param.per_layer!r} must be an unconditional, global int parameter")
            if depth.low < 1:
                self._fail(f"params.{param.per_layer}.low", "a depth parameter needs low >= 1")
        for key, values in param.when.items():
            other = self.params.get(key)
            if other is None:
                self._fail(f"{where}.when", f"refers to unknown parameter {key!r}")
            if key == name:
                self._fail(f"{where}.when", "a parameter cannot depend on itself")
            if other.per_layer and other.per_layer != param.per_layer:
                self._fail(f"{where}.when", f"{key!r} is per layer ({other.per_layer}); {name!r} must be per layer too")
            for v in values:
                if not other.contains(v):
                    self._fail(f"{where}.when.{key}", f"{v!r} is not a possible value of {key!r}")

    def _topological_order(self) -> tuple[str, ...]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(n: str) -> None:
            if state.get(n) == 2:
                return
            if state.get(n) == 1:
                self._fail(f"params.{n}.when", "conditions form a cycle")
            state[n] = 1
            p = self.params[n]
            for dep in ([p.per_layer] if p.per_layer else []) + list(p.when):
                visit(dep)
            state[n] = 2
            order.append(n)

        for n in self.params:
            visit(n)
        return tuple(order)

    def _parse_constraint(self, i: int, text: str) -> Any:
        try:
            tree = _expr.parse(str(text))
        except _expr.ExprError as exc:
            self._fail(f"constraints[{i}]", str(exc))
        known = set(self.params) | set(self.fixed)
        unknown = _expr.names(tree) - known - {"layer"}
        if unknown:
            self._fail(f"constraints[{i}]", f"unknown name(s) {sorted(unknown)} in {text!r}; parameters: {sorted(known)}")
        return tree

    def _check_satisfiable(self, tries: int = 500) -> None:
        if not self.constraints:
            return
        rng = random.Random(0)
        for _ in range(tries):
            if not self.violations(self._draw_values(_random_draw(rng))):
                return
        self._fail(
            "constraints",
            f"contradictory: none of {tries} random configurations satisfies all of {list(self.constraints)}",
        )

    # -- sampling ---------------------------------------------------------------------------------------
    def _draw_values(self, draw: Draw) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self._order:
            p = self.params[name]
            if p.per_layer is None:
                if self._active(p, values, None):
                    values[name] = draw(name, p)
            else:
                n = values[p.per_layer]
                values[name] = tuple(
                    draw(f"{name}[{i}]", p) if self._active(p, values, i) else None for i in range(n)
                )
        return values

    def _active(self, p: Param, values: Mapping[str, Any], layer: int | None) -> bool:
        for key, allowed in p.when.items():
            value = values.get(key)
            if layer is not None and self.params[key].per_layer:
                value = value[layer] if value is not None else None
            if value is None or value not in allowed:
                return False
        return True

    def config(self, values: Mapping[str, Any]) -> ArchConfig:
        """An :class:`ArchConfig` from parameter values (fixed values added)."""
        return ArchConfig(self.model, {**self.fixed, **values}, space=self.name)

    def suggest(self, trial: Any) -> ArchConfig:
        """Draw a config with an Optuna trial (per-layer parameters are named ``width[0]`` …)."""
        return self.config(self._draw_values(lambda key, p: _optuna_draw(trial, key, p)))

    def sample(self, seed: int | random.Random | None = None) -> ArchConfig:
        """Draw a uniformly random config (constraints are not enforced; see :meth:`violations`)."""
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        return self.config(self._draw_values(_random_draw(rng)))

    def violations(self, values: Mapping[str, Any]) -> list[str]:
        """The constraints a config breaks, with the layer where per-layer (empty when valid)."""
        env = {**self.fixed, **values}
        broken: list[str] = []
        for text, tree in zip(self.constraints, self._trees):
            per_layer = [n for n in _expr.names(tree) if n in self.params and self.params[n].per_layer]
            if not per_layer:
                if not self._holds(tree, env):
                    broken.append(text)
                continue
            depth = len(env[per_layer[0]])
            for i in range(depth):
                layer_env = {k: (v[i] if k in per_layer else v) for k, v in env.items()}
                layer_env["layer"] = i
                if any(layer_env.get(n) is None for n in _expr.names(tree) if n in self.params):
                    continue  # a conditional parameter absent in this layer: the constraint does not apply
                if not self._holds(tree, layer_env):
                    broken.append(f"{text} (layer {i})")
        return broken

    @staticmethod
    def _holds(tree: Any, env: Mapping[str, Any]) -> bool:
        try:
            return bool(_expr.evaluate(tree, env))
        except KeyError:
            return True  # refers to an inactive conditional parameter
        except (TypeError, ZeroDivisionError):
            return False

    def describe(self) -> dict[str, Any]:
        """The space as a YAML-able mapping (``hwnas spaces show``)."""
        return {
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "params": {n: p.describe() for n, p in self.params.items()},
            "fixed": dict(self.fixed),
            "constraints": list(self.constraints),
        }


def _random_draw(rng: random.Random) -> Callable[[str, Param], Any]:
    import math

    def draw(key: str, p: Param) -> Any:
        if isinstance(p, Categorical):
            return rng.choice(p.choices)
        if isinstance(p, Int):
            if p.log:
                return int(round(math.exp(rng.uniform(math.log(p.low), math.log(p.high)))))
            return rng.randrange(p.low, p.high + 1, p.step)
        assert isinstance(p, Float)
        if p.log:
            return math.exp(rng.uniform(math.log(p.low), math.log(p.high)))
        return rng.uniform(p.low, p.high)

    return draw


def _optuna_draw(trial: Any, key: str, p: Param) -> Any:
    if isinstance(p, Categorical):
        return trial.suggest_categorical(key, list(p.choices))
    if isinstance(p, Int):
        return trial.suggest_int(key, p.low, p.high, step=p.step, log=p.log)
    assert isinstance(p, Float)
    return trial.suggest_float(key, p.low, p.high, log=p.log, step=p.step)
