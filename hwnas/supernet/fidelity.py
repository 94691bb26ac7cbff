"""Ranking fidelity of a supernet, measured: inherited-weight vs stand-alone quality of sampled subnets."""

from __future__ import annotations

import json
import math
import random
import time
from typing import Any

import torch
import torch.nn.functional as F
from scipy import stats as st

from hwnas.data import Dataset
from hwnas.data.text import TextDataset
from hwnas.space import SearchSpace, load_space
from hwnas.supernet.search import build_supernet, default_distill
from hwnas.supernet.spaces import restrict
from hwnas.supernet.train import train_supernet
from hwnas.train import TrainSettings, accuracy, seed_everything
from hwnas.train.lm import evaluate_lm
from hwnas.engine.tasks import LanguageModelTask, Task, make_task


def _distinct_archs(supernet: torch.nn.Module, n: int, rng: random.Random) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(100 * n):
        arch = supernet.sample_arch(rng)
        seen.setdefault(json.dumps(arch, sort_keys=True), arch)
        if len(seen) == n:
            return list(seen.values())
    raise ValueError(f"the space has fewer than {n} distinct subnets")


def _scores(model: torch.nn.Module, task: Task) -> tuple[float, float]:
    """(quality, validation loss) of a torch model: accuracy or perplexity, and mean cross-entropy."""
    if isinstance(task, LanguageModelTask):
        loss, ppl = evaluate_lm(model, task.data, "val")
        return ppl, loss
    d = task.data
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(d.X_val, dtype=torch.float32))
        loss = float(F.cross_entropy(logits, torch.as_tensor(d.y_val, dtype=torch.long)))
    return accuracy(model, d.X_val, d.y_val), loss


def _correlations(a: list[float], b: list[float]) -> tuple[float, float]:
    tau = st.kendalltau(a, b).statistic
    rho = st.spearmanr(a, b).statistic
    return float(tau), float(rho)  # NaN when one list is constant


def _eval_samples(task: Task) -> int:
    """Samples (tabular) or tokens (text) of one validation pass."""
    if isinstance(task, LanguageModelTask):
        x, _ = task.data.eval_windows("val")
        return int(x.size)
    return len(task.data.y_val)


def ranking_fidelity(space: str | SearchSpace, dataset: str | Dataset | TextDataset | Task, *, subnets: int = 30,
                     supernet_epochs: int = 40, standalone_epochs: int = 40, seed: int = 0,
                     lr: float | None = None, batch_size: int | None = None, n_random: int = 2,
                     threads: int = 1, distill: float | None = None) -> dict[str, Any]:
    """Train one supernet; sample ``subnets`` distinct subnets; score each with inherited weights and trained
    stand-alone from scratch as the search trains a candidate (the task's trainer: Adam, early stopping,
    seed ``seed + i``); report Kendall τ and Spearman ρ between the two (on the task's quality — accuracy,
    or perplexity for a language model — and on validation loss, which has fewer ties) and the compute of
    both approaches (wall seconds; samples — tokens for text — × subnet forward passes; their MACs).

    Both use the same ``lr`` and ``batch_size`` (default: the space's fixed or middle value, else 1e-2 for
    MLPs / 3e-3 for Transformers and 32), so the ranking compares architectures, not learning rates. Space
    parameters a supernet does not share are pinned or dropped as for ``--strategy supernet``.
    """
    space = load_space(space) if isinstance(space, str) else space
    r = restrict(space, "supernet")
    sp = r.space
    task = make_task(sp.model, dataset, target=None, seed=seed, fixed=sp.fixed)
    lr = float(lr or r.hyper.get("lr", 1e-2 if sp.model == "mlp" else 3e-3))
    batch_size = int(batch_size or r.hyper.get("batch_size", 32))
    steps = int(getattr(task, "steps_per_epoch", 0))
    distill = default_distill(sp.model) if distill is None else distill
    seed_everything(seed)
    supernet = build_supernet(sp, task)
    sup = train_supernet(supernet, task.data, epochs=supernet_epochs, lr=lr, batch_size=batch_size, seed=seed,
                         n_random=n_random, threads=threads, steps_per_epoch=steps or 100, distill=distill)
    archs = _distinct_archs(supernet, subnets, random.Random(seed + 1))
    n_eval = _eval_samples(task)

    began = time.perf_counter()
    inherited, inherited_loss = [], []
    for arch in archs:
        q, loss = _scores(supernet.extract(arch), task)
        inherited.append(q)
        inherited_loss.append(loss)
    eval_seconds = time.perf_counter() - began
    eval_passes = n_eval * len(archs)
    eval_macs = n_eval * sum(supernet.macs(a) for a in archs)

    standalone, standalone_loss, epochs_run = [], [], []
    sa_seconds = sa_passes = sa_macs = 0.0
    for i, arch in enumerate(archs):
        seed_everything(seed + i)
        net = task.build(supernet.config(arch), None)
        settings = TrainSettings(epochs=standalone_epochs, lr=lr, batch_size=batch_size, seed=seed + i,
                                 threads=threads)
        t0 = time.perf_counter()
        _, run = task.train(net, settings)
        sa_seconds += time.perf_counter() - t0
        q, loss = _scores(net, task)
        standalone.append(q)
        standalone_loss.append(loss)
        epochs_run.append(run)
        train_samples = run * steps * batch_size * task.data.seq_len if steps else run * len(task.data.y_train)
        passes = train_samples + run * n_eval  # training batches + the per-epoch validation pass
        sa_passes += passes
        sa_macs += passes * supernet.macs(arch)

    tau, rho = _correlations(inherited, standalone)
    tau_loss, rho_loss = _correlations(inherited_loss, standalone_loss)
    sup_seconds = sup["seconds"] + eval_seconds
    sup_passes = sup["sample_passes"] + eval_passes
    sup_macs = sup["sample_macs"] + eval_macs
    metric = task.metric
    largest = _scores(supernet.extract(supernet.largest()), task)[0]
    return {
        "space": space.name, "dataset": task.name, "subnets": len(archs), "seed": seed, "metric": metric,
        "settings": {"supernet_epochs": supernet_epochs, "standalone_epochs": standalone_epochs, "lr": lr,
                     "batch_size": batch_size, "n_random": n_random, "distill": distill, "steps_per_epoch": steps or None,
                     "patience": TrainSettings.patience, "space": r.describe()},
        "kendall_tau": tau, "spearman_rho": rho, "kendall_tau_loss": tau_loss, "spearman_rho_loss": rho_loss,
        "archs": archs, f"inherited_{metric}": inherited, f"standalone_{metric}": standalone,
        "inherited_loss": inherited_loss, "standalone_loss": standalone_loss, "standalone_epochs_run": epochs_run,
        f"supernet_largest_{metric}": largest,
        "compute": {
            "supernet": {"seconds": sup_seconds, "sample_passes": sup_passes, "sample_macs": sup_macs,
                         "train_seconds": sup["seconds"], "eval_seconds": eval_seconds},
            "standalone": {"seconds": sa_seconds, "sample_passes": sa_passes, "sample_macs": sa_macs},
            "ratio_seconds": sa_seconds / sup_seconds if sup_seconds > 0 else math.inf,
            "ratio_sample_passes": sa_passes / sup_passes if sup_passes > 0 else math.inf,
            "ratio_sample_macs": sa_macs / sup_macs if sup_macs > 0 else math.inf,
        },
    }
