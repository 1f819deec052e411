"""The decoded set as tensors: the N×H×W×3 uint8 pixel array seen as an N×3×H×W batch, and rows of it."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["images_to_tensor", "gather_rows"]


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """N×H×W×3 uint8 numpy -> N×3×H×W uint8 tensor view (no copy; read-only arrays are fine here)."""
    if not images.flags.writeable:  # object-store arrays: torch warns on read-only memory, we never write
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(images)
    else:
        t = torch.from_numpy(images)
    return t.permute(0, 3, 1, 2)


def gather_rows(images: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """images[idx] for an N×3×H×W view of N×H×W×3 pixels (the decoded layout, `images_to_tensor`):
    `index_select` on the contiguous pixel-major tensor, then the same view (images[idx] on the permuted
    view gathers strided pixels, several times slower)."""
    idx = idx.to(images.device)
    if images.dim() == 4 and images.is_contiguous(memory_format=torch.channels_last):
        return images.permute(0, 2, 3, 1).index_select(0, idx).permute(0, 3, 1, 2)
    return images.index_select(0, idx)
