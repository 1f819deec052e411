"""The objective: a trial's best epoch so far, and the leaderboard's order."""
import math

from dfsweep.objective import best_epoch, objective_of, rank_key


def _h(*values):
    return [{"epoch": i + 1, "auc": v} for i, v in enumerate(values)]


def test_objective_is_the_best_epoch_so_far_not_the_last():
    hist = _h(0.6, 0.8, 0.7, 0.5)
    assert objective_of(hist, "auc") == {"objective": 0.8, "objective_epoch": 2}
    assert objective_of(hist[:1], "auc") == {"objective": 0.6, "objective_epoch": 1}
    assert objective_of(hist, "auc", mode="min") == {"objective": 0.5, "objective_epoch": 4}


def test_ties_keep_the_first_epoch_and_nan_never_wins():
    assert best_epoch(_h(0.7, 0.7), "auc")["epoch"] == 1
    assert best_epoch(_h(math.nan, 0.2, math.nan), "auc")["epoch"] == 2
    out = objective_of(_h(math.nan), "auc")
    assert math.isnan(out["objective"]) and out["objective_epoch"] == 0
    assert best_epoch([{"epoch": 1}], "auc") is None


def test_rank_key_orders_by_objective_then_auc_then_validation_loss():
    rows = {"a": (0.9, 0.8, 0.5), "b": (0.9, 0.85, 0.6), "c": (0.9, 0.85, 0.4), "d": (math.nan, 0.99, 0.1),
            "e": (0.95, 0.5, 0.9)}
    assert sorted(rows, key=lambda k: rank_key(*rows[k])) == ["e", "c", "b", "a", "d"]
    assert sorted(rows, key=lambda k: rank_key(*rows[k], mode="min"))[0] == "c"


def _sweep(**kw):
    from dfsweep.config import SweepConfig
    return SweepConfig(**kw)


def test_scoring_of_one_metric_and_of_several_objectives():
    from dfsweep.config import FinalizeConfig
    from dfsweep.objective import Scoring
    one = Scoring.of(_sweep(metric="auc"))
    assert not one.multi and one.key == "auc" and one.scheduler_metric == "objective"
    multi = Scoring.of(_sweep(objectives=["auc", "auc@x"]))
    assert multi.multi and multi.key == "min(auc,auc@x)"          # default pick: the worst case
    assert multi.searcher_metric() == ["objective_0", "objective_1"] and multi.scheduler_metric == "objective_0"
    picked = Scoring.of(_sweep(objectives=["auc", "auc@x"]), FinalizeConfig(pick="auc@x"))
    assert picked.key == "auc@x" and picked.val_sets() == {"x"}
    spec = Scoring.of_spec({"sweep": {"objectives": ["auc", "auc@x"]}, "finalize": {"pick": {"mean": ["auc", "auc@x"]}}})
    assert spec.key == "mean(auc,auc@x)"


def test_a_multi_objective_report_gives_each_objective_at_the_epoch_the_pick_rule_chose():
    from dfsweep.objective import Scoring
    scoring = Scoring.of(_sweep(objectives=["auc", "auc@x"]))
    hist = [{"epoch": 1, "auc": 0.9, "auc@x": 0.4}, {"epoch": 2, "auc": 0.7, "auc@x": 0.6},
            {"epoch": 3, "auc": 0.95, "auc@x": 0.5}]
    for h in hist:
        scoring.derive(h)
    assert [h["min(auc,auc@x)"] for h in hist] == [0.4, 0.6, 0.5]
    # epoch 2 has the best worst case, so both objectives are read there (not each one's own best epoch)
    assert scoring.report(hist) == {"objective": 0.6, "objective_epoch": 2, "objective_0": 0.7, "objective_1": 0.6}


def test_pareto_front_marks_rows_no_other_row_beats_in_every_objective():
    from dfsweep.objective import pareto_front
    rows = [(0.9, 0.5), (0.7, 0.6), (0.6, 0.55), (0.9, 0.5), (0.95, float("nan")), (0.5, 0.7)]
    assert pareto_front(rows) == [True, True, False, True, False, True]   # equal rows both stay on it
    assert pareto_front([(0.2, 0.3), (0.1, 0.4)], mode="min") == [True, True]
    assert pareto_front([(0.2, 0.3), (0.1, 0.2)], mode="min") == [False, True]
