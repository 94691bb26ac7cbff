"""Every precision × FFN structure a space can produce lowers to a graph ONNX Runtime runs, next to any other.

Conversions interact at layer boundaries (an int4 ``MatMulNBits`` feeding an fp16 layer gave a graph ORT
refused), and through each other (an int8 conversion adds the types that the fp16 converter needs), so the MLP
checks lower every ordered pair of precisions on its own in a two-layer model, and walk chains of layers in
which every ordered precision pair meets every FFN structure on either side of the boundary; the Transformer
check puts every precision of every FFN structure into a block between attention layers.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.lowering import FeatureExporter, TokenExporter, lower, read_metadata
from hwnas.lowering.runtime import onnx_logits, predict_scores
from hwnas.models import build_model
from hwnas.models.ffn import FFN_KINDS, make_ffn
from hwnas.models.preprocess import InputStats
from hwnas.models.transformer import build_transformer
from hwnas.precision import PRECISIONS
from hwnas.space import ArchConfig

WIDTH = 8
#: What ONNX Runtime cannot deploy: MatMulNBits takes 2-D weights, a block-diagonal layer is one batched MatMul.
UNDEPLOYABLE = {("int4", "blockdiag")}
LAYERS = [(p, f) for p in PRECISIONS for f in FFN_KINDS if (p, f) not in UNDEPLOYABLE]


def boundaries() -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Layer pairs in which every ordered precision pair meets every FFN structure on each side."""
    pairs = list(itertools.product(PRECISIONS, PRECISIONS))
    out = []
    for k in range(len(pairs) * len(FFN_KINDS)):
        (pa, pb), n = pairs[k // len(FFN_KINDS)], len(FFN_KINDS)
        a, b = (pa, FFN_KINDS[k % n]), (pb, FFN_KINDS[(k + k // n) % n])
        if a in LAYERS and b in LAYERS:
            out.append((a, b))
    return out


def chains(length: int = 60) -> list[list[tuple[str, str]]]:
    """A walk through every boundary (jumping where none is left from a layer), cut into overlapping chains."""
    out = defaultdict(list)
    for a, b in boundaries():
        out[a].append(b)
    walk, left = [next(iter(out))], sum(map(len, out.values()))
    while left:
        if out[walk[-1]]:
            walk.append(out[walk[-1]].pop())
            left -= 1
        else:
            walk.append(next(a for a, bs in out.items() if bs))
    return [walk[i:i + length + 1] for i in range(0, len(walk) - 1, length)]


def mlp_values(layers: list[tuple[str, str]]) -> dict:
    kinds = [f for _, f in layers]
    per = lambda value, where: [value if f in where else None for f in kinds]  # noqa: E731
    return {"depth": len(layers), "width": [WIDTH] * len(layers), "quant": [p for p, _ in layers], "ffn": kinds,
            "rank": per(2, ("lowrank",)), "blocks": per(2, ("blockdiag",)),
            "expansion": per(1, ("glu", "swiglu", "geglu", "moe")), "experts": per(2, ("moe",)),
            "top_k": per(1, ("moe",))}


def lower_and_run(layers: list[tuple[str, str]], seed: int, path: Path) -> None:
    x = np.random.default_rng(seed).standard_normal((256, WIDTH)).astype(np.float32)
    torch.manual_seed(seed)
    model = build_model(ArchConfig("mlp", mlp_values(layers)), n_features=WIDTH, n_classes=3, stats=InputStats.of(x))
    lowered = lower(model, path, FeatureExporter(WIDTH, x))  # verify() checks every layer's stated precision
    scores = predict_scores(lowered.path, x[:32])  # ONNX Runtime loads and runs it
    assert scores.shape == (32, 3) and np.isfinite(scores).all()
    stated = [w["precision"] for w in read_metadata(lowered.path)["hwnas.layers"]]
    assert set(stated) == {p for p, _ in layers} | {"fp32"} and stated[-1] == "fp32"  # the head stays fp32


def pair(index: int) -> list[tuple[str, str]]:
    """The ``index``-th ordered precision pair, its FFN structures rotating so that each meets every other."""
    pa, pb = list(itertools.product(PRECISIONS, PRECISIONS))[index]
    n = len(FFN_KINDS)
    a = next((pa, FFN_KINDS[(index + j) % n]) for j in range(n) if (pa, FFN_KINDS[(index + j) % n]) in LAYERS)
    b = next((pb, FFN_KINDS[(index + 3 + j) % n]) for j in range(n) if (pb, FFN_KINDS[(index + 3 + j) % n]) in LAYERS)
    return [a, b]


@pytest.mark.parametrize("index", range(len(PRECISIONS) ** 2))
def test_every_precision_pair_lowers_and_runs_on_its_own(index, tmp_path: Path):
    lower_and_run(pair(index), index, tmp_path / "pair.onnx")


def test_the_chains_cover_every_boundary():
    walked = {(a, b) for chain in chains() for a, b in zip(chain, chain[1:])}
    assert set(boundaries()) <= walked
    assert {p for p, _ in LAYERS} == set(PRECISIONS) and {f for _, f in LAYERS} == set(FFN_KINDS)
    pairs = [pair(i) for i in range(len(PRECISIONS) ** 2)]
    assert {(a[0], b[0]) for a, b in pairs} == set(itertools.product(PRECISIONS, PRECISIONS))
    assert {a[1] for a, _ in pairs} == {b[1] for _, b in pairs} == set(FFN_KINDS)


@pytest.mark.parametrize("index", range(len(chains())))
def test_every_mlp_layer_boundary_lowers_and_runs_in_a_chain(index, tmp_path: Path):
    lower_and_run(chains()[index], index, tmp_path / "chain.onnx")


@pytest.mark.parametrize("ffn", ["dense", "lowrank", "blockdiag", "swiglu", "geglu", "moe"])
def test_every_precision_of_a_transformer_ffn_lowers_and_runs(ffn, tmp_path: Path):
    quants = [p for p in PRECISIONS if (p, ffn) not in UNDEPLOYABLE]
    config = {"depth": len(quants), "d_model": WIDTH, "heads": 2, "ffn": ffn, "quant": quants, "expansion": 2,
              "rank": 2, "blocks": 2, "experts": 2, "top_k": 1}
    torch.manual_seed(0)
    model = build_transformer(config, vocab_size=11, seq_len=4)
    tokens = np.random.default_rng(0).integers(0, 11, (16, 4))
    lowered = lower(model, tmp_path / f"{ffn}.onnx", TokenExporter(4, 11, tokens))
    logits = onnx_logits(lowered.path, tokens)
    assert logits.shape == (16, 4, 11) and np.isfinite(logits).all()


def test_an_undeployable_combination_is_refused_when_built():
    with pytest.raises(ValueError, match="blockdiag.*int4.*MatMulNBits"):
        make_ffn("blockdiag", 8, 8, blocks=2, bits="int4")
