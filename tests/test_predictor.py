"""The ``predictor`` kind and ``calibrate_predictor`` (a small real calibration against cpu-ort)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import hwnas.profiles.predictor  # noqa: F401  (registers the kind)
from hwnas import profiles
from hwnas.errors import ProfileError
from hwnas.lowering.export import export_onnx
from hwnas.models import build_model
from hwnas.models.preprocess import InputStats
from hwnas.calibrate import calibrate_predictor, kernel_times
from hwnas.profiles.predictor import LatencyModel, PredictorProfile, kernel_ops
from hwnas.space import ArchConfig

FIGURES = ("mape_pct", "within_10pct", "kendall_tau", "n")


def mlp(path: Path, widths: list[int], n_features: int = 12) -> Path:
    x = np.random.default_rng(1).standard_normal((64, n_features)).astype(np.float32)
    torch.manual_seed(1)
    model = build_model(ArchConfig("mlp", {"depth": len(widths), "width": widths}), n_features=n_features,
                        n_classes=3, stats=InputStats.of(x))
    return export_onnx(model, n_features, path)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cal") / "host-pred.yaml"
    result = calibrate_predictor("cpu-ort", out, samples=24, batch_sizes=(1, 16), seed=0)
    return out, result


def test_calibration_writes_yaml_model_and_figures(calibrated):
    yaml_path, result = calibrated
    assert yaml_path.is_file() and yaml_path.with_suffix(".json").is_file()
    assert result["architectures"] == 24 and result["samples"] == 48 and result["n"] == 24
    assert set(result["per_batch_size"]) == {"1", "16"}
    for figures in (result, *result["per_batch_size"].values()):
        assert all(k in figures for k in FIGURES)
        assert 0 <= figures["within_10pct"] <= 100 and figures["mape_pct"] >= 0
    assert result["family"] in result["cv_mape_pct"]
    assert result["kendall_tau"] > 0.5  # ranks held-out models far better than chance


def test_predicts_held_out_model_with_provenance(calibrated, tmp_path):
    yaml_path, result = calibrated
    p = profiles.get(str(yaml_path))
    assert isinstance(p, PredictorProfile) and p.provenance == "predicted"
    assert p.params["measured_on"] == "cpu-ort" and Path(p.params["model_file"]).is_absolute()
    m = p.profile(mlp(tmp_path / "held_out.onnx", [48, 24]))["latency_ms"]
    assert m.provenance == "predicted" and m.unit == "ms" and m.value > 0
    assert m.details["validation_error"]["mape_pct"] == result["mape_pct"]
    per_batch = m.details["validation_error"]["per_batch_size"]
    assert per_batch["16"]["kendall_tau"] == result["per_batch_size"]["16"]["kendall_tau"]
    assert m.details["batch_size"] == 1 and "cpu-ort" in m.details["model"] and m.details["measured_on"] == "cpu-ort"
    assert "extrapolated" in profiles.get(str(yaml_path), {"batch_size": 64}).profile(tmp_path / "held_out.onnx")[
        "latency_ms"].details


def test_predictions_grow_with_model_size(calibrated, tmp_path):
    yaml_path, _ = calibrated
    for batch in (1, 16):
        p = profiles.get(str(yaml_path), {"batch_size": batch})
        values = [p.profile(mlp(tmp_path / f"w{w}.onnx", [w, w]))["latency_ms"].value for w in (8, 64, 256, 1024)]
        assert values == sorted(values) and values[-1] > values[0], values


def test_model_file_round_trips(calibrated, tmp_path):
    yaml_path, _ = calibrated
    path = yaml_path.with_suffix(".json")
    model = LatencyModel.load(path)
    copy = model.save(tmp_path / "copy.json")
    assert json.loads(copy.read_text()) == json.loads(path.read_text())
    onnx_path = mlp(tmp_path / "m.onnx", [32])
    assert LatencyModel.load(copy).predict(onnx_path, 16) == model.predict(onnx_path, 16)


def test_missing_or_bad_model_file_is_a_clear_error(tmp_path):
    yaml_path = tmp_path / "p.yaml"
    yaml_path.write_text("name: p\nkind: predictor\nparams: {model_file: nope.json}\n")
    with pytest.raises(ProfileError, match=r"nope\.json does not exist"):
        profiles.get(str(yaml_path))
    (tmp_path / "nope.json").write_text('{"format": "something-else"}')
    with pytest.raises(ProfileError, match="not a hwnas-latency-predictor file"):
        profiles.get(str(yaml_path))
    yaml_path.write_text("name: p\nkind: predictor\n")
    with pytest.raises(ProfileError, match="'model_file'.*is required"):
        profiles.get(str(yaml_path))


def test_kernel_times_cover_the_kernels_the_predictor_sees(tmp_path):
    path = mlp(tmp_path / "k.onnx", [16, 8])
    names = {op.name for op in kernel_ops(path, 4)}
    times = kernel_times(path, 4, runs=3, warmup=1)
    assert set(times) == names and all(t >= 0 for t in times.values())
