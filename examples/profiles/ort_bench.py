"""A small stand-alone ONNX Runtime benchmark: the "device binary" of the local-ort-perf example profile.

Usage: python ort_bench.py MODEL.onnx [--batch-size 1] [--threads 1] [--warmup 10] [--runs 100]

Random inputs shaped like the graph inputs (batch dimension set to --batch-size); --warmup untimed runs, then
--runs timed runs. Prints one summary line for a ``command`` profile to parse, e.g.
``median: 0.0312 ms iqr: 0.0021 ms runs: 100 batch: 1 threads: 1``. Needs only numpy and onnxruntime.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
          "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
          "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100)
    return parser.parse_args(argv)


def make_inputs(session, batch_size: int) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Random feeds: fixed dimensions as declared, symbolic ones (the batch) set to ``batch_size``."""
    rng = np.random.default_rng(0)
    feeds = {}
    for arg in session.get_inputs():
        dtype = DTYPES[arg.type]
        shape = [d if isinstance(d, int) and d > 0 else batch_size for d in arg.shape]
        data = rng.standard_normal(shape) if np.issubdtype(dtype, np.floating) else np.zeros(shape)
        feeds[arg.name] = data.astype(dtype)
    return feeds


def benchmark(model: str, batch_size: int, threads: int, warmup: int, runs: int) -> np.ndarray:
    """Per-run latencies in milliseconds."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    feeds = make_inputs(session, batch_size)
    for _ in range(warmup):
        session.run(None, feeds)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        session.run(None, feeds)
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return times


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.batch_size < 1 or args.threads < 1 or args.runs < 1 or args.warmup < 0:
        print("ort_bench: --batch-size, --threads and --runs must be >= 1, --warmup >= 0", file=sys.stderr)
        return 2
    try:
        times = benchmark(args.model, args.batch_size, args.threads, args.warmup, args.runs)
    except Exception as exc:  # onnxruntime raises several types; report any as one line
        print(f"ort_bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    print(f"median: {median:.6f} ms iqr: {q3 - q1:.6f} ms runs: {len(times)} "
          f"batch: {args.batch_size} threads: {args.threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
