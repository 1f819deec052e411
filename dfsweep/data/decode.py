"""Decode every image once to `size x size x 3` uint8 RGB, and keep the result in an on-disk cache.

The cache file is named by a hash of (resolved path, bytes, mtime_ns) of every file, the image size and
`FORMAT_VERSION`, so any change to the data or to this decoder gives a new file and a stale one is never
read. Files are written to a temporary name and renamed, so a crash or two trials decoding at once never
leave a half-written cache behind. Training reads the arrays from memory.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np
from PIL import Image, ImageFile, ImageOps

from ..errors import DfsweepError
from ..ticker import Ticker

__all__ = ["FORMAT_VERSION", "BadImage", "decode_image", "decode_images", "cache_key"]

log = logging.getLogger("dfsweep.data")

# Bump whenever decode_image's output could change (filter, colour handling, orientation ...).
FORMAT_VERSION = 1
_FILTER = Image.Resampling.LANCZOS  # antialiased; keeps more of the high-frequency detail fakes leave


class BadImage(Exception):
    """One file that cannot be decoded; the message is the problem, without the path."""


def _cpu_count() -> int:
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


def cache_key(paths: Sequence[Path], size: int) -> str:
    h = hashlib.sha256(f"dfsweep-decode v{FORMAT_VERSION} size={size} n={len(paths)}\n".encode())
    for p in paths:
        try:
            rp = Path(p).resolve()
            st = rp.stat()
        except OSError as e:
            raise DfsweepError(f"{p}: cannot read file ({e.strerror or e})") from None
        h.update(f"{rp}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


@contextlib.contextmanager
def _strict_truncation():
    """A truncated file must fail to load, whatever another library set this Pillow global to."""
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; other users of a shared cache must read it
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _bad_error(path: Path, problem: str, n_bad: int) -> DfsweepError:
    more = f" ({n_bad - 1} more bad image(s); " if n_bad > 1 else " ("
    return DfsweepError(f"{path}: {_one_line(problem)}{more}set data.on_bad_image: skip to drop bad images)")


def decode_images(
    paths: Sequence[Path],
    size: int,
    cache_dir: str | os.PathLike,
    on_bad_image: Literal["error", "skip"] = "error",
    threads: Optional[int] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All `paths` -> (images[kept] as N x size x size x 3 uint8, kept mask of len(paths)).

    With on_bad_image="error" any bad file raises DfsweepError before anything reaches the cache.
    """
    if on_bad_image not in ("error", "skip"):
        raise DfsweepError(f"data.on_bad_image: {on_bad_image!r} is not valid; valid choices: error, skip")
    paths = [Path(p) for p in paths]
    folder = Path(cache_dir).expanduser().absolute() / "decoded"
    key = cache_key(paths, size)
    stem = f"{size}px-{len(paths)}-{key}"
    images_file, kept_file = folder / f"{stem}.npy", folder / f"{stem}.kept.npy"

    # 1. Cache hit. The images file is written last, so its presence means the set is complete; the
    #    kept mask exists only when some files were bad.
    cached = _load_cached(images_file, kept_file, len(paths), size)
    if cached is not None:
        images, kept = cached
        log.info("loaded %d decoded images from cache %s", images.shape[0], images_file)
        _report_bad(paths, kept, size, on_bad_image, problems=None)
        return images, kept

    # 2. Decode; a bad file is reported before anything is written
    t0 = time.perf_counter()
    out, problems = _decode_all(paths, size, threads or _cpu_count())
    kept = np.ones(len(paths), dtype=bool)
    kept[list(problems)] = False
    _report_bad(paths, kept, size, on_bad_image, problems)  # raises in "error" mode, before any write
    images = out[kept] if problems else out
    log.info("decoded %d images at %d px in %.1f s", len(paths), size, time.perf_counter() - t0)

    # 3. The cache only saves time: a full disk or a read-only folder must not lose the decoded data.
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if problems:
            _atomic_save(kept_file, kept)
        _atomic_save(images_file, images)
    except OSError as e:
        log.warning("could not write the decoded-image cache %s (%s); continuing without it",
                    images_file, e.strerror or e)
    return images, kept


def _load_cached(images_file: Path, kept_file: Path, n: int, size: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(images, kept) from a complete, well-formed cache entry, else None (an unreadable one is warned about)."""
    if not images_file.is_file():
        return None
    try:
        images = np.load(images_file, allow_pickle=False)
        kept = np.load(kept_file, allow_pickle=False) if kept_file.is_file() else np.ones(n, bool)
        if (images.dtype == np.uint8 and images.shape[1:] == (size, size, 3)
                and kept.shape == (n,) and images.shape[0] == int(kept.sum())):
            return images, kept
    except (OSError, ValueError, EOFError):
        pass
    log.warning("ignoring unreadable cache file %s; decoding again", images_file)
    return None


def _decode_all(paths: list[Path], size: int, n_threads: int) -> tuple[np.ndarray, dict[int, str]]:
    """Every image into one preallocated array, and the problem of each file that failed. Pillow releases the
    GIL while decoding and resizing, so threads use every core without copying arrays between processes."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    problems: dict[int, str] = {}
    ticker = Ticker(len(paths), f"decoding {len(paths)} images at {size} px")

    def work(i: int) -> None:
        try:
            out[i] = decode_image(paths[i], size)
        except BadImage as e:
            problems[i] = str(e)
        ticker.tick()

    with _strict_truncation():
        if n_threads == 1:
            for i in range(len(paths)):
                work(i)
        else:
            with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="dfsweep-decode") as pool:
                list(pool.map(work, range(len(paths))))
    ticker.close()
    return out, problems


def _report_bad(paths: list[Path], kept: np.ndarray, size: int, on_bad_image: str,
                problems: Optional[dict[int, str]]) -> None:
    bad = np.flatnonzero(~kept)
    if len(bad) == 0:
        return
    if on_bad_image == "error":
        # A cache hit stores only the mask, so decode the first bad file again for its message.
        first = int(bad[0])
        if problems is not None:
            problem = problems[first]
        else:
            try:
                with _strict_truncation():
                    decode_image(paths[first], size)
                problem = "could not be decoded"
            except BadImage as e:
                problem = str(e)
        raise _bad_error(paths[first], problem, len(bad))
    for i in bad:
        why = problems[int(i)] if problems is not None else "bad image (found when the cache was built)"
        log.warning("skipping bad image %s: %s", paths[i], _one_line(why))
    log.warning("skipped %d bad image(s) of %d", len(bad), len(paths))
