"""Profile registry and the measured cpu-ort profile."""

from __future__ import annotations

import json
import logging
import os
import re

import numpy as np
import pytest
import torch

from hwnas import profiles
from hwnas.errors import ProfileError
from hwnas.lowering.export import export_onnx
from hwnas.models import build_model
from hwnas.models.preprocess import InputStats
from hwnas.profiles.onnxruntime import OnnxRuntimeProfile
from hwnas.space import ArchConfig


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    x = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    torch.manual_seed(0)
    model = build_model(ArchConfig("mlp", {"depth": 2, "width": [64, 32]}), n_features=10, n_classes=4,
                        stats=InputStats.of(x))
    return export_onnx(model, 10, tmp_path_factory.mktemp("m") / "m.onnx")


def test_builtin_profiles_list_and_describe():
    names = {p.name: p for _, p in profiles.list_profiles()}
    assert {"cpu-ort", "printed-egfet"} <= set(names)
    assert names["cpu-ort"].provenance == "measured"
    assert names["printed-egfet"].provenance == "predicted"
    d = names["cpu-ort"].describe()
    assert d["kind"] == "onnxruntime" and d["params"]["repeats"] >= 50 and d["source"]


def test_cpu_ort_measures_with_provenance(model_path):
    p = profiles.get("cpu-ort", {"repeats": 60, "batch_size": 4})
    m = p.profile(model_path)["latency_ms"]
    assert m.provenance == "measured" and m.unit == "ms" and m.value > 0
    assert m.details["repeats"] == 60 and m.details["batch_size"] == 4
    assert m.details["iqr_ms"] >= 0 and m.details["cv"] >= 0


def test_cpu_ort_caches_by_file_and_settings(model_path):
    OnnxRuntimeProfile._cache.clear()
    a = profiles.get("cpu-ort", {"repeats": 50})
    first = a.profile(model_path)
    assert a.profile(model_path) is first
    assert profiles.get("cpu-ort", {"repeats": 51}).profile(model_path) is not first


def test_cpu_ort_latency_grows_with_batch(model_path):
    OnnxRuntimeProfile._cache.clear()
    small = profiles.get("cpu-ort", {"batch_size": 1}).profile(model_path)["latency_ms"].value
    big = profiles.get("cpu-ort", {"batch_size": 4096}).profile(model_path)["latency_ms"].value
    assert big > small


def test_profile_errors_are_clear(tmp_path, model_path):
    with pytest.raises(ProfileError, match="unknown profile 'gpu-x'"):
        profiles.get("gpu-x")
    with pytest.raises(ProfileError, match="unknown parameter"):
        profiles.get("cpu-ort", {"thread": 2})
    with pytest.raises(ProfileError, match=r"parameter 'repeats' must be in \[50, 100000\], got 5"):
        profiles.get("cpu-ort", {"repeats": 5})
    with pytest.raises(ProfileError, match="parameter 'threads' must be an integer, got 'many'"):
        profiles.get("cpu-ort", {"threads": "many"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nkind: quantum\n")
    with pytest.raises(ProfileError, match="kind: unknown profile kind 'quantum'"):
        profiles.get(str(bad))
    bad.write_text("name: x\n")
    with pytest.raises(ProfileError, match="missing required field 'kind'"):
        profiles.get(str(bad))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ProfileError, match="cannot load"):
        profiles.get("cpu-ort").profile(garbage)


def test_profile_from_user_yaml(tmp_path, model_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: my-cpu\nkind: onnxruntime\ndescription: two threads\nparams: {threads: 2, repeats: 50}\n")
    p = profiles.get(str(path))
    assert p.name == "my-cpu" and p.params["threads"] == 2
    assert p.profile(model_path)["latency_ms"].details["threads"] == 2


def test_auto_provider_falls_back_to_the_cpu_without_a_gpu(model_path):
    import onnxruntime as ort

    p = profiles.from_dict({"name": "any-ort", "kind": "onnxruntime", "params": {"provider": "auto", "repeats": 50}})
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert p.provider() == "CPUExecutionProvider" and p.available() is None
    assert p.profile(model_path)["latency_ms"].details["provider"] == p.provider()
    missing = profiles.from_dict({"name": "gpu", "kind": "onnxruntime", "params": {"provider": "NoSuchExecutionProvider"}})
    assert "not available here" in missing.available()
    with pytest.raises(ProfileError, match="not available here"):
        missing.profile(model_path)


# ---- names, the user profile folder, definitions -----------------------------------------------------------


def _definition(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "config" / "hwnas" / "profiles"
    folder.mkdir(parents=True)
    monkeypatch.setenv("HWNAS_PROFILE_DIR", str(folder))
    return folder


@pytest.mark.parametrize("name", ["../../../../escaped", "/abs/escaped", "../profiles/my-phone", "a\0b", "a" * 300,
                                  ".hidden", "-flag", "sub/dir", "with space", "phöne", "", "x\n"])
def test_add_refuses_a_name_that_is_not_a_plain_file_name(tmp_path, user_dir, name):
    (user_dir / "my-phone.yaml").write_text("name: my-phone\nkind: onnxruntime\n")
    path = _definition(tmp_path, f"name: {json.dumps(name)}\nkind: onnxruntime\n")
    with pytest.raises(ProfileError, match=f"{re.escape(str(path))}: profile name must be 1-64 letters"):
        profiles.add(path)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["my-phone.yaml", "p.yaml"]
    assert (user_dir / "my-phone.yaml").read_text() == "name: my-phone\nkind: onnxruntime\n"


@pytest.mark.parametrize("name", [5, None, True, ["a"], {"a": 1}])
def test_a_name_must_be_a_string(tmp_path, name):
    path = _definition(tmp_path, f"name: {json.dumps(name)}\nkind: onnxruntime\n")
    with pytest.raises(ProfileError, match="profile name must be"):
        profiles.load_file(path)


def test_add_never_writes_through_a_symlink_nor_over_a_file_without_force(tmp_path, user_dir):
    target = tmp_path / "outside.yaml"
    (user_dir / "linked.yaml").symlink_to(target)
    (user_dir / "broken.yaml").write_text("not: [valid")
    linked = _definition(tmp_path, "name: linked\nkind: onnxruntime\n", "linked-src.yaml")
    broken = _definition(tmp_path, "name: broken\nkind: onnxruntime\n", "broken-src.yaml")
    for path in (linked, broken):
        with pytest.raises(ProfileError, match="already exists; use --force"):
            profiles.add(path)
    assert profiles.add(linked, force=True) == user_dir.resolve() / "linked.yaml"
    assert not target.exists() and not (user_dir / "linked.yaml").is_symlink()
    assert (user_dir / "linked.yaml").read_text() == linked.read_text()
    assert sorted(p.name for p in user_dir.iterdir()) == ["broken.yaml", "linked.yaml"]  # no temporary file left


def test_a_bad_user_file_is_skipped_with_a_warning_and_keeps_its_error(user_dir, caplog):
    (user_dir / "broken.yaml").write_text("name: [")
    (user_dir / "cpu-ort.yaml").write_text("name: cpu-ort\nkind: onnxruntime\nparams: {threads: lots}\n")
    (user_dir / "bad-one.yaml").write_text("name: bad-one\nkind: onnxruntime\nparams: {repeats: 5}\n")
    (user_dir / "folder.yaml").mkdir()
    os.mkfifo(user_dir / "fifo.yaml")
    (user_dir / "good.yaml").write_text("name: good\nkind: onnxruntime\n")
    with caplog.at_level(logging.WARNING, logger="hwnas"):
        defs = profiles.definitions()
        assert defs["cpu-ort"].origin == "built-in" and defs["good"].origin == "user"
        assert not {"broken", "bad-one", "folder", "fifo"} & set(defs)
        assert {p.name for _, p in profiles.list_profiles()} >= {"cpu-ort", "good", "gpu-a100"}
        assert profiles.get("cpu-ort").params["threads"] == 1
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 5 and all(m.startswith("skipping a user profile file") for m in warned)
    for name in ("broken", "cpu-ort", "bad-one", "folder", "fifo"):
        assert sum(str(user_dir / f"{name}.yaml") in m for m in warned) == 1  # once, however often listed
    with pytest.raises(ProfileError, match=r"bad-one\.yaml: profile 'bad-one': parameter 'repeats' must be in"):
        profiles.get("bad-one")
    with pytest.raises(ProfileError, match=r"fifo\.yaml: not a regular file"):
        profiles.get("fifo")


def test_a_folder_or_a_fifo_given_as_a_path_says_what_it_is(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "dir").mkdir()
    with pytest.raises(ProfileError, match="pipe: not a regular file"):
        profiles.get(str(tmp_path / "pipe"))
    with pytest.raises(ProfileError, match="dir: is a folder"):
        profiles.get(str(tmp_path / "dir"))


@pytest.mark.parametrize("text, message", [
    ("name: x\nkind: [onnxruntime]\n", r"kind: unknown profile kind \['onnxruntime'\]"),
    ("name: x\nkind: {a: 1}\n", "kind: unknown profile kind"),
    ("name: x\nkind: onnxruntime\ndescription: [a]\n", "description must be a string"),
    ("name: x\nkind: onnxruntime\nsource: 5\n", "source must be a string"),
    ("name: x\nkind: onnxruntime\nparams: []\n", "params: expected a mapping, got list"),
    ("name: x\nkind: onnxruntime\nparams: 0\n", "params: expected a mapping, got int"),
    ("name: x\nkind: onnxruntime\nparams: {1: 2, b: 3}\n", r"unknown parameter\(s\) \[1, 'b'\]"),
    ("name: x\nkind: onnxruntime\nparams: {threads: null}\n", "parameter 'threads' must be an integer, got None"),
    ("name: x\nkind: onnxruntime\nparams: {measure_with: 5}\n", "measure_with must be a profile name"),
    ("name: x\nkind: onnxruntime\nparams: {measure_with: {kind: onnxruntime, profile: cpu-ort}}\n", "measure_with must be"),
    ("name: x\nkind: analytical\nparams: {measure_with: {kind: onnxruntime, params: {threads: lots}}}\n",
     "measure_with: profile 'x@measured': parameter 'threads' must be an integer"),
    ("name: x\nkind: analytical\nparams: {calibrated_on: 5}\n", "parameter 'calibrated_on' must be a string"),
    ("name: x\nkind: analytical\nparams: {validation_error: [a]}\n", "parameter 'validation_error' must be a string"),
    ("name: x\nkind: analytical\nparams: {peak_gflops: {fp32: 1.0e+300}}\n", r"'peak_gflops\.fp32' must be in"),
    ("name: x\nkind: analytical\nparams: {memory_gbps: 1.0e+300}\n", "'memory_gbps' must be in"),
    ("name: x\nkind: printed\nparams: {fa_area_mm2: 1.0e+300}\n", "'fa_area_mm2' must be in"),
    ("name: x\nkind: tvm\nparams: {seed: -1}\n", "'seed' must be in"),
    ("name: x\nkind: tvm\nparams: {memory_gb: 1.0e+300}\n", "'memory_gb' must be in"),
    ("name: x\nkind: tvm\nparams: {target: {kind: 5}}\n", "target must be a mapping with a 'kind'"),
    ("name: x\nkind: tvm\nparams: {target: '" + "[" * 5000 + "'}\n", "target must be a JSON dict"),
])
def test_malformed_definitions_are_clear_errors(tmp_path, text, message):
    path = _definition(tmp_path, text)
    with pytest.raises(ProfileError, match=message) as info:
        profiles.load_file(path)
    assert str(info.value).startswith(str(path))


def test_a_message_quotes_at_most_an_excerpt_of_a_value(tmp_path):
    path = _definition(tmp_path, f"name: x\nkind: onnxruntime\nparams: {{threads: {'a' * 100_000}}}\n")
    with pytest.raises(ProfileError, match=r"must be an integer, got 'a+… \(100002 characters\)") as info:
        profiles.load_file(path)
    assert len(str(info.value)) < 500


def test_every_builtin_kind_bounds_each_numeric_parameter():
    builtin = {k: c for k, c in profiles.kinds().items() if c.__module__.startswith("hwnas.")}  # not tests' kinds
    assert {"onnxruntime", "analytical", "command", "predictor", "printed", "tvm", "tvm-rpc"} <= set(builtin)
    for kind, cls in builtin.items():
        numeric = [k for k, v in {**cls.common, **cls.defaults}.items() if type(v) in (int, float)]
        assert all(k in cls.ranges and cls.ranges[k].high is not None for k in numeric), kind


def test_predictor_model_file_is_read_bounded_and_checked(tmp_path):
    base = {"format": "hwnas-latency-predictor", "version": 1, "family": "graph", "intercept_ms": 0.1,
            "coef": {"gemm_fp32.macs": 1e-6}}
    yaml_path = _definition(tmp_path, "name: p\nkind: predictor\nparams: {model_file: m.json}\n")
    for change, message in (({"coef": [1]}, "coef must be a mapping"), ({"intercept_ms": float("nan")}, "intercept_ms must be a finite"),
                            ({"coef": {"gemm_fp32.macs": "x"}}, r"coef\.gemm_fp32\.macs must be a number"),
                            ({"training": [1]}, "training must be a mapping")):
        (tmp_path / "m.json").write_text(json.dumps({**base, **change}))
        with pytest.raises(ProfileError, match=message):
            profiles.load_file(yaml_path)
    (tmp_path / "m.json").unlink()
    os.mkfifo(tmp_path / "m.json")
    with pytest.raises(ProfileError, match=r"m\.json: not a regular file"):
        profiles.load_file(yaml_path)
