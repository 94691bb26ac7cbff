"""Profile registry and the measured cpu-ort profile."""

from __future__ import annotations

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
