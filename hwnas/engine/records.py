"""What a study holds about each trial and about the search, typed — and the only code that reads or writes
Optuna user attributes.

A trial carries three user attributes: ``arch`` (the proposed architecture, written when it is sampled),
``strategy`` (how it was produced, absent for a trial trained from scratch) and ``result`` (its
:class:`TrialRecord`, written once at the end of the trial; a FAILed trial without one was interrupted by a
kill or Ctrl-C). The study carries the search's signature (so that a resume cannot mix searches), where its
ONNX artifacts live, and notes a strategy keeps (e.g. the supernet's training statistics). Every other module
goes through the functions here, so the stored format has one definition.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import optuna

from hwnas.errors import clip
from hwnas.profiles import ProfileResult
from hwnas.space import ArchConfig

RESULT_ATTR = "result"
ARCH_ATTR = "arch"
STRATEGY_ATTR = "strategy"
SIGNATURE_ATTR = "hwnas.signature"
ARTIFACTS_ATTR = "hwnas.artifacts"


class Status(str, enum.Enum):
    """How a trial ended. OK and INFEASIBLE trials are COMPLETE in Optuna, FAILED ones FAIL, INVALID ones
    PRUNED (a proposal that breaks a space constraint: nothing was evaluated)."""

    OK = "ok"
    INFEASIBLE = "infeasible"
    INVALID = "invalid"
    FAILED = "failed"


_EVALUATED = (Status.OK, Status.INFEASIBLE)


@dataclass(frozen=True)
class TrialRecord:
    """Everything one trial produced. ``metric`` names the task's quality (``accuracy``, ``perplexity``);
    ``costs`` holds every profile's metrics with their provenance (measured / predicted)."""

    status: Status
    metric: str = "accuracy"
    #: Why a trial is invalid, was screened out before training, or failed.
    reason: str | None = None
    trained: bool = False
    seed: int | None = None
    costs: Mapping[str, ProfileResult] = field(default_factory=dict)
    violations: Mapping[str, float] = field(default_factory=dict)
    val_score: float | None = None
    test_score: float | None = None
    torch_val_score: float | None = None
    onnx_max_abs_diff: float | None = None
    graph_sha256: str | None = None
    epochs_run: int | None = None
    #: ``params``, ``macs_per_sample`` of the lowered graph and, per MoE layer, dense-equivalent and active MACs.
    model: Mapping[str, Any] | None = None
    #: The stored ONNX file: the evaluated model, or the file of a failed trial (kept for inspection).
    artifact_id: str | None = None
    #: The trial whose results this one reuses (the same architecture was proposed again).
    reused_from: int | None = None
    #: The constraints that screened the candidate out before training (names as ``Constraint.name``).
    screened_by: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def evaluated(self) -> bool:
        """Trained or screened out by a hardware constraint: the costs (and maybe the quality) are known."""
        return self.status in _EVALUATED

    def reused(self, number: int) -> "TrialRecord":
        """This record as the result of a re-proposal of the same architecture (trial ``number``)."""
        return dataclasses.replace(self, reused_from=number, timings={})

    def to_attrs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status.value}
        if self.reason is not None:
            out["fail_reason" if self.status == Status.FAILED else "reason"] = self.reason
        if self.evaluated:
            m = self.metric
            out.update({
                "trained": self.trained, "seed": self.seed,
                "metrics": {name: r.to_dict()["metrics"] for name, r in self.costs.items()},
                "violations": dict(self.violations),
                f"val_{m}": self.val_score, f"test_{m}": self.test_score, f"torch_val_{m}": self.torch_val_score,
                "onnx_max_abs_diff": self.onnx_max_abs_diff, "graph_sha256": self.graph_sha256,
                "epochs_run": self.epochs_run, "model": dict(self.model) if self.model is not None else None,
                "screened_by": list(self.screened_by),
            })
        if self.artifact_id is not None:
            out["artifact_id"] = self.artifact_id
        if self.reused_from is not None:
            out["reused_from"] = self.reused_from
        out["timings"] = dict(self.timings)
        return _bounded(out)

    @classmethod
    def from_attrs(cls, data: Mapping[str, Any]) -> "TrialRecord":
        status = Status(data["status"])
        metric = next((k[4:] for k in data if k.startswith("val_")), "accuracy")
        violations = dict(data.get("violations") or {})
        screened_by = data.get("screened_by")
        if screened_by is None:  # written before screening was recorded: every violation of an untrained one
            untrained = status == Status.INFEASIBLE and not data.get("trained", False)
            screened_by = [name for name, v in violations.items() if v > 0] if untrained else []
        return cls(
            status=status, metric=metric, reason=data.get("fail_reason", data.get("reason")),
            trained=bool(data.get("trained", False)), seed=data.get("seed"),
            costs={name: ProfileResult.from_dict({"profile": name, "metrics": ms})
                   for name, ms in (data.get("metrics") or {}).items()},
            violations=violations, screened_by=tuple(screened_by),
            val_score=data.get(f"val_{metric}"), test_score=data.get(f"test_{metric}"),
            torch_val_score=data.get(f"torch_val_{metric}"), onnx_max_abs_diff=data.get("onnx_max_abs_diff"),
            graph_sha256=data.get("graph_sha256"), epochs_run=data.get("epochs_run"), model=data.get("model"),
            artifact_id=data.get("artifact_id"), reused_from=data.get("reused_from"),
            timings=dict(data.get("timings") or {}),
        )


def _bounded(value: Any) -> Any:
    """``value`` with every string in it clipped (:func:`hwnas.errors.clip`): a reason or a profile's details
    may quote a device tool's output, which can be any size."""
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, Mapping):
        return {k: _bounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_bounded(v) for v in value]
    return value


# --- trials ------------------------------------------------------------------------------------------------


def write_record(trial: optuna.Trial, record: TrialRecord) -> None:
    trial.set_user_attr(RESULT_ATTR, record.to_attrs())


def read_record(trial: optuna.trial.FrozenTrial) -> TrialRecord | None:
    """The trial's record, or None when it has none (still running, or cut off by a kill)."""
    data = trial.user_attrs.get(RESULT_ATTR)
    return TrialRecord.from_attrs(data) if data else None


def write_arch(trial: optuna.Trial, config: ArchConfig) -> None:
    trial.set_user_attr(ARCH_ATTR, {"key": config.key, **config.to_dict()})


def read_arch(trial: optuna.trial.FrozenTrial) -> ArchConfig | None:
    data = trial.user_attrs.get(ARCH_ATTR)
    return ArchConfig.from_dict(data) if data else None


def arch_key(trial: optuna.trial.FrozenTrial) -> str | None:
    """The architecture key of a trial (None before its architecture was sampled)."""
    data = trial.user_attrs.get(ARCH_ATTR)
    return data.get("key") if data else None


def write_tag(trial: optuna.Trial, tag: Mapping[str, Any]) -> None:
    """Record how a trial was produced (``{"name": STRATEGY, ...}``); absent for one trained from scratch."""
    trial.set_user_attr(STRATEGY_ATTR, dict(tag))


def read_tag(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return dict(trial.user_attrs.get(STRATEGY_ATTR) or {})


# --- the study ---------------------------------------------------------------------------------------------


def read_signature(study: optuna.Study) -> dict[str, Any] | None:
    return study.user_attrs.get(SIGNATURE_ATTR)


def write_signature(study: optuna.Study, signature: Mapping[str, Any]) -> None:
    """The signature as a whole (compared on resume) and each of its entries (read by outputs and tools)."""
    for key, value in signature.items():
        study.set_user_attr(key, value)
    study.set_user_attr(SIGNATURE_ATTR, dict(signature))


def study_entry(study: optuna.Study, key: str, default: Any = None) -> Any:
    """One entry of the search's signature (``hwnas.space``, ``hwnas.dataset``, ``hwnas.profiles`` …)."""
    return study.user_attrs.get(key, default)


def artifact_dir(study: optuna.Study) -> Path | None:
    value = study.user_attrs.get(ARTIFACTS_ATTR)
    return Path(value) if value else None


def set_artifact_dir(study: optuna.Study, path: Path) -> None:
    study.set_user_attr(ARTIFACTS_ATTR, str(path.resolve()))


def write_note(study: optuna.Study, strategy: str, name: str, value: Any) -> None:
    """A strategy's note on the study, as ``hwnas.STRATEGY.NAME`` (e.g. the supernet's training statistics)."""
    study.set_user_attr(f"hwnas.{strategy}.{name}", value)


def read_note(study: optuna.Study, strategy: str, name: str) -> Any:
    return study.user_attrs.get(f"hwnas.{strategy}.{name}")
