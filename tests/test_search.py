"""End-to-end searches as a user runs them: outputs, ONNX exports, resume, failures, constraints."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import onnx
import optuna
import pytest

from hwnas.data import load_dataset
from hwnas.errors import ConfigError, HwnasError
from hwnas.lowering.runtime import onnx_accuracy
from hwnas.profiles import Metric, Profile, ProfileResult, from_dict, register_kind
from hwnas.api import export, search
from hwnas.engine.records import Status, read_record
from hwnas.engine.study import evaluated_trials
from hwnas.lowering import graph_digest

FAST = {"cpu-ort": {"repeats": 50, "warmup": 2}}


def run(tmp_path, **kw):
    args = dict(dataset="breast_cancer", profiles=["cpu-ort", "printed-egfet"], trials=6, epochs=5, seed=0,
                out=tmp_path / "run", profile_overrides=FAST, progress=False, population_size=4)
    args.update(kw)
    args["profile_overrides"] = {k: v for k, v in FAST.items() if k in args["profiles"]}
    return search(kw.pop("space", "mlp_tabular"), **{k: v for k, v in args.items() if k != "space"})


def test_search_writes_study_pareto_and_self_describing_onnx(tmp_path):
    result = run(tmp_path)
    out = result.out
    assert (out / "study.db").is_file()
    summary = json.loads((out / "pareto.json").read_text())
    assert summary["objectives"] == ["accuracy", "cpu-ort.latency_ms", "printed-egfet.area_cm2"]
    rows = summary["pareto"]
    assert rows and len(rows) == len(list((out / "models").glob("*.onnx")))
    header = (out / "pareto.csv").read_text().splitlines()[0].split(",")
    for col in ("trial", "val_accuracy", "test_accuracy", "arch.width", "cpu-ort.latency_ms",
                "cpu-ort.latency_ms.provenance", "cpu-ort.latency_ms.repeats", "printed-egfet.area_cm2",
                "printed-egfet.power_mw", "printed-egfet.area_cm2.model"):
        assert col in header
    data = load_dataset("breast_cancer", seed=0)
    for row in rows:
        path = out / row["file"]
        onnx.checker.check_model(str(path))
        model = onnx.load(str(path))
        meta = {p.key: p.value for p in model.metadata_props}
        for key in ("hwnas.version", "hwnas.arch", "hwnas.metrics", "hwnas.dataset", "hwnas.space", "hwnas.fixed_point"):
            assert key in meta
        metrics = json.loads(meta["hwnas.metrics"])
        assert metrics["hardware"]["cpu-ort"]["latency_ms"]["provenance"] == "measured"
        assert metrics["hardware"]["printed-egfet"]["area_cm2"]["provenance"] == "predicted"
        assert json.loads(meta["hwnas.fixed_point"])["input_bits"] == 4  # the printed deployment was trained
        # raw features in, class scores out; the accuracy recorded is the exported file's
        assert onnx_accuracy(path, data.X_val, data.y_val) == pytest.approx(row["val_accuracy"])
        assert onnx_accuracy(path, data.X_test, data.y_test) == pytest.approx(row["test_accuracy"])
        # the latency was measured on exactly this graph
        assert graph_digest(path) == row["graph_sha256"] == meta["hwnas.graph_sha256"]
    trials = result.study.get_trials()
    ok = [read_record(t) for t in trials if read_record(t).status == Status.OK]
    assert ok and all(r.onnx_max_abs_diff <= 1e-4 for r in ok if r.reused_from is None)
    assert all(set(r.timings) >= {"sample", "build", "train", "export", "profile", "bookkeeping"}
               for r in ok if r.reused_from is None)


def test_rerun_resumes_and_keeps_finished_trials(tmp_path):
    first = run(tmp_path, trials=3, profiles=["cpu-ort"])
    assert len(evaluated_trials(first.study)) == 3
    before = {t.number: (t.values, t.datetime_complete) for t in first.study.trials}
    again = run(tmp_path, trials=5, profiles=["cpu-ort"])
    assert len(evaluated_trials(again.study)) == 5
    assert {t.number: (t.values, t.datetime_complete) for t in again.study.trials[: len(before)]} == before
    n = len(again.study.trials)
    assert len(run(tmp_path, trials=5, profiles=["cpu-ort"]).study.trials) == n  # nothing re-run


def test_resume_refuses_a_different_search(tmp_path):
    run(tmp_path, trials=1, profiles=["cpu-ort"])
    with pytest.raises(ConfigError, match="different search"):
        run(tmp_path, trials=2, profiles=["cpu-ort"], study="mlp_tabular-breast_cancer", epochs=7)


def test_constraints_screen_before_training(tmp_path):
    # a latency no ONNX Runtime call reaches (a printed area bound never screens: it depends on the trained
    # weights, tests/test_screening.py)
    result = run(tmp_path, trials=4, profiles=["cpu-ort", "printed-egfet"],
                 constraints=["cpu-ort.latency_ms<=0.0001"])
    trials = result.study.trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete
    for t in complete:
        r = read_record(t)
        assert r.status == Status.INFEASIBLE and r.trained is False
        assert r.artifact_id is None and t.values[0] == 0.0
        assert t.system_attrs["constraints:cpu-ort.latency_ms<=0.0001"] > 0  # samplers see it
        assert r.costs["cpu-ort"]["latency_ms"].value > 0.0001
    assert result.pareto == [] and json.loads((result.out / "pareto.json").read_text())["pareto"] == []


def test_loose_constraint_trains_and_is_satisfied(tmp_path):
    result = run(tmp_path, trials=3, profiles=["cpu-ort"], constraints=["cpu-ort.latency_ms<=1000"])
    ok = [t for t in result.study.trials if read_record(t).status == Status.OK]
    assert ok and all(t.system_attrs["constraints:cpu-ort.latency_ms<=1000"] <= 0 for t in ok)


def space_file(tmp_path, extra: str = "", fixed: str = "activation: relu") -> str:
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(f"""
        name: tiny
        model: mlp
        params:
          width: {{type: int, low: 2, high: 4}}
          {extra}
        fixed: {{{fixed}}}
    """))
    return str(path)


def test_diverging_candidate_is_recorded_and_search_goes_on(tmp_path):
    space = space_file(tmp_path, fixed="lr: 1.0e+30, weight_decay: 1.0e+30")
    result = run(tmp_path, space=space, trials=3, profiles=["cpu-ort"])
    failed = [t for t in result.study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 3 == len(evaluated_trials(result.study))  # a failed candidate uses up its trial
    assert all("diverged" in read_record(t).reason for t in failed)


def test_export_failure_is_a_failed_trial(tmp_path, monkeypatch):
    import torch

    calls = {"n": 0}
    real = torch.onnx.export

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("unsupported operator")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", flaky)
    result = run(tmp_path, space=space_file(tmp_path), trials=3, profiles=["cpu-ort"])
    states = [t.state for t in result.study.trials]
    assert states[0] == optuna.trial.TrialState.FAIL
    assert "ONNX export failed" in read_record(result.study.trials[0]).reason
    assert optuna.trial.TrialState.COMPLETE in states[1:]


@register_kind
class CrashingProfile(Profile):
    """A profiler that crashes on every call (as a broken device tool would)."""

    kind = "test-crash"
    metrics = {"latency_ms": "ms"}
    primary_metric = "latency_ms"
    provenance = "measured"

    def profile(self, onnx_path):
        raise RuntimeError("segfault in device tool")


@register_kind
class ConstantProfile(Profile):
    kind = "test-constant"
    metrics = {"energy_mj": "mJ"}
    primary_metric = "energy_mj"
    provenance = "predicted"

    def profile(self, onnx_path):
        return ProfileResult(self.name, {"energy_mj": Metric("energy_mj", 1.0, "mJ", "predicted", {"model": "const"})})


def test_crashing_profiler_fails_trials_not_the_search(tmp_path):
    from hwnas.profiles import from_dict

    crash = from_dict({"name": "crashy", "kind": "test-crash"})
    result = run(tmp_path, space=space_file(tmp_path), trials=2, profiles=["cpu-ort", crash])
    assert all(t.state == optuna.trial.TrialState.FAIL for t in result.study.trials)
    assert "crashy crashed: RuntimeError: segfault" in read_record(result.study.trials[0]).reason


def test_identical_architectures_are_reused_not_retrained(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text("model: mlp\nparams: {width: {type: categorical, choices: [3, 4]}}\n")
    result = run(tmp_path, space=str(path), trials=2, profiles=["cpu-ort"], sampler="random")
    trials = result.study.trials
    assert len(evaluated_trials(result.study)) == 2 and not result.exhausted
    originals = {t.params["width"]: t.number for t in evaluated_trials(result.study)}
    for t in trials:
        reused = read_record(t).reused_from
        assert reused is None or (reused == originals[t.params["width"]] and t.values == trials[reused].values)


def test_exhausted_space_stops_instead_of_looping(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text("model: mlp\nparams: {width: {type: categorical, choices: [3]}}\n")
    result = run(tmp_path, space=str(path), trials=3, profiles=["cpu-ort"])
    assert result.exhausted and len(evaluated_trials(result.study)) == 1
    assert all(read_record(t).reused_from == 0 for t in result.study.trials[1:])
    assert len(result.pareto) == 1


def test_space_constraint_violations_are_pruned(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: mlp\nparams:\n  width: [2, 3, 4, 5]\n  depth: [1, 2]\nconstraints: ['width > 4 or depth == 1']\n")
    result = run(tmp_path, space=str(path), trials=5, profiles=["cpu-ort"], sampler="random")
    assert len(evaluated_trials(result.study)) == 5  # the five valid architectures, however many proposals
    pruned = [t for t in result.study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(read_record(t).status == Status.INVALID for t in pruned)
    assert all(t.params["width"] <= 4 and t.params["depth"] == 2 for t in pruned)


@pytest.mark.parametrize("sampler", ["nsga3", "tpe", "random", "gp"])
def test_every_sampler_runs(tmp_path, sampler):
    result = run(tmp_path, trials=3, profiles=["cpu-ort"], sampler=sampler)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in result.study.trials) >= 2


def test_objective_selection(tmp_path):
    result = run(tmp_path, trials=2, profiles=["printed-egfet"],
                 objectives=["printed-egfet.power_mw", "printed-egfet.delay_ms"])
    assert result.study.metric_names == ["accuracy", "printed-egfet.power_mw", "printed-egfet.delay_ms"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"profiles": ["cpu-ort", "gpu-nonexistent"]}, "unknown profile 'gpu-nonexistent'"),
        ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
        ({"sampler": "nsga4"}, "--sampler must be one of"),
        ({"objectives": ["cpu-ort.area_cm2"]}, "profile 'cpu-ort' reports ['latency_ms'], not 'area_cm2'"),
        ({"objectives": ["latency"]}, "expected PROFILE.METRIC"),
        ({"constraints": ["printed-egfet.area_cm2<=5"], "profiles": ["cpu-ort"]},
         "names profile 'printed-egfet', which is not among the chosen profiles"),
        ({"constraints": ["cpu-ort.latency_ms<=-1"]}, "impossible"),
        ({"constraints": ["cpu-ort.latency_ms=1"]}, "expected PROFILE.METRIC<=VALUE"),
        ({"space": "mlp_wide", "profiles": ["printed-egfet"]}, "offers quant ['int8']"),
        ({"trials": 0}, "--trials must be >= 1"),
    ],
)
def test_bad_options_fail_before_any_work(tmp_path, kwargs, message):
    with pytest.raises(HwnasError) as info:
        run(tmp_path, **kwargs)
    assert message in str(info.value)
    assert not (tmp_path / "run" / "study.db").exists()


def test_export_from_any_study(tmp_path):
    result = run(tmp_path, trials=3, profiles=["cpu-ort", "printed-egfet"])
    url = f"sqlite:///{result.out / 'study.db'}"
    rows = export(tmp_path / "again", storage=url, study=result.study.study_name,
                  artifacts=result.out / "artifacts")
    assert [r["trial"] for r in rows] == [r["trial"] for r in result.pareto]
    for r in rows:
        a, b = onnx.load(str(result.out / r["file"])), onnx.load(str(tmp_path / "again" / r["file"]))
        assert a.graph == b.graph
    with pytest.raises(ConfigError, match="no study 'nope'"):
        export(tmp_path / "again", storage=url, study="nope")


def test_custom_profile_objective_from_python(tmp_path):
    from hwnas.profiles import from_dict

    energy = from_dict({"name": "energy", "kind": "test-constant"})
    result = run(tmp_path, space=space_file(tmp_path), trials=2, profiles=[energy])
    assert result.study.metric_names == ["accuracy", "energy.energy_mj"]
    assert np.all([t.values[1] == 1.0 for t in result.study.trials])


def test_unexpected_error_in_a_candidate_fails_that_trial_only(tmp_path, monkeypatch):
    from hwnas.engine import tasks

    def broken(self, model, settings):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(tasks.ClassificationTask, "train", broken)
    result = run(tmp_path, space=space_file(tmp_path), trials=2, profiles=["cpu-ort"])
    assert [t.state for t in result.study.trials] == [optuna.trial.TrialState.FAIL] * 2
    assert "unexpected ZeroDivisionError: division by zero" in read_record(result.study.trials[0]).reason


LR = "lr: {type: float, low: 1.0e-3, high: 1.0e-2}"  # a continuous parameter: no proposal is a repeat


@register_kind
class BrokenNumberProfile(Profile):
    """Returns ``value`` (class attribute) as its cost, as a user's profile with a broken formula might."""

    kind = "test-broken-number"
    metrics = {"latency_ms": "ms"}
    primary_metric = "latency_ms"
    provenance = "predicted"
    value: object = float("nan")
    calls = 0

    def profile(self, onnx_path):
        type(self).calls += 1
        return ProfileResult(self.name, {"latency_ms": Metric("latency_ms", self.value, "ms", "predicted", {})})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, "fast"])
def test_a_cost_that_is_no_finite_number_fails_the_trial_with_its_reason(tmp_path, monkeypatch, value):
    monkeypatch.setattr(BrokenNumberProfile, "value", value)
    broken = from_dict({"name": "broken", "kind": "test-broken-number"})
    result = run(tmp_path, space=space_file(tmp_path), trials=2, profiles=[broken],
                 constraints=["broken.latency_ms<=1"])  # screened first: no training
    evaluated = evaluated_trials(result.study)
    assert len(evaluated) == 2 == len(result.study.trials)  # counted: the search does not loop
    assert all(t.state == optuna.trial.TrialState.FAIL for t in evaluated)
    reason = read_record(evaluated[0]).reason
    assert f"profile broken returned latency_ms = {value!r}: a cost must be a finite number >= 0" in reason
    assert result.failed and "all 2 evaluated trial(s) failed" in result.failed and reason in result.failed


def test_a_quality_that_is_no_finite_number_fails_the_trial(tmp_path, monkeypatch):
    from hwnas.engine import tasks

    monkeypatch.setattr(tasks.ClassificationTask, "quality", lambda self, path, split: float("nan"))
    result = run(tmp_path, space=space_file(tmp_path), trials=1, profiles=["cpu-ort"])
    assert [t.state for t in result.study.trials] == [optuna.trial.TrialState.FAIL]
    assert "the exported model's validation accuracy is nan, not a finite number" in result.failed


def test_a_profile_missing_its_metric_fails_the_trial(tmp_path, monkeypatch):
    monkeypatch.setattr(BrokenNumberProfile, "profile", lambda self, path: ProfileResult(self.name, {}))
    broken = from_dict({"name": "broken", "kind": "test-broken-number"})
    result = run(tmp_path, space=space_file(tmp_path), trials=1, profiles=[broken],
                 constraints=["broken.latency_ms<=1"])
    assert "profile broken returned no metric 'latency_ms'" in read_record(result.study.trials[0]).reason


def test_a_search_whose_every_trial_fails_stops_with_an_error_and_exit_code_3(tmp_path, monkeypatch, capsys):
    from hwnas.cli import SEARCH_FAILED, main
    from hwnas.engine.runner import MAX_FAILED_START

    monkeypatch.setattr(BrokenNumberProfile, "calls", 0)
    profile = tmp_path / "nan.yaml"
    profile.write_text("name: nan\nkind: test-broken-number\n")
    out = tmp_path / "out"
    rc = main(["search", space_file(tmp_path, extra=LR), "--dataset", "iris",
               "--profile", str(profile), "--constraint", "nan.latency_ms<=1", "--trials", "40", "--epochs", "1",
               "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == SEARCH_FAILED == 3
    assert err[-1].startswith("hwnas: error: the search found no model: all 10 evaluated trial(s) failed; the most "
                              "common reason (10 of 10): profile nan returned latency_ms = nan")
    assert "stopped before the 40 asked for" in err[-1]
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{out / 'study.db'}")
    assert len(evaluated_trials(study)) == MAX_FAILED_START == BrokenNumberProfile.calls


def test_a_search_with_one_good_trial_goes_on_past_failures(tmp_path, monkeypatch):
    from hwnas.engine.runner import MAX_FAILED_START

    calls = {"n": 0}
    real = ConstantProfile.profile

    def flaky(self, path):
        calls["n"] += 1
        return real(self, path) if calls["n"] == 1 else BrokenNumberProfile.profile(self, path)

    monkeypatch.setattr(ConstantProfile, "profile", flaky)
    energy = from_dict({"name": "energy", "kind": "test-constant"})
    space = space_file(tmp_path, extra=LR)
    result = run(tmp_path, space=space, trials=MAX_FAILED_START + 2, profiles=[energy],
                 constraints=["energy.energy_mj<=0.5"], sampler="random")
    assert len(evaluated_trials(result.study)) == MAX_FAILED_START + 2 and result.failed is None


def test_text_stored_in_a_trial_record_is_bounded(tmp_path, monkeypatch):
    from hwnas.errors import MAX_MESSAGE_CHARS

    monkeypatch.setattr(CrashingProfile, "profile", lambda self, path: (_ for _ in ()).throw(
        RuntimeError("x" * 10_000_000)))
    crash = from_dict({"name": "crashy", "kind": "test-crash"})
    result = run(tmp_path, space=space_file(tmp_path), trials=1, profiles=[crash])
    stored = result.study.trials[0].user_attrs["result"]["fail_reason"]
    head = "profile crashy crashed: RuntimeError: "
    assert len(stored) <= MAX_MESSAGE_CHARS and stored.startswith(head + "xxx")
    kept = stored.index(" … (")
    assert stored.endswith(f" … ({len(head) + 10_000_000 - kept} characters cut)")
    assert len(result.failed) < MAX_MESSAGE_CHARS + 400
