"""FFN structure, sparsity and precision as search dimensions: what the exported graph really holds."""

from __future__ import annotations

import collections
import random

import numpy as np
import onnx
import optuna
import pytest
from onnx import numpy_helper

from hwnas.data import load_dataset
from hwnas.errors import ConfigError
from hwnas.lowering.metadata import read_metadata
from hwnas.api import search
from hwnas.engine.evaluator import Evaluator, Timings
from hwnas.engine.records import Status, read_record
from hwnas.space import ArchConfig, load_space
from hwnas.engine.tasks import ClassificationTask, make_task


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    task = ClassificationTask(load_dataset("breast_cancer", seed=0))
    return Evaluator(task, [], [], epochs=1, seed=0, workdir=tmp_path_factory.mktemp("w"), space_name="t")


def lower(evaluator, values, path):
    config = ArchConfig("mlp", values)
    model = evaluator.build(config, 0)
    return evaluator.lower(model, config, 0, path).path, model


def ops(path):
    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def test_every_mlp_full_choice_lowers_to_what_its_metadata_states(evaluator, tmp_path):
    space = load_space("mlp_full")
    rng = random.Random(0)
    seen_quant, seen_ffn = set(), set()
    lowered = 0
    while lowered < 24:
        config = space.sample(rng)
        if space.violations(config.values):
            continue
        path, _ = lower(evaluator, dict(config.values), tmp_path / f"c{lowered}.onnx")  # verify() runs inside
        meta = read_metadata(path)
        assert [w["precision"] for w in meta["hwnas.layers"]]
        assert evaluator.task.quality(path, "val") >= 0  # ONNX Runtime runs it on raw features
        seen_quant |= set(config["quant"])
        seen_ffn |= set(config["ffn"])
        lowered += 1
    assert len(seen_quant) >= 5 and len(seen_ffn) >= 5


def test_per_layer_precision_becomes_per_node_operators(evaluator, tmp_path):
    values = {"depth": 4, "width": 32, "ffn": "dense", "quant": ["int8", "int4", "fp16", "ternary"]}
    path, _ = lower(evaluator, values, tmp_path / "m.onnx")
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    assert inits["layers.0.weight_quantized"].dtype == np.int8 and ops(path)["DequantizeLinear"] >= 1
    assert any(n.op_type == "MatMulNBits" and "layers.1.weight_Q4" in n.input for n in graph.node)
    assert inits["layers.2.weight"].dtype == np.float16
    assert len(np.unique(inits["layers.3.weight"])) <= 3 and inits["head.weight"].dtype == np.float32
    states = {w["weight"]: w["precision"] for w in read_metadata(path)["hwnas.layers"]}
    assert states == {"layers.0.weight": "int8", "layers.1.weight": "int4", "layers.2.weight": "fp16",
                      "layers.3.weight": "ternary", "head.weight": "fp32"}


def test_binary_weights_hold_two_values(evaluator, tmp_path):
    path, _ = lower(evaluator, {"depth": 1, "width": 16, "quant": ["binary"]}, tmp_path / "b.onnx")
    w = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}["layers.0.weight"]
    assert len(np.unique(w)) == 2 and np.allclose(np.abs(w), np.abs(w).max())


@pytest.mark.parametrize(("kind", "extra", "check"), [
    ("unstructured", {"sparsity": 0.7}, lambda w: (w == 0).mean() >= 0.69),
    ("nm", {}, lambda w: (w[: len(w) // 4 * 4].reshape(-1, 4, w.shape[-1]) != 0).sum(1).max() <= 2),
    ("block", {"sparsity": 0.5, "sparsity_block": 4}, lambda w: (w == 0).mean() >= 0.45 and _whole_blocks(w, 4)),
])
def test_gradual_pruning_leaves_real_zeros_in_the_exported_graph(tmp_path, kind, extra, check):
    space = tmp_path / "s.yaml"
    fixed = ", ".join(f"{k}: {v}" for k, v in {"depth": 1, "sparsity_kind": kind, **extra}.items())
    space.write_text(f"model: mlp\nparams:\n  width: [32]\nfixed: {{{fixed}}}\n")
    result = search(str(space), "breast_cancer", ["cpu-ort", "printed-egfet"], trials=1, epochs=20, out=tmp_path / "r",
                    progress=False, profile_overrides={"cpu-ort": {"repeats": 50}})
    row = result.pareto[0]
    assert row["val_accuracy"] > 0.85  # pruned while training, not after
    graph = onnx.load(str(result.out / row["file"])).graph
    w = {i.name: numpy_helper.to_array(i) for i in graph.initializer}["layers.0.weight"]
    assert w.shape == (30, 32)
    assert check(w)
    layer = next(x for x in read_metadata(result.out / row["file"])["hwnas.layers"] if x["weight"] == "layers.0.weight")
    assert layer["zeros"] == pytest.approx(float((w == 0).mean()), abs=1e-6)


def test_zero_weights_are_free_in_print_but_not_on_the_cpu(tmp_path):
    base = "model: mlp\nparams:\n  width: [16]\nfixed: {depth: 1%s}\n"
    areas = {}
    for name, extra in (("dense", ""), ("sparse", ", sparsity_kind: unstructured, sparsity: 0.8")):
        space = tmp_path / f"{name}.yaml"
        space.write_text(base % extra)
        r = search(str(space), "breast_cancer", ["printed-egfet"], trials=1, epochs=10, out=tmp_path / name,
                   progress=False)
        areas[name] = r.pareto[0]["metrics"]["printed-egfet"]["area_cm2"]["value"]
    assert areas["sparse"] < 0.6 * areas["dense"]


def test_printed_profile_refuses_runtime_only_precisions(tmp_path):
    with pytest.raises(ConfigError, match=r"offers quant \['fp16', 'int4', 'int8'\]"):
        search("mlp_full", "breast_cancer", ["printed-egfet"], trials=1, out=tmp_path / "x", progress=False)


def test_printed_search_space_searches_bits_and_sparsity(tmp_path):
    r = search("mlp_printed", "seeds", ["printed-egfet"], trials=4, epochs=10, out=tmp_path / "p", progress=False,
               objectives=["printed-egfet.area_cm2", "printed-egfet.power_mw"])
    assert r.study.metric_names == ["accuracy", "printed-egfet.area_cm2", "printed-egfet.power_mw"]
    for row in r.pareto:
        meta = read_metadata(r.out / row["file"])
        bits = meta["hwnas.fixed_point"]["weight_bits"]
        assert bits[: row["arch"]["values"]["depth"]] == list(row["arch"]["values"]["weight_bits"])


def test_language_model_search_minimises_perplexity(tmp_path):
    space = tmp_path / "lm.yaml"
    space.write_text(
        "model: transformer\nparams:\n  ffn: {type: categorical, choices: [swiglu, moe], per_layer: depth}\n"
        "  depth: {type: int, low: 1, high: 1}\n  experts: {type: categorical, choices: [2], per_layer: depth, when: {ffn: moe}}\n"
        "  quant: {type: categorical, choices: [fp32, int8], per_layer: depth}\n"
        "fixed: {d_model: 32, heads: 2, seq_len: 32, steps_per_epoch: 20, expansion: 2, top_k: 1}\n")
    r = search(str(space), "pydoc_topics", ["cpu-ort"], trials=2, epochs=2, out=tmp_path / "lm", progress=False,
               profile_overrides={"cpu-ort": {"repeats": 50}})
    assert r.study.metric_names[0] == "perplexity"
    assert r.study.directions[0] == optuna.study.StudyDirection.MINIMIZE
    done = [read_record(t) for t in r.study.trials if read_record(t).status == Status.OK]
    vocab = make_task("transformer", "pydoc_topics", target=None, seed=0, fixed={"seq_len": 32}).data.vocab_size
    assert done and all(d.metric == "perplexity" and 1 < d.val_score < vocab for d in done)
    row = r.pareto[0]
    meta = read_metadata(r.out / row["file"])
    assert meta["hwnas.dataset"]["task"] == "lm" and "test_perplexity" in meta["hwnas.metrics"]


def _whole_blocks(w, b):
    """Every b×b block (edge blocks partial) is either all zero or has no zero forced by the block mask."""
    zero_blocks = 0
    for i in range(0, w.shape[0], b):
        for j in range(0, w.shape[1], b):
            block = w[i : i + b, j : j + b]
            zero_blocks += bool((block == 0).all())
    return zero_blocks >= 0.5 * ((w.shape[0] + b - 1) // b) * ((w.shape[1] + b - 1) // b) - 1


def test_moe_candidate_records_dense_equivalent_and_active_macs(evaluator):
    values = {"depth": 1, "width": [16], "ffn": ["moe"], "experts": [4], "top_k": [1], "expansion": [2],
              "activation": "relu", "quant": ["fp32"]}
    result = evaluator.evaluate(ArchConfig("mlp", values), Timings(), name="moe")
    moe = result.model["moe"][0]
    assert moe["experts"] == 4 and moe["top_k"] == 1
    assert moe["active_macs_per_token"] < moe["dense_equivalent_macs_per_token"]
    head = 16 * 2  # the MoE maps the 30 raw features to 16; the head 16 → 2 classes
    assert result.model["macs_per_sample"] == pytest.approx(moe["active_macs_per_token"] + head, rel=1e-6)
    assert result.model["params"] > 0
    result.lowered.path.unlink()
