"""When trials stop: ASHA (or FIFO) for the search's trials, the search's time budget, and confirmation runs
that neither may cut short (they are trained to the trials' full length, the fidelity they confirm)."""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

from ray.tune import Stopper
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from .config import Config
from .objective import OBJECTIVE
from .roles import CONFIRM, role_of

__all__ = ["BudgetClock", "SearchBudgetStopper", "ConfirmAwareASHA", "build_scheduler"]


class BudgetClock:
    """Seconds used of a budget, counted from the first look and carried across a resume (like Tune's own
    TimeoutStopper: the time between the last look before a crash and the restart is not counted)."""

    def __init__(self, budget_s: Optional[float]):
        self.budget_s = budget_s
        self.used = 0.0
        self._last: Optional[float] = None

    def over(self) -> bool:
        if self.budget_s is None:
            return False
        now = time.time()
        if self._last is not None:
            self.used += now - self._last
        self._last = now
        return self.used >= self.budget_s

    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "_last": None}


class SearchBudgetStopper(Stopper):
    """`sweep.time_budget_s` ends the search: a search trial still running when it is over stops at its
    next report. Confirmation runs are not stopped (they come after the search)."""

    def __init__(self, budget_s: Optional[float]):
        self.clock = BudgetClock(budget_s)

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        return role_of(result.get("config") or {}) != CONFIRM and self.clock.over()

    def stop_all(self) -> bool:
        return False


class ConfirmAwareASHA(ASHAScheduler):
    """ASHA over the search's trials; confirmation runs are not entered in its brackets and never stopped."""

    @staticmethod
    def _confirming(trial) -> bool:
        return role_of(trial.config) == CONFIRM

    def on_trial_add(self, tune_controller, trial) -> None:
        if not self._confirming(trial):
            super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: Dict) -> str:
        if self._confirming(trial):
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: Dict) -> None:
        if not self._confirming(trial):
            super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        if not self._confirming(trial):
            super().on_trial_remove(tune_controller, trial)


def build_scheduler(cfg: Config) -> TrialScheduler:
    """`sweep.scheduler`: ASHA on the objective (the trial's best epoch so far), or FIFO."""
    s = cfg.sweep
    if s.scheduler.name == "fifo":
        return FIFOScheduler()
    return ConfirmAwareASHA(time_attr="training_iteration", metric=OBJECTIVE, mode=s.mode, max_t=cfg.train.epochs,
                            grace_period=min(s.scheduler.grace_period, cfg.train.epochs),
                            reduction_factor=s.scheduler.reduction_factor)
