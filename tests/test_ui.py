"""`dfsweep ui` serves the sweeps' MLflow store on loopback (a real MLflow server, real HTTP)."""
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dfsweep.tracking import SweepTracker, default_tracking_uri
from dfsweep.ui import _is_loopback, ui_command

EXE = str(Path(sys.executable).parent / "dfsweep")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_loopback_detection_and_argv_is_a_list():
    assert _is_loopback("127.0.0.1") and _is_loopback("localhost") and _is_loopback("::1")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("10.1.2.3")
    cmd = ui_command(5001, "127.0.0.1", "sqlite:///x.db")
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and "--workers" in cmd


@pytest.mark.slow
def test_ui_lists_the_sweep_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "sweeps").mkdir()
    tracker = SweepTracker(default_tracking_uri(Path("sweeps")), "demo-sweep", artifact_root=Path("sweeps/mlartifacts"))
    parent = tracker.start_parent("demo-sweep", {"train.lr": 1e-3})
    child = tracker.child_for("abc123", "abc123", {"train.lr": 2e-3})
    tracker.log_epoch(child, {"auc": 0.9}, step=1)
    tracker.end_child(child, "FINISHED")
    tracker.end_parent()

    port = _free_port()
    proc = subprocess.Popen([EXE, "ui", "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).read()
                break
            except OSError:
                assert time.time() < deadline and proc.poll() is None, "UI did not start"
                time.sleep(0.5)
        req = urllib.request.Request(f"{base}/api/2.0/mlflow/experiments/search", data=b'{"max_results": 10}',
                                     headers={"Content-Type": "application/json"})
        exps = json.loads(urllib.request.urlopen(req, timeout=10).read())["experiments"]
        exp = next(e for e in exps if e["name"] == "demo-sweep")
        req = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search",
                                     data=json.dumps({"experiment_ids": [exp["experiment_id"]]}).encode(),
                                     headers={"Content-Type": "application/json"})
        runs = json.loads(urllib.request.urlopen(req, timeout=10).read())["runs"]
        ids = {r["info"]["run_id"] for r in runs}
        assert {parent, child} <= ids
        tags = {r["info"]["run_id"]: {t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs}
        assert tags[child]["mlflow.parentRunId"] == parent
    finally:
        import os, signal
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
