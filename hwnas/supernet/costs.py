"""Per-op hardware cost lookup tables for DARTS, built by profiling each candidate op in its context.

Each op is exported as a tiny ONNX model with the op's real in/out shape and precision, lowered exactly as a
candidate would be (int8 QDQ, int4 MatMulNBits, fp16, baked ternary/binary), and priced by the selected
profile. A tiny model also carries the profile's fixed per-model cost (launch overhead, I/O …) once, so the
table subtracts it (``overhead`` = c(A) + c(B) − c(A→B) of two chained layers) and calibrates one
``offset`` on a full model exported by the task. A network then costs ``offset + Σ op costs``.
Entries are cached on disk (JSON) per profile definition, so a re-run profiles nothing.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError, ProfileError
from hwnas.lowering import FeatureExporter, lower
from hwnas.models.deploy import DeployableModule
from hwnas.models.ffn import ModeQuant, make_ffn
from hwnas.models.layers import ACTIVATIONS
from hwnas.profiles import Profile

#: Precision of a layer: a mode name (fp32, fp16, int8, int4, ternary, binary) or fixed-point bits.
Precision = Any


class _TinyOp(DeployableModule):
    """One dense layer (``n_in → n_out`` at ``bits``), optionally followed by an activation, or a chain."""

    def __init__(self, layers: Sequence[tuple[int, int, Precision]], activation: str | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make_ffn("dense", i, o, bits=b) for i, o, b in layers)
        self.act = ACTIVATIONS[activation]() if activation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.act(x) if self.act is not None else x

    def quant_layers(self) -> list[ModeQuant]:
        return list(self.layers)


class OpCostTable:
    """Costs of dense layers and activations on one profile, for the metrics asked, profiled on demand."""

    def __init__(self, profile: Profile, metrics: Sequence[str], cache: Path | None = None, seed: int = 0) -> None:
        self.profile, self.metrics, self.seed = profile, list(metrics), seed
        unknown = [m for m in self.metrics if m not in profile.metrics]
        if unknown:
            raise ConfigError(f"profile {profile.name!r} has no metric(s) {unknown}; it has {sorted(profile.metrics)}")
        ident = json.dumps(profile.describe() | {"file": None}, sort_keys=True, default=str)
        self.profile_key = hashlib.sha256(ident.encode()).hexdigest()[:12]
        self.cache = cache
        self.entries: dict[str, dict[str, float]] = {}
        if cache is not None and cache.is_file():
            self.entries = json.loads(cache.read_text()).get(self.profile_key, {})
        self.profiled = 0  # tiny models profiled by this instance (0 when everything came from the cache)
        self.overhead = {m: 0.0 for m in self.metrics}
        self.offset = {m: 0.0 for m in self.metrics}

    # -- raw measurements ------------------------------------------------------------------------------
    def _raw(self, key: str, build: Callable[[], _TinyOp], n_in: int) -> dict[str, float]:
        if key not in self.entries:
            torch.manual_seed(self.seed)
            self.entries[key] = self._price(build(), n_in)
            self.profiled += 1
        return self.entries[key]

    def _price(self, model: _TinyOp, n_in: int) -> dict[str, float]:
        samples = np.random.default_rng(self.seed).standard_normal((256, n_in)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "op.onnx"
            lower(model, path, FeatureExporter(n_in, samples), check_parity=False)
            try:
                result = self.profile.profile(path)
            except ProfileError as exc:
                raise ConfigError(f"profile {self.profile.name!r} cannot price a single layer for DARTS: {exc}") from exc
        return {m: float(result.metrics[m].value) for m in self.metrics}

    def save(self) -> None:
        if self.cache is None:
            return
        data = json.loads(self.cache.read_text()) if self.cache.is_file() else {}
        data[self.profile_key] = self.entries
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        self.cache.write_text(json.dumps(data, indent=1, sort_keys=True))

    # -- op costs (overhead removed) -------------------------------------------------------------------
    def linear(self, n_in: int, n_out: int, bits: Precision) -> dict[str, float]:
        raw = self._raw(f"dense:{n_in}:{n_out}:{bits}", lambda: _TinyOp([(n_in, n_out, bits)]), n_in)
        return {m: raw[m] - self.overhead[m] for m in self.metrics}

    def activation(self, n: int, activation: str) -> dict[str, float]:
        """Cost of ``activation`` on ``n`` values: c(dense n→n + act) − c(dense n→n)."""
        with_act = self._raw(f"dense+{activation}:{n}:{n}", lambda: _TinyOp([(n, n, None)], activation), n)
        plain = self._raw(f"dense:{n}:{n}:None", lambda: _TinyOp([(n, n, None)]), n)
        return {m: with_act[m] - plain[m] for m in self.metrics}

    def calibrate_overhead(self, a: tuple[int, int], b_out: int) -> None:
        """Per-model overhead from two layers priced alone and chained (clipped at 0)."""
        n_in, n_mid = a
        first = self._raw(f"dense:{n_in}:{n_mid}:None", lambda: _TinyOp([(n_in, n_mid, None)]), n_in)
        second = self._raw(f"dense:{n_mid}:{b_out}:None", lambda: _TinyOp([(n_mid, b_out, None)]), n_mid)
        chain = self._raw(f"chain:{n_in}:{n_mid}:{b_out}",
                          lambda: _TinyOp([(n_in, n_mid, None), (n_mid, b_out, None)]), n_in)
        self.overhead = {m: max(0.0, first[m] + second[m] - chain[m]) for m in self.metrics}
