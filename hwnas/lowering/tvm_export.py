"""``hwnas export --format tvm``: each Pareto model compiled with TVM into a library, plus a loader example.

For ``models/trial_NNNNN.onnx`` it writes ``models/trial_NNNNN.so`` (the compiled Relax VM executable, tuned
schedules from the study's tuning database where it has them) and ``models/trial_NNNNN_tvm.py`` (loads the
library with ``tvm.runtime.load_module`` + ``relax.VirtualMachine`` and runs it on random input). A target for
another architecture (``"mtriple": "aarch64-linux-gnu"``) is linked with that triple's cross compiler
(``aarch64-linux-gnu-gcc``) when it is on PATH, or with ``cc``; without one the library is written as
``trial_NNNNN.tar`` (the object files, to link on the device). The default target is the one the study's
``tvm`` profile measured with (so its tuned schedules apply), else ``{"kind": "llvm"}``.
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import Any, Sequence

from hwnas.errors import ProfileError
from hwnas.lowering.tvm_worker import TVMWorker

DEFAULT_TARGET: dict[str, Any] = {"kind": "llvm"}
_HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}

LOADER = '''"""Run {library} (compiled by hwnas with Apache TVM {tvm_note}) on random input.

Target: {target}
Inputs: {inputs}
Needs the TVM runtime (pip install apache-tvm=={tvm_version}) on the machine that runs it.{link_note}
"""

from pathlib import Path

import numpy as np
import tvm
from tvm import relax

library = Path(__file__).with_name("{library}")
device = tvm.{device}(0)
vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), device)
rng = np.random.default_rng(0)
inputs = [tvm.runtime.tensor(rng.standard_normal(shape).astype(dtype), device) for shape, dtype in {shapes!r}]
out = vm["main"](*inputs)
outputs = [out] if hasattr(out, "numpy") else list(out)
for i, o in enumerate(outputs):
    print(f"output {{i}}: shape {{tuple(o.shape)}}; first row: {{o.numpy().reshape(o.shape[0], -1)[0]}}")
'''


def parse_target(value: str | dict[str, Any] | None) -> dict[str, Any]:
    """``--target``: a JSON dict (``{"kind": "llvm", "mtriple": "aarch64-linux-gnu", "num-cores": 4}``)."""
    if value is None:
        return dict(DEFAULT_TARGET)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ProfileError(f"--target {value!r} is not a JSON dict ({exc}); e.g. "
                               '\'{"kind": "llvm", "mtriple": "aarch64-linux-gnu", "num-cores": 4}\'') from None
    if not isinstance(value, dict) or "kind" not in value:
        raise ProfileError(f"--target must be a JSON dict with a 'kind', got {value!r}")
    return value


def study_target(profiles: dict[str, Any] | None) -> dict[str, Any] | None:
    """The target of the study's first ``tvm`` profile (its tuning records are for that target), if any."""
    for definition in (profiles or {}).values():
        if definition.get("kind") == "tvm":
            return dict(definition["params"]["target"])
    return None


def cross_compiler(target: dict[str, Any]) -> str | None:
    """The linker for a target of another architecture (``<mtriple>-gcc`` on PATH), None for this host's."""
    triple = str(target.get("mtriple") or "")
    arch = triple.split("-", 1)[0]
    host = _HOST_ARCH.get(platform.machine().lower(), platform.machine().lower())
    if not triple or _HOST_ARCH.get(arch, arch) == host:
        return None
    return shutil.which(f"{triple}-gcc") or shutil.which(f"{arch}-linux-gnu-gcc")


def export_tvm(rows: Sequence[dict[str, Any]], out: Path, *, target: str | dict[str, Any] | None = None,
               batch_size: int = 1, database: str | Path | None = None, cc: str | None = None,
               timeout_s: float = 900.0, memory_gb: float | None = 8.0) -> list[dict[str, Any]]:
    """Compile every exported model of ``rows`` (``row["file"]`` relative to ``out``); add ``tvm_library`` and
    ``tvm_loader`` to each row and return the rows."""
    spec = parse_target(target)
    if cc is None:
        cc = cross_compiler(spec)
        cross = bool(spec.get("mtriple")) and _HOST_ARCH.get(str(spec["mtriple"]).split("-")[0]) != \
            _HOST_ARCH.get(platform.machine().lower())
        suffix = ".so" if cc or not cross else ".tar"
    else:
        suffix = ".so"
    db = Path(database) if database else out / "tvm_db"
    worker = TVMWorker(memory_gb=memory_gb, threads=1, label="TVM export worker")
    try:
        for row in rows:
            onnx_path = (out / row["file"]).resolve()
            dest = onnx_path.with_suffix(suffix)
            answer = worker.request({
                "op": "export", "onnx": str(onnx_path), "target": spec, "batch_size": batch_size,
                "database": str(db.resolve()) if db.is_dir() else None,
                "dest": str(dest), "cc": cc,
            }, timeout_s=timeout_s)
            loader = onnx_path.with_name(onnx_path.stem + "_tvm.py")
            counts = answer["workloads"]
            note = (f"for batch {batch_size}; {counts['workloads_total'] - len(counts['workloads_untuned'])} of "
                    f"{counts['workloads_total']} workloads tuned" if counts else f"for batch {batch_size}; untuned")
            device = "cuda" if spec["kind"] == "cuda" else "cpu"
            loader.write_text(LOADER.format(
                library=dest.with_suffix(".so").name,
                link_note="" if suffix == ".so" else f"\nFirst link {dest.name} on the device: tar xf {dest.name} && "
                f"gcc -shared -o {dest.with_suffix('.so').name} *.o",
                tvm_note=note, target=answer["target"], inputs=answer["inputs"], device=device,
                shapes=[(i["shape"], i["dtype"]) for i in answer["inputs"]], tvm_version=_tvm_version()))
            row["tvm_library"] = str(dest.relative_to(out.resolve())) if dest.is_relative_to(out.resolve()) else str(dest)
            row["tvm_loader"] = str(loader.relative_to(out.resolve())) if loader.is_relative_to(out.resolve()) else str(loader)
            row["tvm_target"] = answer["target"]
    finally:
        worker.close()
    return list(rows)


def _tvm_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("apache-tvm")
    except metadata.PackageNotFoundError:
        return "0.27.0.post1"
