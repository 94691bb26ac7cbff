"""The Python API behind the CLI: ``hwnas.search(...)``, ``hwnas.export(...)``, ``hwnas.verify(...)``.

A thin facade: a :class:`~hwnas.engine.config.SearchConfig` is resolved by the engine
(:func:`~hwnas.engine.setup.resolve`), the chosen strategy (:mod:`hwnas.strategies`) runs in an open
:class:`~hwnas.engine.session.SearchSession`, and the engine writes the Pareto outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from typing import TYPE_CHECKING

from hwnas.engine.config import SearchConfig
from hwnas.engine.setup import resolve
from hwnas.engine.stop import StopToken
from hwnas.errors import ConfigError
from hwnas.strategies import get_strategy

if TYPE_CHECKING:
    import optuna


@dataclass
class SearchResult:
    study: "optuna.Study"
    out: Path
    pareto: list[dict[str, Any]]
    artifacts: Path
    #: True when the search stopped early on request (Ctrl-C / SIGTERM / a StopToken); re-run to continue.
    stopped: bool = False
    #: True when it stopped because the sampler kept proposing invalid or already-evaluated architectures.
    exhausted: bool = False
    #: Why the search found nothing, when every trial it evaluated failed (None otherwise).
    failed: str | None = None
    #: Per constraint, how many candidates it screened out before training (0 included).
    screened: dict[str, int] = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        return len(self.study.trials)


def search(space: Any = None, dataset: Any = "breast_cancer", profiles: Any = ("cpu-ort",), *,
           config: SearchConfig | None = None, stop: StopToken | None = None, **options: Any) -> SearchResult:
    """Run (or resume) a hardware-aware search; write ``pareto.json``, ``pareto.csv`` and ``models/`` to ``out``.

    Give a :class:`~hwnas.engine.config.SearchConfig` as ``config``, or its fields as arguments (``space``,
    ``dataset``, ``profiles``, ``trials=``, ``sampler=``, ``out=``, ``strategy=``, ``strategy_options=`` …).
    ``trials`` counts evaluated architectures: proposals that break a space constraint and re-proposed
    architectures (whose results are reused) are recorded but do not use up the budget. Re-running with the
    same ``out``/``study`` resumes until the study holds ``trials`` evaluated architectures. ``stop`` ends the
    search after the current trial once it is set (the CLI sets it on Ctrl-C / SIGTERM)."""
    if config is None:
        config = SearchConfig(space=space, dataset=dataset,
                              profiles=profiles if not isinstance(profiles, str) else (profiles,), **options)
    elif space is not None or options:
        raise ConfigError("give either config= or the search's options, not both")
    stop = stop or StopToken()
    strategy_type = get_strategy(config.strategy)
    options = strategy_type.parse_options(config.strategy_options)
    setup = resolve(config)  # everything named is loaded and cross-checked before torch or Optuna is imported
    from hwnas.engine.evaluator import dry_build
    from hwnas.engine.outputs import screened_counts, write_outputs
    from hwnas.engine.session import open_session
    from hwnas.engine.study import evaluated_trials

    strategy = strategy_type(setup, options)  # validates the space for itself, before any training
    dry_build(strategy.space, setup.task, list(setup.profiles.values()))  # its extremes build, before any study
    session = open_session(setup, stop=stop, study_suffix=strategy.study_suffix, signature=strategy.signature())
    try:
        complete = session.run(strategy)
    finally:
        session.progress.close()
    rows = write_outputs(session.study, session.out, session.artifacts.folder, circuits=_circuit_split(setup))
    stopped = stop.stopped and len(evaluated_trials(session.study)) < config.trials
    return SearchResult(session.study, session.out, rows, session.artifacts.folder, stopped=stopped,
                        exhausted=not complete, failed=session.failure(), screened=screened_counts(session.study))


def _circuit_split(setup: Any) -> Callable[[], tuple[Any, Any]] | None:
    """The test split to prove circuits on, for a tabular search with a fixed-point (printed) profile."""
    from hwnas.engine.tasks import ClassificationTask

    if not isinstance(setup.task, ClassificationTask) or not any(p.fixed_point() for p in setup.profiles.values()):
        return None
    return lambda: (setup.task.data.X_test, setup.task.data.y_test)


def open_existing_study(out: str | Path, *, storage: str | None = None, study: str | None = None,
                        artifacts: str | Path | None = None) -> tuple["optuna.Study", Path]:
    """Load a finished or running study and the folder of its stored ONNX files."""
    out = Path(out)
    if storage is None and not (out / "study.db").is_file():
        raise ConfigError(f"no study.db in {out}; pass --storage URL")
    from hwnas.engine.records import artifact_dir
    from hwnas.engine.study import default_storage, find_study

    st = find_study(storage or default_storage(out), study)
    folder = Path(artifacts) if artifacts else (artifact_dir(st) or out / "artifacts")
    return st, folder


def export(out: str | Path, *, storage: str | None = None, study: str | None = None,
           artifacts: str | Path | None = None, format: str = "onnx",
           tvm_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Re-export ``pareto.json``, ``pareto.csv`` and ``models/*.onnx`` of a study into ``out``.

    ``format="tvm"`` also compiles each model with TVM (:func:`hwnas.lowering.tvm_export.export_tvm`, which
    takes ``tvm_options``: ``target``, ``batch_size``, ``database``, ``cc``). ``format="verilog"`` also writes
    each model's bespoke circuit ``trial_N.v`` with a self-checking testbench ``trial_N_tb.v`` and its vectors
    (the whole test split), and simulates it when Icarus Verilog is installed: every class must equal the
    ONNX file's (:mod:`hwnas.engine.circuits`)."""
    from hwnas.validation import check_choice

    check_choice(format, "--format", ("onnx", "tvm", "verilog"))
    st, folder = open_existing_study(out, storage=storage, study=study, artifacts=artifacts)
    from hwnas.engine.outputs import write_outputs
    from hwnas.engine.records import study_entry

    from hwnas.engine.circuits import test_split

    rows = write_outputs(st, Path(out), folder, circuits=lambda: test_split(st), require_circuits=format == "verilog")
    if format == "tvm":
        from hwnas.lowering.tvm_export import export_tvm, study_target

        options = dict(tvm_options or {})
        options["target"] = options.get("target") or study_target(study_entry(st, "hwnas.profiles"))
        rows = export_tvm(rows, Path(out), **options)
    return rows


def verify(out: str | Path, *, storage: str | None = None, study: str | None = None,
           artifacts: str | Path | None = None) -> dict[str, Any]:
    """Re-measure a study's Pareto models on every profile that can measure here (``hwnas verify``)."""
    from hwnas.engine.verify import verify_study

    st, folder = open_existing_study(out, storage=storage, study=study, artifacts=artifacts)
    return verify_study(st, folder)
