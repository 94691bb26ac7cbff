"""Search outputs: ``pareto.json``, ``pareto.csv`` and one self-describing ONNX file per Pareto point."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact

from hwnas import __version__
from hwnas.errors import ConfigError
from hwnas.lowering.export import set_metadata
from hwnas.search.evaluate import graph_digest
from hwnas.search.pareto import pareto_trials
from hwnas.search.study import record_of


def _flat(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def pareto_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One record per feasible Pareto point: architecture, accuracies, every metric with its provenance."""
    rows = []
    metric = quality_metric(study)
    for t in pareto_trials(study):
        a = record_of(t)
        arch = dict(t.user_attrs["arch"])
        rows.append({
            "trial": t.number,
            "arch": {k: v for k, v in arch.items() if k != "key"},
            "arch_key": arch["key"],
            f"val_{metric}": a[f"val_{metric}"],
            f"test_{metric}": a[f"test_{metric}"],
            "objectives": dict(zip(study.metric_names or [], t.values)),
            "metrics": a["metrics"],
            "model": a.get("model"),
            "seed": a.get("seed"),
            "graph_sha256": a.get("graph_sha256"),
            "artifact_id": a.get("artifact_id"),
        })
    return rows


def quality_metric(study: optuna.Study) -> str:
    """The name of the study's quality objective (``accuracy``, ``perplexity``, ...)."""
    return (study.metric_names or ["accuracy"])[0]


def _csv_row(row: dict[str, Any], metric: str) -> dict[str, Any]:
    out: dict[str, Any] = {"trial": row["trial"], f"val_{metric}": row[f"val_{metric}"],
                           f"test_{metric}": row[f"test_{metric}"]}
    out.update({f"arch.{k}": _flat(v) for k, v in row["arch"]["values"].items()})
    for profile, metrics in row["metrics"].items():
        for name, m in metrics.items():
            key = f"{profile}.{name}"
            out[key] = m["value"]
            out[f"{key}.provenance"] = m["provenance"]
            d = m["details"]
            if m["provenance"] == "measured":
                out[f"{key}.repeats"] = d.get("repeats")
                out[f"{key}.iqr"] = d.get("iqr_ms", d.get("spread_ms"))  # a command profile reports its spread
                out[f"{key}.cv"] = d.get("cv")
            else:
                out[f"{key}.model"] = d.get("model")
                out[f"{key}.validation_error"] = _flat(d.get("validation_error"))
    out["file"] = row.get("file")
    return out


def write_reports(study: optuna.Study, out: Path, artifacts: Path | None = None) -> list[dict[str, Any]]:
    """Write ``pareto.json``, ``pareto.csv`` and ``models/trial_NNNNN.onnx`` into ``out``; return the rows."""
    out.mkdir(parents=True, exist_ok=True)
    artifacts = artifacts or Path(study.user_attrs.get("hwnas.artifacts", out / "artifacts"))
    rows = pareto_rows(study)
    models = out / "models"
    if models.exists():
        shutil.rmtree(models)
    models.mkdir()
    for row in rows:
        row["file"] = str(Path("models") / f"trial_{row['trial']:05d}.onnx")
        _export_model(study, row, out / row["file"], artifacts)
    summary = {
        "hwnas_version": __version__,
        "study": study.study_name,
        "objectives": study.metric_names,
        "directions": [d.name.lower() for d in study.directions],
        "constraints": study.user_attrs.get("hwnas.constraints", []),
        "dataset": study.user_attrs.get("hwnas.dataset"),
        "space": study.user_attrs.get("hwnas.space"),
        "profiles": study.user_attrs.get("hwnas.profiles"),
        "n_trials": len(study.trials),
        "pareto": rows,
    }
    (out / "pareto.json").write_text(json.dumps(summary, indent=2, sort_keys=False))
    flat = [_csv_row(r, quality_metric(study)) for r in rows]
    columns: list[str] = []
    for r in flat:
        columns += [k for k in r if k not in columns]
    with open(out / "pareto.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns or ["trial"])
        writer.writeheader()
        writer.writerows(flat)
    return rows


def _export_model(study: optuna.Study, row: dict[str, Any], dest: Path, artifacts: Path) -> None:
    if not row.get("artifact_id"):
        raise ConfigError(f"trial {row['trial']} has no stored ONNX file")
    if not artifacts.is_dir():
        raise ConfigError(f"artifact folder {artifacts} not found (pass --artifacts DIR)")
    download_artifact(artifact_store=FileSystemArtifactStore(str(artifacts)), file_path=str(dest), artifact_id=row["artifact_id"])
    if row.get("graph_sha256") and graph_digest(dest) != row["graph_sha256"]:
        raise ConfigError(f"stored ONNX of trial {row['trial']} does not match the profiled graph")
    set_metadata(dest, {
        "hwnas.metrics": {
            **{k: v for k, v in row.items() if k.startswith(("val_", "test_"))},
            "objectives": row["objectives"], "hardware": row["metrics"],
        },
        "hwnas.trial": row["trial"],
        "hwnas.study": study.study_name,
        "hwnas.graph_sha256": row["graph_sha256"],
    })
