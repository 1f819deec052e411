"""Writers for small real image files (Pillow) used by the data tests."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _write_image(path: Path, size=(40, 48), mode="RGB", color=None, seed=0, **save_kw) -> Path:
    """A small image file; random pixels unless `color` is given. The extension picks the format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(seed)
    if color is not None:
        img = Image.new(mode, size, color)
    elif mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        chans = len(mode)
        arr = rng.integers(0, 256, (h, w, chans), dtype=np.uint8)
        img = Image.fromarray(arr[..., 0] if chans == 1 else arr, mode=mode if chans > 1 else "L")
    else:
        img = Image.new(mode, size)
    img.save(path, **save_kw)
    return path


@pytest.fixture(name="write_image")
def write_image_fixture():
    """The `_write_image` function, as a fixture so tests never import conftest."""
    return _write_image


@pytest.fixture
def class_folders(tmp_path):
    """root/real/ with 5 images and root/fake/ with 2, mixed formats and extension case."""
    root = tmp_path / "set"
    for i, ext in enumerate([".jpg", ".JPG", ".jpeg", ".png", ".bmp"]):
        _write_image(root / "real" / f"r{i}{ext}", seed=i)
    _write_image(root / "fake" / "f0.webp", seed=10)
    _write_image(root / "fake" / "f1.PNG", seed=11)
    return root
