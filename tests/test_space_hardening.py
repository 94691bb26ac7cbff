"""Search spaces refuse, at load and in one line, every value a builder cannot take; a dry build of the smallest
and largest configuration finds mistakes between parameters before any study; constraint expressions and
per-layer depths are bounded."""

from __future__ import annotations

import textwrap
import time

import pytest

import hwnas
from hwnas.errors import SpaceError
from hwnas.models import get_model_spec, list_models, register_model
from hwnas.models.domains import IntRange
from hwnas.space import MAX_LAYERS, Categorical, Int, SearchSpace, load_space


def write(tmp_path, text: str, name: str = "space.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def refused(path) -> str:
    with pytest.raises(SpaceError) as info:
        load_space(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("params: {width: [8]}\nfixed: {batch_size: 0}", "fixed.batch_size must be in [1, 65536], got 0"),
        ("params: {width: [8]}\nfixed: {batch_size: abc}", "fixed.batch_size must be an integer, got 'abc'"),
        ("params: {width: [8]}\nfixed: {batch_size: null}", "fixed.batch_size must be an integer, got None"),
        ("params: {width: [8]}\nfixed: {batch_size: .inf}", "fixed.batch_size must be an integer, got inf"),
        ("params: {width: [8]}\nfixed: {batch_size: 32.0}", "fixed.batch_size must be an integer, got 32.0"),
        ("params: {width: [8]}\nfixed: {lr: -1}", "fixed.lr must be > 0.0, got -1"),
        ("params: {width: [8]}\nfixed: {weight_decay: -0.1}", "fixed.weight_decay must be >= 0.0, got -0.1"),
        ("params: {lr: [fast, 0.1]}", "params.lr.choices[0] must be a number, got 'fast'"),
        ("params: {activation: [relu, tanh]}", "params.activation.choices[1] must be one of ['relu', 'gelu', 'silu']"),
        ("params: {quant: [fp32, int3]}", "params.quant.choices[1] must be one of ['fp32', 'fp16', 'int8', 'int4'"),
        ("params: {ffn: [dense, sparse]}", "params.ffn.choices[1] must be one of ['dense', 'lowrank'"),
        ("params: {width: {type: int, low: -8, high: 8}}", "params.width.low must be in [1, 16384], got -8"),
        ("params: {width: {type: float, low: 2, high: 8}}", "params.width.type must be one of ['int', 'categorical']"),
        ("params: {sparsity: {type: float, low: 0.5, high: 1.5}}", "params.sparsity.high must be in [0.0, 1.0), got 1.5"),
        ("params: {rank: [0, 2]}", "params.rank.choices[0] must be in [1, 16384], got 0"),
        ("params: {weight_bits: {type: int, low: 2, high: 64}}", "params.weight_bits.high must be in [2, 32], got 64"),
        ("params: {width: [8]}\nfixed: {weight_bits: 0}", "fixed.weight_bits must be in [2, 32], got 0"),
        ("params: {width: [8]}\nfixed: {sparsity_scope: all}", "fixed.sparsity_scope must be one of ['layer', 'global']"),
        ("params: {activation: [relu]}\nfixed: {depth: 2, width: [8, 0]}", "fixed.width[1] must be in [1, 16384], got 0"),
        ("params: {width: [8]}\nfixed: {lr: [0.1, 0.2]}", "fixed.lr must be a number, got [0.1, 0.2]"),
        ("params:\n  depth: {type: int, low: 1, high: 2}\n  lr: {type: float, low: 0.1, high: 0.2, per_layer: depth}",
         "params.lr.per_layer: model 'mlp' takes one lr for the whole model, not one per layer"),
    ],
)
def test_values_outside_a_builders_domain_are_refused_at_load(tmp_path, body, where):
    assert where in refused(write(tmp_path, f"model: mlp\n{body}\n"))


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("params: {d_model: [0, 32]}", "params.d_model.choices[0] must be in [1, 4096], got 0"),
        ("params: {heads: [2]}\nfixed: {steps_per_epoch: many}", "fixed.steps_per_epoch must be an integer, got 'many'"),
        ("params: {heads: [2]}\nfixed: {level: word}", "fixed.level must be one of ['char', 'byte'], got 'word'"),
        ("params:\n  depth: {type: int, low: 1, high: 2}\n  activation: {type: categorical, choices: [relu], "
         "per_layer: depth}", "params.activation.per_layer: model 'transformer' takes one activation"),
    ],
)
def test_transformer_domains(tmp_path, body, where):
    assert where in refused(write(tmp_path, f"model: transformer\n{body}\n"))


def test_every_parameter_of_every_family_has_a_domain():
    for name in list_models():
        spec = get_model_spec(name)
        assert spec.params and all(hasattr(d, "check") for d in spec.params.values())
        assert {"lr", "batch_size", "weight_decay"} <= set(spec.params)


def test_builders_take_their_vocabularies_from_the_domains():
    from hwnas.models import domains
    from hwnas.models.ffn import FFN_KINDS
    from hwnas.models.layers import ACTIVATIONS
    from hwnas.models.sparsity import SPARSITY_KINDS

    assert FFN_KINDS is domains.FFN_KINDS and SPARSITY_KINDS is domains.SPARSITY_KINDS
    assert list(ACTIVATIONS) == list(domains.ACTIVATION_MODULES)


MIXED = """
    name: mixed
    model: mlp
    params:
      depth: {type: int, low: 1, high: 3}
      width: {type: int, low: 8, high: 64, step: 8, per_layer: depth}
      ffn: {type: categorical, choices: [dense, blockdiag], per_layer: depth}
      blocks: {type: categorical, choices: [4, 2], per_layer: depth, when: {ffn: blockdiag}}
      lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
    constraints: ["layer > 0 or ffn != 'blockdiag'"]
"""


def test_extremes_are_the_smallest_and_largest_valid_configurations(tmp_path):
    space = load_space(write(tmp_path, MIXED))
    extremes = space.extremes()
    small, large = extremes["smallest"], extremes["largest"]
    assert small["depth"] == 1 and small["width"] == (8,) and small["ffn"] == ("dense",) and small["lr"] == 1e-3
    assert large["depth"] == 3 and large["width"] == (64, 64, 64) and large["lr"] == 0.1
    # the constraint keeps block-diagonal layers off layer 0; numeric choices are ordered by value
    assert large["ffn"] == ("dense", "blockdiag", "blockdiag") and large["blocks"] == (None, 4, 4)
    assert space.violations(small.values) == [] and space.violations(large.values) == []


def test_an_extreme_that_no_valid_configuration_reaches_is_left_out():
    space = SearchSpace("s", "mlp", {"depth": Int(1, 3), "width": Int(4, 8)}, constraints=("width > 3 * depth",))
    assert set(space.extremes()) == {"smallest"}  # the largest depth first: no width is above 9


def search(tmp_path, space_path, dataset="iris"):
    return hwnas.search(str(space_path), dataset, ["cpu-host-model"], trials=1, epochs=1, out=tmp_path / "out",
                        progress=False)


@pytest.mark.parametrize(
    ("model", "body", "dataset", "reason"),
    [
        ("transformer", "params: {d_model: [30, 64], heads: [4]}\nfixed: {seq_len: 16, steps_per_epoch: 1}",
         "pydoc_topics", "the smallest configuration cannot be built: d_model (30) must be divisible by heads (4)"),
        ("mlp", "params: {ffn: [dense, blockdiag], quant: [fp32, int4], blocks: [2]}\nfixed: {width: 8}", "iris",
         "the largest configuration cannot be built: ffn 'blockdiag' cannot be deployed at int4"),
        ("mlp", "params: {ffn: [dense, blockdiag], blocks: [8]}\nfixed: {width: 8}", "iris",
         "block-diagonal layer 4->8 needs both sizes divisible by blocks=8"),
        ("mlp", "params: {depth: {type: int, low: 1, high: 3}}\nfixed: {width: [8, 8]}", "iris",
         "'width' has 2 values for 1 layers"),
        ("mlp", "params: {sparsity_kind: [none, nm]}\nfixed: {sparsity_scope: global}", "iris",
         "sparsity_scope 'global' prunes unstructured only"),
    ],
)
def test_a_dry_build_finds_mistakes_between_parameters_before_any_study(tmp_path, model, body, dataset, reason):
    path = write(tmp_path, f"model: {model}\n{body}\n")
    load_space(path)  # every value is fine on its own
    with pytest.raises(SpaceError) as info:
        search(tmp_path, path, dataset)
    assert str(info.value).startswith(f"{path}: ") and reason in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()  # no study, no work folder


def test_a_configuration_that_breaks_a_constraint_is_no_counterexample(tmp_path):
    path = write(tmp_path, """
        model: mlp
        params: {ffn: [dense, blockdiag], quant: [fp32, int4], blocks: [2]}
        fixed: {width: 8}
        constraints: ["quant != 'int4' or ffn != 'blockdiag'"]
    """)
    assert load_space(path).extremes()["largest"]["quant"] == "fp32"
    assert search(tmp_path, path).study.trials


@pytest.mark.parametrize(
    ("constraint", "reason"),
    [
        ("9 ** 9 ** 9 > depth", "a power beyond 4096 bits"),
        ("2 ** 10 ** 6 > depth", "a power beyond 4096 bits"),
        ("(10 ** 1000) * (10 ** 1000) > depth", "a product beyond 4096 bits"),
        ("len('a' * 10 ** 10) > depth", "a string or tuple of 10000000000 items (at most 1000)"),
        ("2.0 ** 100000 > depth", "a number too large"),
        ("10 ** 400 / 3 > depth", "integer division result too large for a float"),
        ("min(()) < depth", "min() arg is an empty sequence"),
        ("-" * 100_000 + "depth < 0", "at most 1000 characters"),
        ("-" * 40 + "depth < 0", "nested at most 32 levels deep"),
        ("1j != depth", "the constant 1j is not allowed"),
    ],
)
def test_constraint_expressions_are_bounded(tmp_path, constraint, reason):
    path = write(tmp_path, "model: mlp\nparams: {depth: {type: int, low: 1, high: 3}}\nconstraints: [CONSTRAINT]\n"
                 .replace("CONSTRAINT", repr(constraint)))
    began = time.perf_counter()
    message = refused(path)
    assert time.perf_counter() - began < 5
    assert "constraints[0]" in message and reason in message


def test_a_constraint_that_cannot_be_evaluated_for_one_configuration_breaks_it():
    space = SearchSpace("s", "mlp", {"depth": Int(1, 3), "width": Int(2, 8)}, constraints=("2 ** 2 ** width > 1",))
    (broken,) = space.violations({"depth": 1, "width": 13})  # outside the space, as a resumed study may hold
    assert "cannot be evaluated: a power beyond 4096 bits" in broken


def test_the_number_of_constraints_is_bounded(tmp_path):
    path = write(tmp_path, "model: mlp\nparams: {depth: [1, 2]}\nconstraints: " + str(["depth > 0"] * 65) + "\n")
    assert "constraints: their number must be <= 64, got 65" in refused(path)


def test_a_per_layer_parameter_follows_at_most_max_layers(tmp_path):
    assert MAX_LAYERS == 64
    register_model("test-deep", "no.such:builder", {"depth": IntRange(1, 10**6),
                                                    "width": IntRange(1, 8, per_layer=True)})
    began = time.perf_counter()
    with pytest.raises(SpaceError, match=r"params.depth.high \(the layers of per-layer 'width'\) must be <= 64, "
                                         r"got 1000000"):
        SearchSpace("deep", "test-deep", {"depth": Int(1, 10**6), "width": Int(1, 8, per_layer="depth")},
                    constraints=("width > 0",))
    assert time.perf_counter() - began < 5
    space = SearchSpace("deep", "test-deep", {"depth": Int(1, 64), "width": Int(1, 8, per_layer="depth")})
    assert len(space.sample(0)["width"]) <= 64
    path = write(tmp_path, "model: mlp\nparams: {depth: [1]}\nfixed: {width: " + str([8] * 65) + "}\n")
    assert "fixed.width: the number of values (one per layer) must be in [1, 64], got 65" in refused(path)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("params: {depth: {type: {a: 1}, low: 1, high: 2}}", "params.depth.type: must be one of"),
        ("params:\n  ffn: [dense, lowrank]\n  rank: {type: int, low: 1, high: 2, when: {ffn: []}}",
         "params.rank.when.ffn: expected a value or a non-empty list of values"),
        ("params: {depth: {type: int, low: 1, high: 2, 1: 2, x: 3}}", "params.depth.1: not a field"),
        ("params: {width: [8]}\n1: 1\nx: 2", "1: unknown field"),
        ("params: {lr: {type: float, low: null, high: 0.1}}", "params.lr.low: expected a number, got None"),
        ("params: {lr: {type: float, low: true, high: 0.1}}", "params.lr.low: expected a number, got True"),
        ("params: {lr: {type: float, low: 0.001, high: 0.1, step: .nan}}", "params.lr.step: must be a finite number"),
        ("params: {lr: {type: float, low: 0.001, high: .inf}}", "params.lr.high: must be a finite number, got inf"),
        ("params: {width: [8]}\nfixed: false", "fixed: expected a mapping"),
        ("params: {width: [8]}\nname: [a]", "name: expected a string"),
        ("params: {width: {type: int, low: 2, high: " + "9" * 5000 + "}}", "not valid YAML: Exceeds the limit"),
    ],
)
def test_malformed_structure_is_one_line_not_a_traceback(tmp_path, body, where):
    assert where in refused(write(tmp_path, f"model: mlp\n{body}\n"))


def test_python_spaces_are_checked_against_the_domains_too():
    with pytest.raises(SpaceError, match=r"space 's': params.activation.choices\[0\] must be one of"):
        SearchSpace("s", "mlp", {"activation": Categorical(("tanh",))})
