"""Model builders by name (like timm): the parameters each builder takes with their domains, and how to build it.

Kept free of torch so that validating a search space stays cheap; builders are imported on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from hwnas.models.domains import (
    ACTIVATION_MODULES, FFN_KINDS, MAX_WIDTH, SPARSITY_KINDS, SPARSITY_SCOPES, Domain, FloatRange,
    IntRange, OneOf,
)
from hwnas.precision import INPUT_BITS, PRECISIONS, WEIGHT_BITS
from hwnas.space import MAX_LAYERS

#: Training hyper-parameters every model accepts in a space (the trainer reads them). ``lr`` and
#: ``weight_decay`` have no upper bound: a diverging candidate is a failed trial, not a malformed space.
TRAINING_PARAMS: dict[str, Domain] = {
    "lr": FloatRange(0.0, low_open=True),
    "batch_size": IntRange(1, 65536),
    "weight_decay": FloatRange(0.0),
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: str  # "module:function"
    params: Mapping[str, Domain]
    description: str
    #: The parameter that counts the layers: the one a per-layer parameter follows.
    depth: str = "depth"

    def load(self) -> Callable[..., Any]:
        module, func = self.builder.split(":")
        return getattr(importlib.import_module(module), func)


_MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, builder: str, params: Mapping[str, Domain], description: str = "") -> None:
    """Register a builder ``"package.module:function"`` under ``name`` with the parameters it understands, each
    with its :class:`~hwnas.models.domains.Domain` (the training parameters are added)."""
    _MODELS[name] = ModelSpec(name, builder, {**params, **TRAINING_PARAMS}, description)


def list_models() -> list[str]:
    return sorted(_MODELS)


def accepted_params(name: str) -> frozenset[str] | None:
    spec = _MODELS.get(name)
    return frozenset(spec.params) if spec else None


def get_model_spec(name: str) -> ModelSpec:
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known: {list_models()}")
    return _MODELS[name]


#: What the MLP and the Transformer share: depth, each layer's structure, precision and sparsity, dropout.
_SHARED = {
    "depth": IntRange(1, MAX_LAYERS),
    "ffn": OneOf(FFN_KINDS, per_layer=True),
    "rank": IntRange(1, MAX_WIDTH, per_layer=True),
    "blocks": IntRange(1, MAX_WIDTH, per_layer=True),
    "expansion": FloatRange(0.0, 64.0, low_open=True, per_layer=True),
    "experts": IntRange(1, 64, per_layer=True),
    "top_k": IntRange(1, 64, per_layer=True),
    "quant": OneOf(PRECISIONS, per_layer=True),
    "weight_bits": IntRange(*WEIGHT_BITS, per_layer=True),
    "dropout": FloatRange(0.0, 1.0, high_open=True),
    "sparsity_kind": OneOf(SPARSITY_KINDS),
    "sparsity": FloatRange(0.0, 1.0, high_open=True, per_layer=True),
    "sparsity_block": IntRange(1, MAX_WIDTH),
    "sparsity_scope": OneOf(SPARSITY_SCOPES),
}

register_model(
    "mlp",
    "hwnas.models.mlp:build_mlp",
    {**_SHARED, "width": IntRange(1, MAX_WIDTH, per_layer=True),
     "activation": OneOf(tuple(ACTIVATION_MODULES), per_layer=True), "input_bits": IntRange(*INPUT_BITS)},
    "MLP classifier on tabular features: dense / low-rank / block-diagonal / GLU / MoE hidden layers, "
    "per-layer precision (fp32, fp16, int8, int4, ternary, binary, k-bit fixed point), gradual pruning",
)
register_model(
    "transformer",
    "hwnas.models.transformer:build_transformer",
    {**_SHARED, "d_model": IntRange(1, 4096), "heads": IntRange(1, 256),
     "activation": OneOf(tuple(ACTIVATION_MODULES)),
     # read by the text data (hwnas.data.text) and the language-model task
     "seq_len": IntRange(1, 65536), "level": OneOf(("char", "byte")), "steps_per_epoch": IntRange(1, 100_000)},
    "Tiny Transformer (causal LM on text, or sequence classifier): attention + FFN blocks whose FFN "
    "structure, precision and sparsity are searched per block",
)
