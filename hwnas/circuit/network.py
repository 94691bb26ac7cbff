"""The integer network of a fixed-point MLP's ONNX file: the one description the Verilog, its test vectors and
the exact reference evaluation are made from.

hwnas exports a fixed-point MLP in its exact integer form (:mod:`hwnas.models.fixed`, metadata
``hwnas.fixed_point.integer``): input codes, then integer-valued weights and biases in float64, ReLU, argmax.
:func:`integer_network` reads that file back as integers and refuses anything else in one line, so a circuit
is only ever generated for a file whose arithmetic it reproduces exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from hwnas.errors import CircuitError, HwnasError
from hwnas.graph import linear_layers
from hwnas.lowering.metadata import read_metadata

#: Accumulators must stay exact in the float64 ONNX file (and in numpy int64 here).
MAX_MAGNITUDE = 2**52


@dataclass(frozen=True)
class IntegerLayer:
    """``acc = x @ weight + bias`` in integers (weight ``[fan_in, fan_out]``), then ReLU when ``relu``."""

    weight: np.ndarray
    bias: np.ndarray
    relu: bool

    @property
    def fan_in(self) -> int:
        return int(self.weight.shape[0])

    @property
    def fan_out(self) -> int:
        return int(self.weight.shape[1])


@dataclass(frozen=True)
class IntegerNetwork:
    """Unsigned ``input_bits`` codes in, ``layers`` in order, class = first index of the largest score."""

    input_bits: int
    weight_bits: tuple[int, ...]
    layers: tuple[IntegerLayer, ...]

    @property
    def n_inputs(self) -> int:
        return self.layers[0].fan_in

    @property
    def n_classes(self) -> int:
        return self.layers[-1].fan_out

    def scores(self, codes: np.ndarray) -> np.ndarray:
        """The output accumulators for a batch of input codes ``[n, n_inputs]`` (exact int64)."""
        h = np.asarray(codes, dtype=np.int64)
        for layer in self.layers:
            h = h @ layer.weight + layer.bias
            if layer.relu:
                h = np.maximum(h, 0)
        return h

    def predict(self, codes: np.ndarray) -> np.ndarray:
        """The class of each row (ties go to the lowest index, as ONNX ArgMax and the circuit do)."""
        return np.argmax(self.scores(codes), axis=1)

    def ranges(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer, the exact lowest and highest accumulator of each neuron over every possible input."""
        lo = np.zeros(self.n_inputs, dtype=np.int64)
        hi = np.full(self.n_inputs, 2**self.input_bits - 1, dtype=np.int64)
        out = []
        for layer in self.layers:
            w = layer.weight
            acc_lo = lo @ np.where(w > 0, w, 0) + hi @ np.where(w < 0, w, 0) + layer.bias
            acc_hi = hi @ np.where(w > 0, w, 0) + lo @ np.where(w < 0, w, 0) + layer.bias
            out.append((acc_lo, acc_hi))
            lo, hi = (np.maximum(acc_lo, 0), np.maximum(acc_hi, 0)) if layer.relu else (acc_lo, acc_hi)
        return out

    def digest(self) -> str:
        """SHA-256 of the arithmetic (equal networks give equal circuits)."""
        h = hashlib.sha256(f"{self.input_bits};{self.weight_bits}".encode())
        for layer in self.layers:
            for a in (layer.weight, layer.bias):
                h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes() + str(a.shape).encode())
            h.update(b"r" if layer.relu else b"-")
        return h.hexdigest()


def _integers(values: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise CircuitError(f"{what} is not integer-valued: the file is not in the exact integer form")
    if np.any(np.abs(values) >= MAX_MAGNITUDE):
        raise CircuitError(f"{what} exceeds 2**52 in magnitude: no exact circuit")
    return values.astype(np.int64)


def integer_network(path: Path | str) -> IntegerNetwork:
    """The integer network of an hwnas fixed-point MLP file; :class:`~hwnas.errors.CircuitError` otherwise."""
    path = Path(path)
    try:
        meta = read_metadata(path)
        model = onnx.load(str(path))
        layers = linear_layers(model)
    except HwnasError as exc:
        raise CircuitError(f"{path.name}: {exc}") from exc
    except Exception as exc:  # onnx refusing the file
        raise CircuitError(f"{path.name}: not a readable ONNX file ({type(exc).__name__})") from exc
    fixed = meta.get("hwnas.fixed_point")
    if not isinstance(fixed, dict) or not fixed.get("integer"):
        raise CircuitError(
            f"{path.name}: not a fixed-point MLP in exact integer form (metadata hwnas.fixed_point.integer); only "
            "MLPs searched with a printed profile (input_bits and weight_bits set, ReLU, dense/low-rank/"
            "block-diagonal layers) have a circuit")
    if not layers or any(op in {n.op_type for n in model.graph.node} for op in ("MatMulNBits", "QuantizeLinear")):
        raise CircuitError(f"{path.name}: no plain fixed-point linear layers")
    out = []
    for i, layer in enumerate(layers):
        weight = _integers(layer.dense(), f"{path.name}: layer {i} weight")
        bias = np.zeros(layer.fan_out) if layer.bias is None else layer.bias
        last = i == len(layers) - 1
        if layer.activation not in ((None, "relu") if not last else (None,)):
            raise CircuitError(f"{path.name}: layer {i} activation {layer.activation!r} has no exact circuit")
        if out and out[-1].fan_out != weight.shape[0]:
            raise CircuitError(f"{path.name}: layer {i} reads {weight.shape[0]} values, the previous one gives "
                               f"{out[-1].fan_out}: not a chain of layers")
        out.append(IntegerLayer(weight, _integers(np.asarray(bias), f"{path.name}: layer {i} bias"),
                                layer.activation == "relu"))
    net = IntegerNetwork(int(fixed["input_bits"]), tuple(int(b) for b in fixed["weight_bits"]), tuple(out))
    for i, (lo, hi) in enumerate(net.ranges()):
        if max(int(np.abs(lo).max()), int(np.abs(hi).max())) >= MAX_MAGNITUDE:
            raise CircuitError(f"{path.name}: layer {i} accumulators exceed 2**52: no exact circuit")
    return net


def input_codes(path: Path | str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the ONNX file on raw features ``x``: (the input codes its front end computes, its output scores).

    The codes are read from the file itself (the output of its rounding node), so the circuit is fed exactly
    what the deployed model's sensor interface produces."""
    import onnxruntime as ort

    model = onnx.load(str(path))
    rounds = [n for n in model.graph.node if n.op_type == "Round"]
    if not rounds:
        raise CircuitError(f"{Path(path).name}: no input rounding node: inputs are not fixed-point codes")
    codes_name = rounds[0].output[0]
    model.graph.output.append(onnx.helper.make_tensor_value_info(codes_name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.asarray(x, dtype=np.float32)}
    scores, codes = session.run([model.graph.output[0].name, codes_name], feed)
    return codes.astype(np.int64), scores
