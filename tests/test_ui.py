"""`dfsweep ui` serves the sweeps' MLflow store on loopback (a real MLflow server, real HTTP) and points at the
newest sweep's runs."""
import http.server
import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from dfsweep.tracking import SweepTracker, default_tracking_uri
from dfsweep.ui import _is_loopback, ui_command
from dfsweep.ui_address import newest_sweep, open_when_serving, runs_address
from uitools import free_port, start_ui, wait_until_serving


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

    port = free_port()
    proc = start_ui(tmp_path, port)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, proc, tmp_path / "ui.log")
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


def test_the_address_is_the_newest_sweeps_runs_in_the_model_training_chart_view(tmp_path):
    root = tmp_path / "sweeps"
    assert newest_sweep(root) is None                       # no sweep yet: the UI alone
    root.mkdir()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    SweepTracker(uri, "older")
    exp_id = SweepTracker(uri, "demo-sweep").experiment_id
    (root / "demo-sweep").mkdir()
    (root / "demo-sweep" / "state.json").write_text(json.dumps({"experiment": "demo-sweep"}))
    (root / "latest").symlink_to("demo-sweep")
    assert newest_sweep(root) == "demo-sweep"
    assert runs_address("http://127.0.0.1:5001", uri, "demo-sweep") == (
        f"http://127.0.0.1:5001/#/experiments/{exp_id}/runs?workflowType=machine_learning&compareRunsMode=CHART")
    assert runs_address("http://127.0.0.1:5001", uri, "not-in-this-store") is None


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_open_waits_until_the_server_answers():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    opened = []
    thread = open_when_serving(base, f"{base}/#/experiments/1/runs", opener=lambda a: opened.append(a) or True)
    time.sleep(1.5)
    assert opened == [] and thread.is_alive()               # nothing listens yet: a browser would show an error
    server = http.server.HTTPServer(("127.0.0.1", port), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        thread.join(timeout=10)
        assert opened == [f"{base}/#/experiments/1/runs"]
    finally:
        server.shutdown()
        server.server_close()
