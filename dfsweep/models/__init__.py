"""Models registered by name: `create_model("deepfakenet", width=1.0)`. One file per family."""
from ._registry import MODELS, create_model, register_model
from . import deepfakenet, hrnet, resnet, fft  # noqa: F401  (registration side effect)

__all__ = ["MODELS", "create_model", "register_model"]
