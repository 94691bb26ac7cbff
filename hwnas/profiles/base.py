"""The hardware-profile interface.

A profile turns one lowered ONNX file into costs. Lifecycle, as the search uses it:

1. The registry builds the profile from its YAML definition (``name``, ``kind``, ``params``).
2. :meth:`Profile.fixed_point` tells the search whether the profile costs a fixed-point circuit; if so,
   candidates are trained and evaluated with those bit-widths (the accuracy is the deployed one).
3. :meth:`Profile.profile` is called with the exported ONNX file (the exact file that is exported) and
   returns a :class:`ProfileResult`: one :class:`Metric` per reported quantity, each with provenance
   (``measured`` with repeats and spread, or ``predicted`` with the model and its validation error).

A new kind is "subclass :class:`Profile`, set ``kind``, ``metrics``, ``primary_metric`` and
``provenance``, implement :meth:`profile`, decorate with :func:`hwnas.profiles.register_kind`".
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal

from hwnas.errors import ProfileError
from hwnas.precision import FixedPoint

Provenance = Literal["measured", "predicted"]
#: Values of ``unknown_ops``, the parameter of kinds that price a graph operator by operator (they declare it
#: in their ``defaults``): ``refuse`` (default) makes an operator they have no rule for a ProfileError naming
#: it; ``approximate`` prices it anyway and lists it in every metric's ``details["approximated_ops"]``.
UNKNOWN_OPS = ("refuse", "approximate")


@dataclass(frozen=True)
class Metric:
    """One hardware number with its provenance.

    ``details`` holds, for ``measured``: ``repeats``, ``iqr``, ``cv`` (and what was run where);
    for ``predicted``: ``model`` (what predicted it) and ``validation_error`` (how good that model is).
    """

    name: str
    value: float
    unit: str
    provenance: Provenance
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Metric":
        return cls(**data)


@dataclass(frozen=True)
class ProfileResult:
    """All metrics one profile reported for one ONNX file."""

    profile: str
    metrics: dict[str, Metric]

    def __getitem__(self, metric: str) -> Metric:
        return self.metrics[metric]

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "metrics": {k: m.to_dict() for k, m in self.metrics.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProfileResult":
        return cls(data["profile"], {k: Metric.from_dict(m) for k, m in data["metrics"].items()})


class Profile(abc.ABC):
    """Base class of every hardware profile (see the module docstring for the lifecycle)."""

    kind: ClassVar[str]
    #: Metric names this kind reports, in display order, with units.
    metrics: ClassVar[dict[str, str]]
    #: The metric minimised when the user names no ``--objective`` for this profile.
    primary_metric: ClassVar[str]
    provenance: ClassVar[Provenance]
    #: Parameter defaults; YAML ``params`` and ``--profile-set`` override them (unknown keys are errors).
    defaults: ClassVar[dict[str, Any]] = {}
    #: Parameters every kind accepts: ``measure_with`` names the profile (or gives an inline definition
    #: ``{kind: ..., params: ...}``) that measures this hardware when it is here (``hwnas verify``,
    #: ``hwnas profiles measure``); ``prefer_measured: true`` makes a search use that measurement instead
    #: of this profile's prediction whenever the hardware is present.
    common: ClassVar[dict[str, Any]] = {"measure_with": None, "prefer_measured": False}

    def __init__(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        description: str = "",
        source: str = "",
        path: Path | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.source = source
        self.path = path
        self.params = self._validate_params(params or {})

    def _validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        allowed = {**self.common, **self.defaults}
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ProfileError(
                f"profile '{self.name}' (kind {self.kind}): unknown parameter(s) {unknown}; "
                f"allowed: {sorted(allowed)}"
            )
        merged = dict(allowed)
        for key, value in params.items():
            default = allowed[key]
            if default is not None and not isinstance(default, str) and value is not None:
                try:
                    value = type(default)(value)
                except (TypeError, ValueError):
                    raise ProfileError(
                        f"profile '{self.name}': parameter '{key}' must be {type(default).__name__}, "
                        f"got {value!r}"
                    ) from None
            merged[key] = value
        self._check_unknown_ops(merged)
        return merged

    def _check_unknown_ops(self, params: dict[str, Any]) -> None:
        if "unknown_ops" in params and params["unknown_ops"] not in UNKNOWN_OPS:
            raise ProfileError(f"profile '{self.name}': parameter 'unknown_ops' must be one of {list(UNKNOWN_OPS)}, "
                               f"got {params['unknown_ops']!r}")

    def approximated_ops(self, model: Path | str, ops: Iterable[str], how: str) -> list[str]:
        """``ops`` — operator types of ``model`` this profile has no rule for — sorted, each once.

        Raises :class:`~hwnas.errors.ProfileError` naming them unless ``unknown_ops`` is ``approximate`` (then
        the profile prices them ``how`` says and reports the returned list in its metrics' details).
        """
        found = sorted(set(ops))
        if found and self.params.get("unknown_ops") != "approximate":
            raise ProfileError(
                f"{model}: profile '{self.name}' has no cost rule for operator(s) {', '.join(found)}; to price "
                f"them approximately ({how}) set unknown_ops=approximate (--set unknown_ops=approximate, or "
                f"--profile-set {self.name}.unknown_ops=approximate in a search)")
        return found

    def available(self) -> str | None:
        """None when this profile can produce its numbers on this machine, else the reason it cannot."""
        return None

    def bind(self, out_dir: Path) -> None:
        """Called by a search with its output folder, before any :meth:`profile` (e.g. for a tuning cache)."""

    def fixed_point(self) -> FixedPoint | None:
        """Bit-widths the deployed model must use, or None when the profile runs the graph as exported."""
        return None

    @abc.abstractmethod
    def profile(self, onnx_path: Path) -> ProfileResult:
        """Cost one ONNX file. Raises :class:`~hwnas.errors.ProfileError` when it cannot."""

    def describe(self) -> dict[str, Any]:
        """The full definition, as ``hwnas profiles show`` prints it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "provenance": self.provenance,
            "description": self.description,
            "source": self.source,
            "metrics": dict(self.metrics),
            "primary_metric": self.primary_metric,
            "params": dict(self.params),
            "file": str(self.path) if self.path else None,
        }
