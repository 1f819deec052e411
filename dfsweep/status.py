"""`dfsweep status` and `dfsweep ls`: sweeps read from their files (state.json, phase, sweep.yaml and the live
leaderboard.csv), while they run or after, without Ray or torch.
"""
from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import pandas as pd
import yaml

from .errors import DfsweepError
from .report import board_table
from .statuses import PENDING, RUNNING
from .sweep_paths import SweepPaths, read_state, resolve_sweep_dir

__all__ = ["SweepView", "read_view", "driver_state", "status_text", "list_text", "show_status"]

DRIVER_GONE = "RUNNING (driver gone)"


@dataclass
class SweepView:
    """What a sweep's files say about it."""
    paths: SweepPaths
    state: Dict[str, Any]
    spec: Dict[str, Any]
    phase: str                 # search | confirm | done, "" before the search started
    board: pd.DataFrame        # the live or final leaderboard (empty before the first trial event)

    def setting(self, section: str, key: str, default: Any = None) -> Any:
        return (self.spec.get(section) or {}).get(key, default)


_TEXT = ("trial_id", "role", "confirms", "status", "note", "error", "node_ip")


def _read_board(path: Path) -> pd.DataFrame:
    """leaderboard.csv with its text columns as text ("" when empty): a trial id of digits stays a string."""
    board = pd.read_csv(path, dtype={c: str for c in _TEXT})
    for c in (c for c in _TEXT if c in board):
        board[c] = board[c].fillna("")
    return board


def read_view(sweep_dir: Path) -> SweepView:
    paths = SweepPaths(sweep_dir.parent, sweep_dir.name)
    spec = yaml.safe_load(paths.spec.read_text()) or {}
    phase = paths.phase.read_text().strip() if paths.phase.is_file() else ""
    board = _read_board(paths.leaderboard) if paths.leaderboard.is_file() else pd.DataFrame()
    return SweepView(paths, read_state(paths), spec, phase, board)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # someone else's process: it exists
        return True
    return True


def driver_state(state: Mapping[str, Any]) -> str:
    """state.json's status; a RUNNING sweep whose driver (pid on this host) no longer exists says so: it was
    killed or crashed, and `dfsweep run --resume` continues it."""
    status = str(state.get("status") or "NOT STARTED")
    pid, host = state.get("pid"), state.get("host")
    if status == "RUNNING" and pid and host == socket.gethostname() and not _alive(int(pid)):
        return DRIVER_GONE
    return status


def _ago(seconds: float) -> str:
    s = max(0.0, seconds)
    for unit, size, limit in (("s", 1, 90), ("m", 60, 90 * 60), ("h", 3600, 36 * 3600)):
        if s < limit:
            return f"{s / size:.0f}{unit}"
    return f"{s / 86400:.0f}d"


def _counts(board: pd.DataFrame) -> Dict[str, int]:
    """Search trials ended / running / waiting, and confirmation runs, from the leaderboard's rows."""
    if not len(board):
        return {"ended": 0, "running": 0, "pending": 0, "confirm": 0}
    search = board[board["role"] != "confirm"]
    return {"ended": int((~search["status"].isin([RUNNING, PENDING])).sum()),
            "running": int((board["status"] == RUNNING).sum()),
            "pending": int((board["status"] == PENDING).sum()), "confirm": int((board["role"] == "confirm").sum())}


def _scoring(view: SweepView):
    from .objective import Scoring
    return Scoring.of_spec(view.spec)


def _best(view: SweepView) -> str:
    """The leaderboard's rank 1 as "auc 0.9123 (trial)", its confirmed mean when it was confirmed."""
    metric, board = _scoring(view).key, view.board
    if not len(board) or metric not in board:
        return "-"
    top = board.iloc[0]
    if top["role"] != "confirm" and top.get("confirm_n", 0) and not pd.isna(top.get("confirm_mean")):
        return f"{metric} {top['confirm_mean']:.4f} confirmed ({top['trial_id']})"
    if top["role"] == "confirm" or pd.isna(top[metric]):
        return "-"
    return f"{metric} {top[metric]:.4f} ({top['trial_id']})"


def _budget_left(view: SweepView, now: float) -> Optional[float]:
    """Seconds of sweep.time_budget_s left, counted from this driver's start (None: no budget)."""
    budget, started = view.setting("sweep", "time_budget_s"), view.state.get("started_at")
    if budget is None or started is None:
        return None
    return float(budget) - (now - float(started))


def _eta(row: Mapping[str, Any], epochs: int, budget_left: Optional[float], now: float) -> str:
    """A running trial's time to its last epoch at its pace so far; the budget ends a search trial sooner."""
    done = int(row.get("epochs_run") or 0)
    if done <= 0 or pd.isna(row.get("time_s", math.nan)):
        return "first epoch running"
    since = now - float(row["reported_at"]) if row.get("reported_at") else 0.0
    left = max(0.0, float(row["time_s"]) / done * (epochs - done) - since)
    if budget_left is not None and row.get("role") != "confirm" and budget_left < left:
        return f"~{_ago(max(budget_left, 0))} left (the time budget ends it)"
    return f"~{_ago(left)} left"


def _header(view: SweepView, now: float) -> List[str]:
    state, c = driver_state(view.state), _counts(view.board)
    n = view.setting("sweep", "num_samples", "?")
    lines = [f"sweep {view.paths.name}: {state}, phase {view.phase or '-'}; search trials {c['ended']}/{n} ended, "
             f"{c['running']} running, {c['pending']} waiting; {c['confirm']} confirmation runs"]
    started, wall = view.state.get("started_at"), view.state.get("wall_s")
    when = [f"started {_ago(now - float(started))} ago" if started else ""]
    if state == RUNNING:    # a driver at work: which process, and the budget it has left
        budget, left = view.setting("sweep", "time_budget_s"), _budget_left(view, now)
        when.append(f"pid {view.state['pid']} on {view.state.get('host')}" if view.state.get("pid") else "")
        if budget is not None and left is not None:
            when.append(f"time budget {float(budget):.0f}s, ~{_ago(max(left, 0))} left")
    elif wall is not None and state != DRIVER_GONE:
        when.append(f"ran {_ago(float(wall))}")
    if any(when):
        lines.append("; ".join(w for w in when if w))
    if state == DRIVER_GONE:
        lines.append(f"its driver (pid {view.state['pid']}) has ended without closing the sweep; continue with "
                     f"dfsweep run {view.paths.spec} --resume --name {view.paths.name}")
    lines.append(f"best: {_best(view)}")
    return lines


def _running(view: SweepView, now: float) -> List[str]:
    board, epochs = view.board, int(view.setting("train", "epochs", 0) or 0)
    if not len(board) or driver_state(view.state) != RUNNING:
        return []
    left = _budget_left(view, now)
    rows = [r for _, r in board.iterrows() if r["status"] == RUNNING]
    return (["running:"] + [f"  {r['trial_id']}  {r['role']}  {r['note']}  {_eta(r, epochs, left, now)}"
                            for r in rows]) if rows else []


def status_text(view: SweepView, now: Optional[float] = None) -> str:
    """The sweep's state, its running trials with their ETA, and its leaderboard as it stands."""
    now = time.time() if now is None else now
    lines = _header(view, now) + _running(view, now)
    metric = _scoring(view).key
    if len(view.board):
        so_far = " so far" if driver_state(view.state) == RUNNING else ""
        lines += [f"leaderboard ({view.paths.leaderboard}, {metric} at each trial's best epoch{so_far}):",
                  board_table(view.board, metric)]
    else:
        lines.append("leaderboard: none yet (no trial has started)")
    if view.paths.best.is_file():
        lines.append(f"best config: {view.paths.best}")
    return "\n".join(lines)


def _ls_row(sweep_dir: Path, latest: Optional[Path], now: float) -> Dict[str, Any]:
    view = read_view(sweep_dir)
    c = _counts(view.board)
    running = f", {c['running']} running" if c["running"] else ""
    updated = max(p.stat().st_mtime for p in (view.paths.spec, view.paths.state, view.paths.leaderboard)
                  if p.is_file())
    return {"name": view.paths.name + (" (latest)" if sweep_dir == latest else ""), "state": driver_state(view.state),
            "phase": view.phase or "-",
            "trials": f"{c['ended']}/{view.setting('sweep', 'num_samples', '?')}{running}",
            "confirm": c["confirm"], "best": _best(view), "age": _ago(now - view.paths.spec.stat().st_mtime),
            "updated": f"{_ago(now - updated)} ago", "_created": view.paths.spec.stat().st_mtime}


def list_text(root: Path = Path("sweeps"), now: Optional[float] = None) -> str:
    """One row per sweep under `root`, newest first: state, phase, search trials ended of sweep.num_samples,
    confirmation runs, best score, age and last update."""
    now = time.time() if now is None else now
    if not root.is_dir():
        raise DfsweepError(f"{root}: no sweeps folder (run `dfsweep ls` where `dfsweep run` ran)")
    latest = (root / "latest").resolve() if (root / "latest").exists() else None
    dirs = [d.resolve() for d in sorted(root.iterdir())
            if d.is_dir() and not d.is_symlink() and (d / "sweep.yaml").is_file()]
    if not dirs:
        return f"no sweeps in {root}"
    rows = sorted((_ls_row(d, latest, now) for d in dirs), key=lambda r: -r["_created"])
    return pd.DataFrame(rows).drop(columns="_created").to_string(index=False)


def show_status(sweep: Optional[str], root: Path = Path("sweeps"), plots: bool = False) -> str:
    """`dfsweep status`: the text for the sweep named or at a path (default sweeps/latest); `plots`: the
    search's analysis PNGs written to <sweep>/analysis/ first."""
    view = read_view(resolve_sweep_dir(sweep, root))
    lines = []
    if plots:
        from .analysis import write_analysis
        study = view.setting("sweep", "name") or view.paths.name    # the Optuna study is named after the sweep
        lines = write_analysis(view.paths.optuna_db, study, _scoring(view), view.paths.analysis).lines
    return "\n".join([status_text(view)] + lines)
