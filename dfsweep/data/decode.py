"""One image file -> `size x size x 3` uint8 RGB, or `BadImage` naming what is wrong with it.

The decoded-image cache (`cache.py`) keeps the results; `FORMAT_VERSION` is part of every cache key."""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np
from PIL import Image, ImageFile, ImageOps

from ..errors import DfsweepError

__all__ = ["FORMAT_VERSION", "BadImage", "decode_image", "decode_many", "strict_truncation", "bad_error", "one_line", "cpu_count"]

# Bump whenever decode_image's output could change (filter, colour handling, orientation ...).
FORMAT_VERSION = 1
_FILTER = Image.Resampling.LANCZOS  # antialiased; keeps more of the high-frequency detail fakes leave


class BadImage(Exception):
    """One file that cannot be decoded; the message is the problem, without the path."""


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _to_rgb(im: Image.Image) -> Image.Image:
    # 1. 16/32-bit greyscale: Pillow's convert("RGB") clips at 255 instead of scaling, so scale by hand.
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
        a = np.clip(np.rint(a * (255.0 / hi)), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(a[..., None], 3, axis=2))
    # 2. Transparency is composited onto black; dropping alpha would expose whatever colour the
    #    transparent pixels happen to store.
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def decode_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """One file -> (size, size, 3) uint8 RGB. Raises BadImage with the problem."""
    try:
        if os.path.getsize(path) == 0:
            raise BadImage("empty file (0 bytes)")
        with Image.open(path) as im:
            # 1. JPEG can decode at 1/2, 1/4, 1/8 scale straight from the DCT; draft picks the smallest
            #    scale that is still >= size, so the resize below only ever shrinks a little.
            if im.format == "JPEG":
                im.draft("RGB", (size, size))
            im.load()  # forces the full decode: a truncated file raises here, not later
            ImageOps.exif_transpose(im, in_place=True)
            im = _to_rgb(im)
            # 2. Face crops are close to square, so a direct resize (no crop, no padding) keeps the whole face.
            if im.size != (size, size):
                im = im.resize((size, size), _FILTER)
            out = np.asarray(im, dtype=np.uint8)
    except BadImage:
        raise
    except Image.UnidentifiedImageError:
        raise BadImage("not an image, or a format Pillow cannot read") from None
    except Image.DecompressionBombError as e:
        raise BadImage(f"too large to decode safely ({e})") from None
    except FileNotFoundError:
        raise BadImage("file not found (deleted while reading?)") from None
    except OSError as e:
        msg = str(e) or type(e).__name__
        if "truncated" not in msg:
            msg = f"cannot decode ({msg}); the file may be truncated or corrupt"
        raise BadImage(msg) from None
    except Exception as e:  # Pillow raises SyntaxError, ValueError, struct.error ... on corrupt data
        raise BadImage(f"corrupt image ({type(e).__name__}: {e})") from None
    if out.shape != (size, size, 3):
        raise BadImage(f"decoded to an unexpected shape {out.shape}")
    return out


@contextlib.contextmanager
def strict_truncation():
    """A truncated file must fail to load, whatever another library set this Pillow global to."""
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def bad_error(path: Path, problem: str, n_bad: int) -> DfsweepError:
    more = f" ({n_bad - 1} more bad image(s); " if n_bad > 1 else " ("
    return DfsweepError(f"{path}: {one_line(problem)}{more}set data.on_bad_image: skip to drop bad images)")


def decode_many(paths: Sequence[Path], size: int, threads: int = 1,
                tick: Optional[Callable[[int], None]] = None) -> tuple[np.ndarray, Dict[int, str]]:
    """Every image into one new array (the rows of bad files left as zeros), and the problem of each bad file by
    position. Pillow releases the GIL while decoding and resizing, so threads use every core without copying
    arrays between processes."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    problems: Dict[int, str] = {}

    def work(i: int) -> None:
        try:
            out[i] = decode_image(paths[i], size)
        except BadImage as e:
            out[i] = 0
            problems[i] = str(e)
        if tick is not None:
            tick(1)

    with strict_truncation():
        if threads <= 1 or len(paths) <= 1:
            for i in range(len(paths)):
                work(i)
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dfsweep-decode") as pool:
                list(pool.map(work, range(len(paths))))
    return out, problems
