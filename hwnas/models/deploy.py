"""What every model family offers the lowering: which precision each weight deploys in, the weights baked onto
their grid, and a per-weight report that the lowered graph is checked against.

:class:`DeployableModule` is the base of the model families (:class:`~hwnas.models.mlp.MLP`,
:class:`~hwnas.models.transformer.TinyTransformer`); a subclass lists its quantisable linear layers in forward
order (:meth:`quant_layers`) and inherits the rest. :func:`hwnas.lowering.lower` reads only these methods.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from hwnas.models.layers import QuantWeights
from hwnas.models.sparsity import SparsitySpec, satisfies_nm
from hwnas.precision import WeightPrecision


def weight_modes(model: nn.Module, layers: list[QuantWeights]) -> dict[str, str]:
    """Parameter name (= ONNX initializer name) → precision mode of each weight of ``layers`` (fp32 for
    fixed-point bits and float layers; the graph conversions only act on int8 / int4 / fp16)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(w)]: (layer.bits if isinstance(layer.bits, str) else "fp32")
            for layer in layers for w in layer.weights()}


class DeployableModule(nn.Module):
    """A model whose linear layers know their precision (see the module docstring)."""

    #: What gradual pruning should do while training (None: dense).
    sparsity: SparsitySpec | None = None

    def quant_layers(self) -> list[QuantWeights]:
        """Every quantisable linear layer, in forward order (= the order of its MatMuls in the graph)."""
        raise NotImplementedError

    def prunable_layers(self) -> list[list[QuantWeights]]:
        """The layers each ``sparsity`` target applies to, one group per target."""
        raise NotImplementedError

    def bake(self) -> None:
        """Put fixed-point / ternary / binary weights exactly on their grid (once, before export; no training
        after)."""
        for layer in self.quant_layers():
            layer.bake()

    def weight_modes(self) -> dict[str, str]:
        """Parameter name (= ONNX initializer name) → precision mode of every linear weight."""
        return weight_modes(self, self.quant_layers())

    def weight_report(self) -> list[WeightPrecision]:
        """Per weight, in graph order: its precision, fraction of exact zeros and whether it is 2:4 sparse.
        Call after :meth:`bake` (these are the values that are exported)."""
        params = dict(self.named_parameters())
        out = []
        for name, mode in self.weight_modes().items():
            w = params[name].detach()
            out.append(WeightPrecision(name, mode, round(float((w == 0).float().mean()), 6),
                                       bool(satisfies_nm(w, 2, 4))))
        return out

    def fixed_point(self) -> dict[str, Any] | None:
        """``{"weight_bits": [...per linear operator], "input_bits": b}`` for a fixed-point deployment, else
        None (the ``hwnas.fixed_point`` metadata a printed profile reads)."""
        return None
