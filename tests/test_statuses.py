"""How each trial ended, the same in the leaderboard, MLflow and the progress lines: the labelling itself, a
trial Tune restarted after its worker died, and real sweeps where ASHA stops trials, the time budget ends
them (one before its first epoch) and a checkpoint that cannot be written fails one trial alone."""
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dfsweep.statuses import (BUDGET, ENDED_BY, ENDED_BY_BUDGET, ERROR, FINISHED, INTERRUPTED, NO_EPOCH, RETRIES,
                              STOPPED_BY_ASHA, TRIAL_RETRIED, Ending, ending, in_words)
from tinydata import write_tiny_set

EXE = str(Path(sys.executable).parent / "dfsweep")


@pytest.mark.parametrize("last, epochs_run, error, retries, expected", [
    ({"done": True}, 4, "", 0, Ending(FINISHED)),
    ({"done": True, ENDED_BY: BUDGET}, 4, "", 0, Ending(FINISHED)),        # its last epoch came first
    ({"done": True}, 2, "", 0, Ending(STOPPED_BY_ASHA, "after epoch 2 of 4")),
    ({"done": True, ENDED_BY: BUDGET}, 1, "", 0, Ending(ENDED_BY_BUDGET, "after epoch 1 of 4")),
    ({"done": True, ENDED_BY: BUDGET}, 0, "", 0, Ending(ENDED_BY_BUDGET, NO_EPOCH)),
    ({}, 0, "OSError: boom", 0, Ending(ERROR, NO_EPOCH)),
    ({}, 2, "OSError: boom", 0, Ending(ERROR, "after epoch 2 of 4")),
    ({}, 3, "", 0, Ending(INTERRUPTED, "after epoch 3 of 4; --resume continues it")),
    ({"done": True}, 4, "", 1, Ending(TRIAL_RETRIED, "restarted once after a failure, then finished")),
    ({"done": True}, 2, "", 2, Ending(TRIAL_RETRIED, "restarted 2 times after a failure, then stopped by ASHA after "
                                                     "epoch 2 of 4")),
    ({}, 0, "RayActorError: died", 1, Ending(ERROR, NO_EPOCH)),              # out of retries
])
def test_ending_names_why_a_trial_ended(last, epochs_run, error, retries, expected):
    assert ending(last, epochs_run, 4, error, retries) == expected


def test_in_words_for_the_progress_lines():
    assert in_words(Ending(FINISHED)) == "finished"
    assert in_words(Ending(ENDED_BY_BUDGET, NO_EPOCH)) == "ended by the time budget; no epoch finished"
    assert in_words(Ending(STOPPED_BY_ASHA, "after epoch 1 of 4")) == "stopped by ASHA after epoch 1 of 4"


@pytest.mark.slow
def test_a_trial_restarted_after_its_worker_died_is_trial_retried(tmp_path):
    """A real Tuner: the trial's worker process dies once (as on a lost node), Tune restarts it from its
    checkpoint (max_failures 1); StatusCallback's count reaches its last result, hence the leaderboard."""
    import ray
    from ray import tune
    from dfsweep.leaderboard import leaderboard, read_trials
    from dfsweep.status_callback import StatusCallback

    def trainable(config):
        ckpt = tune.get_checkpoint()
        start = 1 if ckpt is None else int((Path(ckpt.path) / "epoch").read_text()) + 1
        for epoch in range(start, 4):
            if epoch == 2 and ckpt is None:
                os._exit(1)                                   # the worker dies, no exception to catch
            with tempfile.TemporaryDirectory() as d:
                (Path(d) / "epoch").write_text(str(epoch))
                tune.report({"epoch": epoch, "auc": 0.5 + epoch / 10},
                            checkpoint=tune.Checkpoint.from_directory(d))

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        results = tune.Tuner(trainable, param_space={"train.lr": 1e-3},
                             run_config=tune.RunConfig(storage_path=str(tmp_path), name="r", verbose=0,
                                                       callbacks=[StatusCallback()],
                                                       failure_config=tune.FailureConfig(max_failures=1))).fit()
    finally:
        ray.shutdown()
    assert results[0].metrics[RETRIES] == 1
    row = leaderboard(read_trials(results), "auc", "max", epochs=3).iloc[0]
    assert (row["status"], row["note"], row["epochs_run"]) == (
        TRIAL_RETRIED, "restarted once after a failure, then finished", 3)


# -- real sweeps (helpers copied from test_sweep.py, which another test file owns) ---------------------------

def _space(tmp_path, data, train=None, **sweep):
    cfg = {
        "data": {"train": str(data), "image_size": 64, "cache_dir": str(tmp_path / "cache")},
        "model": {"name": "deepfakenet", "width": 0.25},
        "train": {"epochs": 4, "batch_size": 8, "lr": 1e-3, **(train or {})},
        "sweep": {"num_samples": 4, "max_concurrent_trials": 2, "metric": "auc", "seed": 3,
                  "scheduler": {"name": "fifo"}, "confirm": {"top_k": 0}, **sweep},
        "search": {"train.lr": {"float": [1e-5, 3e-2], "log": True}},
    }
    p = tmp_path / "space.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _dfsweep(args, cwd, timeout=600, **kw):
    return subprocess.run([EXE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)


def _children(cwd, name):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(f"sqlite:///{Path(cwd, 'sweeps', 'mlflow.db')}")
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return client, {r.data.tags["dfsweep.trial_id"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}


def _assert_mlflow_matches(cwd, name, board):
    """One child run per row, FINISHED unless it failed, its status tags the row's status and note."""
    client, children = _children(cwd, name)
    assert sorted(children) == sorted(board["trial_id"])
    for row in board.itertuples():
        run = children[str(row.trial_id)]
        assert run.info.status == ("FAILED" if row.status == ERROR else "FINISHED"), row
        tags = run.data.tags
        assert (tags["dfsweep.status"], tags["dfsweep.status_note"]) == (row.status, row.note), (tags, row)
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "auc"))
        assert steps == list(range(1, int(row.epochs_run) + 1)), (row.trial_id, steps)
    return children


def _board(cwd, name) -> pd.DataFrame:
    """leaderboard.csv as written: empty cells stay empty strings, trial ids stay strings."""
    return pd.read_csv(Path(cwd, "sweeps", name, "leaderboard.csv"), keep_default_na=False, dtype={"trial_id": str})


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_set(tmp_path / "data", n_real=40, n_fake=12)


@pytest.mark.slow
def test_asha_stops_weak_trials_and_says_so_everywhere(tmp_path, tiny):
    """The shipped scheduler (grace 1, halving): trials it stops show STOPPED_BY_ASHA with fewer epochs in
    the leaderboard, in MLflow's tags and in the progress lines; the rest ran all 4 epochs."""
    space = _space(tmp_path, tiny, num_samples=6, scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    r = _dfsweep(["run", str(space), "--name", "asha"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    board = _board(tmp_path, "asha")
    assert len(board) == 6 and set(board["status"]) <= {FINISHED, STOPPED_BY_ASHA}, board.to_string()
    stopped, finished = board[board["status"] == STOPPED_BY_ASHA], board[board["status"] == FINISHED]
    assert len(stopped) >= 1 and (stopped["epochs_run"] < 4).all() and (finished["epochs_run"] == 4).all()
    assert all(n == f"after epoch {k} of 4" for n, k in zip(stopped["note"], stopped["epochs_run"]))
    assert (finished["note"] == "").all()
    _assert_mlflow_matches(tmp_path, "asha", board)
    for row in stopped.itertuples():
        assert f"{row.trial_id} stopped by ASHA after epoch {row.epochs_run} of 4 [" in r.stdout
    assert "STOPPED_BY_ASHA" in r.stdout.split("\nleaderboard (")[1]


@pytest.mark.slow
def test_the_time_budget_ends_a_running_trial_and_those_still_waiting(tmp_path, tiny):
    """One CPU, three trials allowed at once: one trains while two wait. The budget ends the one training at
    its next report and the waiting ones before they start: each is ENDED_BY_BUDGET, the unstarted ones
    with "no epoch finished" and empty scores, never NaN, in the leaderboard, the printed table and MLflow."""
    epochs = 2000        # far more than fit in the budget on any machine
    space = _space(tmp_path, tiny, train={"epochs": epochs}, num_samples=3, max_concurrent_trials=3,
                   time_budget_s=15)
    r = _dfsweep(["run", str(space), "--name", "budget"], tmp_path,
                 env={**os.environ, "RAY_OVERRIDE_RESOURCES": '{"CPU": 1}'})
    assert r.returncode == 0, r.stderr[-3000:]
    board = _board(tmp_path, "budget")
    assert len(board) == 3 and (board["status"] == ENDED_BY_BUDGET).all(), board.to_string()
    ran, unstarted = board[board["epochs_run"] > 0], board[board["epochs_run"] == 0]
    assert len(ran) == 1 and 1 <= ran["epochs_run"].iloc[0] < epochs, board.to_string()
    assert ran["note"].iloc[0] == f"after epoch {ran['epochs_run'].iloc[0]} of {epochs}"
    assert len(unstarted) == 2 and (unstarted["note"] == NO_EPOCH).all()
    assert (unstarted[["auc", "f1", "val_loss", "auc_lo", "auc_hi"]] == "").all().all()    # empty, not NaN
    assert (unstarted["param.train.lr"] != "").all()                      # what they would have tried
    printed = r.stdout.split("\nleaderboard (")[1]
    assert "nan" not in printed.lower()
    for tid in unstarted["trial_id"]:
        line = next(l for l in printed.splitlines() if str(tid) in l)
        assert "ENDED_BY_BUDGET" in line and NO_EPOCH in line
        assert f"{tid} ended by the time budget; {NO_EPOCH} [" in r.stdout
    _assert_mlflow_matches(tmp_path, "budget", board)


def _plant_when_a_trial_appears(tune_dir: Path, proc, deadline_s=240) -> str:
    """A file where the first trial's second checkpoint folder must go: that write fails for any user."""
    deadline = time.time() + deadline_s
    while time.time() < deadline and proc.poll() is None:
        trials = sorted(tune_dir.glob("trial_*")) if tune_dir.is_dir() else []
        if trials:
            (trials[0] / "checkpoint_000001").write_text("in the way")
            return trials[0].name.removeprefix("trial_")
        time.sleep(0.02)
    raise AssertionError("no trial folder appeared")


@pytest.mark.slow
def test_a_checkpoint_that_cannot_be_written_fails_that_trial_alone(tmp_path, tiny):
    space = _space(tmp_path, tiny, train={"epochs": 3}, num_samples=3, max_concurrent_trials=1)
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([EXE, "run", str(space), "--name", "ckpt"], cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        victim = _plant_when_a_trial_appears(tmp_path / "sweeps" / "ckpt" / "tune", proc)
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    board = _board(tmp_path, "ckpt")
    failed = board[board["status"] == ERROR]
    assert failed["trial_id"].tolist() == [victim], board.to_string()
    row = failed.iloc[0]
    assert "the checkpoint of epoch 2 could not be written: File exists" in row["error"], row["error"]
    assert row["epochs_run"] == 1 and row["note"] == "after epoch 1 of 3"
    others = board[board["trial_id"] != victim]
    assert len(others) == 2 and (others["status"] == FINISHED).all() and (others["epochs_run"] == 3).all()
    children = _assert_mlflow_matches(tmp_path, "ckpt", board)
    assert f"trial_{victim}/checkpoint_000001" in children[victim].data.tags["error"]     # where, in full
    assert re.search(rf"{victim} FAILED: .*the checkpoint of epoch 2 could not be written: File exists",
                     log.read_text())
