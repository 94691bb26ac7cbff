"""Shared helpers of the benchmark scripts: machine/version provenance, JSON output, plain-text tables."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
RUNS_DIR = RESULTS_DIR / "runs"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


from hwnas.profiles.onnxruntime import cpu_name  # noqa: E402  (one home for the host's CPU name)


def environment() -> dict[str, Any]:
    """Where and with what a benchmark ran: CPU, cores, load, package versions, date."""
    import hwnas

    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(),
            "loadavg_1_5_15_at_start": load,
        },
        "versions": {
            "python": platform.python_version(),
            "hwnas": getattr(hwnas, "__version__", None),
            "optuna": _version("optuna"),
            "onnxruntime": _version("onnxruntime"),
            "torch": _version("torch"),
            "onnx": _version("onnx"),
            "numpy": _version("numpy"),
        },
        "command": [Path(sys.executable).name, *sys.argv],
    }


def loadavg() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def write_json(name: str, payload: Mapping[str, Any], path: str | Path | None = None) -> Path:
    out = Path(path) if path else RESULTS_DIR / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A plain-text table; ``align`` is one char per column ('l' or 'r'), default first left, rest right."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    align = align or "l" + "r" * (len(headers) - 1)

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)).rstrip()

    lines = [fmt(headers), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)


def fnum(x: float | None, digits: int = 4) -> str:
    """Compact number formatting ('-' for None/NaN)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}"


def seconds_since(start: float) -> float:
    return time.perf_counter() - start


def header(env: Mapping[str, Any]) -> str:
    m, v = env["machine"], env["versions"]
    return (f"# {env['date']}  CPU: {m['cpu']} ({m['cores']} cores), load {m['loadavg_1_5_15_at_start']}\n"
            f"# hwnas {v['hwnas']}, optuna {v['optuna']}, onnxruntime {v['onnxruntime']}, torch {v['torch']}, "
            f"python {v['python']}")


def trial_record(trial: Any) -> dict[str, Any]:
    """A trial's hwnas record as plain JSON-able values: ``status`` (None for a trial without a record: cut off
    by a kill), ``reused_from``, ``timings``, ``epochs_run`` (:class:`hwnas.engine.records.TrialRecord`)."""
    from hwnas.engine.records import read_record

    rec = read_record(trial)
    if rec is None:
        return {"status": None, "reused_from": None, "timings": {}, "epochs_run": None}
    return {"status": rec.status.value, "reused_from": rec.reused_from, "timings": dict(rec.timings),
            "epochs_run": rec.epochs_run}
