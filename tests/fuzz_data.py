"""Fuzz cases: malformed datasets, through ``hwnas search --dataset``."""

from __future__ import annotations

import random

from fuzzing import Case, Sandbox


def cases(sandbox: Sandbox, rng: random.Random) -> list[Case]:
    path = sandbox.file("data/empty.csv", "")
    return [Case("data-empty-csv", ["search", "mlp_tabular", "--dataset", str(path), "--trials", "1", "--epochs", "1",
                                    "--no-progress", "--out", str(sandbox.out("data-empty-csv"))],
                 names=(str(path),))]
