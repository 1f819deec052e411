"""dfsweep.tracking: the store warm-up the sweep's driver runs beside ray.init."""
import sqlite3

import pytest

from dfsweep.errors import DfsweepError
from dfsweep.tracking import SweepTracker, warm_store


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
