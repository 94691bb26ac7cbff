"""``--strategy scratch``: every proposed candidate is built, trained from scratch, lowered and profiled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwnas.strategies.base import Strategy, register_strategy

if TYPE_CHECKING:
    from hwnas.engine.session import SearchSession


@register_strategy
class Scratch(Strategy):
    """The default: Optuna's sampler proposes, each candidate is trained with the search's budget."""

    name = "scratch"
    description = "train every candidate (default)"

    def run(self, session: "SearchSession") -> bool:
        return session.run_trials(session.runner())
