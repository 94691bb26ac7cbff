"""``--strategy darts``: one differentiable architecture search of an MLP with an expected-hardware-cost penalty
(RC-DARTS budgets for ``--constraint``), whose derived architecture is trained from scratch and recorded in
the search's study. The mixed-op MLP, the cost tables and the search live in :mod:`hwnas.supernet.darts`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwnas.strategies.base import Strategy, StrategyOptions, option, register_strategy
from hwnas.validation import check_float, check_int

if TYPE_CHECKING:
    from hwnas.engine.session import SearchSession
    from hwnas.engine.setup import SearchSetup
    from hwnas.space import SearchSpace


@dataclass(frozen=True)
class DartsOptions(StrategyOptions):
    darts_epochs: int = option(40, "darts: search epochs")
    darts_lambda: float | None = option(None, "darts: weight of the expected hardware cost (default 1.0; 0 with a "
                                        "--constraint budget)")
    gumbel: bool = option(False, "darts: Gumbel-softmax sampling of the mixed ops", flag="--darts-gumbel",
                          action="store_true")
    tau: float = option(1.0, "darts: Gumbel-softmax temperature", flag="--darts-tau")
    alpha_lr: float = option(0.05, "darts: learning rate of the architecture weights", flag="--darts-alpha-lr")
    max_choices: int = option(6, "darts: an int range is discretised to at most this many widths",
                              flag="--darts-max-choices")
    warmup: int | None = option(None, "darts: epochs of weight-only training first (default: a fifth)",
                                flag="--darts-warmup")

    def __post_init__(self) -> None:
        check_int(self.darts_epochs, "--darts-epochs", low=1)
        if self.darts_lambda is not None:
            check_float(self.darts_lambda, "--darts-lambda", low=0.0)
        if not isinstance(self.gumbel, bool):
            check_int(self.gumbel, "--darts-gumbel", low=0, high=1)
        check_float(self.tau, "--darts-tau", low=0.0, low_inclusive=False)
        check_float(self.alpha_lr, "--darts-alpha-lr", low=0.0, low_inclusive=False)
        check_int(self.max_choices, "--darts-max-choices", low=2)
        if self.warmup is not None:
            check_int(self.warmup, "--darts-warmup", low=0, high=self.darts_epochs - 1)


@register_strategy
class Darts(Strategy):
    """See the module docstring; the derived trial joins the from-scratch study of the same search."""

    name = "darts"
    description = "differentiable search with a hardware penalty; the derived architecture is retrained"
    Options = DartsOptions

    def __init__(self, setup: "SearchSetup", options: DartsOptions) -> None:
        super().__init__(setup, options)
        from hwnas.supernet.darts import DartsSearch

        self.search = DartsSearch(setup.space, setup.task, setup.constraints, setup.objectives,
                                  seed=setup.config.seed, options=options)  # validates before any training

    @property
    def space(self) -> "SearchSpace":
        return self.search.restriction.space

    def run(self, session: "SearchSession") -> bool:
        return self.search.run(session)
