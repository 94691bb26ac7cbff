"""The printed (EGFET bespoke MLP) profile: the cost model's behaviour and reading weights from ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from hwnas.errors import ProfileError
from hwnas.graph import LinearLayer, io_sizes, linear_layers
from hwnas.profiles.printed import (  # noqa: I001
    EgfetTech,
    PrintedProfile,
    csd_digits,
    csd_nonzero,
    estimate_circuit,
    quantize_weights,
)

YAML = Path(__file__).resolve().parents[1] / "hw_profiles" / "printed-egfet.yaml"


def _random_mlp(seed: int, topology: tuple[int, ...] = (12, 8, 6, 4)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((a, b)) for a, b in zip(topology, topology[1:])]


def _export(model: nn.Module, n_features: int, path: Path) -> Path:
    torch.onnx.export(
        model.eval(), (torch.zeros(2, n_features),), str(path), dynamo=False, opset_version=17,
        input_names=["features"], output_names=["scores"],
        dynamic_axes={"features": {0: "batch"}, "scores": {0: "batch"}},
    )
    return path


def _set_meta(path: Path, key: str, value: object) -> None:
    model = onnx.load(str(path))
    model.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(model, str(path))


# ------------------------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("n, digits", [(0, 0), (1, 1), (2, 1), (3, 2), (7, 2), (-5, 2), (-7, 2), (85, 4),
                                       (127, 2), (-128, 1), (11, 3), (23, 3)])
def test_csd_digit_count_on_known_values(n: int, digits: int) -> None:
    assert int(csd_nonzero(n)) == digits
    assert sum(d != 0 for d in csd_digits(n)) == digits


def test_csd_digits_are_canonical() -> None:
    for n in range(-600, 600):
        d = csd_digits(n)
        assert sum(v * 2**i for i, v in enumerate(d)) == n
        assert all(not (a and b) for a, b in zip(d, d[1:])), f"{n}: adjacent non-zero digits {d}"
        assert sum(v != 0 for v in d) <= bin(abs(n)).count("1")
    assert csd_digits(7) == [-1, 0, 0, 1]  # 8 - 1
    assert list(csd_nonzero(np.arange(-600, 600))) == [sum(v != 0 for v in csd_digits(n)) for n in range(-600, 600)]


def test_quantize_is_idempotent_on_the_grid() -> None:
    w = np.random.default_rng(0).standard_normal((5, 4))
    q = quantize_weights(w, 6)
    assert np.abs(q).max() == 31
    scale = np.abs(w).max() / 31
    assert np.array_equal(quantize_weights(q * scale, 6), q)


# ------------------------------------------------------------------------------------------- the model


def test_all_zero_layer_costs_no_multipliers_and_no_adders() -> None:
    w1, w2 = _random_mlp(0, (6, 5, 3))
    cost = estimate_circuit([np.zeros_like(w1), w2], 8, 4)
    first = cost.layers[0]
    assert (first.nonzero_weights, first.multiplier_adders, first.tree_adders, first.fa_bits) == (0, 0, 0, 0)
    # every hidden neuron is a constant, so the output layer has nothing varying to multiply either
    assert cost.counts()["fa_bits"] == 0
    assert cost.area_cm2 < estimate_circuit([w1, w2], 8, 4).area_cm2


def test_zeroing_weights_never_increases_area() -> None:
    rng = np.random.default_rng(1)
    qs = [rng.integers(-127, 128, size=s) for s in [(10, 7), (7, 5), (5, 4)]]
    area = estimate_circuit(qs, 8, 4, quantized=True).area_cm2
    start = area
    for _ in range(60):
        layer = int(rng.integers(len(qs)))
        nonzero = np.argwhere(qs[layer] != 0)
        if len(nonzero) == 0:
            continue
        i, j = nonzero[rng.integers(len(nonzero))]
        qs[layer][i, j] = 0
        new = estimate_circuit(qs, 8, 4, quantized=True).area_cm2
        assert new <= area + 1e-12
        area = new
    assert area < start


def test_area_is_monotone_in_the_number_of_weights_kept() -> None:
    ws = _random_mlp(2)
    areas = []
    for keep in (0.1, 0.25, 0.5, 0.75, 1.0):
        pruned = []
        for w in ws:
            threshold = np.quantile(np.abs(w), 1 - keep)
            pruned.append(np.where(np.abs(w) >= threshold, w, 0.0))  # the largest weight (the scale) stays
        cost = estimate_circuit(pruned, 8, 4)
        areas.append(cost.area_cm2)
    assert all(a < b for a, b in zip(areas, areas[1:])), areas


@pytest.mark.parametrize("seed", range(8))
def test_area_is_monotone_in_weight_bits(seed: int) -> None:
    ws = _random_mlp(seed)
    areas = [estimate_circuit(ws, bits, 4).area_cm2 for bits in range(2, 13)]
    assert all(a <= b for a, b in zip(areas, areas[1:])), areas
    assert areas[-1] > 2 * areas[0]


@pytest.mark.parametrize("act_bits", [None, 6])
def test_area_and_delay_are_monotone_in_input_bits(act_bits: int | None) -> None:
    ws = _random_mlp(3)
    costs = [estimate_circuit(ws, 8, bits, act_bits=act_bits) for bits in range(1, 10)]
    assert all(a.area_cm2 < b.area_cm2 for a, b in zip(costs, costs[1:]))
    assert all(a.delay_ms <= b.delay_ms for a, b in zip(costs, costs[1:]))


def test_area_is_monotone_in_layer_width() -> None:
    rng = np.random.default_rng(4)
    w1, w2 = rng.standard_normal((10, 16)), rng.standard_normal((16, 5))
    w1[0, 0], w2[0, 0] = 10.0, 10.0  # fix each layer's scale so that narrower layers are sub-circuits
    areas = [estimate_circuit([w1[:, :h], w2[:h]], 8, 4).area_cm2 for h in (2, 4, 8, 16)]
    assert all(a < b for a, b in zip(areas, areas[1:])), areas


def test_power_of_two_weight_needs_no_adder() -> None:
    for q, adders in [(8, 0), (-16, 0), (1, 0), (7, 1), (5, 1), (85, 3)]:
        cost = estimate_circuit([np.array([[q]])], 8, 4, quantized=True)
        assert cost.layers[0].multiplier_adders == adders, q
    shifts = estimate_circuit([np.array([[1, -2], [4, 64], [-32, 8]])], 8, 4, quantized=True).layers[0]
    assert shifts.multiplier_adders == 0 and shifts.shift_only_multipliers == 6
    assert shifts.tree_adders == 4  # two neurons of three operands


def test_power_tracks_area_and_act_bits_caps_hidden_width() -> None:
    ws = _random_mlp(5)
    full, capped = estimate_circuit(ws, 8, 4), estimate_circuit(ws, 8, 4, act_bits=6)
    assert full.power_mw == pytest.approx(full.area_cm2 * EgfetTech().power_mw_per_cm2)
    assert capped.layers[1].input_bits_max == 6 < full.layers[1].input_bits_max
    assert capped.area_cm2 < full.area_cm2


def test_dead_neurons_are_removed() -> None:
    rng = np.random.default_rng(6)
    q1, q2 = rng.integers(-127, 128, size=(6, 4)), rng.integers(-127, 128, size=(4, 3))
    q2[2] = 0  # hidden neuron 2 feeds nothing
    full = estimate_circuit([q1, q2], 8, 4, quantized=True)
    q1_cut = q1.copy()
    q1_cut[:, 2] = 0
    assert estimate_circuit([q1_cut, q2], 8, 4, quantized=True).area_cm2 == pytest.approx(full.area_cm2)
    assert full.layers[0].nonzero_weights == int(np.count_nonzero(q1[:, [0, 1, 3]]))


# ------------------------------------------------------------------------------------------- ONNX and profile


def test_profile_on_torch_export_agrees_with_estimate_circuit(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))
    path = _export(model, 7, tmp_path / "mlp.onnx")
    result = PrintedProfile("printed-egfet").profile(path)
    assert set(result.metrics) == {"area_cm2", "power_mw", "delay_ms"}
    for metric in result.metrics.values():
        assert metric.provenance == "predicted" and metric.value > 0
        assert metric.details["model"].startswith("egfet-bespoke")
        assert metric.details["validation_error"]
    details = result["area_cm2"].details
    assert details["weight_bits"] == [8, 8] and details["input_bits"] == 4
    assert (details["features"], details["classes"]) == (7, 3)
    layers = [LinearLayer("fc0", "torch", model[0].weight.detach().numpy().T, model[0].bias.detach().numpy(), "relu"),
              LinearLayer("fc1", "torch", model[2].weight.detach().numpy().T, model[2].bias.detach().numpy(), None)]
    expected = estimate_circuit(layers, 8, 4)
    assert result["area_cm2"].value == pytest.approx(expected.area_cm2)
    assert result["power_mw"].value == pytest.approx(expected.power_mw)
    assert result["delay_ms"].value == pytest.approx(expected.delay_ms)
    assert details["counts"]["multipliers"] == expected.counts()["multipliers"]


def test_metadata_fixed_point_overrides_params(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    path = _export(model, 6, tmp_path / "mlp.onnx")
    profile = PrintedProfile("printed-egfet")
    base = profile.profile(path)["area_cm2"]
    _set_meta(path, "hwnas.fixed_point", {"weight_bits": [6, 4], "input_bits": 3})
    area = profile.profile(path)["area_cm2"]
    assert area.details["weight_bits"] == [6, 4] and area.details["input_bits"] == 3
    expected = estimate_circuit(linear_layers(onnx.load(str(path))), [6, 4], 3)
    assert area.value == pytest.approx(expected.area_cm2) and area.value < base.value

    wrong = tmp_path / "wrong.onnx"
    _export(model, 6, wrong)
    _set_meta(wrong, "hwnas.fixed_point", {"weight_bits": [6, 4, 8], "input_bits": 3})
    with pytest.raises(ProfileError, match="3 weight bit-widths for 2"):
        profile.profile(wrong)


def test_profile_params_change_the_numbers(tmp_path: Path) -> None:
    torch.manual_seed(2)
    path = _export(nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2)), 5, tmp_path / "m.onnx")
    small = PrintedProfile("p", {"weight_bits": 4, "input_bits": 2}).profile(path)
    large = PrintedProfile("p", {"weight_bits": 8, "input_bits": 4}).profile(path)
    assert small["area_cm2"].value < large["area_cm2"].value
    assert PrintedProfile("p", {"weight_bits": 4, "input_bits": 2}).fixed_point().weight_bits == 4


def test_yaml_definition_builds_the_profile() -> None:
    data = yaml.safe_load(YAML.read_text())
    assert data["name"] == "printed-egfet" and data["kind"] == "printed"
    profile = PrintedProfile(data["name"], data["params"])
    fp = profile.fixed_point()
    assert (fp.weight_bits, fp.input_bits) == (8, 4)
    with pytest.raises(ProfileError, match="unknown parameter"):
        PrintedProfile("p", {"no_such_param": 1})


class _LowRankBlock(nn.Module):
    """MatMul layouts as hwnas models export them: low-rank U·V, then a block-diagonal batched MatMul."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.u = nn.Parameter(torch.randn(6, 2, generator=g))
        self.v = nn.Parameter(torch.randn(2, 4, generator=g))
        self.b1 = nn.Parameter(torch.randn(4, generator=g))
        self.blocks = nn.Parameter(torch.randn(2, 2, 3, generator=g))
        self.b2 = nn.Parameter(torch.randn(6, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu((x @ self.u) @ self.v + self.b1)
        n = h.shape[0]
        hb = torch.matmul(h.reshape(n, 2, -1).transpose(0, 1), self.blocks)
        return hb.transpose(0, 1).reshape(n, -1) + self.b2


def test_linear_layers_reads_low_rank_and_block_diagonal(tmp_path: Path) -> None:
    module = _LowRankBlock()
    layers = linear_layers(onnx.load(str(_export(module, 6, tmp_path / "lrbd.onnx"))))
    assert [layer.weight.shape for layer in layers] == [(6, 2), (2, 4), (2, 2, 3)]
    assert np.allclose(layers[0].weight, module.u.detach().numpy()) and layers[0].bias is None
    assert layers[0].activation is None and layers[1].activation == "relu"
    assert np.allclose(layers[1].bias, module.b1.detach().numpy())
    assert np.allclose(layers[2].bias, module.b2.detach().numpy())
    dense = layers[2].dense()
    assert dense.shape == (4, 6) and np.all(dense[:2, 3:] == 0) and np.allclose(dense[2:, 3:], module.blocks[1].detach())
    x = np.random.default_rng(0).standard_normal((3, 6))
    h = np.maximum((x @ layers[0].weight) @ layers[1].weight + layers[1].bias, 0)
    expected = module(torch.as_tensor(x, dtype=torch.float32)).detach().numpy()
    assert np.allclose(h @ dense + layers[2].bias, expected, atol=1e-5)
    cost = estimate_circuit(layers, 8, 4)
    assert cost.layers[0].relus == 0 and cost.layers[1].relus == 4
    assert cost.layers[2].nonzero_weights <= 12  # the zero blocks are free


def _graph(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], extra_inputs: list[onnx.ValueInfoProto] = ()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 3]), *extra_inputs],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 2])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_linear_layers_reads_transposed_left_and_constant_node_weights() -> None:
    w = np.arange(6, dtype=np.float32).reshape(3, 2) - 2.5
    w_t = numpy_helper.from_array(np.ascontiguousarray(w.T), "w_t")
    transposed = _graph([helper.make_node("Transpose", ["w_t"], ["w"], perm=[1, 0]),
                         helper.make_node("MatMul", ["features", "w"], ["scores"])], [w_t])
    const_node = _graph([helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w)),
                         helper.make_node("MatMul", ["features", "w"], ["scores"])], [])
    left = _graph([helper.make_node("Transpose", ["features"], ["xt"], perm=[1, 0]),
                   helper.make_node("MatMul", ["w_t", "xt"], ["yt"]),
                   helper.make_node("Transpose", ["yt"], ["scores"], perm=[1, 0])], [w_t])
    gemm = _graph([helper.make_node("Gemm", ["features", "w_t", "c"], ["scores"], transB=1, alpha=2.0, beta=0.5)],
                  [w_t, numpy_helper.from_array(np.array([1.0, -2.0], dtype=np.float32), "c")])
    for model in (transposed, const_node, left, gemm):
        (layer,) = linear_layers(model)
        scale = 2.0 if layer.op_type == "Gemm" else 1.0
        assert np.allclose(layer.weight, w * scale)
    assert np.allclose(linear_layers(gemm)[0].bias, [0.5, -1.0])
    assert io_sizes(gemm) == (3, 2)


def test_weight_that_is_a_graph_input_is_an_error(tmp_path: Path) -> None:
    model = _graph([helper.make_node("MatMul", ["features", "w"], ["scores"])], [],
                   [helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 2])])
    path = tmp_path / "input_weight.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ProfileError, match="constant"):
        PrintedProfile("printed-egfet").profile(path)


def test_linear_layers_recovers_weights_from_qdq_int8(tmp_path: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    fp32 = _export(model, 8, tmp_path / "fp32.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"features": np.random.default_rng(i).standard_normal((4, 8)).astype(np.float32)}
                                 for i in range(4)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    qdq = tmp_path / "qdq.onnx"
    quantize_static(str(fp32), str(qdq), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    graph = onnx.load(str(qdq))
    assert any(n.op_type == "DequantizeLinear" for n in graph.graph.node)
    assert any(t.data_type == TensorProto.INT8 for t in graph.graph.initializer)
    layers = linear_layers(graph)
    assert len(layers) == 2 and layers[0].activation == "relu"
    for layer, torch_layer in zip(layers, (model[0], model[2])):
        w = torch_layer.weight.detach().numpy().T
        per_output_step = np.abs(w).max(axis=0) / 127  # per-channel int8 grid, one scale per output
        assert np.all(np.abs(layer.weight - w) <= per_output_step * 0.51 + 1e-6)
        assert np.allclose(layer.bias, torch_layer.bias.detach().numpy(), atol=1e-3)
    assert PrintedProfile("printed-egfet").profile(qdq)["area_cm2"].value > 0
