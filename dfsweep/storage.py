"""Can the sweeps folder take a sweep's writes? Checked once, before Ray starts or any trial runs."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import DfsweepError

__all__ = ["check_sweeps_folder", "MIN_FREE_BYTES"]

# checkpoints (two kept per trial), the SQLite stores and Tune's state: below this a sweep fails mid-way
MIN_FREE_BYTES = 100 * 2**20
_PROBE = b"dfsweep storage probe\n" * 186   # about 4 KiB: one filesystem block, written and synced


def _nearest_existing(folder: Path) -> Path:
    """The folder itself, else its closest existing parent (where the folder would be created)."""
    p = folder.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe_write(folder: Path) -> None:
    """Write, fsync and remove a small file: what a read-only, full or over-quota folder refuses."""
    fd, path = tempfile.mkstemp(prefix=".dfsweep-probe-", dir=folder)
    try:
        view = memoryview(_PROBE)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
        Path(path).unlink(missing_ok=True)


def check_sweeps_folder(root: Path, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Raise DfsweepError (one line) unless `root` (or, before it exists, the folder it would be created in)
    is a folder that takes a real write and has `min_free_bytes` free. Nothing is left behind."""
    where = _nearest_existing(Path(root))
    if not where.is_dir():
        raise DfsweepError(f"the sweeps folder {root}: {where} is a file, not a folder")
    try:
        _probe_write(where)
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise DfsweepError(f"cannot write to the sweeps folder {root} ({where}: {reason})") from None
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    if free < min_free_bytes:
        raise DfsweepError(f"the sweeps folder {root} has {free / 2**20:.0f} MiB free ({where}); a sweep needs at "
                           f"least {min_free_bytes / 2**20:.0f} MiB")
