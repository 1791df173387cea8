"""The one map from a model's name to its Config and class, and the builder that uses it.

Names are the Hydra options (``model=multiscale``); the plan's names (``model_type=
'multiscale_conv1d'`` in VAEBuilder and in older checkpoints) map onto them.
"""

from __future__ import annotations

import dataclasses

from ..errors import VaelabError
from .base import ModelConfig, VAEBase
from .lstm import LSTMVAE, LSTMConfig
from .multiscale import MultiScaleConfig, MultiScaleConv1DVAE
from .plan_baseline import PlanConfig, PlanMultiScaleConv1DVAE

MODELS: dict[str, tuple[type[ModelConfig], type[VAEBase]]] = {
    "multiscale": (MultiScaleConfig, MultiScaleConv1DVAE),
    "lstm": (LSTMConfig, LSTMVAE),
    "plan": (PlanConfig, PlanMultiScaleConv1DVAE),  # the plan's original model, defects included: comparisons only
}
# The plan's model_type names (VAEBuilder, checkpoints) -> registry names.
MODEL_TYPES = {"multiscale_conv1d": "multiscale", "lstm": "lstm", "plan_multiscale": "plan"}


def model_name(name_or_type: str) -> str:
    """The registry name of a model given by its name or by the plan's model_type."""
    name = MODEL_TYPES.get(name_or_type, name_or_type)
    if name not in MODELS:
        known = ", ".join([*MODEL_TYPES, *(n for n in MODELS if n not in MODEL_TYPES)])
        raise VaelabError(f"model_type {name_or_type!r} is unknown; choose one of {known}")
    return name


def model_config(name_or_type: str, **options) -> ModelConfig:
    """The named model's Config with ``options`` set; an option the model lacks is refused by name."""
    config_cls = MODELS[model_name(name_or_type)][0]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise VaelabError(
            f"model {model_name(name_or_type)!r} has no option {', '.join(map(repr, unknown))}; its options are {', '.join(sorted(fields))}"
        )
    return config_cls(**options)


def build_model(name_or_type: str, input_dim: int, seq_len: int, config: ModelConfig | None = None, **options) -> VAEBase:
    """A model by name ('multiscale', 'lstm', 'plan', or the plan's model_type) for data of
    ``input_dim`` vitals and ``seq_len`` hours, from its ``config`` or from option keywords."""
    name = model_name(name_or_type)
    config_cls, model_cls = MODELS[name]
    if config is None:
        config = model_config(name, **options)
    elif options:
        raise TypeError("pass either config or its fields, not both")
    if not isinstance(config, config_cls):
        raise VaelabError(f"model {name!r} takes a {config_cls.__name__}, got {type(config).__name__}")
    return model_cls(input_dim, seq_len=seq_len, config=config)
