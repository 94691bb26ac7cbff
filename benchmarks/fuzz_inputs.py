"""Every generated malformed input (spaces, profiles, datasets, ONNX files) through the hwnas CLI, counted.

The cases are those of ``tests/test_fuzz.py`` (``tests/fuzz_*.py``), all of them instead of the sample the
test runs: each goes through the CLI in a bounded worker process (time per case, address space), and the
table counts clear errors (exit 2, one line naming the file and field), accepted inputs, tracebacks, hangs
and other problems (a wrong exit code, an unclear line, a stray file), per generator.

    python benchmarks/fuzz_inputs.py [--seed 0] [--json PATH]   (default benchmarks/results/fuzz_inputs.json)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's hwnas, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, header, table, write_json  # noqa: E402
from fuzzing import Sandbox, pool, problems, run_cases, summary  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    env = environment()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwnas-fuzz-") as tmp:
        sandbox = Sandbox(Path(tmp))
        cases = pool(sandbox, args.seed)
        results = run_cases(cases, sandbox)
        stray = sandbox.stray_files()
        # judged while the sandbox exists: a case's forbidden paths are checked on disk
        failures = {c.id: problems(c, results[c.id]) for c in cases if problems(c, results[c.id])}
        groups: dict[str, list] = {}
        for case in cases:
            groups.setdefault(case.id.split("-")[0], []).append(case)
        rows = [[name, *summary(group, results).values()] for name, group in sorted(groups.items())]
        total = summary(cases, results)
    rows.append(["all", *total.values()])
    print(header(env))
    print(table(["inputs", *total.keys()], rows))
    for case_id, issues in sorted(failures.items()):
        print(f"  {case_id}: {issues[0][:200]}")
    print(f"stray files: {len(stray)}; wall {time.perf_counter() - began:.0f} s")
    write_json("fuzz_inputs", {"environment": env, "seed": args.seed, "counts": total,
                           "by_input": {r[0]: dict(zip(total.keys(), r[1:])) for r in rows},
                           "failures": failures, "stray_files": stray}, args.json)


if __name__ == "__main__":
    main()
