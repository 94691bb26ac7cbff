"""FFN structures: training, ONNX export parity, weight order, routed MoE dispatch and MoE costs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from hwnas.lowering.export import export_onnx
from hwnas.lowering.runtime import session
from hwnas.models.ffn import FFN_KINDS, GLU, MixtureOfExperts, make_ffn

D_IN, D_OUT = 12, 8
OPTIONS = {
    "dense": {},
    "lowrank": {"rank": 3},
    "blockdiag": {"blocks": 4},
    "glu": {"expansion": 2},
    "swiglu": {"expansion": 2},
    "geglu": {"hidden": 10},
    "moe": {"hidden": 6, "experts": 4, "top_k": 2},
}


class Classifier(nn.Module):
    """features → FFN → ReLU → linear head (the shape export_onnx expects)."""

    def __init__(self, ffn: nn.Module, n_classes: int = 3) -> None:
        super().__init__()
        self.ffn = ffn
        self.head = make_ffn("dense", D_OUT, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.ffn(x)))


def _ort(path: Path, x: torch.Tensor) -> np.ndarray:
    return session(path).run(None, {"features": x.numpy()})[0]


def _matmul_weights(path: Path) -> list[np.ndarray]:
    """Constant B inputs of the MatMuls, in graph order."""
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return [inits[n.input[1]] for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits]


@pytest.mark.parametrize("kind", FFN_KINDS)
def test_trains_and_exports(kind: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Classifier(make_ffn(kind, D_IN, D_OUT, **OPTIONS[kind]))
    x, y = torch.randn(64, D_IN), torch.randint(0, 3, (64,))
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    model.train()
    for _ in range(8):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    path = export_onnx(model, D_IN, tmp_path / f"{kind}.onnx")
    model.eval()
    for batch in (1, 7):
        xb = torch.randn(batch, D_IN)
        with torch.no_grad():
            ref = model(xb).numpy()
        assert np.abs(_ort(path, xb) - ref).max() <= 1e-4


@pytest.mark.parametrize("kind", FFN_KINDS)
def test_weights_are_the_graph_matmuls_in_order(kind: str, tmp_path: Path) -> None:
    ffn = make_ffn(kind, D_IN, D_OUT, **OPTIONS[kind])
    path = export_onnx(ffn, D_IN, tmp_path / "ffn.onnx")
    exported = _matmul_weights(path)
    assert len(exported) == len(ffn.weights())
    for onnx_w, w in zip(exported, ffn.weights()):
        np.testing.assert_array_equal(onnx_w, w.detach().numpy())


@pytest.mark.parametrize("kind", FFN_KINDS)
def test_leading_dims(kind: str) -> None:
    torch.manual_seed(1)
    ffn = make_ffn(kind, D_IN, D_OUT, **OPTIONS[kind]).eval()
    x = torch.randn(3, 5, D_IN)
    with torch.no_grad():
        y = ffn(x)
        flat = ffn(x.reshape(15, D_IN)).reshape(3, 5, D_OUT)
    assert y.shape == (3, 5, D_OUT)
    torch.testing.assert_close(y, flat)


def test_make_ffn_options() -> None:
    glu = make_ffn("swiglu", 10, 4, expansion=1.5)
    assert isinstance(glu, GLU) and glu.w_gate.shape == (10, 15) and glu.w_down.shape == (15, 4)
    moe = make_ffn("moe", 10, 4, expansion=2, experts=3)
    assert isinstance(moe, MixtureOfExperts) and moe.top_k == 1 and moe.hidden == 20
    for kind, kwargs in [("lowrank", {}), ("blockdiag", {}), ("glu", {}), ("moe", {"hidden": 4}), ("nope", {})]:
        with pytest.raises(ValueError):
            make_ffn(kind, 8, 8, **kwargs)
    with pytest.raises(ValueError):
        make_ffn("moe", 8, 8, hidden=4, experts=2, top_k=3)


def test_moe_routed_graph_matches_dense_routing(tmp_path: Path) -> None:
    torch.manual_seed(2)
    moe = MixtureOfExperts(D_IN, D_OUT, hidden=16, experts=5, top_k=2)
    path = export_onnx(moe, D_IN, tmp_path / "moe.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"TopK", "Softmax", "NonZero", "Gather", "ScatterElements"} <= ops
    for batch in (1, 7, 64):
        x = torch.randn(batch, D_IN)
        with torch.no_grad():
            dense = moe.forward_dense(x).numpy()
            routed = moe.eval()(x).numpy()
        assert np.abs(routed - dense).max() <= 1e-5
        assert np.abs(_ort(path, x) - dense).max() <= 1e-4


def test_moe_unselected_experts_run_on_zero_rows(tmp_path: Path) -> None:
    """ORT profile at batch 1, top_k=1: only the chosen expert's two MatMuls see a row."""
    import onnxruntime as ort

    torch.manual_seed(3)
    experts = 4
    moe = MixtureOfExperts(D_IN, D_OUT, hidden=16, experts=experts, top_k=1)
    path = export_onnx(moe, D_IN, tmp_path / "moe.onnx")
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "profile")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    sess.run(None, {"features": np.random.default_rng(0).normal(size=(1, D_IN)).astype(np.float32)})
    events = json.loads(Path(sess.end_profiling()).read_text())
    rows = [
        e["args"]["output_type_shape"][0]["float"][0]
        for e in events
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
        and e["args"].get("op_name") in ("MatMul", "Gemm", "FusedGemm", "FusedMatMul")
    ]
    assert rows.count(0) == 2 * (experts - 1)  # the unselected experts' MatMuls: empty
    assert rows.count(1) == 1 + 2  # router + the selected expert


def test_moe_trains_router_and_costs() -> None:
    torch.manual_seed(4)
    moe = MixtureOfExperts(8, 4, hidden=16, experts=4, top_k=2)
    moe(torch.randn(32, 8)).square().mean().backward()
    assert moe.router_w.grad is not None and moe.router_w.grad.abs().sum() > 0
    assert sum(moe.w1[e].grad.abs().sum() > 0 for e in range(4)) >= 2
    costs = moe.costs(batch=10)
    expert = 8 * 16 + 16 * 4
    assert costs["active_macs_per_token"] == 8 * 4 + 2 * expert
    assert costs["dense_equivalent_macs"] == 10 * (8 * 4 + 4 * expert)
    assert costs["active_macs"] == 10 * costs["active_macs_per_token"]


@pytest.mark.parametrize("top_k", [1, 2])
def test_op_costs_price_moe_experts_at_their_expected_routed_rows(top_k: int, tmp_path: Path) -> None:
    """The graph's MACs are the active cost (router + top_k experts per row), not every expert on every row."""
    from hwnas.graph import graph_costs, totals

    torch.manual_seed(5)
    moe = MixtureOfExperts(D_IN, D_OUT, hidden=16, experts=4, top_k=top_k)
    path = export_onnx(moe.eval(), D_IN, tmp_path / "moe.onnx")
    for batch in (1, 64):
        c = moe.costs(batch)
        macs = totals(graph_costs(path, batch))["macs"]
        assert macs == pytest.approx(c["active_macs"], rel=1e-6)
        assert macs < c["dense_equivalent_macs"]
    routed = [op for op in graph_costs(path, 64) if op.op_type == "MatMul" and "routed rows" in op.notes]
    assert len(routed) == 2 * 4 and all(op.dims["m"] == 64 * top_k // 4 for op in routed)
    # an expert no row is routed to reads no weights: at batch 1 each expert's are read with p = top_k / experts
    w1 = {op.name: op.weight_bytes for op in graph_costs(path, 1) if "routed rows" in op.notes}
    w64 = {op.name: op.weight_bytes for op in graph_costs(path, 64) if "routed rows" in op.notes}
    assert sum(w1.values()) == pytest.approx(sum(w64.values()) * top_k / 4, rel=1e-3)


def test_nonzero_outside_a_routing_pattern_keeps_every_row(tmp_path: Path) -> None:
    """A NonZero that is no top-k routing mask is costed at its upper bound (every element selected)."""
    from hwnas.graph import graph_costs, totals

    class Select(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(D_IN, D_OUT))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rows = torch.nonzero(x[:, 0] > 0).squeeze(-1)
            return x.index_select(0, rows) @ self.w

    path = export_onnx(Select(), D_IN, tmp_path / "select.onnx")
    assert totals(graph_costs(path, 8))["macs"] == 8 * D_IN * D_OUT
