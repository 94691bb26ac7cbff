"""Fuzz cases: malformed search-space files, through ``hwnas spaces show`` and ``hwnas search``.

Hand-written cases for each kind of mistake (values outside what a builder takes, mistakes between parameters
that only the dry build of the smallest and largest configuration finds, expression and depth bombs, broken
structure, encodings, sizes), then systematic mutations of the built-in spaces: each field dropped or replaced
by a value of a wrong type or range. Every mutation chosen is invalid by construction (those that might be
valid, like a huge ``step``, are not drawn), so each expects exit 2 and one line naming the file and the field.
Most cases run ``spaces show`` (cheap); the dry-build cases and a share of the others run a one-trial,
one-epoch ``search``, which fails before any data is trained on. A handful of valid spaces expect success
(two of them train: they cost seconds).
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any

import yaml

from fuzzing import Case, Sandbox

BUILTIN = Path(__file__).resolve().parent.parent / "search_spaces"
VALID = "name: ok\nmodel: mlp\nparams:\n  width: {type: int, low: 2, high: 8}\n"
TINY_LM = {"seq_len": 16, "steps_per_epoch": 2, "batch_size": 4}
DEPTH_2 = "  depth: {type: int, low: 1, high: 2}"

#: Wrong values a field may be replaced by (label → value).
WRONG: dict[str, Any] = {
    "none": None, "true": True, "str": "abc", "empty_str": "", "list": [1, 2], "nested": [[1]], "empty_list": [],
    "dict": {"a": 1}, "nan": math.nan, "inf": math.inf, "huge": 10**30, "negative": -5, "unknown": "no_such_name",
}
#: The wrong values that may still be valid for a kind of field (never drawn for it).
MAYBE_VALID = {
    "int_step": {"huge"}, "float_step": {"none", "huge"}, "float_high": {"huge"}, "log": {"true"},
    "per_layer": {"none"}, "when": {"none"}, "choices": {"list"}, "constraints": {"none", "empty_list"},
    "fixed": {"none"}, "name": {"str", "empty_str", "unknown"},
}


class Cases:
    """Writes each case's file and collects its :class:`Case`: ``show`` (``spaces show FILE``) or ``search``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.cases: list[Case] = []

    def write(self, name: str, content: str | bytes | dict) -> Path:
        if isinstance(content, dict):
            content = yaml.safe_dump(content, sort_keys=False)
        return self.sandbox.file(f"spaces/{name}.yaml", content)

    def show(self, name: str, content: str | bytes | dict, *names: str, expect: str = "error") -> None:
        path = self.write(name, content)
        self.cases.append(Case(f"space-show-{name}", ["spaces", "show", str(path)], expect=expect,
                               names=(str(path), *names)))

    def search(self, name: str, content: str | bytes | dict, *names: str, dataset: str = "iris",
               expect: str = "error") -> None:
        path = self.write(name, content)
        case_id = f"space-search-{name}"
        argv = ["search", str(path), "--dataset", dataset, "--profile", "cpu-host-model", "--trials", "1",
                "--epochs", "1", "--no-progress", "--out", str(self.sandbox.out(case_id))]
        self.cases.append(Case(case_id, argv, expect=expect, names=(str(path), *names),
                               timeout_s=120 if expect == "ok" else 30))

    def either(self, use_search: bool, name: str, content: str | bytes | dict, *names: str,
               dataset: str = "iris") -> None:
        if use_search:
            self.search(name, content, *names, dataset=dataset)
        else:
            self.show(name, content, *names)


def cases(sandbox: Sandbox, rng: random.Random) -> list[Case]:
    c = Cases(sandbox)
    _valid(c)
    _domains(c)
    _relational(c)
    _expressions(c)
    _sizes(c, sandbox)
    _structure(c)
    _encodings(c)
    _mutations(c, rng)
    return c.cases


def _mlp(params: str, fixed: str = "{}", constraints: str = "[]") -> str:
    return f"model: mlp\nparams:\n{params}\nfixed: {fixed}\nconstraints: {constraints}\n"


def _lm(params: str, fixed: str = "{}", constraints: str = "[]") -> str:
    return f"model: transformer\nparams:\n{params}\nfixed: {fixed}\nconstraints: {constraints}\n"


def _valid(c: Cases) -> None:
    c.show("valid", VALID, expect="ok")
    for path in sorted(BUILTIN.glob("*.yaml")):
        c.show(f"valid-builtin-{path.stem}", path.read_bytes(), expect="ok")
    deep = "  depth: {type: int, low: 1, high: 64}\n  width: {type: int, low: 2, high: 8, per_layer: depth}\n" \
           "  ffn: {type: categorical, choices: [dense, lowrank], per_layer: depth}\n" \
           "  rank: {type: int, low: 1, high: 4, per_layer: depth, when: {ffn: lowrank}}"
    c.show("valid-64-layers", _mlp(deep, constraints="[rank < width]"), expect="ok")
    c.show("valid-string-floats", _mlp("  lr: {type: float, low: 1e-3, high: 1e-2, log: true}"), expect="ok")
    c.show("valid-fixed-per-layer", _mlp("  activation: [relu, gelu]", "{depth: 2, width: [8, null]}"), expect="ok")
    c.search("valid-tiny-mlp", VALID, expect="ok")
    c.search("valid-tiny-lm", _lm("  depth: {type: int, low: 1, high: 2}\n  heads: [1, 2]",
                                  str({"d_model": 8, **TINY_LM})), dataset="pydoc_topics", expect="ok")


def _domains(c: Cases) -> None:
    """A value outside what the builder takes: fixed or searched, every kind of domain."""
    width = "  width: {type: int, low: 2, high: 8}"
    fixed = {
        "batch_size": ["0", "-8", "abc", "null", ".inf", "1.0e+9", "true", "2.5", "[32]", "32.0"],
        "lr": ["-1", "0", "fast", ".nan", "true", "[0.1]"],
        "weight_decay": ["-0.1", ".inf"], "dropout": ["1.0", "-0.5"], "activation": ["tanh", "[relu, tanh]", "[]"],
        "quant": ["int16", "8", "[fp32, int3]"], "ffn": ["sparse"], "sparsity_kind": ["dense"],
        "sparsity_scope": ["all"], "sparsity": ["1.5", "1.0", "-0.1"], "rank": ["0"], "blocks": ["0"],
        "experts": ["0", "100"], "top_k": ["0"], "expansion": ["0", "-1", "1000"],
        "weight_bits": ["0", "1", "64", "'8'"], "input_bits": ["0", "33", "[4, 4]"], "depth": ["0", "65", "[2]"],
        "sparsity_block": ["0", "100000"], "width": ["-8", "0", "100000", "[8, abc]", "[]", "[" + "8, " * 70 + "8]"],
    }
    i = 0
    for key, values in fixed.items():
        for n, value in enumerate(values):
            params = DEPTH_2 if key == "width" else width
            c.either(i % 3 == 0, f"domain-fixed-{key}-{n}", _mlp(params, f"{{{key}: {value}}}"), f"fixed.{key}")
            i += 1
    searched = {
        "lr": "{type: float, low: -1.0, high: 0.1}", "lr-choices": "[fast, 0.1]", "activation": "[relu, tanh]",
        "quant": "{type: categorical, choices: [fp32, int3]}", "ffn": "[dense, sparse]",
        "width": "{type: int, low: -8, high: 8}", "width-high": "{type: int, low: 2, high: 100000}",
        "width-float": "{type: float, low: 2, high: 8}", "rank": "[0, 2]",
        "weight_bits": "{type: int, low: 2, high: 64}", "weight_bits-low": "{type: int, low: 0, high: 8}",
        "sparsity": "{type: float, low: 0.5, high: 1.5}", "batch_size": "[0, 32]", "batch_size-bool": "[true, 32]",
        "dropout": "{type: float, low: 0.0, high: 1.0}", "experts": "[2, 1000]", "expansion": "[0, 2]",
        "sparsity_kind": "[none, dense]",
    }
    for n, (key, spec) in enumerate(searched.items()):
        name = key.split("-")[0]
        c.either(n % 3 == 1, f"domain-param-{key}", _mlp(f"  {name}: {spec}"), f"params.{name}")
    lm = {
        "d_model": ("  d_model: [0, 32]", "params.d_model"),
        "d_model-huge": ("  d_model: [32, 5000]", "params.d_model"),
        "heads": ("  heads: {type: int, low: 0, high: 4}", "params.heads"),
        "seq_len": ("  depth: [1]", "fixed.seq_len", "{seq_len: 0}"),
        "seq_len-huge": ("  depth: [1]", "fixed.seq_len", "{seq_len: 1000000}"),
        "level": ("  depth: [1]", "fixed.level", "{level: word}"),
        "steps": ("  depth: [1]", "fixed.steps_per_epoch", "{steps_per_epoch: many}"),
        "steps-0": ("  depth: [1]", "fixed.steps_per_epoch", "{steps_per_epoch: 0}"),
        "activation-per-layer": (DEPTH_2 + "\n  activation: {type: categorical, choices: [relu], per_layer: depth}",
                                 "params.activation.per_layer"),
        "width": ("  width: [8]", "params.width"),
    }
    for n, (key, (params, field, *fixed_text)) in enumerate(lm.items()):
        c.either(n % 3 == 2, f"domain-lm-{key}", _lm(params, *fixed_text), field, dataset="pydoc_topics")
    c.show("domain-per-layer-lr", _mlp(DEPTH_2 + "\n  lr: {type: float, low: 0.1, high: 0.2, per_layer: depth}"),
           "params.lr.per_layer")
    c.search("domain-per-layer-not-depth", _mlp("  width: {type: int, low: 1, high: 3}\n"
                                                "  ffn: {type: categorical, choices: [dense], per_layer: width}"),
             "params.ffn.per_layer")


def _relational(c: Cases) -> None:
    """Every value is fine on its own; the smallest or largest configuration cannot be built (dry build)."""
    mlp = {
        "blocks-raw-features": ("  ffn: [dense, blockdiag]\n  blocks: {type: categorical, choices: [8], "
                                "when: {ffn: blockdiag}}", "{width: 8}", "blocks"),
        "blocks-width": (DEPTH_2 + "\n  width: {type: int, low: 6, high: 12, per_layer: depth}\n"
                         "  ffn: {type: categorical, choices: [dense, blockdiag], per_layer: depth}\n"
                         "  blocks: {type: categorical, choices: [8], per_layer: depth, when: {ffn: blockdiag}}",
                         "{}", "blocks", "[\"layer > 0 or ffn != 'blockdiag'\"]"),
        "int4-blockdiag": ("  ffn: [dense, blockdiag]\n  quant: [fp32, int4]\n  blocks: [2]", "{width: 8}", "int4"),
        "width-list-length": ("  depth: {type: int, low: 1, high: 3}", "{width: [8, 8]}", "width"),
        "scope-global-nm": ("  sparsity_kind: [none, nm]", "{sparsity_scope: global}", "sparsity_scope"),
        "bits-and-quant": ("  quant: [fp32, int8]", "{weight_bits: 4}", "weight_bits"),
        "top-k-experts": ("  top_k: [1, 4]", "{ffn: moe, experts: 2, expansion: 1}", "top_k"),
        "lowrank-no-rank": ("  ffn: [dense, lowrank]", "{}", "rank"),
        "moe-no-experts": ("  ffn: [dense, moe]", "{expansion: 1}", "experts"),
        "blockdiag-no-blocks": ("  ffn: [dense, blockdiag]", "{}", "blocks"),
        "block-no-side": ("  sparsity_kind: [none, block]", "{sparsity: 0.5}", "sparsity_block"),
        "glu-no-expansion": ("  ffn: [dense, swiglu]", "{}", "expansion"),
    }
    for key, (params, fixed, field, *constraints) in mlp.items():
        c.search(f"dry-{key}", _mlp(params, fixed, *constraints), field)
    lm = {
        "heads-d-model": ("  d_model: [30, 64]\n  heads: [4]", {}, "heads"),
        "heads-above-d-model": ("  d_model: [4, 8]\n  heads: [2, 16]", {}, "heads"),
        "blocks-d-model": ("  ffn: [dense, blockdiag]\n  blocks: [3]", {"d_model": 8}, "blocks"),
        "int4-blockdiag": ("  ffn: [blockdiag]\n  quant: [int4]\n  blocks: [2]", {"d_model": 8}, "int4"),
        "bits-and-quant": ("  quant: [fp32, fp16]", {"weight_bits": 4, "d_model": 8}, "weight_bits"),
    }
    for key, (params, fixed, field) in lm.items():
        c.search(f"dry-lm-{key}", _lm(params, str({**TINY_LM, **fixed})), field, dataset="pydoc_topics")


def _expressions(c: Cases) -> None:
    """Constraints: bombs (power, repetition, overflow, nesting, length), calls, and syntax outside the language."""
    bombs = {
        "pow-tower": "9 ** 9 ** 9 > depth", "pow-big": "2 ** 10 ** 6 > depth", "pow-float": "2.0 ** 100000 > depth",
        "repeat": "len('a' * 10 ** 10) > depth", "repeat-tuple": "len((1, 2) * 10 ** 9) > depth",
        "product": "(10 ** 1000) * (10 ** 1000) > depth", "min-empty": "min(()) < depth",
        "max-empty": "max('') < depth", "div-overflow": "10 ** 400 / 3 > depth", "unary": "-" * 100_000 + "depth < 0",
        "unary-999": "-" * 999 + "1 < depth", "unary-40": "-" * 40 + "depth < 0",
        "nested": "(" * 500 + "depth" + ")" * 500 + " > 0", "nested-250": "(" * 250 + "depth" + ")" * 250 + " > 0",
        "long": "depth > 0 and " * 200 + "depth > 0", "format": "len('%9999999999d' % 1) > depth",
        "import": "__import__('os') == depth", "attribute": "depth.__class__ == 1", "lambda": "(lambda: 1)() == depth",
        "comprehension": "[x for x in ()] == depth", "fstring": "f'{depth}' == '1'",
        "ifexp": "(1 if depth else 2) == 1",
        "subscript": "depth[0] == 1", "complex": "1j != depth", "ellipsis": "... != depth", "bytes": "b'x' != depth",
        "walrus": "(x := depth) > 0", "keyword": "min(depth, key=abs) > 0", "starred": "min(*depth) > 0",
        "syntax": "depth <", "empty": "", "unknown-name": "depth < widht", "contradictory": "depth > 5",
        "bitshift": "1 << depth > 0", "sum-strings": "sum(('a', 'b')) == depth",
    }
    for n, (key, text) in enumerate(bombs.items()):
        body = _mlp("  depth: {type: int, low: 1, high: 3}", constraints=json.dumps([text]))
        c.either(n % 4 == 0, f"expr-{key}", body, "constraints")
    per_layer = _mlp("  depth: {type: int, low: 1, high: 3}\n  width: {type: int, low: 2, high: 64, per_layer: depth}",
                     constraints="['2 ** 2 ** width > depth']")
    c.show("expr-per-layer-pow", per_layer, "constraints[0]")
    many = _mlp("  depth: {type: int, low: 1, high: 3}", constraints=json.dumps(["depth > 0"] * 65))
    c.show("expr-too-many", many, "constraints")


def _sizes(c: Cases, sandbox: Sandbox) -> None:
    """Depth, list lengths, parameter and constraint counts, file size, YAML nesting and aliases."""
    c.either(True, "size-depth-per-layer", _mlp("  depth: {type: int, low: 1, high: 1000000}\n"
                                                "  width: {type: int, low: 2, high: 8, per_layer: depth}"),
             "params.depth.high")
    c.show("size-depth-65", _mlp("  depth: {type: int, low: 1, high: 65}\n  ffn: {type: categorical, choices: [dense], "
                                 "per_layer: depth}"), "params.depth.high")
    c.show("size-params-20k", "model: mlp\nparams:\n" + "".join(f"  p{i}: [1, 2]\n" for i in range(20_000)),
           "params.p0")
    c.show("size-params-200k", "model: mlp\nparams:\n" + "".join(f"  p{i}: [1, 2]\n" for i in range(200_000)))
    c.show("size-constraints-20k", _mlp("  depth: [1, 2]", constraints=json.dumps(["depth > 0"] * 20_000)),
           "constraints")
    c.show("size-choices-100k", _mlp("  width: [" + ", ".join(["8"] * 100_000) + "]"))
    c.show("size-nesting", "model: mlp\nparams: " + "[" * 10_000 + "]" * 10_000 + "\n")
    c.show("size-nesting-maps", "model: mlp\nparams: " + "{a: " * 200 + "1" + "}" * 200 + "\n")
    bomb = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))
    c.show("size-alias-bomb", bomb + "model: mlp\nparams: {width: [1]}\n")
    c.show("size-long-name", f"name: {'n' * 900_000}\nmodel: mlp\nparams:\n  width: [8]\n", expect="ok")
    c.show("size-huge-file", "# " + "x" * (2 << 20) + "\n" + VALID)
    c.show("size-huge-int", _mlp("  width: {type: int, low: 2, high: " + "9" * 4000 + "}"), "params.width.high")
    c.show("size-int-5000-digits", _mlp("  width: {type: int, low: 2, high: " + "9" * 5000 + "}"))
    c.show("size-depth-list", _mlp("  depth: [1, 2]", "{width: [" + ", ".join(["8"] * 100) + "]}"), "fixed.width")
    fifo = sandbox.inputs / "spaces" / "fifo.yaml"
    fifo.parent.mkdir(parents=True, exist_ok=True)
    if not fifo.exists():
        os.mkfifo(fifo)
    c.cases.append(Case("space-show-fifo", ["spaces", "show", str(fifo)], names=(str(fifo),)))
    c.cases.append(Case("space-show-folder", ["spaces", "show", str(sandbox.inputs / "spaces")],
                        names=(str(sandbox.inputs / "spaces"),)))
    missing = sandbox.inputs / "spaces" / "missing.yaml"
    c.cases.append(Case("space-show-missing", ["spaces", "show", str(missing)], names=(str(missing),)))
    c.cases.append(Case("space-show-no-name", ["spaces", "show"], names=("spaces show",)))


def _structure(c: Cases) -> None:
    """The shape of the file: wrong types where a mapping, list, string, number or bool is expected."""
    top = {
        "empty": ("", ()), "comment": ("# nothing\n", ()), "list": ("- model: mlp\n", ()), "scalar": ("mlp\n", ()),
        "two-docs": ("model: mlp\n---\nmodel: mlp\n", ()), "tabs": ("model: mlp\nparams:\n\twidth: [1]\n", ()),
        "nul": ("model: mlp\x00\n", ()), "not-yaml": ("params: [", ()),
        "no-model": ("params: {width: [1, 2]}\n", ("model",)), "no-params": ("model: mlp\n", ("params",)),
        "params-null": ("model: mlp\nparams: null\n", ("params",)),
        "params-list": ("model: mlp\nparams: [1]\n", ("params",)),
        "params-empty": ("model: mlp\nparams: {}\n", ("params",)),
        "params-key-int": ("model: mlp\nparams: {1: [2]}\n", ("params.1",)),
        "params-key-null": ("model: mlp\nparams: {null: [2]}\n", ("params.None",)),
        "params-key-list": ("model: mlp\nparams: {[1]: [2]}\n", ()),
        "model-list": ("model: [mlp]\nparams: {width: [8]}\n", ("model",)),
        "model-null": ("model: null\nparams: {width: [8]}\n", ("model",)),
        "model-unknown": ("model: cnn\nparams: {width: [8]}\n", ("model",)),
        "name-list": ("name: [a]\nmodel: mlp\nparams: {width: [8]}\n", ("name",)),
        "name-null": ("name: null\nmodel: mlp\nparams: {width: [8]}\n", ("name",)),
        "description-map": ("description: {a: 1}\nmodel: mlp\nparams: {width: [8]}\n", ("description",)),
        "extra-top": ("model: mlp\nparams: {width: [8]}\nextra: 1\n", ("extra",)),
        "extra-top-int-keys": ("model: mlp\nparams: {width: [8]}\n1: 1\nfoo: 2\n", ("1",)),
        "fixed-list": ("model: mlp\nparams: {width: [8]}\nfixed: [1]\n", ("fixed",)),
        "fixed-false": ("model: mlp\nparams: {width: [8]}\nfixed: false\n", ("fixed",)),
        "fixed-key-int": ("model: mlp\nparams: {width: [8]}\nfixed: {1: 2}\n", ("fixed.1",)),
        "fixed-unknown": ("model: mlp\nparams: {width: [8]}\nfixed: {widht: 2}\n", ("fixed.widht",)),
        "fixed-and-param": ("model: mlp\nparams: {width: [8]}\nfixed: {width: 8}\n", ("params.width",)),
        "constraints-str": ("model: mlp\nparams: {width: [8]}\nconstraints: width > 1\n", ("constraints",)),
        "constraints-int": ("model: mlp\nparams: {width: [8]}\nconstraints: [1]\n", ("constraints",)),
        "constraints-map": ("model: mlp\nparams: {width: [8]}\nconstraints: {a: 1}\n", ("constraints",)),
        "constraints-empty-str": ("model: mlp\nparams: {width: [8]}\nconstraints: ''\n", ("constraints",)),
        "bad-date": ("model: mlp\nparams: {width: [8]}\nfixed: {lr: 2024-13-45}\n", ()),
        "date-value": ("model: mlp\nparams: {width: [8]}\nfixed: {lr: 2024-01-01}\n", ("fixed.lr",)),
    }
    for key, (text, names) in top.items():
        c.show(f"shape-{key}", text, *names)
    param = {
        "null": "null", "int": "5", "str": "int", "type-map": "{type: {a: 1}, low: 1, high: 2}",
        "type-list": "{type: [int], low: 1, high: 2}", "type-missing": "{low: 1, high: 2}",
        "type-null": "{type: null, low: 1, high: 2}", "type-bad": "{type: integer, low: 1, high: 2}",
        "low-true": "{type: int, low: true, high: 3}", "high-float": "{type: int, low: 1, high: 2.5}",
        "low-str": "{type: int, low: '1', high: 3}", "low-null": "{type: int, low: null, high: 3}",
        "low-above-high": "{type: int, low: 4, high: 2}", "no-high": "{type: int, low: 1}",
        "step-0": "{type: int, low: 1, high: 8, step: 0}", "step-null": "{type: int, low: 1, high: 8, step: null}",
        "step-true": "{type: int, low: 1, high: 8, step: true}", "log-str": "{type: int, low: 1, high: 8, log: 'yes'}",
        "log-int": "{type: int, low: 1, high: 8, log: 1}",
        "log-step": "{type: int, low: 1, high: 8, log: true, step: 2}",
        "log-zero": "{type: int, low: 0, high: 8, log: true}",
        "extra-field": "{type: int, low: 1, high: 8, choices: [1]}",
        "extra-int-keys": "{type: int, low: 1, high: 8, 1: 2, x: 3}", "choices-empty": "[]",
        "choices-null": "{type: categorical, choices: null}", "choices-map": "{type: categorical, choices: {a: 1}}",
        "choices-str": "{type: categorical, choices: abc}", "choices-nested": "[[1], 2]",
        "choices-null-item": "[null, 8]",
        "choices-dup": "[8, 8]", "choices-nan": "[.nan, 8]", "choices-inf": "[.inf]", "choices-bool": "[true, 8]",
        "choices-float": "[8.0, 16]", "choices-map-item": "[{a: 1}]",
        "per-layer-int": "{type: int, low: 1, high: 8, per_layer: 5}",
        "per-layer-list": "{type: int, low: 1, high: 8, per_layer: [depth]}",
        "per-layer-unknown": "{type: int, low: 1, high: 8, per_layer: layers}",
        "per-layer-self": "{type: int, low: 1, high: 8, per_layer: width}",
    }
    for key, spec in param.items():
        c.show(f"shape-param-{key}", _mlp(f"  width: {spec}"), "params.width")
    floats = {
        "low-true": "{type: float, low: true, high: 0.1}", "low-nan": "{type: float, low: .nan, high: 0.1}",
        "high-inf": "{type: float, low: 0.001, high: .inf}", "low-null": "{type: float, low: null, high: 0.1}",
        "high-str": "{type: float, low: 0.001, high: fast}",
        "step-nan": "{type: float, low: 0.001, high: 0.1, step: .nan}",
        "step-true": "{type: float, low: 0.001, high: 0.1, step: true}",
        "step-neg": "{type: float, low: 0.001, high: 0.1, step: -0.1}",
        "step-inf": "{type: float, low: 0.001, high: 0.1, step: .inf}",
        "high-list": "{type: float, low: 0.001, high: [1]}",
    }
    for key, spec in floats.items():
        c.show(f"shape-float-{key}", _mlp(f"  lr: {spec}"), "params.lr")
    depth = "  depth: {type: int, low: 1, high: 3}\n"
    ffn = depth + "  ffn: {type: categorical, choices: [dense, lowrank], per_layer: depth}\n"
    rank = ffn + "  rank: {type: int, low: 1, high: 3, per_layer: depth, when: WHEN}"
    links = {
        "when-empty": (rank.replace("WHEN", "{ffn: []}"), "params.rank.when"),
        "when-list": (rank.replace("WHEN", "[ffn]"), "params.rank.when"),
        "when-str": (rank.replace("WHEN", "ffn"), "params.rank.when"),
        "when-map-value": (rank.replace("WHEN", "{ffn: {a: 1}}"), "params.rank.when"),
        "when-int-key": (rank.replace("WHEN", "{1: dense}"), "params.rank.when"),
        "when-unknown": (rank.replace("WHEN", "{ffn: sparse}"), "params.rank.when.ffn"),
        "when-null-value": (rank.replace("WHEN", "{ffn: null}"), "params.rank.when.ffn"),
        "when-self": (depth + "  ffn: {type: categorical, choices: [dense], when: {ffn: dense}}", "params.ffn.when"),
        "when-cycle": ("  ffn: {type: categorical, choices: [dense], when: {quant: fp32}}\n"
                       "  quant: {type: categorical, choices: [fp32], when: {ffn: dense}}", "when"),
        "when-global-on-per-layer": (ffn + "  sparsity_kind: {type: categorical, choices: [none], when: {ffn: dense}}",
                                     "params.sparsity_kind.when"),
        "depth-categorical": ("  depth: [1, 2]\n  width: {type: int, low: 2, high: 8, per_layer: depth}",
                              "params.width.per_layer"),
        "depth-zero": ("  depth: {type: int, low: 0, high: 2}\n  width: {type: int, low: 2, high: 8, per_layer: depth}",
                       "params.depth.low"),
        "depth-conditional": ("  ffn: [dense]\n  depth: {type: int, low: 1, high: 2, when: {ffn: dense}}\n"
                              "  width: {type: int, low: 2, high: 8, per_layer: depth}", "params.width.per_layer"),
    }
    for key, (params, field) in links.items():
        c.show(f"shape-link-{key}", _mlp(params), field)


def _encodings(c: Cases) -> None:
    text = VALID.replace("name: ok", "name: ok\ndescription: Größe")
    c.show("enc-latin1", text.encode("latin-1"))
    c.show("enc-utf16", text.encode("utf-16"))
    c.show("enc-utf32", text.encode("utf-32"))
    c.show("enc-bytes", VALID.encode() + b"description: \xff\xfe\x80\n")
    c.show("enc-utf8-bom", b"\xef\xbb\xbf" + text.encode(), expect="ok")
    c.show("enc-binary", bytes(range(256)) * 4)


def _mutations(c: Cases, rng: random.Random) -> None:
    """Each field of each built-in space dropped or replaced by wrong values (two drawn per field)."""
    for path in sorted(BUILTIN.glob("*.yaml")):
        space = yaml.safe_load(path.read_text())
        stem = path.stem
        dataset = "pydoc_topics" if space["model"] == "transformer" else "iris"
        for where, field, kind, mutate in _fields(space):
            wrong = sorted(set(WRONG) - MAYBE_VALID.get(kind, set()))
            for label in rng.sample(wrong, 2):
                data = yaml.safe_load(path.read_text())
                mutate(data, WRONG[label])
                c.either(rng.random() < 0.2, f"mut-{stem}-{where}-{label}", data, field, dataset=dataset)
        for where, drop in _drops(space):
            data = yaml.safe_load(path.read_text())
            drop(data)
            c.show(f"mut-{stem}-{where}-dropped", data, where)
        for where, content in _additions(space):
            data = yaml.safe_load(path.read_text())
            content(data)
            c.show(f"mut-{stem}-{where}-added", data, where)


def _setter(*keys: Any) -> Any:
    def mutate(data: dict, value: Any) -> None:
        target = data
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return mutate


def _fields(space: dict) -> list[tuple[str, str, str, Any]]:
    """(field, what the error must name, kind, setter) of every field of ``space`` a wrong value can replace.
    A wrong bound may be reported as ``low (..) must be <= high (..)`` on the other bound: the parameter is named."""
    out: list[tuple[str, str, str, Any]] = [
        ("model", "model", "model", _setter("model")), ("params", "params", "params", _setter("params")),
        ("name", "name", "name", _setter("name")), ("description", "description", "name", _setter("description"))]
    if "fixed" in space:
        out.append(("fixed", "fixed", "fixed", _setter("fixed")))
        out += [(f"fixed.{k}", f"fixed.{k}", "fixed_value", _setter("fixed", k)) for k in space["fixed"]]
    if "constraints" in space:
        out.append(("constraints", "constraints", "constraints", _setter("constraints")))
        out += [(f"constraints[{i}]", "constraints", "constraint", _setter("constraints", i))
                for i in range(len(space["constraints"]))]
    for name, spec in space["params"].items():
        base = f"params.{name}"
        out.append((f"{base}.type", f"{base}.type", "type", _setter("params", name, "type")))
        if spec["type"] == "categorical":
            out.append((f"{base}.choices", f"{base}.choices", "choices", _setter("params", name, "choices")))
            out.append((f"{base}.choices[0]", f"{base}.choices", "choice",
                        lambda d, v, n=name: d["params"][n]["choices"].__setitem__(0, v)))
        else:
            kind = spec["type"]
            out += [(f"{base}.{key}", base, f"{kind}_{key}", _setter("params", name, key))
                    for key in ("low", "high", "step")]
            out.append((f"{base}.log", f"{base}.log", "log", _setter("params", name, "log")))
        if "per_layer" in spec:
            out.append((f"{base}.per_layer", f"{base}.per_layer", "per_layer", _setter("params", name, "per_layer")))
        if "when" in spec:
            out.append((f"{base}.when", f"{base}.when", "when", _setter("params", name, "when")))
            key = next(iter(spec["when"]))
            out.append((f"{base}.when.{key}", f"{base}.when.{key}", "when_value", _setter("params", name, "when", key)))
    return out


def _drops(space: dict) -> list[tuple[str, Any]]:
    """(field, dropper) of the fields a space cannot do without."""
    out = [("model", lambda d: d.pop("model")), ("params", lambda d: d.pop("params"))]
    for name, spec in space["params"].items():
        base = f"params.{name}"
        out.append((f"{base}.type", lambda d, n=name: d["params"][n].pop("type")))
        keys = ["choices"] if spec["type"] == "categorical" else ["low", "high"]
        out += [(f"{base}.{k}", lambda d, n=name, k=k: d["params"][n].pop(k)) for k in keys]
    return out


def _additions(space: dict) -> list[tuple[str, Any]]:
    """(field, adder) of fields no space may have."""
    first = next(iter(space["params"]))
    return [("bogus", lambda d: d.__setitem__("bogus", 1)),
            ("params.bogus", lambda d: d["params"].__setitem__("bogus", [1, 2])),
            (f"params.{first}.bogus", lambda d: d["params"][first].__setitem__("bogus", 1)),
            ("fixed.bogus", lambda d: d.setdefault("fixed", {}).__setitem__("bogus", 1))]
