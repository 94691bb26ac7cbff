"""Fuzz cases: malformed ONNX files, through ``hwnas profiles predict`` and ``hwnas profiles measure``."""

from __future__ import annotations

import random

from fuzzing import Case, Sandbox


def cases(sandbox: Sandbox, rng: random.Random) -> list[Case]:
    path = sandbox.file("onnx/empty.onnx", b"")
    return [Case("onnx-empty-gpu-a100", ["profiles", "predict", "gpu-a100", str(path)], names=(str(path),))]
