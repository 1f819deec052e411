"""A sweep's two phases as one Tune search algorithm: the search, then its confirmation.

Search: the wrapped searcher (Optuna) suggests up to `sweep.num_samples` trials while the search's time
budget lasts; with `sweep.start_from_defaults` its first trial is the recipe row. Confirmation: once every
search trial has ended, the `confirm.top_k` best configurations (by objective) and the recipe row are
suggested again, each `confirm.seeds` times with new training seeds (and on `confirm.folds` splits), as
trials of the same experiment. Tune checkpoints this object with the experiment, so `--resume` continues
either phase where it stopped.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ray.tune.search import Searcher

from .checkpoint import atomic_write_bytes
from .config import ConfirmConfig
from .objective import OBJECTIVE, OBJECTIVE_EPOCH, objective_key, pareto_front, rank_key
from .roles import CONFIRM, FOLD, OF, RECIPE, ROLE, SEED_OFFSET, role_of
from .scheduling import BudgetClock

__all__ = ["SearchThenConfirm", "max_confirmation_runs"]


def max_confirmation_runs(confirm: ConfirmConfig, recipe: bool) -> int:
    """Upper bound on the confirmation trials: top_k configurations plus the recipe, runs_per_config each."""
    if confirm.top_k == 0:
        return 0
    return (confirm.top_k + int(recipe)) * confirm.runs_per_config()


class SearchThenConfirm(Searcher):
    """Wraps `searcher` (Tune's wrapper convention: the attribute is named `searcher`, its state is saved
    beside ours). Only search trials reach the wrapped searcher: confirmation runs would be new Optuna trials
    with parameters it did not suggest."""

    def __init__(self, searcher: Searcher, *, num_samples: int, budget_s: Optional[float], confirm: ConfirmConfig,
                 recipe: bool, metric: str, mode: str, phase_file: Optional[str] = None,
                 clock: Optional[BudgetClock] = None, objectives: int = 0):
        super().__init__(metric=metric, mode=mode)
        self.objectives = objectives                      # > 0: a multi-objective sweep (front members confirm first)
        self.vectors: Dict[str, Tuple[float, ...]] = {}   # trial id -> its objectives at its selected epoch
        self.phase_file, self.phase = phase_file, ""
        self.searcher = searcher
        self.num_samples, self.confirm, self.recipe = num_samples, confirm, recipe
        self.clock = clock if clock is not None else BudgetClock(budget_s)   # shared with the budget's stopper
        self.search: Dict[str, Dict[str, Any]] = {}      # trial id -> its Tune config
        self.live: set = set()                            # search trials not yet ended
        self.best: Dict[str, Tuple[float, float, float]] = {}  # trial id -> (objective, auc, val_loss) at its best epoch
        self.queue: Optional[List[Dict[str, Any]]] = None     # confirmation configs still to suggest

    # -- Tune's Searcher interface ---------------------------------------------------------------------
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return False                                      # Tune's ConcurrencyLimiter wraps us instead

    def suggest(self, trial_id: str):
        if self.queue is None:
            if len(self.search) < self.num_samples and not self.clock.over():
                self._enter("search")
                config = self._suggest_search(trial_id)
                if len(self.search) >= self.num_samples and self.confirm.top_k == 0:
                    self._enter("done")   # nothing to confirm, and Tune's trial count ends the sweep here
                return config
            if self.live:
                return None                               # wait: the ranking needs every search trial's end
            self.queue = self._confirmation_queue()
            self._enter("confirm")
        if not self.queue:
            self._enter("done")
            return Searcher.FINISHED
        config = self.queue.pop(0)
        if not self.queue:
            self._enter("done")       # Tune may not ask again: its trial count can end the search first
        return config

    def search_budget_over(self) -> bool:
        """Whether the search's time budget is spent (the scheduler then ends search trials not yet started)."""
        return self.clock.over()

    def on_trial_result(self, trial_id: str, result: Dict) -> None:
        if trial_id in self.search:
            self._record(trial_id, result)
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: Optional[Dict] = None, error: bool = False) -> None:
        if trial_id not in self.search:
            return
        self.live.discard(trial_id)
        if error:
            self.best.pop(trial_id, None)
        elif result:
            self._record(trial_id, result)    # a trial a scheduler stops: its last result arrives only here
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    # -- state: ours here, the wrapped searcher's through its own save/restore --------------------------
    def get_state(self) -> Dict:
        state = self.__dict__.copy()
        del state["searcher"]
        return copy.deepcopy(state)

    def set_state(self, state: Dict) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)

    def _enter(self, phase: str) -> None:
        """Note the phase in `phase_file` (the sweep reads it to tell a finished sweep from an interrupted one)."""
        if phase != self.phase and self.phase_file:
            data = phase.encode()
            atomic_write_bytes(Path(self.phase_file), lambda f: f.write(data))
        self.phase = phase

    def _record(self, trial_id: str, result: Dict) -> None:
        if result.get(OBJECTIVE_EPOCH) == result.get("epoch"):      # this epoch is the trial's best so far
            nan = float("nan")
            self.best[trial_id] = (result.get(OBJECTIVE, nan), result.get("auc", nan), result.get("val_loss", nan))
            self.vectors[trial_id] = tuple(result.get(objective_key(i), nan) for i in range(self.objectives))

    # -- the two phases --------------------------------------------------------------------------------
    def _suggest_search(self, trial_id: str):
        config = self.searcher.suggest(trial_id)
        if config is None or config == Searcher.FINISHED:
            return config
        if self.recipe and not self.search:
            config = {**config, ROLE: RECIPE}             # the wrapped searcher's first point: the defaults
        self.search[trial_id] = config
        self.live.add(trial_id)
        return config

    def ranked(self) -> List[str]:
        """Search trials that ended without error and with a score, best first (in a multi-objective sweep,
        the Pareto front's members first)."""
        done = [t for t in self.search if t in self.best and t not in self.live]
        on_front = dict(zip(done, pareto_front([self.vectors.get(t, ()) for t in done], self.mode))) \
            if self.objectives else {}
        return sorted(done, key=lambda t: (not on_front.get(t, False), rank_key(*self.best[t], mode=self.mode)))

    def _confirmation_queue(self) -> List[Dict[str, Any]]:
        if self.confirm.top_k == 0:
            return []
        chosen = self.ranked()[: self.confirm.top_k]
        recipe = [t for t in self.search if role_of(self.search[t]) == RECIPE and t in self.best]
        chosen += [t for t in recipe if t not in chosen]
        queue = []
        for fold in range(self.confirm.folds):
            for offset in range(1, self.confirm.seeds + 1):
                for t in chosen:
                    params = {k: v for k, v in self.search[t].items() if k != ROLE}
                    queue.append({**params, ROLE: CONFIRM, OF: t, SEED_OFFSET: offset, FOLD: fold})
        return queue
