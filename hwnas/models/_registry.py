"""Model builders by name (like timm): which parameters each builder takes, and how to build it.

Kept free of torch so that validating a search space stays cheap; builders are imported on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

#: Training hyper-parameters every model accepts in a space (the trainer reads them).
TRAINING_PARAMS = frozenset({"lr", "batch_size", "weight_decay"})


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: str  # "module:function"
    params: frozenset[str]
    description: str

    def load(self) -> Callable[..., Any]:
        module, func = self.builder.split(":")
        return getattr(importlib.import_module(module), func)


_MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, builder: str, params: set[str], description: str = "") -> None:
    """Register a builder ``"package.module:function"`` under ``name`` with the parameters it understands."""
    _MODELS[name] = ModelSpec(name, builder, frozenset(params) | TRAINING_PARAMS, description)


def list_models() -> list[str]:
    return sorted(_MODELS)


def accepted_params(name: str) -> frozenset[str] | None:
    spec = _MODELS.get(name)
    return spec.params if spec else None


def get_model_spec(name: str) -> ModelSpec:
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known: {list_models()}")
    return _MODELS[name]


register_model(
    "mlp",
    "hwnas.models.mlp:build_mlp",
    {"depth", "width", "activation", "ffn", "rank", "blocks", "expansion", "experts", "top_k", "quant",
     "weight_bits", "input_bits", "dropout", "sparsity_kind", "sparsity", "sparsity_block", "sparsity_scope"},
    "MLP classifier on tabular features: dense / low-rank / block-diagonal / GLU / MoE hidden layers, "
    "per-layer precision (fp32, fp16, int8, int4, ternary, binary, k-bit fixed point), gradual pruning",
)
register_model(
    "transformer",
    "hwnas.models.transformer:build_transformer",
    {"depth", "d_model", "heads", "ffn", "expansion", "rank", "blocks", "experts", "top_k", "weight_bits",
     "quant", "activation", "dropout", "sparsity_kind", "sparsity", "sparsity_block", "sparsity_scope",
     "seq_len", "level", "steps_per_epoch"},
    "Tiny Transformer (causal LM on text, or sequence classifier): attention + FFN blocks whose FFN "
    "structure, precision and sparsity are searched per block",
)
