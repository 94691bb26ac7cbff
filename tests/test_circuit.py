"""Bespoke circuits: the exact integer form of fixed-point MLPs, their Verilog, and the simulation that proves
the Verilog computes the ONNX file's classes on every test sample (Icarus Verilog, Debian's ``iverilog``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas import search
from hwnas.circuit.network import IntegerLayer, IntegerNetwork, integer_network
from hwnas.circuit.simulate import simulate, simulator
from hwnas.circuit.verilog import write_circuit
from hwnas.cli import main
from hwnas.errors import CircuitError

needs_simulator = pytest.mark.skipif(simulator() is None, reason="Icarus Verilog (iverilog) is not installed")


def _random_network(rng: np.random.Generator, sizes: list[int], input_bits: int, bits: int) -> IntegerNetwork:
    qmax = 2 ** (bits - 1) - 1
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        w = rng.integers(-qmax, qmax + 1, size=(n_in, n_out))
        w[rng.random(w.shape) < 0.3] = 0
        w[0, 0] = -qmax - 1 if bits > 2 else w[0, 0]  # the most negative constant, whose magnitude overflows
        span = qmax * 2**input_bits * (4 if i else 1)
        bias = rng.integers(-span, span + 1, size=n_out)
        layers.append(IntegerLayer(w, bias, relu=i < len(sizes) - 2))
    return IntegerNetwork(input_bits, (bits,) * (len(sizes) - 1), tuple(layers))


@needs_simulator
@pytest.mark.parametrize("seed,sizes,input_bits,bits", [
    (0, [5, 4, 3], 4, 8), (1, [3, 6, 2], 1, 2), (2, [7, 3, 2, 5], 3, 5), (3, [4, 1, 4], 6, 12), (4, [6, 2], 4, 8),
])
def test_random_integer_networks_simulate_like_numpy(tmp_path, seed, sizes, input_bits, bits):
    rng = np.random.default_rng(seed)
    for _ in range(100):  # the first random network whose classes vary (tiny ones may be constant)
        net = _random_network(rng, sizes, input_bits, bits)
        codes = rng.integers(0, 2**input_bits, size=(300, sizes[0]))
        codes[:20] = 0  # all-zero inputs: the ReLUs and the bias alone decide
        expected = net.predict(codes)
        if len(set(expected)) > 1:
            break
    assert len(set(expected)) > 1
    files = write_circuit(net, codes, expected, tmp_path / "c.v")
    sim = simulate(files[0], files[1])
    assert sim.bit_exact and np.array_equal(sim.classes, expected)


@needs_simulator
def test_ties_go_to_the_lowest_class_like_onnx_argmax(tmp_path):
    w = np.array([[2, 2, 1]])  # classes 0 and 1 always tie; all three tie at x = 3
    net = IntegerNetwork(3, (4,), (IntegerLayer(w, np.array([0, 0, 3]), relu=False),))
    codes = np.arange(8).reshape(-1, 1)
    expected = net.predict(codes)
    assert expected.tolist() == [2, 2, 2, 0, 0, 0, 0, 0]
    files = write_circuit(net, codes, expected, tmp_path / "t.v")
    assert simulate(files[0], files[1]).bit_exact


@needs_simulator
def test_a_wrong_circuit_fails_its_testbench(tmp_path):
    rng = np.random.default_rng(5)
    for _ in range(100):
        net = _random_network(rng, [6, 5, 4], 4, 6)
        codes = rng.integers(0, 16, size=(200, 6))
        expected = net.predict(codes)
        if (expected == 0).any() and (expected != 0).any():
            break
    assert (expected == 0).any() and (expected != 0).any()
    files = write_circuit(net, codes, expected, tmp_path / "w.v")
    text = files[0].read_text()
    files[0].write_text(text.replace("? 2'd0 :", "? 2'd1 :"))  # the comparator tree reports class 0 as 1
    sim = simulate(files[0], files[1])
    assert not sim.bit_exact and sim.mismatches > 0


@needs_simulator
@pytest.mark.parametrize("space,dataset", [("mlp_printed", "seeds"), ("mlp_tabular", "breast_cancer"),
                                           ("blockdiag", "seeds")])
def test_every_printed_space_gives_bit_exact_circuits(tmp_path, space, dataset):
    if space == "blockdiag":
        space = tmp_path / "blockdiag.yaml"
        space.write_text("model: mlp\nparams:\n  width: [4, 8]\n"
                         "fixed: {depth: 2, ffn: [lowrank, blockdiag], blocks: 2, rank: 2, input_bits: 3, "
                         "weight_bits: [5, 3]}\n")
    r = search(str(space), dataset, ["printed-egfet"], trials=4, epochs=6, out=tmp_path / "s", progress=False)
    assert r.pareto
    for row in r.pareto:
        circuit = row["circuit"]
        assert circuit["simulated"] and circuit["bit_exact"] and circuit["mismatches"] == 0, circuit
        assert circuit["samples"] == r.study.user_attrs["hwnas.dataset"]["n_test"]
        assert circuit["circuit_accuracy"] == pytest.approx(row["test_accuracy"])
        assert (r.out / "models" / circuit["files"][0]).is_file()
    saved = json.loads((r.out / "pareto.json").read_text())["pareto"]
    assert all(row["circuit"]["bit_exact"] for row in saved)


@needs_simulator
def test_export_verilog_from_the_cli(tmp_path, capsys):
    out = tmp_path / "s"
    search("mlp_printed", "seeds", ["printed-egfet"], trials=2, epochs=4, out=out, progress=False)
    for f in (out / "models").glob("*.v*"):
        f.unlink()
    assert main(["export", "--out", str(out), "--format", "verilog"]) == 0
    text = capsys.readouterr().out
    assert "bit-exact on 42 test samples" in text
    assert list((out / "models").glob("trial_*_tb.v")) and list((out / "models").glob("trial_*.vectors"))


def test_float_models_have_no_circuit(tmp_path, capsys):
    out = tmp_path / "f"
    r = search("mlp_tabular", "seeds", ["cpu-ort"], trials=1, epochs=2, out=out, progress=False)
    with pytest.raises(CircuitError, match="not a fixed-point MLP in exact integer form"):
        integer_network(r.out / r.pareto[0]["file"])
    assert "circuit" not in r.pareto[0]
    assert main(["export", "--out", str(out), "--format", "verilog"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no exact fixed-point circuit" in err[0]


def test_gelu_fixed_point_model_is_refused_in_one_line(tmp_path):
    space = tmp_path / "gelu.yaml"
    space.write_text("model: mlp\nparams:\n  width: [4]\nfixed: {depth: 1, activation: gelu}\n")
    r = search(str(space), "seeds", ["printed-egfet"], trials=1, epochs=2, out=tmp_path / "g", progress=False)
    assert "circuit" not in r.pareto[0]  # no exact form: the file stays float, the search still finishes
    with pytest.raises(CircuitError, match="not a fixed-point MLP in exact integer form"):
        integer_network(r.out / r.pareto[0]["file"])


def test_a_model_whose_accumulators_could_pass_2_to_the_52_stays_float(tmp_path):
    from hwnas.models import build_model
    from hwnas.models.preprocess import InputStats
    from hwnas.precision import FixedPoint
    from hwnas.space import ArchConfig

    x = np.random.default_rng(0).standard_normal((32, 7)).astype(np.float32)
    deep = {"depth": 3, "width": [5, 17, 8], "ffn": ["lowrank"] * 3, "rank": [4, 4, 4]}  # 7 chained 8-bit MatMuls
    shallow = {"depth": 1, "width": [5]}
    for values, integer in ((deep, False), (shallow, True)):
        model = build_model(ArchConfig("mlp", values), n_features=7, n_classes=3, stats=InputStats.of(x),
                            fixed_point=FixedPoint(8, 4))
        model.bake()
        assert model.fixed_point()["integer"] is integer
