"""The search space: typed parameters, per-layer and conditional parameters, constraints between them."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from hwnas.errors import SpaceError
from hwnas.space import _expr
from hwnas.space._config import ArchConfig
from hwnas.space._params import Categorical, Draw, Float, Int, Param, check_param
from hwnas.validation import check_choice, check_int, shown

if TYPE_CHECKING:
    from hwnas.models.domains import Domain

#: The most layers a per-layer parameter may follow (the high of its depth parameter): sampling, constraint
#: checks and building stay cheap whatever a space says.
MAX_LAYERS = 64
#: The most constraints a space may have (each is evaluated per layer for every sampled configuration).
MAX_CONSTRAINTS = 64
#: How many values of a parameter :meth:`SearchSpace.extremes` tries at one place before it gives up.
_EXTREME_TRIES = 16


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
    _names: tuple[frozenset[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "fixed", dict(self.fixed))
        object.__setattr__(self, "constraints", tuple(self.constraints))
        self._validate()

    # -- validation -------------------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        """Where the space comes from, for messages: its file, else its name."""
        return self.source or f"space '{self.name}'"

    def _fail(self, where: str, message: str) -> None:
        raise SpaceError(f"{self.origin}: {where}: {message}")

    def _validate(self) -> None:
        from hwnas.models import get_model_spec, list_models

        if not self.params:
            self._fail("params", "expected at least one parameter")
        try:
            model = get_model_spec(self.model)
        except KeyError:
            self._fail("model", f"unknown model {shown(self.model)}; known models: {list_models()}")
        accepted = sorted(model.params)
        for name, param in self.params.items():
            where = f"params.{name}"
            check_param(name, param, lambda f, m, w=where: self._fail(f"{w}.{f}", m))
            if name not in model.params:
                self._fail(where, f"model '{self.model}' does not use a parameter {name!r}; it uses {accepted}")
            if name in self.fixed:
                self._fail(where, "a parameter cannot be both searched (params) and fixed")
            self._check_links(name, param)
            self._check_domain(name, param, model.params[name], model.depth)
        for name, value in self.fixed.items():
            if name not in model.params:
                self._fail(f"fixed.{name}", f"model '{self.model}' does not use {name!r}; it uses {accepted}")
            self._check_fixed(name, value, model.params[name])
        check_int(len(self.constraints), f"{self.origin}: constraints: their number", high=MAX_CONSTRAINTS,
                  error=SpaceError)
        object.__setattr__(self, "_order", self._topological_order())
        object.__setattr__(self, "_trees", tuple(self._parse_constraint(i, c) for i, c in enumerate(self.constraints)))
        object.__setattr__(self, "_names", tuple(frozenset(_expr.names(t)) for t in self._trees))
        self._check_satisfiable()

    def _check_domain(self, name: str, param: Param, domain: "Domain", depth: str) -> None:
        """Every value ``param`` can take lies in the model's domain of ``name`` (each choice, both bounds)."""
        where = f"{self.origin}: params.{name}"
        if param.per_layer is not None:
            if not domain.per_layer:
                self._fail(f"params.{name}.per_layer", f"model '{self.model}' takes one {name} for the whole model, "
                                                       "not one per layer")
            check_choice(param.per_layer, f"{where}.per_layer", [depth], error=SpaceError)
        if isinstance(param, Categorical):
            for i, choice in enumerate(param.choices):
                domain.check(choice, f"{where}.choices[{i}]")
            return
        assert isinstance(param, (Int, Float))
        if isinstance(param, Float) and domain.integer:
            check_choice("float", f"{where}.type", ["int", "categorical"], error=SpaceError)
        domain.check(param.low, f"{where}.low")
        domain.check(param.high, f"{where}.high")

    def _check_fixed(self, name: str, value: Any, domain: "Domain") -> None:
        """A fixed value lies in the model's domain; a list gives one value per layer (None: the builder's
        default in that layer) where the model takes one per layer."""
        where = f"{self.origin}: fixed.{name}"
        if not (isinstance(value, (list, tuple)) and domain.per_layer):
            domain.check(value, where)
            return
        check_int(len(value), f"{where}: the number of values (one per layer)", low=1, high=MAX_LAYERS,
                  error=SpaceError)
        for i, v in enumerate(value):
            if v is not None:
                domain.check(v, f"{where}[{i}]")

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
            check_int(depth.high, f"{self.origin}: params.{param.per_layer}.high (the layers of per-layer {name!r})",
                      high=MAX_LAYERS, error=SpaceError)
        for key, values in param.when.items():
            if not values:
                self._fail(f"{where}.when.{key}", "expected a value or a non-empty list of values")
            other = self.params.get(key)
            if other is None:
                self._fail(f"{where}.when", f"refers to unknown parameter {key!r}")
            if key == name:
                self._fail(f"{where}.when", "a parameter cannot depend on itself")
            if other.per_layer and other.per_layer != param.per_layer:
                self._fail(f"{where}.when", f"{key!r} is per layer ({other.per_layer}); {name!r} must be per layer too")
            for v in values:
                if not other.contains(v):
                    self._fail(f"{where}.when.{key}", f"{shown(v)} is not a possible value of {key!r}")

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
        """Some configuration satisfies the constraints: an extreme one, or one of ``tries`` random ones. An
        expression that cannot be evaluated for one of these is an error in the space."""
        if not self.constraints or self.extremes():
            return
        rng = random.Random(0)
        for _ in range(tries):
            first = next(self._broken({**self.fixed, **self._draw_values(_random_draw(rng))}), None)
            if first is None:
                return
            self._check_evaluable(*first)
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
        """The constraints a config breaks, with the layer where per-layer (empty when valid). A constraint
        that cannot be evaluated for these values (see :mod:`hwnas.space._expr`) is broken, with the reason."""
        return [label if error is None else f"{label} (cannot be evaluated: {error})"
                for _, label, error in self._broken({**self.fixed, **values})]

    def _broken(self, env: Mapping[str, Any], only: str | None = None, layer: int | None = None
                ) -> Iterator[tuple[int, str, _expr.ExprError | None]]:
        """(index, label, evaluation error or None) of each constraint ``env`` breaks, lazily. ``only``: just the
        constraints that mention this name; ``layer``: per-layer ones at this layer only. Names ``env`` lacks
        (inactive conditional parameters, or ones not chosen yet) make a constraint not apply."""
        for index, (text, tree, names) in enumerate(zip(self.constraints, self._trees, self._names)):
            if only is not None and only not in names:
                continue
            per_layer = [n for n in names if n in self.params and self.params[n].per_layer]
            if not per_layer:
                cases = [(text, env)]
            elif per_layer[0] not in env:
                continue
            else:
                layers = range(len(env[per_layer[0]])) if layer is None else (layer,)
                cases = [(f"{text} (layer {i})", {**env, **{n: env[n][i] for n in per_layer if n in env}, "layer": i})
                         for i in layers]
            for label, case in cases:
                if per_layer and any(case.get(n) is None for n in names if n in self.params):
                    continue  # a conditional parameter absent in this layer: the constraint does not apply
                try:
                    holds = self._holds(tree, case)
                except _expr.ExprError as exc:
                    yield index, label, exc
                else:
                    if not holds:
                        yield index, label, None

    def _check_evaluable(self, index: int, label: str, error: _expr.ExprError | None) -> None:
        if error is not None:
            self._fail(f"constraints[{index}]", f"cannot evaluate {self.constraints[index]!r}: {error}")

    @staticmethod
    def _holds(tree: Any, env: Mapping[str, Any]) -> bool:
        try:
            return bool(_expr.evaluate(tree, env))
        except KeyError:
            return True  # refers to an inactive conditional parameter
        except (TypeError, ZeroDivisionError):
            return False

    # -- the extreme configurations -------------------------------------------------------------------------
    def extremes(self) -> dict[str, ArchConfig]:
        """The smallest and the largest configuration, for a dry build that finds what no single value shows
        (heads that do not divide d_model, blocks that do not divide a width) before any work.

        The smallest: parameter by parameter in the order they are drawn, layer by layer, each takes its
        smallest value (numbers by value, other choices in the order listed) that breaks no constraint it can
        be checked against yet; the largest likewise with the largest values. ``{"smallest": ..., "largest":
        ...}`` without a side on which some parameter is left without such a value, or whose result still breaks
        a constraint (it would be no counterexample)."""
        found = {"smallest": self._extreme(largest=False), "largest": self._extreme(largest=True)}
        return {side: config for side, config in found.items() if config is not None}

    def _extreme(self, largest: bool) -> ArchConfig | None:
        values: dict[str, Any] = {}
        for name in self._order:
            p = self.params[name]
            if p.per_layer is None:
                if self._active(p, values, None):
                    value = self._pick(name, _ordered(p, largest), values, None)
                    if value is None:
                        return None
                    values[name] = value
                continue
            values[name] = (None,) * values[p.per_layer]
            for i in range(values[p.per_layer]):
                if self._active(p, values, i):
                    value = self._pick(name, _ordered(p, largest), values, i)
                    if value is None:
                        return None
                    values[name] = (*values[name][:i], value, *values[name][i + 1:])
        first = next(self._broken({**self.fixed, **values}), None)
        if first is not None:
            self._check_evaluable(*first)
            return None
        return self.config(values)

    def _pick(self, name: str, candidates: list[Any], values: dict[str, Any], layer: int | None) -> Any:
        """The first candidate for ``name`` (at ``layer``) that breaks no constraint mentioning it, or None."""
        for value in candidates:
            env = {**self.fixed, **values}
            env[name] = value if layer is None else (*values[name][:layer], value, *values[name][layer + 1:])
            first = next(self._broken(env, only=name, layer=layer), None)
            if first is None:
                return value
            self._check_evaluable(*first)
        return None

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


def _ordered(p: Param, largest: bool) -> list[Any]:
    """Up to :data:`_EXTREME_TRIES` values of ``p``, smallest first (largest first if ``largest``)."""
    if isinstance(p, Categorical):
        numbers = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p.choices)
        values = sorted(p.choices) if numbers else list(p.choices)
    elif isinstance(p, Int):  # every value of a short range, else evenly spaced ones on the grid
        n, last = (p.high - p.low) // p.step + 1, _EXTREME_TRIES - 1
        picks = range(n) if n <= _EXTREME_TRIES else [k * (n - 1) // last for k in range(_EXTREME_TRIES)]
        values = [p.low + k * p.step for k in picks]
    else:  # evenly spaced from low to the highest value on the grid
        assert isinstance(p, Float)
        high = p.high
        if p.step is not None and math.isfinite((p.high - p.low) / p.step):
            high = min(p.high, p.low + math.floor((p.high - p.low) / p.step + 1e-9) * p.step)
        inner = (p.low + (high - p.low) * k / (_EXTREME_TRIES - 1) for k in range(1, _EXTREME_TRIES - 1))
        values = list(dict.fromkeys((p.low, *inner, high)))
    return (values[::-1] if largest else values)[:_EXTREME_TRIES]


def _random_draw(rng: random.Random) -> Callable[[str, Param], Any]:
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
