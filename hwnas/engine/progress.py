"""The progress bar of a search: trials done, feasible count, Pareto size, best quality so far."""

from __future__ import annotations

from typing import Sequence

import optuna

from hwnas.engine.objectives import Objective
from hwnas.engine.pareto import pareto_trials
from hwnas.engine.records import Status, read_record
from hwnas.profiles import Profile
from hwnas.profiles.onnxruntime import host_mismatch


class Progress:
    """A tqdm bar over evaluated architectures; failures are reported as they happen."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="trial", dynamic_ncols=True)
        self.skipped = 0

    def announce(self, metric: str, direction: str, objectives: Sequence[Objective], profiles: Sequence[Profile]) -> None:
        """Say what is optimised and where each number comes from (measured here, or predicted by what)."""
        if self.bar.disable:
            return
        by_name = {p.name: p for p in profiles}
        self.bar.write(f"objectives: {metric} ({direction[:3]}, validation split of the exported model)")
        for o in objectives:
            p = by_name[o.profile]
            origin = {"measured": "measured here", "synthesised": "synthesised here (Yosys + ABC)"}.get(
                p.provenance, f"predicted ({p.kind} model)")
            self.bar.write(f"            {o.name} (min, {origin})")
            warning = host_mismatch(str(p.params.get("calibrated_on") or ""))
            if warning:
                self.bar.write(f"            warning: {p.name} was {warning['host_mismatch']}")

    def update(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        record = read_record(trial)
        if trial.state == optuna.trial.TrialState.FAIL and record is not None and record.reason:
            self.bar.write(f"trial {trial.number} failed: {record.reason}")
        if record is None or record.status == Status.INVALID or record.reused_from is not None:
            self.skipped += 1
            return  # an invalid or repeated proposal: nothing new was evaluated
        if self.bar.disable:
            self.bar.update(1)
            return
        trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        ok = [t for t in trials if (r := read_record(t)) is not None and r.status == Status.OK]
        pick = max if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else min
        best = pick((t.values[0] for t in ok), default=float("nan"))
        self.bar.set_postfix(feasible=len(ok), pareto=len(pareto_trials(study)), best=f"{best:.4f}",
                             skipped=self.skipped, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
