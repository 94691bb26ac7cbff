"""``--strategy supernet``: train one weight-sharing supernet (sandwich rule, in-place distillation), then run
the usual Optuna multi-objective search over its subnets, each evaluated with **inherited weights** and
exported / profiled / recorded exactly like a trained-from-scratch trial; optionally fine-tune the final
Pareto subnets (recorded as extra trials) before the Pareto files are written. The supernets and their
training live in :mod:`hwnas.supernet`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hwnas.strategies.base import Strategy, StrategyOptions, option, register_strategy
from hwnas.validation import check_float, check_int

if TYPE_CHECKING:
    from hwnas.engine.session import SearchSession
    from hwnas.engine.setup import SearchSetup
    from hwnas.space import SearchSpace

CHECKPOINT = "supernet.pt"


@dataclass(frozen=True)
class SupernetOptions(StrategyOptions):
    supernet_epochs: int | None = option(None, "supernet: training epochs (default: --epochs)")
    supernet_lr: float | None = option(None, "supernet: learning rate (default: the space's lr, else 1e-2 for "
                                       "MLPs, 3e-3 for Transformers)")
    supernet_batch_size: int | None = option(None, "supernet: batch size (default: the space's, else 32)")
    n_random: int = option(2, "supernet: random subnets per step besides the largest and smallest",
                           flag="--supernet-random-subnets")
    distill: float | None = option(None, "supernet: weight of in-place distillation for the non-largest subnets "
                                   "(default 1 for MLPs, 0 = hard labels for Transformer LMs)",
                                   flag="--supernet-distill")
    finetune_epochs: int = option(0, "supernet: fine-tune the final Pareto subnets this long")

    def __post_init__(self) -> None:
        if self.supernet_epochs is not None:
            check_int(self.supernet_epochs, "--supernet-epochs", low=1)
        if self.supernet_lr is not None:
            check_float(self.supernet_lr, "--supernet-lr", low=0.0, low_inclusive=False)
        if self.supernet_batch_size is not None:
            check_int(self.supernet_batch_size, "--supernet-batch-size", low=1)
        check_int(self.n_random, "--supernet-random-subnets", low=0)
        if self.distill is not None:
            check_float(self.distill, "--supernet-distill", low=0.0, high=1.0)
        check_int(self.finetune_epochs, "--finetune-epochs", low=0)


@register_strategy
class Supernet(Strategy):
    """See the module docstring; its study is ``NAME-supernet`` (inherited-weight trials stay apart)."""

    name = "supernet"
    description = "search subnets of one weight-sharing supernet on inherited weights"
    Options = SupernetOptions
    study_suffix = "-supernet"

    def __init__(self, setup: "SearchSetup", options: SupernetOptions) -> None:
        super().__init__(setup, options)
        from hwnas.supernet.search import SupernetSearch

        self.search = SupernetSearch(setup.space, setup.task, seed=setup.config.seed, epochs=setup.epochs,
                                     options=options)  # validates the space before any training

    def signature(self) -> dict[str, Any]:
        return {"hwnas.strategy": {"name": self.name, **self.search.settings()}}

    @property
    def space(self) -> "SearchSpace":
        return self.search.restriction.space

    def run(self, session: "SearchSession") -> bool:
        return self.search.run(session, session.out / CHECKPOINT)
