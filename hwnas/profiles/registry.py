"""One registry of profile kinds (Python classes) and profile definitions (YAML files).

Definitions come from three places, later ones overriding earlier ones by profile name:

1. built-in: ``hw_profiles/*.yaml`` shipped with hwnas;
2. installed packages: entry points in the group ``hwnas.profiles``; an entry point may be a
   :class:`Profile` subclass (a new kind), a path to a YAML file or to a folder of YAML files, or a callable
   returning such paths;
3. the user profile folder (``$HWNAS_PROFILE_DIR``, else ``$XDG_CONFIG_HOME/hwnas/profiles``, else
   ``~/.config/hwnas/profiles``), filled by ``hwnas profiles add FILE.yaml``.

A file of the user folder that cannot be loaded is skipped with a one-line warning (logger ``hwnas.profiles``)
wherever the folder is listed, so that it breaks nothing but itself: its name then means what it would mean
without it (a built-in profile of that name, else the file's own error). ``add`` writes only ``NAME.yaml``
directly inside the folder (:func:`hwnas.profiles.base.check_name`), never through a symlink, and never over a
file there without ``force``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from hwnas.builtin import PROFILES_DIR
from hwnas.errors import ProfileError
from hwnas.files import load_yaml, parse_yaml, read_text
from hwnas.profiles.base import Profile, check_name
from hwnas.validation import shown

ENTRY_POINT_GROUP = "hwnas.profiles"
_log = logging.getLogger("hwnas.profiles")
_KINDS: dict[str, type[Profile]] = {}
#: The errors of skipped user files already warned about: each is said once per process.
_WARNED: set[str] = set()
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
    from hwnas.profiles import synthesis as _synthesis  # noqa: F401
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


def _user_files() -> tuple[list[Definition], dict[str, ProfileError]]:
    """The user folder's definitions that load, and the errors of those that do not, by the name each declares
    (its file's stem when it declares none)."""
    udir = user_dir()
    good: list[Definition] = []
    bad: dict[str, ProfileError] = {}
    if not udir.is_dir():
        return good, bad
    for path in _yaml_files(udir):
        data = None
        try:
            data = load_yaml(path, ProfileError)
            profile = from_dict(data, path=path)
        except ProfileError as exc:
            declared = data.get("name") if isinstance(data, dict) else None
            bad[declared if isinstance(declared, str) and declared else path.stem] = exc
            continue
        good.append(Definition(profile.name, path, "user"))
    return good, bad


def _scan() -> tuple[dict[str, Definition], dict[str, ProfileError]]:
    """Every named definition (user > packages > built-in), and the user files skipped (see :func:`_user_files`)."""
    out: dict[str, Definition] = {}
    for path, origin in [(p, "built-in") for p in _yaml_files(PROFILES_DIR)] + _entry_point_paths():
        name = _name_of(path)
        out[name] = Definition(name, path, origin)
    good, bad = _user_files()
    out.update((d.name, d) for d in good)
    return out, bad


def _warn(skipped: dict[str, ProfileError]) -> None:
    for error in map(str, skipped.values()):  # each error names its file
        if error not in _WARNED:
            _WARNED.add(error)
            _log.warning("skipping a user profile file that cannot be loaded: %s", error)


def definitions() -> dict[str, Definition]:
    """Every named profile definition, with its origin (user > packages > built-in); user files that cannot be
    loaded are skipped with a warning."""
    out, skipped = _scan()
    _warn(skipped)
    return out


def load_file(path: str | Path, overrides: dict[str, Any] | None = None) -> Profile:
    """Build a profile from one YAML definition file; errors name the file and the field."""
    path = Path(path)
    return from_dict(load_yaml(path, ProfileError), path=path, overrides=overrides)


def from_dict(
    data: Any, *, path: Path | None = None, overrides: dict[str, Any] | None = None
) -> Profile:
    """Build a profile from a parsed definition (``name``, ``kind``, ``description``, ``source``, ``params``).

    An inline ``measure_with`` definition (``{kind: ..., params: ...}``) is built too, so that its mistakes show
    here rather than when something is measured."""
    where = str(path) if path else "<profile>"
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: expected a mapping with keys {list(_REQUIRED)}, got {type(data).__name__}")
    for key in _REQUIRED:
        if key not in data:
            raise ProfileError(f"{where}: missing required field '{key}'")
    extra = sorted(set(data) - _ALLOWED, key=str)
    if extra:
        raise ProfileError(f"{where}: unknown field(s) {shown(extra)}; allowed: {sorted(_ALLOWED)}")
    known = kinds()
    kind = data["kind"]
    if not isinstance(kind, str) or kind not in known:
        raise ProfileError(f"{where}: kind: unknown profile kind {shown(kind)}; known kinds: {sorted(known)}")
    text = {}
    for key in ("description", "source"):
        text[key] = data.get(key)
        if text[key] is None:
            text[key] = ""
        elif not isinstance(text[key], str):
            raise ProfileError(f"{where}: {key} must be a string, got {shown(text[key])}")
    params = data.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ProfileError(f"{where}: params: expected a mapping, got {type(params).__name__}")
    params = {**params, **(overrides or {})}
    try:
        profile = known[kind](data["name"], params, path=path, **text)
    except ProfileError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    spec = profile.params.get("measure_with")
    if isinstance(spec, dict) and "kind" in spec:
        from hwnas.profiles.measure import measuring_profile

        try:
            measuring_profile(profile)
        except ProfileError as exc:  # its own where is "<profile>": it is inline
            raise ProfileError(f"{where}: measure_with: {str(exc).removeprefix('<profile>: ')}") from None
    return profile


def get(name_or_path: str, overrides: dict[str, Any] | None = None) -> Profile:
    """A profile by name (built-in, package or user) or by path to a YAML file, with parameter overrides."""
    defs, skipped = _scan()
    if name_or_path in defs:
        _warn(skipped)
        return load_file(defs[name_or_path].path, overrides)
    if _is_path(name_or_path):
        _warn(skipped)
        return load_file(name_or_path, overrides)
    if name_or_path in skipped:  # that bad file is the one asked for: its error, not a warning
        raise skipped[name_or_path]
    _warn(skipped)
    raise ProfileError(f"unknown profile {shown(name_or_path)}; available: {sorted(defs)} (or a path to a YAML file)")


def _is_path(text: str) -> bool:
    """Whether ``text`` names a file rather than a profile (a folder or a FIFO too: loading it says what it is)."""
    separators = [s for s in (os.sep, os.altsep) if s]
    return text.endswith((".yaml", ".yml")) or any(s in text for s in separators) or os.path.lexists(text)


def list_profiles() -> list[tuple[Definition, Profile]]:
    """Every known profile, loaded (a malformed built-in or package definition shows up here as an error; a user
    file that cannot be loaded is skipped with a warning)."""
    return [(d, load_file(d.path)) for d in definitions().values()]


def add(path: str | Path, *, force: bool = False) -> Path:
    """Validate a definition and write it into the user profile folder as ``NAME.yaml`` (see the module
    docstring for where it may write); returns the file written."""
    text = read_text(path, ProfileError)
    profile = from_dict(parse_yaml(text, str(path), ProfileError), path=Path(path))
    existing = definitions().get(profile.name)
    if existing and not force:
        raise ProfileError(
            f"a profile named {profile.name!r} already exists ({existing.origin}: {existing.path}); "
            "use --force to replace or shadow it"
        )
    try:
        folder = user_dir()
        folder.mkdir(parents=True, exist_ok=True)
        folder = folder.resolve(strict=True)
    except (OSError, RuntimeError, ValueError) as exc:  # not a folder, a symlink loop, a NUL in the variable
        raise ProfileError(f"cannot use the profile folder {user_dir()}: {getattr(exc, 'strerror', None) or exc}") from None
    dest = folder / f"{check_name(profile.name)}.yaml"  # again where it counts: a kind may set its name itself
    if os.path.lexists(dest) and not force:
        raise ProfileError(f"{dest} already exists; use --force to replace it")
    _write_new(dest, text)
    return dest


def _write_new(dest: Path, text: str) -> None:
    """Write ``text`` to ``dest`` atomically, replacing what ``dest`` is (a symlink itself, not its target)."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, dest)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ProfileError(f"cannot write {dest}: {exc.strerror or exc}") from None
