"""Lowering: torch → ONNX (fp32, fixed-point grids, int8 QDQ via onnxruntime), metadata, ONNX inference; ONNX →
Apache TVM (Relax, MetaSchedule) in a worker process (``tvm``, ``tvm_worker``, ``tvm_export``)."""
