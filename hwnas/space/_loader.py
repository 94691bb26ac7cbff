"""Load search spaces from YAML; every error names the file, the field and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.builtin import SPACES_DIR
from hwnas.errors import SpaceError
from hwnas.files import load_yaml
from hwnas.space._params import Categorical, Float, Int, Param
from hwnas.space._space import SearchSpace
from hwnas.validation import shown

_TOP = {"name", "description", "model", "params", "fixed", "constraints"}
_FIELDS = {
    "int": {"type", "low", "high", "step", "log", "per_layer", "when"},
    "float": {"type", "low", "high", "step", "log", "per_layer", "when"},
    "categorical": {"type", "choices", "per_layer", "when"},
}


def list_spaces() -> list[str]:
    """Names of the built-in spaces in ``search_spaces/``."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def resolve_space_path(name_or_path: str | Path) -> Path:
    """A built-in space name (``mlp_tabular``) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtin = SPACES_DIR / f"{name_or_path}.yaml"
    if builtin.is_file():
        return builtin
    raise SpaceError(f"no search space {str(name_or_path)!r}: not a file, and not a built-in space {list_spaces()}")


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Load and validate a search space from a built-in name or a YAML file."""
    path = resolve_space_path(name_or_path)
    return space_from_dict(load_yaml(path, SpaceError), source=str(path), default_name=path.stem)


def space_from_dict(data: Any, *, source: str = "<space>", default_name: str = "space") -> SearchSpace:
    """Build a :class:`SearchSpace` from a parsed YAML mapping."""

    def fail(field: str, message: str) -> None:
        raise SpaceError(f"{source}: {field}: {message}")

    if not isinstance(data, dict):
        raise SpaceError(f"{source}: expected a mapping with keys {sorted(_TOP)}, got {type(data).__name__}")
    extra = sorted(set(data) - _TOP, key=str)
    if extra:
        fail(extra[0], f"unknown field; allowed top-level fields: {sorted(_TOP)}")
    if "model" not in data:
        fail("model", "missing required field (the model builder, e.g. 'mlp')")
    if not isinstance(data.get("params"), dict):
        fail("params", f"expected a mapping of parameter names to definitions, got {type(data.get('params')).__name__}")
    for key in ("name", "description"):
        if not isinstance(data.get(key, ""), str):
            fail(key, f"expected a string, got {shown(data[key])}")
    fixed = {} if data.get("fixed") is None else data["fixed"]
    if not isinstance(fixed, dict):
        fail("fixed", f"expected a mapping, got {type(fixed).__name__}")
    constraints = [] if data.get("constraints") is None else data["constraints"]
    if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
        fail("constraints", "expected a list of expressions (strings), e.g. ['rank < width']")
    params = {str(name): _param(str(name), spec, fail) for name, spec in data["params"].items()}
    return SearchSpace(
        name=data.get("name", default_name),
        model=str(data["model"]),
        params=params,
        fixed=fixed,
        constraints=tuple(constraints),
        description=data.get("description", ""),
        source=source,
    )


def _param(name: str, spec: Any, fail: Any) -> Param:
    where = f"params.{name}"
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, dict):
        fail(where, "expected a mapping with 'type' (int, float or categorical) or a list of choices, "
                    f"got {shown(spec)}")
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        fail(f"{where}.type", f"must be one of {sorted(_FIELDS)}, got {shown(kind)}")
    extra = sorted(set(spec) - _FIELDS[kind], key=str)
    if extra:
        fail(f"{where}.{extra[0]}", f"not a field of a {kind} parameter; allowed: {sorted(_FIELDS[kind])}")
    common = {"per_layer": _per_layer(spec, where, fail), "when": _when(spec, where, fail)}
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list):
            fail(f"{where}.choices", f"expected a list, got {shown(choices)}")
        return Categorical(tuple(choices), **common)
    for key in ("low", "high"):
        if key not in spec:
            fail(f"{where}.{key}", "missing (int and float parameters need low and high)")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        fail(f"{where}.log", f"expected true or false, got {shown(log)}")
    if kind == "int":
        for key in ("low", "high", "step"):
            if key in spec and (not isinstance(spec[key], int) or isinstance(spec[key], bool)):
                fail(f"{where}.{key}", f"expected an integer, got {shown(spec[key])}")
        return Int(spec["low"], spec["high"], spec.get("step", 1), log, **common)
    for key in ("low", "high", "step"):
        if key in spec and not (key == "step" and spec[key] is None):  # step: null is no step
            try:
                if isinstance(spec[key], bool):
                    raise TypeError
                spec[key] = float(spec[key])  # PyYAML reads 1e-3 (no dot) as a string
            except (TypeError, ValueError):
                fail(f"{where}.{key}", f"expected a number, got {shown(spec[key])}")
    return Float(spec["low"], spec["high"], log, spec.get("step"), **common)


def _per_layer(spec: dict, where: str, fail: Any) -> str | None:
    value = spec.get("per_layer")
    if value is not None and not isinstance(value, str):
        fail(f"{where}.per_layer", f"expected the name of the depth parameter, got {shown(value)}")
    return value


def _when(spec: dict, where: str, fail: Any) -> dict[str, tuple[Any, ...]]:
    value = {} if spec.get("when") is None else spec["when"]
    if not isinstance(value, dict):
        fail(f"{where}.when", f"expected a mapping like {{ffn: lowrank}}, got {shown(value)}")
    return {str(k): tuple(v) if isinstance(v, list) else (v,) for k, v in value.items()}
