"""The per-operator cost reader (op_costs) and the analytical roofline profile kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import hwnas.profiles.analytical as an
from hwnas.errors import ProfileError
from hwnas.graph import graph_costs
from hwnas.profiles import get as get_profile

BUILTIN = ["cpu-host-model", "gpu-h100", "gpu-a100", "gpu-t4", "gpu-rtx4090", "mobile-cortex-a76", "mobile-cortex-a72"]


# ------------------------------------------------------------------------------------------------ graphs


def _model(nodes: list, inputs: list, outputs: list, inits: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _mlp(widths: list[int], features: int = 8, dtype: int = TensorProto.FLOAT, weights: list[np.ndarray] | None = None,
         seed: int = 0) -> onnx.ModelProto:
    """features -> MatMul+Add+Relu per width -> output, weights as initializers (dynamic batch)."""
    rng = np.random.default_rng(seed)
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    nodes, inits = [], []
    prev, n_in = "x", features
    for i, w in enumerate(widths):
        weight = weights[i] if weights else rng.standard_normal((n_in, w))
        inits += [numpy_helper.from_array(weight.astype(np_dtype), f"w{i}"),
                  numpy_helper.from_array(np.zeros(w, np_dtype), f"b{i}")]
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"], name=f"mm{i}"),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"add{i}"),
                  helper.make_node("Relu", [f"a{i}"], [f"r{i}"], name=f"relu{i}")]
        prev, n_in = f"r{i}", w
    nodes[-1] = helper.make_node("Relu", [f"a{len(widths) - 1}"], ["y"], name=f"relu{len(widths) - 1}")
    return _model(nodes, [helper.make_tensor_value_info("x", dtype, ["batch", features])],
                  [helper.make_tensor_value_info("y", dtype, ["batch", n_in])], inits)


def _profile(**params) -> an.AnalyticalProfile:
    base = {"peak_gflops": {"fp32": 100.0, "fp16": 400.0, "int8": 800.0}, "memory_gbps": 100.0,
            "op_overhead_us": 1.0, "inference_overhead_us": 2.0, "validation_error": "synthetic"}
    return an.AnalyticalProfile("t", {**base, **params})


def _save(model: onnx.ModelProto, tmp_path: Path, name: str = "m") -> Path:
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _latency(profile: an.AnalyticalProfile, model: onnx.ModelProto, tmp_path: Path, name: str = "m") -> float:
    return profile.profile(_save(model, tmp_path, name))["latency_ms"].value


# ------------------------------------------------------------------------------------------------ op_costs


def test_op_costs_exact_on_hand_built_graph() -> None:
    costs = graph_costs(_mlp([4, 2], features=8), batch_size=3)
    assert [c.op_type for c in costs] == ["MatMul", "Add", "Relu"] * 2
    mm0, add0, mm1 = costs[0], costs[1], costs[3]
    assert (mm0.macs, mm0.flops) == (3 * 8 * 4, 2 * 3 * 8 * 4)
    assert mm0.dims == {"batch": 1, "m": 3, "k": 8, "n": 4}
    assert mm0.bytes_read == 4 * (3 * 8 + 8 * 4) and mm0.bytes_written == 4 * 3 * 4
    assert mm0.weight_bytes == 4 * 8 * 4 and mm0.dtype == "fp32"
    assert (mm1.macs, mm1.weight_bytes) == (3 * 4 * 2, 4 * 4 * 2)
    assert add0.macs == 0 and add0.flops == 12 and add0.dims == {"elements": 12, "run": 4}  # bias: rows of 4
    assert add0.bytes_read == 4 * (12 + 4) and add0.weight_bytes == 16


def test_gemm_transposed_weight_and_bias() -> None:
    w = numpy_helper.from_array(np.ones((5, 8), np.float32), "w")  # [n, k] with transB
    b = numpy_helper.from_array(np.ones(5, np.float32), "b")
    model = _model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])], [w, b])
    (c,) = graph_costs(model, batch_size=2)
    assert c.dims == {"batch": 1, "m": 2, "k": 8, "n": 5} and c.macs == 80
    assert c.flops == 160 + 10 and c.weight_bytes == 4 * (40 + 5)


def test_weights_as_graph_inputs_use_declared_shapes() -> None:
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16]),
                    helper.make_tensor_value_info("w", TensorProto.FLOAT, [16, 32])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])], [])
    (c,) = graph_costs(model, batch_size=4)
    assert c.macs == 4 * 16 * 32 and c.weight_bytes == 4 * 16 * 32
    assert "graph input" in c.notes


def test_symbolic_non_batch_dimension_is_an_error() -> None:
    model = _model([helper.make_node("Relu", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "features"])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "features"])], [])
    with pytest.raises(ProfileError, match="symbolic dimension 'features'"):
        graph_costs(model)


def test_unknown_op_is_generic_elementwise() -> None:
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    (c,) = graph_costs(model, batch_size=2)
    assert c.flops == 12 and c.bytes_written == 48 and "unknown op type" in c.notes


def _qdq_model() -> onnx.ModelProto:
    wq = np.random.default_rng(0).integers(-127, 128, (16, 8)).astype(np.int8)
    inits = [numpy_helper.from_array(wq, "wq"), numpy_helper.from_array(np.full(8, 0.01, np.float32), "ws"),
             numpy_helper.from_array(np.zeros(8, np.int8), "wz"), numpy_helper.from_array(np.float32(0.1), "xs"),
             numpy_helper.from_array(np.int8(0), "xz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=1),
             helper.make_node("MatMul", ["xd", "wd"], ["y"])]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])], inits)


def test_qdq_matmul_is_int8_compute_reading_int8() -> None:
    costs = graph_costs(_qdq_model(), batch_size=2)
    mm = next(c for c in costs if c.op_type == "MatMul")
    assert mm.dtype == "int8" and mm.weight_bytes == 16 * 8 and mm.bytes_read == 2 * 16 + 16 * 8
    dq_w = next(c for c in costs if c.op_type == "DequantizeLinear" and c.constant)
    assert dq_w.dims["run"] == 1  # per-channel along the last axis: every neighbour has its own scale
    as_float = next(c for c in graph_costs(_qdq_model(), 2, qdq_int8=False) if c.op_type == "MatMul")
    assert as_float.dtype == "fp32" and as_float.weight_bytes == 4 * 16 * 8


def test_fp16_tensors_are_fp16() -> None:
    mm = graph_costs(_mlp([8], dtype=TensorProto.FLOAT16))[0]
    assert mm.dtype == "fp16" and mm.weight_bytes == 2 * 8 * 8


def _two_four(k: int, n: int, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal((k, n))
    for col in range(n):  # zero the two smallest of every 4 along the reduction axis (k)
        for g in range(0, k, 4):
            block = np.abs(w[g:g + 4, col])
            w[g + np.argsort(block)[:2], col] = 0.0
    return w


def test_2_4_pattern_detected_along_reduction_axis() -> None:
    w = _two_four(64, 32)
    c = graph_costs(_mlp([32], features=64, weights=[w]))[0]
    assert c.sparse_2_4 and c.weight_sparsity == pytest.approx(0.5)
    c_t = graph_costs(_mlp([64], features=32, weights=[w.T]))[0]  # same zeros, pattern along n: not 2:4
    assert not c_t.sparse_2_4 and c_t.weight_sparsity == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------- the model


def test_2_4_speedup_only_where_the_hardware_has_it(tmp_path: Path) -> None:
    dense = np.random.default_rng(1).standard_normal((256, 256))
    sparse = _two_four(256, 256)
    big = {"batch_size": 512}
    for dtype, speeds_up in ((TensorProto.FLOAT16, True), (TensorProto.FLOAT, False)):
        d, s = _mlp([256], 256, dtype, [dense]), _mlp([256], 256, dtype, [sparse])
        ampere = _profile(sparse_2_4_speedup=2.0, **big)
        turing = _profile(sparse_2_4_speedup=1.0, **big)
        t_dense, t_sparse = _latency(ampere, d, tmp_path, "d"), _latency(ampere, s, tmp_path, "s")
        assert (t_sparse < 0.8 * t_dense) == speeds_up
        assert _latency(turing, s, tmp_path, "s") == pytest.approx(_latency(turing, d, tmp_path, "d"))


def test_unstructured_zeros_give_nothing_by_default(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    w = rng.standard_normal((256, 256)) * (rng.random((256, 256)) > 0.7)
    dense, sparse = _mlp([256], 256, weights=[rng.standard_normal((256, 256))]), _mlp([256], 256, weights=[w])
    plain = _profile(batch_size=256)
    assert _latency(plain, sparse, tmp_path, "s") == pytest.approx(_latency(plain, dense, tmp_path, "d"))
    capable = _profile(batch_size=256, unstructured_sparsity_speedup=3.0)
    assert _latency(capable, sparse, tmp_path, "s") < 0.6 * _latency(capable, dense, tmp_path, "d")


def test_latency_monotone_in_batch_and_width(tmp_path: Path) -> None:
    prof = get_profile("cpu-host-model")
    model = _mlp([64, 64], 16)
    by_batch = [_latency(an.AnalyticalProfile("b", {**prof.params, "batch_size": b}), model, tmp_path)
                for b in (1, 4, 16, 64, 256, 1024)]
    assert all(a < b for a, b in zip(by_batch, by_batch[1:]))
    prof16 = an.AnalyticalProfile("w", {**prof.params, "batch_size": 16})
    by_width = [_latency(prof16, _mlp([w, w], 16), tmp_path, f"w{w}") for w in (8, 32, 128, 512, 1024)]
    assert all(a < b for a, b in zip(by_width, by_width[1:]))


def test_missing_dtype_falls_back_to_a_wider_peak(tmp_path: Path) -> None:
    assert an.resolve_dtype("int4", {"fp32": 1, "int8": 2}) == "int8"
    assert an.resolve_dtype("int8", {"fp32": 1, "fp16": 2}) == "fp16"
    assert an.resolve_dtype("bf16", {"fp32": 1, "fp16": 2}) == "fp32"
    model = _qdq_model()
    only_fp32 = _profile(peak_gflops={"fp32": 10.0}, batch_size=4096)
    with_fp16 = _profile(peak_gflops={"fp32": 10.0, "fp16": 40.0}, batch_size=4096)
    with_int8 = _profile(peak_gflops={"fp32": 10.0, "fp16": 40.0, "int8": 10.0}, batch_size=4096)
    t32, t16, t8 = (_latency(p, model, tmp_path) for p in (only_fp32, with_fp16, with_int8))
    assert t16 < t32 and t8 == pytest.approx(t32)


def test_epilogue_fusion_folds_bias_and_activation(tmp_path: Path) -> None:
    model = _mlp([64, 64], 16)
    fused = _profile(fusion="epilogue").profile(_save(model, tmp_path))["latency_ms"]
    plain = _profile(fusion="none").profile(_save(model, tmp_path))["latency_ms"]
    assert fused.details["ops_fused"] == 4 and plain.details["ops_fused"] == 0
    assert fused.value < plain.value - 4 * 1e-3  # four 1-us op overheads saved


def test_batched_weights_repacked_only_when_the_runtime_does(tmp_path: Path) -> None:
    w = numpy_helper.from_array(np.ones((4, 64, 64), np.float32), "w")  # a block-diagonal layer: [blocks, in, out]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]), helper.make_node("MatMul", ["xt", "w"], ["y"])]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 64])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, "batch", 64])], [w])
    path = _save(model, tmp_path)
    for batch, differs in ((1, False), (16, True)):
        t_plain = _profile(batch_size=batch).profile(path)["latency_ms"].value
        t_repack = _profile(batch_size=batch, repack_batched_weights=True).profile(path)["latency_ms"].value
        assert (t_repack > t_plain) == differs


def test_calibrate_recovers_known_constants() -> None:
    truth = {**an.AnalyticalProfile.defaults, "peak_gflops": {"fp32": 150.0}, "memory_gbps": 40.0,
             "efficiency": {**an.AnalyticalProfile.defaults["efficiency"], "elementwise": 0.2},
             "op_overhead_us": {"default": 0.8}, "inference_overhead_us": 3.0}
    models = [_mlp(ws, f, seed=i) for i, (ws, f) in enumerate([([8], 4), ([64, 32], 16), ([256, 256], 64),
                                                                  ([512], 128), ([32, 32, 32], 8)])]
    pairs = [(m, b) for m in models for b in (1, 32, 512)]
    measured = an.predict_ms(pairs, truth)
    start = {**truth, "peak_gflops": {"fp32": 60.0}, "memory_gbps": 100.0, "op_overhead_us": {"default": 2.0},
             "inference_overhead_us": 8.0}
    free = ["peak_gflops.fp32", "memory_gbps", "op_overhead_us.default", "inference_overhead_us"]
    fit = an.calibrate([(m, b, t) for (m, b), t in zip(pairs, measured)], start, free)
    assert fit["peak_gflops"]["fp32"] == pytest.approx(150.0, rel=0.02)
    assert fit["memory_gbps"] == pytest.approx(40.0, rel=0.02)
    assert fit["op_overhead_us"]["default"] == pytest.approx(0.8, rel=0.02)
    assert fit["inference_overhead_us"] == pytest.approx(3.0, rel=0.02)


def test_unknown_and_malformed_params_raise() -> None:
    with pytest.raises(ProfileError, match=r"unknown parameter\(s\) \['peak_tflops'\]"):
        an.AnalyticalProfile("p", {"peak_tflops": 3})
    with pytest.raises(ProfileError, match="peak_gflops: unknown key"):
        an.AnalyticalProfile("p", {"peak_gflops": {"fp32": 1, "fp8": 2}})
    with pytest.raises(ProfileError, match="needs an 'fp32'"):
        an.AnalyticalProfile("p", {"peak_gflops": {"fp16": 1}})
    with pytest.raises(ProfileError, match="cache_bytes and cache_gbps"):
        an.AnalyticalProfile("p", {"cache_bytes": [1024], "cache_gbps": []})
    with pytest.raises(ProfileError, match="fusion"):
        an.AnalyticalProfile("p", {"fusion": "magic"})


# -------------------------------------------------------------------------------------- built-in profiles


@pytest.fixture(scope="module")
def hwnas_mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hwnas.lowering.export import export_onnx
    from hwnas.models import build_model
    from hwnas.models.preprocess import InputStats
    from hwnas.space import ArchConfig

    x = np.random.default_rng(0).standard_normal((64, 12)).astype(np.float32)
    config = ArchConfig("mlp", {"depth": 2, "width": [64, 32], "ffn": ["dense", "lowrank"], "rank": [None, 8],
                                "activation": "gelu"})
    model = build_model(config, n_features=12, n_classes=3, stats=InputStats.of(x))
    return export_onnx(model, 12, tmp_path_factory.mktemp("mlp") / "mlp.onnx")


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_profiles_predict(name: str, hwnas_mlp: Path) -> None:
    prof = get_profile(name)
    assert prof.kind == "analytical" and prof.source.strip()
    m = prof.profile(hwnas_mlp)["latency_ms"]
    assert m.provenance == "predicted" and 0 < m.value < 10
    d = m.details
    assert d["model"] and str(d["validation_error"]).strip() and d["batch_size"] == 1
    parts = d["breakdown_ms"]
    total = parts["compute_bound"] + parts["memory_bound"] + parts["op_overhead"] + parts["inference_overhead"]
    assert total == pytest.approx(m.value, rel=1e-6)
    assert sum(parts["per_op_type"].values()) == pytest.approx(m.value - parts["inference_overhead"], rel=1e-3)


def test_gpu_profiles_know_their_tensor_cores() -> None:
    for name, sparse in (("gpu-h100", 2.0), ("gpu-a100", 2.0), ("gpu-rtx4090", 2.0), ("gpu-t4", 1.0)):
        p = get_profile(name).params
        assert p["sparse_2_4_speedup"] == sparse and not p["unstructured_sparsity_speedup"]
        assert p["peak_gflops"]["fp16"] >= 2 * p["peak_gflops"]["fp32"]  # tensor cores
        assert p["measure_with"]["params"]["provider"] == "CUDAExecutionProvider"


def test_a_model_calibrated_on_another_cpu_says_so(tmp_path: Path) -> None:
    from hwnas.profiles.onnxruntime import cpu_name

    path = tmp_path / "m.onnx"
    onnx.save(_mlp([16], 8), str(path))
    elsewhere = _profile(calibrated_on="Some CPU that is not this one").profile(path)["latency_ms"].details
    assert "Some CPU that is not this one" in elsewhere["host_mismatch"]
    here = _profile(calibrated_on=cpu_name()).profile(path)["latency_ms"].details
    assert "host_mismatch" not in here
