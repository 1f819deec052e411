"""The ImageNet normalisation: the eval transform, and the training pipeline's last pass."""
from __future__ import annotations

import torch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "STANDARDISE", "standardise", "normalize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# per-channel (scale, shift) taking pixel units [0, 255] to ImageNet-normalised: x / (255 std) - mean / std
STANDARDISE = (torch.tensor([1 / (255 * s) for s in IMAGENET_STD]),
               torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]))


def standardise(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """Pixel units [0, 255] -> ImageNet-normalised in one pass, written in channels_last when asked (so the
    model's layout costs no extra copy)."""
    scale, shift = (t.to(x.device, x.dtype).view(1, 3, 1, 1) for t in STANDARDISE)
    fmt = torch.channels_last if channels_last and x.dim() == 4 else torch.contiguous_format
    return torch.addcmul(shift, x, scale, out=torch.empty_like(x, memory_format=fmt))


def normalize(batch_u8: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 N×3×H×W -> float32, scaled to [0, 1] and ImageNet-normalised (the eval transform)."""
    return standardise(batch_u8.float(), channels_last)
