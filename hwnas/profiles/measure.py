"""Pairing predictions with measurements: which profile measures the hardware a predicted profile models."""

from __future__ import annotations

from typing import Any

from hwnas.profiles.base import Profile
from hwnas.profiles.registry import from_dict, get


def measuring_profile(profile: Profile, name: str | None = None) -> Profile | None:
    """The profile that measures ``profile``'s hardware (itself when it measures), or None if none is declared.

    ``measure_with`` is a profile name, or ``{profile: NAME, params: {...}}``, or an inline definition
    ``{kind: KIND, params: {...}}``. A ``batch_size`` of the predicted profile carries over.
    """
    if profile.provenance in ("measured", "synthesised"):  # synthesis is this hardware's ground truth here
        return profile
    spec: Any = profile.params.get("measure_with")
    if not spec:
        return None
    carry = {"batch_size": profile.params["batch_size"]} if "batch_size" in profile.params else {}
    name = name or f"{profile.name}@measured"
    if isinstance(spec, str):
        spec = {"profile": spec}
    params = {**(spec.get("params") or {}), **carry}
    if "profile" in spec:
        base = get(str(spec["profile"]), params)
        return from_dict({"name": name, "kind": base.kind, "description": base.description,
                          "source": base.source, "params": base.params})
    return from_dict({"name": name, "kind": spec["kind"], "description": f"measures {profile.name}",
                      "params": params})


def for_search(profile: Profile) -> Profile:
    """``profile``, or its measurement under the same name when it prefers one and the hardware is here."""
    if profile.provenance == "measured" or not profile.params.get("prefer_measured"):
        return profile
    measuring = measuring_profile(profile, name=profile.name)
    return measuring if measuring is not None and measuring.available() is None else profile
