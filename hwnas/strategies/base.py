"""What a search strategy is, and the registry the API and the CLI find strategies in.

A strategy decides how candidates get their weights and which trials a search runs: ``scratch`` trains every
proposed candidate, ``supernet`` evaluates subnets of one weight-sharing supernet on inherited weights,
``darts`` runs one differentiable search and trains its derived architecture. Lifecycle, as
:func:`hwnas.search` drives it:

1. its options are parsed from the user's (:meth:`Strategy.parse_options`; the CLI's flags come from the same
   :class:`StrategyOptions` dataclass, so every option is declared once);
2. the strategy is constructed with the resolved search (:class:`~hwnas.engine.setup.SearchSetup`) and
   validates the space for itself, before any work;
3. :meth:`Strategy.signature` joins the study's signature (a resume with other settings is refused), and
   :attr:`Strategy.study_suffix` the default study name;
4. :meth:`Strategy.run` runs the search in an open :class:`~hwnas.engine.session.SearchSession`, using only its
   public methods and those of the engine's evaluator and runner.

A new strategy is "subclass :class:`Strategy` (and :class:`StrategyOptions` for its options), decorate with
:func:`register_strategy`" — or ship it in a package under the entry-point group ``hwnas.strategies``.
Strategy modules stay light at import (heavy work is imported inside :meth:`Strategy.run`), so that building
the command line does not load torch.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from hwnas.errors import ConfigError

if TYPE_CHECKING:
    from hwnas.engine.session import SearchSession
    from hwnas.engine.setup import SearchSetup
    from hwnas.space import SearchSpace

ENTRY_POINT_GROUP = "hwnas.strategies"


def option(default: Any, help: str, *, flag: str | None = None, **cli: Any) -> Any:
    """A strategy option: a dataclass field with its help and command-line flag (default ``--NAME-WITH-DASHES``);
    ``cli`` holds further argparse settings (e.g. ``action="store_true"``)."""
    return dataclasses.field(default=default, metadata={"help": help, "flag": flag, "cli": cli})


@dataclass(frozen=True)
class StrategyOptions:
    """Base of a strategy's options; subclasses declare fields with :func:`option` and check them in
    ``__post_init__`` with :mod:`hwnas.validation`."""

    @classmethod
    def flags(cls) -> dict[str, str]:
        """Field name → command-line flag."""
        return {f.name: f.metadata.get("flag") or "--" + f.name.replace("_", "-") for f in dataclasses.fields(cls)}


class Strategy(abc.ABC):
    """Base class of every search strategy (see the module docstring for the lifecycle)."""

    name: ClassVar[str]
    #: One line for ``--help``.
    description: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions
    #: Appended to the default study name (a strategy whose trials cannot mix with scratch ones keeps its own).
    study_suffix: ClassVar[str] = ""

    def __init__(self, setup: "SearchSetup", options: StrategyOptions) -> None:
        self.setup, self.options = setup, options

    @property
    def space(self) -> "SearchSpace":
        """The space whose configurations this strategy builds with the task (the setup's; a strategy that pins
        or drops parameters gives its restricted space): what is dry-built before the study opens."""
        return self.setup.space

    @classmethod
    def parse_options(cls, given: Mapping[str, Any]) -> StrategyOptions:
        """This strategy's options from ``{field name: value}``; a ConfigError names any it does not take (by
        the flag of the strategy that does take it, as the command line gave it, else by its name)."""
        flags = cls.Options.flags()
        unknown = sorted(set(given) - set(flags))
        if unknown:
            shown = ", ".join(_flag(name) for name in unknown)
            owners = sorted({s.name for s in strategies().values() if set(unknown) & set(s.Options.flags())})
            hint = f": {shown} need --strategy {' or '.join(owners)}" if owners else ""
            takes = ", ".join(f"{name} ({flag})" for name, flag in flags.items()) or "none"
            raise ConfigError(f"strategy {cls.name!r} takes no option(s) {shown}{hint}; it takes: {takes}")
        return cls.Options(**given)

    def signature(self) -> dict[str, Any]:
        """Entries that join the study's signature (settings a resume must not change)."""
        return {}

    @abc.abstractmethod
    def run(self, session: "SearchSession") -> bool:
        """Run the search into ``session``'s study; False when it stopped early because the sampler kept
        proposing invalid or already-evaluated architectures."""


def _flag(name: str) -> str:
    for s in strategies().values():
        flags = s.Options.flags()
        if name in flags:
            return flags[name]
    return repr(name)


_STRATEGIES: dict[str, type[Strategy]] = {}
_ENTRY_POINTS_LOADED = False


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make a :class:`Strategy` subclass available as ``--strategy NAME``."""
    _STRATEGIES[cls.name] = cls
    return cls


def strategies() -> dict[str, type[Strategy]]:
    """Every strategy: the built-in ones and those installed packages register (entry points, loaded once)."""
    global _ENTRY_POINTS_LOADED
    from hwnas.strategies import darts, scratch, supernet  # noqa: F401 - they register themselves

    if _ENTRY_POINTS_LOADED:
        return dict(_STRATEGIES)
    _ENTRY_POINTS_LOADED = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            raise ConfigError(f"entry point {ep.name!r} in group {ENTRY_POINT_GROUP} failed to load: {exc}") from None
        if not (isinstance(obj, type) and issubclass(obj, Strategy)):
            raise ConfigError(f"entry point {ep.name!r} in group {ENTRY_POINT_GROUP} is not a Strategy subclass")
        register_strategy(obj)
    return dict(_STRATEGIES)


def get_strategy(name: str) -> type[Strategy]:
    known = strategies()
    if name not in known:
        raise ConfigError(f"unknown --strategy {name!r}; choose one of {sorted(known)}")
    return known[name]
