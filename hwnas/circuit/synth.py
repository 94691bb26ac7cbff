"""Logic synthesis of Verilog text onto a Liberty standard-cell library: synthesised area, power and delay.

Flow (:data:`SCRIPT`, Yosys): ``read_verilog``; ``synth -top TOP -flatten -noabc`` (generic gates);
``dfflibmap`` and ``abc -liberty`` with :data:`ABC_SCRIPT` (optimisation and mapping onto the library's cells); ``opt_clean -purge``; ``stat -liberty``
(area, the tool's own sum of the cells' ``area``) and ``write_json`` (the mapped netlist). From the netlist:

* **cells**: count per library cell (a cell ABC left unmapped is an error, not a zero);
* **power** = Σ cells' ``cell_leakage_power`` (the library's leakage already holds the measured total power
  density of the technology, see ``hw_profiles/egfet.lib``; switching activity is not simulated);
* **delay** = the longest path, primary inputs (or flip-flop outputs, at their clock-to-Q delay) to primary
  outputs (or flip-flop D inputs), summing each cell's largest ``cell_rise``/``cell_fall`` value. Yosys 0.70's
  ``sta`` reads ``$specify`` timing, not Liberty, and ABC's ``stime`` would need its log parsed from inside
  the ``abc`` pass; the library's delays are load-independent, so this longest path is what ``stime`` computes.

Yosys is a C++ library: a crash, a hang or an ``ERROR`` (which exits its process) must not take the search
down, so it runs in a child process with a timeout (pyosys, ``pip install -e .[synthesis]``; else a ``yosys``
binary on PATH); a failure is one :class:`~hwnas.errors.ProfileError` line. Results are cached by
:func:`cache_key` (Verilog text, library bytes, script, top) in memory and, with ``cache_dir``, in JSON files.

Units: the library's time unit is declared ``1ns`` (ABC does not accept ``1ms``) but every delay in it is in
milliseconds (see its header); areas are mm², leakage µW. Reports give cm², mW, ms.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import metadata, util
from pathlib import Path
from typing import Any

from hwnas.errors import ProfileError, clip

#: The Yosys commands, in order; ``{design}``, ``{liberty}``, ``{stat}``, ``{netlist}`` are file names in the
#: run's private folder, ``{top}`` the checked top module name. Its digest is part of every cache key.
#: ABC's mapping script. Yosys's default for ``-liberty`` starts with ``&fraig -x``, an unbounded SAT sweep:
#: on the Balance Scale MLP it took 23 of 25 s, on the Cardio MLP over 20 min. Bounded to 2000 conflicts per
#: check, with a second ``dc2; &dch -f; &nf`` round, RedWine maps in 24 s to 2035 mm² (default flow: 76 s,
#: 2013 mm²; 50 conflicts: 6 s, 2210 mm²; 500: 10 s, 2076 mm²; 10000: 48 s, 2030 mm²). ``synth -noabc``:
#: this mapping does the logic optimisation once.
ABC_SCRIPT = ("+strash;&get,-n;&fraig,-x,-C,2000;&put;scorr;dc2;dretime;strash;&get,-n;&dch,-f;&nf;&put;"
              "strash;dc2;&get,-n;&dch,-f;&nf;&put")
SCRIPT = ("+strash;&get,-n;&fraig,-x,-C,50;&put;scorr;dc2;dretime;strash;&get,-n;&dch,-f;&nf;&put;"
              "strash;dc2;&get,-n;&dch,-f;&nf;&put")
SCRIPT = (
    "read_verilog -sv {design}",
    "synth -top {top} -flatten -noabc",
    "dfflibmap -liberty {liberty}",
    "abc -liberty {liberty} -script " + ABC_SCRIPT,
    "opt_clean -purge",
    "tee -q -o {stat} stat -liberty {liberty}",
    "write_json {netlist}",
)
SCRIPT_DIGEST = hashlib.sha256("\n".join(SCRIPT).encode()).hexdigest()
DEFAULT_TIMEOUT_S = 600.0
#: Verilog identifiers only: the name goes into a Yosys command line.
_TOP = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,199}")
_INSTALL = "pip install -e .[synthesis]"

#: The child process that runs the script in pyosys: one pass at a time, each timed.
_PYOSYS_CHILD = r"""
import json, sys, time
from pyosys import libyosys as ys
design, times = ys.Design(), []
for command in json.load(open(sys.argv[1])):
    start = time.perf_counter()
    ys.run_pass(command, design)
    times.append(round(time.perf_counter() - start, 4))
print("HWNAS-VERSION " + ys.yosys_maybe_version())
print("HWNAS-TIMES " + json.dumps(times))
"""


@dataclass(frozen=True)
class LibCell:
    """What the flow reads of one Liberty cell: area (mm²), leakage (µW), its largest delay (ms), whether it
    is a flip-flop (a path starts at its outputs and ends at its inputs), its output pins (the mapped netlist
    does not say which pins of a library cell are outputs)."""

    name: str
    area_mm2: float
    leakage_uw: float
    delay_ms: float
    sequential: bool
    outputs: frozenset[str]


@dataclass(frozen=True)
class SynthesisReport:
    """One synthesised design. ``cells``: count per library cell; ``seconds``: the synthesis run's wall time
    (as first run: a cached report keeps it); digests tie the numbers to the exact inputs."""

    top: str
    area_cm2: float
    power_mw: float
    delay_ms: float
    cells: dict[str, int]
    tool: str
    tool_version: str
    library: str
    library_digest: str
    script_digest: str
    verilog_digest: str
    seconds: float
    pass_seconds: dict[str, float]

    @property
    def cell_count(self) -> int:
        return sum(self.cells.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SynthesisReport":
        return cls(**data)


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (a library's digest)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cache_key(verilog: str, top: str, library_digest: str, tool: str = "") -> str:
    """The digest a synthesis result is cached under: what it was made from, and how (``tool``: the Yosys that
    made it, :func:`backend`'s version; another Yosys maps differently)."""
    parts = (hashlib.sha256(verilog.encode()).hexdigest(), top, library_digest, SCRIPT_DIGEST, tool)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# -- Liberty -----------------------------------------------------------------------------------------------

def read_liberty(path: Path) -> dict[str, LibCell]:
    """The cells of a Liberty file, reading only ``area``, ``cell_leakage_power``, the ``values`` of
    ``cell_rise`` / ``cell_fall`` tables and ``ff`` groups (what ``hw_profiles/egfet.lib`` writes); not a
    general Liberty parser."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read Liberty library {path}: {exc}") from None
    return _parse_liberty(text, str(path))


@lru_cache(maxsize=16)
def _parse_liberty(text: str, where: str) -> dict[str, LibCell]:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    cells: dict[str, LibCell] = {}
    for match in re.finditer(r"\bcell\s*\(\s*\"?([A-Za-z0-9_]+)\"?\s*\)\s*\{", text):
        body = _block(text, match.end(), where)
        area = re.search(r"\barea\s*:\s*([-0-9.eE+]+)", body)
        leak = re.search(r"\bcell_leakage_power\s*:\s*([-0-9.eE+]+)", body)
        delays = [float(v) for table in re.findall(r"\bcell_(?:rise|fall)\s*\([^)]*\)\s*\{\s*values\s*\(([^)]*)\)",
                                                   body)
                  for v in re.findall(r"[-0-9.eE+]+", table)]
        outputs = frozenset(pin.group(1) for pin in re.finditer(r"\bpin\s*\(\s*\"?(\w+)\"?\s*\)\s*\{", body)
                            if re.search(r"\bdirection\s*:\s*\"?output", _block(body, pin.end(), where)))
        if area is None or not outputs:
            raise ProfileError(f"{where}: cell {match.group(1)} has no area or no output pin")
        cells[match.group(1)] = LibCell(match.group(1), float(area.group(1)), float(leak.group(1)) if leak else 0.0,
                                        max(delays, default=0.0), bool(re.search(r"\bff\s*\(", body)), outputs)
    if not cells:
        raise ProfileError(f"{where}: no cell found in this Liberty library")
    return cells


def _block(text: str, start: int, where: str) -> str:
    """The text of the ``{ ... }`` group that opens just before ``start``."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    raise ProfileError(f"{where}: unbalanced braces in a cell group")


# -- running Yosys -----------------------------------------------------------------------------------------

def backend() -> tuple[str, list[str]]:
    """``(version, argv prefix)`` of the Yosys this machine runs: pyosys in a child Python, else a ``yosys``
    binary; a ProfileError naming the ``synthesis`` extra when there is neither."""
    if util.find_spec("pyosys") is not None:
        return f"pyosys {metadata.version('pyosys')}", [sys.executable, "-c", _PYOSYS_CHILD]
    binary = shutil.which("yosys")
    if binary:
        return "yosys binary", [binary, "-q", "-s"]
    raise ProfileError(f"synthesis needs Yosys: install the 'synthesis' extra ({_INSTALL}) or a yosys binary")


def _run_yosys(folder: Path, commands: list[str], timeout_s: float, top: str) -> tuple[str, dict[str, float]]:
    """Run ``commands`` in ``folder`` in a child process; the Yosys version and the seconds per pass."""
    version, argv = backend()
    if argv[-1] == "-s":  # the binary reads a script file
        (folder / "run.ys").write_text("\n".join(commands) + "\n")
        argv = [*argv, "run.ys"]
    else:
        (folder / "run.json").write_text(json.dumps(commands))
        argv = [*argv, "run.json"]
    log = folder / "yosys.log"
    try:
        with open(log, "wb") as out:
            proc = subprocess.run(argv, cwd=folder, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise ProfileError(f"synthesis of '{top}' timed out after {timeout_s:g} s") from None
    except OSError as exc:
        raise ProfileError(f"cannot run Yosys ({argv[0]}): {exc.strerror or exc}") from None
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        errors = [line.strip() for line in text.splitlines() if "ERROR:" in line]  # "design.v:3: ERROR: ..."
        why = errors[0] if errors else (f"Yosys crashed (signal {-proc.returncode})" if proc.returncode < 0
                                        else f"Yosys exited with status {proc.returncode}")
        raise ProfileError(clip(f"synthesis of '{top}' failed: {why}", 500))
    found = re.search(r"^HWNAS-VERSION (.*)$", text, re.M)
    full = f"{version} ({found.group(1).split(' (')[0]})" if found else version
    times = re.search(r"^HWNAS-TIMES (.*)$", text, re.M)
    per_pass = dict(zip((c.split()[0] if not c.startswith("tee") else "stat" for c in commands),
                        json.loads(times.group(1)))) if times else {}
    return full, per_pass


# -- reading the result ------------------------------------------------------------------------------------

def _chip_area(stat: str) -> float | None:
    """The chip area ``stat -liberty`` printed (None when it printed none: it prints none for zero cells)."""
    found = re.search(r"Chip area for (?:top )?module '?\\?\S*?'?:\s*([0-9.eE+-]+)", stat)
    return None if found is None else float(found.group(1))


def _netlist_figures(netlist: dict[str, Any], top: str, lib: dict[str, LibCell]) -> tuple[dict[str, int], float]:
    """Cell counts and the longest path (ms) of the mapped ``top``."""
    module = netlist.get("modules", {}).get(top)
    if module is None:
        raise ProfileError(f"synthesis: top module '{top}' is missing from the mapped netlist")
    cells = module.get("cells", {})
    counts: dict[str, int] = {}
    for cell in cells.values():
        counts[cell["type"]] = counts.get(cell["type"], 0) + 1
    unmapped = sorted(t for t in counts if t not in lib)
    if unmapped:
        raise ProfileError(f"synthesis left cells not in the library: {', '.join(unmapped)}")
    # Longest path (Kahn's order): a net's arrival is its driver's latest input plus the driver's delay.
    driver: dict[Any, str] = {}
    inputs: dict[str, list[Any]] = {}
    for name, cell in cells.items():
        outs = lib[cell["type"]].outputs
        inputs[name] = [b for p, bits in cell["connections"].items() if p not in outs for b in bits]
        for p, bits in cell["connections"].items():
            if p in outs:
                driver.update({b: name for b in bits if isinstance(b, int)})
    arrival: dict[Any, float] = {}
    done: dict[str, float] = {}
    for root in cells:
        stack = [root]
        while stack:
            name = stack[-1]
            if name in done:
                stack.pop()
                continue
            spec = lib[cells[name]["type"]]
            if spec.sequential:  # a path starts at a flip-flop's output
                done[name] = spec.delay_ms
                stack.pop()
                continue
            waiting = [driver[b] for b in inputs[name] if b in driver and driver[b] not in done]
            if waiting:
                if len(stack) > len(cells) + 1:
                    raise ProfileError(f"synthesis: combinational loop in '{top}'")
                stack.extend(waiting)
                continue
            done[name] = max((done[driver[b]] for b in inputs[name] if b in driver), default=0.0) + spec.delay_ms
            stack.pop()
    for bit, name in driver.items():
        arrival[bit] = done[name]
    ends = [b for port in module.get("ports", {}).values() if port.get("direction") == "output" for b in port["bits"]]
    ends += [b for name, cell in cells.items() if lib[cell["type"]].sequential for b in inputs[name]]
    return counts, max((arrival.get(b, 0.0) for b in ends), default=0.0)


# -- the entry point ---------------------------------------------------------------------------------------

_MEMORY: dict[str, SynthesisReport] = {}


def synthesise(verilog: str, top: str, library: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S,
               cache_dir: Path | None = None) -> SynthesisReport:
    """Synthesise ``verilog`` (module ``top``) onto the Liberty ``library``: area, power, delay, cells.

    Cached by :func:`cache_key` in memory and, with ``cache_dir``, as ``<key>.json`` there (written
    atomically; an unreadable entry is recomputed). Raises :class:`~hwnas.errors.ProfileError` (one line)
    when the Verilog does not synthesise, Yosys crashes or runs past ``timeout_s``, or Yosys is missing.
    """
    if not isinstance(top, str) or not _TOP.fullmatch(top):
        raise ProfileError(f"top module must be a Verilog identifier, got {top!r}")
    library = Path(library)
    try:
        lib_bytes = library.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read Liberty library {library}: {exc.strerror or exc}") from None
    lib_digest = hashlib.sha256(lib_bytes).hexdigest()
    key = cache_key(verilog, top, lib_digest, backend()[0])
    if key in _MEMORY:
        return _MEMORY[key]
    cached = _read_cached(cache_dir, key)
    if cached is not None:
        _MEMORY[key] = cached
        return cached
    lib = _parse_liberty(lib_bytes.decode("utf-8", errors="replace"), str(library))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwnas-synth-") as tmp:
        folder = Path(tmp)
        (folder / "design.v").write_text(verilog, encoding="utf-8")
        (folder / "cells.lib").write_bytes(lib_bytes)  # a fixed name: a path with spaces never reaches Yosys
        names = {"design": "design.v", "liberty": "cells.lib", "stat": "stat.txt", "netlist": "netlist.json",
                 "top": top}
        version, per_pass = _run_yosys(folder, [c.format(**names) for c in SCRIPT], timeout_s, top)
        try:
            area_mm2 = _chip_area((folder / "stat.txt").read_text(errors="replace"))
            netlist = json.loads((folder / "netlist.json").read_text(errors="replace"))
        except (OSError, ValueError) as exc:
            raise ProfileError(f"synthesis of '{top}' wrote no readable result: {exc}") from None
    counts, delay_ms = _netlist_figures(netlist, top, lib)
    if area_mm2 is None:
        if counts:
            raise ProfileError(f"synthesis of '{top}': `stat -liberty` printed no chip area")
        area_mm2 = 0.0
    power_uw = sum(n * lib[t].leakage_uw for t, n in counts.items())
    report = SynthesisReport(
        top=top, area_cm2=area_mm2 / 100.0, power_mw=power_uw / 1000.0, delay_ms=delay_ms,
        cells=dict(sorted(counts.items())), tool="yosys", tool_version=version, library=library.name,
        library_digest=lib_digest, script_digest=SCRIPT_DIGEST,
        verilog_digest=hashlib.sha256(verilog.encode()).hexdigest(),
        seconds=round(time.perf_counter() - start, 3), pass_seconds=per_pass)
    _MEMORY[key] = report
    _write_cached(cache_dir, key, report)
    return report


def _read_cached(cache_dir: Path | None, key: str) -> SynthesisReport | None:
    if cache_dir is None:
        return None
    try:
        data = json.loads((Path(cache_dir) / f"{key}.json").read_text(encoding="utf-8"))
        report = SynthesisReport.from_dict(data)
    except (OSError, ValueError, TypeError):
        return None
    ok = all(isinstance(getattr(report, f), (int, float)) and math.isfinite(getattr(report, f))
             for f in ("area_cm2", "power_mw", "delay_ms"))
    return report if ok else None


def _write_cached(cache_dir: Path | None, key: str, report: SynthesisReport) -> None:
    if cache_dir is None:
        return
    folder = Path(cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key[:16]}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(report.to_dict(), f, indent=1)
        os.replace(tmp, folder / f"{key}.json")
    except OSError as exc:
        raise ProfileError(f"cannot write the synthesis cache in {folder}: {exc.strerror or exc}") from None
