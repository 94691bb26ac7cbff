"""DARTS with a hardware penalty: cost tables, the penalty, RC-DARTS budgets, Gumbel, the recorded trial."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from hwnas.errors import ConfigError
from hwnas.lowering.metadata import read_metadata
from hwnas.lowering.runtime import onnx_accuracy
from hwnas.profiles import Metric, Profile, ProfileResult, from_dict, get as get_profile, register_kind
from hwnas.api import search
from hwnas.engine.evaluator import Evaluator
from hwnas.engine.objectives import parse_constraints, parse_objectives
from hwnas.space import space_from_dict
from hwnas.strategies.darts import DartsOptions
from hwnas.supernet.darts import DartsSearch, DartsSpace, discretise, one_hot
from hwnas.supernet.spaces import restrict
from hwnas.engine.tasks import make_task

PROFILE = "cpu-host-model"
SPACE = {
    "name": "darts_tiny", "model": "mlp",
    "params": {
        "depth": {"type": "int", "low": 1, "high": 2},
        "width": {"type": "categorical", "choices": [4, 32, 128], "per_layer": "depth"},
        "activation": ["relu", "silu"],
        "ffn": {"type": "categorical", "choices": ["dense", "lowrank"], "per_layer": "depth"},
        "rank": {"type": "int", "low": 1, "high": 4, "per_layer": "depth", "when": {"ffn": "lowrank"}},
        "lr": {"type": "float", "low": 3.0e-3, "high": 3.0e-2, "log": True},
    },
    "fixed": {"batch_size": 32},
    "constraints": ["rank < width"],
}


@pytest.fixture(scope="module")
def task():
    return make_task("mlp", "breast_cancer", target=None, seed=0, fixed={})


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("darts")  # shares darts_costs.json between the tests of this module


def run_darts(task, out: Path, constraints=(), **options):
    space = space_from_dict(SPACE)
    profiles = {PROFILE: get_profile(PROFILE)}
    objs, cons = parse_objectives([], profiles), parse_constraints(list(constraints), profiles)
    evaluator = Evaluator(task, list(profiles.values()), cons, epochs=3, seed=0, workdir=out / "work",
                          space_name=space.name)
    plan = DartsSearch(space, task, cons, objs, seed=0, options=DartsOptions(**{"darts_epochs": 6, **options}))
    return plan, plan.search(evaluator, out)


def test_space_mapping_and_discretisation():
    r = restrict(space_from_dict(SPACE), "darts")
    assert r.pinned == {"ffn": "dense"} and set(r.dropped) == {"lr", "rank"}
    assert 3e-3 < r.hyper["lr"] < 3e-2 and r.space.constraints == ()  # 'rank < width' went with rank
    ds = DartsSpace(r)
    assert ds.depths == (1, 2) and ds.choices["width"].values == (4, 32, 128) and ds.choices["width"].per_layer
    assert dict(ds.alpha_keys()) == {"depth": 2, "width.0": 3, "width.1": 3, "activation": 2, "precision": 1}
    from hwnas.space import Int

    assert discretise(Int(64, 1024, step=64), 6) == (64, 256, 448, 640, 832, 1024)
    assert discretise(Int(2, 32, log=True), 5) == (2, 4, 8, 16, 32)
    assert discretise(Int(1, 4), 6) == (1, 2, 3, 4)


def test_penalty_lowers_the_expected_cost(task, cache):
    _, free = run_darts(task, cache, darts_lambda=0.0)
    _, paid = run_darts(task, cache, darts_lambda=3.0)
    key = f"{PROFILE}.latency_ms"
    assert paid["expected_cost"][key] < free["expected_cost"][key], (free["expected_cost"], paid["expected_cost"])
    assert paid["derived_table_cost"][key] <= free["derived_table_cost"][key]
    assert paid["cost_table"][key]["profiled_ops"] == 0  # second run: every op came from the on-disk cache
    table = json.loads((cache / "darts_costs.json").read_text())
    assert any(k.startswith("dense:30:128:") for entries in table.values() for k in entries)


def test_hard_budget_is_met_by_the_expected_cost(task, cache):
    plan, free = run_darts(task, cache, darts_lambda=0.0)
    key = f"{PROFILE}.latency_ms"
    cost = plan.cost_models(plan_evaluator(task, cache), cache)[key]
    low = float(cost.expected(one_hot(plan.ds, plan.cheapest(cost))))
    bound = low + 0.25 * (free["expected_cost"][key] - low)
    _, r = run_darts(task, cache, constraints=[f"{key}<={bound}"], darts_lambda=0.0)
    (budget,) = r["budgets"].values()
    assert budget["metric"] == key and budget["bound"] == pytest.approx(bound)
    assert r["expected_cost"][key] <= bound and budget["met_expected"]
    assert r["derived_table_cost"][key] <= bound and budget["met_derived"]
    assert r["expected_cost"][key] < free["expected_cost"][key]


def plan_evaluator(task, out: Path) -> Evaluator:
    return Evaluator(task, [get_profile(PROFILE)], [], epochs=3, seed=0, workdir=out / "work",
                     space_name="darts_tiny")


def test_gumbel_search_records_and_exports_the_derived_architecture(task, tmp_path: Path):
    out = tmp_path / "run"
    result = search(space_from_dict(SPACE), task, [PROFILE], trials=1, out=out, epochs=5, progress=False,
                    strategy="darts", strategy_options={"darts_epochs": 4, "gumbel": True})
    darts = json.loads((out / "darts.json").read_text())
    assert darts["settings"]["gumbel"] is True
    (trial,) = result.study.trials
    tag = trial.user_attrs["strategy"]
    assert tag["name"] == "darts" and set(tag["alpha"]) == {"depth", "width.0", "width.1", "activation", "precision"}
    assert tag["derived"] == darts["derived"] and f"{PROFILE}.latency_ms" in tag["expected_cost"]
    values = trial.user_attrs["arch"]["values"]
    assert values["depth"] == darts["derived"]["depth"] and values["width"] == darts["derived"]["width"]
    assert values["ffn"] == ["dense"] * values["depth"] and values["activation"] == darts["derived"]["activation"]
    record = trial.user_attrs["result"]
    assert record["status"] == "ok" and record["epochs_run"] >= 1  # retrained from scratch, then profiled
    (row,) = result.pareto
    path = out / row["file"]
    meta = read_metadata(path)
    assert meta["hwnas.arch"]["values"]["width"] == values["width"]
    assert onnx_accuracy(path, task.data.X_val, task.data.y_val) == pytest.approx(row["val_accuracy"])
    onnx.checker.check_model(str(path))
    again = search(space_from_dict(SPACE), task, [PROFILE], trials=1, out=out, epochs=5, progress=False,
                   strategy="darts", strategy_options={"darts_epochs": 4, "gumbel": True})
    assert len(again.study.trials) == 1  # the same DARTS search is not run twice into one study


def test_bad_input_fails_before_training(task, tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot be met"):
        run_darts(task, tmp_path, constraints=[f"{PROFILE}.latency_ms<=0.00001"])
    assert not (tmp_path / "darts.json").exists()
    bad = {**SPACE, "params": {**SPACE["params"], "sparsity": {"type": "float", "low": 0.1, "high": 0.5}}}
    with pytest.raises(ConfigError, match="param 'sparsity'"):
        search(space_from_dict(bad), task, [PROFILE], out=tmp_path / "b", strategy="darts", progress=False)
    with pytest.raises(ConfigError, match="not 'transformer'"):
        search("transformer_ffn", "pydoc_topics", ["gpu-a100"], out=tmp_path / "t", strategy="darts", progress=False)
    with pytest.raises(ConfigError, match="takes no option"):
        search(space_from_dict(SPACE), task, [PROFILE], out=tmp_path / "o", strategy="darts", progress=False,
               strategy_options={"supernet_epochs": 3})
    with pytest.raises(ConfigError, match="upper bounds"):
        run_darts(task, tmp_path, constraints=[f"{PROFILE}.latency_ms>=0.001"])
    assert not any(tmp_path.glob("**/*.onnx"))


@register_kind
class NanProfile(Profile):
    """A profile whose formula breaks: every latency is NaN."""

    kind = "test-darts-nan"
    metrics = {"latency_ms": "ms"}
    primary_metric = "latency_ms"
    provenance = "predicted"

    def profile(self, onnx_path):
        return ProfileResult(self.name, {"latency_ms": Metric("latency_ms", float("nan"), "ms", "predicted", {})})


def test_a_profile_without_a_number_fails_darts_before_training(task, tmp_path: Path):
    nan = from_dict({"name": "nan", "kind": "test-darts-nan"})
    with pytest.raises(ConfigError, match=r"DARTS cannot price its reference architecture \(the smallest\): "
                                          r"profile nan returned latency_ms = nan"):
        search(space_from_dict(SPACE), task, [nan], out=tmp_path / "n", strategy="darts", progress=False)
    assert not (tmp_path / "n" / "darts.json").exists()
