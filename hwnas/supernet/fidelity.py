"""Ranking fidelity of a supernet, measured: inherited-weight vs stand-alone accuracy of sampled subnets."""

from __future__ import annotations

import math
import random
import time
from typing import Any

import torch
import torch.nn.functional as F
from scipy import stats as st

from hwnas.data import Dataset, load_dataset
from hwnas.models.mlp import build_mlp
from hwnas.models.preprocess import InputStats
from hwnas.space import Categorical, SearchSpace, load_space
from hwnas.supernet.mlp import Arch, MLPSupernet, arch_space
from hwnas.supernet.train import train_supernet
from hwnas.train import TrainSettings, accuracy, seed_everything, train


def _distinct_archs(supernet: MLPSupernet, n: int, rng: random.Random) -> list[Arch]:
    seen: dict[tuple[int, ...], Arch] = {}
    for _ in range(100 * n):
        arch = supernet.sample_arch(rng)
        seen.setdefault(tuple(arch["width"]), arch)
        if len(seen) == n:
            return list(seen.values())
    raise ValueError(f"the space has fewer than {n} distinct subnets")


def _val_loss(model: torch.nn.Module, data: Dataset) -> float:
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(data.X_val, dtype=torch.float32))
        return float(F.cross_entropy(logits, torch.as_tensor(data.y_val, dtype=torch.long)))


def _correlations(a: list[float], b: list[float]) -> tuple[float, float]:
    tau = st.kendalltau(a, b).statistic
    rho = st.spearmanr(a, b).statistic
    return float(tau), float(rho)  # NaN when one list is constant


def _activation(space: SearchSpace) -> str:
    fixed = space.fixed.get("activation")
    if isinstance(fixed, str):
        return fixed
    param = space.params.get("activation")
    return str(param.choices[0]) if isinstance(param, Categorical) else "relu"


def ranking_fidelity(space: str | SearchSpace, dataset: str | Dataset, *, subnets: int = 30,
                     supernet_epochs: int = 40, standalone_epochs: int = 40, seed: int = 0, lr: float = 1e-2,
                     batch_size: int | None = None, n_random: int = 2, threads: int = 1,
                     activation: str | None = None) -> dict[str, Any]:
    """Train one supernet; sample ``subnets`` distinct subnets; score each with inherited weights (val accuracy
    of :meth:`MLPSupernet.extract`) and trained stand-alone from scratch with :func:`hwnas.train.train`
    (as the search trains a candidate: Adam, early stopping, seed ``seed + i``); report Kendall τ and
    Spearman ρ between the two (on val accuracy, and on val loss, which has fewer ties) and the compute of
    both approaches (wall seconds; sample × subnet forward passes; their multiply-accumulates).

    Both approaches use the same ``lr`` and ``batch_size`` (default: the space's fixed batch_size, else 32)
    so the ranking compares architectures, not learning rates. ``activation`` defaults to the space's fixed
    activation or the first choice of its ``activation`` parameter (a supernet has one activation).
    """
    space = load_space(space) if isinstance(space, str) else space
    data = load_dataset(dataset, seed=seed) if isinstance(dataset, str) else dataset
    batch_size = int(batch_size or space.fixed.get("batch_size", 32))
    activation = activation or _activation(space)
    stats = InputStats.of(data.X_train)
    seed_everything(seed)
    supernet = MLPSupernet.from_space(arch_space(space), data.n_features, data.n_classes, stats, activation)
    sup = train_supernet(supernet, data, epochs=supernet_epochs, lr=lr, batch_size=batch_size, seed=seed,
                         n_random=n_random, threads=threads)
    archs = _distinct_archs(supernet, subnets, random.Random(seed + 1))
    n_val, n_train = len(data.y_val), len(data.y_train)

    began = time.perf_counter()
    inherited, inherited_loss = [], []
    for arch in archs:
        model = supernet.extract(arch)
        inherited.append(accuracy(model, data.X_val, data.y_val))
        inherited_loss.append(_val_loss(model, data))
    eval_seconds = time.perf_counter() - began
    eval_passes = n_val * len(archs)
    eval_macs = n_val * sum(supernet.macs(a) for a in archs)

    standalone, standalone_loss, epochs_run = [], [], []
    sa_seconds = sa_passes = sa_macs = 0.0
    for i, arch in enumerate(archs):
        seed_everything(seed + i)
        net = build_mlp(supernet.config(arch), n_features=data.n_features, n_classes=data.n_classes, stats=stats)
        settings = TrainSettings(epochs=standalone_epochs, lr=lr, batch_size=batch_size, seed=seed + i,
                                 threads=threads)
        result = train(net, data.X_train, data.y_train, data.X_val, data.y_val, settings)
        standalone.append(result.val_accuracy)
        standalone_loss.append(_val_loss(net, data))
        epochs_run.append(result.epochs_run)
        sa_seconds += result.seconds
        passes = result.epochs_run * (n_train + n_val)  # training batches + the per-epoch validation pass
        sa_passes += passes
        sa_macs += passes * supernet.macs(arch)

    tau, rho = _correlations(inherited, standalone)
    tau_loss, rho_loss = _correlations(inherited_loss, standalone_loss)
    sup_seconds = sup["seconds"] + eval_seconds
    sup_passes = sup["sample_passes"] + eval_passes
    sup_macs = sup["sample_macs"] + eval_macs
    return {
        "space": space.name, "dataset": data.name, "subnets": len(archs), "seed": seed,
        "settings": {"supernet_epochs": supernet_epochs, "standalone_epochs": standalone_epochs, "lr": lr,
                     "batch_size": batch_size, "n_random": n_random, "activation": activation,
                     "patience": TrainSettings.patience},
        "kendall_tau": tau, "spearman_rho": rho, "kendall_tau_loss": tau_loss, "spearman_rho_loss": rho_loss,
        "archs": archs, "inherited_accuracy": inherited, "standalone_accuracy": standalone,
        "inherited_loss": inherited_loss, "standalone_loss": standalone_loss, "standalone_epochs_run": epochs_run,
        "supernet_largest_accuracy": accuracy(supernet.extract(supernet.largest()), data.X_val, data.y_val),
        "compute": {
            "supernet": {"seconds": sup_seconds, "sample_passes": sup_passes, "sample_macs": sup_macs,
                         "train_seconds": sup["seconds"], "eval_seconds": eval_seconds},
            "standalone": {"seconds": sa_seconds, "sample_passes": sa_passes, "sample_macs": sa_macs},
            "ratio_seconds": sa_seconds / sup_seconds if sup_seconds > 0 else math.inf,
            "ratio_sample_passes": sa_passes / sup_passes if sup_passes > 0 else math.inf,
            "ratio_sample_macs": sa_macs / sup_macs if sup_macs > 0 else math.inf,
        },
    }
