"""int4 weight-only deployment through ONNX Runtime's ``MatMulNBits`` (com.microsoft contrib op, CPU kernel).

``quantize_int4`` runs onnxruntime's ``MatMulNBitsQuantizer`` (DEFAULT algorithm: round to nearest; QOperator format):
every ``MatMul`` whose second input (B) is a constant initializer of shape [K, N] (or N-D with all leading
dims 1) becomes ``MatMulNBits`` with 4-bit weights, symmetric by default, one fp32 scale per ``block_size``
consecutive rows of each output column (K is zero-padded to a multiple of the block). Activations stay fp32.
Not converted (left fp32): ``Gemm`` (hwnas layers export MatMul + Add, but a ``torch.nn.Linear`` on 2-D input
exports as Gemm), batched MatMuls with a [b, K, N] weight, b > 1 (the block-diagonal layer), and MatMuls
whose weights are computed rather than stored. ``hwnas.models.quant.int4_block_value`` is the same grid
(for training with ``fake_quant_mode(w, "int4")``): weights already on it are converted exactly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import onnx

from hwnas.errors import CandidateError


def _quantizer_module():  # type: ignore[no-untyped-def]
    """onnxruntime's MatMulNBits quantizer module; importing it calls ``logging.basicConfig(level=INFO)``,
    so the root logger is put back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization import matmul_nbits_quantizer

    root.handlers[:] = handlers
    root.setLevel(level)
    return matmul_nbits_quantizer


def quantize_int4(
    src: Path, dst: Path, block_size: int = 32, symmetric: bool = True, accuracy_level: int | None = None,
    nodes: Sequence[str] | None = None,
) -> Path:
    """Write ``src`` with its constant-weight MatMuls (or only the named ``nodes``) as int4 ``MatMulNBits``.

    ``block_size``: a power of two >= 16; ``accuracy_level``: MatMulNBits' compute type (None/0: fp32
    activations; 4: int8 activations, faster on CPU, less exact)."""
    mnq = _quantizer_module()
    level = mnq.logger.level
    mnq.logger.setLevel(logging.WARNING)  # it logs every node at INFO
    try:
        model = onnx.load(str(src))
        # ORT's default algorithm honours only an exclusion list: exclude every MatMul not chosen.
        exclude = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in set(nodes)] if nodes else []
        quantizer = mnq.MatMulNBitsQuantizer(
            model, bits=4, block_size=block_size, is_symmetric=symmetric, accuracy_level=accuracy_level,
            nodes_to_exclude=exclude,
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(dst))
    except Exception as exc:
        raise CandidateError(f"int4 quantisation failed: {type(exc).__name__}: {exc}") from exc
    finally:
        mnq.logger.setLevel(level)
    return dst
