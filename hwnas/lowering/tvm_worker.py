"""The TVM worker: a separate process that does all TVM work, and the client hwnas uses to talk to it.

A TVM crash (segfault, abort), hang or out-of-memory takes down only the worker: the client turns it into a
:class:`~hwnas.errors.ProfileError` that names the reason (signal or exit code, timeout, stderr tail), and the
next request starts a fresh worker. The worker lives across requests, so TVM's start-up (importing TVM and
MetaSchedule's tensor intrinsics takes tens of seconds on a small host) is paid once per search, not per
candidate.

Protocol: one JSON object per line. The client writes ``{"op": ..., ...}`` to the worker's stdin; the worker
answers ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}`` on its original stdout (TVM's own output is
sent to stderr, which goes to a log file the client reads the tail of). The address space is bounded with
``RLIMIT_AS`` (``--memory-gb``), set before TVM is imported.

Run standalone: ``python -m hwnas.lowering.tvm_worker --memory-gb 8`` (reads requests from stdin).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from hwnas.errors import ProfileError

_TAIL_CHARS = 1500
_OOM_HINTS = ("MemoryError", "bad_alloc", "Cannot allocate memory", "out of memory", "mmap", "Resource temporarily")


# ---- the worker side --------------------------------------------------------------------------------------

_MEMORY_GB: float | None = None  # this worker's address-space bound


def _memory_hint() -> str:
    return (f" — out of memory? this worker's address space is bounded to memory_gb={_MEMORY_GB:g} GiB "
            "(TVM needs a few GiB to load, tune and compile)") if _MEMORY_GB else ""


def _import_tvm() -> Any:
    """``tvm``, or an error that says why it did not load (under a small memory bound, it cannot map its library)."""
    try:
        import tvm
        from tvm import relax  # noqa: F401  (loads the compiler, not only the runtime)
    except Exception as exc:
        raise RuntimeError(f"TVM failed to load: {type(exc).__name__}: {exc}{_memory_hint()}") from None
    return tvm


def _device(tvm: Any, target: Any) -> Any:
    kind = target.kind.name
    return tvm.cpu(0) if kind in ("llvm", "c") else tvm.device(kind, 0)


def _connect(spec: dict[str, Any]) -> Any:
    from tvm import rpc

    timeout = int(spec.get("session_timeout_s") or 0)
    if spec.get("tracker"):
        host, _, port = str(spec["tracker"]).rpartition(":")
        return rpc.connect_tracker(host, int(port)).request(spec["key"], session_timeout=timeout)
    return rpc.connect(spec["host"], int(spec["port"]), key=spec.get("key") or "", session_timeout=timeout)


def op_probe(req: dict[str, Any]) -> dict[str, Any]:
    """TVM's version and whether the target's device is usable here (``reason`` when it is not)."""
    tvm = _import_tvm()

    from hwnas.lowering import tvm as lower

    target = lower.make_target(req["target"])
    kind = target.kind.name
    reason = None
    if req.get("rpc"):
        pass  # the device is remote: connecting is the check
    elif kind not in ("llvm", "c"):
        if not tvm.runtime.enabled(kind):
            reason = f"this TVM build has no {kind} runtime (tvm.runtime.enabled({kind!r}) is False: no driver or not built with it)"
        elif not tvm.device(kind, 0).exist:
            reason = f"no {kind} device here (tvm.device({kind!r}, 0).exist is False)"
    if req.get("rpc") and reason is None:
        try:
            remote = _connect(req["rpc"])
            if not remote.device(req["rpc"].get("device", "cpu"), 0).exist:
                reason = f"the RPC server has no {req['rpc'].get('device', 'cpu')} device"
        except Exception as exc:
            where = req["rpc"].get("tracker") or f"{req['rpc']['host']}:{req['rpc']['port']}"
            reason = f"cannot reach the TVM RPC server at {where}: {lower._last_line(exc)}"
    return {"tvm": tvm.__version__, "reason": reason, "target": str(target)}


def op_profile(req: dict[str, Any]) -> dict[str, Any]:
    """Import, tune (workloads the database lacks), compile, check against ONNX Runtime, and time one file."""
    tvm = _import_tvm()
    from tvm import relax

    from hwnas.lowering import tvm as lower

    target = lower.make_target(req["target"])
    mod, specs = lower.import_onnx(req["onnx"], int(req["batch_size"]))
    trials = int(req["tuning_trials"])
    database = req.get("database") if trials > 0 else None
    tuning = lower.tune(mod, target, database, trials, seed=int(req.get("seed", 0)))
    start = time.perf_counter()
    executable = lower.compile_module(mod, target, database)
    compile_s = time.perf_counter() - start
    if req.get("rpc"):
        remote = _connect(req["rpc"])
        with tempfile.TemporaryDirectory(prefix="hwnas-tvm-rpc-") as tmp:
            lib = lower.export(executable, Path(tmp) / "candidate.so", req["rpc"].get("cc") or None)
            remote.upload(str(lib))
            module = remote.load_module(lib.name)
        dev = remote.device(req["rpc"].get("device", "cpu"), 0)
        vm = relax.VirtualMachine(module, dev)
        where = f"rpc:{req['rpc'].get('tracker') or req['rpc']['host'] + ':' + str(req['rpc']['port'])}"
    else:
        dev = _device(tvm, target)
        vm = relax.VirtualMachine(executable, dev)
        where = "local"
    inputs = lower.random_inputs(specs)
    try:
        outputs = lower.run_once(vm, dev, inputs)
        diff = lower.ort_max_abs_diff(req["onnx"], specs, inputs, outputs) if req.get("check_outputs") else None
        times = lower.time_vm(vm, dev, inputs, warmup=int(req["warmup"]), repeats=int(req["repeats"]),
                              number=int(req["number"]))
    except lower.LoweringError:
        raise
    except Exception as exc:
        raise lower.LoweringError(f"running the compiled module failed: {type(exc).__name__}: {lower._last_line(exc)}") from None
    return {"times_ms": times.tolist(), "max_abs_diff_vs_ort": diff, "compile_s": round(compile_s, 3),
            "tvm": tvm.__version__, "target": str(target), "where": where, **tuning}


def op_export(req: dict[str, Any]) -> dict[str, Any]:
    """Compile one file (tuned schedules from ``database`` where it has them) and write it to ``dest``."""
    _import_tvm()
    from hwnas.lowering import tvm as lower

    target = lower.make_target(req["target"])
    mod, specs = lower.import_onnx(req["onnx"], int(req["batch_size"]))
    database = req.get("database")
    counts = lower.tune(mod, target, database, 0) if database else None
    executable = lower.compile_module(mod, target, database)
    path = lower.export(executable, req["dest"], req.get("cc") or None)
    inputs = [{"name": n, "shape": s, "dtype": d} for n, s, d in specs]
    return {"path": str(path), "inputs": inputs, "target": str(target), "workloads": counts}


OPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "probe": op_probe, "profile": op_profile, "export": op_export,
}


def serve(memory_gb: float | None) -> None:
    """Answer requests from stdin until it closes (see the module docstring)."""
    global _MEMORY_GB
    _MEMORY_GB = memory_gb
    if memory_gb:
        import resource

        limit = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever TVM prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            answer = {"ok": True, **OPS[req["op"]](req)}
        except Exception as exc:  # the request failed; the worker stays usable
            text = str(exc) if type(exc).__name__ in ("LoweringError", "RuntimeError") else f"{type(exc).__name__}: {exc}"
            answer = {"ok": False, "error": text + (_memory_hint() if isinstance(exc, MemoryError) else "")}
        replies.write(json.dumps(answer) + "\n")
        replies.flush()


# ---- the client side --------------------------------------------------------------------------------------


class _Dead(Exception):
    pass


class TVMWorker:
    """One worker process, started on the first request and restarted after it crashes or times out."""

    def __init__(self, *, memory_gb: float | None, threads: int, label: str = "TVM worker") -> None:
        self.memory_gb = memory_gb
        self.threads = threads
        self.label = label
        self.proc: subprocess.Popen[bytes] | None = None
        fd, name = tempfile.mkstemp(prefix="hwnas-tvm-worker-", suffix=".log")
        os.close(fd)
        self._log = Path(name)  # the worker's stderr, for the tail quoted in errors; removed at exit
        atexit.register(self._shutdown)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def _start(self) -> subprocess.Popen[bytes]:
        import hwnas

        root = str(Path(hwnas.__file__).resolve().parents[1])
        env = {**os.environ, "TVM_NUM_THREADS": str(self.threads),
               "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        argv = [sys.executable, "-m", "hwnas.lowering.tvm_worker"]
        if self.memory_gb:
            argv += ["--memory-gb", str(self.memory_gb)]
        with open(self._log, "ab") as log:
            return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                                    start_new_session=True)

    def request(self, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request and wait for its answer; a ProfileError when the worker fails or fails to answer."""
        if self.proc is None or self.proc.poll() is not None:
            self._log.write_bytes(b"")
            self.proc = self._start()
        else:
            os.truncate(self._log, 0)
        proc = self.proc
        try:
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(payload) + "\n").encode())
            proc.stdin.flush()
            line = self._read_line(proc, timeout_s)
        except TimeoutError:
            self.close()
            raise ProfileError(f"{self.label} timed out after {timeout_s:g} s during '{payload['op']}' and was "
                               f"killed (raise timeout_s); stderr tail: {self._tail()}") from None
        except (_Dead, BrokenPipeError):
            death, tail = self._death(proc), self._tail()
            self.close()
            raise ProfileError(f"{self.label} died during '{payload['op']}': {death}; stderr tail: {tail}") from None
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise ProfileError(answer["error"])
        return answer

    @staticmethod
    def _read_line(proc: subprocess.Popen[bytes], timeout_s: float) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        buf = b""
        while not buf.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise _Dead
                buf += chunk
        return buf

    def _death(self, proc: subprocess.Popen[bytes]) -> str:
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.close()
            return "it closed its output and did not exit (killed)"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:  # a signal number this platform has no name for
                name = str(-code)
            text = f"killed by signal {name}"
        else:
            text = f"exited with code {code}"
        if self.memory_gb and any(h in self._tail() for h in _OOM_HINTS):
            text += f" — out of memory (memory_gb={self.memory_gb:g} bounds its address space)"
        return text

    def _tail(self) -> str:
        try:
            text = self._log.read_text(errors="replace")
        except OSError:
            return "(no stderr)"
        text = " | ".join(line for line in text.strip().splitlines() if line.strip())
        return text[-_TAIL_CHARS:] if text else "(no stderr)"

    def close(self) -> None:
        """Stop the worker (and anything it started) now."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream:
                try:
                    stream.close()
                except OSError:
                    pass


    def _shutdown(self) -> None:
        self.close()
        self._log.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="hwnas TVM worker: JSON requests on stdin, answers on stdout")
    ap.add_argument("--memory-gb", type=float, default=None, help="bound the address space (RLIMIT_AS)")
    serve(ap.parse_args(argv).memory_gb)


if __name__ == "__main__":
    main()
