"""When trials stop: the search's time budget marks the result it stops a trial on, and the schedulers find
the budget through Tune's own wrappers of the search algorithm."""
import time

import optuna

from dfsweep.config import ConfirmConfig, config_from_dict
from dfsweep.confirm import SearchThenConfirm
from dfsweep.objective import OBJECTIVE
from dfsweep.roles import CONFIRM, ROLE
from dfsweep.samplers import build_sampler
from dfsweep.scheduling import (BudgetClock, SearchBudgetStopper, _EndsUnstartedOnBudget, _search_budget_over,
                                build_scheduler)
from dfsweep.searcher import ResumableOptunaSearch
from dfsweep.space import parse_space
from dfsweep.statuses import BUDGET, ENDED_BY
from ray.tune.search import ConcurrencyLimiter, SearchGenerator


def _spent(budget_s=0.01) -> BudgetClock:
    clock = BudgetClock(budget_s)
    clock.over()
    time.sleep(budget_s * 2)
    return clock


def test_the_budget_stops_search_trials_at_their_next_report_and_marks_that_result():
    stopper = SearchBudgetStopper(0.01, _spent())
    search = {"epoch": 3, "config": {"train.lr": 1e-3}}
    assert stopper("a", search) is True and search[ENDED_BY] == BUDGET
    confirm = {"epoch": 3, "config": {"train.lr": 1e-3, ROLE: CONFIRM}}
    assert stopper("b", confirm) is False and ENDED_BY not in confirm       # confirmation runs go on
    ran_its_course = {"epoch": 12, "done": True, "config": {}}
    assert stopper("c", ran_its_course) is False and ENDED_BY not in ran_its_course
    fresh = {"epoch": 1, "config": {}}
    assert SearchBudgetStopper(3600)("d", fresh) is False and ENDED_BY not in fresh
    assert SearchBudgetStopper(None)("e", fresh) is False


def test_the_schedulers_ask_the_search_algorithm_through_tunes_wrappers(tmp_path):
    space = parse_space(config_from_dict({"search": {"train.lr": {"float": [1e-4, 1e-2], "log": True}}}))

    def searcher(clock):
        optuna_search = ResumableOptunaSearch(
            space.define_by_run(), metric=OBJECTIVE, mode="max", sampler=build_sampler("tpe", 0), study_name="s",
            storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}"))
        return SearchThenConfirm(optuna_search, num_samples=4, budget_s=None, confirm=ConfirmConfig(top_k=0),
                                 recipe=False, metric=OBJECTIVE, mode="max", clock=clock)

    # what Tune builds around a searcher with max_concurrent_trials set, and without
    assert _search_budget_over(SearchGenerator(ConcurrencyLimiter(searcher(_spent()), 2))) is True
    assert _search_budget_over(SearchGenerator(searcher(_spent()))) is True
    assert _search_budget_over(SearchGenerator(searcher(BudgetClock(None)))) is False
    # both schedulers a sweep can use end trials the budget caught before they started
    for name in ("asha", "fifo"):
        cfg = config_from_dict({"sweep": {"scheduler": {"name": name}}})
        assert isinstance(build_scheduler(cfg), _EndsUnstartedOnBudget)
