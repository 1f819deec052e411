"""The search algorithm of a sweep: Optuna's search (recipe first), then the confirmation runs; and the
objective that ASHA and Optuna act on, through a real Tuner."""
import math
import time

import optuna
import pytest

from dfsweep.config import ConfirmConfig, config_from_dict
from dfsweep.confirm import SearchThenConfirm, max_confirmation_runs
from dfsweep.objective import OBJECTIVE, objective_of
from dfsweep.roles import CONFIRM, FOLD, OF, RECIPE, ROLE, SEED_OFFSET, recipe_params
from dfsweep.samplers import build_sampler
from dfsweep.searcher import ResumableOptunaSearch
from dfsweep.space import parse_space
from ray.tune.search import Searcher


def _space():
    return parse_space(config_from_dict({
        "train": {"lr": 1e-3},
        "search": {"train.lr": {"float": [1e-4, 1e-2], "log": True}, "augment.preset": {"choice": ["seed", "none"]}},
    }))


def _searcher(tmp_path, *, num_samples=4, budget_s=None, confirm=ConfirmConfig(top_k=2, seeds=2), recipe=True):
    space = _space()
    optuna_search = ResumableOptunaSearch(
        space.define_by_run(), metric=OBJECTIVE, mode="max", sampler=build_sampler("tpe", 0), study_name="t",
        storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}"),
        points_to_evaluate=[recipe_params(space)] if recipe else None)
    return space, SearchThenConfirm(optuna_search, num_samples=num_samples, budget_s=budget_s, confirm=confirm,
                                    recipe=recipe, metric=OBJECTIVE, mode="max",
                                    phase_file=str(tmp_path / "phase"))


def _finish(s, trial_id, values):
    hist = []
    for epoch, v in enumerate(values, 1):
        hist.append({"epoch": epoch, "auc": v, "val_loss": 1 - v})
        result = {"epoch": epoch, "training_iteration": epoch, "auc": v, "val_loss": 1 - v, **objective_of(hist, "auc")}
        s.on_trial_result(trial_id, result)
    s.on_trial_complete(trial_id, result)


def test_recipe_first_then_the_top_k_and_the_recipe_confirmed_with_new_seeds(tmp_path):
    space, s = _searcher(tmp_path)
    first = s.suggest("t0")
    assert first[ROLE] == RECIPE and {k: first[k] for k in ("train.lr", "augment.preset")} == {
        "train.lr": 1e-3, "augment.preset": "seed"}
    configs = {"t0": first, **{f"t{i}": s.suggest(f"t{i}") for i in (1, 2, 3)}}
    assert all(ROLE not in configs[f"t{i}"] for i in (1, 2, 3))
    assert (tmp_path / "phase").read_text() == "search"
    # the search's budget of trials is spent: nothing until every search trial has ended
    assert s.suggest("t4") is None
    _finish(s, "t0", [0.6, 0.7])
    _finish(s, "t1", [0.9, 0.5])          # best epoch 1: ranked by 0.9, not by its last 0.5
    _finish(s, "t2", [0.7, 0.8])
    assert s.suggest("t5") is None
    s.on_trial_complete("t3", None, error=True)
    assert s.ranked() == ["t1", "t2", "t0"]
    queue = [s.suggest(f"c{i}") for i in range(6)]
    assert (tmp_path / "phase").read_text() == "done"
    assert [(q[OF], q[SEED_OFFSET], q[FOLD]) for q in queue] == [
        ("t1", 1, 0), ("t2", 1, 0), ("t0", 1, 0), ("t1", 2, 0), ("t2", 2, 0), ("t0", 2, 0)]
    assert all(q[ROLE] == CONFIRM and q["train.lr"] == configs[q[OF]]["train.lr"] for q in queue)
    assert s.suggest("c6") == Searcher.FINISHED
    assert len(queue) == max_confirmation_runs(ConfirmConfig(top_k=2, seeds=2), recipe=True)
    # Optuna was told each search trial's best epoch, the errored one as failed, and nothing of confirmation
    trials = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials
    assert [t.value for t in trials] == [0.7, 0.9, 0.8, None]
    assert trials[3].state == optuna.trial.TrialState.FAIL


def test_confirmation_results_never_reach_optuna_and_top_k_0_confirms_nothing(tmp_path):
    _, s = _searcher(tmp_path, num_samples=1, confirm=ConfirmConfig(top_k=0))
    s.suggest("a")
    # Tune stops asking once num_samples trials exist: the phase must already say the search is done
    assert (tmp_path / "phase").read_text() == "done"
    _finish(s, "a", [0.5])
    assert s.suggest("b") == Searcher.FINISHED
    assert max_confirmation_runs(ConfirmConfig(top_k=0), recipe=True) == 0


def test_the_search_budget_ends_the_search_early_and_survives_a_state_round_trip(tmp_path):
    _, s = _searcher(tmp_path, num_samples=50, budget_s=0.3, confirm=ConfirmConfig(top_k=1, seeds=1, folds=2))
    s.suggest("a")
    state = s.get_state()
    _finish(s, "a", [0.5, 0.6])
    time.sleep(0.4)
    c1, c2 = s.suggest("b"), s.suggest("c")
    assert (c1[OF], c1[FOLD], c2[FOLD]) == ("a", 0, 1)      # the recipe, on two splits, then done
    assert s.suggest("d") == Searcher.FINISHED
    # the saved state is the searcher's as it was: a resumed sweep goes on from there
    (tmp_path / "fresh").mkdir()
    _, restored = _searcher(tmp_path / "fresh", num_samples=50)
    restored.set_state(state)
    assert restored.search.keys() == {"a"} and restored.live == {"a"} and restored.queue is None


def _define_curve(trial):
    trial.suggest_categorical("curve", ["rise", "peak"])


@pytest.mark.slow
def test_a_trial_asha_stops_after_its_best_epoch_is_scored_by_optuna_at_that_best(tmp_path):
    """A real Tuner, the sweep's own searcher and scheduler: trial "peak" reaches 0.65 at epoch 1, drops to
    0.3 at epoch 2 and is stopped there by ASHA (the others are at 0.7). Optuna must be told 0.65."""
    import ray
    from ray import tune

    from dfsweep.scheduling import build_scheduler

    curves = {"rise": [0.6, 0.7, 0.8, 0.9], "peak": [0.65, 0.3, 0.2, 0.1]}

    def trainable(config):
        hist = []
        for epoch, v in enumerate(curves[config["curve"]], 1):
            hist.append({"epoch": epoch, "auc": v})
            tune.report({"epoch": epoch, "auc": v, **objective_of(hist, "auc")})

    cfg = config_from_dict({"train": {"epochs": 4},
                            "sweep": {"scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2}}})
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna_search = ResumableOptunaSearch(
        _define_curve, metric=OBJECTIVE, mode="max", sampler=build_sampler("tpe", 0), study_name="asha",
        storage=optuna.storages.RDBStorage(storage),
        points_to_evaluate=[{"curve": "rise"}, {"curve": "rise"}, {"curve": "peak"}])
    search = SearchThenConfirm(optuna_search, num_samples=3, budget_s=None, confirm=ConfirmConfig(top_k=0),
                               recipe=False, metric=OBJECTIVE, mode="max")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        grid = tune.Tuner(trainable, tune_config=tune.TuneConfig(
            search_alg=search, scheduler=build_scheduler(cfg), num_samples=3, max_concurrent_trials=1),
            run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), name="asha", verbose=0)).fit()
    finally:
        ray.shutdown()
    by_curve = {r.config["curve"]: r for r in grid}
    peak = by_curve["peak"].metrics
    assert peak["training_iteration"] == 2 and peak["auc"] == 0.3          # stopped by ASHA at epoch 2
    trials = optuna.load_study(study_name="asha", storage=storage).trials
    assert sorted(t.value for t in trials) == [0.65, 0.9, 0.9]
    assert next(t for t in trials if t.params["curve"] == "peak").value == 0.65 != peak["auc"]
    assert not any(math.isnan(t.value) for t in trials)


def test_a_multi_objective_search_tells_optuna_both_objectives_and_confirms_the_front_first(tmp_path):
    from dfsweep.config import SweepConfig
    from dfsweep.objective import Scoring
    scoring = Scoring.of(SweepConfig(objectives=["auc", "auc@x"]))
    space = _space()
    optuna_search = ResumableOptunaSearch(
        space.define_by_run(), metric=scoring.searcher_metric(), mode=["max", "max"],
        sampler=build_sampler("tpe", 0), study_name="mo", storage=optuna.storages.RDBStorage(
            f"sqlite:///{tmp_path / 'optuna.db'}"))
    s = SearchThenConfirm(optuna_search, num_samples=4, budget_s=None, confirm=ConfirmConfig(top_k=2, seeds=1),
                          recipe=False, metric=OBJECTIVE, mode="max", objectives=2)
    for t in ("t0", "t1", "t2", "t3"):
        s.suggest(t)
    # (auc, auc@x) per epoch; the worst case picks each trial's epoch
    curves = {"t0": [(0.9, 0.5)], "t1": [(0.6, 0.6), (0.7, 0.65)], "t2": [(0.65, 0.55)], "t3": [(0.95, 0.45)]}
    for t, curve in curves.items():
        hist = []
        for epoch, (auc, aucx) in enumerate(curve, 1):
            hist.append({"epoch": epoch, "auc": auc, "auc@x": aucx})
            scoring.derive(hist[-1])
            result = {**hist[-1], "training_iteration": epoch, **scoring.report(hist)}
            s.on_trial_result(t, result)
        s.on_trial_complete(t, result)
    # t2 (0.65, 0.55) is beaten by t1 in both; t1 has the best worst case, so it leads the front
    assert s.ranked() == ["t1", "t0", "t3", "t2"]
    assert [q[OF] for q in (s.suggest("c0"), s.suggest("c1"))] == ["t1", "t0"]
    study = optuna.load_study(study_name="mo", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [t.values for t in study.trials] == [[0.9, 0.5], [0.7, 0.65], [0.65, 0.55], [0.95, 0.45]]
    assert {t.number for t in study.best_trials} == {0, 1, 3}
