"""The model registry: a decorated factory's function name is its YAML `model.name`."""
from __future__ import annotations

import torch.nn as nn

from ..registry import Registry

__all__ = ["MODELS", "register_model", "create_model"]

MODELS = Registry("model")
register_model = MODELS.register


def create_model(name: str, **params) -> nn.Module:
    """Build a registered model; params are validated against the factory's keyword defaults."""
    fixed = {k: params.pop(k) for k in ("in_chans", "num_classes") if k in params}
    full = MODELS.check_params(name, params, "model", fixed=("in_chans", "num_classes"))
    return MODELS.get(name)(**full, **fixed)
