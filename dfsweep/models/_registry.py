"""The model registry: a decorated factory's function name is its YAML `model.name`."""
from __future__ import annotations

import torch.nn as nn

from ..errors import DfsweepError
from ..registry import Registry

__all__ = ["MODELS", "register_model", "create_model", "check_common"]

MODELS = Registry("model")
register_model = MODELS.register


def create_model(name: str, **params) -> nn.Module:
    """Build a registered model; params are validated against the factory's keyword defaults."""
    fixed = {k: params.pop(k) for k in ("in_chans", "num_classes") if k in params}
    full = MODELS.check_params(name, params, "model", fixed=("in_chans", "num_classes"))
    return MODELS.get(name)(**full, **fixed)


def check_common(*, width: float | None = None, depth: int | None = None, dropout: float | None = None) -> None:
    """The range checks every family shares (a factory adds its own for the rest)."""
    if width is not None and width <= 0:
        raise DfsweepError(f"model.width: must be > 0, got {width}")
    if depth is not None and depth < 1:
        raise DfsweepError(f"model.depth: must be >= 1, got {depth}")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise DfsweepError(f"model.dropout: must be in [0, 1), got {dropout}")
