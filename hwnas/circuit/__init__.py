"""Bespoke circuits of a network: logic synthesis of Verilog onto a standard-cell library (:mod:`.synth`).

Modules here are imported on use; importing the package pulls in nothing (Yosys is an optional extra,
``pip install -e .[synthesis]``)."""
