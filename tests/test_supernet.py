"""Weight-entangled MLP supernet: extraction, sandwich training, checkpoint resume, ranking fidelity."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

from hwnas.data import load_dataset
from hwnas.models.mlp import MLP
from hwnas.models.preprocess import InputStats
from hwnas.space import load_space
from hwnas.supernet import ArchSpace, MLPSupernet, arch_space, ranking_fidelity, train_supernet
from hwnas.train import accuracy


@pytest.fixture(scope="module")
def data():
    return load_dataset("breast_cancer", seed=0)


def make(data, seed: int = 0) -> MLPSupernet:
    torch.manual_seed(seed)
    return MLPSupernet.from_space(load_space("mlp_tabular"), data.n_features, data.n_classes,
                                  InputStats.of(data.X_train))


def test_arch_space_reads_the_space():
    a = arch_space(load_space("mlp_tabular"))
    assert a == ArchSpace(1, 3, 2, 32, True)
    assert a.largest() == {"depth": 3, "width": [32, 32, 32]}
    assert a.smallest() == {"depth": 1, "width": [2]}
    rng = random.Random(0)
    for _ in range(50):
        arch = a.sample_arch(rng)
        assert 1 <= arch["depth"] <= 3 and len(arch["width"]) == arch["depth"]
        assert all(2 <= w <= 32 for w in arch["width"])


def test_extract_matches_supernet_forward(data):
    net = make(data)
    x = torch.as_tensor(data.X_val, dtype=torch.float32)
    archs = [net.largest(), net.smallest(), {"depth": 2, "width": [5, 17]}]
    archs += [net.sample_arch(random.Random(i)) for i in range(5)]
    with torch.no_grad():
        for arch in archs:
            model = net.extract(arch)
            assert isinstance(model, MLP) and len(model.layers) == arch["depth"]
            assert [layer.weight.shape[1] for layer in model.layers] == list(arch["width"])
            model.eval()
            assert torch.allclose(model(x), net(x, arch), atol=1e-5)
    # weights are entangled: the small subnet's first layer is the top-left slice of the largest one
    small = net.extract({"depth": 1, "width": [3]})
    assert torch.equal(small.layers[0].weight, net.weights[0][:, :3].detach())
    with pytest.raises(ValueError):
        net(x, {"depth": 4, "width": [8] * 4})
    with pytest.raises(ValueError):
        net(x, {"depth": 1, "width": [33]})


def test_sandwich_training_improves_largest_and_smallest(data):
    net = make(data)
    before = {k: accuracy(net.extract(a), data.X_val, data.y_val)
              for k, a in (("largest", net.largest()), ("smallest", net.smallest()))}
    stats = train_supernet(net, data, epochs=5, lr=1e-2, seed=0)
    after = {k: accuracy(net.extract(a), data.X_val, data.y_val)
             for k, a in (("largest", net.largest()), ("smallest", net.smallest()))}
    assert after["largest"] > before["largest"] and after["smallest"] > before["smallest"], (before, after)
    assert after["largest"] > 0.9 and after["smallest"] > 0.85, after
    steps = math.ceil(len(data.y_train) / 32) * 5
    assert stats["epochs"] == 5 and stats["start_epoch"] == 0 and stats["steps"] == steps
    assert stats["subnet_passes"] == 4 * steps  # largest + smallest + 2 random per step
    assert stats["sample_passes"] == 4 * 5 * len(data.y_train) and stats["seconds"] > 0


def test_checkpoint_resume_equals_uninterrupted_run(data, tmp_path: Path):
    ckpt = tmp_path / "supernet.pt"
    resumed = make(data)
    first = train_supernet(resumed, data, epochs=2, seed=3, checkpoint=ckpt)
    assert first["start_epoch"] == 0 and ckpt.is_file()
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 2 and set(state) >= {"model", "opt", "epoch", "rng"}

    fresh = make(data)  # a new process: fresh initial weights, everything else comes from the checkpoint
    with torch.no_grad():
        for p in fresh.parameters():
            p.add_(1.0)
    second = train_supernet(fresh, data, epochs=4, seed=3, checkpoint=ckpt)
    assert second["start_epoch"] == 2 and second["epochs"] == 4
    assert second["steps"] == 2 * first["steps"]  # cumulative counters survive the restart
    assert torch.load(ckpt, weights_only=True)["epoch"] == 4

    straight = make(data)
    train_supernet(straight, data, epochs=4, seed=3)
    for (name, a), b in zip(fresh.state_dict().items(), straight.state_dict().values()):
        assert torch.equal(a, b), name  # same batches, same sampled subnets, same Adam state

    again = train_supernet(fresh, data, epochs=4, seed=3, checkpoint=ckpt)  # already done: nothing to train
    assert again["start_epoch"] == 4 and again["steps"] == second["steps"]


def test_ranking_fidelity_tiny(data):
    r = ranking_fidelity("mlp_tabular", data, subnets=6, supernet_epochs=3, standalone_epochs=3, seed=0)
    assert r["subnets"] == 6 and len({tuple(a["width"]) for a in r["archs"]}) == 6
    assert len(r["inherited_accuracy"]) == len(r["standalone_accuracy"]) == 6
    for key in ("kendall_tau", "spearman_rho", "kendall_tau_loss", "spearman_rho_loss"):
        assert math.isnan(r[key]) or -1.0 <= r[key] <= 1.0, key
    assert -1.0 <= r["kendall_tau_loss"] <= 1.0  # val losses are never all tied
    assert all(0.0 <= v <= 1.0 for v in r["inherited_accuracy"] + r["standalone_accuracy"])
    for side in ("supernet", "standalone"):
        c = r["compute"][side]
        assert c["seconds"] > 0 and c["sample_passes"] > 0 and c["sample_macs"] > 0
    assert r["compute"]["ratio_sample_passes"] > 0 and r["compute"]["ratio_seconds"] > 0


# --- the supernet strategy, the Transformer supernet, the fidelity command ----------------------------------

from hwnas.cli import main as cli_main  # noqa: E402
from hwnas.errors import ConfigError  # noqa: E402
from hwnas.lowering.metadata import read_metadata  # noqa: E402
from hwnas.lowering.runtime import onnx_accuracy  # noqa: E402
from hwnas.api import search  # noqa: E402
from hwnas.space import space_from_dict  # noqa: E402
from hwnas.strategies.supernet import CHECKPOINT, SupernetOptions  # noqa: E402
from hwnas.supernet.search import SupernetSearch, build_supernet  # noqa: E402
from hwnas.supernet.spaces import restrict  # noqa: E402
from hwnas.supernet.transformer import TransformerSupernet  # noqa: E402
from hwnas.train import seed_everything  # noqa: E402
from hwnas.engine.tasks import make_task  # noqa: E402

PROFILES = ["cpu-host-model", "gpu-a100"]


@pytest.fixture(scope="module")
def task():
    return make_task("mlp", "breast_cancer", target=None, seed=0, fixed={})


def run_supernet(task, out: Path, trials: int, **options):
    return search("mlp_tabular", task, PROFILES, trials=trials, out=out, progress=False, population_size=4,
                  strategy="supernet", strategy_options={"supernet_epochs": 3, **options})


def test_supernet_search_records_inherited_trials_and_exports_pareto(task, tmp_path: Path):
    out = tmp_path / "run"
    result = run_supernet(task, out, trials=8)
    assert result.study.study_name.endswith("-supernet") and (out / CHECKPOINT).is_file()
    trials = result.study.trials
    assert len([t for t in trials if t.user_attrs["result"].get("status") == "ok"]) >= 1
    for t in trials:
        if t.user_attrs["result"].get("status") != "ok":
            continue
        assert t.user_attrs["strategy"] == {"name": "supernet", "weights": "inherited"}
        values = t.user_attrs["arch"]["values"]
        assert values["ffn"] == "dense" and "rank" not in values and t.user_attrs["result"]["epochs_run"] == 0
    assert result.pareto
    for row in result.pareto:
        path = out / row["file"]
        assert onnx_accuracy(path, task.data.X_val, task.data.y_val) == pytest.approx(row["val_accuracy"])
        assert onnx_accuracy(path, task.data.X_test, task.data.y_test) == pytest.approx(row["test_accuracy"])
        assert read_metadata(path)["hwnas.arch"]["values"]["depth"] == row["arch"]["values"]["depth"]
        # the exported file carries exactly the inherited weights of that subnet
        net = build_supernet(restrict(load_space("mlp_tabular"), "supernet").space, task)
        net.load_state_dict(torch.load(out / CHECKPOINT, weights_only=True)["model"])
        model = net.extract(net.arch_of(row["arch"]["values"]))
        assert accuracy(model, task.data.X_val, task.data.y_val) == pytest.approx(row["val_accuracy"])
    training = result.study.user_attrs["hwnas.supernet.training"]
    assert training["epochs"] == 3 and training["start_epoch"] == 0


def test_supernet_training_and_subnet_search_resume(task, tmp_path: Path):
    out = tmp_path / "run"
    plan = SupernetSearch(load_space("mlp_tabular"), task, seed=0, epochs=4, options=SupernetOptions())
    seed_everything(0)  # a run killed after 2 of 4 supernet epochs (as SupernetSearch.train starts one)
    net = build_supernet(plan.restriction.space, task)
    killed = train_supernet(net, task.data, epochs=4, lr=plan.lr, batch_size=plan.batch_size, seed=0,
                            checkpoint=out / CHECKPOINT, stop_after=2)
    assert killed["epochs"] == 2 and torch.load(out / CHECKPOINT, weights_only=True)["epoch"] == 2
    first = run_supernet(task, out, trials=4, supernet_epochs=4)
    training = first.study.user_attrs["hwnas.supernet.training"]
    assert training["start_epoch"] == 2 and training["epochs"] == 4 and training["steps"] == 2 * killed["steps"]
    straight = tmp_path / "straight"
    run_supernet(task, straight, trials=1, supernet_epochs=4)
    resumed = torch.load(out / CHECKPOINT, weights_only=True)["model"]
    for name, value in torch.load(straight / CHECKPOINT, weights_only=True)["model"].items():
        assert torch.equal(resumed[name], value), name  # resumed training = uninterrupted training

    before = {t.number: t.values for t in first.study.trials if t.values}
    again = run_supernet(task, out, trials=7, supernet_epochs=4)  # a killed subnet search resumes from the study
    assert again.study.user_attrs["hwnas.supernet.training"]["start_epoch"] == 4  # nothing retrained
    from hwnas.engine.study import evaluated_trials

    assert len(evaluated_trials(again.study)) == 7
    assert {t.number: t.values for t in again.study.trials if t.number in before} == before


def test_finetune_adds_trials_for_pareto_subnets(task, tmp_path: Path):
    result = run_supernet(task, tmp_path, trials=5, finetune_epochs=3)
    tuned = [t for t in result.study.trials if t.user_attrs.get("strategy", {}).get("weights") == "finetuned"]
    assert tuned
    for t in tuned:
        source = result.study.trials[t.user_attrs["strategy"]["finetuned_from"]]
        assert t.params == source.params and t.user_attrs["result"]["epochs_run"] >= 1
        assert t.values[1:] == pytest.approx(source.values[1:])  # same architecture, same costs


def test_supernet_errors_name_the_param(task, tmp_path: Path):
    with pytest.raises(ConfigError, match="param 'weight_bits'"):
        search("mlp_printed", task, ["printed-egfet"], out=tmp_path, strategy="supernet", progress=False)
    odd = space_from_dict({"name": "odd", "model": "mlp", "params": {
        "depth": {"type": "int", "low": 1, "high": 2},
        "width": {"type": "int", "low": 2, "high": 8, "per_layer": "depth"},
        "ffn": {"type": "categorical", "choices": ["lowrank", "blockdiag"]}}})
    with pytest.raises(ConfigError, match="param 'ffn'"):
        search(odd, task, PROFILES, out=tmp_path, strategy="supernet", progress=False)
    with pytest.raises(ConfigError, match="unknown --strategy"):
        search("mlp_tabular", task, PROFILES, out=tmp_path, strategy="oneshot", progress=False)
    with pytest.raises(SystemExit):
        cli_main(["search", "mlp_tabular", "--strategy", "oneshot"])
    assert not (tmp_path / CHECKPOINT).exists()


TINY_LM = {"name": "tiny_lm", "model": "transformer",
           "params": {"depth": {"type": "int", "low": 1, "high": 2}, "d_model": [16, 32], "heads": [2, 4],
                      "expansion": {"type": "categorical", "choices": [1, 2], "per_layer": "depth"},
                      "ffn": {"type": "categorical", "choices": ["dense", "swiglu"], "per_layer": "depth"},
                      "lr": {"type": "float", "low": 2.0e-3, "high": 1.0e-2, "log": True}},
           "fixed": {"seq_len": 16, "batch_size": 16, "steps_per_epoch": 10}}


def test_transformer_supernet_extract_matches_and_searches(tmp_path: Path):
    space = space_from_dict(TINY_LM)
    lm = make_task("transformer", "pydoc_topics", target=None, seed=0, fixed=space.fixed)
    torch.manual_seed(0)
    net = TransformerSupernet.from_space(restrict(space, "supernet").space, lm.data.vocab_size, lm.data.seq_len)
    x = torch.from_numpy(lm.data.eval_windows("val", 4)[0])
    for arch in [net.largest(), net.smallest(), *(net.sample_arch(random.Random(i)) for i in range(4))]:
        model = net.extract(arch)
        model.eval()
        with torch.no_grad():
            assert torch.allclose(model(x), net(x, arch), atol=1e-5), arch
    small = net.extract({"depth": 1, "d_model": 16, "heads": 2, "expansion": [1.0]})
    assert torch.equal(small.blocks[0].ffn.first.weight, net.blocks[0].ff1_w[:16, :16].detach())

    result = search(space, lm, ["gpu-a100"], trials=4, out=tmp_path, progress=False, population_size=4,
                    strategy="supernet", strategy_options={"supernet_epochs": 2})
    ok = [t for t in result.study.trials if t.user_attrs["result"].get("status") == "ok"]
    assert ok and all(t.user_attrs["strategy"]["weights"] == "inherited" for t in ok)
    assert all(1.0 < t.values[0] < lm.data.vocab_size for t in ok)  # perplexity, better than a uniform guess
    assert result.pareto and (tmp_path / result.pareto[0]["file"]).is_file()


def test_fidelity_command_writes_tau(tmp_path: Path, capsys):
    out = tmp_path / "fidelity.json"
    assert cli_main(["supernet-fidelity", "mlp_tabular", "--dataset", "wine", "--subnets", "6",
                     "--supernet-epochs", "3", "--standalone-epochs", "3", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["subnets"] == 6 and r["metric"] == "accuracy" and -1.0 <= r["kendall_tau_loss"] <= 1.0
    assert r["compute"]["standalone"]["sample_passes"] > 0 and r["compute"]["ratio_seconds"] > 0
    assert "Kendall tau" in capsys.readouterr().out


def test_cli_supernet_strategy(tmp_path: Path, capsys):
    out = tmp_path / "cli"
    assert cli_main(["search", "mlp_tabular", "--dataset", "iris", "--profile", "cpu-host-model", "--strategy",
                     "supernet", "--supernet-epochs", "2", "--trials", "3", "--population", "3", "--no-progress",
                     "--out", str(out)]) == 0
    assert (out / "supernet.pt").is_file() and json.loads((out / "pareto.json").read_text())["pareto"]
    assert "Pareto-optimal" in capsys.readouterr().out
    assert cli_main(["search", "mlp_tabular", "--dataset", "iris", "--darts-epochs", "3", "--out", str(out)]) == 2
    assert "--darts-epochs need --strategy" in capsys.readouterr().err


def _checkpoint_of(space: str, path: Path) -> Path:
    """A real checkpoint: one epoch of the supernet of ``space`` on iris."""
    data = load_dataset("iris", seed=0)
    net = MLPSupernet.from_space(load_space(space), data.n_features, data.n_classes, InputStats.of(data.X_train))
    train_supernet(net, data, epochs=1, checkpoint=path)
    return path


@pytest.mark.parametrize("content, what", [
    ("garbage", "not a PyTorch checkpoint that loads with weights_only=True"),
    ("empty", "not a PyTorch checkpoint that loads with weights_only=True"),
    ("truncated", "not a PyTorch checkpoint that loads with weights_only=True"),
    ("other space", "not a checkpoint of this search's supernet (RuntimeError: Unexpected key(s) in state_dict"),
    ("other widths", "not a checkpoint of this search's supernet (RuntimeError: size mismatch for "),
    ("not a dict", "not a checkpoint of this search's supernet (TypeError"),
    ("a folder", "not a file, so not a supernet checkpoint"),
])
def test_an_unusable_supernet_checkpoint_is_one_line_naming_it(tmp_path: Path, capsys, content, what):
    out = tmp_path / "out"
    out.mkdir()
    ckpt = out / CHECKPOINT
    if content == "garbage":
        ckpt.write_bytes(random.Random(0).randbytes(4096))
    elif content == "empty":
        ckpt.write_bytes(b"")
    elif content == "truncated":
        ckpt.write_bytes(_checkpoint_of("mlp_tabular", tmp_path / "real.pt").read_bytes()[:2000])
    elif content == "other space":
        _checkpoint_of("mlp_wide", ckpt)
    elif content == "other widths":
        space = tmp_path / "narrow.yaml"
        space.write_text("model: mlp\nparams:\n  depth: {type: int, low: 1, high: 3}\n"
                         "  width: {type: int, low: 2, high: 8, per_layer: depth}\n")
        _checkpoint_of(str(space), ckpt)
    elif content == "not a dict":
        torch.save([1, 2, 3], ckpt)
    else:
        ckpt.mkdir()
    capsys.readouterr()
    rc = cli_main(["search", "mlp_tabular", "--dataset", "iris", "--profile", "cpu-host-model", "--strategy",
                   "supernet", "--supernet-epochs", "1", "--trials", "1", "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith(f"hwnas: error: {ckpt}: {what}")
    assert err[0].endswith("; delete it (or use another --out) to train the supernet anew")


def test_a_diverging_supernet_ends_the_search_with_exit_3_not_a_traceback(tmp_path: Path, capsys):
    rc = cli_main(["search", "mlp_tabular", "--dataset", "iris", "--profile", "cpu-host-model", "--strategy",
                   "supernet", "--supernet-lr", "1.0e+30", "--supernet-epochs", "2", "--trials", "2", "--no-progress",
                   "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3 and len(err) == 1
    assert err[0].startswith("hwnas: error: the search found no model: --strategy supernet failed: training "
                             "diverged: loss is nan")
