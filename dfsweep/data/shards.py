"""The decoded-image cache on disk: a set as shards of uint8 images that every process reads in place.

    <cache root>/decoded/<size>px/<key>.npy    the shard's good images, n × size × size × 3 uint8 RGB, in order
    <cache root>/decoded/<size>px/<key>.json   its files' count, the bad ones (position: problem), the digest of
                                               its pixels, the Ray node that built it

A shard is a run of up to `shard_rows(size)` consecutive files of a listing. Its key hashes those files'
resolved path, byte count and mtime with the size and the decoder's `FORMAT_VERSION`: a changed file changes its
own shard's key only, and a stale shard is never read. Both files are written under temporary names and renamed,
the .json first, so a .npy present means a complete shard; a decode killed halfway keeps its finished shards.

`ShardedImages` is the set read from there: numpy-like (N × S × S × 3, `arr[i]`, `arr[a:b]`, `arr[rows]`), and
pickled as its shards' names, not their pixels. Rows are read with `pread` into the caller's buffer: the pages
stay in the kernel's page cache, shared by every process of the node, and no process maps the whole set.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["SHARD_MIB", "CACHE_ENV", "Shard", "ShardMeta", "ShardedImages", "shard_rows", "shard_dir",
           "cache_root", "read_meta", "write_shard", "write_shard_bytes", "row_bytes", "building"]

SHARD_MIB = 64                  # a shard's pixels (data.shard_mib): the unit of decoding, resuming and copying
CACHE_ENV = "DFSWEEP_CACHE_DIR"  # set on a node: its own cache folder, in place of data.cache_dir


def row_bytes(size: int) -> int:
    return size * size * 3


def shard_rows(size: int, shard_mib: float = SHARD_MIB) -> int:
    """Files per shard of `shard_mib` MiB at `size` px."""
    return max(1, int(shard_mib * (1 << 20)) // row_bytes(size))


def cache_root(cache_dir: str | os.PathLike) -> Path:
    """This node's cache folder: $DFSWEEP_CACHE_DIR where the node was started with it, else `cache_dir`
    (absolute)."""
    return Path(os.environ.get(CACHE_ENV) or cache_dir).expanduser().absolute()


def shard_dir(root: str | os.PathLike, size: int) -> Path:
    return Path(root) / "decoded" / f"{size}px"


@dataclass(frozen=True)
class ShardMeta:
    """What a shard holds: `files` decoded, the bad ones by position (their problem), the digest of its pixels."""
    key: str
    files: int
    bad: Dict[int, str] = field(default_factory=dict)
    digest: str = ""
    node: Optional[str] = None      # the Ray node that built it (where another node copies it from)

    @property
    def rows(self) -> int:
        return self.files - len(self.bad)

    def kept(self) -> np.ndarray:
        k = np.ones(self.files, dtype=bool)
        k[list(self.bad)] = False
        return k


def read_meta(root: str | os.PathLike, size: int, key: str) -> Optional[ShardMeta]:
    """A complete shard's metadata (its .npy present and well-formed), else None."""
    folder = shard_dir(root, size)
    npy, meta = folder / f"{key}.npy", folder / f"{key}.json"
    if not npy.is_file():
        return None
    try:
        m = json.loads(meta.read_text())
        info = ShardMeta(key, int(m["files"]), {int(k): v for k, v in m["bad"].items()}, m["digest"], m.get("node"))
        shape, offset = _npy_layout(npy)
        expected = npy.stat().st_size == offset + info.rows * row_bytes(size)
        if shape == (info.rows, size, size, 3) and expected:
            return info
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def write_shard(root: str | os.PathLike, size: int, key: str, images: np.ndarray, files: int,
                bad: Dict[int, str], node: Optional[str] = None) -> ShardMeta:
    """Write a shard (images: its good rows; `node`: the Ray node building it) atomically: the .json, then the
    .npy that marks it complete."""
    folder = shard_dir(root, size)
    folder.mkdir(parents=True, exist_ok=True)
    # sha256: hardware-accelerated where the CPU has SHA extensions, and every shard's pixels are hashed once
    digest = hashlib.sha256(memoryview(np.ascontiguousarray(images)).cast("B")).hexdigest()[:32]
    info = ShardMeta(key, files, dict(bad), digest, node)
    meta = {"files": files, "bad": {str(k): v for k, v in bad.items()}, "digest": info.digest, "node": node}
    _atomic(folder / f"{key}.json", lambda f: f.write(json.dumps(meta).encode()))
    _atomic(folder / f"{key}.npy", lambda f: np.save(f, images, allow_pickle=False))
    return info


def write_shard_bytes(root: str | os.PathLike, size: int, key: str, meta: bytes, npy: bytes) -> None:
    """A shard copied from another node: its two files as they were there, written as `write_shard` writes."""
    folder = shard_dir(root, size)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic(folder / f"{key}.json", lambda f: f.write(meta))
    _atomic(folder / f"{key}.npy", lambda f: f.write(npy))


@contextlib.contextmanager
def building(root: str | os.PathLike, size: int, key: str):
    """Held while one process of a node builds or copies a shard: the others wait here, then find it there."""
    folder = shard_dir(root, size)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{key}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; other users of a shared cache must read it
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            # on disk before the rename, so a crash never leaves a complete-looking shard; then out of the
            # page cache: a decode of a set larger than memory must not fill it with pages nobody reads yet
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _npy_layout(path: Path) -> Tuple[Tuple[int, ...], int]:
    """(shape, byte offset of the pixels) of a uint8 C-order .npy file."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = _read_header(f, version)
        if fortran or dtype != np.uint8:
            raise ValueError(f"{path}: not a C-order uint8 array")
        return tuple(shape), f.tell()


def _read_header(f, version) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


class _OpenFiles:
    """This process's open shard files (fd and pixel offset), the most recently used kept open."""

    def __init__(self, limit: int = 64):
        self.limit = limit
        self.open: "OrderedDict[str, Tuple[int, int]]" = OrderedDict()
        self.lock = threading.Lock()

    def get(self, path: str) -> Tuple[int, int]:
        with self.lock:
            if path in self.open:
                self.open.move_to_end(path)
                return self.open[path]
            _, offset = _npy_layout(Path(path))
            fd = os.open(path, os.O_RDONLY)
            self.open[path] = (fd, offset)
            while len(self.open) > self.limit:
                _, (old, _) = self.open.popitem(last=False)
                os.close(old)
            return fd, offset


_FILES = _OpenFiles()


def _pread_into(fd: int, buf: memoryview, offset: int) -> None:
    done = 0
    while done < len(buf):
        n = os.preadv(fd, [buf[done:]], offset + done)
        if n <= 0:
            raise OSError(f"short read at byte {offset + done}")
        done += n


@dataclass(frozen=True)
class Shard:
    key: str
    rows: int
    node: Optional[str] = None


class ShardedImages:
    """N × size × size × 3 uint8 images kept in shards under a cache root, read in place.

    `index` (optional) picks and orders rows of the shards' concatenation: a subset or a concatenation of
    sets is a new index over the same files, never a copy of pixels. `sources` (each shard's files, one name a
    line: a string per shard, not one per file) lets a node that lacks a shard build it itself."""

    def __init__(self, root: str | os.PathLike, size: int, shards: Sequence[Shard],
                 index: Optional[np.ndarray] = None, sources: Optional[Sequence[str]] = None):
        self.root, self.size = str(root), int(size)
        self.shards = tuple(shards)
        self.starts = np.concatenate([[0], np.cumsum([s.rows for s in self.shards], dtype=np.int64)])
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        self.sources = None if sources is None else tuple(sources)

    # --- numpy-like --------------------------------------------------------------------------------
    dtype = np.dtype(np.uint8)
    ndim = 4

    @property
    def shape(self) -> Tuple[int, int, int, int]:
        return (len(self), self.size, self.size, 3)

    @property
    def nbytes(self) -> int:
        return len(self) * row_bytes(self.size)

    def __len__(self) -> int:
        return int(self.starts[-1]) if self.index is None else len(self.index)

    def __getitem__(self, item) -> np.ndarray:
        if isinstance(item, tuple):                 # rows first, then numpy indexing within what they gave
            head = self[item[0]]
            return head[item[1:]] if isinstance(item[0], (int, np.integer)) else head[(slice(None),) + item[1:]]
        if isinstance(item, (int, np.integer)):
            return self.read_rows(np.asarray([item]))[0]
        if isinstance(item, slice):
            return self.read_rows(np.arange(*item.indices(len(self))))
        return self.read_rows(np.asarray(item))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.read_rows(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def __reduce__(self):
        return (ShardedImages, (self.root, self.size, self.shards, self.index, self.sources))

    # --- views -------------------------------------------------------------------------------------
    def take(self, idx) -> "ShardedImages":
        """Rows `idx` (integers or a boolean mask) as a view over the same shards."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        base = idx.astype(np.int64) if self.index is None else self.index[idx]
        return ShardedImages(self.root, self.size, self.shards, base, self.sources)

    @staticmethod
    def concat(parts: Sequence["ShardedImages"]) -> "ShardedImages":
        """One set of `parts` in order (same root and size): their shards side by side, one index."""
        first = parts[0]
        shards: List[Shard] = []
        index, sources, offset = [], [], 0
        for p in parts:
            if p.root != first.root or p.size != first.size:
                raise ValueError("concatenated sets must share a cache root and an image size")
            shards += p.shards
            index.append((np.arange(int(p.starts[-1])) if p.index is None else p.index) + offset)
            sources = None if sources is None or p.sources is None else sources + list(p.sources)
            offset += int(p.starts[-1])
        return ShardedImages(first.root, first.size, shards, np.concatenate(index), sources)

    # --- reading -----------------------------------------------------------------------------------
    def local_root(self) -> Path:
        return Path(os.environ.get(CACHE_ENV) or self.root)

    def path(self, shard: int) -> Path:
        return shard_dir(self.local_root(), self.size) / f"{self.shards[shard].key}.npy"

    def _file(self, shard: int) -> str:
        """The shard's file name in this process (computed once: a batch reads from many shards)."""
        names = self.__dict__.get("_names")
        if names is None:
            folder = shard_dir(self.local_root(), self.size)
            names = self.__dict__["_names"] = [str(folder / f"{s.key}.npy") for s in self.shards]
        return names[shard]

    def missing(self) -> List[int]:
        """The shards this node does not hold (a node-local cache on another node of a cluster)."""
        return [i for i in range(len(self.shards)) if not self.path(i).is_file()]

    def read_shard(self, shard: int) -> np.ndarray:
        """All of one shard's rows, whatever this view's index."""
        base = np.arange(self.starts[shard], self.starts[shard + 1])
        return ShardedImages(self.root, self.size, self.shards).read_rows(base)

    def base_rows(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        return rows if self.index is None else self.index[rows]

    def read_rows(self, rows, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Rows `rows` as a new (or into `out`) contiguous n × S × S × 3 array; runs of consecutive rows in one
        shard are one read."""
        base = self.base_rows(rows)
        n, rb = len(base), row_bytes(self.size)
        if out is None:
            out = np.empty((n, self.size, self.size, 3), dtype=np.uint8)
        flat = memoryview(out.reshape(-1)).cast("B")
        for at, shard, first, count in self._runs(base):
            fd, offset = _FILES.get(self._file(shard))
            _pread_into(fd, flat[at * rb:(at + count) * rb], offset + first * rb)
        return out

    def _runs(self, base: np.ndarray) -> Iterator[Tuple[int, int, int, int]]:
        """(position in the output, shard, first row in the shard, row count) for each run of consecutive rows."""
        if len(base) == 0:
            return
        shard = np.searchsorted(self.starts, base, side="right") - 1
        within = base - self.starts[shard]
        # a run breaks where the shard changes or the next row is not the next one on disk
        breaks = np.flatnonzero((np.diff(shard) != 0) | (np.diff(within) != 1)) + 1
        bounds = np.concatenate([[0], breaks, [len(base)]])
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            yield a, int(shard[a]), int(within[a]), b - a

    def chunks(self, rows: int) -> Iterator[Tuple[int, np.ndarray]]:
        """(start, images[start:start + rows]) in order, each chunk read whole."""
        for start in range(0, len(self), rows):
            yield start, self.read_rows(np.arange(start, min(start + rows, len(self))))

    def digest(self) -> str:
        """The pixels' identity without reading them: each shard's digest (taken when it was written) and the
        rows taken from them."""
        h = hashlib.blake2b(digest_size=16)
        for s in self.shards:
            meta = read_meta(self.local_root(), self.size, s.key)
            h.update(f"{meta.digest if meta else s.key}:{s.rows}\n".encode())
        if self.index is not None:
            h.update(memoryview(np.ascontiguousarray(self.index)).cast("B"))
        return h.hexdigest()
