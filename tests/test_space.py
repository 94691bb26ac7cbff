"""Search spaces: loading, validation errors that name the field, sampling, constraints, configs."""

from __future__ import annotations

import random
import textwrap

import optuna
import pytest

from hwnas.errors import SpaceError
from hwnas.space import ArchConfig, Categorical, Int, SearchSpace, list_spaces, load_space


def write(tmp_path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
    name: t
    model: mlp
    params:
      depth: {type: int, low: 1, high: 3}
      width: {type: int, low: 4, high: 64, log: true, per_layer: depth}
      ffn: {type: categorical, choices: [dense, lowrank], per_layer: depth}
      rank: {type: int, low: 1, high: 8, per_layer: depth, when: {ffn: lowrank}}
      lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
    fixed: {activation: relu}
    constraints: [rank < width]
"""


def test_builtin_spaces_load_and_sample():
    assert {"mlp_tabular", "mlp_wide"} <= set(list_spaces())
    wide = load_space("mlp_wide")
    assert wide.params["width"].high >= 1024 and wide.params["depth"].high >= 6
    assert {"mlp_full", "mlp_printed", "transformer_ffn"} <= set(list_spaces())
    for name in list_spaces():
        space = load_space(name)
        for seed in range(20):
            config = space.sample(seed)
            assert config.model == space.model
            assert len(config["ffn" if "ffn" in space.params else "width"]) == config["depth"]


def test_per_layer_and_conditional_parameters(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    rng = random.Random(0)
    seen_rank = seen_none = False
    for _ in range(200):
        c = space.sample(rng)
        for ffn, rank in zip(c["ffn"], c["rank"]):
            if ffn == "lowrank":
                assert 1 <= rank <= 8
                seen_rank = True
            else:
                assert rank is None
                seen_none = True
    assert seen_rank and seen_none


def test_constraints_per_layer(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    ok = {"depth": 2, "width": (8, 4), "ffn": ("lowrank", "dense"), "rank": (4, None), "lr": 0.01}
    bad = {**ok, "rank": (8, None), "width": (8, 4)}
    assert space.violations(ok) == []
    assert space.violations(bad) == ["rank < width (layer 0)"]


def test_optuna_suggest_names_per_layer_params(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    config = space.suggest(trial)
    assert "width[0]" in trial.params and "depth" in trial.params
    assert config["activation"] == "relu"  # fixed values are part of the config


def test_config_is_hashable_and_round_trips():
    c = ArchConfig("mlp", {"depth": 2, "width": [8, 4], "ffn": ["dense", "lowrank"], "rank": [None, 2]})
    same = ArchConfig.from_json(c.to_json())
    assert same == c and hash(same) == hash(c) and same.key == c.key
    assert isinstance(same["width"], tuple)
    assert ArchConfig("mlp", {**c.values, "depth": 3}).key != c.key


def test_python_api_builds_a_space():
    space = SearchSpace("py", "mlp", {"depth": Int(1, 2), "width": Int(2, 8, per_layer="depth"),
                                      "activation": Categorical(("relu", "gelu"))})
    assert space.sample(0)["activation"] in ("relu", "gelu")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("model: mlp\nparams: [1, 2]\n", "params: expected a mapping"),
        ("params: {depth: {type: int, low: 1, high: 2}}\n", "model: missing"),
        ("model: mlp\nparams: {depth: {type: int, low: 3, high: 2}}\n", "params.depth.low: low (3) must be <= high (2)"),
        ("model: mlp\nparams: {depth: {type: integer, low: 1, high: 2}}\n", "params.depth.type: must be one of"),
        ("model: mlp\nparams: {depth: {type: int, low: 1.5, high: 2}}\n", "params.depth.low: expected an integer"),
        ("model: mlp\nparams: {depth: {type: int, low: 1}}\n", "params.depth.high: missing"),
        ("model: mlp\nparams: {depth: {type: int, low: 1, high: 2, choices: [1]}}\n", "params.depth.choices: not a field"),
        ("model: mlp\nparams: {lr: {type: float, low: 0, high: 1, log: true}}\n", "params.lr.low: log-scaled parameters need low > 0"),
        ("model: mlp\nparams: {ffn: {type: categorical, choices: []}}\n", "params.ffn.choices: expected a non-empty list"),
        ("model: mlp\nparams: {widht: {type: int, low: 1, high: 2}}\n", "params.widht: model 'mlp' does not use"),
        ("model: transformerx\nparams: {depth: {type: int, low: 1, high: 2}}\n", "model: unknown model 'transformerx'"),
        ("model: mlp\nparams: {width: {type: int, low: 1, high: 2, per_layer: depth}}\n", "params.width.per_layer: refers to unknown"),
        ("model: mlp\nparams:\n  ffn: [dense, lowrank]\n  rank: {type: int, low: 1, high: 2, when: {ffn: sparse}}\n",
         "params.rank.when.ffn: 'sparse' is not a possible value"),
        ("model: mlp\nparams: {depth: {type: int, low: 1, high: 2}}\nconstraints: ['depth <']\n", "constraints[0]: syntax error"),
        ("model: mlp\nparams: {depth: {type: int, low: 1, high: 2}}\nconstraints: ['__import__(1)']\n", "constraints[0]: only the functions"),
        ("model: mlp\nparams: {depth: {type: int, low: 1, high: 2}}\nconstraints: ['depth < widht']\n", "constraints[0]: unknown name(s) ['widht']"),
        ("model: mlp\nparams: {depth: {type: int, low: 1, high: 2}}\nconstraints: ['depth > 5']\n", "constraints: contradictory"),
        ("model: mlp\nparams: {depth: {type: int, low: 1, high: 2}}\nextra: 1\n", "extra: unknown field"),
        ("model: mlp\nparams: {depth: {type: int, low: 1, high: 2}}\nfixed: {depth: 2}\n", "cannot be both searched"),
        ("model: [mlp\n", "not valid YAML"),
    ],
)
def test_malformed_spaces_name_file_and_field(tmp_path, text, where):
    path = write(tmp_path, text)
    with pytest.raises(SpaceError) as info:
        load_space(path)
    message = str(info.value)
    assert str(path) in message
    assert where in message


def test_unknown_space_lists_builtins():
    with pytest.raises(SpaceError, match="mlp_tabular"):
        load_space("no_such_space")


def test_readme_example_space_is_valid_and_builds(tmp_path):
    import re
    from pathlib import Path

    import numpy as np

    from hwnas.models import build_model
    from hwnas.models.preprocess import InputStats

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```yaml\n(name: my_space.*?)```", readme, re.S).group(1)
    space = load_space(write(tmp_path, block))
    stats = InputStats.of(np.random.default_rng(0).standard_normal((20, 30)))
    rng = random.Random(0)
    built = 0
    for _ in range(40):
        config = space.sample(rng)
        if not space.violations(config.values):
            build_model(config, n_features=30, n_classes=2, stats=stats)
            built += 1
    assert built >= 10
