"""The hardware-profile interface.

A profile turns one lowered ONNX file into costs. Lifecycle, as the search uses it:

1. The registry builds the profile from its YAML definition (``name``, ``kind``, ``params``).
2. :meth:`Profile.fixed_point` tells the search whether the profile costs a fixed-point circuit; if so,
   candidates are trained and evaluated with those bit-widths (the accuracy is the deployed one).
3. :meth:`Profile.profile` is called with the exported ONNX file (the exact file that is exported) and
   returns a :class:`ProfileResult`: one :class:`Metric` per reported quantity, each with provenance
   (``measured`` with repeats and spread, ``predicted`` with the model and its validation error, or
   ``synthesised`` with the synthesis tool, its version and the digests of what it was given).
   Before a candidate is trained it is also called on the untrained candidate's file, and
   :meth:`Profile.screening_bounds` says what that proves about the trained one (a constraint screens the
   candidate out only on a proof; metrics in :attr:`Profile.weight_dependent` prove nothing by default).

A new kind is "subclass :class:`Profile`, set ``kind``, ``metrics``, ``primary_metric`` and
``provenance``, implement :meth:`profile`, decorate with :func:`hwnas.profiles.register_kind`".

A profile's name is also the name of its file in the user profile folder (``NAME.yaml``), so it is a safe file
name (:data:`NAME_RULE`): it can neither leave that folder nor hide in it.
"""

from __future__ import annotations

import abc
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal

from hwnas.errors import ProfileError
from hwnas.precision import FixedPoint
from hwnas.validation import check_choice, check_float, check_int, shown

#: Where a number comes from: ``measured`` (it ran on the hardware), ``predicted`` (a model estimated it),
#: ``synthesised`` (a logic-synthesis tool mapped the circuit onto a cell library and summed its figures:
#: deterministic, no repeats, as good as the library; :mod:`hwnas.circuit.synth`).
Provenance = Literal["measured", "predicted", "synthesised"]
#: Values of ``unknown_ops``, the parameter of kinds that price a graph operator by operator (they declare it
#: in their ``defaults``): ``refuse`` (default) makes an operator they have no rule for a ProfileError naming
#: it; ``approximate`` prices it anyway and lists it in every metric's ``details["approximated_ops"]``.
UNKNOWN_OPS = ("refuse", "approximate")
#: Profile names: 1-64 ASCII letters, digits, ``-``, ``_``, ``.``, starting with a letter or digit (no path
#: separator, no ``..``, no hidden file, nothing argparse reads as an option); ``@`` joins a qualifier of the
#: same form (hwnas names the profile that measures ``NAME`` ``NAME@measured``), 200 characters in all.
NAME_RULE = "1-64 letters, digits, '-', '_' or '.' starting with a letter or digit (NAME@QUALIFIER: each part so)"
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_NAME = re.compile(rf"(?=.{{1,200}}\Z){_PART}(@{_PART})*")


def _is_text(value: Any) -> bool:
    """A non-empty string without NUL (a name or a path)."""
    return isinstance(value, str) and bool(value) and "\0" not in value


def check_name(value: Any) -> str:
    """``value`` when it is a valid profile name (:data:`NAME_RULE`), else a ProfileError saying so."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ProfileError(f"profile name must be {NAME_RULE}, got {shown(value)}")
    return value


@dataclass(frozen=True)
class Range:
    """The values a numeric parameter may take: ``integer`` or a finite float within ``[low, high]``
    (``low_open``: above ``low``), ``nullable`` when null (None) is allowed. A kind declares one per numeric
    parameter in :attr:`Profile.ranges`; the bounds keep a typo (``threads: 1000000``, ``warmup: 1e9``, a
    negative area) from hanging or corrupting a search."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    low_open: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Metric:
    """One hardware number with its provenance.

    ``details`` holds, for ``measured``: ``repeats``, ``iqr``, ``cv`` (and what was run where);
    for ``predicted``: ``model`` (what predicted it) and ``validation_error`` (how good that model is);
    for ``synthesised``: ``tool``, ``tool_version``, ``library_digest``, ``script_digest`` (what made it) and
    ``validation_error`` (how the flow compares with published designs).
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


@dataclass(frozen=True)
class Bounds:
    """What one metric of a candidate is certain to be once trained, whatever weights training finds (of the
    candidate's precision and sparsity): never below ``low``, never above ``high`` (None: nothing provable).
    A constraint ``metric<=x`` screens a candidate out before training only when ``low > x``, ``metric>=x``
    only when ``high < x``. The default ``low`` 0 holds for every cost (costs are >= 0)."""

    low: float = 0.0
    high: float | None = None


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
    #: The range of each numeric parameter; the others must have their default's type (bool, str, list, dict).
    ranges: ClassVar[dict[str, Range]] = {}
    #: The allowed values of parameters that are one of a few words.
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"unknown_ops": UNKNOWN_OPS}
    #: Parameters every kind accepts: ``measure_with`` names the profile (or gives an inline definition
    #: ``{kind: ..., params: ...}``) that measures this hardware when it is here (``hwnas verify``,
    #: ``hwnas profiles measure``); ``prefer_measured: true`` makes a search use that measurement instead
    #: of this profile's prediction whenever the hardware is present.
    common: ClassVar[dict[str, Any]] = {"measure_with": None, "prefer_measured": False}
    #: Metrics whose value depends on the trained weight values, not only on the graph's structure, precision
    #: and sparsity (a bespoke circuit: zero weights are free, each constant's digits set its multiplier).
    #: The untrained candidate's value of such a metric proves nothing about the trained one.
    weight_dependent: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        description: str = "",
        source: str = "",
        path: Path | None = None,
    ) -> None:
        self.name = check_name(name)
        self.description = description
        self.source = source
        self.path = path
        self.params = self._validate_params(params or {})

    def _validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters with their defaults, each checked against its :class:`Range`, choices or type."""
        allowed = {**self.common, **self.defaults}
        self._check_known(params, allowed)
        merged = dict(allowed)
        for key, value in params.items():
            merged[key] = self._check_param(key, value, allowed[key])
        return merged

    def _check_known(self, params: dict[Any, Any], allowed: dict[str, Any]) -> None:
        unknown = sorted(set(params) - set(allowed), key=str)
        if unknown:
            raise ProfileError(
                f"profile '{self.name}' (kind {self.kind}): unknown parameter(s) {shown(unknown)}; "
                f"allowed: {sorted(allowed)}"
            )

    def _check_param(self, key: str, value: Any, default: Any) -> Any:
        name = f"profile '{self.name}': parameter '{key}'"
        if key == "measure_with":
            return self._check_measure_with(value)
        bound = self.ranges.get(key)
        if bound is not None:
            if value is None and bound.nullable:
                return None
            if bound.integer:
                return check_int(value, name, low=None if bound.low is None else int(bound.low),
                                 high=None if bound.high is None else int(bound.high), error=ProfileError)
            return check_float(value, name, low=bound.low, high=bound.high, low_inclusive=not bound.low_open,
                               error=ProfileError)
        if key in self.choices:
            return check_choice(value, name, self.choices[key], error=ProfileError)
        if default is None:
            return value  # free-form (a path, a mapping ...): the kind checks it
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ProfileError(f"{name} must be true or false, got {shown(value)}")
            return value
        if isinstance(default, (int, float)):  # a number without a declared range
            return check_int(value, name, error=ProfileError) if isinstance(default, int) else \
                check_float(value, name, error=ProfileError)
        if not isinstance(value, type(default)):
            expected = {str: "a string", list: "a list", dict: "a mapping"}.get(type(default), type(default).__name__)
            raise ProfileError(f"{name} must be {expected}, got {shown(value)}")
        return value

    def _check_measure_with(self, value: Any) -> Any:
        """``measure_with``: null, a profile name or YAML path, or ``{profile: NAME, params: {...}}`` or an inline
        definition ``{kind: KIND, params: {...}}`` (:func:`hwnas.profiles.measure.measuring_profile` builds it)."""
        if value is None or _is_text(value):
            return value
        if isinstance(value, dict) and set(value) <= {"profile", "kind", "params"}:
            named = [k for k in ("profile", "kind") if k in value]
            if len(named) == 1 and _is_text(value[named[0]]) and isinstance(value.get("params", {}), (dict, type(None))):
                return value
        raise ProfileError(f"profile '{self.name}': measure_with must be a profile name or path, or a mapping with "
                           f"'profile' or 'kind' (and 'params'), got {shown(value)}")

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

    def preflight(self) -> str | None:
        """Called once before a search starts, after :meth:`available`: None when this profile can price a
        candidate, else why not, so that a profile that would fail every trial fails the search instead. By
        default :meth:`available` says enough; a kind whose failures show only when it runs (a user's command)
        tries itself here."""
        return None

    def bind(self, out_dir: Path) -> None:
        """Called by a search with its output folder, before any :meth:`profile` (e.g. for a tuning cache)."""

    def fixed_point(self) -> FixedPoint | None:
        """Bit-widths the deployed model must use, or None when the profile runs the graph as exported."""
        return None

    @abc.abstractmethod
    def profile(self, onnx_path: Path) -> ProfileResult:
        """Cost one ONNX file. Raises :class:`~hwnas.errors.ProfileError` when it cannot."""

    def screening_bounds(self, onnx_path: Path, untrained: ProfileResult) -> dict[str, Bounds]:
        """Per metric, what the trained candidate's value is certain to be, given ``untrained``: this profile's
        costs of ``onnx_path``, the same architecture lowered with its initial weights. By default a metric
        not in :attr:`weight_dependent` is exact (latency and the like price the graph, not the weight values:
        low = high = its untrained value) and a weight-dependent one only ``0 <= value``, so it never screens
        a candidate out. A kind that can prove a tighter bound for any weights overrides this."""
        out = {}
        for name, metric in untrained.metrics.items():
            out[name] = Bounds() if name in self.weight_dependent else Bounds(metric.value, metric.value)
        return out

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
