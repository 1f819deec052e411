"""dfsweep.tracking: the store warm-up the sweep's driver runs beside ray.init; what the UI shows of a sweep."""
import sqlite3

import pytest
from mlflow.tracking import MlflowClient

from dfsweep.errors import DfsweepError
from dfsweep.tracking import (KIND_TAG, MODEL_TRAINING, TRIAL_CURVE, SweepTracker, TrackingCallback,
                              sweep_experiment_id, warm_store)


def test_warm_store_creates_and_migrates_a_new_sqlite_store_without_writing_runs(tmp_path):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    warm_store(uri)
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        assert {"experiments", "runs", "alembic_version"} <= tables
        assert con.execute("select count(*) from runs").fetchone()[0] == 0
        assert [r[0] for r in con.execute("select name from experiments")] == ["Default"]
    # the sweep then uses the store it opened
    tracker = SweepTracker(uri, "s1", artifact_root=tmp_path / "mlartifacts")
    parent = tracker.start_parent("s1", {"a": 1})
    assert tracker.client.get_run(parent).data.params == {"a": "1"}


def test_warm_store_leaves_a_bad_store_for_its_real_use_to_report(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"not a database" * 100)
    warm_store(f"sqlite:///{db}")                # no exception, the file as it was
    assert db.read_bytes() == b"not a database" * 100
    with pytest.raises(DfsweepError, match="cannot open the MLflow tracking store sqlite:///.*not a database"):
        SweepTracker(f"sqlite:///{db}", "s1")


def test_warm_store_does_not_contact_a_tracking_server():
    # a server that does not answer would be retried by MLflow: the warm-up leaves servers to SweepTracker
    import socket
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(0.5)
        warm_store(f"http://127.0.0.1:{srv.getsockname()[1]}")
        with pytest.raises(socket.timeout):
            srv.accept()


class _Trial:
    def __init__(self, trial_id: str):
        self.trial_id, self.config = trial_id, {"train.lr": 1e-3}


def test_the_parent_run_carries_each_trials_validation_auc_by_epoch(tmp_path):
    tracker = SweepTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "s1", artifact_root=tmp_path / "mlartifacts")
    parent = tracker.start_parent("s1", {})
    callback = TrackingCallback(tracker, epochs=2)
    curves = {"t1": [0.6, 0.7], "t2": [0.8, 0.75]}
    for tid, aucs in curves.items():
        for epoch, auc in enumerate(aucs, start=1):
            callback.on_trial_result(0, [], _Trial(tid), {"epoch": epoch, "auc": auc, "val_loss": 0.5})
    callback.on_trial_result(0, [], _Trial("t1"), {"epoch": 2, "auc": 0.7})  # a restored trial's repeated epoch
    for tid, aucs in curves.items():
        history = tracker.client.get_metric_history(parent, f"{TRIAL_CURVE}/{tid}")
        assert [(m.step, m.value) for m in history] == list(enumerate(aucs, start=1))
    assert set(tracker.client.get_run(parent).data.metrics) == {f"{TRIAL_CURVE}/t1", f"{TRIAL_CURVE}/t2"}


def test_sweep_experiments_are_marked_model_training_those_from_before_too(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    old = client.create_experiment("old-sweep")               # made before dfsweep tagged its experiments
    chosen = client.create_experiment("chosen", tags={KIND_TAG: "finetuning"})
    assert SweepTracker(uri, "new-sweep").client.get_experiment_by_name("new-sweep").tags[KIND_TAG] == MODEL_TRAINING
    assert sweep_experiment_id(uri, "old-sweep") == old
    assert client.get_experiment(old).tags[KIND_TAG] == MODEL_TRAINING
    old2 = client.create_experiment("resumed-sweep")
    SweepTracker(uri, "resumed-sweep")                        # a --resume opens the existing experiment
    assert client.get_experiment(old2).tags[KIND_TAG] == MODEL_TRAINING
    assert sweep_experiment_id(uri, "chosen") == chosen
    assert client.get_experiment(chosen).tags[KIND_TAG] == "finetuning"   # a kind someone chose stays
    assert sweep_experiment_id(uri, "missing") is None


def test_an_epoch_write_that_fails_halfway_is_retried_without_logging_anything_twice(tmp_path):
    """The store took the trial's epoch, then stopped answering before the parent's curve point: the held write
    is retried, and each run gets each epoch once."""
    tracker = SweepTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "s2", artifact_root=tmp_path / "mlartifacts")
    parent = tracker.start_parent("s2", {})
    callback = TrackingCallback(tracker, epochs=3)
    real_curve, failures = tracker.log_trial_curve, []

    def down_once(tid, metrics, step):
        if step == 2 and not failures:
            failures.append(step)
            raise ConnectionError("the server stopped answering")
    tracker.log_trial_curve = lambda tid, metrics, step: (down_once(tid, metrics, step), real_curve(tid, metrics, step))
    callback.held.retryable = lambda e: True
    for epoch in (1, 2, 3):
        callback.held.last_try = float("-inf")      # retry at once, not after the held writes' pause
        callback.on_trial_result(0, [], _Trial("t1"), {"epoch": epoch, "auc": 0.5 + epoch / 10, "objective": 0.1})
    assert failures == [2] and callback.held.settle(5)
    run_id = callback.runs["t1"]
    assert [m.step for m in tracker.client.get_metric_history(run_id, "auc")] == [1, 2, 3]
    assert [m.step for m in tracker.client.get_metric_history(parent, f"{TRIAL_CURVE}/t1")] == [1, 2, 3]
