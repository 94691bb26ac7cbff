"""Circuits of a study's Pareto models: ``trial_N.v`` with its testbench and vectors for every model that has
an exact fixed-point circuit, simulated on the whole test split and checked class for class against its ONNX
file (``hwnas export --format verilog``, and at the end of a search with a printed profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import optuna

from hwnas.engine.records import study_entry
from hwnas.errors import CircuitError
from hwnas.lowering.metadata import read_metadata


def has_circuit(onnx_path: Path) -> bool:
    """Whether the file is a fixed-point MLP in exact integer form (the files a circuit is made for)."""
    fixed = read_metadata(onnx_path).get("hwnas.fixed_point")
    return isinstance(fixed, dict) and bool(fixed.get("integer"))


def add_circuits(rows: Sequence[dict[str, Any]], out: Path, split: Callable[[], tuple[np.ndarray, np.ndarray]], *,
                 required: bool) -> None:
    """Write each row's circuit next to its ONNX file and record ``row["circuit"]`` (bit-exactness, circuit
    accuracy on the test split ``split()`` gives). ``required``: a model without a circuit, or any failure, is
    an error (the user asked for Verilog); otherwise models without a circuit are skipped and a failure is
    recorded in the row, so the outputs are still written. Without a simulator the files are written and
    ``simulated`` is False."""
    from hwnas.circuit.simulate import simulator

    todo = []
    for row in rows:
        if has_circuit(out / row["file"]):
            todo.append(row)
        elif required:
            raise CircuitError(f"trial {row['trial']}: {Path(row['file']).name} has no exact fixed-point circuit "
                               "(search with a printed profile, ReLU, dense/low-rank/block-diagonal layers)")
    if not todo:
        return
    try:
        x, y = split()
    except CircuitError as exc:
        if required:
            raise
        for row in todo:
            row["circuit"] = {"error": str(exc)}
        return
    for row in todo:
        try:
            row["circuit"] = _circuit(row, out / row["file"], x, y, simulate=simulator() is not None)
        except CircuitError as exc:
            if required:
                raise
            row["circuit"] = {"error": str(exc)}  # the search's outputs are still written


def _circuit(row: dict[str, Any], onnx_path: Path, x: np.ndarray, y: np.ndarray, *, simulate: bool
             ) -> dict[str, Any]:
    from hwnas.circuit.simulate import export_circuit, write_circuit_for

    verilog = onnx_path.with_suffix(".v")
    if not simulate:
        _, files, _ = write_circuit_for(onnx_path, x, verilog)
        return {"simulated": False, "samples": int(len(x)), "files": [p.name for p in files],
                "note": "Icarus Verilog (iverilog) not found: circuit written, not simulated"}
    check = export_circuit(onnx_path, x, y, verilog)
    if not check.bit_exact:
        raise CircuitError(f"trial {row['trial']}: the simulated circuit differs from {onnx_path.name} on "
                           f"{check.simulation.mismatches} of {check.samples} test samples")
    return {"simulated": True, **check.summary()}


def test_split(study: optuna.Study) -> tuple[np.ndarray, np.ndarray]:
    """The test split the study's models were scored on, reloaded from its recorded dataset and seed."""
    from hwnas.data import load_dataset

    described = study_entry(study, "hwnas.dataset") or {}
    source = described.get("source") or described.get("name")
    if not source:
        raise CircuitError("the study records no dataset; cannot rebuild its test split")
    try:
        data = load_dataset(str(source) if Path(str(source)).is_file() else str(described.get("name")),
                            seed=int(described.get("seed", 0)))
    except Exception as exc:  # a moved or edited data file
        raise CircuitError(f"cannot reload the study's dataset {source!r}: {exc}") from exc
    if (len(data.y_test), data.n_features) != (described.get("n_test"), described.get("n_features")):
        raise CircuitError(f"dataset {source!r} no longer gives the study's test split "
                           f"({described.get('n_test')} rows of {described.get('n_features')} features)")
    return data.X_test, data.y_test
