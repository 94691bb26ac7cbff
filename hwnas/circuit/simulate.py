"""Simulate a generated circuit with Icarus Verilog (Debian/Ubuntu package ``iverilog``) on its test vectors.

The simulator runs the Verilog that is shipped, through its own self-checking testbench; the classes it prints
are compared here with the ONNX model's, so a pass is a proof on those samples that the circuit and the file
compute the same function.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.circuit.network import IntegerNetwork, input_codes, integer_network
from hwnas.circuit.verilog import write_circuit
from hwnas.errors import CircuitError

SIMULATOR = "iverilog"


def simulator() -> str | None:
    """Path of ``iverilog`` (None when it is not installed)."""
    return shutil.which(SIMULATOR) if shutil.which("vvp") else None


@dataclass(frozen=True)
class Simulation:
    """The classes the simulated circuit produced for each vector, and how many differ from the expected."""

    classes: np.ndarray
    mismatches: int
    simulator: str
    seconds: float

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0


def simulate(verilog: Path, testbench: Path, *, timeout_s: float = 600.0) -> Simulation:
    """Compile and run ``testbench`` with ``verilog`` (the vector file must lie next to the testbench)."""
    tool = simulator()
    if tool is None:
        raise CircuitError("simulating a circuit needs Icarus Verilog: install the 'iverilog' package "
                           "(apt-get install iverilog)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwnas-sim-") as tmp:
        binary = Path(tmp) / "sim.vvp"
        _run([tool, "-g2005", "-o", str(binary), str(testbench), str(verilog)], testbench.parent, timeout_s,
             "iverilog")
        out = _run(["vvp", "-n", str(binary)], testbench.parent, timeout_s, "vvp")
    found = dict((int(i), int(c)) for i, c in re.findall(r"^class (\d+) (\d+)$", out, re.M))
    result = re.search(r"^(PASS (\d+)|FAIL (\d+) of (\d+))$", out, re.M)
    if result is None or len(found) == 0:
        raise CircuitError(f"{testbench.name}: the simulation printed no verdict: {out.strip()[-300:]!r}")
    classes = np.array([found.get(i, -1) for i in range(max(found) + 1)], dtype=np.int64)
    mismatches = 0 if result.group(2) else int(result.group(3))
    return Simulation(classes, mismatches, f"{SIMULATOR} {_version(tool)}", time.perf_counter() - start)


def _run(argv: list[str], cwd: Path, timeout_s: float, what: str) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CircuitError(f"{what} did not finish within {timeout_s:g} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise CircuitError(f"{what} failed (exit {done.returncode}): {tail[0][:300]}")
    return done.stdout


def _version(tool: str) -> str:
    try:
        first = subprocess.run([tool, "-V"], capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = re.search(r"version (\S+)", first[0] if first else "")
    return match.group(1) if match else "unknown"


@dataclass(frozen=True)
class CircuitCheck:
    """A circuit written for an ONNX file and proven against it on a data split."""

    network: IntegerNetwork
    files: list[Path]
    samples: int
    simulation: Simulation
    onnx_classes: np.ndarray
    accuracy: float | None

    @property
    def bit_exact(self) -> bool:
        return self.simulation.bit_exact and bool(np.array_equal(self.simulation.classes, self.onnx_classes))

    def summary(self) -> dict[str, object]:
        """What a Pareto row / export report records about the circuit."""
        return {"samples": self.samples, "bit_exact": self.bit_exact, "mismatches": self.simulation.mismatches,
                "circuit_accuracy": self.accuracy, "simulator": self.simulation.simulator,
                "files": [p.name for p in self.files]}


def write_circuit_for(onnx_path: Path, x: np.ndarray, out: Path) -> tuple[IntegerNetwork, list[Path], np.ndarray]:
    """Write ``out`` (``trial_N.v``), its testbench and vectors for the raw samples ``x``, the expected classes
    being the ONNX file's; returns the network, the three files and those classes."""
    net = integer_network(onnx_path)
    codes, scores = input_codes(onnx_path, x)
    if not np.array_equal(np.asarray(scores), net.scores(codes)):  # float64 integers against int64: by value
        raise CircuitError(f"{onnx_path.name}: the integer network does not reproduce the file's scores")
    onnx_classes = np.argmax(np.asarray(scores), axis=1)
    return net, write_circuit(net, codes, onnx_classes, out), onnx_classes


def export_circuit(onnx_path: Path, x: np.ndarray, y: np.ndarray | None, out: Path) -> CircuitCheck:
    """:func:`write_circuit_for`, then simulate the vectors and compare every class with the file's."""
    net, files, onnx_classes = write_circuit_for(onnx_path, x, out)
    sim = simulate(files[0], files[1])
    accuracy = None if y is None else float(np.mean(sim.classes == np.asarray(y)))
    return CircuitCheck(net, files, len(onnx_classes), sim, onnx_classes, accuracy)
