"""Decoded data sets: what a trial trains and evaluates on. The pixels stay in the on-disk cache and are read in
place (`ShardedImages`); a subset or a concatenation is a new index over them, never a copy."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from ..config import DataConfig
from ..errors import DfsweepError
from .cache import Builder, decode_images
from .shards import ShardedImages
from .sources import Listing, check_classes, list_labelled, list_unlabelled

__all__ = ["DecodedSet", "load_labelled", "load_unlabelled", "load_val_sets"]


@dataclass(frozen=True)
class DecodedSet:
    images: np.ndarray | ShardedImages    # N x S x S x 3 uint8 RGB: in the cache, or in memory
    labels: Optional[np.ndarray]    # N int64 (0 = real, 1 = fake), None when unlabelled
    groups: Optional[np.ndarray]    # N group names, None when the data has none
    ids: list[str]                  # file stems; `<domain>/<stem>` when loaded from several folders
    domains: Optional[np.ndarray] = None  # N domain names (object array of str), None when the data has none

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx) -> "DecodedSet":
        """Rows `idx` (integer indices or a boolean mask): a view of cached pixels, a copy of ones in memory."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return DecodedSet(
            images=self.images.take(idx) if isinstance(self.images, ShardedImages) else self.images[idx],
            labels=None if self.labels is None else self.labels[idx],
            groups=None if self.groups is None else self.groups[idx],
            ids=[self.ids[i] for i in idx],
            domains=None if self.domains is None else self.domains[idx],
        )

    def class_counts(self) -> np.ndarray:
        """[n_real, n_fake] as int64."""
        if self.labels is None:
            raise ValueError("class_counts() on an unlabelled set")
        return np.bincount(self.labels, minlength=2).astype(np.int64)


def _decode(listing: Listing, cfg: DataConfig, builder: Optional[Builder]) -> DecodedSet:
    images, kept = decode_images(listing.paths, cfg.image_size, cfg.cache_dir, cfg.on_bad_image, builder=builder,
                                 shard_mib=cfg.shard_mib)
    if kept.all():
        return DecodedSet(images, listing.labels, listing.groups, listing.ids, listing.domains)
    return DecodedSet(
        images=images,
        labels=None if listing.labels is None else listing.labels[kept],
        groups=None if listing.groups is None else listing.groups[kept],
        ids=[i for i, k in zip(listing.ids, kept) if k],
        domains=None if listing.domains is None else listing.domains[kept],
    )


def load_labelled(cfg: DataConfig, path: Optional[str | os.PathLike | Sequence[str | os.PathLike]] = None,
                  builder: Optional[Builder] = None) -> DecodedSet:
    """The labelled folder `path` (default `cfg.train`; `demo` = the embedded demo set), decoded (by `builder`,
    else threads in this process). A tuple of folders is one set with one domain per folder (`_load_domains`)."""
    path = cfg.train if path is None else path
    if isinstance(path, (tuple, list)):
        return _load_domains(cfg, path, builder)
    if str(path) == "demo":
        from .demo import ensure_demo  # generated on first use only
        path = ensure_demo(cfg.cache_dir)
    root = Path(path).expanduser().absolute()
    data = _decode(list_labelled(root, cfg), cfg, builder)
    check_classes(root, data.labels, " after skipping bad images")
    return data


def _load_domains(cfg: DataConfig, paths: Sequence[str | os.PathLike], builder: Optional[Builder]) -> DecodedSet:
    """Several labelled folders as one set: each folder's base name is its rows' domain and prefixes their ids
    (`<domain>/<id>`). Group names are kept as they are, so one source video in two folders stays one group;
    where only some folders name groups, a row without one is its own group, so group-aware splits still work."""
    roots: Dict[str, Path] = {}
    for path in paths:
        root = Path(os.path.normpath(Path(path).expanduser().absolute()))  # normpath: `a/.` and `a/` name `a`
        if root.name in roots:
            raise DfsweepError(f"data.train: {roots[root.name]} and {root} have the same base name {root.name!r}, "
                               f"which names each folder's domain; rename one")
        roots[root.name] = root
    # each folder as given (`demo` is a word, not a folder) is loaded and checked on its own, naming itself
    parts = {name: load_labelled(cfg, path, builder) for name, path in zip(roots, paths)}
    # with several folders the folder name is the domain: a domain column in a folder's labels.csv is not read
    ids = {name: [f"{name}/{i}" for i in part.ids] for name, part in parts.items()}
    groups = None
    if any(part.groups is not None for part in parts.values()):
        groups = np.concatenate([np.asarray(ids[name] if part.groups is None else part.groups, dtype=object)
                                 for name, part in parts.items()])
    return DecodedSet(
        images=_concat([part.images for part in parts.values()]),
        labels=np.concatenate([part.labels for part in parts.values()]),
        groups=groups,
        ids=[i for name in parts for i in ids[name]],
        domains=np.asarray([name for name, part in parts.items() for _ in range(len(part))], dtype=object),
    )


def _concat(parts: list) -> np.ndarray | ShardedImages:
    if all(isinstance(p, ShardedImages) for p in parts):
        return ShardedImages.concat(parts)
    return np.concatenate([np.asarray(p) for p in parts])    # a cache that could not be written: all in memory


def load_val_sets(cfg: DataConfig, builder: Optional[Builder] = None) -> Dict[str, DecodedSet]:
    """Every `cfg.val_sets` folder, decoded, by name; each must hold both classes (its AUC needs them)."""
    sets = {}
    for name, path in cfg.val_sets.items():
        try:
            sets[name] = load_labelled(cfg, path, builder)  # checks both classes, before and after skipping bad images
        except DfsweepError as e:
            raise DfsweepError(f"data.val_sets.{name}: {e}") from None
    return sets


def load_unlabelled(path: str | os.PathLike, cfg: DataConfig, builder: Optional[Builder] = None) -> DecodedSet:
    """Images directly in `path` (a test set; `demo` = the demo test images), decoded; no labels or groups."""
    if str(path) == "demo":
        from .demo import ensure_demo
        path = ensure_demo(cfg.cache_dir, split="test")
    root = Path(path).expanduser().absolute()
    data = _decode(list_unlabelled(root), cfg, builder)
    if len(data) == 0:
        raise DfsweepError(f"{root}: every image was skipped as bad")
    return data
