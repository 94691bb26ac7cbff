"""Model builders and lowering: each hidden-layer structure exports to an ONNX file that reproduces torch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from hwnas.lowering.export import FeatureExporter, export_onnx
from hwnas.lowering.metadata import read_metadata
from hwnas.lowering.int8 import quantize_int8
from hwnas.lowering.runtime import predict_scores
from hwnas.models import build_model
from hwnas.models.preprocess import InputStats
from hwnas.precision import FixedPoint
from hwnas.space import ArchConfig

RNG = np.random.default_rng(0)
X = (RNG.standard_normal((256, 12)) * 5 + 3).astype(np.float32)
STATS = InputStats.of(X)


def build(values, fixed_point=None):
    torch.manual_seed(0)
    return build_model(ArchConfig("mlp", values), n_features=12, n_classes=3, stats=STATS, fixed_point=fixed_point)


def ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def torch_scores(model):
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(X)).numpy()


@pytest.mark.parametrize(
    "values",
    [
        {"depth": 2, "width": [16, 8], "ffn": "dense", "activation": "relu"},
        {"depth": 2, "width": [16, 8], "ffn": ["dense", "lowrank"], "rank": [None, 3], "activation": "gelu"},
        {"depth": 3, "width": [16, 16, 8], "ffn": ["dense", "blockdiag", "blockdiag"], "blocks": [None, 4, 2],
         "activation": "silu"},
    ],
)
def test_fp32_export_reproduces_torch(tmp_path, values):
    model = build(values)
    path = export_onnx(model, 12, tmp_path / "m.onnx", {"hwnas.arch": values})
    onnx.checker.check_model(str(path))
    assert np.abs(predict_scores(path, X) - torch_scores(model)).max() <= 1e-4
    assert read_metadata(path)["hwnas.arch"] == values


def test_lowrank_is_two_matmuls_and_blockdiag_is_batched(tmp_path):
    low = export_onnx(build({"depth": 1, "width": 8, "ffn": "lowrank", "rank": 2}), 12, tmp_path / "l.onnx")
    assert ops(low).count("MatMul") == 3  # U, V, head
    block = build({"depth": 2, "width": [16, 16], "ffn": ["dense", "blockdiag"], "blocks": [None, 4]})
    path = export_onnx(block, 12, tmp_path / "b.onnx")
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    assert any(w.shape == (4, 4, 4) for w in weights.values())  # 4 blocks of 4x4, no dense 16x16 of zeros
    assert sum(w.size for w in weights.values() if w.ndim >= 2) == 12 * 16 + 4 * 4 * 4 + 16 * 3


def test_fixed_point_weights_and_inputs_are_on_their_grid(tmp_path):
    model = build({"depth": 1, "width": 6}, fixed_point=FixedPoint(weight_bits=4, input_bits=3))
    model.bake()
    path = export_onnx(model, 12, tmp_path / "f.onnx")
    assert model.fixed_point() == {"weight_bits": [4, 4], "input_bits": 3, "integer": True}
    assert "Round" in ops(path) and "ReduceMax" not in ops(path)  # no fake-quant arithmetic left in the graph
    for layer in model.quant_layers():  # the exact integer form: signed 4-bit integers, integer biases
        w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
        assert w.dtype == np.float64 and np.array_equal(w, np.round(w)) and np.abs(w).max() == 7
        assert np.array_equal(b, np.round(b))
    first = model.pre(torch.as_tensor(X)).numpy()  # 3-bit codes
    assert np.array_equal(first, np.round(first)) and first.min() >= 0 and first.max() <= 7
    assert np.array_equal(predict_scores(path, X), torch_scores(model))  # float64 integers: exact


def test_weight_bits_from_config_override_profile():
    model = build({"depth": 2, "width": [4, 4], "weight_bits": [3, 5]}, fixed_point=FixedPoint(8, 4))
    assert model.fixed_point()["weight_bits"] == [3, 5, 8]


def test_int8_is_a_real_quantized_graph(tmp_path):
    model = build({"depth": 2, "width": [32, 16]})
    fp32 = export_onnx(model, 12, tmp_path / "m.onnx")
    q = quantize_int8(fp32, tmp_path / "q.onnx", FeatureExporter(12, X).calibration_feeds())
    graph = onnx.load(str(q)).graph
    int8 = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert "DequantizeLinear" in ops(q) and "QuantizeLinear" in ops(q)
    assert len(int8) >= 3  # every weight matrix stored as int8
    ref, got = torch_scores(model), predict_scores(q, X)
    assert 0 < np.abs(got - ref).max() < 0.2 * np.abs(ref).max()  # quantised: close, not identical
    assert (got.argmax(1) == ref.argmax(1)).mean() > 0.9


def test_bad_structure_is_rejected():
    with pytest.raises(ValueError, match="divisible"):
        build({"depth": 2, "width": [16, 10], "ffn": ["dense", "blockdiag"], "blocks": [None, 4]})
    with pytest.raises(ValueError, match="activation"):
        build({"depth": 1, "width": 4, "activation": "tanhh"})
