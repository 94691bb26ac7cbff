"""Fuzz cases: malformed hardware-profile files, through ``hwnas profiles show/add/predict/measure`` and a search.

Hand-written cases for each way a profile went wrong (names that leave the profile folder, bad files in that
folder, parameters of every kind, command profiles with hostile output, patterns or commands), files that are
no definition at all, and systematic mutations of the built-in profiles: every field — top level, parameter,
entry of a nested parameter — replaced by values of the wrong type or out of range, the kind's declared
ranges and choices telling which values are wrong.

The profile folder is shared by every case of a run (and by other generators' cases): what is put there are
files every command must skip with one warning, never an error for another profile, plus one valid profile
(``my-phone``) that ``add`` must not replace. A valid profile added by a case has a name of its own.
"""

from __future__ import annotations

import copy
import math
import os
import random
import sys
from pathlib import Path
from typing import Any

import yaml

from fuzzing import Case, Sandbox

BUILTIN = Path(__file__).resolve().parents[1] / "hwnas" / "builtin" / "hw_profiles"
SEARCH = ["search", "mlp_tabular", "--dataset", "iris", "--trials", "1", "--epochs", "1", "--no-progress"]
#: Cases that train (or import torch for a tiny model) take seconds on a loaded 2-core host.
SEARCH_TIMEOUT_S = 180
NAN, INF = math.nan, math.inf
BENCH = "import sys\nprint('warming up')\nprint('latency: ' + (sys.argv[1] if len(sys.argv) > 1 else '0.25') + ' ms')\n"
GOOD_COMMAND = {"command": ["{python}", "{profile_dir}/bench.py"], "pattern": r"latency: (?P<latency>\S+) ms",
                "timeout_s": 60}

#: Values no field of a kind accepts, by the field's kind of value (None is added where null is refused).
BAD = {
    "int": [True, "many", [1], {"a": 1}, NAN, INF, 1.5, 10**30, -1, ""],
    "float": [True, "fast", [1.0], {"a": 1}, NAN, INF, -INF, -1.0, 1e300, "1e3"],
    "str": [True, 5, 1.5, ["a"], {"a": "b"}],
    "choice": [True, 5, ["all"], {"a": 1}, "no-such-choice", ""],
    "bool": [1, 0, "yes", ["true"], {"a": 1}, 1.5, ""],
}
#: Parameters whose value is a structure, with values (and entry mutations) they refuse.
BAD_STRUCTURES = {
    "peak_gflops": [True, 5, "x", [1], {}, {"fp32": "fast"}, {"fp32": NAN}, {"fp32": -1}, {"fp32": 1, "fp99": 1}],
    "efficiency": [True, 5, "x", [1], {"matmul": NAN}, {"matmul": 0}, {"nokey": 1}, {"m_half": -1}, {"quant": INF}],
    "op_overhead_us": [True, "x", [1], {"default": NAN}, {"default": -1}, -1, NAN, {"matmul": "x"}, {"default": 1e300}],
    "cache_bytes": [5, "x", {"a": 1}, [NAN, 1], ["x", 1], [-1, 1], [1e300, 1e301], [3, 2], [True, 1]],
    "cache_gbps": [5, "x", {"a": 1}, [NAN, 1], ["x", 1], [-1, 1], [1e300, 1], [None, 1]],
    "sparse_2_4_dtypes": [5, "fp16", [1], ["fp99"], [None], [["fp16"]], {"a": 1}],
    "unstructured_sparsity_speedup": [True, "x", [1], {}, NAN, INF, 0.5, -1],
    "act_bits": [True, "x", [1], {}, NAN, 0, 65, 1.5],
    "measure_with": [True, 5, [1], {}, "", "a\0b", {"kind": 5}, {"profile": "a", "kind": "b"},
                     {"kind": "onnxruntime", "params": [1]}, {"kind": "onnxruntime", "extra": 1},
                     {"kind": "onnxruntime", "params": {"threads": "lots"}}, {"kind": "quantum"}],
    "target": [True, 5, "not json {", [1], {}, {"kind": 5}, {"kind": ""}, {"kind": "llvm", "mcpu": {"a": 1}},
               {"kind": "llvm", "num-cores": NAN}, "[" * 3000],
    "database": [True, 5, [1], {"a": 1}, "a\0b"],
}
TOP_LEVEL = {
    "name": [None, 5, True, ["a"], {"a": 1}, "", "../x", "/abs/x", "a/b", ".hidden", "-x", "a" * 65, "x\0y",
             "x y", "phöne", "x\n"],
    "kind": [None, 5, True, ["onnxruntime"], {"a": 1}, "", "quantum", "ONNXRUNTIME"],
    "description": [5, True, ["a"], {"a": 1}, 1.5],
    "source": [5, True, ["a"], {"a": 1}],
    "params": [5, "x", ["a"], True, 1.5],
}


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def _kind_schema() -> dict[str, Any]:
    """Each built-in kind's class: its defaults, ranges and choices say what a parameter's values are."""
    from hwnas.profiles import kinds

    return kinds()


def _value_kind(cls: Any, key: str) -> str | None:
    """Which list of :data:`BAD` fits parameter ``key`` of kind ``cls`` (None: a structure, see BAD_STRUCTURES)."""
    if key in BAD_STRUCTURES:
        return None
    bound = cls.ranges.get(key)
    if bound is not None:
        return "int" if bound.integer else "float"
    if key in cls.choices:
        return "choice"
    default = {**cls.common, **cls.defaults}[key]
    return {bool: "bool", str: "str"}.get(type(default))


class _Gen:
    def __init__(self, sandbox: Sandbox, rng: random.Random) -> None:
        self.sandbox, self.rng, self.cases = sandbox, rng, []
        self.model = self._model()
        self.sandbox.file("profiles/bench.py", BENCH)

    def _model(self) -> Path:
        """One small valid ONNX model (a 4-8-3 MLP) for ``profiles predict`` / ``measure``."""
        import numpy as np
        import torch

        from hwnas.lowering import export_onnx
        from hwnas.models import build_model
        from hwnas.models.preprocess import InputStats
        from hwnas.space import ArchConfig

        torch.manual_seed(0)
        x = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
        model = build_model(ArchConfig("mlp", {"depth": 1, "width": [8]}), n_features=4, n_classes=3,
                            stats=InputStats.of(x))
        path = self.sandbox.inputs / "profiles" / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        return export_onnx(model, 4, path)

    def file(self, name: str, data: Any) -> Path:
        return self.sandbox.file(f"profiles/{name}", data if isinstance(data, (str, bytes)) else _yaml(data))

    def case(self, case_id: str, argv: list[str], **kw: Any) -> None:
        self.cases.append(Case(f"profile-{case_id}", [str(a) for a in argv], **kw))

    def through(self, case_id: str, path: Path, names: tuple[str, ...], action: str, expect: str = "error") -> None:
        """One file through one command: show, add, predict (on the small model), measure or search."""
        if action == "search":
            self.case(case_id, [*SEARCH, "--profile", path, "--out", self.sandbox.out(f"profile-{case_id}")],
                      expect=expect, names=names, timeout_s=SEARCH_TIMEOUT_S)
        elif action in ("predict", "measure"):
            self.case(case_id, ["profiles", action, path, self.model], expect=expect, names=names)
        else:
            self.case(case_id, ["profiles", action, path], expect=expect, names=names)

    def bad(self, case_id: str, data: Any, names: tuple[str, ...] = (), actions: tuple[str, ...] = ("show",),
            expect: str = "error", named: bool = True) -> None:
        """``data`` written as a file and run through ``actions``; the error names the file (unless not
        ``named``: what fails only when it runs names the profile) and ``names``."""
        path = self.file(f"{case_id}.yaml", data)
        for action in actions:
            self.through(f"{action}-{case_id}", path, ((str(path),) if named else ()) + names, action, expect)

    # ---- item 1: names, and where add writes ------------------------------------------------------------------

    def names(self) -> None:
        folder = self.sandbox.profiles
        escapes = {"up": "../../../../escaped", "up-profiles": "../profiles/my-phone", "sub": "sub/x",
                   "abs": str(self.sandbox.top / "abs-escaped"), "dotdot": "..", "backslash": "a\\b"}
        for label, name in escapes.items():
            path = self.file(f"name-{label}.yaml", {"name": name, "kind": "onnxruntime"})
            landing = os.path.normpath(os.path.join(folder, f"{name}.yaml"))
            outside = not Path(landing).is_relative_to(folder)  # inside: my-phone.yaml, which is there already
            self.case(f"add-name-{label}", ["profiles", "add", path], names=(str(path), "name"),
                      forbidden=(landing,) if outside else ())
        others = {"nul": "a\0b", "long": "a" * 300, "65": "b" * 65, "hidden": ".hidden", "dash": "-flag",
                  "space": "with space", "unicode": "phöne", "empty": "", "newline": "x\ny", "tab": "x\t",
                  "int": 5, "null": None, "list": ["a"], "dict": {"a": 1}, "bool": True, "float": 1.5}
        for label, name in others.items():
            self.bad(f"name-{label}", {"name": name, "kind": "onnxruntime"}, ("name",), ("add", "show"))
        # a valid profile already in the folder: add without --force refuses, whatever the file or the name
        self.sandbox.profiles.joinpath("my-phone.yaml").write_text("name: my-phone\nkind: onnxruntime\n")
        self.bad("name-existing", {"name": "my-phone", "kind": "onnxruntime"}, ("already exists",), ("add",), named=False)
        # a symlink in the folder: add replaces the link itself (--force), never writes through it
        target = self.sandbox.top / "linked-target.yaml"
        os.symlink(target, folder / "linked.yaml")
        linked = self.file("linked.yaml", {"name": "linked", "kind": "onnxruntime"})
        self.case("add-symlink-no-force", ["profiles", "add", linked], names=("linked",), forbidden=(str(target),))
        self.case("add-symlink-force", ["profiles", "add", linked, "--force"], expect="ok", forbidden=(str(target),))
        for i, name in enumerate(("fuzz-ok", "Fuzz_2.a", "fuzz@q", "9lives", "x" * 64)):
            path = self.file(f"name-valid-{i}.yaml", {"name": name, "kind": "onnxruntime"})
            self.case(f"add-name-valid-{i}", ["profiles", "add", path], expect="ok")
            self.case(f"show-name-valid-{i}", ["profiles", "show", path], expect="ok")

    # ---- item 2: bad files in the shared profile folder -------------------------------------------------------

    def folder(self) -> None:
        folder = self.sandbox.profiles
        bad = {
            "broken-yaml": "name: [\n", "not-a-mapping": "- a\n- b\n", "empty": "", "scalar": "42\n",
            "bad-param": "name: bad-param\nkind: onnxruntime\nparams: {threads: lots}\n",
            "cpu-ort": "name: cpu-ort\nkind: onnxruntime\nparams: {repeats: 5}\n",  # shadows nothing: skipped
            "gpu-a100": "name: gpu-a100\nkind: analytical\nparams: {peak_gflops: {fp32: .nan}}\n",
            "bad-name": "name: ../x\nkind: onnxruntime\n", "unknown-kind": "name: unknown-kind\nkind: quantum\n",
            "bad-command": "name: bad-command\nkind: command\nparams: {command: [a, \"b\\0\"], pattern: '(1)'}\n",
        }
        for stem, text in bad.items():
            (folder / f"{stem}.yaml").write_text(text)
        (folder / "non-utf8.yaml").write_bytes(b"name: \xff\xfe\n")
        (folder / "folder.yaml").mkdir()
        os.mkfifo(folder / "fifo.yaml")
        os.symlink("loop.yaml", folder / "loop.yaml")
        for name in ("cpu-ort", "gpu-a100", "printed-egfet", "my-phone"):
            self.case(f"folder-show-{name}", ["profiles", "show", name], expect="ok")
        self.case("folder-list", ["profiles", "list"], expect="ok")
        self.case("folder-predict-gpu-a100", ["profiles", "predict", "gpu-a100", self.model], expect="ok")
        self.case("folder-measure-cpu-ort", ["profiles", "measure", "cpu-ort", self.model, "--set", "repeats=50"],
                  expect="ok")
        for stem, names in {"bad-param": ("threads",), "broken-yaml": ("not valid YAML",), "empty": (),
                            "non-utf8": ("UTF-8",), "folder": ("folder",), "fifo": ("regular file",),
                            "loop": (), "unknown-kind": ("kind",), "bad-command": ("NUL",),
                            "not-a-mapping": ("mapping",)}.items():
            path = folder / f"{stem}.yaml"
            self.case(f"folder-show-bad-{stem}", ["profiles", "show", stem], names=(str(path), *names))
        self.case("folder-search-cpu-ort", [*SEARCH, "--profile", "cpu-ort", "--profile-set", "cpu-ort.repeats=50",
                                            "--out", self.sandbox.out("profile-folder-search-cpu-ort")],
                  expect="ok", timeout_s=SEARCH_TIMEOUT_S)

    # ---- files that are no definition --------------------------------------------------------------------------

    def files(self) -> None:
        inputs = self.sandbox.inputs / "profiles"
        alias = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
        texts: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
            "empty": ("", ()), "whitespace": ("   \n\n", ()), "invalid-yaml": ("name: [x\nkind: {", ("not valid YAML",)),
            "list": ("- name: x\n  kind: onnxruntime\n", ("mapping",)), "scalar": ("cpu-ort\n", ()),
            "multi-doc": ("name: x\nkind: onnxruntime\n---\nname: y\n", ("not valid YAML",)),
            "non-utf8": (b"name: x\xff\nkind: onnxruntime\n", ("UTF-8",)),
            "nul-byte": (b"name: x\x00\nkind: onnxruntime\n", ()), "alias-bomb": (alias, ("expands",)),
            "deep": ("a: " + "[" * 200 + "]" * 200 + "\n", ("nested",)),
            "too-large": ("name: x\nkind: onnxruntime\ndescription: " + "y" * (2 << 20) + "\n", ("too large",)),
            "no-kind": ("name: x\n", ("kind",)), "no-name": ("kind: onnxruntime\n", ("name",)),
            "extra-field": ("name: x\nkind: onnxruntime\nparamz: {}\n", ("paramz",)),
            "python-tag": ("name: !!python/object/apply:os.system [echo hi]\nkind: onnxruntime\n", ("not valid YAML",)),
        }
        for stem, (text, names) in texts.items():
            path = self.sandbox.file(f"profiles/file-{stem}.yaml", text)
            for action in ("show", "add", "predict"):
                self.through(f"{action}-file-{stem}", path, (str(path), *names), action)
        os.mkfifo(inputs / "file-fifo.yaml")
        os.mkfifo(inputs / "pipe")
        (inputs / "file-folder.yaml").mkdir()
        (inputs / "dir").mkdir()
        os.symlink("/dev/zero", inputs / "file-zero.yaml")
        os.symlink("file-loop.yaml", inputs / "file-loop.yaml")
        special = {"fifo": ("file-fifo.yaml", "regular file"), "pipe": ("pipe", "regular file"),
                   "folder": ("file-folder.yaml", "folder"), "dir": ("dir", "folder"),
                   "zero": ("file-zero.yaml", "regular file"), "loop": ("file-loop.yaml", "")}
        for label, (name, word) in special.items():
            path = inputs / name
            for action in ("show", "add", "predict"):
                self.through(f"{action}-file-{label}", path, (str(path), word), action)
        for label in ("fifo", "dir"):
            path = inputs / special[label][0]
            self.through(f"search-file-{label}", path, (str(path), special[label][1]), "search")
        bom = self.sandbox.file("profiles/file-bom.yaml", "\ufeffname: bom-ok\nkind: onnxruntime\n")
        self.through("show-file-bom", bom, (), "show", expect="ok")

    # ---- item 3: parameters, hand-written ----------------------------------------------------------------------

    def params(self) -> None:
        ort = {"name": "p", "kind": "onnxruntime"}
        cases = {
            "threads-null": ({**ort, "params": {"threads": None}}, ("threads",)),
            "params-list": ({**ort, "params": [{"threads": 1}]}, ("params",)),
            "params-unknown": ({**ort, "params": {"thread": 2}}, ("thread",)),
            "params-mixed-keys": ({**ort, "params": {1: 2, "b": 3}}, ("unknown parameter",)),
            "repeats-low": ({**ort, "params": {"repeats": 5}}, ("repeats",)),
            "warmup-huge": ({**ort, "params": {"warmup": 10**9}}, ("warmup",)),
            "provider-list": ({**ort, "params": {"provider": ["CPU"]}}, ("provider",)),
            "measure-with-int": ({**ort, "params": {"measure_with": 5}}, ("measure_with",)),
            "prefer-measured-str": ({"name": "p", "kind": "analytical", "params": {"prefer_measured": "yes"}},
                                    ("prefer_measured",)),
            "analytical-no-fp32": ({"name": "p", "kind": "analytical", "params": {"peak_gflops": {"fp16": 1}}},
                                   ("fp32",)),
            "analytical-calibrated-on": ({"name": "p", "kind": "analytical", "params": {"calibrated_on": 5}},
                                         ("calibrated_on",)),
            "analytical-validation-empty": ({"name": "p", "kind": "analytical", "params": {"validation_error": " "}},
                                            ("validation_error",)),
            "analytical-cache-descending": ({"name": "p", "kind": "analytical",
                                             "params": {"cache_bytes": [10, 5], "cache_gbps": [1, 1]}},
                                            ("cache_bytes",)),
            "analytical-inline-measure": ({"name": "p", "kind": "analytical", "params": {
                "measure_with": {"kind": "onnxruntime", "params": {"repeats": -1}}}}, ("measure_with", "repeats")),
            "predictor-no-file": ({"name": "p", "kind": "predictor"}, ("model_file",)),
            "predictor-missing-file": ({"name": "p", "kind": "predictor", "params": {"model_file": "nope.json"}},
                                       ("nope.json",)),
            "predictor-file-int": ({"name": "p", "kind": "predictor", "params": {"model_file": 5}}, ("model_file",)),
            "predictor-file-folder": ({"name": "p", "kind": "predictor", "params": {"model_file": "."}},
                                      ("folder",)),
            "predictor-file-tilde": ({"name": "p", "kind": "predictor", "params": {"model_file": "~nosuchuser/m.json"}},
                                     ("m.json",)),
            "tvm-rpc-tracker": ({"name": "p", "kind": "tvm-rpc", "params": {"tracker": "nohost"}}, ("tracker",)),
            "tvm-rpc-tuning": ({"name": "p", "kind": "tvm-rpc", "params": {"tuning_trials": 4}}, ("tuning",)),
            "tvm-rpc-port": ({"name": "p", "kind": "tvm-rpc", "params": {"port": 70000}}, ("port",)),
            "tvm-target-deep": ({"name": "p", "kind": "tvm", "params": {"target": "[" * 100000}}, ("target",)),
            "printed-bits-float": ({"name": "p", "kind": "printed", "params": {"weight_bits": 7.5}}, ("weight_bits",)),
        }
        for label, (data, names) in cases.items():
            self.bad(f"param-{label}", data, names, ("show", "add", "predict"))
        model_file = self.file("predictor-model.json", '{"format": "hwnas-latency-predictor", "version": 1, '
                               '"family": "graph", "intercept_ms": NaN, "coef": {}}')
        self.bad("param-predictor-nan-json", {"name": "p", "kind": "predictor", "params": {"model_file": str(model_file)}},
                 ("intercept_ms",), ("show", "predict"))
        os.mkfifo(self.sandbox.inputs / "profiles" / "predictor-fifo.json")
        self.bad("param-predictor-fifo", {"name": "p", "kind": "predictor", "params": {
            "model_file": "predictor-fifo.json"}}, ("regular file",), ("show",))

    # ---- item 4: command profiles -------------------------------------------------------------------------------

    def command(self) -> None:
        def cmd(**params: Any) -> dict[str, Any]:
            return {"name": "cmd", "kind": "command", "params": {**GOOD_COMMAND, **params}}

        construction = {
            "env-equals": (cmd(env={"A=B": "1"}), ("env",)), "env-nul-name": (cmd(env={"A\0": "1"}), ("env",)),
            "env-nul-value": (cmd(env={"A": "1\0"}), ("env",)), "env-list": (cmd(env={"A": [1]}), ("env",)),
            "env-null": (cmd(env={"A": None}), ("env",)), "env-bool": (cmd(env={"A": True}), ("env",)),
            "env-not-mapping": (cmd(env=["A=1"]), ("env",)), "env-int-key": (cmd(env={1: "a"}), ("env",)),
            "env-empty-key": (cmd(env={"": "a"}), ("env",)),
            "arg-nul": (cmd(command=["{python}", "a\0b"]), ("NUL",)), "arg-list": (cmd(command=["{python}", [1]]), ("command",)),
            "arg-dict": (cmd(command=["{python}", {"a": 1}]), ("command",)),
            "arg-bool": (cmd(command=["{python}", True]), ("command",)), "arg-null": (cmd(command=[None]), ("command",)),
            "command-string": (cmd(command="python bench.py"), ("command",)), "command-empty": (cmd(command=[]), ("command",)),
            "command-dict": (cmd(command={"a": 1}), ("command",)), "command-null": (cmd(command=None), ("command",)),
            "format-spec": (cmd(command=["{python}", "{batch_size:>999999999}"]), ("format spec",)),
            "conversion": (cmd(command=["{python}", "{batch_size!r}"]), ("format spec",)),
            "attribute": (cmd(command=["{python}", "{model.__class__}"]), ("placeholder",)),
            "index": (cmd(command=["{python}", "{model[0]}"]), ("placeholder",)),
            "positional": (cmd(command=["{python}", "{0}"]), ("placeholder",)),
            "unknown-placeholder": (cmd(command=["{python}", "{modle}"]), ("modle",)),
            "malformed-placeholder": (cmd(command=["{python}", "{model"]), ("placeholder",)),
            "extra-list": (cmd(command=["{python}", "{runs}"], runs=[1]), ("runs",)),
            "extra-nan": (cmd(command=["{python}", "{runs}"], runs=NAN), ("runs",)),
            "extra-nul": (cmd(command=["{python}", "{runs}"], runs="1\0"), ("runs",)),
            "extra-unused": (cmd(runz=7), ("runz",)),
            "timeout-inf": (cmd(timeout_s=INF), ("timeout_s",)), "timeout-nan": (cmd(timeout_s=NAN), ("timeout_s",)),
            "timeout-zero": (cmd(timeout_s=0), ("timeout_s",)), "timeout-negative": (cmd(timeout_s=-1), ("timeout_s",)),
            "timeout-huge": (cmd(timeout_s=1e12), ("timeout_s",)), "timeout-str": (cmd(timeout_s="10"), ("timeout_s",)),
            "cwd-int": (cmd(cwd=5), ("cwd",)), "cwd-nul": (cmd(cwd="a\0"), ("cwd",)),
            "profile-dir-list": (cmd(profile_dir=["a"]), ("profile_dir",)),
            "pattern-int": (cmd(pattern=5), ("pattern",)), "pattern-list": (cmd(pattern=["(1)"]), ("pattern",)),
            "pattern-invalid": (cmd(pattern="(1"), ("pattern",)), "pattern-no-group": (cmd(pattern="1"), ("pattern",)),
            "pattern-huge-repeat": (cmd(pattern="(a{99999999999})"), ("pattern",)),
            "pattern-deep": (cmd(pattern="(" * 3000 + "1" + ")" * 3000), ("pattern",)),
            "pattern-null": (cmd(pattern=None), ("pattern",)),
            "repeats-pattern-dict": (cmd(repeats_pattern={"a": 1}), ("repeats_pattern",)),
            "spread-pattern-no-group": (cmd(spread_pattern="x"), ("spread_pattern",)),
            "unit-minutes": (cmd(unit="minutes"), ("unit",)), "threads-null": (cmd(threads=None), ("threads",)),
            "batch-huge": (cmd(batch_size=10**12), ("batch_size",)),
            "setup-dict": (cmd(setup={"a": 1}), ("setup",)), "setup-empty-argv": (cmd(setup=[[]]), ("setup",)),
            "setup-string": (cmd(setup=["adb push"]), ("setup",)), "setup-zero": (cmd(setup=0), ("setup",)),
            "check-model": (cmd(check=["ls", "{model}"]), ("check",)), "check-string": (cmd(check="true"), ("check",)),
            "device-list": (cmd(device=["a"]), ("device",)),
        }
        for label, (data, names) in construction.items():
            self.bad(f"cmd-{label}", data, names, ("show", "add"))
        valid = self.file("cmd-ok.yaml", {**cmd(), "name": "fuzz-cmd-ok"})
        self.through("show-cmd-ok", valid, (), "show", expect="ok")
        self.through("add-cmd-ok", valid, (), "add", expect="ok")
        self.through("measure-cmd-ok", valid, (), "measure", expect="ok")
        self.through("predict-cmd-ok", valid, ("measure",), "predict")
        self.through("search-cmd-ok", valid, (), "search", expect="ok")
        scripts = {
            "always-fails": ("import sys\nprint('no device', file=sys.stderr)\nsys.exit(3)\n", ("exited with code 3",)),
            "huge-output": ("import sys\nsys.stdout.write('x' * 50_000_000)\n", ("not found",)),
            "huge-stderr": ("import sys\nsys.stderr.write('e' * 20_000_000)\nsys.exit(1)\n", ("exited with code 1",)),
            "nan": ("print('latency: nan ms')\n", ("not a non-negative number",)),
            "negative": ("print('latency: -1 ms')\n", ("not a non-negative number",)),
            "binary": ("import sys\nsys.stdout.buffer.write(bytes(range(256)) * 1000)\n", ("not found",)),
            "sleeps": ("import time\ntime.sleep(60)\n", ("timed out",)),
        }
        for label, (code, names) in scripts.items():
            script = self.sandbox.file(f"profiles/cmd-{label}.py", code)
            data = cmd(command=["{python}", str(script)], timeout_s=3)
            self.bad(f"cmd-run-{label}", data, names, ("measure", "search"), named=False)
        backtrack = self.sandbox.file("profiles/cmd-backtrack.py", "print('a' * 40 + 'b')\n")
        runs = {
            "backtracking": (cmd(command=["{python}", str(backtrack)], pattern=r"^(?P<latency>(a+)+)$", timeout_s=3),
                             ("took longer than timeout_s",)),
            "not-found": (cmd(command=["hwnas-no-such-benchmark", "{model}"]), ("executable not found",)),
            "cwd-file": (cmd(cwd="bench.py"), ("cwd",)),
            "check-fails": (cmd(check=["{python}", "-c", "raise SystemExit('offline')"]), ("check command failed",)),
        }
        for label, (data, names) in runs.items():
            self.bad(f"cmd-run-{label}", data, names, ("measure", "search"), named=False)
        fails = self.sandbox.file("profiles/cmd-fails-later.py", "import sys\nsys.exit(4)\n")
        self.bad("cmd-run-check-passes-command-fails", cmd(command=["{python}", str(fails)], check=["{python}", "-c", "pass"]),
                 (), ("search",), expect="failed")

    # ---- systematic mutations of the built-in profiles ---------------------------------------------------------

    def mutations(self) -> None:
        schema = _kind_schema()
        actions = ("show",) * 3 + ("add", "predict")
        for source in sorted(BUILTIN.glob("*.yaml")):
            base = yaml.safe_load(source.read_text())
            cls = schema[base["kind"]]
            stem = source.stem
            targets: list[tuple[str, list[Any], tuple[str, ...], Any]] = []
            for field, values in TOP_LEVEL.items():
                targets.append((field, values, (field,), lambda d, v, f=field: d.__setitem__(f, v)))
            for key in base["params"]:
                kind = _value_kind(cls, key)
                values = BAD_STRUCTURES[key] if kind is None else BAD[kind] + [None]
                targets.append((key, values, (key,), lambda d, v, k=key: d["params"].__setitem__(k, v)))
                value = base["params"][key]
                if key in ("peak_gflops", "efficiency", "op_overhead_us") and isinstance(value, dict):
                    for sub in value:
                        targets.append((f"{key}.{sub}", BAD["float"] + [None], (key,),
                                        lambda d, v, k=key, s=sub: d["params"][k].__setitem__(s, v)))
                if key == "measure_with" and isinstance(value, dict):
                    for sub, sub_value in value.get("params", {}).items():
                        sub_kind = _value_kind(schema[value["kind"]], sub)
                        targets.append((f"{key}.{sub}", BAD[sub_kind] + [None], (key, sub),
                                        lambda d, v, s=sub: d["params"]["measure_with"]["params"].__setitem__(s, v)))
            for field, values, names, put in targets:
                for value in self.rng.sample(values, 1):
                    data = copy.deepcopy(base)
                    put(data, value)
                    label = f"{stem}-{field}-{values.index(value)}"
                    self.bad(f"mut-{label}", data, names, (self.rng.choice(actions),))
            valid = self.file(f"builtin-{stem}.yaml", source.read_text())
            self.through(f"show-builtin-{stem}", valid, (), "show", expect="ok")


def cases(sandbox: Sandbox, rng: random.Random) -> list[Case]:
    gen = _Gen(sandbox, rng)
    gen.names()
    gen.folder()
    gen.files()
    gen.params()
    gen.command()
    gen.mutations()
    assert sys.executable  # the command profiles run {python}
    return gen.cases
