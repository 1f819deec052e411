"""Where a sweep's files are (the layout sweep.py describes) and how a sweep is named on the command line.

Light on purpose: `dfsweep status` and `dfsweep ls` read a sweep through it without importing torch or Ray.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from .errors import DfsweepError

__all__ = ["SweepPaths", "resolve_sweep_dir", "read_state"]


@dataclass(frozen=True)
class SweepPaths:
    root: Path
    name: str

    @property
    def dir(self) -> Path:
        return self.root / self.name

    spec = property(lambda self: self.dir / "sweep.yaml")
    state = property(lambda self: self.dir / "state.json")
    optuna_db = property(lambda self: self.dir / "optuna.db")
    tune_dir = property(lambda self: self.dir / "tune")
    leaderboard = property(lambda self: self.dir / "leaderboard.csv")
    best = property(lambda self: self.dir / "best.yaml")
    trials = property(lambda self: self.dir / "trials.yaml")
    phase = property(lambda self: self.dir / "phase")
    analysis = property(lambda self: self.dir / "analysis")
    latest = property(lambda self: self.root / "latest")


def resolve_sweep_dir(path: Optional[str], root: Path = Path("sweeps")) -> Path:
    """A sweep folder given by path or name; default sweeps/latest."""
    p = Path(path) if path else root / "latest"
    if not p.exists() and path and (root / path).exists():
        p = root / path
    if not (p / "sweep.yaml").is_file():
        raise DfsweepError(f"{p}: not a sweep folder (no sweep.yaml)")
    return p.resolve()


def read_state(paths: SweepPaths) -> Dict[str, Any]:
    """state.json as a dict ({} before the sweep wrote one)."""
    return json.loads(paths.state.read_text()) if paths.state.is_file() else {}
