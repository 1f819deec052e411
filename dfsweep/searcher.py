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


class ResumableOptunaSearch(OptunaSearch):
    def _closed_in_storage(self, trial_id: str) -> bool:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or self._ot_study is None:
            return False
        frozen = self._ot_study._storage.get_trial(ot_trial._trial_id)
        return frozen.state.is_finished()

    def on_trial_result(self, trial_id: str, result: Dict) -> None:
        if not self._closed_in_storage(trial_id):
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: Optional[Dict] = None, error: bool = False) -> None:
        if self._closed_in_storage(trial_id):
            self._ot_trials.pop(trial_id, None)
            return
        super().on_trial_complete(trial_id, result, error)
