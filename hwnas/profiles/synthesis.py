"""The ``synthesis`` kind: a bespoke printed circuit priced by real logic synthesis.

For each candidate the exact integer network of its ONNX file (:mod:`hwnas.circuit.network`) becomes Verilog
(:mod:`hwnas.circuit.verilog`), which Yosys + ABC map onto a standard-cell Liberty library
(:mod:`hwnas.circuit.synth`; the built-in ``printed-egfet-synth`` uses ``hw_profiles/egfet.lib``). Area is the
sum of the mapped cells' areas, power the sum of their power figures, delay the critical path: provenance
``synthesised``, with the tool, its version and the digests of library, script and circuit in ``details``.
Results are cached by circuit digest (in memory, and in ``<out>/synthesis_cache`` during a search).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.builtin import PROFILES_DIR
from hwnas.errors import CircuitError, ProfileError
from hwnas.precision import FixedPoint
from hwnas.profiles.base import Metric, Profile, ProfileResult, Range
from hwnas.profiles.registry import register_kind

MODULE = "top"


@register_kind
class SynthesisProfile(Profile):
    """A bespoke fixed-point MLP circuit synthesised onto a Liberty library (Yosys + ABC)."""

    kind = "synthesis"
    metrics = {"area_cm2": "cm2", "power_mw": "mW", "delay_ms": "ms"}
    primary_metric = "area_cm2"
    provenance = "synthesised"
    #: A bespoke circuit's cost is set by its constants: the untrained file proves nothing about the trained.
    weight_dependent = frozenset(metrics)
    defaults: dict[str, Any] = {"weight_bits": 8, "input_bits": 4, "library": "egfet.lib", "timeout_s": 1800.0,
                                "cache_dir": None}
    ranges = {"weight_bits": Range(2, 32, integer=True), "input_bits": Range(1, 32, integer=True),
              "timeout_s": Range(1.0, 86400.0)}

    _cache: Path | None = None

    def fixed_point(self) -> FixedPoint:
        return FixedPoint(int(self.params["weight_bits"]), int(self.params["input_bits"]))

    def library(self) -> Path:
        """The Liberty file: absolute, or relative to this definition's folder, else to the built-in ones."""
        name = Path(str(self.params["library"])).expanduser()
        for folder in ([self.path.parent] if self.path else []) + [PROFILES_DIR]:
            candidate = name if name.is_absolute() else folder / name
            if candidate.is_file():
                return candidate
        raise ProfileError(f"profile {self.name!r}: library {str(name)!r} not found (a Liberty .lib file, absolute "
                           "or next to the profile definition)")

    def available(self) -> str | None:
        from hwnas.circuit.synth import backend

        try:
            backend()
            self.library()
        except ProfileError as exc:
            return str(exc)
        return None

    def bind(self, out_dir: Path) -> None:
        self._cache = Path(out_dir) / "synthesis_cache"

    def profile(self, onnx_path: Path) -> ProfileResult:
        from hwnas.circuit.network import integer_network
        from hwnas.circuit.synth import synthesise
        from hwnas.circuit.verilog import circuit_verilog

        try:
            net = integer_network(onnx_path)
        except CircuitError as exc:
            raise ProfileError(str(exc)) from None
        cache = Path(self.params["cache_dir"]).expanduser() if self.params["cache_dir"] else self._cache
        report = synthesise(circuit_verilog(net, MODULE), MODULE, self.library(),
                            timeout_s=float(self.params["timeout_s"]), cache_dir=cache)
        details = {
            "tool": report.tool, "tool_version": report.tool_version, "library": report.library,
            "library_digest": report.library_digest, "script_digest": report.script_digest,
            "verilog_digest": report.verilog_digest, "circuit_digest": net.digest(), "cells": dict(report.cells),
            "seconds": report.seconds, "topology": [net.n_inputs] + [layer.fan_out for layer in net.layers],
            "weight_bits": list(net.weight_bits), "input_bits": net.input_bits,
        }
        values = {"area_cm2": report.area_cm2, "power_mw": report.power_mw, "delay_ms": report.delay_ms}
        return ProfileResult(self.name, {
            name: Metric(name, float(values[name]), unit, "synthesised", details)
            for name, unit in self.metrics.items()
        })
