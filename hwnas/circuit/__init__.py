"""Bespoke circuits of fixed-point MLPs: the integer network an hwnas ONNX file computes
(:mod:`~hwnas.circuit.network`), its Verilog with a self-checking testbench (:mod:`~hwnas.circuit.verilog`),
its simulation against the file (:mod:`~hwnas.circuit.simulate`) and its logic synthesis onto a standard-cell
library (:mod:`~hwnas.circuit.synth`).

Modules here are imported on use; importing the package pulls in nothing (Yosys is an optional extra,
``pip install -e .[synthesis]``)."""
