"""The `hwnas` command as a user types it: clear errors without tracebacks, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest

from hwnas.engine.study import evaluated_trials

HWNAS = [sys.executable, "-m", "hwnas"]
FAST = ["--profile-set", "cpu-ort.repeats=50", "--profile-set", "cpu-ort.warmup=2", "--no-progress"]


def hwnas(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([*HWNAS, *args], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def finished(db, study="mlp_tabular-breast_cancer"):
    st = optuna.load_study(study_name=study, storage=f"sqlite:///{db}")
    return {t.number: t.values for t in st.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}


def test_search_and_export_from_the_command_line(tmp_path):
    out = tmp_path / "bc"
    proc = hwnas("search", "mlp_tabular", "--dataset", "breast_cancer", "--profile", "cpu-ort", "--profile",
                 "printed-egfet", "--trials", "4", "--epochs", "5", "--sampler", "nsga2", "--seed", "0",
                 "--out", str(out), "--constraint", "printed-egfet.area_cm2<=10000", *FAST, check=True)
    assert "Pareto-optimal model(s)" in proc.stdout and "(measured)" in proc.stdout and "(predicted)" in proc.stdout
    rows = json.loads((out / "pareto.json").read_text())["pareto"]
    (out / "pareto.json").unlink()
    hwnas("export", "--out", str(out), check=True)
    assert json.loads((out / "pareto.json").read_text())["pareto"] == rows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "mlp_tabular", "--profile", "tpu-v9"], "unknown profile 'tpu-v9'"),
        (["search", "mlp_tabular", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["search", "mlp_tabular", "--sampler", "cmaes"], "--sampler must be one of"),
        (["search", "mlp_tabular", "--objective", "cpu-ort.power_mw"], "reports ['latency_ms'], not 'power_mw'"),
        (["search", "mlp_tabular", "--constraint", "printed-egfet.area_cm2<=20"], "not among the chosen profiles"),
        (["search", "mlp_tabular", "--profile-set", "cpu-ort.thread=4"], "unknown parameter(s) ['thread']"),
        (["search", "mlp_tabular", "--profile-set", "threads=4"], "expected PROFILE.KEY=VALUE"),
        (["search", "no_such_space"], "no search space 'no_such_space'"),
        (["profiles", "show", "nope"], "unknown profile 'nope'"),
        (["export", "--out", "/nonexistent/run"], "no study.db"),
    ],
)
def test_user_errors_are_one_clear_line(args, message):
    proc = hwnas(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_files_are_reported_with_their_place(tmp_path):
    space = tmp_path / "s.yaml"
    space.write_text("model: mlp\nparams:\n  depth: {type: int, low: 4, high: 1}\n")
    proc = hwnas("search", str(space))
    assert proc.returncode == 2 and f"{space}: params.depth.low" in proc.stderr
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n1,2,x\n3,,y\n5,6,x\n")
    proc = hwnas("search", "mlp_tabular", "--dataset", str(csv))
    assert proc.returncode == 2 and "column 'b'" in proc.stderr and "missing" in proc.stderr
    csv.write_text("a,b,label\n1,red,x\n3,4,y\n5,6,x\n")
    proc = hwnas("search", "mlp_tabular", "--dataset", str(csv))
    assert proc.returncode == 2 and "not numeric" in proc.stderr


def test_listing_commands():
    assert "cpu-ort" in hwnas("profiles", "list", check=True).stdout
    shown = hwnas("profiles", "show", "printed-egfet", check=True).stdout
    assert "kind: printed" in shown and "provenance: predicted" in shown
    assert "mlp_wide" in hwnas("spaces", "list", check=True).stdout
    assert "per_layer: depth" in hwnas("spaces", "show", "mlp_tabular", check=True).stdout
    assert "cardio" in hwnas("datasets", check=True).stdout


def _start(out, trials):
    cmd = [*HWNAS, "search", "mlp_tabular", "--profile", "cpu-ort", "--trials", str(trials), "--epochs", "3",
           "--out", str(out), *FAST]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(db, n, proc, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.exists():
            try:  # plain SQLite, read-only: opening it through Optuna would create its tables, racing the search
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
                    if con.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0] >= n:
                        return
            except sqlite3.Error:  # tables not created yet
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("search made no progress")


@pytest.mark.parametrize("signals", [[signal.SIGKILL], [signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT]])
def test_killed_search_resumes_without_losing_finished_trials(tmp_path, signals):
    out = tmp_path / "run"
    db = out / "study.db"
    proc = _start(out, 500)
    _wait_for(db, 3, proc)
    for sig in signals:
        os.kill(proc.pid, sig)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=60)
    if signals[0] != signal.SIGKILL:
        assert proc.returncode == 130 and "re-run the same command to resume" in err
        assert "Traceback" not in err
    if signals == [signal.SIGINT]:
        assert (out / "pareto.json").is_file()  # a graceful stop writes the reports of what is done
    before = finished(db)
    assert len(before) >= 3
    total = len(before) + 2
    resumed = _start(out, total)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    after = finished(db)
    assert {n: before[n] for n in before} == {n: after[n] for n in before}  # nothing finished was lost or re-run
    st = optuna.load_study(study_name="mlp_tabular-breast_cancer", storage=f"sqlite:///{db}")
    evaluated = evaluated_trials(st)
    assert len(evaluated) >= total and len(after) > len(before)
    assert {t.number for t in evaluated} <= set(after)
    assert (out / "pareto.json").is_file()
