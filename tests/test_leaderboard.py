"""The leaderboard from Tune results: history merged from checkpoints and Tune's records, ranking,
confirmation runs summarised on the configuration they confirm."""
import math

import numpy as np

import pandas as pd
import pytest
import torch
from ray import tune
from ray.tune import Result

from dfsweep.leaderboard import _history, confirmed, leaderboard, read_trials, winner_row
from dfsweep.report import board_table
from dfsweep.roles import CONFIRM, FOLD, OF, RECIPE, ROLE, SEED_OFFSET
from dfsweep.statuses import BUDGET, ENDED_BY, RETRIES
from dfsweep.trial import STATE_FILE


def _result(tmp_path, name, ckpt_epochs, df_epochs, auc=lambda e: e / 100, error=None, config=None, scores=None,
            last=None):
    row = lambda e: {"epoch": e, "training_iteration": e, "auc": auc(e), "f1": auc(e), "val_loss": 1 / e,
                     "auc_lo": auc(e) - 0.1, "auc_hi": auc(e) + 0.1}
    ckpt = None
    if ckpt_epochs:
        d = tmp_path / name / "checkpoint_000001"
        d.mkdir(parents=True)
        best = {"scores": None if scores is None else torch.tensor(scores)}
        torch.save({"history": [row(e) for e in range(1, ckpt_epochs + 1)], "epoch": ckpt_epochs, "best": best},
                   d / STATE_FILE)
        ckpt = tune.Checkpoint.from_directory(str(d))
    df = pd.DataFrame([row(e) for e in range(1, df_epochs + 1)]) if df_epochs else None
    last = {"done": True} if last is None else last       # Tune's last result of a trial that ended
    return Result(metrics={"trial_id": name, "config": config or {"train.lr": 0.001}, **last}, checkpoint=ckpt,
                  error=error,
                  path=str(tmp_path / f"trial_{name}"),
                  metrics_dataframe=df)


def test_history_merges_checkpoint_and_tune_records(tmp_path):
    # after a kill -9 + resume: the restored checkpoint stops at epoch 11, the replayed epoch 12 is in Tune's
    assert [h["epoch"] for h in _history(_result(tmp_path, "a", 11, 12))] == list(range(1, 13))
    # the driver died before writing progress: the checkpoint has more
    assert [h["epoch"] for h in _history(_result(tmp_path, "b", 12, 9))] == list(range(1, 13))
    assert _history(_result(tmp_path, "c", 0, 0)) == []


def test_leaderboard_status_and_ranking(tmp_path):
    results = [
        _result(tmp_path, "full", 12, 12),
        _result(tmp_path, "early", 2, 2),
        _result(tmp_path, "tie", 12, 12, auc=lambda e: min(e / 100, 0.12)),
        _result(tmp_path, "broken", 0, 0, error=RuntimeError("training loss became nan in epoch 1")),
    ]
    board = leaderboard(read_trials(results), "auc", "max", epochs=12)
    assert list(board["trial_id"]) == ["full", "tie", "early", "broken"]
    assert list(board["status"]) == ["FINISHED", "FINISHED", "STOPPED_BY_ASHA", "ERROR"]
    assert list(board["note"]) == ["", "", "after epoch 2 of 12", "no epoch finished"]
    assert list(board["rank"]) == [1, 2, 3, 4]
    assert board.loc[3, "error"].startswith("training loss became nan") and math.isnan(board.loc[3, "auc"])
    # "full" and "tie" both reach 0.12: the tie goes to the lower validation loss (full: epoch 12)
    assert board.loc[0, "best_epoch"] == 12 and board.loc[1, "best_epoch"] == 12
    assert board.loc[0, "auc_lo"] == pytest.approx(0.02) and board.loc[0, "role"] == "search"


def test_confirmed_configurations_rank_first_by_their_mean_and_carry_mean_std_n(tmp_path):
    cfg = lambda lr, **meta: {"train.lr": lr, **meta}
    conf = lambda of, k: cfg(0.1, **{ROLE: CONFIRM, OF: of, SEED_OFFSET: k, FOLD: 0})
    results = [
        _result(tmp_path, "lucky", 4, 4, auc=lambda e: 0.9, config=cfg(0.1), scores=[0.1, 0.9]),
        _result(tmp_path, "steady", 4, 4, auc=lambda e: 0.8, config=cfg(0.2)),
        _result(tmp_path, "recipe", 4, 4, auc=lambda e: 0.7, config=cfg(0.3, **{ROLE: RECIPE})),
        _result(tmp_path, "other", 4, 4, auc=lambda e: 0.75, config=cfg(0.4)),
        _result(tmp_path, "c1", 4, 4, auc=lambda e: 0.6, config=conf("lucky", 1)),
        _result(tmp_path, "c2", 4, 4, auc=lambda e: 0.64, config=conf("lucky", 2)),
        _result(tmp_path, "c3", 4, 4, auc=lambda e: 0.8, config=conf("steady", 1)),
        _result(tmp_path, "c4", 4, 4, auc=lambda e: 0.82, config=conf("steady", 2)),
        _result(tmp_path, "c5", 4, 4, auc=lambda e: 0.7, config=conf("recipe", 1)),
        _result(tmp_path, "c6", 0, 0, config=conf("recipe", 2), error=RuntimeError("boom")),
    ]
    records = read_trials(results)
    assert records[0].best_scores == pytest.approx([0.1, 0.9]) and records[1].best_scores is None
    board = leaderboard(records, "auc", "max", epochs=4)
    # the search's best ("lucky", 0.9) did not hold up: "steady" is the confirmed winner
    assert list(board["trial_id"][:4]) == ["steady", "recipe", "lucky", "other"]
    assert list(board["rank"][:4]) == [1, 2, 3, 4] and board["rank"][4:].isna().all()
    top = winner_row(board, "auc")
    assert top["trial_id"] == "steady" and top["confirm_mean"] == pytest.approx(0.81)
    assert top["confirm_std"] == pytest.approx(np.std([0.8, 0.82], ddof=1)) and top["confirm_n"] == 2
    assert board.set_index("trial_id").loc["recipe", "confirm_n"] == 1            # the errored run left out
    assert list(confirmed(board)["trial_id"]) == ["steady", "recipe", "lucky"]
    runs = board[board["role"] == CONFIRM]
    assert list(runs["confirms"]) == ["lucky", "lucky", "recipe", "recipe", "steady", "steady"]
    assert "param.dfsweep.role" not in board and set(runs["seed_offset"]) == {1, 2}


def test_why_each_trial_ended_is_its_status_and_a_trial_without_an_epoch_says_so(tmp_path):
    """The budget's mark, Tune's `done`, the restarts StatusCallback counts and a missing end each give their
    own status; a trial with no finished epoch has empty scores and the note "no epoch finished"."""
    results = [
        _result(tmp_path, "asha", 2, 2),
        _result(tmp_path, "budget", 3, 3, last={"done": True, ENDED_BY: BUDGET}),
        _result(tmp_path, "unstarted", 0, 0, last={"done": True, ENDED_BY: BUDGET}),
        _result(tmp_path, "retried", 12, 12, last={"done": True, RETRIES: 1}),
        _result(tmp_path, "cut", 5, 5, last={}),            # Ctrl-C: Tune never ended it
        _result(tmp_path, "finished_at_budget", 12, 12, last={"done": True, ENDED_BY: BUDGET}),
    ]
    board = leaderboard(read_trials(results), "auc", "max", epochs=12).set_index("trial_id")
    assert board.loc["asha", ["status", "note"]].tolist() == ["STOPPED_BY_ASHA", "after epoch 2 of 12"]
    assert board.loc["budget", ["status", "note"]].tolist() == ["ENDED_BY_BUDGET", "after epoch 3 of 12"]
    assert board.loc["unstarted", ["status", "note"]].tolist() == ["ENDED_BY_BUDGET", "no epoch finished"]
    assert board.loc["retried", ["status", "note"]].tolist() == ["TRIAL_RETRIED",
                                                                 "restarted once after a failure, then finished"]
    assert board.loc["cut", "status"] == "INTERRUPTED" and "--resume" in board.loc["cut", "note"]
    assert board.loc["finished_at_budget", ["status", "note"]].tolist() == ["FINISHED", ""]
    row = board.loc["unstarted"]
    assert row["epochs_run"] == 0 and all(pd.isna(row[k]) for k in ("auc", "f1", "val_loss", "auc_lo"))
    assert row["rank"] == len(board)                          # unscored: last
    printed = board_table(board.reset_index(), "auc")
    line = next(l for l in printed.splitlines() if "unstarted" in l)
    assert "ENDED_BY_BUDGET" in line and "no epoch finished" in line and "nan" not in printed.lower()


def test_objectives_mark_the_pareto_front_rank_it_first_and_keep_every_other_sets_scores():
    from dfsweep.leaderboard import TrialRecord
    from dfsweep.objective import Scoring
    from dfsweep.config import SweepConfig
    scoring = Scoring.of(SweepConfig(objectives=["auc", "auc@x"]))

    def rec(tid, *epochs):
        hist = []
        for e, (auc, aucx) in enumerate(epochs, 1):
            hist.append({"epoch": e, "auc": auc, "auc@x": aucx, "auc_lo@x": aucx - 0.1, "auc_hi@x": aucx + 0.1,
                         "recall@x": 0.5, "val_loss": 0.3})
            scoring.derive(hist[-1])
        return TrialRecord(tid, {"train.lr": 0.001}, hist, last={"done": True})
    records = [rec("a", (0.9, 0.5)), rec("b", (0.6, 0.5), (0.7, 0.6)), rec("c", (0.65, 0.55)),
               rec("d", (0.95, 0.45))]
    board = leaderboard(records, scoring.key, "max", 2, [o.key for o in scoring.objectives])
    assert list(board["trial_id"]) == ["b", "a", "d", "c"]          # the front by its worst case, then the rest
    assert list(board["pareto"]) == [True, True, True, False]
    b = board.iloc[0]
    assert (b["auc"], b["auc@x"], b["min(auc,auc@x)"], b["best_epoch"]) == (0.7, 0.6, 0.6, 2)
    assert b["auc_lo@x"] == pytest.approx(0.5) and b["recall@x"] == 0.5
    table = board_table(board, scoring.key)
    assert "front" in table.splitlines()[0] and "auc@x [95%]" in table and "0.600 [0.500, 0.700]" in table
