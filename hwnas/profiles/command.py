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

Everything is bounded: each setup command, the command, and the matching of the patterns on its output, by
``timeout_s``; what is kept of each output stream, by :data:`OUTPUT_BYTES` (its end: a benchmark prints its
result last; a 200 MB line costs no memory); every excerpt quoted in a message or a trial's details, by
:data:`QUOTE_CHARS`. The patterns run in a helper process (:mod:`hwnas.profiles._match`), killed at
``timeout_s``: Python's ``re`` cannot be interrupted, and a pattern that backtracks catastrophically (``(a+)+$``)
would otherwise hang the search. That costs ~25 ms per measurement on a 2-core host, small next to any
benchmark command.

Before a search, :meth:`CommandProfile.preflight` runs the ``check`` command, or without one prices a tiny
MLP once: a command that cannot produce a number fails the search up front instead of failing every trial.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Mapping

from hwnas.errors import ProfileError
from hwnas.profiles.base import Metric, Profile, ProfileResult, Range
from hwnas.profiles.onnxruntime import file_digest
from hwnas.profiles.registry import register_kind
from hwnas.validation import shown

#: Milliseconds per unit.
UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
#: Placeholders that are always available (besides the scalar parameters).
BUILTIN_PLACEHOLDERS = ("model", "python")
_PATTERNS = {"pattern": "latency", "repeats_pattern": "repeats", "spread_pattern": "spread"}
_NOT_PLACEHOLDERS = {"command", "setup", "check", "env", "measure_with", "prefer_measured", *_PATTERNS}
_TAIL_LINES = 10
#: What is kept of each output stream of a command: its last bytes (the patterns are matched on these).
OUTPUT_BYTES = 256 * 1024
#: The longest excerpt of output (one line of a tail, a match) quoted in a message or a trial's details.
QUOTE_CHARS = 200
_MATCHER = Path(__file__).with_name("_match.py")


def placeholders(template: str) -> list[str]:
    """The ``{name}`` fields of one argument template (raises ValueError on malformed braces, and on a format
    spec or conversion: ``{batch_size:>999999999}`` would build a gigabyte-long argument)."""
    fields = []
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{field}}} takes no format spec or conversion ({{name}} only)")
        fields.append(field)
    return fields


def _argvs(params: Mapping[str, Any]) -> list[list[str]]:
    """Every argument list of a profile: ``setup``, ``command``, ``check``."""
    return [*params["setup"], params["command"], *([params["check"]] if params["check"] else [])]


def _excerpt(text: str, *, end: bool = False) -> str:
    """``text``, or its start (its ``end``) when longer than :data:`QUOTE_CHARS`."""
    if len(text) <= QUOTE_CHARS:
        return text
    return f"…{text[-QUOTE_CHARS:]}" if end else f"{text[:QUOTE_CHARS]}…"


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    kept = text.strip().splitlines()[-lines:]
    return " | ".join(_excerpt(line, end=True) for line in kept) if kept else "(no output)"


def _no_nul(owner: str, where: str, text: str) -> str:
    """``text``, which reaches the operating system (an argument, a variable, a folder): no NUL."""
    if "\0" in text:
        raise ProfileError(f"profile '{owner}': {where} must not contain a NUL character, got {shown(text)}")
    return text


class _Tail:
    """The last :data:`OUTPUT_BYTES` of one output stream, read to its end by a thread of its own (so that the
    command never blocks on a full pipe, and nothing unbounded is kept)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._data = bytearray()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        with stream:
            while chunk := stream.read1(1 << 16):  # type: ignore[attr-defined]
                self._data += chunk
                if len(self._data) > 2 * OUTPUT_BYTES:
                    del self._data[:-OUTPUT_BYTES]

    def join(self, deadline: float) -> bool:
        """Whether the stream ended (every writer closed it) before ``deadline`` (``time.monotonic()``)."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def text(self) -> str:
        return bytes(self._data[-OUTPUT_BYTES:]).decode("utf-8", errors="replace")


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
        setup = params.get("setup")
        if setup is None:
            setup = []
        if not isinstance(setup, list):
            raise ProfileError(f"profile '{self.name}': setup must be a list of commands (argument lists), "
                               f"got {shown(setup)}")
        check = params.get("check")
        return {
            "command": self._argv("command", params["command"]),
            "setup": [self._argv(f"setup[{i}]", c) for i, c in enumerate(setup)],
            "check": None if check is None else self._argv("check", check),
        }

    def _argv(self, where: str, value: Any) -> list[str]:
        hint = "a non-empty list of strings (an argument list; it runs without a shell)"
        if not isinstance(value, list) or not value:
            raise ProfileError(f"profile '{self.name}': {where} must be {hint}, got {shown(value)}")
        for arg in value:
            if isinstance(arg, bool) or not isinstance(arg, (str, int, float)):
                raise ProfileError(f"profile '{self.name}': {where} must be {hint}; argument {shown(arg)} is not "
                                   "a string")
        return [_no_nul(self.name, f"{where} argument", str(arg)) for arg in value]

    def _extras(self, params: Mapping[str, Any], commands: dict[str, Any]) -> dict[str, Any]:
        """Parameters beyond the defaults that the commands use as placeholders (others stay unknown)."""
        used = {name for argv in _argvs(commands) for arg in argv for name in self._fields(arg)}
        allowed = {**getattr(self, "common", {}), **self.defaults}
        extras = {k: v for k, v in params.items() if k not in allowed and k in used}
        for key, value in extras.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) or \
                    (isinstance(value, float) and not math.isfinite(value)):
                raise ProfileError(f"profile '{self.name}': parameter '{key}' (a command placeholder) must be a "
                                   f"string or a finite number, got {shown(value)}")
        return extras

    def _check_settings(self, merged: dict[str, Any]) -> None:
        env = merged["env"]
        if env is not None:
            if not isinstance(env, Mapping):
                raise ProfileError(f"profile '{self.name}': env must be a mapping, got {shown(env)}")
            for key, value in env.items():
                if not isinstance(key, str) or not key or "=" in key:
                    raise ProfileError(f"profile '{self.name}': env names must be non-empty strings without '=', "
                                       f"got {shown(key)}")
                if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                    raise ProfileError(f"profile '{self.name}': env value of {_excerpt(key)} must be a string or a "
                                       f"number, got {shown(value)}")
                _no_nul(self.name, "env name", key)
                _no_nul(self.name, f"env value of {_excerpt(key)}", str(value))
        for key in ("cwd", "profile_dir"):
            if merged[key] is not None and not isinstance(merged[key], str):
                raise ProfileError(f"profile '{self.name}': {key} must be a path string, got {shown(merged[key])}")
            if merged[key] is not None:
                _no_nul(self.name, key, merged[key])

    def _check_placeholders(self, merged: dict[str, Any]) -> None:
        """Every ``{name}`` must be a known placeholder; ``check`` cannot use ``{model}``."""
        known = {*BUILTIN_PLACEHOLDERS, "profile_dir"} | {
            k for k, v in merged.items() if k not in _NOT_PLACEHOLDERS and isinstance(v, (str, int, float))
        }
        for argv in _argvs(merged):
            for arg in argv:
                fields = self._fields(arg)
                unknown = [name for name in fields if name not in known]
                if unknown:
                    raise ProfileError(
                        f"profile '{self.name}': command argument {shown(arg)}: unknown placeholder "
                        f"{{{_excerpt(unknown[0])}}}; known: {sorted(known)}"
                    )
                for name in fields:  # what is substituted reaches the operating system too
                    if isinstance(merged.get(name), str):
                        _no_nul(self.name, f"parameter '{name}' (a command placeholder)", merged[name])
        if merged["check"] and any("model" in self._fields(arg) for arg in merged["check"]):
            raise ProfileError(f"profile '{self.name}': check cannot use {{model}} (it runs before any model)")

    def _fields(self, arg: str) -> list[str]:
        try:
            return placeholders(arg)
        except ValueError as exc:
            raise ProfileError(f"profile '{self.name}': command argument {shown(arg)}: malformed placeholder: "
                               f"{_excerpt(str(exc))} (write {{{{ and }}}} for literal braces)") from None

    def _compile(self, key: str, text: Any) -> re.Pattern[str]:
        if not isinstance(text, str):
            raise ProfileError(f"profile '{self.name}': {key} must be a regex (a string), got {shown(text)}")
        try:
            regex = re.compile(text, re.MULTILINE)
        except (re.error, OverflowError, RecursionError) as exc:  # a huge repeat count, groups nested too deep
            raise ProfileError(f"profile '{self.name}': {key} {shown(text)} is not a valid regex: {exc}") from None
        if regex.groups < 1:
            raise ProfileError(f"profile '{self.name}': {key} {shown(text)} needs a group capturing the number, "
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
        try:
            path = Path(cwd).expanduser()
        except RuntimeError:  # ~user of no such user
            path = Path(cwd)
        if not path.is_absolute() and self.params["profile_dir"]:
            path = Path(self.params["profile_dir"]) / path
        if not path.is_dir():
            raise ProfileError(f"profile '{self.name}': cwd {shown(str(path))} is not a directory")
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
                return f"executable not found: {shown(executable)}"
        try:
            self._cwd()
        except ProfileError as exc:
            return str(exc).split(": ", 1)[-1]
        if self.params["check"] is not None:
            check = [arg.format_map(values) for arg in self.params["check"]]
            try:
                self._run(check, timeout=min(30.0, self.params["timeout_s"]))
            except ProfileError as exc:
                return f"check command failed: {str(exc).split(': ', 1)[-1]}"
        return None

    def preflight(self) -> str | None:
        """With a ``check`` command, :meth:`available` has run it: the device is there. Without one, a tiny MLP (4
        features, 8 hidden, 2 classes, fp32, exported as a search exports its candidates) is measured once,
        under the profile's own bounds, so that a command that cannot produce a number fails the search before
        its first trial instead of failing every trial."""
        if self.params["check"] is not None:
            return None
        with tempfile.TemporaryDirectory(prefix="hwnas-preflight-") as tmp:
            try:
                self.profile(_tiny_model(Path(tmp) / "preflight.onnx"))
            except ProfileError as exc:
                return f"measuring a tiny test model failed: {str(exc).split(': ', 1)[-1]}"
        return None

    def _run(self, argv: list[str], timeout: float | None = None) -> str:
        """Run one argument list; the (kept ends of) its stdout followed by its stderr, or a ProfileError."""
        timeout = timeout or self.params["timeout_s"]
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self._cwd(),
                env=self._env(), start_new_session=True,
            )
        except FileNotFoundError:
            raise ProfileError(f"profile '{self.name}': executable not found: {shown(argv[0])} "
                               "(give a path or put it on PATH)") from None
        except PermissionError:
            raise ProfileError(f"profile '{self.name}': executable {shown(argv[0])} is not executable") from None
        except OSError as exc:
            raise ProfileError(f"profile '{self.name}': cannot run {shown(argv[0])}: {exc}") from None
        deadline = time.monotonic() + timeout
        streams = _Tail(proc.stdout), _Tail(proc.stderr)  # type: ignore[arg-type]
        try:
            proc.wait(timeout=timeout)
            if not all(s.join(deadline) for s in streams):  # something it started still holds its output
                raise subprocess.TimeoutExpired(argv, timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise ProfileError(f"profile '{self.name}': command timed out after {timeout:g} s: {shown(argv)}") from None
        out, err = (s.text() for s in streams)
        if proc.returncode != 0:
            stream = "stderr" if err.strip() else "output"
            raise ProfileError(f"profile '{self.name}': command exited with code {proc.returncode}: {shown(argv)}; "
                               f"last {stream} lines: {_tail(err if err.strip() else out)}")
        return out + ("\n" + err if err else "")

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        """Kill the command and everything it started (it runs in its own session)."""
        try:
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()

    def _matches(self, output: str, argv: list[str]) -> dict[str, tuple[str, str] | None]:
        """(matched text, captured text) of the last match of each pattern in ``output``, None where an optional
        one misses; matched in a helper process killed after ``timeout_s`` (see the module docstring)."""
        timeout = self.params["timeout_s"]
        request = {"text": output, "patterns": [[k, r.pattern, _PATTERNS[k]] for k, r in self._compiled.items()]}
        try:
            proc = subprocess.run([sys.executable, "-I", "-S", str(_MATCHER)], input=json.dumps(request),
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ProfileError(f"profile '{self.name}': matching the patterns on the output of {shown(argv)} took "
                               f"longer than timeout_s ({timeout:g} s): does a pattern backtrack catastrophically "
                               "(nested repeats such as (a+)+)?") from None
        if proc.returncode != 0:
            raise ProfileError(f"profile '{self.name}': matching the patterns on the output of {shown(argv)} failed: "
                               f"{_tail(proc.stderr, 1)}")
        found = {k: None if v is None else (v[0], v[1]) for k, v in json.loads(proc.stdout).items()}
        if found["pattern"] is None:
            raise ProfileError(f"profile '{self.name}': pattern {shown(self._compiled['pattern'].pattern)} not found "
                               f"in the output of {shown(argv)}; last output lines: {_tail(output)}")
        return found

    def _number(self, key: str, captured: str) -> float:
        try:
            value = float(captured.strip())
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ProfileError(f"profile '{self.name}': {key} captured {shown(_excerpt(captured))}, which is not a "
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
        found = self._matches(output, command)
        matched, captured = found["pattern"]  # type: ignore[misc]
        details: dict[str, Any] = {
            "device": self.params["device"], "command": command, "setup": setup, "matched": _excerpt(matched),
            "unit_reported": self.params["unit"], "batch_size": self.params["batch_size"],
            "threads": self.params["threads"], "wall_s": round(wall, 6),
        }
        repeats = found.get("repeats_pattern")
        if repeats is not None:
            details["repeats"] = int(self._number("repeats_pattern", repeats[1]))
        spread = found.get("spread_pattern")
        if spread is not None:
            details["spread_ms"] = self._number("spread_pattern", spread[1]) * scale
            details["spread_matched"] = _excerpt(spread[0])
        return Metric("latency_ms", self._number("pattern", captured) * scale, "ms", "measured", details)


def _tiny_model(path: Path) -> Path:
    """A 4 → 8 → 2 MLP exported as a search exports its candidates (raw features in, class scores out)."""
    import numpy as np
    import torch

    from hwnas.lowering.export import export_onnx
    from hwnas.models import build_model
    from hwnas.models.preprocess import InputStats
    from hwnas.space import ArchConfig

    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    torch.manual_seed(0)
    model = build_model(ArchConfig("mlp", {"depth": 1, "width": [8]}), n_features=4, n_classes=2,
                        stats=InputStats.of(x))
    return export_onnx(model, 4, path)
