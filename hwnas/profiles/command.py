"""The ``command`` profile kind: latency measured by a user command (e.g. a benchmark binary on a phone).

Parameters: ``command`` (argument list), ``pattern`` (regex capturing the latency), ``unit`` (ns, us, ms,
s; converted to ms), ``timeout_s``, ``repeats_pattern`` / ``spread_pattern`` (optional regexes), ``device``
(free text), ``batch_size``, ``threads``, ``env`` (added to the environment), ``cwd`` (relative to the YAML's
folder), ``setup`` (argument lists run first, e.g. ``adb push``), ``check`` (an argument list that tells
:meth:`CommandProfile.available` whether the device is here, e.g. ``adb -s SERIAL get-state``) and
``profile_dir`` (defaults to the YAML's folder).

Every command runs as an argument list, **never through a shell**. Each argument is a template substituted
like :meth:`str.format`: ``{model}`` (absolute path of the ONNX file), ``{python}`` (the interpreter running
hwnas), ``{profile_dir}``, ``{batch_size}``, ``{threads}``, any other scalar parameter, and any extra
parameter the YAML defines *and the commands use* (e.g. ``serial: R58M…`` as ``{serial}``; an extra
parameter no command uses is an unknown-parameter error). ``{{`` and ``}}`` are literal braces. Unknown
placeholders fail when the profile is built.

The latency is the last match of ``pattern`` (its named group ``latency``, else its first group) in the
command's stdout, then stderr; ``repeats_pattern`` and ``spread_pattern`` follow the same rules (the spread is
in ``unit`` too). Every failure (missing executable, non-zero exit, timeout, no match, a capture that is not
a number) is a :class:`~hwnas.errors.ProfileError`, never a number.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from hwnas.errors import ProfileError
from hwnas.profiles.base import Metric, Profile, ProfileResult, Range
from hwnas.profiles.onnxruntime import file_digest
from hwnas.profiles.registry import register_kind

#: Milliseconds per unit.
UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
#: Placeholders that are always available (besides the scalar parameters).
BUILTIN_PLACEHOLDERS = ("model", "python")
_PATTERNS = {"pattern": "latency", "repeats_pattern": "repeats", "spread_pattern": "spread"}
_NOT_PLACEHOLDERS = {"command", "setup", "check", "env", "measure_with", "prefer_measured", *_PATTERNS}
_TAIL_LINES = 10


def placeholders(template: str) -> list[str]:
    """The ``{name}`` fields of one argument template (raises ValueError on malformed braces)."""
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def _argvs(params: Mapping[str, Any]) -> list[list[str]]:
    """Every argument list of a profile: ``setup``, ``command``, ``check``."""
    return [*params["setup"], params["command"], *([params["check"]] if params["check"] else [])]


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    kept = text.strip().splitlines()[-lines:]
    return " | ".join(kept) if kept else "(no output)"


@register_kind
class CommandProfile(Profile):
    """Latency parsed from the output of a user command, run as an argument list with a timeout.

    Results are cached per (file content, settings) for the life of the process.
    """

    kind = "command"
    metrics = {"latency_ms": "ms"}
    primary_metric = "latency_ms"
    provenance = "measured"
    defaults = {
        "command": None,
        "setup": None,
        "check": None,
        "pattern": None,
        "unit": "ms",
        "timeout_s": 300.0,
        "repeats_pattern": None,
        "spread_pattern": None,
        "device": "",
        "batch_size": 1,
        "threads": 1,
        "env": None,
        "cwd": None,
        "profile_dir": None,
    }
    ranges = {"batch_size": Range(1, 65536, integer=True), "threads": Range(1, 256, integer=True),
              "timeout_s": Range(0.0, 7 * 24 * 3600.0, low_open=True)}
    choices = {"unit": tuple(UNITS)}
    _cache: dict[tuple[str, str], ProfileResult] = {}

    # ---- construction -------------------------------------------------------------------------------------

    def _validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        commands = self._commands(params)
        extras = self._extras(params, commands)
        merged = super()._validate_params({k: v for k, v in params.items() if k not in extras})
        merged.update(extras, **commands)
        if merged["profile_dir"] is None and self.path is not None:
            merged["profile_dir"] = str(Path(self.path).resolve().parent)
        self._check_settings(merged)
        self._compiled = {key: self._compile(key, merged[key]) for key in _PATTERNS if merged[key] is not None}
        if "pattern" not in self._compiled:
            raise ProfileError(f"profile '{self.name}': parameter 'pattern' is required "
                               "(a regex capturing the latency)")
        self._check_placeholders(merged)
        return merged

    def _commands(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``command``, ``setup`` and ``check``, validated as non-empty argument lists."""
        if params.get("command") is None:
            raise ProfileError(f"profile '{self.name}': parameter 'command' is required (a list of arguments)")
        setup = params.get("setup") or []
        if not isinstance(setup, list):
            raise ProfileError(f"profile '{self.name}': setup must be a list of commands (argument lists)")
        check = params.get("check")
        return {
            "command": self._argv("command", params["command"]),
            "setup": [self._argv(f"setup[{i}]", c) for i, c in enumerate(setup)],
            "check": None if check is None else self._argv("check", check),
        }

    def _argv(self, where: str, value: Any) -> list[str]:
        hint = "a non-empty list of strings (an argument list; it runs without a shell)"
        if not isinstance(value, list) or not value:
            raise ProfileError(f"profile '{self.name}': {where} must be {hint}, got {value!r}")
        for arg in value:
            if isinstance(arg, bool) or not isinstance(arg, (str, int, float)):
                raise ProfileError(f"profile '{self.name}': {where} must be {hint}; argument {arg!r} is not a string")
        return [str(arg) for arg in value]

    def _extras(self, params: Mapping[str, Any], commands: dict[str, Any]) -> dict[str, Any]:
        """Parameters beyond the defaults that the commands use as placeholders (others stay unknown)."""
        used = {name for argv in _argvs(commands) for arg in argv for name in self._fields(arg)}
        allowed = {**getattr(self, "common", {}), **self.defaults}
        extras = {k: v for k, v in params.items() if k not in allowed and k in used}
        for key, value in extras.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ProfileError(f"profile '{self.name}': parameter '{key}' (a command placeholder) must be a "
                                   f"string or number, got {value!r}")
        return extras

    def _check_settings(self, merged: dict[str, Any]) -> None:
        if merged["env"] is not None and not isinstance(merged["env"], Mapping):
            raise ProfileError(f"profile '{self.name}': env must be a mapping, got {merged['env']!r}")
        for key in ("cwd", "profile_dir"):
            if merged[key] is not None and not isinstance(merged[key], str):
                raise ProfileError(f"profile '{self.name}': {key} must be a path string, got {merged[key]!r}")

    def _check_placeholders(self, merged: dict[str, Any]) -> None:
        """Every ``{name}`` must be a known placeholder; ``check`` cannot use ``{model}``."""
        known = {*BUILTIN_PLACEHOLDERS, "profile_dir"} | {
            k for k, v in merged.items() if k not in _NOT_PLACEHOLDERS and isinstance(v, (str, int, float))
        }
        for argv in _argvs(merged):
            for arg in argv:
                unknown = [name for name in self._fields(arg) if name not in known]
                if unknown:
                    raise ProfileError(
                        f"profile '{self.name}': command argument {arg!r}: unknown placeholder {{{unknown[0]}}}; "
                        f"known: {sorted(known)}"
                    )
        if merged["check"] and any("model" in self._fields(arg) for arg in merged["check"]):
            raise ProfileError(f"profile '{self.name}': check cannot use {{model}} (it runs before any model)")

    def _fields(self, arg: str) -> list[str]:
        try:
            return placeholders(arg)
        except ValueError as exc:
            raise ProfileError(f"profile '{self.name}': command argument {arg!r}: malformed placeholder: {exc} "
                               "(write {{ and }} for literal braces)") from None

    def _compile(self, key: str, text: Any) -> re.Pattern[str]:
        try:
            regex = re.compile(str(text), re.MULTILINE)
        except re.error as exc:
            raise ProfileError(f"profile '{self.name}': {key} {text!r} is not a valid regex: {exc}") from None
        if regex.groups < 1:
            raise ProfileError(f"profile '{self.name}': {key} {text!r} needs a group capturing the number, "
                               f"e.g. '(?P<{_PATTERNS[key]}>[0-9.]+)'")
        return regex

    # ---- running ------------------------------------------------------------------------------------------

    def _values(self, onnx_path: Path | None) -> dict[str, Any]:
        values = {k: v for k, v in self.params.items() if k not in _NOT_PLACEHOLDERS}
        values["profile_dir"] = self.params["profile_dir"] or str(Path.cwd())
        values["python"] = sys.executable
        if onnx_path is not None:
            values["model"] = str(Path(onnx_path).resolve())
        return values

    def _cwd(self) -> str | None:
        cwd = self.params["cwd"]
        if cwd is None:
            return None
        path = Path(cwd).expanduser()
        if not path.is_absolute() and self.params["profile_dir"]:
            path = Path(self.params["profile_dir"]) / path
        if not path.is_dir():
            raise ProfileError(f"profile '{self.name}': cwd {str(path)!r} is not a directory")
        return str(path)

    def _env(self) -> dict[str, str] | None:
        extra = self.params["env"]
        return None if not extra else {**os.environ, **{str(k): str(v) for k, v in extra.items()}}

    def available(self) -> str | None:
        """None when the executable (and the ``check`` command, if any) says the device is here, else why not."""
        values = {**self._values(None), "model": "{model}"}
        for argv in [*self.params["setup"], self.params["command"]]:
            executable = argv[0].format_map(values)
            if shutil.which(executable) is None:
                return f"executable not found: {executable!r}"
        if self.params["check"] is not None:
            check = [arg.format_map(values) for arg in self.params["check"]]
            try:
                self._run(check, timeout=min(30.0, self.params["timeout_s"]))
            except ProfileError as exc:
                return f"check command failed: {str(exc).split(': ', 1)[-1]}"
        return None

    def _run(self, argv: list[str], timeout: float | None = None) -> str:
        """Run one argument list; its stdout followed by its stderr, or a ProfileError."""
        timeout = timeout or self.params["timeout_s"]
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                errors="replace", cwd=self._cwd(), env=self._env(), start_new_session=True,
            )
        except FileNotFoundError:
            raise ProfileError(f"profile '{self.name}': executable not found: {argv[0]!r} "
                               "(give a path or put it on PATH)") from None
        except PermissionError:
            raise ProfileError(f"profile '{self.name}': executable {argv[0]!r} is not executable") from None
        except OSError as exc:
            raise ProfileError(f"profile '{self.name}': cannot run {argv[0]!r}: {exc}") from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise ProfileError(f"profile '{self.name}': command timed out after {timeout:g} s: {argv}") from None
        if proc.returncode != 0:
            stream = "stderr" if err.strip() else "output"
            raise ProfileError(f"profile '{self.name}': command exited with code {proc.returncode}: {argv}; "
                               f"last {stream} lines: {_tail(err if err.strip() else out)}")
        return out + ("\n" + err if err else "")

    @staticmethod
    def _kill(proc: subprocess.Popen[str]) -> None:
        """Kill the command and everything it started (it runs in its own session)."""
        try:
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.communicate()

    def _capture(self, key: str, output: str, argv: list[str]) -> tuple[str, str] | None:
        """(matched text, captured text) of the last match of one pattern; None when an optional one misses."""
        regex = self._compiled.get(key)
        if regex is None:
            return None
        matches = list(regex.finditer(output))
        if not matches:
            if key != "pattern":
                return None
            raise ProfileError(f"profile '{self.name}': pattern {regex.pattern!r} not found in the output of "
                               f"{argv}; last output lines: {_tail(output)}")
        match = matches[-1]
        group = _PATTERNS[key]
        captured = match.group(group) if group in regex.groupindex else match.group(1)
        return match.group(0), captured or ""

    def _number(self, key: str, captured: str) -> float:
        try:
            value = float(captured.strip())
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ProfileError(f"profile '{self.name}': {key} captured {captured!r}, which is not a "
                               "non-negative number")
        return value

    def profile(self, onnx_path: Path) -> ProfileResult:
        try:
            key = (file_digest(onnx_path), repr(sorted(self.params.items())))
        except OSError as exc:
            raise ProfileError(f"profile '{self.name}': cannot read {onnx_path}: {exc}") from None
        if key not in self._cache:
            self._cache[key] = ProfileResult(self.name, {"latency_ms": self._measure(onnx_path)})
        return self._cache[key]

    def _measure(self, onnx_path: Path) -> Metric:
        """Run ``setup`` then ``command`` on one file and parse the latency (and repeats, spread) it prints."""
        values = self._values(onnx_path)
        *setup, command = [[arg.format_map(values) for arg in argv]
                           for argv in [*self.params["setup"], self.params["command"]]]
        start = time.perf_counter()
        for argv in setup:
            self._run(argv)
        output = self._run(command)
        wall = time.perf_counter() - start
        scale = UNITS[self.params["unit"]]
        matched, captured = self._capture("pattern", output, command)  # type: ignore[misc]
        details: dict[str, Any] = {
            "device": self.params["device"], "command": command, "setup": setup, "matched": matched,
            "unit_reported": self.params["unit"], "batch_size": self.params["batch_size"],
            "threads": self.params["threads"], "wall_s": round(wall, 6),
        }
        repeats = self._capture("repeats_pattern", output, command)
        if repeats is not None:
            details["repeats"] = int(self._number("repeats_pattern", repeats[1]))
        spread = self._capture("spread_pattern", output, command)
        if spread is not None:
            details["spread_ms"] = self._number("spread_pattern", spread[1]) * scale
            details["spread_matched"] = spread[0]
        return Metric("latency_ms", self._number("pattern", captured) * scale, "ms", "measured", details)
