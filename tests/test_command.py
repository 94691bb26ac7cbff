"""The ``command`` profile kind, with real subprocesses (a Python "benchmark" script written to tmp_path)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import hwnas.profiles.command  # noqa: F401  (registers the kind)
from hwnas import profiles
from hwnas.errors import ProfileError
from hwnas.lowering.export import export_onnx
from hwnas.models import build_model
from hwnas.models.preprocess import InputStats
from hwnas.profiles.command import CommandProfile
from hwnas.space import ArchConfig

REPO = Path(__file__).resolve().parents[1]
PATTERN = r"avg latency: (?P<latency>\S+) us"

BENCH = r'''
import json, os, sys, time
import numpy as np
import onnxruntime as ort

model, batch, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print("ARGV: " + json.dumps(sys.argv[1:]))
print("ENV: " + os.environ.get("HWNAS_TEST_VAR", "-"))
print("CWD: " + os.getcwd())
if mode == "fail":
    print("pushing model ...")
    print("error: device offline", file=sys.stderr)
    sys.exit(3)
if mode == "sleep":
    time.sleep(60)
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).standard_normal((batch, sess.get_inputs()[0].shape[1])).astype(np.float32)
times = []
for _ in range(50):
    t = time.perf_counter()
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    times.append((time.perf_counter() - t) * 1e6)
print("out shape: " + "x".join(map(str, out.shape)))
value = "n/a" if mode == "garbage" else f"{np.mean(times):.3f}"
print(f"avg latency: {value} us (n={len(times)}, std {np.std(times):.3f})")
'''


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    x = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    torch.manual_seed(0)
    model = build_model(ArchConfig("mlp", {"depth": 2, "width": [32, 16]}), n_features=10, n_classes=3,
                        stats=InputStats.of(x))
    return export_onnx(model, 10, tmp_path_factory.mktemp("m") / "m.onnx")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "bench.py"
    path.write_text(BENCH)
    return path


def make(bench: Path, mode: str = "ok", *extra: str, **params) -> CommandProfile:
    params = {"command": [sys.executable, str(bench), "{model}", "{batch_size}", mode, *extra],
              "pattern": PATTERN, "unit": "us", **params}
    profile = profiles.from_dict({"name": "fake-phone", "kind": "command", "params": params})
    assert isinstance(profile, CommandProfile)
    return profile


def run_output(profile: CommandProfile, model: Path) -> str:
    """The raw output of the profile's command (through the same substitution and runner)."""
    values = profile._values(model)
    return profile._run([a.format_map(values) for a in profile.params["command"]])


def test_measures_substitutes_and_converts_units(bench, model_path):
    p = make(bench, repeats_pattern=r"\(n=(\d+)", spread_pattern=r"std (?P<spread>[0-9.]+)", batch_size=16,
             device="test host")
    m = p.profile(model_path)["latency_ms"]
    assert m.provenance == "measured" and m.unit == "ms" and m.value > 0
    reported = float(m.details["matched"].split(":")[1].split()[0])
    assert m.value == pytest.approx(reported / 1000)  # us -> ms
    assert m.details["repeats"] == 50 and m.details["spread_ms"] >= 0
    assert m.details["device"] == "test host" and m.details["wall_s"] > 0
    cmd = m.details["command"]
    assert cmd[2] == str(model_path.resolve()) and cmd[3] == "16" and cmd[0] == sys.executable
    out = run_output(p, model_path)
    assert "out shape: 16x3" in out  # the script really ran the model at the substituted batch size


def test_no_shell_arguments_are_literal(bench, model_path):
    nasty = ["; rm -rf x", "$(echo hi)", "`id`", "a b", "*", "|| exit 1", "{{model}}"]
    p = make(bench, "ok", *nasty)
    argv_line = next(l for l in run_output(p, model_path).splitlines() if l.startswith("ARGV: "))
    argv = json.loads(argv_line[len("ARGV: "):])
    assert argv[3:] == ["; rm -rf x", "$(echo hi)", "`id`", "a b", "*", "|| exit 1", "{model}"]


def test_env_cwd_and_extra_placeholders(bench, model_path, tmp_path):
    p = make(bench, "ok", "--runs={runs}", runs=7, env={"HWNAS_TEST_VAR": 42}, cwd=str(tmp_path))
    out = run_output(p, model_path)
    assert "ENV: 42" in out and f"CWD: {tmp_path}" in out and '"--runs=7"' in out
    with pytest.raises(ProfileError, match=r"unknown parameter\(s\) \['runz'\]"):
        make(bench, runz=7)  # an extra parameter that no placeholder uses is a typo


def test_caches_by_file_and_settings(bench, model_path):
    CommandProfile._cache.clear()
    p = make(bench)
    first = p.profile(model_path)
    assert make(bench).profile(model_path) is first
    assert make(bench, batch_size=2).profile(model_path) is not first


def test_missing_executable(model_path):
    p = profiles.from_dict({"name": "x", "kind": "command",
                            "params": {"command": ["hwnas-no-such-benchmark", "{model}"], "pattern": "(1)"}})
    with pytest.raises(ProfileError, match="executable not found: 'hwnas-no-such-benchmark'"):
        p.profile(model_path)
    assert "executable not found" in (p.available() or "")


def test_nonzero_exit_shows_code_and_stderr(bench, model_path):
    with pytest.raises(ProfileError, match=r"exited with code 3.*last stderr lines: error: device offline"):
        make(bench, "fail").profile(model_path)


def test_timeout(bench, model_path):
    start = time.perf_counter()
    with pytest.raises(ProfileError, match="timed out after 1 s"):
        make(bench, "sleep", timeout_s=1).profile(model_path)
    assert time.perf_counter() - start < 20


def test_pattern_not_found_shows_output_and_pattern(bench, model_path):
    p = make(bench, pattern=r"p50: ([0-9.]+) ms")
    with pytest.raises(ProfileError, match=r"pattern 'p50: \(\[0-9\.\]\+\) ms' not found.*avg latency: "):
        p.profile(model_path)


def test_non_numeric_capture(bench, model_path):
    with pytest.raises(ProfileError, match="captured 'n/a', which is not a non-negative number"):
        make(bench, "garbage").profile(model_path)


def test_construction_errors(bench):
    with pytest.raises(ProfileError, match=r"unknown placeholder \{modle\}"):
        make(bench, "ok", "{modle}")
    with pytest.raises(ProfileError, match="malformed placeholder"):
        make(bench, "ok", "{model")
    with pytest.raises(ProfileError, match="not a valid regex"):
        make(bench, pattern=r"avg latency: ([0-9.]+")
    with pytest.raises(ProfileError, match="needs a group"):
        make(bench, pattern=r"avg latency: [0-9.]+")
    with pytest.raises(ProfileError, match="parameter 'unit' must be one of"):
        make(bench, unit="minutes")
    with pytest.raises(ProfileError, match="command must be a non-empty list of strings"):
        profiles.from_dict({"name": "x", "kind": "command", "params": {"command": "python b.py", "pattern": "(1)"}})
    with pytest.raises(ProfileError, match="command must be a non-empty list"):
        profiles.from_dict({"name": "x", "kind": "command", "params": {"command": [], "pattern": "(1)"}})
    with pytest.raises(ProfileError, match="'pattern' is required"):
        profiles.from_dict({"name": "x", "kind": "command", "params": {"command": ["true"]}})
    with pytest.raises(ProfileError, match="check cannot use"):
        make(bench, check=["ls", "{model}"])


def test_available_runs_the_check_command(bench):
    assert make(bench, check=[sys.executable, "-c", "pass"]).available() is None
    reason = make(bench, check=[sys.executable, "-c", "import sys; sys.exit('no device')"]).available()
    assert reason and "exited with code 1" in reason and "no device" in reason


def test_local_example_profile_end_to_end(model_path):
    p = profiles.get(str(REPO / "examples/profiles/local-ort-perf.yaml"), {"runs": 20, "warmup": 2, "batch_size": 8})
    m = p.profile(model_path)["latency_ms"]
    assert p.kind == "command" and m.provenance == "measured" and m.value > 0
    assert m.details["repeats"] == 20 and m.details["spread_ms"] >= 0 and m.details["batch_size"] == 8
    assert m.details["command"][1] == str(REPO / "examples/profiles/ort_bench.py")


def test_android_example_profile_loads():
    p = profiles.get(str(REPO / "examples/profiles/android-adb.yaml"))
    assert p.kind == "command" and p.params["setup"][0][:2] == ["adb", "-s"]
    assert p._compiled["pattern"].search("Average inference time cost total: 0.25 ms").group("latency") == "0.25"
    assert p._compiled["repeats_pattern"].search("Total inference requests: 100").group(1) == "100"


def test_what_reaches_the_operating_system_is_checked_when_the_profile_is_built(bench):
    with pytest.raises(ProfileError, match="env names must be non-empty strings without '='"):
        make(bench, env={"A=B": "1"})
    with pytest.raises(ProfileError, match="env value of A must not contain a NUL"):
        make(bench, env={"A": "x\0y"})
    with pytest.raises(ProfileError, match="env value of A must be a string or a number"):
        make(bench, env={"A": [1]})
    with pytest.raises(ProfileError, match="command argument must not contain a NUL"):
        make(bench, "ok", "a\0b")
    with pytest.raises(ProfileError, match=r"parameter 'runs' \(a command placeholder\) must not contain a NUL"):
        make(bench, "ok", "{runs}", runs="1\0")
    with pytest.raises(ProfileError, match="takes no format spec"):
        make(bench, "ok", "{batch_size:>999999999}")
    with pytest.raises(ProfileError, match="pattern must be a regex"):
        make(bench, pattern=["(1)"])
    with pytest.raises(ProfileError, match="not a valid regex"):
        make(bench, pattern="(" * 2000 + "1" + ")" * 2000)
    with pytest.raises(ProfileError, match="setup must be a list"):
        make(bench, setup={})


def test_cwd_that_is_no_folder_makes_the_profile_unavailable(bench, tmp_path):
    (tmp_path / "file").write_text("")
    assert "is not a directory" in make(bench, cwd=str(tmp_path / "file")).available()


def _printer(tmp_path: Path, code: str) -> list[str]:
    script = tmp_path / "print.py"
    script.write_text(code)
    return [sys.executable, str(script)]


def test_output_is_read_bounded_and_quoted_in_excerpts(tmp_path):
    command = _printer(tmp_path, "import sys\nsys.stdout.write('x' * 50_000_000)\nprint(' latency: 1.5 ' + 'y' * 100_000)\n")
    p = profiles.from_dict({"name": "big", "kind": "command", "params": {
        "command": command, "pattern": r"latency: (?P<latency>[0-9.]+)( y*)"}})
    m = p.profile(tmp_path / "print.py")["latency_ms"]
    assert m.value == 1.5 and len(m.details["matched"]) <= 201
    missing = profiles.from_dict({"name": "big", "kind": "command", "params": {"command": command, "pattern": "p50: (1)"}})
    with pytest.raises(ProfileError, match="not found") as info:
        missing.profile(tmp_path / "print.py")
    assert len(str(info.value)) < 3000


def test_a_backtracking_pattern_is_stopped_at_timeout_s(tmp_path):
    command = _printer(tmp_path, "print('a' * 40 + 'b')\n")
    p = profiles.from_dict({"name": "slow", "kind": "command", "params": {
        "command": command, "pattern": r"^(?P<latency>(a+)+)$", "timeout_s": 2}})
    start = time.perf_counter()
    with pytest.raises(ProfileError, match="took longer than timeout_s"):
        p.profile(tmp_path / "print.py")
    assert time.perf_counter() - start < 20


def test_preflight_measures_a_tiny_model_unless_a_check_command_says_more(bench, model_path):
    assert make(bench).preflight() is None
    reason = make(bench, "fail").preflight()
    assert reason.startswith("measuring a tiny test model failed: command exited with code 3")
    assert make(bench, "fail", check=[sys.executable, "-c", "pass"]).preflight() is None


def test_a_search_with_a_command_that_always_fails_stops_before_any_trial(bench, tmp_path):
    profile = tmp_path / "failing.yaml"
    profile.write_text(f"name: failing\nkind: command\nparams:\n  command: [{sys.executable!r}, {str(bench)!r}, "
                       f"'{{model}}', '1', fail]\n  pattern: '{PATTERN}'\n")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "hwnas", "search", "mlp_tabular", "--dataset", "iris", "--profile",
                           str(profile), "--trials", "1", "--epochs", "1", "--no-progress", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("hwnas: error: profile 'failing' cannot run here: measuring a tiny test model failed: "
                               "command exited with code 3")
    assert not (out / "study.db").exists()
