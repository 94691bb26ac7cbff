"""The precisions a weight can be deployed in: the vocabulary models train in, lowering converts the graph to
and profiles demand. Torch-free, so that every stage can share it without depending on the others.

* ``fp32``: as trained;
* ``fp16``: fp16 compute with Casts around the node (``lowering.fp16``);
* ``int8``: static QDQ (``lowering.int8``);
* ``int4``: weight-only ``MatMulNBits`` (``lowering.int4``);
* ``ternary`` / ``binary``: fp32 MatMuls whose constants hold only ``{-s, 0, +s}`` / ``{-s, +s}``;
* k-bit fixed point (an int ``k``): fp32 MatMuls whose constants lie on a signed k-bit grid, what a bespoke
  (printed) circuit hard-wires; :class:`FixedPoint` is the deployment such a circuit requires.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Precision modes of a weight (besides k-bit fixed point, given as an int).
PRECISIONS = ("fp32", "fp16", "int8", "int4", "ternary", "binary")
#: Modes that need a graph conversion; the others are values baked into fp32 constants.
CONVERTED = ("int8", "int4", "fp16")
#: The bit-widths (lowest, highest) of a fixed-point weight (signed: a sign bit and at least one more) and input.
WEIGHT_BITS = (2, 32)
INPUT_BITS = (1, 32)


@dataclass(frozen=True)
class FixedPoint:
    """Bit-widths a fixed-point deployment requires: weights as signed ``weight_bits`` integers, inputs
    quantised to ``input_bits``. A profile that costs such a circuit returns one from ``fixed_point()``, and
    candidates are then trained and evaluated with these bit-widths (the accuracy is the deployed one)."""

    weight_bits: int
    input_bits: int


@dataclass(frozen=True)
class WeightPrecision:
    """How one weight is deployed, as the model states it and the lowered graph must hold it (the
    ``hwnas.layers`` metadata): its initializer name, precision mode, fraction of exact zeros, 2:4 pattern."""

    weight: str
    precision: str
    zeros: float
    nm_2_4: bool

    def to_dict(self) -> dict[str, object]:
        return {"weight": self.weight, "precision": self.precision, "zeros": self.zeros, "nm_2_4": self.nm_2_4}
