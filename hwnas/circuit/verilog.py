"""Verilog of the bespoke circuit of an :class:`~hwnas.circuit.network.IntegerNetwork`, with a self-checking
testbench and its test vectors.

The circuit is combinational, as the published bespoke printed MLPs are: every weight is a constant operand
(zero weights are left out, so they cost nothing), every wire is sized to the exact range its value can take
(:meth:`IntegerNetwork.ranges`), hidden ReLUs drop the sign, and an argmax comparator tree picks the class
(ties to the lower index, as ONNX ArgMax). Constant multiplications are written as ``*`` so that the synthesis
tool chooses their shift-add structure.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hwnas.circuit.network import IntegerNetwork

MODULE = "top"


def _signed_width(lo: int, hi: int) -> int:
    """Bits of the narrowest two's-complement word holding every value in ``[lo, hi]``."""
    width = 1
    while not (-(2 ** (width - 1)) <= lo and hi <= 2 ** (width - 1) - 1):
        width += 1
    return width


def class_bits(n_classes: int) -> int:
    return max(1, math.ceil(math.log2(max(n_classes, 2))))


def _const(value: int) -> str:
    """A signed literal whose magnitude fits as a positive number (``-8'sd128`` would be +128 once extended)."""
    mag = abs(value)
    return f"{'-' if value < 0 else ''}{mag.bit_length() + 1}'sd{mag}"


def circuit_verilog(net: IntegerNetwork, module: str = MODULE) -> str:
    """The circuit as one Verilog-2005 module ``module(inp, out)``: ``inp`` packs the unsigned input codes
    (feature ``i`` in bits ``[b*i + b - 1 : b*i]``), ``out`` is the class index."""
    b = net.input_bits
    lines = [f"// hwnas bespoke circuit {net.digest()[:16]}: {net.n_inputs} inputs x {b} bits, "
             f"layers {[layer.fan_out for layer in net.layers]}, weight bits {list(net.weight_bits)}",
             f"module {module} (inp, out);",
             f"  input [{net.n_inputs * b - 1}:0] inp;",
             f"  output [{class_bits(net.n_classes) - 1}:0] out;"]
    names = []
    for i in range(net.n_inputs):
        lines.append(f"  wire signed [{b}:0] x0_{i} = {{1'b0, inp[{b * i + b - 1}:{b * i}]}};")
        names.append(f"x0_{i}")
    ranges = net.ranges()
    in_lo, in_hi = np.zeros(net.n_inputs, dtype=np.int64), np.full(net.n_inputs, 2**b - 1, dtype=np.int64)
    for li, (layer, (lo, hi)) in enumerate(zip(net.layers, ranges)):
        outs = []
        for k in range(layer.fan_out):
            width = _signed_width(int(lo[k]), int(hi[k]))
            terms = []
            for i, w in enumerate(layer.weight[:, k]):
                if w == 0:
                    continue
                # each product on a wire of its own exact width: a sum wider than its terms would otherwise
                # make every multiplication as wide as the accumulator
                ends = (int(w) * int(in_lo[i]), int(w) * int(in_hi[i]))
                product = f"p{li + 1}_{k}_{i}"
                lines.append(f"  wire signed [{_signed_width(min(ends), max(ends)) - 1}:0] {product} = "
                             f"$signed({names[i]}) * {_const(int(w))};")
                terms.append(product)
            bias = int(layer.bias[k])
            if bias or not terms:
                terms.insert(0, _const(bias))
            acc = f"a{li + 1}_{k}"
            lines.append(f"  wire signed [{width - 1}:0] {acc} = {' + '.join(terms)};")
            if layer.relu:
                h = f"x{li + 1}_{k}"
                lines.append(f"  wire signed [{width - 1}:0] {h} = {acc}[{width - 1}] ? {width}'sd0 : {acc};")
                outs.append(h)
            else:
                outs.append(acc)
        names = outs
        in_lo, in_hi = (np.maximum(lo, 0), np.maximum(hi, 0)) if layer.relu else (lo, hi)
    lo, hi = ranges[-1]
    lines += _argmax(names, net.n_classes, _signed_width(int(lo.min()), int(hi.max())))
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _argmax(scores: list[str], n_classes: int, width: int) -> list[str]:
    """A balanced comparator tree; a left (lower-index) candidate wins ties, so the first maximum wins."""
    cb = class_bits(n_classes)
    if n_classes == 1:
        return ["  assign out = 1'b0;"]
    level = [(s, f"{cb}'d{i}") for i, s in enumerate(scores)]
    lines, depth = [], 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            (va, ia), (vb, ib) = level[j], level[j + 1]
            v, idx, sel = f"m{depth}_{j // 2}", f"i{depth}_{j // 2}", f"c{depth}_{j // 2}"
            lines += [f"  wire {sel} = $signed({va}) >= $signed({vb});",
                      f"  wire signed [{width - 1}:0] {v} = {sel} ? {va} : {vb};",
                      f"  wire [{cb - 1}:0] {idx} = {sel} ? {ia} : {ib};"]
            nxt.append((v, idx))
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    lines.append(f"  assign out = {level[0][1]};")
    return lines


def vectors(net: IntegerNetwork, codes: np.ndarray, expected: np.ndarray) -> str:
    """Test vectors for ``$readmemh``, one hex word per sample: the expected class above the packed inputs."""
    b, width = net.input_bits, net.n_inputs * net.input_bits
    rows = []
    for row, cls in zip(np.asarray(codes, dtype=np.int64), np.asarray(expected, dtype=np.int64)):
        word = int(cls) << width
        for i, c in enumerate(row):
            word |= int(c) << (b * i)
        rows.append(f"{word:x}")
    return "\n".join(rows) + "\n"


def testbench(net: IntegerNetwork, n_vectors: int, vector_file: str, module: str = MODULE) -> str:
    """A self-checking testbench: applies every vector, prints each class (``class <i> <c>``), counts
    mismatches and ends with ``PASS <n>`` or ``FAIL <mismatches> of <n>``."""
    width, cb = net.n_inputs * net.input_bits, class_bits(net.n_classes)
    return f"""`timescale 1ns/1ps
module {module}_tb;
  reg [{width - 1}:0] inp;
  wire [{cb - 1}:0] out;
  reg [{width + cb - 1}:0] vec [0:{n_vectors - 1}];
  integer i, errors;
  {module} dut (.inp(inp), .out(out));
  initial begin
    $readmemh("{vector_file}", vec);
    errors = 0;
    for (i = 0; i < {n_vectors}; i = i + 1) begin
      inp = vec[i][{width - 1}:0];
      #1;
      $display("class %0d %0d", i, out);
      if (out !== vec[i][{width + cb - 1}:{width}]) errors = errors + 1;
    end
    if (errors == 0) $display("PASS %0d", {n_vectors});
    else $display("FAIL %0d of %0d", errors, {n_vectors});
    $finish;
  end
endmodule
"""


def write_circuit(net: IntegerNetwork, codes: np.ndarray, expected: np.ndarray, path: Path) -> list[Path]:
    """Write ``path`` (``trial_N.v``), ``trial_N_tb.v`` and ``trial_N.vectors`` next to it; returns the three."""
    tb, vec = path.with_name(f"{path.stem}_tb.v"), path.with_suffix(".vectors")
    path.write_text(circuit_verilog(net))
    vec.write_text(vectors(net, codes, expected))
    tb.write_text(testbench(net, len(codes), vec.name))
    return [path, tb, vec]
