"""Precision modes: ternary/binary STE, per-channel int8/int4 views, fp16 and int4 ONNX lowering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper
from torch import nn

from hwnas.lowering.export import export_onnx
from hwnas.lowering.fp16 import to_fp16
from hwnas.lowering.int4 import quantize_int4
from hwnas.lowering.runtime import session
from hwnas.models.ffn import make_ffn
from hwnas.models.quant import (
    binary,
    binary_value,
    fake_quant,
    fake_quant_mode,
    int4_block_value,
    quantize_mode,
    ternary,
    ternary_value,
)


def _ort(path: Path, x: torch.Tensor) -> np.ndarray:
    return session(path).run(None, {"features": x.numpy()})[0]


def _matmul_weights(path: Path) -> list[np.ndarray]:
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return [inits[n.input[1]] for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def test_ternary_values_and_threshold() -> None:
    w = torch.randn(40, 30)
    t = ternary_value(w)
    a = w.abs()
    above = a > 0.7 * a.mean()
    scale = a[above].mean()
    assert set(torch.unique(t).tolist()) == {-scale.item(), 0.0, scale.item()}
    assert bool((t[~above] == 0).all()) and bool((torch.sign(t[above]) == torch.sign(w[above])).all())


def test_binary_values() -> None:
    w = torch.randn(40, 30)
    b = binary_value(w)
    s = w.abs().mean().item()
    assert set(torch.unique(b).tolist()) == {-s, s}
    assert bool((torch.sign(b) == torch.sign(w)).all())


@pytest.mark.parametrize("fn", [ternary, binary, lambda w: fake_quant_mode(w, "int4")])
def test_straight_through_gradient(fn) -> None:  # type: ignore[no-untyped-def]
    w = torch.randn(16, 8, requires_grad=True)
    g = torch.randn(16, 8)
    (fn(w) * g).sum().backward()
    torch.testing.assert_close(w.grad, g)


def test_modes() -> None:
    w = torch.randn(64, 24)
    assert fake_quant_mode(w, "fp32") is w and fake_quant_mode(w, None) is w
    torch.testing.assert_close(fake_quant_mode(w, 4), fake_quant(w, 4))
    assert torch.equal(fake_quant_mode(w, "fp16"), w.half().float())
    q8 = quantize_mode(w, "int8")
    steps = w.abs().amax(0) / 127  # one scale per output column
    ints = q8 / steps
    torch.testing.assert_close(ints, ints.round(), atol=1e-4, rtol=0)
    torch.testing.assert_close(q8.abs().amax(0), w.abs().amax(0))
    assert (q8 - w).abs().max() <= steps.max() / 2 + 1e-6
    q4 = int4_block_value(w)  # per column, per 32 rows: at most 16 levels
    for col in range(3):
        for start in (0, 32):
            assert len(torch.unique(q4[start : start + 32, col])) <= 16
    with pytest.raises(ValueError):
        quantize_mode(w, "int3")


def test_ternary_training_and_mixed_precision_export(tmp_path: Path) -> None:
    """Per-layer modes train with STE; baked weights reach the ONNX initializers as ternary/binary/fixed-point."""
    torch.manual_seed(0)
    layers = [make_ffn("swiglu", 10, 12, expansion=2, bits="ternary"), make_ffn("dense", 12, 8, bits="binary"),
              make_ffn("dense", 8, 3, bits=4)]
    model = nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        trained = model(x)
    for layer in layers:
        layer.bake()
    with torch.no_grad():
        torch.testing.assert_close(model(x), trained)  # baking does not change the function
    path = export_onnx(model, 10, tmp_path / "mixed.onnx")
    weights = _matmul_weights(path)
    assert len(weights) == 5
    for w in weights[:3]:  # ternary GLU: {-s, 0, +s}
        values = np.unique(w)
        assert len(values) == 3 and values[1] == 0 and np.isclose(values[0], -values[2])
    assert len(np.unique(weights[3])) == 2  # binary
    assert len(np.unique(weights[4])) <= 15  # 4-bit fixed point
    assert np.abs(_ort(path, x) - trained.numpy()).max() <= 1e-4


def _exported(tmp_path: Path, n_in: int = 40) -> tuple[nn.Module, Path]:
    torch.manual_seed(1)
    model = nn.Sequential(
        make_ffn("geglu", n_in, 32, hidden=48), nn.ReLU(), make_ffn("blockdiag", 32, 32, blocks=4), nn.ReLU(),
        make_ffn("dense", 32, 5),
    ).eval()
    with torch.no_grad():
        model[0].w_up[:8].zero_()  # exact zeros must survive the conversions
    return model, export_onnx(model, n_in, tmp_path / "fp32.onnx")


def test_int4_matmulnbits(tmp_path: Path) -> None:
    model, src = _exported(tmp_path)
    dst = quantize_int4(src, tmp_path / "int4.onnx", block_size=32)
    graph = onnx.load(str(dst)).graph
    nbits = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert len(nbits) == 4 and all(n.domain == "com.microsoft" for n in nbits)  # gate, up, down, head
    assert [n.op_type for n in graph.node].count("MatMul") == 1  # the batched block-diagonal MatMul stays fp32
    x = torch.randn(32, 40)
    with torch.no_grad():
        ref = model(x).numpy()
        for layer in (model[0], model[4]):  # the same grid in torch: ORT's int4 is reproduced exactly
            for w in layer.weights():
                w.copy_(int4_block_value(w, 32))
        ref4 = model(x).numpy()
    out = _ort(dst, x)
    assert np.abs(out - ref4).max() <= 1e-4
    assert 0 < np.abs(out - ref).max() <= 0.15 * np.abs(ref).max()


def test_fp16(tmp_path: Path) -> None:
    model, src = _exported(tmp_path)
    dst = to_fp16(src, tmp_path / "fp16.onnx")
    m = onnx.load(str(dst))
    floats = [t for t in m.graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
    assert floats and all(t.data_type == TensorProto.FLOAT16 for t in floats)
    assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in [*m.graph.input, *m.graph.output])
    assert sum(int((numpy_helper.to_array(t) == 0).sum()) for t in floats) >= 8 * 48
    x = torch.randn(32, 40)
    with torch.no_grad():
        ref = model(x).numpy()
    out = _ort(dst, x)
    assert out.dtype == np.float32
    assert 0 < np.abs(out - ref).max() <= 1e-2
