"""The live leaderboard: rows of the trials the driver holds (running ones marked with their epoch), written
whole, at most every few seconds on results and at once when a trial ends."""
from types import SimpleNamespace

import pandas as pd

from dfsweep.live_board import LiveBoard


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _trial(tid, status="RUNNING", last=None, error_file=None, **config):
    return SimpleNamespace(trial_id=tid, status=status, config={"train.lr": 1e-3, **config}, last_result=last or {},
                           has_reported_at_least_once=bool(last), error_file=error_file, num_failures=0)


def _result(epoch, auc, t=10.0):
    return {"epoch": epoch, "auc": auc, "val_loss": 1.0 / epoch, "time_total_s": t * epoch,
            "timestamp": 1000 + epoch, "config": {"train.lr": 1e-3}}


def _report(cb, trials, trial, result):
    trial.last_result, trial.has_reported_at_least_once = result, True
    cb.on_trial_result(0, trials, trial, result)


def _board(path):
    return pd.read_csv(path).set_index("trial_id")


def test_results_are_written_at_most_every_few_seconds_and_an_end_at_once(tmp_path):
    clock, path = _Clock(), tmp_path / "leaderboard.csv"
    cb = LiveBoard(path, "auc", "max", epochs=3, every_s=3.0, clock=clock)
    a, b = _trial("a"), _trial("b", status="PENDING")
    trials = [a, b]
    _report(cb, trials, a, _result(1, 0.6))
    board = _board(path)
    assert (board.loc["a", "status"], board.loc["a", "note"]) == ("RUNNING", "epoch 1 of 3 done")
    assert board.loc["a", "auc"] == 0.6
    assert (board.loc["b", "status"], board.loc["b", "note"]) == ("PENDING", "waiting to start")
    assert (board.loc["a", "time_s"], board.loc["a", "reported_at"]) == (10.0, 1001.0)
    clock.t = 1.0
    _report(cb, trials, a, _result(2, 0.7))
    assert _board(path).loc["a", "epochs_run"] == 1          # held back: under every_s since the last write
    clock.t = 2.0
    cb.on_step_end(0, trials)
    assert _board(path).loc["a", "epochs_run"] == 1
    clock.t = 3.5
    cb.on_step_end(0, trials)                                  # Tune's loop writes what was held back
    assert _board(path).loc["a", "epochs_run"] == 2 and _board(path).loc["a", "auc"] == 0.7
    clock.t = 3.6
    _report(cb, trials, a, _result(3, 0.65))
    a.status = "TERMINATED"
    cb.on_trial_complete(0, trials, a)                         # an end is written at once
    board = _board(path)
    assert (board.loc["a", "status"], board.loc["a", "epochs_run"], board.loc["a", "auc"]) == ("FINISHED", 3, 0.7)
    assert board.loc["a", "best_epoch"] == 2                   # the best epoch of the history seen, not the last
    assert not list(tmp_path.glob(".leaderboard.csv.*"))       # written whole: no temp file left


def test_a_failed_trial_is_written_at_once_with_its_error_line(tmp_path):
    clock, path = _Clock(), tmp_path / "leaderboard.csv"
    cb = LiveBoard(path, "auc", "max", epochs=3, clock=clock)
    err = tmp_path / "error.txt"
    err.write_text("Traceback (most recent call last):\n  ...\nRuntimeError: training loss became nan\n")
    a, b = _trial("a"), _trial("b")
    _report(cb, [a, b], a, _result(1, 0.6))
    clock.t = 0.1
    b.status, b.error_file = "ERROR", str(err)
    cb.on_trial_error(0, [a, b], b)
    board = _board(path)
    assert board.loc["b", "status"] == "ERROR" and board.loc["b", "error"] == "RuntimeError: training loss became nan"
    assert board.loc["a", "status"] == "RUNNING"


def test_a_trial_restored_by_resume_shows_its_last_result(tmp_path):
    path = tmp_path / "leaderboard.csv"
    cb = LiveBoard(path, "auc", "max", epochs=2, clock=_Clock())
    done = _trial("old", status="TERMINATED", last={**_result(2, 0.8), "done": True})
    cb.on_trial_start(0, [done, _trial("new")], _trial("new"))
    board = _board(path)
    assert (board.loc["old", "status"], board.loc["old", "auc"]) == ("FINISHED", 0.8)
    assert (board.loc["new", "status"], board.loc["new", "note"]) == ("RUNNING", "no epoch done yet")


def test_a_write_that_fails_is_logged_once_and_the_sweep_goes_on(tmp_path, caplog):
    path = tmp_path / "leaderboard.csv"
    path.mkdir()                                               # a folder in the file's place: every write fails
    cb = LiveBoard(path, "auc", "max", epochs=2, clock=_Clock())
    a = _trial("a")
    for _ in range(3):
        a.status = "TERMINATED"
        cb.on_trial_complete(0, [a], a)
    assert sum("live leaderboard: could not write" in r.getMessage() for r in caplog.records) == 1
