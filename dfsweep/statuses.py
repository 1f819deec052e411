"""Why a trial ended, in the words the leaderboard, MLflow and the progress lines share.

FINISHED         it trained every epoch it was given
STOPPED_BY_ASHA  the scheduler stopped it at a rung, before its last epoch
ENDED_BY_BUDGET  the search's time budget (`sweep.time_budget_s`) ended it: at its next report, or before it
                 started (then no epoch finished)
ERROR            it raised (the reason is in the leaderboard's `error` column and MLflow's `error` tag)
TRIAL_RETRIED    it failed (a lost node, a killed worker), was restarted from its last checkpoint
                 (`sweep.max_failures`, or --resume of an errored trial) and then ended as one of the first
                 three, which its note names
INTERRUPTED      the sweep was stopped (Ctrl-C, kill) before it ended: `--resume` continues it

The reasons travel in each trial's last result: the budget marks the result it stops a trial on
(`ENDED_BY`), Tune sets `done` on a result a scheduler stops it on, and `StatusCallback` adds `RETRIES`
(dfsweep/status_callback.py: this module stays free of Ray, so `dfsweep status` reads these words without it).

While the sweep runs, the live leaderboard (dfsweep/live_board.py) also has:
RUNNING          training now; its note says how far it got ("epoch 2 of 4 done")
PENDING          created by the search, not started yet
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["FINISHED", "STOPPED_BY_ASHA", "ENDED_BY_BUDGET", "ERROR", "TRIAL_RETRIED", "INTERRUPTED",
           "ENDED_BY", "BUDGET", "RETRIES", "NO_EPOCH", "Ending", "ending", "trial_ending", "in_words",
           "RUNNING", "PENDING"]

FINISHED = "FINISHED"
STOPPED_BY_ASHA = "STOPPED_BY_ASHA"
ENDED_BY_BUDGET = "ENDED_BY_BUDGET"
ERROR = "ERROR"
TRIAL_RETRIED = "TRIAL_RETRIED"
INTERRUPTED = "INTERRUPTED"
RUNNING = "RUNNING"
PENDING = "PENDING"

ENDED_BY = "ended_by"        # result key: what ended the trial, when it was not its own last epoch
BUDGET = "budget"
RETRIES = "retries"          # result key: how often Tune restarted the trial after a failure
NO_EPOCH = "no epoch finished"


@dataclass(frozen=True)
class Ending:
    status: str
    note: str = ""           # when it ended, short of its last epoch: "after epoch 2 of 4", "no epoch finished"


def _when(epochs_run: int, epochs: int) -> str:
    return f"after epoch {epochs_run} of {epochs}" if epochs_run else NO_EPOCH


def _base(last: Mapping[str, Any], epochs_run: int, epochs: int) -> Ending:
    """How a trial that did not raise ended, before counting its restarts."""
    if epochs_run >= epochs:
        return Ending(FINISHED)
    if last.get(ENDED_BY) == BUDGET:
        return Ending(ENDED_BY_BUDGET, _when(epochs_run, epochs))
    if last.get("done"):     # Tune marks the result a scheduler stops a trial on
        return Ending(STOPPED_BY_ASHA, _when(epochs_run, epochs))
    return Ending(INTERRUPTED, f"{_when(epochs_run, epochs)}; --resume continues it")


_WORDS = {FINISHED: "finished", STOPPED_BY_ASHA: "stopped by ASHA", ENDED_BY_BUDGET: "ended by the time budget",
          ERROR: "failed", INTERRUPTED: "interrupted"}


def in_words(end: Ending) -> str:
    """"stopped by ASHA after epoch 2 of 4", "ended by the time budget; no epoch finished", ..."""
    if end.status == TRIAL_RETRIED:
        return end.note
    return _WORDS[end.status] + {"": "", NO_EPOCH: f"; {NO_EPOCH}"}.get(end.note, f" {end.note}")


def ending(last: Mapping[str, Any], epochs_run: int, epochs: int, error: str = "", retries: int = 0) -> Ending:
    """The status of a trial from its last result, the epochs it finished of the `epochs` it was given, the
    one-line error it raised (if any) and the number of times Tune restarted it after a failure."""
    if error:
        return Ending(ERROR, _when(epochs_run, epochs) if epochs_run < epochs else "")
    base = _base(last, epochs_run, epochs)
    if not retries or base.status == INTERRUPTED:
        return base
    times = "once" if retries == 1 else f"{retries} times"
    return Ending(TRIAL_RETRIED, f"restarted {times} after a failure, then {in_words(base)}")


def trial_ending(trial, epochs: int, error: str = "") -> Ending:
    """`ending` of a Tune Trial the driver holds (the callbacks' view): its last result and restarts."""
    last = trial.last_result if trial.has_reported_at_least_once else {}
    return ending(last, int(last.get("epoch") or 0), epochs, error, int(trial.num_failures or 0))
