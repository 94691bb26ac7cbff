"""Sparsity masks, gradual pruning and real zeros in the exported ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from hwnas.lowering.export import export_onnx
from hwnas.models.ffn import make_ffn
from hwnas.models.sparsity import (
    GradualPruner,
    block_mask,
    global_unstructured_masks,
    nm_mask,
    satisfies_nm,
    sparsity_report,
    unstructured_mask,
)


def test_unstructured_exact_and_by_magnitude() -> None:
    w = torch.randn(64, 32)
    for s in (0.0, 0.3, 0.7, 1.0):
        keep = unstructured_mask(w, s)
        assert int((~keep).sum()) == round(s * w.numel())
        if 0 < s < 1:
            assert w.abs()[keep].min() >= w.abs()[~keep].max()
    with pytest.raises(ValueError):
        unstructured_mask(w, 1.5)


@pytest.mark.parametrize("shape", [(64, 32), (2, 16, 8), (10, 6)])
def test_nm_mask_two_of_four_along_reduction_axis(shape: tuple[int, ...]) -> None:
    w = torch.randn(shape)
    keep = nm_mask(w, 2, 4)
    pruned = w * keep
    assert satisfies_nm(pruned, 2, 4)
    rows = shape[-2]
    full = rows - rows % 4
    groups = keep[..., :full, :].transpose(-2, -1).reshape(*shape[:-2], shape[-1], -1, 4)
    assert bool((groups.sum(-1) == 2).all())  # exactly 2 of every full group of 4
    a = w.abs()[..., :full, :].transpose(-2, -1).reshape(*shape[:-2], shape[-1], -1, 4)
    kept_min = torch.where(groups, a, torch.inf).amin(-1)
    dropped_max = torch.where(groups, -torch.inf, a).amax(-1)
    assert bool((kept_min >= dropped_max).all())  # the 2 largest are kept
    if len(shape) == 2 and rows % 4 == 0:
        assert int((pruned == 0).sum()) == w.numel() // 2
        assert not satisfies_nm(pruned.T.contiguous(), 2, 4)  # the other axis is not 2:4


def test_block_mask_zeroes_whole_low_norm_blocks() -> None:
    w = torch.randn(64, 32)
    keep = block_mask(w, 0.5, block=(8, 4))
    tiles = keep.reshape(8, 8, 8, 4).permute(0, 2, 1, 3).reshape(64, 32)  # [block, entries]
    assert bool((tiles.all(1) | ~tiles.any(1)).all())  # all-or-nothing per block
    assert int((~tiles.all(1)).sum()) == 32 and int((~keep).sum()) == 64 * 32 // 2
    norms = w.abs().reshape(8, 8, 8, 4).permute(0, 2, 1, 3).reshape(64, 32).sum(1)
    assert norms[tiles.all(1)].min() >= norms[~tiles.all(1)].max()


def test_global_threshold_differs_from_per_layer() -> None:
    torch.manual_seed(0)
    big, small = torch.randn(32, 32) * 10, torch.randn(32, 32) * 0.1
    g_big, g_small = global_unstructured_masks([big, small], 0.5)
    assert int((~g_big).sum()) + int((~g_small).sum()) == 1024
    assert int((~g_small).sum()) > 1000  # one threshold: the small-magnitude layer takes the pruning
    for w in (big, small):
        assert int((~unstructured_mask(w, 0.5)).sum()) == 512  # per layer: each at the target


def _train_epoch(
    model: nn.Module, pruner: GradualPruner, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer
) -> None:
    for i in range(0, len(x), 16):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[i : i + 16]), y[i : i + 16]).backward()
        opt.step()
        pruner.apply()


def _onnx_weight_zeros(path: Path) -> int:
    """Zeros in the MatMul weight initializers of an exported model."""
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return sum(int((inits[n.input[1]] == 0).sum()) for n in graph.node if n.op_type == "MatMul")


@pytest.mark.parametrize("kind,block", [("unstructured", None), ("block", (4, 4)), ("2:4", None)])
def test_gradual_pruning_to_real_onnx_zeros(kind: str, block: tuple[int, int] | None, tmp_path: Path) -> None:
    torch.manual_seed(1)
    layers = [make_ffn("dense", 16, 32), make_ffn("glu", 32, 16, hidden=32), make_ffn("dense", 16, 4)]
    model = nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2])
    pruner = GradualPruner(layers, kind, 0.75, start_epoch=1, end_epoch=4, block=block)
    x, y = torch.randn(64, 16), torch.randint(0, 4, (64,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []
    for epoch in range(6):
        _train_epoch(model, pruner, x, y, opt)
        history.append(pruner.step(epoch))
        unit = 16 if kind == "block" else 1  # a 4x4 block is pruned whole
        for r in sparsity_report(layers):  # each weight at the scheduled sparsity, rounded to whole units
            n = int(np.prod(r["shape"])) // unit
            assert r["zeros"] == round(history[-1] * n) * unit
    assert history == sorted(history) and history[0] == 0.0
    assert history[-1] == pytest.approx(0.5 if kind == "2:4" else 0.75)
    report = pruner.finalize()
    if kind == "2:4":
        assert history[1] == 0.5  # all-or-nothing at start_epoch
        assert all(r["nm_2_4"] for r in report)
    torch_zeros = sum(r["zeros"] for r in report)
    assert torch_zeros >= 0.49 * sum(w.numel() for layer in layers for w in layer.weights())
    path = export_onnx(model, 16, tmp_path / "sparse.onnx")
    assert _onnx_weight_zeros(path) == torch_zeros  # the exported initializers hold the zeros


def test_schedule_is_cubic_and_global_scope() -> None:
    layers = [make_ffn("dense", 8, 8), make_ffn("lowrank", 8, 8, rank=4)]
    pruner = GradualPruner(layers, "unstructured", 0.8, start_epoch=2, end_epoch=6, scope="global")
    targets = [pruner.target(e) for e in range(10)]
    assert targets[:3] == [0.0, 0.0, 0.0] and targets[6:] == [0.8] * 4
    assert targets[4] == pytest.approx(0.8 * (1 - 0.5**3))
    assert all(a <= b for a, b in zip(targets, targets[1:]))
    pruner.step(9)
    total = sum(w.numel() for layer in layers for w in layer.weights())
    assert sum(r["zeros"] for r in sparsity_report(layers)) == round(0.8 * total)
    with pytest.raises(ValueError):
        GradualPruner(layers, "block", 0.5, start_epoch=0, end_epoch=1, block=(2, 2), scope="global")
    with pytest.raises(ValueError):
        GradualPruner(layers, "block", 0.5, start_epoch=0, end_epoch=1)
    with pytest.raises(ValueError):
        GradualPruner(layers, "diagonal", 0.5, start_epoch=0, end_epoch=1)


def test_report_fields() -> None:
    layer = make_ffn("blockdiag", 16, 8, blocks=2)
    with torch.no_grad():
        layer.weight.mul_(nm_mask(layer.weight))
    (row,) = sparsity_report([layer])
    assert row["shape"] == [2, 8, 4] and row["zeros"] == 32 and row["sparsity"] == 0.5 and row["nm_2_4"]
    assert row["layer_type"] == "BlockDiagonalFFN"
