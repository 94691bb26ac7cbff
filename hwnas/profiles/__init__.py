"""Hardware profiles: one interface (:class:`Profile`), one registry, YAML definitions in ``hw_profiles/``."""

from hwnas.profiles.base import FixedPoint, Metric, Profile, ProfileResult
from hwnas.profiles.registry import from_dict, get, kinds, list_profiles, load_file, register_kind

__all__ = [
    "FixedPoint",
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
