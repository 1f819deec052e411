"""Tiny real image folders and configs, written by Pillow (imported by tests and conftest)."""
from pathlib import Path

import numpy as np
import yaml
from PIL import Image


def write_tiny_set(root: Path, n_real: int = 30, n_fake: int = 10, size: int = 64, seed: int = 0) -> Path:
    """real/ and fake/ folders of PNGs; fakes carry a bright square, so a model can learn them fast."""
    rng = np.random.default_rng(seed)
    for cls, n in (("real", n_real), ("fake", n_fake)):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(60, 140, (size, size, 3), dtype=np.uint8)
            if cls == "fake":
                y, x = rng.integers(8, size - 24, 2)
                img[y:y + 16, x:x + 16] = 250
            Image.fromarray(img).save(root / cls / f"{cls}_{i:03d}.png")
    return root


def write_config(path: Path, data_dir: Path, cache_dir: Path, **sections) -> Path:
    cfg = {
        "data": {"train": str(data_dir), "image_size": 64, "cache_dir": str(cache_dir)},
        "model": {"name": "deepfakenet", "width": 0.25},
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "threads": 1},
    }
    for sec, vals in sections.items():
        cfg.setdefault(sec, {}).update(vals)
    path.write_text(yaml.safe_dump(cfg))
    return path


def bright_patch_set(n_real: int = 40, n_fake: int = 12, size: int = 64, seed: int = 0, patch: int = 16,
                     margin: int = 8):
    """An in-memory DecodedSet: grey noise, each fake with one bright `patch`² square placed at least
    `margin` px from the top-left and `patch + margin` from the bottom-right edge (an easy, learnable signal)."""
    from dfsweep.data import DecodedSet
    rng = np.random.default_rng(seed)
    imgs = rng.integers(60, 140, (n_real + n_fake, size, size, 3), dtype=np.uint8)
    labels = np.array([0] * n_real + [1] * n_fake, dtype=np.int64)
    for i in range(n_real, n_real + n_fake):
        y, x = rng.integers(margin, size - patch - margin, 2)
        imgs[i, y:y + patch, x:x + patch] = 250
    return DecodedSet(imgs, labels, None, [f"img{i}" for i in range(len(labels))])


def in_cache(data, root: Path, rows_per_shard: int = 7):
    """The same DecodedSet with its pixels written to cache shards under `root` (`rows_per_shard` each) and read
    in place from there, as a set decoded into the cache is."""
    import dataclasses
    from dfsweep.data import ShardedImages
    from dfsweep.data.shards import Shard, write_shard
    images = np.asarray(data.images)
    shards = []
    for i, start in enumerate(range(0, len(images), rows_per_shard)):
        part = images[start:start + rows_per_shard]
        write_shard(root, images.shape[1], f"test{i:04d}", part, len(part), {})
        shards.append(Shard(f"test{i:04d}", len(part)))
    return dataclasses.replace(data, images=ShardedImages(root, images.shape[1], shards))
