"""Hardware profiles: one interface (:class:`Profile`), one registry, YAML definitions in ``hw_profiles/``."""

from hwnas.profiles.base import Bounds, Metric, Profile, ProfileResult
from hwnas.profiles.registry import (
    ENTRY_POINT_GROUP,
    Definition,
    add,
    definitions,
    from_dict,
    get,
    kinds,
    list_profiles,
    load_file,
    register_kind,
    user_dir,
)

__all__ = [
    "Bounds",
    "ENTRY_POINT_GROUP",
    "Definition",
    "add",
    "definitions",
    "user_dir",
    "Metric",
    "Profile",
    "ProfileResult",
    "from_dict",
    "get",
    "kinds",
    "list_profiles",
    "load_file",
    "register_kind",
]
