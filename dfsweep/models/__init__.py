"""Models registered by name: `create_model("deepfakenet", width=1.0)`. One file per family."""
from ._registry import MODELS, create_model, register_model
from . import deepfakenet, hrnet, resnet, fft  # noqa: F401  (registration side effect)
from .inputs import INPUTS, WithInput, build_input, input_channels

__all__ = ["MODELS", "create_model", "register_model", "INPUTS", "WithInput", "build_input", "input_channels"]
