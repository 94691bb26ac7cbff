"""Model builders (a registry by name) and their building blocks."""

from hwnas.models._registry import TRAINING_PARAMS, accepted_params, get_model_spec, list_models, register_model

__all__ = ["TRAINING_PARAMS", "accepted_params", "build_model", "get_model_spec", "list_models", "register_model"]


def build_model(config, *, n_features: int, n_classes: int, stats, fixed_point=None):  # type: ignore[no-untyped-def]
    """Build the torch module for an :class:`~hwnas.space.ArchConfig` (see :func:`hwnas.models.mlp.build_mlp`)."""
    builder = get_model_spec(config.model).load()
    return builder(config, n_features=n_features, n_classes=n_classes, stats=stats, fixed_point=fixed_point)
