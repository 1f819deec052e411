"""A listing's images decoded once into the on-disk shard cache (`shards.py`) and read in place from there.

`decode_images(paths, size, cache_dir, on_bad_image, builder)`:
1. the listing is cut into shards, each keyed by its files (one stat per file);
2. complete shards already in the cache are used as they are (a damaged one is decoded again, with a warning);
3. before decoding, one line says what the missing shards need on disk and where, and a disk that cannot hold
   them is refused in one line;
4. the missing shards are built by `builder`: in this process with threads (`LocalBuilder`), or as Ray tasks
   on every node of a cluster (`cluster_cache.RayBuilder`); finished shards stay, so a decode killed halfway
   resumes where it stopped;
5. bad files are reported (error mode: one line naming the first, nothing trains) or dropped (skip mode).
Where the cache cannot be written at all, a set that fits in memory is decoded there instead.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Literal, Optional, Protocol, Sequence, Tuple

import numpy as np

from ..errors import DfsweepError
from ..memory import available_memory, gib
from ..ticker import Ticker
from .decode import FORMAT_VERSION, bad_error, cpu_count, decode_many, one_line
from .shards import (CACHE_ENV, SHARD_MIB, Shard, ShardMeta, ShardedImages, cache_root, read_meta, row_bytes,
                     shard_dir, shard_rows, write_shard)

__all__ = ["ShardJob", "Builder", "LocalBuilder", "build_shard", "plan_shards", "decode_images", "report_bad",
           "MIN_FREE_BYTES"]

log = logging.getLogger("dfsweep.data")

MIN_FREE_BYTES = 100 << 20     # left free on the cache's disk after decoding (checkpoints and logs need room)
SAY_BYTES = 256 << 20          # a decode that needs this much says so before it starts (a small one stays quiet)
IN_MEMORY_SHARE = 0.5          # without a writable cache: the most of the available memory a decoded set may take


@dataclass(frozen=True)
class ShardJob:
    key: str
    start: int                 # the shard's files are paths[start:stop]
    stop: int


def plan_shards(paths: Sequence[Path], size: int, shard_mib: float = SHARD_MIB) -> List[ShardJob]:
    """The listing cut into runs of `shard_rows(size, shard_mib)` files, each keyed by its files' resolved path,
    byte count and mtime, the size and the decoder's version."""
    rows = shard_rows(size, shard_mib)
    folders: Dict[str, str] = {}            # one realpath per folder, not one per file
    jobs = []
    for start in range(0, len(paths), rows):
        h = hashlib.sha256(f"dfsweep-decode v{FORMAT_VERSION} size={size}\n".encode())
        for p in paths[start:start + rows]:
            parent, name = os.path.split(os.fspath(p))
            real = folders.get(parent)
            if real is None:
                real = folders[parent] = os.path.realpath(parent or ".")
            try:
                st = os.stat(os.path.join(real, name))
            except OSError as e:
                raise DfsweepError(f"{p}: cannot read file ({e.strerror or e})") from None
            h.update(f"{real}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        jobs.append(ShardJob(h.hexdigest()[:32], start, min(start + rows, len(paths))))
    return jobs


def build_shard(paths: Sequence[Path], size: int, root: Path, key: str, on_bad_image: str, threads: int = 1,
                tick: Optional[Callable[[int], None]] = None, node: Optional[str] = None) -> ShardMeta:
    """Decode one shard's files and write it; in error mode a shard with a bad file is not written (its meta
    names the bad files, so the caller can report them)."""
    images, bad = decode_many(paths, size, threads, tick)
    if bad and on_bad_image == "error":
        return ShardMeta(key, len(paths), bad, node=node)
    if bad:
        images = images[np.setdiff1d(np.arange(len(paths)), list(bad))]
    return write_shard(root, size, key, images, len(paths), bad, node)


class Builder(Protocol):
    def build(self, jobs: Sequence[ShardJob], paths: Sequence[Path], size: int, root: Path, on_bad_image: str,
              tick: Callable[[int], None]) -> Iterator[ShardMeta]:
        """Build every job's shard under `root` (this node's path; other nodes use theirs), yielding each
        one's metadata as it finishes."""
        ...


class LocalBuilder:
    """Shard after shard in this process, each decoded by `threads` threads."""

    def __init__(self, threads: Optional[int] = None):
        self.threads = threads or cpu_count()

    def build(self, jobs, paths, size, root, on_bad_image, tick) -> Iterator[ShardMeta]:
        for job in jobs:
            yield build_shard(paths[job.start:job.stop], size, root, job.key, on_bad_image, self.threads, tick)


def _writable(folder: Path) -> Optional[str]:
    """None when the cache folder can be created and written, else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def _check_disk(folder: Path, n: int, size: int) -> None:
    """One line before decoding: what the cache needs and what the disk has; refused when it cannot hold it."""
    need = n * row_bytes(size)
    free = shutil.disk_usage(folder).free
    if need + MIN_FREE_BYTES > free:
        raise DfsweepError(
            f"data.cache_dir {folder.parent.parent}: decoding {n:,} images at {size} px needs {gib(need)} there and "
            f"only {gib(free)} is free; free space, point data.cache_dir (or {CACHE_ENV} on the node) at a larger "
            f"disk, or lower data.image_size")
    if need >= SAY_BYTES:
        log.info("decoding %s images at %d px into %s: %s on disk (%s free)", f"{n:,}", size, folder, gib(need),
                 gib(free))


def decode_images(paths: Sequence[Path], size: int, cache_dir: str | os.PathLike,
                  on_bad_image: Literal["error", "skip"] = "error", threads: Optional[int] = None,
                  builder: Optional[Builder] = None, shard_mib: float = SHARD_MIB
                  ) -> Tuple[np.ndarray | ShardedImages, np.ndarray]:
    """All `paths` -> (their good images, N × size × size × 3 uint8, read in place from the cache; the kept mask).

    With on_bad_image="error" any bad file raises DfsweepError naming it, and no shard holding one is written."""
    if on_bad_image not in ("error", "skip"):
        raise DfsweepError(f"data.on_bad_image: {on_bad_image!r} is not valid; valid choices: error, skip")
    paths = [Path(p) for p in paths]
    root = cache_root(cache_dir)
    folder = shard_dir(root, size)
    why = _writable(folder)
    if why is not None:
        return _in_memory(paths, size, folder, why, on_bad_image, threads)

    # 1-2. the plan, and what the cache already holds
    jobs = plan_shards(paths, size, shard_mib)
    metas: Dict[str, ShardMeta] = {}
    for job in jobs:
        meta = read_meta(root, size, job.key)
        if meta is not None:
            metas[job.key] = meta
        elif (folder / f"{job.key}.npy").exists():
            log.warning("ignoring unreadable cache file %s; decoding it again", folder / f"{job.key}.npy")
    todo = [j for j in jobs if j.key not in metas]

    # 3-4. the missing shards: room for them first, then built with progress lines
    if todo:
        n_todo = sum(j.stop - j.start for j in todo)
        _check_disk(folder, n_todo, size)
        t0 = time.perf_counter()
        ticker = Ticker(n_todo, f"decoding {n_todo} images at {size} px")
        for meta in (builder or LocalBuilder(threads)).build(todo, paths, size, root, on_bad_image, ticker.tick):
            metas[meta.key] = meta
        ticker.close()
        if n_todo * row_bytes(size) >= SAY_BYTES:
            log.info("decoded %d images at %d px in %.1f s", n_todo, size, time.perf_counter() - t0)
    else:
        log.info("loaded %d decoded images from the cache in %s", len(paths), folder)

    # 5. bad files: reported before anything trains
    kept = np.concatenate([metas[j.key].kept() for j in jobs]) if jobs else np.ones(0, bool)
    problems = {j.start + i: why for j in jobs for i, why in metas[j.key].bad.items()}
    report_bad(paths, problems, on_bad_image)
    shards = [Shard(j.key, metas[j.key].rows, metas[j.key].node) for j in jobs]
    sources = ["\n".join(map(str, paths[j.start:j.stop])) for j in jobs]
    return ShardedImages(root, size, shards, sources=sources), kept


def report_bad(paths: List[Path], problems: Dict[int, str], on_bad_image: str) -> None:
    """Error mode: one line naming the first bad file (and how many more); skip mode: a warning for each."""
    if not problems:
        return
    bad = sorted(problems)
    if on_bad_image == "error":
        raise bad_error(paths[bad[0]], problems[bad[0]], len(bad))
    for i in bad:
        log.warning("skipping bad image %s: %s", paths[i], one_line(problems[i]))
    log.warning("skipped %d bad image(s) of %d", len(bad), len(paths))


def _in_memory(paths: List[Path], size: int, folder: Path, why: str, on_bad_image: str,
               threads: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """No writable cache: the set decoded into this process's memory, where it fits."""
    need, avail = len(paths) * row_bytes(size), available_memory()
    if need > IN_MEMORY_SHARE * avail:
        raise DfsweepError(
            f"data.cache_dir {folder.parent.parent}: cannot write the decoded-image cache ({why}), and the set "
            f"({len(paths):,} images at {size} px, {gib(need)}) does not fit in memory ({gib(avail)} available); "
            f"point data.cache_dir (or {CACHE_ENV}) at a writable folder")
    log.warning("could not write the decoded-image cache %s (%s); decoding into memory instead", folder, why)
    ticker = Ticker(len(paths), f"decoding {len(paths)} images at {size} px")
    images, problems = decode_many(paths, size, threads or cpu_count(), ticker.tick)
    ticker.close()
    report_bad(paths, problems, on_bad_image)
    kept = np.ones(len(paths), dtype=bool)
    kept[list(problems)] = False
    return (images[kept] if problems else images), kept
