"""The model registry: a decorated factory's function name is its YAML `model.name`."""
from __future__ import annotations

import torch.nn as nn

from ..errors import DfsweepError
from ..registry import Registry
from .inputs import WithInput, build_input, input_names

__all__ = ["MODELS", "register_model", "create_model", "check_common"]

MODELS = Registry("model")
register_model = MODELS.register


def create_model(name: str, input: str = "rgb", **params) -> nn.Module:
    """Build a registered model; params are validated against the factory's keyword defaults.

    `input` names the input stem (`dfsweep.models.inputs`): `rgb` gives the plain model, so existing
    checkpoints keep their keys; any other spec gives `WithInput(stem, net)` with the net's `in_chans`
    set to the stem's channel count."""
    fixed = {k: params.pop(k) for k in ("in_chans", "num_classes") if k in params}
    full = MODELS.check_params(name, params, "model", fixed=("in_chans", "num_classes"))
    stem = build_input(input)
    if input_names(input) == ("rgb",):
        return MODELS.get(name)(**full, **fixed)
    if "in_chans" in fixed:
        raise DfsweepError(f"model.input: {input!r} sets the channel count; in_chans cannot be given too")
    return WithInput(stem, MODELS.get(name)(**full, **fixed, in_chans=stem.out_channels))


def check_common(*, width: float | None = None, depth: int | None = None, dropout: float | None = None) -> None:
    """The range checks every family shares (a factory adds its own for the rest)."""
    if width is not None and width <= 0:
        raise DfsweepError(f"model.width: must be > 0, got {width}")
    if depth is not None and depth < 1:
        raise DfsweepError(f"model.depth: must be >= 1, got {depth}")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise DfsweepError(f"model.dropout: must be in [0, 1), got {dropout}")
