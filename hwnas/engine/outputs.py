"""Search outputs: ``pareto.json``, ``pareto.csv`` and one self-describing ONNX file per Pareto point."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import optuna

from hwnas import __version__
from hwnas.engine.artifacts import Artifacts
from hwnas.engine.pareto import pareto_trials
from hwnas.engine.records import arch_key, artifact_dir, read_arch, read_record, study_entry
from hwnas.engine.study import evaluated_trials
from hwnas.errors import ConfigError
from hwnas.lowering.metadata import graph_digest, set_metadata


def _flat(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def pareto_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One record per feasible Pareto point: architecture, accuracies, every metric with its provenance."""
    rows = []
    metric = quality_metric(study)
    for t in pareto_trials(study):
        record, arch = read_record(t), read_arch(t)
        assert record is not None and arch is not None
        rows.append({
            "trial": t.number,
            "arch": arch.to_dict(),
            "arch_key": arch_key(t),
            f"val_{metric}": record.val_score,
            f"test_{metric}": record.test_score,
            "objectives": dict(zip(study.metric_names or [], t.values)),
            "metrics": {name: r.to_dict()["metrics"] for name, r in record.costs.items()},
            "model": dict(record.model) if record.model is not None else None,
            "seed": record.seed,
            "graph_sha256": record.graph_sha256,
            "artifact_id": record.artifact_id,
        })
    return rows


def screened_counts(study: optuna.Study) -> dict[str, int]:
    """Per constraint of the search, how many candidates it screened out before training (0 included; one
    screened out by two constraints counts for both; a re-proposed architecture is not counted again)."""
    counts = {name: 0 for name in study_entry(study, "hwnas.constraints", [])}
    for t in evaluated_trials(study):
        for name in read_record(t).screened_by:  # type: ignore[union-attr]
            counts[name] = counts.get(name, 0) + 1
    return counts


def format_screened(counts: dict[str, int]) -> str:
    """The summary line: ``screened out before training: A<=1: 0, B<=2: 7``."""
    return "screened out before training: " + ", ".join(f"{name}: {n}" for name, n in counts.items())


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
            elif m["provenance"] == "synthesised":
                out[f"{key}.tool"] = f"{d.get('tool')} {d.get('tool_version')}"
                out[f"{key}.library_digest"] = d.get("library_digest")
            else:
                out[f"{key}.model"] = d.get("model")
                out[f"{key}.validation_error"] = _flat(d.get("validation_error"))
    circuit = row.get("circuit") or {}
    if circuit:
        out["circuit.bit_exact"] = circuit.get("bit_exact")
        out["circuit.accuracy"] = circuit.get("circuit_accuracy")
    out["file"] = row.get("file")
    return out


def write_outputs(study: optuna.Study, out: Path, artifacts: Path | None = None, *,
                  circuits: Callable[[], tuple[Any, Any]] | None = None, require_circuits: bool = False
                  ) -> list[dict[str, Any]]:
    """Write ``pareto.json``, ``pareto.csv`` and ``models/trial_NNNNN.onnx`` into ``out``; return the rows.

    ``circuits`` (gives the test split's features and labels): also write and simulate the Verilog of every
    model that has an exact fixed-point circuit (:mod:`hwnas.engine.circuits`), recorded as ``row["circuit"]``;
    ``require_circuits``: every model must have one."""
    out.mkdir(parents=True, exist_ok=True)
    store = Artifacts(artifacts or artifact_dir(study) or out / "artifacts")
    rows = pareto_rows(study)
    models = out / "models"
    if models.exists():
        shutil.rmtree(models)
    models.mkdir()
    for row in rows:
        row["file"] = str(Path("models") / f"trial_{row['trial']:05d}.onnx")
        _export_model(study, row, out / row["file"], store)
    if circuits is not None:
        from hwnas.engine.circuits import add_circuits

        add_circuits(rows, out, circuits, required=require_circuits)
    summary = {
        "hwnas_version": __version__,
        "study": study.study_name,
        "objectives": study.metric_names,
        "directions": [d.name.lower() for d in study.directions],
        "constraints": study_entry(study, "hwnas.constraints", []),
        "dataset": study_entry(study, "hwnas.dataset"),
        "space": study_entry(study, "hwnas.space"),
        "profiles": study_entry(study, "hwnas.profiles"),
        "n_trials": len(study.trials),
        "screened_before_training": screened_counts(study),
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


def _export_model(study: optuna.Study, row: dict[str, Any], dest: Path, store: Artifacts) -> None:
    if not row.get("artifact_id"):
        raise ConfigError(f"trial {row['trial']} has no stored ONNX file")
    store.download(row["artifact_id"], dest)
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
