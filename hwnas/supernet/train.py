"""Sandwich-rule supernet training with in-place distillation (BigNAS), checkpointed after every epoch.

Works for any supernet with ``largest() / smallest() / sample_arch(rng) / forward(x, arch) / macs(arch)``:
:class:`~hwnas.supernet.mlp.MLPSupernet` on a tabular :class:`~hwnas.data.Dataset` (an epoch is one pass
over the shuffled training split) and :class:`~hwnas.supernet.transformer.TransformerSupernet` on a
:class:`~hwnas.data.text.TextDataset` (an epoch is ``steps_per_epoch`` batches of random training windows;
``sample_macs`` then counts per token)."""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import numpy as np

from hwnas.data import Dataset
from hwnas.data.text import TextDataset
from hwnas.errors import CandidateError

_COUNTERS = ("steps", "subnet_passes", "sample_passes", "sample_macs", "seconds")



class SubnetSampling:
    """``largest() / smallest() / sample_arch(rng)`` of a supernet, from its arch space ``self.space`` (any object
    with those three methods): the part of the protocol above that every supernet shares."""

    space: Any

    def largest(self) -> dict[str, Any]:
        return self.space.largest()

    def smallest(self) -> dict[str, Any]:
        return self.space.smallest()

    def sample_arch(self, rng: random.Random) -> dict[str, Any]:
        return self.space.sample_arch(rng)

def _save(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a killed save never leaves a truncated checkpoint behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_supernet(supernet: torch.nn.Module, data: Dataset | TextDataset, *, epochs: int, lr: float = 1e-2,
                   batch_size: int = 32, seed: int = 0, n_random: int = 2, checkpoint: str | Path | None = None,
                   threads: int = 1, steps_per_epoch: int = 100, stop_after: int | None = None,
                   distill: float = 1.0) -> dict[str, Any]:
    """Train ``supernet`` in place for ``epochs`` epochs in total (counting epochs of a resumed checkpoint).

    Every step: the largest subnet learns from the hard labels; the smallest and ``n_random`` random subnets
    learn from the largest's detached softmax (KL, in-place distillation); one Adam step on the summed
    gradients. After each epoch ``{"model", "opt", "epoch", "rng", "stats"}`` is saved with ``torch.save`` to
    ``checkpoint``; an existing checkpoint is resumed (``torch.load(weights_only=True)``), so a resumed run
    follows the same batches and subnets as an uninterrupted one with the same seed.

    Returns cumulative ``epochs``, ``steps``, ``seconds``, ``subnet_passes`` (subnet forward passes on a
    batch), ``sample_passes`` (sample × subnet forward passes) and ``sample_macs`` (their multiply-accumulates),
    plus ``start_epoch`` (0, or the epoch resumed from) and the final ``loss`` of the largest subnet.
    ``stop_after`` ends this call after that many epochs (a deliberate interruption, as a kill would).
    ``distill`` weighs the other subnets' loss: ``distill · KL(largest ‖ subnet) + (1 − distill) · CE(labels)``
    (1: BigNAS in-place distillation; 0: every subnet learns from the labels).
    """
    opt = torch.optim.Adam(supernet.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    windows = np.random.default_rng(seed)
    text = isinstance(data, TextDataset)
    stats: dict[str, float] = {k: 0 for k in _COUNTERS}
    start = 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.is_file():
        state = torch.load(path, weights_only=True)
        supernet.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["rng"]["torch"])
        rng.setstate(_tuple(state["rng"]["python"]))
        if "numpy" in state["rng"]:
            windows.bit_generator.state = state["rng"]["numpy"]
        stats.update(state["stats"])
        start = int(state["epoch"])
    if not text:
        xt = torch.as_tensor(data.X_train, dtype=torch.float32)
        yt = torch.as_tensor(data.y_train, dtype=torch.long)

    def batches() -> Any:
        if text:
            for _ in range(steps_per_epoch):
                x, y = data.random_windows(windows, batch_size)
                yield torch.from_numpy(x), torch.from_numpy(y)
        else:
            for idx in torch.randperm(len(xt), generator=gen).split(batch_size):
                yield xt[idx], yt[idx]

    last = epochs if stop_after is None else min(epochs, start + stop_after)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    loss_value = math.nan
    try:
        for epoch in range(start + 1, last + 1):
            began = time.perf_counter()
            supernet.train()
            for x, y in batches():
                opt.zero_grad(set_to_none=True)
                archs = [supernet.largest(), supernet.smallest(), *(supernet.sample_arch(rng) for _ in range(n_random))]
                logits = supernet(x, archs[0])
                logits = logits.reshape(-1, logits.shape[-1])  # [batch (× tokens), classes or vocab]
                y = y.reshape(-1)
                loss = F.cross_entropy(logits, y)
                if not torch.isfinite(loss):
                    raise CandidateError(f"supernet training diverged: loss {loss.item()} at epoch {epoch}")
                loss.backward()
                loss_value = loss.item()
                soft = logits.detach().softmax(1)
                for arch in archs[1:]:
                    student = supernet(x, arch).reshape(soft.shape)
                    loss_s = distill * F.kl_div(student.log_softmax(1), soft, reduction="batchmean")
                    if distill < 1.0:
                        loss_s = loss_s + (1.0 - distill) * F.cross_entropy(student, y)
                    loss_s.backward()
                if text:
                    torch.nn.utils.clip_grad_norm_(supernet.parameters(), 1.0)
                opt.step()
                n = len(y)  # samples (tabular) or tokens (text)
                stats["steps"] += 1
                stats["subnet_passes"] += len(archs)
                stats["sample_passes"] += len(archs) * n
                stats["sample_macs"] += sum(supernet.macs(a) for a in archs) * n
            stats["seconds"] += time.perf_counter() - began
            if path is not None:
                _save(path, {"model": supernet.state_dict(), "opt": opt.state_dict(), "epoch": epoch,
                             "rng": {"torch": gen.get_state(), "python": list(_list(rng.getstate())),
                                     "numpy": windows.bit_generator.state},
                             "stats": dict(stats)})
    finally:
        torch.set_num_threads(previous_threads)
    supernet.eval()
    return {"epochs": max(last, start), "start_epoch": start, **{k: stats[k] for k in _COUNTERS},
            "loss": loss_value}


def _list(value: Any) -> Any:
    """Python RNG state (nested tuples) as nested lists: plain types that ``weights_only`` loading accepts."""
    return [_list(v) for v in value] if isinstance(value, tuple) else value


def _tuple(value: Any) -> Any:
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value
