"""OptunaSearch that survives a driver crash: results for trials that Optuna's storage already closed
are ignored instead of aborting the sweep.

After a kill -9 Tune restores its last experiment snapshot, which can be a second older than the Optuna
study (RDB storage, written at once). A trial that finished in that second is RUNNING for Tune and
COMPLETE for Optuna; a trial that errored and is resumed is FAIL for Optuna. Stock OptunaSearch then
raises `UpdateFinishedTrialError` inside Tune's loop, which ends the whole `fit()`.
"""
from __future__ import annotations

from typing import Dict, Optional

from ray.tune.search.optuna import OptunaSearch

__all__ = ["ResumableOptunaSearch"]


def _optuna_side(search: OptunaSearch):
    """(Tune trial id -> Optuna trial, the study) that OptunaSearch keeps in private attributes (checked against
    Ray 2.60): no public API maps a Tune trial to its Optuna trial."""
    return search._ot_trials, search._ot_study


class ResumableOptunaSearch(OptunaSearch):
    def _closed_in_storage(self, trial_id: str) -> bool:
        trials, study = _optuna_side(self)
        ot_trial = trials.get(trial_id)
        if ot_trial is None or study is None:
            return False
        # the storage's state, read through the public study API (the Trial object caches none)
        stored = [t for t in study.get_trials(deepcopy=False) if t.number == ot_trial.number]
        return bool(stored) and stored[0].state.is_finished()

    def on_trial_result(self, trial_id: str, result: Dict) -> None:
        if not self._closed_in_storage(trial_id):
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: Optional[Dict] = None, error: bool = False) -> None:
        if self._closed_in_storage(trial_id):
            _optuna_side(self)[0].pop(trial_id, None)
            return
        super().on_trial_complete(trial_id, result, error)
