"""Checkpoints: a state dict, the config and the threshold, loadable with torch.load(weights_only=True)."""
from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict

import torch

from .errors import DfsweepError

__all__ = ["save_checkpoint", "load_checkpoint", "atomic_write_bytes", "FORMAT", "CheckpointWriteError"]

FORMAT = "dfsweep-checkpoint-v1"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a read-only or full disk, a path in the way): the trial that
    needed it fails with this one-line reason; the rest of the sweep goes on."""


def _plain(obj: Any) -> Any:
    """Tuples -> lists and numpy scalars -> Python, so weights_only loading accepts the config."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, torch.Tensor):
        return obj.item()
    return obj


def atomic_write_bytes(path: Path, write) -> None:
    """Write through `write(fileobj)` to a temp file beside `path`, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path, state_dict: Dict[str, torch.Tensor], config: Dict[str, Any], threshold: float,
                    metrics: Dict[str, Any] | None = None, **extra: Any) -> Path:
    payload = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "config": _plain(config),
        "threshold": float(threshold),
        "metrics": _plain(metrics or {}),
        **{k: _plain(v) for k, v in extra.items()},
    }
    atomic_write_bytes(Path(path), lambda f: torch.save(payload, f))
    return Path(path)


def load_checkpoint(path) -> Dict[str, Any]:
    """Load safely (weights_only=True): a pickle that tries to run code is refused, not executed."""
    p = Path(path)
    if not p.is_file():
        raise DfsweepError(f"{path}: model file not found")
    if not zipfile.is_zipfile(p):
        raise DfsweepError(f"{path}: not a dfsweep checkpoint (not a torch.save file)")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"it would call {m.group(1)}" if m else "it holds more than plain weights"
        raise DfsweepError(f"{path}: refused to load: {what} (checkpoints load with weights_only=True)") from None
    except Exception as e:  # zip/EOF/format errors
        raise DfsweepError(f"{path}: not a dfsweep checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DfsweepError(f"{path}: not a dfsweep checkpoint (no '{FORMAT}' marker)")
    return ckpt
