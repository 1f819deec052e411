"""The Tune callback that carries a trial's restart count into its results (dfsweep.statuses' TRIAL_RETRIED)."""
from __future__ import annotations

from ray import tune

from .statuses import RETRIES

__all__ = ["StatusCallback"]


class StatusCallback(tune.Callback):
    """Adds `RETRIES` to the results of a trial Tune restarted: the trial's last result (the leaderboard's
    source) then says so. Tune lets callbacks edit a result in place before it stores it."""

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if trial.num_failures:
            result[RETRIES] = int(trial.num_failures)
