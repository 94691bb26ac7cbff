"""One registry of profile kinds (Python classes) and profile definitions (YAML files).

Definitions come from three places, later ones overriding earlier ones by profile name:

1. built-in: ``hw_profiles/*.yaml`` shipped with hwnas;
2. installed packages: entry points in the group ``hwnas.profiles``; an entry point may be a
   :class:`Profile` subclass (a new kind), a path to a YAML file or to a folder of YAML files, or a callable
   returning such paths;
3. the user profile folder (``$HWNAS_PROFILE_DIR``, else ``$XDG_CONFIG_HOME/hwnas/profiles``, else
   ``~/.config/hwnas/profiles``), filled by ``hwnas profiles add FILE.yaml``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from hwnas.builtin import PROFILES_DIR
from hwnas.errors import ProfileError
from hwnas.files import load_yaml
from hwnas.profiles.base import Profile

ENTRY_POINT_GROUP = "hwnas.profiles"
_KINDS: dict[str, type[Profile]] = {}
_REQUIRED = ("name", "kind")
_ALLOWED = {"name", "kind", "description", "source", "params"}


@dataclass(frozen=True)
class Definition:
    """Where a profile definition comes from."""

    name: str
    path: Path
    origin: str  # "built-in", "user", or "package <distribution>"


def register_kind(cls: type[Profile]) -> type[Profile]:
    """Class decorator: make a :class:`Profile` subclass available as ``kind:`` in YAML files."""
    _KINDS[cls.kind] = cls
    return cls


def kinds() -> dict[str, type[Profile]]:
    """Every profile kind: built-in ones and those that installed packages register."""
    _load_builtin_kinds()
    _entry_point_paths()  # registers kinds that packages provide
    return dict(_KINDS)


def _load_builtin_kinds() -> None:
    # Imported here so that `import hwnas` stays fast and kinds register themselves once.
    from hwnas.profiles import analytical as _analytical  # noqa: F401
    from hwnas.profiles import command as _command  # noqa: F401
    from hwnas.profiles import onnxruntime as _ort  # noqa: F401
    from hwnas.profiles import predictor as _predictor  # noqa: F401
    from hwnas.profiles import printed as _printed  # noqa: F401
    from hwnas.profiles import tvm as _tvm  # noqa: F401


def user_dir() -> Path:
    """The folder ``hwnas profiles add`` copies definitions into."""
    if os.environ.get("HWNAS_PROFILE_DIR"):
        return Path(os.environ["HWNAS_PROFILE_DIR"])
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "hwnas" / "profiles"


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path]


def _entry_point_paths() -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = f"package {ep.dist.name if ep.dist else ep.module}"
        try:
            obj = ep.load()
        except Exception as exc:
            raise ProfileError(f"entry point {ep.name!r} ({origin}) in group {ENTRY_POINT_GROUP} failed to load: {exc}") from None
        if isinstance(obj, type) and issubclass(obj, Profile):
            register_kind(obj)
            continue
        items: Iterable[Any] = obj() if callable(obj) else [obj]
        for item in items:
            if not isinstance(item, (str, Path)) or not Path(item).exists():
                raise ProfileError(f"entry point {ep.name!r} ({origin}) gave {item!r}, not an existing YAML file or folder")
            found += [(p, origin) for p in _yaml_files(Path(item))]
    return found


def _name_of(path: Path) -> str:
    try:
        data = load_yaml(path, ProfileError)
    except ProfileError:
        return path.stem  # `get` will report what is wrong with it
    return str(data["name"]) if isinstance(data, dict) and "name" in data else path.stem


def definitions() -> dict[str, Definition]:
    """Every named profile definition, with its origin (user > packages > built-in)."""
    out: dict[str, Definition] = {}
    sources = [(p, "built-in") for p in _yaml_files(PROFILES_DIR)] + _entry_point_paths()
    udir = user_dir()
    if udir.is_dir():
        sources += [(p, "user") for p in _yaml_files(udir)]
    for path, origin in sources:
        name = _name_of(path)
        out[name] = Definition(name, path, origin)
    return out


def load_file(path: str | Path, overrides: dict[str, Any] | None = None) -> Profile:
    """Build a profile from one YAML definition file; errors name the file and the field."""
    path = Path(path)
    return from_dict(load_yaml(path, ProfileError), path=path, overrides=overrides)


def from_dict(
    data: Any, *, path: Path | None = None, overrides: dict[str, Any] | None = None
) -> Profile:
    """Build a profile from a parsed definition (``name``, ``kind``, ``description``, ``source``, ``params``)."""
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
    """A profile by name (built-in, package or user) or by path to a YAML file, with parameter overrides."""
    defs = definitions()
    if name_or_path in defs:
        return load_file(defs[name_or_path].path, overrides)
    if name_or_path.endswith((".yaml", ".yml")) or Path(name_or_path).is_file():
        return load_file(name_or_path, overrides)
    raise ProfileError(f"unknown profile {name_or_path!r}; available: {sorted(defs)} (or a path to a YAML file)")


def list_profiles() -> list[tuple[Definition, Profile]]:
    """Every known profile, loaded (so that a malformed definition shows up here as an error)."""
    return [(d, load_file(d.path)) for d in definitions().values()]


def add(path: str | Path, *, force: bool = False) -> Path:
    """Validate a definition and copy it into the user profile folder as ``NAME.yaml``."""
    profile = load_file(path)
    existing = definitions().get(profile.name)
    if existing and not force:
        raise ProfileError(
            f"a profile named {profile.name!r} already exists ({existing.origin}: {existing.path}); "
            "use --force to replace or shadow it"
        )
    dest = user_dir() / f"{profile.name}.yaml"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest)
    return dest
