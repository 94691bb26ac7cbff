"""Logic synthesis onto the EGFET Liberty library (hwnas.circuit.synth): what a profile built on it relies on."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from hwnas.circuit import synth
from hwnas.errors import ProfileError

LIB = Path(__file__).resolve().parents[1] / "hw_profiles" / "egfet.lib"


def _has_yosys() -> bool:
    try:
        synth.backend()
    except ProfileError:
        return False
    return True


needs_yosys = pytest.mark.skipif(not _has_yosys(), reason="needs Yosys (pip install -e .[synthesis])")

MAC = """
module top(input [3:0] a, input [3:0] b, output [8:0] y);
  assign y = a * 8'd13 + b;            // a bespoke constant multiplier and an adder
endmodule
"""
BIGGER = """
module top(input [3:0] a, input [3:0] b, input [3:0] c, output [10:0] y);
  assign y = a * 8'd13 + b * 8'd11 + c * 8'd7;
endmodule
"""
SHIFT = """
module top(input [3:0] a, output [7:0] y);
  assign y = a * 8'd4;                 // a power of two: wires only
endmodule
"""


@pytest.fixture(autouse=True)
def _fresh_memory():
    synth._MEMORY.clear()
    yield
    synth._MEMORY.clear()


def test_library_cells_and_units():
    cells = synth.read_liberty(LIB)
    assert set(cells) == {"INV", "BUF", "NAND2", "NOR2", "AND2", "OR2", "XOR2", "XNOR2", "DFF"}
    assert cells["NAND2"].area_mm2 == 0.247 and cells["XNOR2"].area_mm2 == 1.34  # ISCA'20 Table 2, mm^2
    assert cells["INV"].delay_ms == 1.45 and cells["AND2"].delay_ms == 2.9  # one and two logic levels, ms
    assert cells["DFF"].sequential and cells["DFF"].outputs == {"Q"}
    for c in cells.values():  # leakage = area x 36.2 uW/mm^2 (the measured adders)
        assert c.leakage_uw == pytest.approx(c.area_mm2 * 36.2, abs=1e-3)


@needs_yosys
def test_small_circuit_synthesises_onto_the_library():
    r = synth.synthesise(MAC, "top", LIB)
    lib = synth.read_liberty(LIB)
    assert r.cell_count > 10 and set(r.cells) <= set(lib)
    # stat -liberty's chip area is the sum of the mapped cells' Liberty areas
    assert r.area_cm2 * 100 == pytest.approx(sum(n * lib[t].area_mm2 for t, n in r.cells.items()), rel=1e-9)
    assert r.power_mw * 1000 == pytest.approx(sum(n * lib[t].leakage_uw for t, n in r.cells.items()), rel=1e-9)
    assert 5 < r.delay_ms < 100
    assert r.tool == "yosys" and r.tool_version.startswith(("pyosys", "yosys"))
    assert r.library_digest == synth.file_digest(LIB) and r.script_digest == synth.SCRIPT_DIGEST
    assert synth.SynthesisReport.from_dict(r.to_dict()) == r


@needs_yosys
def test_power_of_two_multiplier_is_wires():
    r = synth.synthesise(SHIFT, "top", LIB)
    assert r.cell_count == 0 and r.area_cm2 == 0 and r.delay_ms == 0


@needs_yosys
def test_bigger_circuit_costs_more():
    small, big = synth.synthesise(MAC, "top", LIB), synth.synthesise(BIGGER, "top", LIB)
    assert big.area_cm2 > 1.5 * small.area_cm2 and big.power_mw > small.power_mw
    assert big.delay_ms >= small.delay_ms


@needs_yosys
@pytest.mark.parametrize("verilog, top, says", [
    ("module top(input a, output y); assign y = a &; endmodule", "top", "syntax error"),
    (MAC, "other", "other"),
])
def test_bad_verilog_is_one_line_error(verilog, top, says):
    with pytest.raises(ProfileError) as err:
        synth.synthesise(verilog, top, LIB)
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"synthesis of '{top}' failed: ") and "ERROR" in message and says in message


def test_top_must_be_an_identifier():
    with pytest.raises(ProfileError, match="Verilog identifier"):
        synth.synthesise(MAC, "top; shell rm -rf /", LIB)


@needs_yosys
def test_timeout_is_one_line_error():
    with pytest.raises(ProfileError, match=r"^synthesis of 'top' timed out after 0\.01 s$"):
        synth.synthesise(BIGGER, "top", LIB, timeout_s=0.01)


@needs_yosys
def test_cache_hit_does_not_rerun(tmp_path, monkeypatch):
    first = synth.synthesise(MAC, "top", LIB, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1 and not list(tmp_path.glob("*.tmp"))

    def no_run(*args, **kwargs):
        raise AssertionError("synthesis ran again")

    monkeypatch.setattr(synth, "_run_yosys", no_run)
    assert synth.synthesise(MAC, "top", LIB) == first  # memory
    synth._MEMORY.clear()
    assert synth.synthesise(MAC, "top", LIB, cache_dir=tmp_path) == first  # the JSON file
    with pytest.raises(AssertionError, match="ran again"):
        synth.synthesise(MAC + "\n// changed\n", "top", LIB, cache_dir=tmp_path)


@needs_yosys
def test_digest_changes_with_the_library(tmp_path):
    other = tmp_path / "egfet.lib"
    shutil.copy(LIB, other)
    same = synth.synthesise(MAC, "top", other)
    other.write_text(other.read_text().replace("area : 0.247;", "area : 0.5;"))  # NAND2 costs more
    changed = synth.synthesise(MAC, "top", other)
    assert same.library_digest == synth.file_digest(LIB) != changed.library_digest
    assert synth.cache_key(MAC, "top", same.library_digest) != synth.cache_key(MAC, "top", changed.library_digest)
    assert changed.area_cm2 > same.area_cm2  # re-synthesised, not served from the cache


def test_longest_path_over_a_mapped_netlist():
    lib = synth.read_liberty(LIB)
    # a -> NAND2 -> INV -> y0 ; DFF.Q -> XOR2 -> DFF.D (a register-to-register path)
    netlist = {"modules": {"top": {
        "ports": {"a": {"direction": "input", "bits": [2]}, "y": {"direction": "output", "bits": [4]}},
        "cells": {
            "n": {"type": "NAND2", "connections": {"A": [2], "B": ["1"], "Y": [3]}},
            "i": {"type": "INV", "connections": {"A": [3], "Y": [4]}},
            "f": {"type": "DFF", "connections": {"CLK": [2], "D": [6], "Q": [5]}},
            "x": {"type": "XOR2", "connections": {"A": [5], "B": [4], "Y": [6]}},
        }}}}
    counts, delay = synth._netlist_figures(netlist, "top", lib)
    assert counts == {"NAND2": 1, "INV": 1, "DFF": 1, "XOR2": 1}
    assert delay == pytest.approx(2.9 + 2.9)  # max(Q 2.9, y 2.9) + XOR2 2.9 into D
    netlist["modules"]["top"]["cells"]["u"] = {"type": "$_AND_", "connections": {"A": [2], "B": [2], "Y": [7]}}
    with pytest.raises(ProfileError, match=r"not in the library: \$_AND_"):
        synth._netlist_figures(netlist, "top", lib)


def test_without_yosys_the_error_names_the_extra(monkeypatch):
    monkeypatch.setattr(synth.util, "find_spec", lambda name: None)
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    with pytest.raises(ProfileError, match=r"'synthesis' extra \(pip install -e \.\[synthesis\]\)"):
        synth.synthesise(MAC, "top", LIB)


def test_a_crashing_yosys_is_one_line_error(monkeypatch):
    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    monkeypatch.setattr(synth, "backend", lambda: ("fake", crash))
    with pytest.raises(ProfileError, match=r"^synthesis of 'top' failed: Yosys crashed \(signal 11\)$"):
        synth.synthesise(MAC, "top", LIB)
