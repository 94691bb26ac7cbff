"""Lowering: torch → ONNX (fp32, fixed-point grids, int8 QDQ via onnxruntime), metadata, ONNX inference."""
