"""A fuzz harness for the hwnas CLI: malformed inputs, each run through the CLI with a time and memory bound.

Generators (``fuzz_*.py`` beside this file, each a ``cases(sandbox, rng) -> list[Case]``) write their input
files into the sandbox and say what the CLI must do with each: fail with exit code 2 and one line naming the
file and the field (``expect="error"``), or succeed (``"ok"``), or run a search whose trials all fail with a
recorded reason, which ends with one error line and exit code 3 (``"failed"``). :func:`run_cases` runs them
in a worker process (``fuzz_worker.py``) whose address space is bounded, each case under a time bound, and
:func:`problems` says what went wrong: a
traceback, a hang, a wrong exit code, an unclear message, or a file written outside the case's ``--out``
folder and the profile folder.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
GENERATORS = ("fuzz_spaces", "fuzz_profiles", "fuzz_data", "fuzz_onnx")
#: Address space of the worker: torch and ONNX Runtime reserve a few GB; a bomb must not take the host.
MEMORY_BYTES = 8 << 30
CASE_TIMEOUT_S = 30


@dataclass
class Case:
    """One CLI run. ``names``: what the one error line must contain (the file, the field, the value).
    ``forbidden``: paths that must not exist afterwards (where an escaping write would land)."""

    id: str
    argv: list[str]
    expect: str = "error"
    names: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    timeout_s: int = CASE_TIMEOUT_S


@dataclass
class Sandbox:
    """Folders of one fuzz run: inputs, per-case outputs, the profile folder, and the rest (which must stay
    empty). ``root`` is deep, so that a ``../../..`` escape lands inside ``top``, where it is seen."""

    top: Path
    root: Path = field(init=False)
    inputs: Path = field(init=False)
    outs: Path = field(init=False)
    profiles: Path = field(init=False)
    cwd: Path = field(init=False)
    home: Path = field(init=False)
    tmp: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.top / "a" / "b" / "c" / "d" / "e"
        for name in ("inputs", "outs", "profiles", "cwd", "home", "tmp"):
            setattr(self, name, self.root / name)
            getattr(self, name).mkdir(parents=True, exist_ok=True)

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.inputs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    def out(self, case_id: str) -> Path:
        return self.outs / case_id

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(HWNAS_PROFILE_DIR=str(self.profiles), HOME=str(self.home), TMPDIR=str(self.tmp),
                   XDG_CONFIG_HOME=str(self.home / ".config"), OMP_NUM_THREADS="1")
        # the worker is a script: without this, `import hwnas` finds whatever checkout is installed, not this one
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
        return env

    def stray_files(self) -> list[str]:
        """Files written anywhere but the inputs, the case outputs and the profile folder (temporary files
        left behind count too)."""
        allowed = (self.inputs, self.outs, self.profiles)
        stray = []
        for path in self.top.rglob("*"):
            if path.is_dir() or any(path.is_relative_to(a) for a in allowed):
                continue
            stray.append(str(path))
        return sorted(stray)


def pool(sandbox: Sandbox, seed: int = 0) -> list[Case]:
    """Every generated case (the generators write their input files into ``sandbox``)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    cases: list[Case] = []
    for name in GENERATORS:
        cases += importlib.import_module(name).cases(sandbox, random.Random(f"{name}:{seed}"))
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def run_cases(cases: list[Case], sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """Run ``cases`` in worker processes; a worker that overruns a case's bound by far is killed, the case
    recorded as hung, and a new worker takes the remaining cases. Results by case id."""
    results: dict[str, dict[str, Any]] = {}
    remaining = list(cases)
    round_ = 0
    while remaining:
        round_ += 1
        spec = sandbox.tmp.parent / f"fuzz-cases-{round_}.json"
        log = sandbox.tmp.parent / f"fuzz-results-{round_}.jsonl"
        spec.write_text(json.dumps([{**asdict(c), "cwd": str(sandbox.cwd)} for c in remaining]))
        budget = sum(c.timeout_s for c in remaining) + 60
        proc = subprocess.Popen([sys.executable, str(HERE / "fuzz_worker.py"), str(spec), str(log)],
                                env=sandbox.env(), preexec_fn=_limit_memory, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            _, worker_err = proc.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, worker_err = proc.communicate()
        started = None
        for line in log.read_text().splitlines() if log.exists() else []:
            record = json.loads(line)
            if record.get("started"):
                started = record["id"]
            else:
                results[record["id"]] = record
                started = None
        spec.unlink()
        log.unlink(missing_ok=True)
        if started is not None:  # the worker died or hung inside this case
            results[started] = {"id": started, "rc": None, "timeout": proc.returncode is None or proc.returncode < 0,
                                "escaped": None, "died": proc.returncode, "stderr": (worker_err or "")[-4000:],
                                "seconds": None}
        done = set(results)
        remaining = [c for c in remaining if c.id not in done]
        if remaining and started is None:  # the worker stopped between cases: nothing to blame, stop
            for c in remaining:
                results[c.id] = {"id": c.id, "rc": None, "timeout": False, "escaped": None, "died": proc.returncode,
                                 "stderr": (worker_err or "")[-4000:], "seconds": None}
            break
    return results


def problems(case: Case, result: dict[str, Any]) -> list[str]:
    """What is wrong with one case's outcome (empty: it did what it should)."""
    err = result.get("stderr") or ""
    found = []
    if result.get("timeout"):
        found.append("hang: ran past its time bound")
    if result.get("died") is not None:
        found.append(f"the worker died (exit {result['died']})")
    if result.get("escaped") or "Traceback" in err:
        found.append("traceback: " + (result.get("escaped") or err)[-600:])
    rc = result.get("rc")
    lines = [line for line in err.strip().splitlines() if line.strip()]
    if case.expect == "error":
        if rc != 2:
            found.append(f"exit code {rc}, expected 2")
        errors = [line for line in lines if ": error:" in line]
        if len(errors) != 1 or (lines and not lines[-1].startswith(("hwnas: error:", "usage:", "hwnas"))):
            found.append(f"expected one error line, got {lines[-3:]}")
        else:
            missing = [n for n in case.names if n not in errors[0]]
            if missing:
                found.append(f"the error line does not name {missing}: {errors[0][:300]}")
    elif case.expect == "ok" and rc != 0:
        found.append(f"exit code {rc}, expected 0: {lines[-2:]}")
    elif case.expect == "failed" and (rc != 3 or not lines or not lines[-1].startswith("hwnas: error:")):
        found.append(f"exit code {rc}, expected 3 and an error line (a search whose trials all failed): {lines[-2:]}")
    for path in case.forbidden:
        if os.path.lexists(path):
            found.append(f"wrote {path}")
    return found


def summary(cases: list[Case], results: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Counts the issue asks for: cases tried, clear errors, accepted, tracebacks, hangs, other problems."""
    counts = {"cases": len(cases), "clear_errors": 0, "accepted": 0, "tracebacks": 0, "hangs": 0, "other": 0}
    for case in cases:
        result = results[case.id]
        issues = problems(case, result)
        if any(i.startswith("traceback") for i in issues):
            counts["tracebacks"] += 1
        elif any(i.startswith("hang") for i in issues):
            counts["hangs"] += 1
        elif issues:
            counts["other"] += 1
        elif result.get("rc") == 2:
            counts["clear_errors"] += 1
        else:
            counts["accepted"] += 1
    return counts
