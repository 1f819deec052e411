"""The leaderboard from Tune results: history merged from checkpoints and Tune's records, ranking."""
import math

import pandas as pd
import torch
from ray import tune
from ray.tune import Result

from dfsweep.config import config_from_dict
from dfsweep.space import parse_space
from dfsweep.sweep import _history, leaderboard
from dfsweep.trial import STATE_FILE


def _result(tmp_path, name, ckpt_epochs, df_epochs, auc=lambda e: e / 100, error=None):
    row = lambda e: {"epoch": e, "training_iteration": e, "auc": auc(e), "f1": auc(e), "val_loss": 1 / e}
    ckpt = None
    if ckpt_epochs:
        d = tmp_path / name / "checkpoint_000001"
        d.mkdir(parents=True)
        torch.save({"history": [row(e) for e in range(1, ckpt_epochs + 1)], "epoch": ckpt_epochs}, d / STATE_FILE)
        ckpt = tune.Checkpoint.from_directory(str(d))
    df = pd.DataFrame([row(e) for e in range(1, df_epochs + 1)]) if df_epochs else None
    return Result(metrics={"trial_id": name, "config": {"train.lr": 0.001}}, checkpoint=ckpt, error=error,
                  path=str(tmp_path / f"trial_{name}"),
                  metrics_dataframe=df)


def test_history_merges_checkpoint_and_tune_records(tmp_path):
    # after a kill -9 + resume: the restored checkpoint stops at epoch 11, the replayed epoch 12 is in Tune's
    assert [h["epoch"] for h in _history(_result(tmp_path, "a", 11, 12))] == list(range(1, 13))
    # the driver died before writing progress: the checkpoint has more
    assert [h["epoch"] for h in _history(_result(tmp_path, "b", 12, 9))] == list(range(1, 13))
    assert _history(_result(tmp_path, "c", 0, 0)) == []


def test_leaderboard_status_and_ranking(tmp_path):
    space = parse_space(config_from_dict({"search": {"train.lr": {"float": [1e-4, 1e-2]}}}))
    results = [
        _result(tmp_path, "full", 12, 12),
        _result(tmp_path, "early", 2, 2),
        _result(tmp_path, "tie", 12, 12, auc=lambda e: min(e / 100, 0.12)),
        _result(tmp_path, "broken", 0, 0, error=RuntimeError("training loss became nan in epoch 1")),
    ]
    board = leaderboard(results, "auc", "max", space, epochs=12)
    assert list(board["trial_id"]) == ["full", "tie", "early", "broken"]
    assert list(board["status"]) == ["FINISHED", "FINISHED", "STOPPED_EARLY", "ERROR"]
    assert list(board["rank"]) == [1, 2, 3, 4]
    assert board.loc[3, "error"].startswith("training loss became nan") and math.isnan(board.loc[3, "auc"])
    # "full" and "tie" both reach 0.12: the tie goes to the lower validation loss (full: epoch 12)
    assert board.loc[0, "best_epoch"] == 12 and board.loc[1, "best_epoch"] == 12
