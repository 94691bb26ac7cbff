"""One registry of profile kinds (Python classes) and profile definitions (YAML files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hwnas.builtin import PROFILES_DIR
from hwnas.errors import ProfileError
from hwnas.profiles.base import Profile

_KINDS: dict[str, type[Profile]] = {}
_REQUIRED = ("name", "kind")
_ALLOWED = {"name", "kind", "description", "source", "params"}


def register_kind(cls: type[Profile]) -> type[Profile]:
    """Class decorator: make a :class:`Profile` subclass available as ``kind:`` in YAML files."""
    _KINDS[cls.kind] = cls
    return cls


def kinds() -> dict[str, type[Profile]]:
    _load_builtin_kinds()
    return dict(_KINDS)


def _load_builtin_kinds() -> None:
    # Imported here so that `import hwnas` stays fast and kinds register themselves once.
    from hwnas.profiles import onnxruntime as _ort  # noqa: F401
    from hwnas.profiles import printed as _printed  # noqa: F401


def _definition_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PROFILES_DIR.glob("*.yaml"))}


def load_file(path: str | Path, overrides: dict[str, Any] | None = None) -> Profile:
    """Build a profile from one YAML definition file; errors name the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile file") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    return from_dict(data, path=path, overrides=overrides)


def from_dict(
    data: Any, *, path: Path | None = None, overrides: dict[str, Any] | None = None
) -> Profile:
    where = str(path) if path else "<profile>"
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: expected a mapping with keys {list(_REQUIRED)}, got {type(data).__name__}")
    for key in _REQUIRED:
        if key not in data:
            raise ProfileError(f"{where}: missing required field '{key}'")
    extra = sorted(set(data) - _ALLOWED)
    if extra:
        raise ProfileError(f"{where}: unknown field(s) {extra}; allowed: {sorted(_ALLOWED)}")
    known = kinds()
    kind = data["kind"]
    if kind not in known:
        raise ProfileError(f"{where}: kind: unknown profile kind {kind!r}; known kinds: {sorted(known)}")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ProfileError(f"{where}: params: expected a mapping, got {type(params).__name__}")
    params = {**params, **(overrides or {})}
    try:
        return known[kind](
            str(data["name"]),
            params,
            description=str(data.get("description", "")),
            source=str(data.get("source", "")),
            path=path,
        )
    except ProfileError as exc:
        raise ProfileError(f"{where}: {exc}") from None


def get(name_or_path: str, overrides: dict[str, Any] | None = None) -> Profile:
    """A profile by built-in name or by path to a YAML file, with parameter overrides."""
    files = _definition_files()
    if name_or_path in files:
        return load_file(files[name_or_path], overrides)
    if name_or_path.endswith((".yaml", ".yml")) or Path(name_or_path).is_file():
        return load_file(name_or_path, overrides)
    raise ProfileError(f"unknown profile {name_or_path!r}; available: {sorted(files)} (or a path to a YAML file)")


def list_profiles() -> list[Profile]:
    """Every built-in profile, loaded (so a malformed definition shows up here)."""
    return [load_file(p) for p in _definition_files().values()]
