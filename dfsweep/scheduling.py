"""When trials stop: ASHA (or FIFO) for the search's trials, the search's time budget, and confirmation runs
that neither may cut short (they are trained to the trials' full length, the fidelity they confirm)."""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

from ray.tune import Stopper
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from .config import Config
from .objective import Scoring
from .roles import CONFIRM, role_of
from .statuses import BUDGET, ENDED_BY, RETRIES

__all__ = ["BudgetClock", "SearchBudgetStopper", "ConfirmAwareASHA", "SearchFIFO", "build_scheduler"]


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
    next report, which is marked as ended by the budget. Confirmation runs are not stopped (they come after
    the search). `clock`: the search algorithm's, so both count the same budget from the same start."""

    def __init__(self, budget_s: Optional[float], clock: Optional[BudgetClock] = None):
        self.clock = clock if clock is not None else BudgetClock(budget_s)

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        # a result already `done` is the end of a trial that ran its course: not the budget's doing
        if result.get("done") or role_of(result.get("config") or {}) == CONFIRM or not self.clock.over():
            return False
        _mark_ended_by_budget(result)
        return True

    def stop_all(self) -> bool:
        return False


def _mark_ended_by_budget(result: Dict[str, Any]) -> None:
    """Tune passes a stopper the very result dict it then hands the callbacks and stores as the trial's last
    result (TuneController._process_trial_result, checked with Ray 2.60), so the mark reaches both."""
    result[ENDED_BY] = BUDGET


def _search_budget_over(search_alg) -> bool:
    """Asks the sweep's search algorithm (SearchThenConfirm, which owns the budget and keeps its clock across
    --resume) down Tune's chain of wrappers, each holding the next as `searcher` (SearchGenerator,
    ConcurrencyLimiter: the chain Tune itself walks, checked with Ray 2.60)."""
    while search_alg is not None:
        if hasattr(search_alg, "search_budget_over"):
            return search_alg.search_budget_over()
        search_alg = getattr(search_alg, "searcher", None)
    return False


def _end_unstarted(tune_controller, trial) -> None:
    """End a search trial that never started. Its last result says why (the callbacks and the leaderboard
    read it there) and carries its config (a trial that never reported has none). `update_last_result` is
    public on Trial and `stop_trial` on the controller Tune hands a scheduler (checked with Ray 2.60)."""
    trial.update_last_result({ENDED_BY: BUDGET, "done": True, "trial_id": trial.trial_id, "config": trial.config,
                              **({RETRIES: int(trial.num_failures)} if trial.num_failures else {})})
    tune_controller.stop_trial(trial)


class _EndsUnstartedOnBudget:
    """Once the search's time budget is over, search trials still waiting to start end there, before their
    first epoch, instead of each training an epoch past the budget (Tune keeps one or more trials pending
    while the running ones hold every CPU)."""

    def choose_trial_to_run(self, tune_controller):
        if _search_budget_over(tune_controller.search_alg):
            for trial in list(tune_controller.get_trials()):
                if (trial.status == Trial.PENDING and not trial.has_reported_at_least_once
                        and role_of(trial.config) != CONFIRM):
                    _end_unstarted(tune_controller, trial)
        return super().choose_trial_to_run(tune_controller)


class SearchFIFO(_EndsUnstartedOnBudget, FIFOScheduler):
    """FIFO: every trial runs all its epochs, unless the search's time budget ends it."""


class ConfirmAwareASHA(_EndsUnstartedOnBudget, ASHAScheduler):
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
    """`sweep.scheduler`: ASHA on the objective (the trial's best epoch so far; in a multi-objective sweep the
    first objective at the trial's selected epoch), or FIFO."""
    s = cfg.sweep
    if s.scheduler.name == "fifo":
        return SearchFIFO()
    metric = Scoring.of(s, cfg.finalize).scheduler_metric
    return ConfirmAwareASHA(time_attr="training_iteration", metric=metric, mode=s.mode, max_t=cfg.train.epochs,
                            grace_period=min(s.scheduler.grace_period, cfg.train.epochs),
                            reduction_factor=s.scheduler.reduction_factor)
