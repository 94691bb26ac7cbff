"""Malformed spaces, profiles, datasets and ONNX files through the CLI: one clear line (exit 2) or a recorded
failed trial; never a traceback, a hang, or a file written outside ``--out`` and the profile folder.

A few hundred cases of the generated pool run per test run (a fixed seed picks them; ``HWNAS_FUZZ_CASES``
changes how many, ``all`` runs every one); ``benchmarks/fuzz_inputs.py`` runs the whole pool and counts."""

from __future__ import annotations

import os
import random

from fuzzing import Sandbox, pool, problems, run_cases, summary


def test_malformed_inputs_fail_clearly_through_the_cli(tmp_path):
    sandbox = Sandbox(tmp_path)
    cases = pool(sandbox)
    want = os.environ.get("HWNAS_FUZZ_CASES", "300")
    chosen = cases if want == "all" else random.Random(0).sample(cases, min(int(want), len(cases)))
    results = run_cases(chosen, sandbox)
    bad = {c.id: problems(c, results[c.id]) for c in chosen if problems(c, results[c.id])}
    counts = summary(chosen, results)
    print(counts)
    assert not bad, "\n".join(f"{k}: {v}" for k, v in sorted(bad.items())[:20]) + f"\n{counts}"
    assert sandbox.stray_files() == []
