"""Custom profiles (user folder, files, installed packages), predict / measure on any ONNX, verify."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwnas import profiles
from hwnas.errors import ProfileError
from hwnas.profiles import Metric, Profile, ProfileResult, register_kind
from hwnas.profiles.measure import for_search, measuring_profile

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "hwnas-dummy-profiles")


def hwnas(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "hwnas", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def foreign_mlp(path, weights_as_inputs=False):
    """A 2-layer MLP not made by hwnas: Gemm + Relu + MatMul + Add + Softmax, batch dimension 'N'."""
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((16, 32)).astype(np.float32), rng.standard_normal(32).astype(np.float32)
    w2, b2 = rng.standard_normal((32, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["m"]),
        helper.make_node("Add", ["m", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    inits = [numpy_helper.from_array(a, n) for n, a in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])]
    if weights_as_inputs:
        inputs += [helper.make_tensor_value_info(i.name, TensorProto.FLOAT, list(i.dims)) for i in inits]
        inits = []
    graph = helper.make_graph(nodes, "foreign", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@register_kind
class HalfOfMeasured(Profile):
    kind = "test-half"
    metrics = {"latency_ms": "ms"}
    primary_metric = "latency_ms"
    provenance = "predicted"
    defaults = {"batch_size": 1}

    def profile(self, onnx_path):
        return ProfileResult(self.name, {"latency_ms": Metric("latency_ms", 1e-3, "ms", "predicted", {"model": "const"})})


def test_add_copies_a_validated_profile_into_the_user_folder(tmp_path):
    good = tmp_path / "fast-cpu.yaml"
    good.write_text("name: fast-cpu\nkind: onnxruntime\ndescription: 2 threads\nparams: {threads: 2}\n")
    proc = hwnas("profiles", "add", str(good))
    dest = profiles.user_dir() / "fast-cpu.yaml"
    assert dest.is_file() and str(dest) in proc.stdout
    listing = hwnas("profiles", "list").stdout
    assert any(line.startswith("fast-cpu") and "user" in line and "measured" in line for line in listing.splitlines())
    assert profiles.get("fast-cpu").params["threads"] == 2
    again = hwnas("profiles", "add", str(good), check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    hwnas("profiles", "add", str(good), "--force")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nkind: onnxruntime\nparams: {threads: lots}\n")
    proc = hwnas("profiles", "add", str(bad), check=False)
    assert proc.returncode == 2 and "parameter 'threads' must be an integer, got 'lots'" in proc.stderr
    assert not (profiles.user_dir() / "bad.yaml").exists()
    dest.unlink()


@pytest.fixture(scope="module")
def dummy_package(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), FIXTURE], check=True, capture_output=True, timeout=300)
    return {"PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def test_installed_package_ships_kind_and_profile(dummy_package, tmp_path):
    listing = hwnas("profiles", "list", env=dummy_package).stdout
    line = next(l for l in listing.splitlines() if l.startswith("dummy-board"))
    assert "dummy-mac-count" in line and "predicted" in line and "package hwnas-dummy-profiles" in line
    model = foreign_mlp(tmp_path / "m.onnx")
    out = json.loads(hwnas("profiles", "predict", "dummy-board", str(model), "--json", env=dummy_package).stdout)
    assert out["metrics"]["latency_ms"]["value"] == pytest.approx((16 * 32 + 32 * 4) / 500)
    out = json.loads(hwnas("profiles", "predict", "dummy-board", str(model), "--json", "--set", "macs_per_ms=1000",
                           env=dummy_package).stdout)
    assert out["metrics"]["latency_ms"]["value"] == pytest.approx((16 * 32 + 32 * 4) / 1000)
    assert "dummy-board" not in hwnas("profiles", "list").stdout  # only where the package is installed


@pytest.mark.parametrize("weights_as_inputs", [False, True])
def test_measure_and_predict_any_onnx_model(tmp_path, weights_as_inputs):
    model = foreign_mlp(tmp_path / "m.onnx", weights_as_inputs)
    out = json.loads(hwnas("profiles", "measure", "cpu-ort", str(model), "--json", "--set", "batch_size=8",
                           "--set", "repeats=50").stdout)
    m = out["metrics"]["latency_ms"]
    assert m["provenance"] == "measured" and m["value"] > 0 and m["details"]["batch_size"] == 8
    if not weights_as_inputs:
        text = hwnas("profiles", "predict", "printed-egfet", str(model)).stdout
        assert "printed-egfet.area_cm2 =" in text and "(predicted)" in text
    else:
        proc = hwnas("profiles", "predict", "printed-egfet", str(model), check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_predict_and_measure_refuse_the_wrong_kind(tmp_path):
    model = foreign_mlp(tmp_path / "m.onnx")
    proc = hwnas("profiles", "predict", "cpu-ort", str(model), check=False)
    assert proc.returncode == 2 and "use `hwnas profiles measure cpu-ort" in proc.stderr
    proc = hwnas("profiles", "measure", "printed-egfet", str(model), "--set", "measure_with=null", check=False)
    assert proc.returncode == 2 and "names nothing that measures it" in proc.stderr
    proc = hwnas("profiles", "measure", "printed-egfet", str(model), check=False)  # measured by synthesis
    assert proc.returncode == 2 and "not a fixed-point MLP in exact integer form" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = hwnas("profiles", "measure", "cpu-ort", str(tmp_path / "missing.onnx"), check=False)
    assert proc.returncode == 2 and "no such ONNX file" in proc.stderr


def test_measure_with_pairs_a_prediction_with_a_measurement(tmp_path):
    predicted = profiles.from_dict({"name": "host-guess", "kind": "test-half",
                                    "params": {"batch_size": 4, "measure_with": "cpu-ort"}})
    meter = measuring_profile(predicted)
    assert meter.kind == "onnxruntime" and meter.params["batch_size"] == 4
    assert for_search(predicted) is predicted  # a prediction is kept unless it prefers a measurement
    preferring = profiles.from_dict({"name": "host-guess", "kind": "test-half",
                                     "params": {"measure_with": {"kind": "onnxruntime", "params": {"repeats": 50}},
                                                "prefer_measured": True}})
    chosen = for_search(preferring)
    assert chosen.name == "host-guess" and chosen.provenance == "measured"
    absent = profiles.from_dict({"name": "gpu-guess", "kind": "test-half", "params": {
        "prefer_measured": True,
        "measure_with": {"kind": "onnxruntime", "params": {"provider": "CUDAExecutionProvider", "device_match": "H100"}}}})
    assert for_search(absent) is absent  # no such GPU here: the prediction stays, labelled predicted
    assert "not available here" in measuring_profile(absent).available()
    with pytest.raises(ProfileError, match="measure_with must be"):
        measuring_profile(profiles.from_dict({"name": "x", "kind": "test-half", "params": {"measure_with": [1]}}))


def test_search_verify_remeasures_the_pareto_models(tmp_path):
    out = tmp_path / "run"
    proc = hwnas("search", "mlp_tabular", "--profile", "cpu-ort", "--profile", "printed-egfet", "--trials", "3",
                 "--epochs", "3", "--out", str(out), "--verify", "--no-progress", "--profile-set", "cpu-ort.repeats=50",
                 "--profile-set", "printed-egfet.measure_with=null")  # synthesis is tested in test_synthesis_profile
    assert "verify: study" in proc.stdout and "printed-egfet: skipped (predicted only" in proc.stdout
    report = json.loads((out / "verify.json").read_text())
    cpu = report["profiles"]["cpu-ort"]
    assert cpu["status"] == "verified" and cpu["points"]
    assert all(p["recorded_provenance"] == "measured" and p["measured"] > 0 for p in cpu["points"])
    text = hwnas("verify", "--out", str(out)).stdout
    assert "cpu-ort vs" in text and "MAPE" in text


def test_calibrate_writes_a_usable_predictor_profile(tmp_path):
    proc = hwnas("profiles", "calibrate", "cpu-ort", "--name", "host-learned", "--samples", "12", "--batch-size", "1",
                 "--batch-size", "8", "--space", "mlp_tabular", "--json")
    result = json.loads(proc.stdout)
    assert result["n"] > 0 and 0 <= result["within_10pct"] <= 100
    assert (profiles.user_dir() / "host-learned.yaml").is_file()
    model = foreign_mlp(tmp_path / "m.onnx")
    out = json.loads(hwnas("profiles", "predict", "host-learned", str(model), "--json").stdout)
    m = out["metrics"]["latency_ms"]
    assert m["provenance"] == "predicted" and m["value"] > 0 and m["details"]["validation_error"]
    (profiles.user_dir() / "host-learned.yaml").unlink()


def test_a_bad_user_file_is_one_warning_line_and_breaks_no_other_command(tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "cpu-ort.yaml").write_text("name: cpu-ort\nkind: onnxruntime\nparams: {threads: lots}\n")
    (folder / "broken.yaml").write_bytes(b"name: \xff\xfe\n")
    env = {"HWNAS_PROFILE_DIR": str(folder)}
    for args in (("profiles", "show", "cpu-ort"), ("profiles", "list")):
        lines = hwnas(*args, env=env).stderr.strip().splitlines()
        assert len(lines) == 2 and all(line.startswith("hwnas: warning: skipping a user profile file") for line in lines)
        assert any(f"{folder / 'cpu-ort.yaml'}: profile 'cpu-ort': parameter 'threads'" in line for line in lines)
    proc = hwnas("profiles", "show", "broken", env=env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        f"hwnas: error: {folder / 'broken.yaml'}: not UTF-8 text")


def test_add_writes_only_inside_the_profile_folder(tmp_path):
    folder = tmp_path / "a" / "b" / "profiles"
    escape = tmp_path / "a" / "escaped.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: ../../escaped\nkind: onnxruntime\n")
    proc = hwnas("profiles", "add", str(bad), env={"HWNAS_PROFILE_DIR": str(folder)}, check=False)
    assert proc.returncode == 2 and "profile name must be" in proc.stderr and not escape.exists()


def test_calibrate_checks_the_name_before_measuring(tmp_path):
    from hwnas.calibrate import calibrate_predictor

    with pytest.raises(ProfileError, match="profile name must be"):
        calibrate_predictor("cpu-ort", tmp_path / "x.yaml", name="../x", samples=4, batch_sizes=(1,),
                            spaces=("mlp_tabular",))
    assert list(tmp_path.iterdir()) == []
