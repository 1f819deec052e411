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
