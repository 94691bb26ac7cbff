"""The one lowering pipeline: a trained model becomes the ONNX file that is deployed, profiled and exported.

bake (weights onto their fixed-point / ternary / binary grid) → export the fp32 graph with its metadata →
convert the int8 / fp16 / int4 nodes (:func:`~hwnas.lowering.precision.deploy`) → check that the graph holds
every weight in its stated precision and zeros (``hwnas.layers``) → check parity with torch when nothing was
converted → digest. The search, the one-shot strategies, calibration and the benchmarks all lower through
:func:`lower`, so the file that is profiled is the file that is exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

from hwnas import __version__
from hwnas.errors import CandidateError
from hwnas.lowering.export import Exporter
from hwnas.lowering.metadata import graph_digest, set_metadata
from hwnas.lowering.precision import deploy, verify
from hwnas.precision import CONVERTED, WeightPrecision

#: An fp32 export must reproduce the torch model to this tolerance (max abs difference of the outputs).
PARITY_TOLERANCE = 1e-4


class Lowerable(Protocol):
    """What a model offers the lowering (:class:`hwnas.models.deploy.DeployableModule` implements it)."""

    def bake(self) -> None: ...

    def weight_modes(self) -> Mapping[str, str]: ...

    def weight_report(self) -> list[WeightPrecision]: ...

    def fixed_point(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class LoweredModel:
    """The deployed file and what was checked on the way."""

    path: Path
    weights: tuple[WeightPrecision, ...]
    #: Weight name → mode of the weights whose nodes were converted (int8 / fp16 / int4).
    converted: Mapping[str, str]
    #: Max abs difference torch vs ONNX Runtime (None when nodes were converted: they round on purpose).
    max_abs_diff: float | None
    graph_sha256: str


def lower(model: Lowerable, path: Path, exporter: Exporter, metadata: Mapping[str, Any] | None = None, *,
          check_parity: bool = True) -> LoweredModel:
    """Lower ``model`` to ``path`` as it is deployed; raise :class:`~hwnas.errors.CandidateError` on any failure.

    ``metadata`` goes into the file's ``metadata_props`` together with ``hwnas.version``, ``hwnas.layers`` (per
    weight: precision, zeros, 2:4) and, for fixed-point models, ``hwnas.fixed_point``."""
    model.bake()
    weights = tuple(model.weight_report())
    meta: dict[str, Any] = {"hwnas.version": __version__, **(metadata or {})}
    fixed_point = model.fixed_point()
    if fixed_point:
        meta["hwnas.fixed_point"] = fixed_point
    if weights:
        meta["hwnas.layers"] = [w.to_dict() for w in weights]
    path.parent.mkdir(parents=True, exist_ok=True)
    exporter.export(model, path, meta)  # type: ignore[arg-type]
    converted = converted_weights(model)
    if converted:
        fp32 = path.with_suffix(".fp32.onnx")
        path.replace(fp32)
        deploy(fp32, path, converted, exporter.calibration_feeds())  # on failure the fp32 file stays, to inspect
        set_metadata(path, meta)
        fp32.unlink()
    verify(path, weights)
    diff = None
    if check_parity and not converted:
        diff = _parity(exporter, model, path)
    return LoweredModel(path, weights, converted, diff, graph_digest(path))


def _parity(exporter: Exporter, model: Any, path: Path) -> float:
    try:
        diff = exporter.parity(model, path)
    except Exception as exc:  # onnxruntime refusing the file is a failure of this candidate's lowering
        raise CandidateError(f"ONNX Runtime cannot run the exported file: {type(exc).__name__}: {exc}") from exc
    if not diff <= PARITY_TOLERANCE:
        raise CandidateError(f"exported ONNX differs from the torch model by {diff:.3g} (> {PARITY_TOLERANCE})")
    return diff


def converted_weights(model: Lowerable) -> dict[str, str]:
    """The weights whose precision needs a graph conversion (int8 / int4 / fp16), by initializer name."""
    return {name: mode for name, mode in model.weight_modes().items() if mode in CONVERTED}
