"""leaderboard.csv while the sweep runs: a Tune callback in the driver rewrites it after trial events.

The rows are the final leaderboard's (dfsweep.leaderboard, from what the driver has seen of each trial), with
trials still going marked RUNNING ("epoch 2 of 4 done") or PENDING, and two more columns for `dfsweep status`:
`time_s` (the trial's training time so far) and `reported_at` (when its last result came, Unix seconds).
Each write replaces the file whole (a reader never sees half a file); the sweep's end writes the final one.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import pandas as pd
from ray import tune

from .checkpoint import atomic_write_bytes
from .leaderboard import TrialRecord, leaderboard
from .progress import last_error_line
from .statuses import PENDING, RUNNING

__all__ = ["LiveBoard", "live_board"]

log = logging.getLogger("dfsweep.live_board")

_GOING = {"RUNNING": RUNNING, "PENDING": PENDING, "PAUSED": PENDING}   # Tune's trial states still going


def _numbers(result: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _record(trial, seen: Dict[int, Dict[str, Any]]) -> TrialRecord:
    """What the leaderboard needs of a trial the driver holds. A trial restored by --resume has no results
    seen by this driver: its last result stands in for its history until the final leaderboard."""
    last = trial.last_result if trial.has_reported_at_least_once else {}
    history = [seen[k] for k in sorted(seen)] or ([_numbers(last)] if "epoch" in last else [])
    error = last_error_line(trial.error_file) if trial.status == "ERROR" else ""
    return TrialRecord(str(trial.trial_id), dict(trial.config), history, None, error, dict(last))


def _progress(epochs_run: int, epochs: int) -> str:
    return f"epoch {epochs_run} of {epochs} done" if epochs_run else "no epoch done yet"


def live_board(trials, seen: Dict[str, Dict[int, Dict[str, Any]]], metric: str, mode: str,
               epochs: int, objectives: Sequence[str] = ()) -> pd.DataFrame:
    """The leaderboard of `trials` (Tune's Trial objects) as it stands, trials still going marked so."""
    board = leaderboard([_record(t, seen.get(t.trial_id, {})) for t in trials], metric, mode, epochs, objectives)
    if not len(board):
        return board
    by_id = {str(t.trial_id): t for t in trials}
    for i, tid in enumerate(board["trial_id"]):
        trial = by_id[tid]
        last = trial.last_result if trial.has_reported_at_least_once else {}
        board.loc[i, "time_s"] = float(last.get("time_total_s") or 0.0)
        board.loc[i, "reported_at"] = float(last.get("timestamp") or 0.0)
        going = _GOING.get(trial.status)
        if going == RUNNING:
            board.loc[i, ["status", "note"]] = [RUNNING, _progress(int(board.loc[i, "epochs_run"]), epochs)]
        elif going == PENDING:
            board.loc[i, ["status", "note"]] = [PENDING, "waiting to start"]
    return board


class LiveBoard(tune.Callback):
    """Rewrites `path` at most every `every_s` seconds on trial starts and results (a result held back is
    written on a later step of Tune's loop), and at once when a trial completes or fails. A write that fails
    is logged once and the sweep goes on: an exception in a callback would end the whole fit()."""

    def __init__(self, path: Path, metric: str, mode: str, epochs: int, every_s: float = 3.0,
                 clock: Callable[[], float] = time.monotonic, objectives: Sequence[str] = ()):
        self.path, self.metric, self.mode, self.epochs = Path(path), metric, mode, epochs
        self.objectives = list(objectives)
        self.every_s, self.clock = every_s, clock
        self.seen: Dict[str, Dict[int, Dict[str, Any]]] = {}   # trial id -> epoch -> its reported numbers
        self.last_write = float("-inf")
        self.dirty = self.warned = False

    def on_trial_start(self, iteration, trials, trial, **info):
        self._changed(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" in result:
            self.seen.setdefault(trial.trial_id, {})[int(result["epoch"])] = _numbers(result)
        self._changed(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write(trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._write(trials)

    def on_step_end(self, iteration, trials, **info):
        if self.dirty and self.clock() - self.last_write >= self.every_s:
            self._write(trials)

    def _changed(self, trials: List[Any]) -> None:
        self.dirty = True
        self.on_step_end(0, trials)

    def _write(self, trials: List[Any]) -> None:
        self.last_write, self.dirty = self.clock(), False
        try:
            data = live_board(trials, self.seen, self.metric, self.mode, self.epochs, self.objectives).to_csv(index=False).encode()
            atomic_write_bytes(self.path, lambda f: f.write(data))
        except Exception as e:  # noqa: BLE001 -- a live view must never end the sweep
            if not self.warned:
                log.warning("live leaderboard: could not write %s: %s (the sweep goes on)", self.path, e)
                self.warned = True
