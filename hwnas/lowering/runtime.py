"""Run exported models with ONNX Runtime: quality is always measured on the exported (deployed) file."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from hwnas.lowering.metadata import INPUT_NAME, TOKENS_INPUT


def session(path: Path | str, threads: int = 1):  # type: ignore[no-untyped-def]
    """A CPU inference session with a fixed thread count, reused while the file is unchanged."""
    stat = os.stat(path)
    return _session(str(path), stat.st_mtime_ns, stat.st_size, threads)


@functools.lru_cache(maxsize=2)
def _session(path: str, mtime_ns: int, size: int, threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def predict_scores(path: Path | str, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Class scores of the ONNX classifier at ``path`` for raw features ``x``."""
    sess = session(path)
    x = np.ascontiguousarray(x, dtype=np.float32)
    parts = [sess.run(None, {INPUT_NAME: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def onnx_accuracy(path: Path | str, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict_scores(path, x).argmax(1) == y).mean())


def onnx_logits(path: Path | str, tokens: np.ndarray, batch: int = 256, threads: int = 1) -> np.ndarray:
    """Logits of the token-input model at ``path`` for token ids ``tokens`` [n, seq_len] (onnxruntime, CPU)."""
    sess = session(path, threads)
    tokens = np.ascontiguousarray(tokens, dtype=np.int64)
    parts = [sess.run(None, {TOKENS_INPUT: tokens[i : i + batch]})[0] for i in range(0, len(tokens), batch)]
    return np.concatenate(parts)
