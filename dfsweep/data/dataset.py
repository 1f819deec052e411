"""Decoded, in-memory data sets: what a trial trains and evaluates on."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..config import DataConfig
from ..errors import DfsweepError
from .decode import decode_images
from .sources import Listing, check_classes, list_labelled, list_unlabelled

__all__ = ["DecodedSet", "load_labelled", "load_unlabelled"]


@dataclass(frozen=True)
class DecodedSet:
    images: np.ndarray              # N x S x S x 3 uint8 RGB
    labels: Optional[np.ndarray]    # N int64 (0 = real, 1 = fake), None when unlabelled
    groups: Optional[np.ndarray]    # N group names, None when the data has none
    ids: list[str]                  # file stems

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx) -> "DecodedSet":
        """Rows `idx` (integer indices or a boolean mask). Integer/mask indexing copies the images."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return DecodedSet(
            images=self.images[idx],
            labels=None if self.labels is None else self.labels[idx],
            groups=None if self.groups is None else self.groups[idx],
            ids=[self.ids[i] for i in idx],
        )

    def class_counts(self) -> np.ndarray:
        """[n_real, n_fake] as int64."""
        if self.labels is None:
            raise ValueError("class_counts() on an unlabelled set")
        return np.bincount(self.labels, minlength=2).astype(np.int64)


def _decode(listing: Listing, cfg: DataConfig) -> DecodedSet:
    images, kept = decode_images(listing.paths, cfg.image_size, cfg.cache_dir, cfg.on_bad_image)
    if kept.all():
        return DecodedSet(images, listing.labels, listing.groups, listing.ids)
    return DecodedSet(
        images=images,
        labels=None if listing.labels is None else listing.labels[kept],
        groups=None if listing.groups is None else listing.groups[kept],
        ids=[i for i, k in zip(listing.ids, kept) if k],
    )


def load_labelled(cfg: DataConfig, path: Optional[str | os.PathLike] = None) -> DecodedSet:
    """The labelled folder `path` (default `cfg.train`; `demo` = the embedded demo set), decoded."""
    path = cfg.train if path is None else path
    if str(path) == "demo":
        from .demo import ensure_demo  # generated on first use only
        path = ensure_demo(cfg.cache_dir)
    root = Path(path).expanduser().absolute()
    data = _decode(list_labelled(root, cfg), cfg)
    check_classes(root, data.labels, " after skipping bad images")
    return data


def load_unlabelled(path: str | os.PathLike, cfg: DataConfig) -> DecodedSet:
    """Images directly in `path` (a test set; `demo` = the demo test images), decoded; no labels or groups."""
    if str(path) == "demo":
        from .demo import ensure_demo
        path = ensure_demo(cfg.cache_dir, split="test")
    root = Path(path).expanduser().absolute()
    data = _decode(list_unlabelled(root), cfg)
    if len(data) == 0:
        raise DfsweepError(f"{root}: every image was skipped as bad")
    return data
