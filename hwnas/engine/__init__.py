"""The search engine: evaluate a candidate (:mod:`~hwnas.engine.evaluator`), run trials into an Optuna study
(:mod:`~hwnas.engine.runner`, :mod:`~hwnas.engine.study`), record them (:mod:`~hwnas.engine.records`, the only
module that touches Optuna user attributes), and turn a study into its Pareto outputs
(:mod:`~hwnas.engine.pareto`, :mod:`~hwnas.engine.outputs`, :mod:`~hwnas.engine.verify`). Strategies run in a
:class:`~hwnas.engine.session.SearchSession`; the public API (:mod:`hwnas.api`) sits above both.

Names are imported on first use (``import hwnas.engine.samplers`` stays free of Optuna and torch).
"""

from __future__ import annotations

from hwnas.lazy import exports

_PUBLIC = {
    "CandidateResult": ".evaluator", "Evaluator": ".evaluator", "Prepared": ".evaluator", "Timings": ".evaluator",
    "Weights": ".evaluator", "candidate_seed": ".evaluator",
    "Status": ".records", "TrialRecord": ".records", "read_record": ".records", "read_arch": ".records",
    "read_tag": ".records",
    "StopToken": ".stop", "TrialRunner": ".runner",
    "SearchSession": ".session", "open_session": ".session",
    "SearchSetup": ".setup", "resolve": ".setup",
    "evaluated_trials": ".study", "pareto_trials": ".pareto", "hypervolume": ".pareto",
    "write_outputs": ".outputs", "pareto_rows": ".outputs", "screened_counts": ".outputs", "verify_study": ".verify",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = exports(__name__, _PUBLIC)
