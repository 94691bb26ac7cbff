"""Bespoke circuits of fixed-point MLPs: the integer network an hwnas ONNX file computes
(:mod:`~hwnas.circuit.network`), its Verilog with a self-checking testbench (:mod:`~hwnas.circuit.verilog`),
and its simulation against the file (:mod:`~hwnas.circuit.simulate`)."""
