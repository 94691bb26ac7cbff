"""The engine's public seams as a user and a plug-in author meet them: the API, the stop token, the validated
configuration, strategies as plug-ins, failed trials that keep their file, one trainer for every task."""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass
from pathlib import Path

import onnx
import optuna
import pytest
import torch

import hwnas
from hwnas.engine.config import SearchConfig
from hwnas.engine.records import Status, read_record, read_tag
from hwnas.engine.stop import StopToken
from hwnas.engine.study import evaluated_trials
from hwnas.errors import ConfigError
from hwnas.profiles import Metric, Profile, ProfileResult, from_dict, register_kind
from hwnas.strategies import Strategy, StrategyOptions, option, register_strategy, strategies

SPACE = textwrap.dedent("""
    name: tiny
    model: mlp
    params:
      width: {type: int, low: 2, high: 6}
    fixed: {activation: relu}
""")
FAST = {"cpu-ort": {"repeats": 50, "warmup": 2}}


def tiny_space(tmp_path: Path) -> str:
    path = tmp_path / "tiny.yaml"
    path.write_text(SPACE)
    return str(path)


def test_hwnas_search_is_the_function_every_time_and_dir_shows_the_api(tmp_path):
    import hwnas.engine.runner  # noqa: F401 - importing the engine must not shadow the API
    import hwnas.lowering  # noqa: F401

    space = tiny_space(tmp_path)
    for i in range(2):
        result = hwnas.search(space, "iris", ["cpu-ort"], trials=1, epochs=1, out=tmp_path / f"r{i}",
                              profile_overrides=FAST, progress=False)
        assert len(evaluated_trials(result.study)) == 1
    assert callable(hwnas.search) and callable(hwnas.export) and callable(hwnas.verify)
    assert {"search", "export", "verify", "SearchConfig", "StopToken", "SearchResult"} <= set(dir(hwnas))


def test_a_search_from_a_config_object_equals_one_from_arguments(tmp_path):
    config = SearchConfig(space=tiny_space(tmp_path), dataset="iris", profiles=("cpu-ort",), trials=2, epochs=1,
                          out=tmp_path / "c", profile_overrides=FAST, progress=False, seed=3)
    result = hwnas.search(config=config)
    again = hwnas.search(tiny_space(tmp_path), "iris", ["cpu-ort"], trials=2, epochs=1, out=tmp_path / "c",
                         profile_overrides=FAST, progress=False, seed=3)
    assert len(again.study.trials) == len(result.study.trials)  # the same search: resumed, nothing re-run
    with pytest.raises(ConfigError, match="either config= or"):
        hwnas.search("mlp_tabular", config=config)


@pytest.mark.parametrize(("options", "message"), [
    ({"trials": 0}, "--trials must be >= 1, got 0"),
    ({"trials": "3"}, "--trials must be an integer, got '3'"),
    ({"trials": True}, "--trials must be an integer, got True"),
    ({"epochs": 2.5}, "--epochs must be an integer, got 2.5"),
    ({"population_size": 1}, "--population must be >= 2, got 1"),
    ({"train_threads": 0}, "--train-threads must be in [1, 1024], got 0"),
    ({"sampler": "nsga4"}, "--sampler must be one of ['nsga2', 'nsga3', 'tpe', 'random', 'gp'], got 'nsga4'"),
    ({"strategy": "oneshot"}, "unknown --strategy 'oneshot'"),
    ({"strategy": "darts", "strategy_options": {"darts_epochs": 0}}, "--darts-epochs must be >= 1, got 0"),
    ({"strategy": "darts", "strategy_options": {"darts_epochs": 3, "darts_warmup": 3}},
     "takes no option(s) 'darts_warmup'; it takes: darts_epochs (--darts-epochs)"),
    ({"strategy": "darts", "strategy_options": {"darts_epochs": 3, "warmup": 3}}, "--darts-warmup must be in [0, 2]"),
    ({"strategy": "supernet", "strategy_options": {"distill": 2}}, "--supernet-distill must be in [0.0, 1.0], got 2"),
    ({"strategy_options": {"finetune_epochs": 2}}, "--finetune-epochs need --strategy supernet"),
])
def test_a_config_is_validated_with_one_message_style_naming_the_option(options, message, tmp_path):
    with pytest.raises(ConfigError) as info:
        hwnas.search(config=SearchConfig(space="mlp_tabular", out=tmp_path / "x", **options))
    assert message in str(info.value) and not (tmp_path / "x").exists()  # before any work


@register_kind
class StoppingProfile(Profile):
    """Sets a stop token the first time it prices a file (as Ctrl-C during the first trial would)."""

    kind = "test-stopping"
    metrics = {"energy_mj": "mJ"}
    primary_metric = "energy_mj"
    provenance = "predicted"
    token: StopToken | None = None

    def profile(self, onnx_path):
        if self.token is not None:
            self.token.stop()
        return ProfileResult(self.name, {"energy_mj": Metric("energy_mj", 1.0, "mJ", "predicted", {"model": "const"})})


def test_a_stop_token_ends_the_search_after_the_current_trial_and_a_rerun_resumes(tmp_path):
    stop = StopToken()
    profile = from_dict({"name": "stopper", "kind": "test-stopping"})
    profile.token = stop
    kwargs = dict(trials=3, epochs=1, out=tmp_path / "s", progress=False, sampler="random")
    result = hwnas.search(tiny_space(tmp_path), "iris", [profile], stop=stop, **kwargs)
    assert result.stopped and len(evaluated_trials(result.study)) == 1
    profile.token = None
    again = hwnas.search(tiny_space(tmp_path), "iris", [profile], **kwargs)
    assert not again.stopped and len(evaluated_trials(again.study)) == 3


@register_kind
class RejectingProfile(Profile):
    """Fails on every lowered file, as a device that refuses a graph does."""

    kind = "test-rejecting"
    metrics = {"latency_ms": "ms"}
    primary_metric = "latency_ms"
    provenance = "measured"

    def profile(self, onnx_path):
        raise RuntimeError("device rejected the graph")


def test_a_failed_trial_keeps_its_onnx_file_for_inspection(tmp_path):
    reject = from_dict({"name": "reject", "kind": "test-rejecting"})
    result = hwnas.search(tiny_space(tmp_path), "iris", [reject], trials=1, epochs=1, out=tmp_path / "f",
                          progress=False)
    (trial,) = result.study.trials
    record = read_record(trial)
    assert trial.state == optuna.trial.TrialState.FAIL and record.status == Status.FAILED
    assert "device rejected the graph" in record.reason and record.artifact_id
    kept = result.artifacts / record.artifact_id
    onnx.checker.check_model(str(kept))  # the very file the profile was given, trained and lowered
    assert not list((tmp_path / "f" / "work").glob("*.onnx"))  # nothing left behind in the work folder


@dataclass(frozen=True)
class OneArchitectureOptions(StrategyOptions):
    width: int = option(4, "one-architecture: the width to evaluate", flag="--one-width")


@register_strategy
class OneArchitecture(Strategy):
    """A plug-in strategy written against the public seams only: it evaluates one given architecture."""

    name = "test-one"
    description = "evaluate one architecture"
    Options = OneArchitectureOptions

    def run(self, session) -> bool:
        runner = session.runner(tag={"name": self.name, "width": self.options.width})
        session.evaluate_architecture(runner, {"width": self.options.width})
        return True


def test_a_plug_in_strategy_runs_and_its_options_become_flags(tmp_path, capsys):
    from hwnas.cli import build_parser, main

    assert "test-one" in strategies()
    help_text = build_parser()._subparsers._group_actions[0].choices["search"].format_help()
    for strategy in strategies().values():
        for flag in strategy.Options.flags().values():
            assert flag in help_text
    for f in dataclasses.fields(SearchConfig):
        assert f.metadata["flag"] is None or f.metadata["flag"] in help_text
    assert main(["search", tiny_space(tmp_path), "--dataset", "iris", "--profile", "cpu-host-model", "--strategy",
                 "test-one", "--one-width", "5", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "p")]) == 0
    study = optuna.load_study(study_name="tiny-iris", storage=f"sqlite:///{tmp_path / 'p' / 'study.db'}")
    (trial,) = study.trials
    assert trial.params == {"width": 5} and read_tag(trial) == {"name": "test-one", "width": 5}
    assert read_record(trial).status == Status.OK and "Pareto-optimal" in capsys.readouterr().out


def test_a_sequence_classifier_prunes_as_its_space_asks(tmp_path):
    from hwnas.space import ArchConfig
    from hwnas.train import TrainSettings
    from hwnas.engine.tasks import make_task

    rows = ["text,label"] + [f"{'good' if i % 2 else 'bad'} {i % 5},{i % 2}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    task = make_task("transformer", str(tmp_path / "t.csv"), target=None, seed=0, fixed={"seq_len": 8})
    config = ArchConfig("transformer", {"depth": 1, "d_model": 16, "heads": 2, "sparsity_kind": "unstructured",
                                        "sparsity": 0.5})
    torch.manual_seed(0)
    model = task.build(config, None)
    task.train(model, TrainSettings(epochs=10, batch_size=16, lr=3e-3))
    for layer in model.prunable_layers()[0]:
        for w in layer.weights():
            assert float((w == 0).float().mean()) == pytest.approx(0.5, abs=0.02)
    assert all(torch.isfinite(p.detach()).all() for p in model.parameters())
