"""The one ONNX graph reader (hwnas.graph) and the profiles' refusal of operators they cannot price."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwnas.errors import ProfileError
from hwnas.graph import Graph, graph_costs, linear_layers
from hwnas.profiles import get as get_profile
from hwnas.profiles.predictor import LatencyModel, PredictorProfile, feature_names
from hwnas.profiles.printed import MLP_OPS

ANALYTICAL = ("cpu-host-model", "gpu-a100", "mobile-cortex-a76")


def hwnas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwnas", *args], capture_output=True, text=True, timeout=300)


def _model(nodes: list, inputs: list, outputs: list, inits: list, opset: int = 17) -> onnx.ModelProto:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10 if opset >= 21 else 8
    onnx.checker.check_model(model)
    return model


def _mlp(between: list[onnx.NodeProto] = ()) -> onnx.ModelProto:
    """16 → Gemm 32 → (``between``: h → hn, may use the initializer ``gamma``) → Relu → MatMul + Add 4, batch 'N'."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w1", (16, 32)), ("b1", (32,)), ("w2", (32, 4)), ("b2", (4,)), ("gamma", (32,)))]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), *between,
             helper.make_node("Relu", ["hn" if between else "h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["m"]), helper.make_node("Add", ["m", "b2"], ["y"])]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], inits)


def _conv_graph(op: str) -> onnx.ModelProto:
    """One ``op`` (Conv, ConvTranspose, ConvInteger, QLinearConv) of 3 → 16 channels, 3×3, on [N, 3, 16, 16]."""
    rng = np.random.default_rng(1)
    quantized = op in ("ConvInteger", "QLinearConv")
    w = rng.integers(-127, 128, (16, 3, 3, 3)).astype(np.int8) if quantized else \
        rng.standard_normal((3, 16, 3, 3) if op == "ConvTranspose" else (16, 3, 3, 3)).astype(np.float32)
    scalar = {"xs": np.float32(0.1), "xz": np.uint8(128), "ws": np.float32(0.01), "wz": np.int8(0),
              "ys": np.float32(0.2), "yz": np.uint8(128)}
    inits = [numpy_helper.from_array(w, "w")]
    if op == "QLinearConv":
        inputs = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    elif op == "ConvInteger":
        inputs = ["x", "w", "xz", "wz"]
    else:
        inputs = ["x", "w"]
    inits += [numpy_helper.from_array(v, k) for k, v in scalar.items() if k in inputs]
    out_type = {"QLinearConv": TensorProto.UINT8, "ConvInteger": TensorProto.INT32}.get(op, TensorProto.FLOAT)
    in_type = TensorProto.UINT8 if quantized else TensorProto.FLOAT
    return _model([helper.make_node(op, inputs, ["y"], pads=[1, 1, 1, 1])],
                  [helper.make_tensor_value_info("x", in_type, ["N", 3, 16, 16])],
                  [helper.make_tensor_value_info("y", out_type, ["N", 16, 16, 16])], inits)


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> PredictorProfile:
    """A predictor profile with a hand-set model (every feature costs a little): enough to see what it refuses."""
    path = tmp_path_factory.mktemp("pred") / "model.json"
    LatencyModel("graph", 1e-3, dict.fromkeys(feature_names(), 1e-9)).save(path)
    return PredictorProfile("pred", {"model_file": str(path)})


# ------------------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize("name", ["cpu-host-model", "gpu-a100", "printed-egfet"])
def test_external_data_model_is_priced_through_the_cli_like_the_inline_one(name: str, tmp_path: Path) -> None:
    model = _mlp()
    inline = _save(model, tmp_path / "inline.onnx")
    (tmp_path / "ext").mkdir()
    external = tmp_path / "ext" / "model.onnx"  # what torch.onnx.export's default (dynamo) exporter writes
    onnx.save(model, str(external), save_as_external_data=True, all_tensors_to_one_file=True,
              location="model.onnx.data", size_threshold=0)
    assert (tmp_path / "ext" / "model.onnx.data").is_file() and external.stat().st_size < inline.stat().st_size / 2
    proc = hwnas("profiles", "predict", name, str(external), "--json")
    assert proc.returncode == 0, proc.stderr
    got = {k: m["value"] for k, m in json.loads(proc.stdout)["metrics"].items()}
    want = {k: m.value for k, m in get_profile(name).profile(inline).metrics.items()}
    assert got == pytest.approx(want, rel=1e-12)


def test_external_data_with_the_predictor_and_missing_external_data(predictor: PredictorProfile,
                                                                    tmp_path: Path) -> None:
    model = _mlp()
    inline = _save(model, tmp_path / "inline.onnx")
    external = tmp_path / "model.onnx"
    onnx.save(model, str(external), save_as_external_data=True, location="model.onnx.data", size_threshold=0)
    assert predictor.profile(external)["latency_ms"].value == predictor.profile(inline)["latency_ms"].value
    (tmp_path / "model.onnx.data").unlink()
    with pytest.raises(ProfileError, match=r"model\.onnx: its weights are stored in external data file\(s\) "
                                           r"model\.onnx\.data, missing"):
        get_profile("gpu-a100").profile(external)


@pytest.mark.parametrize("name", ["cpu-host-model", "gpu-a100", "printed-egfet", "predictor"])
def test_empty_and_nodeless_files_are_refused(name: str, predictor: PredictorProfile, tmp_path: Path) -> None:
    profile = predictor if name == "predictor" else get_profile(name)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    nodeless = _save(helper.make_model(helper.make_graph([], "g", [x], [x])), tmp_path / "nodeless.onnx")
    with pytest.raises(ProfileError, match=r"empty\.onnx: empty file \(0 bytes\), not an ONNX model"):
        profile.profile(empty)
    with pytest.raises(ProfileError, match=r"nodeless\.onnx: the ONNX graph has no nodes"):
        profile.profile(nodeless)


# ---------------------------------------------------------------------- bad files, bounded work, one line


def _cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, list[str]]:
    """``hwnas ARGS`` in this process: the exit code and the lines of stderr."""
    from hwnas.cli import main

    capsys.readouterr()
    rc = main(list(args))
    return rc, capsys.readouterr().err.strip().splitlines()


def _bad(kind: str, path: Path) -> Path:
    """A file at ``path`` that no profile may price (see the cases of the test below)."""
    import os
    import random

    import fuzz_onnx as f

    rng = random.Random(0)
    if kind == "fifo":
        os.mkfifo(path)
        return path
    if kind == "folder":
        path.mkdir()
        return path
    models = {
        "dangling input": lambda: f._mutated(f._mlp(rng), lambda m: m.graph.node[2].input.__setitem__(0, "nowhere")),
        "opset 999": lambda: f._mutated(f._mlp(rng), lambda m: setattr(m.opset_import[0], "version", 999)),
        "operands that do not fit": lambda: f._mutated(f._mlp(rng), lambda m: f._set_dim(m, 7)),
        "a declared [1e9, 1e9] input": lambda: f._matmul_inputs([10**9, 10**9], [10**9, 10], [10**9, 10]),
        "a huge sparse weight": lambda: f._sparse_weight([10**9, 10**9]),
        "a constant folded to 1e10 elements": lambda: f._expand([10**5, 10**5], constant=True),
        "external data outside its folder": lambda: f._external(rng, "../secret.bin"),
        "no nodes": lambda: f._model([], [f._vi("x", ["N", 4])], [f._vi("x", ["N", 4])]),
    }
    onnx.save(models[kind](), str(path))
    return path


@pytest.mark.parametrize("kind, message", [
    ("fifo", "not a regular file"),
    ("folder", "is a folder, not an ONNX file"),
    ("dangling input", "not a valid ONNX model: Nodes in a graph must be topologically sorted"),
    ("opset 999", "ONNX opset 999 is newer than any this onnx knows"),
    ("operands that do not fit", "ONNX shape inference failed: [ShapeInferenceError] Inference error(s): "
                                 "(op_type:Gemm): [ShapeInferenceError] Dimension mismatch"),
    ("a declared [1e9, 1e9] input", "tensor 'x' of shape [1000000000, 1000000000] has 1000000000000000000 "
                                    "elements, more than the 1e+15 hwnas prices"),
    ("a huge sparse weight", "sparse initializer 'w' of shape [1000000000, 1000000000] is 1000000000000000000 "
                             "elements dense"),
    ("a constant folded to 1e10 elements", "tensor 'e' of shape [100000, 100000] is computed from constants alone"),
    ("external data outside its folder", "its external data file(s) ../secret.bin lie outside its folder"),
])
@pytest.mark.parametrize("profile", ["gpu-a100", "cpu-host-model", "printed-egfet"])
def test_files_no_profile_can_price_are_one_line_naming_them(tmp_path: Path, capsys, kind: str, message: str,
                                                             profile: str) -> None:
    path = _bad(kind, tmp_path / "model.onnx")
    rc, err = _cli(capsys, "profiles", "predict", profile, str(path))
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"hwnas: error: {path}: ") and message in err[0]


@pytest.mark.parametrize("kind, message", [
    ("a declared [1e9, 1e9] input", "its inputs {'x': [1000000000, 1000000000], 'w': [1000000000, 10]} are "
                                    "4000000040000000000 bytes, more than the 1 GB hwnas feeds a model it measures"),
    ("no nodes", "the ONNX graph has no nodes"),
])
def test_measuring_refuses_what_it_cannot_feed_or_load_in_one_line(tmp_path: Path, capsys, kind: str,
                                                                   message: str) -> None:
    path = _bad(kind, tmp_path / "model.onnx")
    rc, err = _cli(capsys, "profiles", "measure", "cpu-ort", str(path))
    assert rc == 2 and len(err) == 1 and message in err[0]
    assert err[0].startswith((f"hwnas: error: profile 'cpu-ort': {path}: ",
                              f"hwnas: error: profile 'cpu-ort': cannot load {path}: "))


def test_shape_inference_of_unknown_operators_is_bounded(tmp_path: Path) -> None:
    import fuzz_onnx as f

    chain = _save(f._chain("MyOp", 400, domain="com.example"), tmp_path / "chain.onnx")
    approximate = get_profile("gpu-a100", {"unknown_ops": "approximate"})
    assert approximate.profile(chain)["latency_ms"].details["approximated_ops"] == ["MyOp"]  # one round, not 400
    alternating = _save(f._chain("MyOp", 100, domain="com.example", between="Relu"), tmp_path / "alternating.onnx")
    with pytest.raises(ProfileError, match=r"alternating\.onnx: ONNX shape inference did not settle in 64 rounds"):
        approximate.profile(alternating)


# --------------------------------------------------------------------------------------------- one folder


def test_blocked_dequantize_weight_is_read_identically_by_both_views() -> None:
    """A DequantizeLinear with ``block_size`` (one scale per 4 rows of each column): the cost view and the
    linear-layer view fold it with the same table, zeros where the stored value equals its zero point."""
    rng = np.random.default_rng(2)
    zero = rng.integers(-3, 4, (2, 4)).astype(np.int8)  # [K / block, N]
    wq = rng.integers(-100, 100, (8, 4)).astype(np.int8)
    wq[rng.random((8, 4)) < 0.4] = 0
    wq[wq == 0] = np.repeat(zero, 4, axis=0)[wq == 0]  # those entries dequantize to exact zeros
    scale = rng.uniform(0.01, 0.1, (2, 4)).astype(np.float32)
    expected = (wq.astype(np.float64) - np.repeat(zero, 4, axis=0)) * np.repeat(scale, 4, axis=0)
    inits = [numpy_helper.from_array(wq, "wq"), numpy_helper.from_array(scale, "ws"),
             numpy_helper.from_array(zero, "wz")]
    nodes = [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0, block_size=4),
             helper.make_node("MatMul", ["x", "w"], ["y"])]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], inits, opset=21)
    graph = Graph(model)
    assert np.allclose(graph.value("w"), expected, rtol=1e-6)
    (layer,) = linear_layers(graph)
    assert np.allclose(layer.weight, expected, rtol=1e-6)
    mm = next(c for c in graph_costs(model, 2) if c.op_type == "MatMul")
    assert mm.dtype == "int8" and mm.weight_sparsity == pytest.approx(float(np.mean(layer.weight == 0)))
    assert 0 < mm.weight_sparsity < 1


# ---------------------------------------------------------------------------------------- unknown operators


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose", "ConvInteger", "QLinearConv"])
def test_convolutions_are_refused_by_default(op: str, predictor: PredictorProfile, tmp_path: Path) -> None:
    path = _save(_conv_graph(op), tmp_path / f"{op}.onnx")
    (cost,) = graph_costs(path)
    assert not cost.known and cost.macs == 0  # no rule: its MACs are unknown
    for profile in [*(get_profile(n) for n in ANALYTICAL), predictor, get_profile("printed-egfet")]:
        with pytest.raises(ProfileError, match=rf"{op}") as err:
            profile.profile(path)
        assert "\n" not in str(err.value)


def test_approximated_operators_are_priced_and_listed(predictor: PredictorProfile, tmp_path: Path) -> None:
    path = _save(_conv_graph("Conv"), tmp_path / "conv.onnx")
    for name in ("gpu-a100", "mobile-cortex-a76"):
        m = get_profile(name, {"unknown_ops": "approximate"}).profile(path)["latency_ms"]
        assert m.value > 0 and m.details["approximated_ops"] == ["Conv"]
    pred = PredictorProfile("pred", {**predictor.params, "unknown_ops": "approximate"})
    assert pred.profile(path)["latency_ms"].details["approximated_ops"] == ["Conv"]
    known = _save(_mlp(), tmp_path / "mlp.onnx")
    assert "approximated_ops" not in get_profile("gpu-a100").profile(known)["latency_ms"].details
    with pytest.raises(ProfileError, match=r"'unknown_ops' must be one of \['refuse', 'approximate'\], got 'maybe'"):
        get_profile("gpu-a100", {"unknown_ops": "maybe"})


def test_printed_refuses_operators_outside_an_mlp(tmp_path: Path) -> None:
    norm = [helper.make_node("LayerNormalization", ["h", "gamma"], ["hn"], axis=-1)]
    path = _save(_mlp(norm), tmp_path / "ln.onnx")
    with pytest.raises(ProfileError, match=r"ln\.onnx: profile 'printed-egfet' has no cost rule for operator\(s\) "
                                           r"LayerNormalization; .*--set unknown_ops=approximate"):
        get_profile("printed-egfet").profile(path)
    approx = get_profile("printed-egfet", {"unknown_ops": "approximate"}).profile(path)
    plain = get_profile("printed-egfet").profile(_save(_mlp(), tmp_path / "plain.onnx"))
    assert approx["area_cm2"].value == plain["area_cm2"].value  # free wiring: the same circuit
    assert approx["area_cm2"].details["approximated_ops"] == ["LayerNormalization"]
    conv = _save(_conv_graph("Conv"), tmp_path / "conv.onnx")
    with pytest.raises(ProfileError, match="Conv"):  # no weight matrix to read: refused even when approximating
        get_profile("printed-egfet", {"unknown_ops": "approximate"}).profile(conv)


def test_conv_refused_in_one_line_and_approximated_with_a_note_through_the_cli(tmp_path: Path) -> None:
    path = _save(_conv_graph("Conv"), tmp_path / "conv.onnx")
    proc = hwnas("profiles", "predict", "gpu-a100", str(path))
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "no cost rule for operator(s) Conv;" in line and "--set unknown_ops=approximate" in line
    proc = hwnas("profiles", "predict", "gpu-a100", str(path), "--set", "unknown_ops=approximate")
    assert proc.returncode == 0, proc.stderr
    value, note = proc.stdout.strip().splitlines()
    assert value.startswith("gpu-a100.latency_ms = ") and value.endswith("ms (predicted)")
    assert note.startswith("note: gpu-a100") and "Conv" in note and "approximate" in note


# ------------------------------------------------------------------------------------ hwnas's own families


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Representative candidates of every family, built and lowered as a search lowers them: MLPs with every
    FFN kind, precision and sparsity kind; Transformer LMs and sequence classifiers; fixed-point printed MLPs."""
    from hwnas.data import load_dataset
    from hwnas.engine.evaluator import Evaluator
    from hwnas.space import ArchConfig
    from hwnas.engine.tasks import ClassificationTask, make_task

    out = tmp_path_factory.mktemp("families")
    reviews = out / "reviews.csv"
    reviews.write_text("text,label\n" + "".join(f"{w} {w} really,{w}\n" for w in ("good", "bad", "okay") * 8))
    tabular = ClassificationTask(load_dataset("breast_cancer", seed=0))
    mlp = {"width": 32, "activation": "gelu", "sparsity_kind": "nm"}
    families = {
        "runtime": (tabular, [], "mlp", [
            {**mlp, "depth": 4, "ffn": ["dense", "lowrank", "blockdiag", "glu"], "rank": [None, 8, None, None],
             "blocks": [None, None, 4, None], "expansion": [None, None, None, 2],
             "quant": ["fp32", "int8", "ternary", "fp16"]},
            {**mlp, "depth": 3, "ffn": ["swiglu", "geglu", "moe"], "expansion": 2, "experts": [None, None, 4],
             "top_k": [None, None, 2], "quant": ["int4", "binary", "fp32"], "sparsity_kind": "none",
             "activation": "silu"},
            {**mlp, "depth": 2, "ffn": ["moe", "dense"], "expansion": 1, "experts": [2, None], "top_k": [1, None],
             "quant": ["int8", "fp16"], "sparsity_kind": "block", "sparsity": 0.5, "sparsity_block": 4,
             "activation": "relu"},
        ]),
        "lm": (make_task("transformer", "pydoc_topics", target=None, seed=0, fixed={"seq_len": 16}), [],
               "transformer", [
                   {"depth": 2, "d_model": 32, "heads": 2, "ffn": ["moe", "lowrank"], "experts": [2, None],
                    "top_k": [1, None], "rank": [None, 8], "quant": ["int8", "int4"], "expansion": 2},
                   {"depth": 2, "d_model": 32, "heads": 2, "ffn": ["blockdiag", "swiglu"], "blocks": [2, None],
                    "quant": ["fp16", "fp32"], "expansion": 2, "sparsity_kind": "unstructured", "sparsity": 0.5}]),
        "classifier": (make_task("transformer", str(reviews), target=None, seed=0, fixed={"seq_len": 8}), [],
                       "transformer", [{"depth": 1, "d_model": 16, "heads": 2, "ffn": ["geglu"], "expansion": 2,
                                        "quant": ["int8"]}]),
        "printed": (tabular, [get_profile("printed-egfet")], "mlp", [
            {"depth": 2, "width": [6, 4], "weight_bits": [4, 6], "activation": "relu",
             "sparsity_kind": "unstructured", "sparsity": 0.5},
            {"depth": 2, "width": [8, 4], "ffn": ["lowrank", "dense"], "rank": [2, None], "activation": "relu"}]),
    }
    paths: dict[str, list[Path]] = {}
    for family, (task, profiles, model, configs) in families.items():
        evaluator = Evaluator(task, profiles, [], epochs=1, seed=0, workdir=out, space_name="t")
        for i, values in enumerate(configs):
            config = ArchConfig(model, values)
            path = out / f"{family}{i}.onnx"
            evaluator.lower(evaluator.build(config, 0), config, 0, path)
            paths.setdefault(family, []).append(path)
    return paths


@pytest.mark.parametrize("family", ["runtime", "lm", "classifier", "printed"])
def test_the_analytical_profiles_price_every_operator_hwnas_exports(family: str, lowered: dict[str, list[Path]]) -> None:
    for path in lowered[family]:
        unknown = {c.op_type for b in (1, 4) for c in graph_costs(path, b) if not c.known}
        assert not unknown, f"{path.name}: no cost rule for {sorted(unknown)}"
        for name in ANALYTICAL:
            metric = get_profile(name).profile(path)["latency_ms"]
            assert metric.value > 0 and "approximated_ops" not in metric.details


def test_the_printed_profile_prices_fixed_point_mlps(lowered: dict[str, list[Path]]) -> None:
    printed = get_profile("printed-egfet")
    for path in lowered["printed"]:
        ops = {n.op_type for n in onnx.load(str(path)).graph.node}
        assert {"Round", "Clip"} <= ops and ops <= MLP_OPS  # the fixed-point input grid is part of the graph
        area = printed.profile(path)["area_cm2"]
        assert area.value > 0 and "approximated_ops" not in area.details
        assert area.details["bits_from"] == "hwnas.fixed_point"
