"""Typed parameters of a search space: integers, floats and categorical choices.

A parameter may be *per layer* (``per_layer="depth"``: one value per layer, the count following the depth
parameter) and *conditional* (``when={"ffn": "lowrank"}``: drawn only where the condition holds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from hwnas.validation import shown


class Draw(Protocol):
    """How a value is drawn: an Optuna trial's ``suggest_*`` or a random generator."""

    def __call__(self, key: str, param: "Param") -> Any: ...


@dataclass(frozen=True)
class Param:
    """Base of every parameter type."""

    per_layer: str | None = field(default=None, kw_only=True)
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict, kw_only=True)

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.per_layer:
            out["per_layer"] = self.per_layer
        if self.when:
            out["when"] = {k: list(v) if len(v) > 1 else v[0] for k, v in self.when.items()}
        return out


@dataclass(frozen=True)
class Int(Param):
    low: int
    high: int
    step: int = 1
    log: bool = False

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "int", "low": self.low, "high": self.high}
        if self.step != 1:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return {**out, **super().describe()}


@dataclass(frozen=True)
class Float(Param):
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.low <= float(value) <= self.high

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "float", "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return {**out, **super().describe()}


@dataclass(frozen=True)
class Categorical(Param):
    choices: tuple[Any, ...]

    def contains(self, value: Any) -> bool:
        return value in self.choices

    def describe(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices), **super().describe()}


def check_param(name: str, param: Param, fail: Callable[[str, str], None]) -> None:
    """Validate one parameter's own fields; ``fail(field, message)`` raises with the location."""
    if isinstance(param, Categorical):
        if not param.choices:
            fail("choices", "expected a non-empty list")
        if len(set(map(repr, param.choices))) != len(param.choices):
            fail("choices", f"duplicate choices in {shown(list(param.choices))}")
        for c in param.choices:
            if not isinstance(c, (str, int, float, bool)) or c is None:
                fail("choices", f"choices must be strings or numbers, got {shown(c)}")
        return
    assert isinstance(param, (Int, Float))
    if isinstance(param, Float):
        for key in ("low", "high", "step"):
            value = getattr(param, key)
            if value is not None and not math.isfinite(value):
                fail(key, f"must be a finite number, got {value!r}")
    if param.low > param.high:
        fail("low", f"low ({param.low}) must be <= high ({param.high})")
    if param.log and param.low <= 0:
        fail("low", f"log-scaled parameters need low > 0, got {param.low}")
    if param.step is not None and param.step <= 0:
        fail("step", f"step must be > 0, got {param.step}")
    if param.log and param.step not in (None, 1):
        fail("step", "a log-scaled parameter cannot have a step")
