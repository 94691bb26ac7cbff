"""The ``tvm`` / ``tvm-rpc`` kinds and ``hwnas export --format tvm``, with real TVM in real worker processes.

Small MLPs (batch 1) and tiny tuning budgets keep this file to a few minutes on 2 cores: most of it is TVM's
one-time start-up in each fresh worker (importing MetaSchedule's tensor intrinsics alone takes ~30 s there).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from hwnas import profiles
from hwnas.errors import ConfigError, ProfileError
from hwnas.lowering.export import export_onnx
from hwnas.models import build_model
from hwnas.models.preprocess import InputStats
from hwnas.profiles.tvm import INSTALL_HINT, tvm_installed
from hwnas.space import ArchConfig

needs_tvm = pytest.mark.skipif(not tvm_installed(), reason=INSTALL_HINT)

HWNAS = [sys.executable, "-m", "hwnas"]
FAST = {"repeats": 30, "warmup": 2}
AARCH64 = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "num-cores": 4}
EM_AARCH64 = 183  # ELF e_machine of AArch64


def mlp(path: Path, widths: list[int]) -> Path:
    x = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    torch.manual_seed(0)
    model = build_model(ArchConfig("mlp", {"depth": len(widths), "width": widths}), n_features=10, n_classes=3,
                        stats=InputStats.of(x))
    return export_onnx(model, 10, path)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tvm-models")
    # a and b share their first layer (10 -> 64, and the input scaling): the same fused workloads
    return {"a": mlp(folder / "a.onnx", [64, 32]), "b": mlp(folder / "b.onnx", [64, 48])}


def cpu_tvm(**params) -> profiles.Profile:
    return profiles.get("cpu-tvm", {**FAST, **params})


def latency(profile: profiles.Profile, path: Path):
    return profile.profile(path)["latency_ms"]


NO_TVM = r'''
import sys
sys.modules["tvm"] = None  # as if apache-tvm were not installed
from hwnas import profiles
from hwnas.lowering import tvm_worker, tvm_export  # noqa: F401  (importable without TVM)
print(profiles.get("cpu-tvm").available())
print(len(profiles.list_profiles()))
'''


def test_hwnas_works_without_tvm_and_says_how_to_install_it():
    proc = subprocess.run([sys.executable, "-c", NO_TVM], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    reason, count = proc.stdout.strip().splitlines()
    assert reason == INSTALL_HINT == "apache-tvm is not installed: pip install 'hwnas[tvm]'"
    assert int(count) >= 10


@needs_tvm
def test_untuned_measurement_is_labelled_and_matches_onnxruntime(models):
    m = latency(cpu_tvm(tuning_trials=0), models["a"])
    d = m.details
    assert m.provenance == "measured" and m.value > 0 and d["repeats"] == 30
    assert d["tuned"] is False and d["label"] == "untuned" and d["database"] is None
    assert d["workloads_total"] >= 3 and len(d["workloads_untuned"]) == d["workloads_total"]
    assert d["workloads_newly_tuned"] == 0 and d["tuning_s"] == 0
    assert d["max_abs_diff_vs_ort"] is not None and d["max_abs_diff_vs_ort"] < 1e-4  # VM output vs ORT's
    assert d["iqr_ms"] >= 0 and d["min_ms"] <= m.value and "llvm" in d["target"]


@needs_tvm
def test_tuning_database_is_shared_across_candidates_and_processes(models, tmp_path):
    db = tmp_path / "shared_db"
    first = cpu_tvm(tuning_trials=4, database=str(db))
    a = latency(first, models["a"]).details
    assert a["tuned"] is True and a["label"] == "tuned" and a["database"] == str(db.resolve())
    assert a["workloads_already_tuned"] == 0 and a["workloads_newly_tuned"] == a["workloads_total"] >= 3
    assert a["tuning_s"] > 0 and a["workloads_failed"] == []
    (records,) = db.glob("llvm-*/database_tuning_record.json")  # one sub-folder per target
    assert records.stat().st_size > 0

    b = latency(first, models["b"]).details  # same worker; shares the first layer's workloads with a
    shared = set(a["workloads"]) & set(b["workloads"])
    assert b["tuned"] is True and b["workloads_already_tuned"] >= 2
    assert b["workloads_newly_tuned"] == b["workloads_total"] - b["workloads_already_tuned"] >= 1
    assert len(shared) >= 1

    again = cpu_tvm(tuning_trials=4, database=str(db), repeats=31)  # a new worker process reads the same DB
    a2 = latency(again, models["a"]).details
    assert a2["workloads_already_tuned"] == a2["workloads_total"] and a2["workloads_newly_tuned"] == 0
    assert a2["tuning_s"] == 0 and a2["tuned"] is True
    again.worker().close()
    first.worker().close()


@needs_tvm
def test_worker_timeout_fails_the_candidate_and_the_next_request_restarts_it(models, tmp_path):
    p = cpu_tvm(tuning_trials=4, database=str(tmp_path / "db"), timeout_s=1)
    with pytest.raises(ProfileError, match=r"timed out after 1 s during 'profile' and was killed"):
        p.profile(models["a"])
    assert p.worker().pid is None  # killed
    p.params["timeout_s"] = 300.0
    p.params["tuning_trials"] = 0
    assert p.profile(models["a"])["latency_ms"].details["label"] == "untuned"  # a fresh worker
    p.worker().close()


@needs_tvm
def test_worker_killed_mid_tuning_is_a_profile_error_naming_the_signal(models, tmp_path):
    p = cpu_tvm(tuning_trials=8, database=str(tmp_path / "db"))
    worker = p.worker()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            p.profile(models["a"])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while worker.pid is None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3)  # importing TVM, extracting and tuning workloads
    os.kill(worker.pid, signal.SIGKILL)
    thread.join(60)
    assert errors and isinstance(errors[0], ProfileError), errors
    assert "died during 'profile': killed by signal SIGKILL" in str(errors[0])


@needs_tvm
def test_a_search_records_a_failed_trial_when_the_tvm_worker_fails_and_goes_on(tmp_path):
    from hwnas.api import search
    from hwnas.engine.records import Status, read_record

    sets = {"cpu-tvm": {"tuning_trials": 8, "timeout_s": 2, **FAST}}  # tuning cannot finish in 2 s
    result = search("mlp_tabular", "iris", ["cpu-tvm"], trials=2, epochs=1, out=tmp_path / "s", progress=False,
                    profile_overrides=sets)
    records = [read_record(t) for t in result.study.trials if read_record(t).status == Status.FAILED]
    assert len(records) == 2 and result.pareto == []
    assert all("profile cpu-tvm failed" in r.reason and "timed out after 2 s" in r.reason
               for r in records), records


@needs_tvm
def test_a_too_small_memory_bound_is_a_profile_error(models):
    p = cpu_tvm(tuning_trials=0, memory_gb=0.25)
    with pytest.raises(ProfileError, match=r"memory|Memory"):
        p.profile(models["a"])
    p.worker().close()


@needs_tvm
def test_unknown_target_is_a_clear_error(models, tmp_path):
    p = cpu_tvm(tuning_trials=0, target={"kind": "no-such-kind"})
    assert "invalid TVM target" in (p.available() or "")
    with pytest.raises(ProfileError, match="invalid TVM target"):
        p.profile(models["a"])
    with pytest.raises(ProfileError, match="target must be a JSON dict"):
        cpu_tvm(target="llvm -mcpu=x")
    p.worker().close()


@needs_tvm
def test_gpu_tvm_is_unavailable_here_and_a_search_with_it_fails_up_front(tmp_path):
    gpu = profiles.get("gpu-tvm")
    reason = gpu.available()
    if reason is None:
        pytest.skip("a CUDA GPU and a CUDA-enabled TVM are here")
    assert "cuda" in reason
    from hwnas.api import search

    with pytest.raises(ConfigError, match=r"profile 'gpu-tvm' cannot run here: .*cuda"):
        search("mlp_tabular", "iris", ["gpu-tvm"], trials=1, epochs=1, out=tmp_path / "g", progress=False)
    assert not (tmp_path / "g" / "study.db").exists()  # nothing was trained or recorded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_tvm
def test_rpc_profile_uploads_and_times_on_a_loopback_rpc_server(models, tmp_path):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1",
                               "--port", str(port), "--port-end", str(port + 1)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "RPC server did not start"
                time.sleep(0.5)
        p = profiles.from_dict({"name": "loopback-board", "kind": "tvm-rpc",
                                "params": {"host": "127.0.0.1", "port": port, **FAST}})
        assert p.available() is None
        m = latency(p, models["a"])
        assert m.value > 0 and m.details["where"] == f"rpc:127.0.0.1:{port}"
        assert m.details["max_abs_diff_vs_ort"] < 1e-4 and m.details["label"] == "untuned"
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the server and the session processes it forked
        out = server.communicate(timeout=30)[0]
    assert "load_module" in out and "candidate.so" in out, out  # the compiled module was uploaded and loaded there
    p.params["repeats"] = 31  # not cached: measuring needs the (now stopped) server
    with pytest.raises(ProfileError):
        p.profile(models["a"])
    p.worker().close()


def _elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF", data[:4]
    return int.from_bytes(data[18:20], "little")


@needs_tvm
def test_cross_compile_for_aarch64_produces_an_aarch64_elf(models, tmp_path):
    from hwnas.lowering.tvm_export import cross_compiler
    from hwnas.lowering.tvm_worker import TVMWorker

    cc = cross_compiler(AARCH64)
    dest = tmp_path / ("a.so" if cc else "a.tar")
    worker = TVMWorker(memory_gb=8, threads=1)
    try:
        answer = worker.request({"op": "export", "onnx": str(models["a"]), "target": AARCH64, "batch_size": 1,
                                 "database": None, "dest": str(dest), "cc": cc}, timeout_s=300)
    finally:
        worker.close()
    assert Path(answer["path"]) == dest and "aarch64" in answer["target"]
    if cc:  # a shared library linked by the cross gcc
        assert _elf_machine(dest.read_bytes()) == EM_AARCH64
    else:  # no cross linker here: the object files TVM emitted for aarch64
        with tarfile.open(dest) as tar:
            objects = [m for m in tar.getmembers() if m.name.endswith(".o")]
            assert objects and all(_elf_machine(tar.extractfile(m).read()) == EM_AARCH64 for m in objects)


RUN_LIBRARY = r'''
import json, sys
import numpy as np, tvm
from tvm import relax
vm = relax.VirtualMachine(tvm.runtime.load_module(sys.argv[1]), tvm.cpu())
x = np.load(sys.argv[2])
print(json.dumps(vm["main"](tvm.runtime.tensor(x, tvm.cpu())).numpy().tolist()))
'''


@needs_tvm
def test_search_with_cpu_tvm_then_export_tvm_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [*HWNAS, "search", "mlp_tabular", "--dataset", "iris", "--profile", "cpu-tvm", "--trials", "2",
         "--epochs", "2", "--out", str(out), "--no-progress", "--profile-set", "cpu-tvm.tuning_trials=2",
         "--profile-set", "cpu-tvm.repeats=30", "--profile-set", "cpu-tvm.warmup=2"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "pareto.json").read_text())
    rows = summary["pareto"]
    assert rows
    details = rows[0]["metrics"]["cpu-tvm"]["latency_ms"]["details"]
    assert details["tuned"] is True and details["database"] == str((out / "tvm_db").resolve())
    (records,) = (out / "tvm_db").glob("*/database_tuning_record.json")  # default: in the study's folder
    assert records.stat().st_size > 0

    proc = subprocess.run([*HWNAS, "export", "--out", str(out), "--format", "tvm"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    onnx_file = out / rows[0]["file"]
    library, loader = onnx_file.with_suffix(".so"), onnx_file.with_name(onnx_file.stem + "_tvm.py")
    assert library.is_file() and loader.is_file() and "TVM:" in proc.stdout

    assert re.search(r"for batch 1; (\d+) of \1 workloads tuned", loader.read_text())  # the study's target and DB
    run = subprocess.run([sys.executable, str(loader)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "output 0: shape (1, 3)" in run.stdout, run.stderr[-2000:]

    x = np.random.default_rng(1).standard_normal((1, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run = subprocess.run([sys.executable, "-c", RUN_LIBRARY, str(library), str(tmp_path / "x.npy")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    expected = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(np.array(json.loads(run.stdout)), expected, atol=1e-4)
