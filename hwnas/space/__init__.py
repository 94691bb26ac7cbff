"""Typed search spaces (YAML or Python) and the architecture configs sampled from them."""

from hwnas.space._config import ArchConfig
from hwnas.space._expr import expression_names
from hwnas.space._loader import list_spaces, load_space, resolve_space_path, space_from_dict
from hwnas.space._params import Categorical, Float, Int, Param
from hwnas.space._space import MAX_LAYERS, SearchSpace

__all__ = [
    "ArchConfig",
    "Categorical",
    "Float",
    "Int",
    "MAX_LAYERS",
    "Param",
    "SearchSpace",
    "expression_names",
    "list_spaces",
    "load_space",
    "resolve_space_path",
    "space_from_dict",
]
