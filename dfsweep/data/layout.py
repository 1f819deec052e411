"""The decoded set as tensors: the N×H×W×3 uint8 pixels seen as an N×3×H×W batch, and rows of it.

A set in memory is one tensor view of its array. A set in the on-disk cache is `CachedRows`: the same shape and
the same rows, read from the cache batch by batch (`gather_rows`), so training never holds the whole set."""
from __future__ import annotations

from typing import Union

import numpy as np
import torch

from .shards import ShardedImages

__all__ = ["CachedRows", "Pixels", "images_to_tensor", "gather_rows", "pixels_on"]


class CachedRows:
    """The N×3×H×W uint8 view of a `ShardedImages`: rows are read when gathered, into channels-last batches
    (the layout a gathered in-memory batch has)."""

    dtype = torch.uint8
    device = torch.device("cpu")
    is_cuda = False

    def __init__(self, images: ShardedImages):
        self.images = images

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.images), 3, self.images.size, self.images.size))

    def __len__(self) -> int:
        return len(self.images)

    def numel(self) -> int:
        return len(self.images) * 3 * self.images.size ** 2

    def element_size(self) -> int:
        return 1

    def gather(self, idx) -> torch.Tensor:
        rows = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        return torch.from_numpy(self.images.read_rows(rows)).permute(0, 3, 1, 2)

    def __getitem__(self, item: int | slice) -> torch.Tensor:
        if isinstance(item, slice):
            return self.gather(np.arange(*item.indices(len(self))))
        return self.gather(np.asarray([item]))[0]

    def to(self, device: torch.device, chunk_rows: int = 256) -> torch.Tensor:
        """The whole set as one tensor on `device`, copied a chunk at a time (never whole in host memory)."""
        out = torch.empty((len(self.images), self.images.size, self.images.size, 3), dtype=torch.uint8, device=device)
        for start, chunk in self.images.chunks(chunk_rows):
            out[start:start + len(chunk)].copy_(torch.from_numpy(chunk), non_blocking=False)
        return out.permute(0, 3, 1, 2)


Pixels = Union[torch.Tensor, CachedRows]


def images_to_tensor(images: np.ndarray | ShardedImages) -> Pixels:
    """N×H×W×3 uint8 -> N×3×H×W: a tensor view of an array in memory (no copy; read-only arrays are fine
    here), `CachedRows` for a set in the cache."""
    if isinstance(images, ShardedImages):
        return CachedRows(images)
    if not images.flags.writeable:  # object-store arrays: torch warns on read-only memory, we never write
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(images)
    else:
        t = torch.from_numpy(images)
    return t.permute(0, 3, 1, 2)


def gather_rows(images: Pixels, idx: torch.Tensor) -> torch.Tensor:
    """images[idx] for an N×3×H×W view of N×H×W×3 pixels (the decoded layout, `images_to_tensor`):
    `index_select` on the contiguous pixel-major tensor, then the same view (images[idx] on the permuted
    view gathers strided pixels, several times slower); read from the cache for `CachedRows`."""
    if isinstance(images, CachedRows):
        return images.gather(idx)
    idx = idx.to(images.device)
    if images.dim() == 4 and images.is_contiguous(memory_format=torch.channels_last):
        return images.permute(0, 2, 3, 1).index_select(0, idx).permute(0, 3, 1, 2)
    return images.index_select(0, idx)


def pixels_on(images: Pixels, device: torch.device, share: float = 0.25) -> Pixels:
    """The decoded set where batches are gathered: on a GPU, moved there once per run when it takes at most
    `share` of the free GPU memory (no host-to-device copy per step); otherwise where it is (in memory, or the
    cache, from which each batch is read and copied)."""
    if device.type != "cuda":
        return images
    free, _ = torch.cuda.mem_get_info(device)
    if images.numel() * images.element_size() > share * free:
        return images
    return images.to(device)
