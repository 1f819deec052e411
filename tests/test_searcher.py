"""ResumableOptunaSearch: a trial Optuna's storage already closed (a driver killed between the two writes)
is skipped instead of ending the sweep with UpdateFinishedTrialError."""
import optuna
import pytest

from dfsweep.config import config_from_dict
from dfsweep.objective import OBJECTIVE
from dfsweep.samplers import build_sampler
from dfsweep.searcher import ResumableOptunaSearch
from dfsweep.space import parse_space


def _search(tmp_path, cls=ResumableOptunaSearch):
    space = parse_space(config_from_dict({"search": {"train.lr": {"float": [1e-4, 1e-2], "log": True}}}))
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    search = cls(space.define_by_run(), metric=OBJECTIVE, mode="max", sampler=build_sampler("tpe", 0),
                 study_name="s", storage=storage)
    return search, optuna.load_study(study_name="s", storage=storage)


@pytest.mark.parametrize("closed_as", [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL])
def test_results_for_a_trial_the_storage_closed_are_skipped(tmp_path, closed_as):
    search, study = _search(tmp_path)
    search.suggest("t1")
    number = study.get_trials(deepcopy=False)[0].number
    study.tell(number, 0.5 if closed_as == optuna.trial.TrialState.COMPLETE else None, state=closed_as)
    search.on_trial_result("t1", {OBJECTIVE: 0.7, "training_iteration": 2})
    search.on_trial_complete("t1", {OBJECTIVE: 0.7})
    assert [t.state for t in study.get_trials()] == [closed_as]     # what the storage said stands


def test_stock_optuna_search_ends_the_sweep_there(tmp_path):
    from ray.tune.search.optuna import OptunaSearch
    search, study = _search(tmp_path, OptunaSearch)
    search.suggest("t1")
    study.tell(study.get_trials(deepcopy=False)[0].number, 0.5)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        search.on_trial_result("t1", {OBJECTIVE: 0.7, "training_iteration": 2})


def test_an_open_trial_is_told_as_usual(tmp_path):
    search, study = _search(tmp_path)
    search.suggest("t1")
    search.on_trial_complete("t1", {OBJECTIVE: 0.7})
    assert [t.value for t in study.get_trials()] == [0.7]
