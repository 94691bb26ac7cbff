"""Search strategies, each a plug-in over the engine's public seams: ``scratch`` (train every candidate),
``supernet`` (inherited weights of one weight-sharing supernet), ``darts`` (differentiable search with a
hardware penalty). See :mod:`hwnas.strategies.base` for how to add one."""

from hwnas.strategies.base import (ENTRY_POINT_GROUP, Strategy, StrategyOptions, get_strategy, option,
                                   register_strategy, strategies)

__all__ = ["ENTRY_POINT_GROUP", "Strategy", "StrategyOptions", "get_strategy", "option", "register_strategy",
           "strategies"]
