"""What each builder parameter may be: typed domains, and the names of the model families' choices. Torch-free,
so that a search space is checked against them at load time, before torch is imported or any work is done.

A model family declares one :class:`Domain` per parameter it takes (:func:`hwnas.models.register_model`); a
space's searched parameters (every choice, the whole range) and fixed values must lie in it. The builders
(``ffn.py``, ``layers.py``, ``sparsity.py``) take their vocabularies from here, so there is one list of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwnas.errors import SpaceError
from hwnas.validation import check_choice, check_float, check_int, shown

#: FFN structures of a hidden layer or Transformer block (:func:`hwnas.models.ffn.make_ffn`).
FFN_KINDS = ("dense", "lowrank", "blockdiag", "glu", "swiglu", "geglu", "moe")
#: Activations by the name a space gives → the ``torch.nn`` module that computes each (``layers.ACTIVATIONS``).
ACTIVATION_MODULES = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU"}
#: What a space's ``sparsity_kind`` may say (``nm`` = 2:4).
SPARSITY_KINDS = ("none", "unstructured", "nm", "block")
#: ``sparsity_scope``: one target per layer, or one magnitude threshold across all layers (unstructured only).
SPARSITY_SCOPES = ("layer", "global")
#: The widest layer (neurons, ranks, blocks, block sides): beyond any model hwnas trains on one machine.
MAX_WIDTH = 16384


@dataclass(frozen=True)
class Domain:
    """The values one parameter may take. ``per_layer``: a list of one value per layer may be given."""

    per_layer: bool = field(default=False, kw_only=True)
    #: Whether only integers fit (a float-typed search parameter then cannot be one).
    integer = False

    def check(self, value: Any, name: str) -> None:
        """SpaceError ``{name} must be {requirement}, got {value!r}`` unless ``value`` is in the domain."""
        raise NotImplementedError


@dataclass(frozen=True)
class IntRange(Domain):
    """Integers in ``[low, high]``."""

    low: int
    high: int
    integer = True

    def check(self, value: Any, name: str) -> None:
        if isinstance(value, float):  # check_int accepts 2.0; a builder's int parameter does not
            raise SpaceError(f"{name} must be an integer, got {shown(value)}")
        check_int(value, name, low=self.low, high=self.high, error=SpaceError)


@dataclass(frozen=True)
class FloatRange(Domain):
    """Finite numbers within the bounds (either optional; each inclusive unless ``*_open``)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, value: Any, name: str) -> None:
        check_float(value, name, low=self.low, high=self.high, low_inclusive=not self.low_open,
                    high_inclusive=not self.high_open, error=SpaceError)


@dataclass(frozen=True)
class OneOf(Domain):
    """One of a few named values."""

    choices: tuple[Any, ...]

    def check(self, value: Any, name: str) -> None:
        check_choice(value, name, self.choices, error=SpaceError)
