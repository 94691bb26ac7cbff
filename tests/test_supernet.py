"""Weight-entangled MLP supernet: extraction, sandwich training, checkpoint resume, ranking fidelity."""

from __future__ import annotations

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
