"""Fuzz cases: malformed search-space files, through ``hwnas spaces show`` and ``hwnas search``."""

from __future__ import annotations

import random

from fuzzing import Case, Sandbox

VALID = "name: ok\nmodel: mlp\nparams:\n  width: {type: int, low: 2, high: 8}\n"


def cases(sandbox: Sandbox, rng: random.Random) -> list[Case]:
    out = []
    bad = {
        "not_yaml": ("params: [", ()),
        "no_model": ("params: {width: [1, 2]}\n", ("model",)),
        "low_high": ("model: mlp\nparams: {depth: {type: int, low: 3, high: 2}}\n", ("params.depth.low",)),
    }
    for name, (text, names) in bad.items():
        path = sandbox.file(f"spaces/{name}.yaml", text)
        out.append(Case(f"space-show-{name}", ["spaces", "show", str(path)], names=(str(path), *names)))
    path = sandbox.file("spaces/valid.yaml", VALID)
    out.append(Case("space-show-valid", ["spaces", "show", str(path)], expect="ok"))
    return out
