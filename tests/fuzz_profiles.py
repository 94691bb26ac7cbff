"""Fuzz cases: malformed hardware-profile files, through ``hwnas profiles show/add/predict`` and a search."""

from __future__ import annotations

import random

from fuzzing import Case, Sandbox


def cases(sandbox: Sandbox, rng: random.Random) -> list[Case]:
    out = []
    path = sandbox.file("profiles/unknown_kind.yaml", "name: x\nkind: quantum\n")
    out.append(Case("profile-show-unknown-kind", ["profiles", "show", str(path)], names=(str(path), "kind")))
    return out
