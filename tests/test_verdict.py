"""The verdict on the winner: a paired bootstrap against the recipe and the runner-up, said in words."""
import numpy as np

from dfsweep.config import config_from_dict
from dfsweep.data import DecodedSet
from dfsweep.leaderboard import TrialRecord, leaderboard
from dfsweep.roles import CONFIRM, FOLD, OF, RECIPE, ROLE, SEED_OFFSET, trial_config
from dfsweep.space import parse_space
from dfsweep.train import validation_split
from dfsweep.verdict import judge, verdict_lines


def _setup():
    rng = np.random.default_rng(0)
    n = 600
    labels = (rng.random(n) < 1 / 6).astype(np.int64)
    groups = np.array([f"g{i // 2}" for i in range(n)])
    data = DecodedSet(np.zeros((n, 1, 1, 3), np.uint8), labels, groups, [str(i) for i in range(n)])
    space = parse_space(config_from_dict({"train": {"lr": 1e-3}, "search": {"train.lr": {"float": [1e-4, 1e-2]}}}))
    return rng, data, space


def _record(tid, config, signal, rng, data, space, noise=0.3):
    """A trial whose best epoch scored its split's validation rows with `signal` separation."""
    _, val = validation_split(trial_config(space, config), data)
    y = data.labels[val]
    scores = 1 / (1 + np.exp(-(signal * y + rng.normal(0, 1, len(y)) + rng.normal(0, noise, len(y)))))
    from sklearn.metrics import roc_auc_score
    auc = roc_auc_score(y, scores)
    hist = [{"epoch": 1, "auc": auc, "val_loss": 0.5}]
    return TrialRecord(tid, config, hist, scores)


def test_winner_separated_from_the_recipe_and_tied_with_the_runner_up():
    rng, data, space = _setup()
    conf = lambda of, k: {"train.lr": 0.0, ROLE: CONFIRM, OF: of, SEED_OFFSET: k, FOLD: 0}
    recs = [_record("recipe", {"train.lr": 1e-3, ROLE: RECIPE}, 0.5, rng, data, space),
            _record("a", {"train.lr": 3e-3}, 2.0, rng, data, space),
            _record("b", {"train.lr": 4e-3}, 2.0, rng, data, space)]
    for of, signal in (("a", 2.05), ("b", 2.0), ("recipe", 0.5)):
        lr = next(r.config["train.lr"] for r in recs if r.trial_id == of)
        recs += [_record(f"{of}{k}", {**conf(of, k), "train.lr": lr}, signal, rng, data, space) for k in (1, 2)]
    board = leaderboard(recs, "auc", "max", epochs=1)
    v = judge(recs, board, "auc", data, space)
    assert v.winner in ("a", "b") and set(v.against) == {"recipe", "runner-up"}
    assert v.against["recipe"][1].separated() and v.against["recipe"][1].diff > 0.2
    assert not v.against["runner-up"][1].separated()
    lines = verdict_lines(v, board, "auc")
    assert lines[0].startswith(f"winner: {v.winner}: confirmed auc ") and "(n=2)" in lines[0]
    assert "against the recipe recipe" in lines[1] and lines[1].endswith("separated: the winner is better")
    assert "against the runner-up" in lines[2] and lines[2].endswith("tied within noise")


def test_without_confirmation_the_search_trials_are_compared_and_a_recipe_runner_up_is_named_once():
    rng, data, space = _setup()
    recs = [_record("recipe", {"train.lr": 1e-3, ROLE: RECIPE}, 0.0, rng, data, space),
            _record("a", {"train.lr": 3e-3}, 3.0, rng, data, space)]
    board = leaderboard(recs, "auc", "max", epochs=1)
    v = judge(recs, board, "auc", data, space)
    assert v.winner == "a" and list(v.against) == ["recipe (also the runner-up)"]
    assert v.against["recipe (also the runner-up)"][1].separated()
    assert "search auc" in verdict_lines(v, board, "auc")[0] and "confirmed" not in verdict_lines(v, board, "auc")[0]
    assert judge(recs[:1], leaderboard(recs[:1], "auc", "max", 1), "auc", data, space) is None
    assert judge(recs, board, "recall_at_precision", data, space) is None


def test_a_metric_on_another_set_is_judged_on_that_sets_rows():
    rng, data, space = _setup()
    n = 300
    y = (rng.random(n) < 0.4).astype(np.int64)
    other = DecodedSet(np.zeros((n, 1, 1, 3), np.uint8), y, None, [str(i) for i in range(n)])
    from sklearn.metrics import roc_auc_score

    def rec(tid, config, in_domain, elsewhere):
        r = _record(tid, config, in_domain, rng, data, space)
        s = 1 / (1 + np.exp(-(elsewhere * y + rng.normal(0, 1, n))))
        r.history[0].update({"auc@x": roc_auc_score(y, s), "auc_lo@x": 0.0, "auc_hi@x": 1.0})
        r.set_scores = {"x": s}
        return r
    # the recipe is best in its own domain but blind elsewhere; "a" holds up on x
    recs = [rec("recipe", {"train.lr": 1e-3, ROLE: RECIPE}, 3.0, 0.0), rec("a", {"train.lr": 3e-3}, 0.5, 2.0)]
    board = leaderboard(recs, "auc@x", "max", epochs=1)
    v = judge(recs, board, "auc@x", data, space, {"x": other})
    assert v.winner == "a" and v.against["recipe (also the runner-up)"][1].separated()
    assert v.against["recipe (also the runner-up)"][1].diff > 0.3
    assert "search auc@x" in verdict_lines(v, board, "auc@x")[0]
    assert judge(recs, board, "auc@x", data, space) is None              # the set is not at hand
    assert judge(recs, board, "min(auc,auc@x)", data, space, {"x": other}) is None   # no bootstrap for a composite
