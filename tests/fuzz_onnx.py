"""Fuzz cases: malformed ONNX files, through ``hwnas profiles predict`` and ``hwnas profiles measure``.

Every file goes to every graph-reading profile kind — analytical (``gpu-a100``, ``cpu-host-model``, which
reads the graph ONNX Runtime optimizes, ``mobile-cortex-a76``), ``printed-egfet``, a predictor profile (a
synthetic fitted model, written into the sandbox) — and to ``profiles measure cpu-ort``. Each must price the
file (the valid ones), or refuse it in one line naming it: a file that is no model, a graph no profile can
price, declared shapes too large to touch (nothing may allocate them), missing external data, a folder, a FIFO.
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fuzzing import Case, Sandbox

PREDICT = ("gpu-a100", "cpu-host-model", "mobile-cortex-a76", "printed-egfet", "predictor")
PROFILES = (*PREDICT, "cpu-ort")
#: What prices only MLP-style graphs (the printed circuit) and what runs any graph (ONNX Runtime).
PRINTED, MEASURE = "printed-egfet", "cpu-ort"
FAST_MEASURE = ("--set", "repeats=50", "--set", "warmup=1")


def _vi(name: str, shape: list[object], elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
           inits: list[onnx.TensorProto] = (), opset: int = 17, domains: dict[str, int] | None = None,
           sparse: list[onnx.SparseTensorProto] = ()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits), sparse_initializer=list(sparse))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (domains or {}).items()]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def _weights(rng: random.Random, *shape: int) -> np.ndarray:
    return np.asarray([rng.uniform(-1, 1) for _ in range(int(np.prod(shape)))], dtype=np.float32).reshape(shape)


def _mlp(rng: random.Random, n_in: int = 6, hidden: int = 5, n_out: int = 3) -> onnx.ModelProto:
    """A valid two-layer MLP: Gemm → Relu → MatMul → Add, batch 'N'."""
    inits = [numpy_helper.from_array(_weights(rng, *s), n)
             for n, s in (("w1", (n_in, hidden)), ("b1", (hidden,)), ("w2", (hidden, n_out)), ("b2", (n_out,)))]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["m"]), helper.make_node("Add", ["m", "b2"], ["y"])]
    return _model(nodes, [_vi("x", ["N", n_in])], [_vi("y", ["N", n_out])], inits)


def _unary(op: str, shape: list[object], domain: str = "", **attrs: object) -> onnx.ModelProto:
    node = helper.make_node(op, ["x"], ["y"], domain=domain or None, **attrs)
    return _model([node], [_vi("x", shape)], [_vi("y", shape)], domains={domain: 1} if domain else None)


def _conv(rng: random.Random) -> onnx.ModelProto:
    w = numpy_helper.from_array(_weights(rng, 4, 3, 3, 3), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    return _model([node], [_vi("x", ["N", 3, 8, 8])], [_vi("y", ["N", 4, 8, 8])], [w])


def _matmul_inputs(a: list[object], b: list[object], out: list[object]) -> onnx.ModelProto:
    """``y = x @ w`` with both operands graph inputs (the weight supplied at run time) of the declared shapes."""
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    return _model([node], [_vi("x", a), _vi("w", b)], [_vi("y", out)])


def _declared_initializer(dims: list[int], data: int = 4) -> onnx.ModelProto:
    """A MatMul whose weight initializer declares ``dims`` but holds ``data`` floats."""
    w = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=dims, raw_data=b"\0" * (4 * data))
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    return _model([node], [_vi("x", ["N", dims[0]])], [_vi("y", ["N", dims[-1]])], [w])


def _sparse_weight(dims: list[int]) -> onnx.ModelProto:
    """A MatMul whose weight is a sparse initializer of dense shape ``dims`` with one value."""
    values = numpy_helper.from_array(np.ones(1, np.float32), "w")
    indices = numpy_helper.from_array(np.zeros(1, np.int64), "w_idx")
    sparse = helper.make_sparse_tensor(values, indices, dims)
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    return _model([node], [_vi("x", ["N", dims[0]])], [_vi("y", ["N", dims[-1]])], sparse=[sparse])


def _constant_of_shape(dims: list[int]) -> onnx.ModelProto:
    """``y = x + ConstantOfShape(dims)``: a constant ONNX Runtime would fold by allocating it."""
    shape = numpy_helper.from_array(np.asarray(dims, np.int64), "s")
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["c"],
                              value=numpy_helper.from_array(np.ones(1, np.float32), "v")),
             helper.make_node("Add", ["x", "c"], ["y"])]
    return _model(nodes, [_vi("x", dims)], [_vi("y", dims)], [shape])


def _expand(dims: list[int], constant: bool = False) -> onnx.ModelProto:
    """``y = Expand(x, dims)`` (``constant``: of a stored x, so that ONNX Runtime would fold it, then ``+ z``)."""
    shape = numpy_helper.from_array(np.asarray(dims, np.int64), "s")
    if not constant:
        node = helper.make_node("Expand", ["x", "s"], ["y"])
        return _model([node], [_vi("x", [1, 1])], [_vi("y", dims)], [shape])
    x = numpy_helper.from_array(np.ones((1, 1), np.float32), "x")
    nodes = [helper.make_node("Expand", ["x", "s"], ["e"]), helper.make_node("Add", ["e", "z"], ["y"])]
    return _model(nodes, [_vi("z", [1, 1])], [_vi("y", dims)], [shape, x])


def _external(rng: random.Random, location: str) -> onnx.ModelProto:
    """The valid MLP with its weight ``w1`` stored in the external file ``location``."""
    model = _mlp(rng)
    w1 = model.graph.initializer[0]
    w1.ClearField("float_data")
    w1.ClearField("raw_data")
    w1.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(6 * 5 * 4))):
        w1.external_data.add(key=key, value=value)
    return model


def _chain(op: str, n: int, domain: str = "", between: str = "") -> onnx.ModelProto:
    """``n`` elementwise ``op`` nodes in a row (``domain``: a custom one, which shape inference does not know),
    each followed by a ``between`` op when one is named."""
    ops = [(op, domain), (between, "")] * n if between else [(op, domain)] * n
    nodes = [helper.make_node(o, [f"t{i}"], [f"t{i + 1}"], domain=d or None) for i, (o, d) in enumerate(ops)]
    return _model(nodes, [_vi("t0", ["N", 4])], [_vi(f"t{len(ops)}", ["N", 4])],
                  domains={domain: 1} if domain else None)


def _loop() -> onnx.ModelProto:
    nodes = [helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Identity", ["v"], ["v_out"])]
    body = helper.make_graph(nodes, "body",
                             [_vi("i", [], TensorProto.INT64), _vi("c", [], TensorProto.BOOL), _vi("v", ["N", 4])],
                             [_vi("c_out", [], TensorProto.BOOL), _vi("v_out", ["N", 4])])
    trip = numpy_helper.from_array(np.asarray(3, np.int64), "trip")
    cond = numpy_helper.from_array(np.asarray(True), "cond")
    node = helper.make_node("Loop", ["trip", "cond", "x"], ["y"], body=body)
    return _model([node], [_vi("x", ["N", 4])], [_vi("y", ["N", 4])], [trip, cond])


def _mutated(model: onnx.ModelProto, change) -> onnx.ModelProto:  # noqa: ANN001 - a function of the copy
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    change(copy)
    return copy


def _set_dim(model: onnx.ModelProto, value: int | str) -> None:
    dim = model.graph.input[0].type.tensor_type.shape.dim[1]
    dim.Clear()
    if isinstance(value, str):
        dim.dim_param = value
    else:
        dim.dim_value = value


def cases(sandbox: Sandbox, rng: random.Random) -> list[Case]:
    mlp = _mlp(rng)
    good = mlp.SerializeToString()
    predictor = _predictor_profile(sandbox)
    files: dict[str, tuple[bytes | str, dict[str, str]]] = {}  # name → (content or "dir"/"fifo"/"huge", expect)

    def add(name: str, content: bytes | str | onnx.ModelProto, **expect: str) -> None:
        """``expect``: profile → "ok" where a profile prices the file (default: every profile refuses it)."""
        files[name] = (content.SerializeToString() if isinstance(content, onnx.ModelProto) else content, expect)

    everyone = {p: "ok" for p in PROFILES}
    # --- not a model at all
    add("empty", b"")
    add("truncated", good[: rng.randrange(10, len(good) - 10)])
    add("random-bytes", rng.randbytes(2048))
    add("text", b"this is not an onnx model\n" * 20)
    add("tensor-proto", numpy_helper.from_array(np.ones((3, 3), np.float32), "t").SerializeToString())
    add("graph-proto", mlp.graph.SerializeToString())
    add("no-graph", helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString())
    add("no-nodes", _model([], [_vi("x", ["N", 4])], [_vi("x", ["N", 4])]))
    add("folder", "dir")
    add("fifo", "fifo")
    add("huge-sparse-file", "huge")
    # --- models no profile prices (ONNX Runtime may still run some)
    add("conv", _conv(rng), **{MEASURE: "ok"})
    add("unknown-op", _unary("FrobnicateX", ["N", 4]))
    add("custom-domain-op", _unary("MyOp", ["N", 4], domain="com.example"))
    add("opset-999", _mutated(mlp, lambda m: setattr(m.opset_import[0], "version", 999)))
    add("opset-1", _mutated(mlp, lambda m: setattr(m.opset_import[0], "version", 1)))
    add("ir-version-999", _mutated(mlp, lambda m: setattr(m, "ir_version", 999)))
    add("dangling-input", _mutated(mlp, lambda m: m.graph.node[2].input.__setitem__(0, "nowhere")))
    add("cycle", _mutated(mlp, lambda m: m.graph.node[0].input.__setitem__(0, "y")))
    add("duplicate-output", _mutated(mlp, lambda m: m.graph.node[1].output.__setitem__(0, "h")))
    add("symbolic-feature-dim", _mutated(mlp, lambda m: _set_dim(m, "F")))
    add("negative-dim", _mutated(mlp, lambda m: _set_dim(m, -6)))
    add("shape-mismatch", _mutated(mlp, lambda m: _set_dim(m, 7)))
    add("loop", _loop(), **{MEASURE: "ok"})  # control flow: ONNX Runtime runs it, nothing prices it
    identity = helper.make_node("Identity", ["x"], ["y"])
    add("string-input", _model([identity], [_vi("x", ["N", 4], TensorProto.STRING)],
                               [_vi("y", ["N", 4], TensorProto.STRING)]),  # a valid graph of strings: priced as a copy
        **{p: "ok" for p in PREDICT if p != PRINTED})
    add("initializer-data-mismatch", _declared_initializer([4, 3], data=5))
    add("metadata-garbage", _mutated(mlp, lambda m: helper.set_model_props(m, {"hwnas.fixed_point": "{not json"})),
        **{p: "ok" for p in PROFILES if p != PRINTED})
    # --- declared shapes too large to touch: pricing must not allocate them (measuring would have to); large but
    # sane ones (1e10 elements) are priced, and measuring them is refused
    large = {p: "ok" for p in PREDICT if p != PRINTED}
    add("matmul-declared-1e9", _matmul_inputs([10**9, 10**9], [10**9, 10], [10**9, 10]))
    add("matmul-declared-2e31", _matmul_inputs([1, 2**31], [2**31, 2**31], [1, 2**31]))
    add("matmul-declared-1e18", _matmul_inputs([10**18, 10**18], [10**18, 10**18], [10**18, 10**18]))
    add("initializer-declared-1e9", _declared_initializer([10**9, 10**9]))
    add("sparse-initializer-1e9", _sparse_weight([10**9, 10**9]))
    add("constant-of-shape-1e5", _constant_of_shape([10**5, 10**5]))
    add("expand-1e6", _expand([10**6, 10**6]), **large)
    add("expand-constant-1e5", _expand([10**5, 10**5], constant=True))
    add("custom-chain-400", _chain("MyOp", 400, domain="com.example"))
    add("custom-alternating-600", _chain("MyOp", 600, domain="com.example", between="Relu"))
    # --- external data
    add("external-missing", _external(rng, "weights.bin"))
    add("external-escaping", _external(rng, "../../../../etc/passwd"))
    add("external-absolute", _external(rng, "/etc/hostname"))
    add("external-fifo", _external(rng, "fifo.bin"))
    add("external-short", _external(rng, "short.bin"))
    # --- valid models: priced by every profile
    add("valid-sparse-weight", _sparse_weight([6, 3]), **everyone)
    add("valid-mlp", mlp, **everyone)
    add("valid-mlp-batch-16", mlp, **everyone)
    add("valid-static-batch", _mutated(mlp, lambda m: setattr(m.graph.input[0].type.tensor_type.shape.dim[0],
                                                                "dim_value", 2)), **everyone)

    out = []
    for name, (content, expect) in files.items():
        folder = sandbox.inputs / "onnx" / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "model.onnx"
        if content == "dir":
            path.mkdir()
        elif content == "fifo":
            os.mkfifo(path)
        elif content == "huge":
            with open(path, "wb") as f:
                f.truncate(3 << 30)
        else:
            path.write_bytes(content)  # type: ignore[arg-type]
        if name == "external-fifo":
            os.mkfifo(folder / "fifo.bin")
        if name == "external-short":
            (folder / "short.bin").write_bytes(b"\0" * 8)
        for profile in PROFILES:
            target = str(predictor) if profile == "predictor" else profile
            argv = (["profiles", "measure", target, str(path), *FAST_MEASURE] if profile == MEASURE
                    else ["profiles", "predict", target, str(path)])
            if name == "valid-mlp-batch-16" and profile != PRINTED:  # a printed circuit has no batch
                argv += ["--set", "batch_size=16"]
            out.append(Case(f"onnx-{name}-{profile}", argv, expect=expect.get(profile, "error"), names=(str(path),)))
    # Approximation makes a Conv network priceable by the graph-costing kinds (not by a printed circuit).
    conv = sandbox.inputs / "onnx" / "conv" / "model.onnx"
    for profile in ("gpu-a100", "cpu-host-model", "mobile-cortex-a76", "predictor", PRINTED):
        target = str(predictor) if profile == "predictor" else profile
        out.append(Case(f"onnx-conv-approximate-{profile}",
                        ["profiles", "predict", target, str(conv), "--set", "unknown_ops=approximate"],
                        expect="error" if profile == PRINTED else "ok", names=(str(conv),)))
    return out


def _predictor_profile(sandbox: Sandbox) -> str:
    """A predictor profile whose fitted model (a few positive coefficients) lives in the sandbox."""
    from hwnas.profiles.predictor import FORMAT, VERSION, feature_names

    names = feature_names()
    model = {"format": FORMAT, "version": VERSION, "family": "linear", "intercept_ms": 0.01,
             "coef": {n: 1e-6 for n in names}, "validation": {"mape_pct": 10.0}, "training": {}}
    sandbox.file("onnx/predictor/model.json", json.dumps(model))
    return str(sandbox.file("onnx/predictor/predictor.yaml",
                            "name: fuzz-predictor\nkind: predictor\nparams: {model_file: model.json}\n"))
