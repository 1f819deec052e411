"""A decoded set at another resolution: a trial that searches `data.image_size` resizes the sweep's shared,
once-decoded images (antialiased, as a resize at decode time would be) instead of decoding them again."""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["at_size"]


def at_size(data, size: int, chunk: int = 256):
    """`data` (a DecodedSet) with its images resized to size x size; the same object when they already are."""
    import torch
    import torch.nn.functional as F
    if data.images.shape[1] == size and data.images.shape[2] == size:
        return data
    out = np.empty((len(data.images), size, size, 3), dtype=np.uint8)
    for start in range(0, len(data.images), chunk):   # in chunks: a float copy of the whole set would be 4x its size
        x = torch.from_numpy(np.ascontiguousarray(data.images[start:start + chunk])).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start:start + chunk] = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return dataclasses.replace(data, images=out)
