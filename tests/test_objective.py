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
