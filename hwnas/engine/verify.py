"""``hwnas verify``: re-measure a study's Pareto models on every profile that can measure here, and compare
with what the search recorded (prediction error, rank agreement)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from scipy.stats import kendalltau

from hwnas.engine.artifacts import Artifacts
from hwnas.engine.outputs import pareto_rows
from hwnas.engine.records import study_entry
from hwnas.errors import ProfileError
from hwnas.profiles import from_dict
from hwnas.profiles.measure import measuring_profile


def _study_profiles(study: optuna.Study) -> list[Any]:
    defs = study_entry(study, "hwnas.profiles") or {}
    return [
        from_dict({k: d[k] for k in ("name", "kind", "description", "source", "params") if k in d})
        for d in defs.values()
    ]


def verify_study(study: optuna.Study, artifacts: Path) -> dict[str, Any]:
    """Per profile: for each Pareto point, recorded vs re-measured value, error %, and Kendall tau."""
    rows = pareto_rows(study)
    store = Artifacts(artifacts)
    report: dict[str, Any] = {"study": study.study_name, "points": len(rows), "profiles": {}}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for r in rows:
            files[r["trial"]] = store.download(r["artifact_id"], Path(tmp) / f"trial_{r['trial']}.onnx")
        for profile in _study_profiles(study):
            report["profiles"][profile.name] = _verify_profile(profile, rows, files)
    return report


def _verify_profile(profile: Any, rows: list[dict[str, Any]], files: dict[int, Path]) -> dict[str, Any]:
    try:
        meter = measuring_profile(profile)
    except ProfileError as exc:
        return {"status": "skipped", "reason": str(exc)}
    if meter is None:
        return {"status": "skipped", "reason": f"predicted only: its {profile.kind} hardware cannot be measured from here "
                "(the profile names no measure_with)"}
    reason = meter.available()
    if reason:
        return {"status": "skipped", "reason": f"cannot measure here: {reason}"}
    points = []
    for r in rows:
        measured = meter.profile(files[r["trial"]])
        for metric, m in measured.metrics.items():
            recorded = r["metrics"].get(profile.name, {}).get(metric)
            if recorded is None:
                continue
            points.append({
                "trial": r["trial"], "metric": metric, "recorded": recorded["value"],
                "recorded_provenance": recorded["provenance"], "measured": m.value,
                "error_pct": 100.0 * (recorded["value"] - m.value) / m.value,
            })
    out: dict[str, Any] = {"status": "verified", "measured_with": meter.describe(), "truth": meter.provenance,
                           "points": points}
    if points:
        err = np.abs([p["error_pct"] for p in points])
        out["mape_pct"] = float(err.mean())
        out["within_10pct"] = float((err <= 10).mean())
        if len(points) >= 2:
            tau = kendalltau([p["recorded"] for p in points], [p["measured"] for p in points]).statistic
            out["kendall_tau"] = None if np.isnan(tau) else float(tau)
    return out


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of :func:`verify_study`'s result."""
    lines = [f"verify: study {report['study']}, {report['points']} Pareto point(s)"]
    for name, r in report["profiles"].items():
        if r["status"] != "verified":
            lines.append(f"  {name}: skipped ({r['reason']})")
            continue
        summary = f"MAPE {r.get('mape_pct', float('nan')):.1f}%, within ±10%: {100 * r.get('within_10pct', 0):.0f}%"
        if r.get("kendall_tau") is not None:
            summary += f", Kendall tau {r['kendall_tau']:.2f}"
        lines.append(f"  {name} vs {r['measured_with']['name']} ({summary})")
        lines.append(f"    {'trial':>6} {'metric':<12} {'recorded':>12} {r.get('truth', 'measured'):>12} {'error':>8}")
        for p in r["points"]:
            lines.append(f"    {p['trial']:>6} {p['metric']:<12} {p['recorded']:>12.5g} {p['measured']:>12.5g} "
                         f"{p['error_pct']:>7.1f}%  ({p['recorded_provenance']})")
    return "\n".join(lines)
