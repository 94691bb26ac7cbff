"""The ``synthesis`` kind (``printed-egfet-synth``): candidates priced by Yosys + ABC on the EGFET library, and
``hwnas verify`` re-synthesising the analytical ``printed-egfet`` model's Pareto points."""

from __future__ import annotations

import json

import pytest

from hwnas import profiles, search
from hwnas.circuit.synth import backend
from hwnas.cli import main
from hwnas.errors import ProfileError

try:
    backend()
    HAVE_YOSYS = True
except ProfileError:
    HAVE_YOSYS = False
needs_yosys = pytest.mark.skipif(not HAVE_YOSYS, reason="the synthesis extra (pyosys) is not installed")

TINY = "model: mlp\nparams:\n  width: [3, 4]\nfixed: {depth: 1, weight_bits: 4}\n"


@needs_yosys
def test_a_search_priced_by_synthesis(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    r = search(str(space), "seeds", ["printed-egfet-synth"], trials=2, epochs=10, out=tmp_path / "s", progress=False,
               constraints=["printed-egfet-synth.area_cm2<=1000"])
    assert r.pareto and r.screened == {"printed-egfet-synth.area_cm2<=1000": 0}
    for row in r.pareto:
        area = row["metrics"]["printed-egfet-synth"]["area_cm2"]
        assert area["provenance"] == "synthesised" and 0 < area["value"] < 30  # a trained 7-input classifier
        d = area["details"]
        assert d["tool"] == "yosys" and len(d["library_digest"]) == 64 and sum(d["cells"].values()) > 0
        assert d["topology"][0] == 7 and row["circuit"]["bit_exact"]
    assert list((r.out / "synthesis_cache").glob("*.json"))  # cached by circuit digest in the output folder


@needs_yosys
def test_verify_resynthesises_the_analytical_pareto_points(tmp_path, capsys):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    out = tmp_path / "a"
    search(str(space), "seeds", ["printed-egfet"], trials=2, epochs=3, out=out, progress=False)
    assert main(["verify", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "printed-egfet vs printed-egfet@measured" in text and "synthesised" in text
    report = json.loads((out / "verify.json").read_text())["profiles"]["printed-egfet"]
    assert report["status"] == "verified" and report["truth"] == "synthesised"
    metrics = {p["metric"] for p in report["points"]}
    assert metrics == {"area_cm2", "power_mw", "delay_ms"}
    assert all(p["recorded_provenance"] == "predicted" and p["measured"] > 0 for p in report["points"])


@needs_yosys
def test_a_float_model_is_refused_in_one_line(tmp_path):
    r = search("mlp_tabular", "seeds", ["cpu-ort"], trials=1, epochs=1, out=tmp_path / "f", progress=False)
    with pytest.raises(ProfileError, match="not a fixed-point MLP in exact integer form"):
        profiles.get("printed-egfet-synth").profile(r.out / r.pareto[0]["file"])


def test_a_missing_library_is_named(tmp_path):
    p = profiles.get("printed-egfet-synth", {"library": str(tmp_path / "nope.lib")})
    with pytest.raises(ProfileError, match="library .*nope.lib.* not found"):
        p.library()
    assert "not found" in (p.available() or "")
