"""A decoded set at another resolution: a trial that searches `data.image_size` resizes the sweep's shared,
once-decoded images (antialiased, as a resize at decode time would be) instead of decoding them again. A set in
the cache is resized shard by shard into the cache beside it (once per node, whichever trial gets there first)."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np

from ..errors import DfsweepError
from ..memory import gib
from .shards import Shard, ShardedImages, building, read_meta, row_bytes, shard_dir, write_shard

__all__ = ["at_size", "resize_array"]


def resize_array(images: np.ndarray, size: int, chunk: int = 256) -> np.ndarray:
    """N × S × S × 3 uint8 -> N × size × size × 3, a chunk at a time (a float copy of the whole set would be 4x
    its size)."""
    import torch
    import torch.nn.functional as F
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + chunk])).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start:start + chunk] = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def _resized_shards(images: ShardedImages, size: int) -> ShardedImages:
    """The same rows at `size`, each shard resized into this node's cache unless it is there already."""
    root = images.local_root()
    keys = [f"{s.key}-from{images.size}" for s in images.shards]
    todo = [i for i, k in enumerate(keys) if read_meta(root, size, k) is None]
    if todo:
        folder = shard_dir(root, size)
        folder.mkdir(parents=True, exist_ok=True)
        need, free = sum(images.shards[i].rows for i in todo) * row_bytes(size), shutil.disk_usage(folder).free
        if need > free:
            raise DfsweepError(f"{folder}: the images resized to {size} px need {gib(need)}, {gib(free)} is free")
    for i in todo:
        with building(root, size, keys[i]):
            if read_meta(root, size, keys[i]) is None:
                write_shard(root, size, keys[i], resize_array(images.read_shard(i), size), images.shards[i].rows, {})
    shards = [Shard(k, s.rows) for k, s in zip(keys, images.shards)]
    return ShardedImages(images.root, size, shards, images.index)


def at_size(data, size: int, chunk: int = 256):
    """`data` (a DecodedSet) with its images resized to size x size; the same object when they already are."""
    if data.images.shape[1] == size and data.images.shape[2] == size:
        return data
    if isinstance(data.images, ShardedImages):
        return dataclasses.replace(data, images=_resized_shards(data.images, size))
    return dataclasses.replace(data, images=resize_array(data.images, size, chunk))
