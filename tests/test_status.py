"""`dfsweep status` and `dfsweep ls` on sweep folders written by hand (fast) and by a real sweep (slow): the
live leaderboard while it runs, its state, running trials with their ETA, and the search's analysis at the end."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dfsweep.cli import main
from dfsweep.status import DRIVER_GONE, driver_state, list_text, read_view, status_text

NOW = 1_800_000_000.0
# subprocesses import dfsweep from this checkout, installed or not (Ray's workers inherit the variable)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                                  os.environ.get("PYTHONPATH")]))}


def _row(tid, status, auc=float("nan"), epochs_run=0, role="search", note="", **extra):
    return {"rank": 0, "trial_id": tid, "role": role, "confirms": "", "auc": auc, "best_epoch": epochs_run,
            "epochs_run": epochs_run, "status": status, "note": note, "error": "", "confirm_mean": float("nan"),
            "confirm_std": float("nan"), "confirm_n": 0, "param.train.lr": 1e-3, **extra}


def _sweep(root, name, rows, state=None, phase="search", budget=None, epochs=4, created=NOW - 3600):
    d = root / name
    d.mkdir(parents=True)
    spec = {"sweep": {"name": name, "num_samples": 4, "metric": "auc", "time_budget_s": budget},
            "train": {"epochs": epochs}}
    (d / "sweep.yaml").write_text(yaml.safe_dump(spec))
    os.utime(d / "sweep.yaml", (created, created))
    (d / "state.json").write_text(json.dumps(state or {}))
    (d / "phase").write_text(phase + "\n")
    if rows:
        pd.DataFrame(rows).to_csv(d / "leaderboard.csv", index=False)
    return d


def _running_state(**kw):
    return {"status": "RUNNING", "pid": os.getpid(), "host": socket.gethostname(), "started_at": NOW - 120, **kw}


def test_a_running_sweep_shows_its_running_trials_with_their_eta(tmp_path):
    rows = [_row("t1", "FINISHED", 0.9, 4),
            _row("t2", "RUNNING", 0.8, 2, note="epoch 2 of 4 done", time_s=20.0, reported_at=NOW - 3),
            _row("t3", "RUNNING", note="no epoch done yet", time_s=0.0, reported_at=0.0),
            _row("t4", "PENDING", note="waiting to start")]
    d = _sweep(tmp_path, "s", rows, _running_state(), budget=600)
    text = status_text(read_view(d), now=NOW)
    lines = text.splitlines()
    assert lines[0] == ("sweep s: RUNNING, phase search; search trials 1/4 ended, 2 running, 1 waiting; "
                        "0 confirmation runs")
    assert lines[1] == f"started 2m ago; pid {os.getpid()} on {socket.gethostname()}; time budget 600s, ~8m left"
    assert "best: auc 0.9000 (t1)" in lines
    # 10 s per epoch, 2 epochs to go, 3 s into the next one
    assert "  t2  search  epoch 2 of 4 done  ~17s left" in lines
    assert "  t3  search  no epoch done yet  first epoch running" in lines
    assert any(l.startswith("leaderboard (") for l in lines) and "PENDING" in text


def test_the_time_budget_ends_a_search_trial_before_its_epochs_but_not_a_confirmation_run(tmp_path):
    rows = [_row("t1", "RUNNING", 0.8, 1, note="epoch 1 of 4 done", time_s=100.0, reported_at=NOW),
            _row("c1", "RUNNING", 0.8, 1, role="confirm", note="epoch 1 of 4 done", time_s=100.0, reported_at=NOW)]
    text = status_text(read_view(_sweep(tmp_path, "s", rows, _running_state(), budget=180)), now=NOW)
    assert "  t1  search  epoch 1 of 4 done  ~60s left (the time budget ends it)" in text.splitlines()
    assert "  c1  confirm  epoch 1 of 4 done  ~5m left" in text.splitlines()


def test_a_running_sweep_whose_driver_is_gone_says_so_and_how_to_continue(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()                                              # its pid now names no process
    d = _sweep(tmp_path, "s", [_row("t1", "RUNNING", 0.8, 1, time_s=1.0, reported_at=NOW)],
               _running_state(pid=gone.pid))
    assert driver_state(json.loads((d / "state.json").read_text())) == DRIVER_GONE
    text = status_text(read_view(d), now=NOW)
    assert text.startswith(f"sweep s: {DRIVER_GONE}") and "--resume --name s" in text
    assert "running:" not in text                            # no ETA for trials nobody trains
    # another host's driver cannot be checked from here: the recorded status stands
    assert driver_state(_running_state(pid=gone.pid, host="elsewhere")) == "RUNNING"


def test_a_finished_sweep_shows_its_confirmed_winner_and_best_config(tmp_path):
    rows = [_row("t1", "FINISHED", 0.9, 4, confirm_mean=0.85, confirm_n=2),
            _row("t2", "STOPPED_BY_ASHA", 0.95, 1, note="after epoch 1 of 4"),
            _row("c1", "FINISHED", 0.84, 4, role="confirm", confirms="t1"),
            _row("c2", "FINISHED", 0.86, 4, role="confirm", confirms="t1")]
    d = _sweep(tmp_path, "s", rows, {"status": "FINISHED", "pid": 1, "host": "elsewhere", "started_at": NOW - 7200,
                                     "wall_s": 3000.0}, phase="done")
    (d / "best.yaml").write_text("train: {}\n")
    text = status_text(read_view(d), now=NOW)
    assert text.startswith("sweep s: FINISHED, phase done; search trials 2/4 ended, 0 running, 0 waiting; "
                           "2 confirmation runs")
    assert text.splitlines()[1] == "started 2h ago; ran 50m"
    assert "best: auc 0.8500 confirmed (t1)" in text and f"best config: {d / 'best.yaml'}" in text
    assert "running:" not in text and "after epoch 1 of 4" in text


def test_a_sweep_before_its_first_trial(tmp_path):
    d = _sweep(tmp_path, "s", [], _running_state(), phase="")
    text = status_text(read_view(d), now=NOW)
    assert "phase -; search trials 0/4 ended" in text and "leaderboard: none yet (no trial has started)" in text


def test_ls_lists_sweeps_newest_first_with_state_trials_best_and_age(tmp_path):
    root = tmp_path / "sweeps"
    _sweep(root, "old", [_row("t1", "FINISHED", 0.7, 4)], {"status": "FINISHED"}, phase="done",
           created=NOW - 2 * 86400)
    _sweep(root, "new", [_row("t1", "FINISHED", 0.9, 4), _row("t2", "RUNNING", 0.5, 1, time_s=1.0, reported_at=NOW)],
           _running_state(), created=NOW - 300)
    (root / "latest").symlink_to("new")
    (root / "mlartifacts").mkdir()                           # not a sweep: no sweep.yaml
    lines = list_text(root, now=NOW).splitlines()
    assert lines[0].split() == ["name", "state", "phase", "trials", "confirm", "best", "age", "updated"]
    new, old = lines[1], lines[2]
    assert new.split()[:4] == ["new", "(latest)", "RUNNING", "search"] and "1/4, 1 running" in new
    assert "auc 0.9000 (t1)" in new and " 5m " in new
    assert old.split()[:4] == ["old", "FINISHED", "done", "1/4"] and "auc 0.7000 (t1)" in old and " 2d " in old
    assert len(lines) == 3


def test_ls_and_status_of_a_missing_sweep_give_one_line_and_exit_2(tmp_path, capsys):
    assert main(["ls"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "dfsweep: error: sweeps: no sweeps folder (run `dfsweep ls` where `dfsweep run` ran)"]
    _sweep(tmp_path / "sweeps", "s", [], {"status": "FINISHED"})
    for argv in (["status", "nope"], ["status", "--plots", "nope"], ["status", str(tmp_path / "nowhere")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not a sweep folder" in err[0], argv
    assert main(["status"]) == 2                                # no sweeps/latest yet
    assert "not a sweep folder" in capsys.readouterr().err


def test_status_and_ls_read_files_without_importing_ray_or_torch(tmp_path):
    _sweep(tmp_path / "sweeps", "s", [_row("t1", "FINISHED", 0.9, 4)], {"status": "FINISHED"}, phase="done")
    code = ("import sys; from dfsweep.cli import main; assert main(['status', 's']) == 0; assert main(['ls']) == 0; "
            "print(sorted(m for m in ('ray', 'torch', 'mlflow') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env=ENV)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def _dfsweep(args, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "dfsweep", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def _watch(proc, board: Path, timeout_s: float = 600) -> set:
    """Polls leaderboard.csv until it appears while the sweep still runs; returns the statuses of its rows."""
    deadline = time.time() + timeout_s
    while not board.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None and board.exists(), "no leaderboard.csv while the sweep ran"
    return set(pd.read_csv(board)["status"])


@pytest.mark.slow
def test_a_real_sweep_watched_while_it_runs_and_analysed_at_its_end(tmp_path):
    """`dfsweep run` in the background: leaderboard.csv, status and ls while it runs; at its end the final
    leaderboard, FINISHED, and the analysis PNGs on disk and in the parent run's artifacts."""
    from test_sweep import _space
    from tinydata import write_tiny_set
    data = write_tiny_set(tmp_path / "data", n_real=40, n_fake=12)
    # one trial at a time, for several epochs: the search goes on for a while after the first write
    space = _space(tmp_path, data, num_samples=3, max_concurrent_trials=1)
    cfg = yaml.safe_load(space.read_text())
    cfg["train"]["epochs"] = 6
    space.write_text(yaml.safe_dump(cfg))
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "dfsweep", "run", str(space), "--name", "watched"], cwd=tmp_path,
                            env=ENV, stdout=log, stderr=subprocess.STDOUT)
    sweep = tmp_path / "sweeps" / "watched"
    try:
        # 1. while it runs: the live leaderboard, `status` and `ls`
        seen = _watch(proc, sweep / "leaderboard.csv")
        status, ls = _dfsweep(["status"], tmp_path), _dfsweep(["ls"], tmp_path)
        assert proc.poll() is None, "the sweep ended before status and ls ran"
        assert status.returncode == 0 and ls.returncode == 0, status.stderr + ls.stderr
        # a trial still going: the live board (the final one, written before the driver ends, has none)
        assert seen & {"RUNNING", "PENDING"} and seen <= {"RUNNING", "PENDING", "FINISHED"}
        assert status.stdout.startswith("sweep watched: RUNNING, phase search;")
        assert ls.stdout.splitlines()[1].split()[:3] == ["watched", "(latest)", "RUNNING"]
        assert proc.wait(timeout=600) == 0, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    # 2. at its end: the final leaderboard, FINISHED, and the search's analysis
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert len(board) == 3 and (board["status"] == "FINISHED").all() and "time_s" not in board
    status = _dfsweep(["status", "watched", "--plots"], tmp_path)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("sweep watched: FINISHED, phase done; search trials 3/3 ended, 0 running")
    pngs = sorted(p.name for p in (sweep / "analysis").iterdir())
    assert {"history.png", "parallel_coordinates.png"} <= set(pngs)
    assert f"analysis: history -> {sweep.resolve() / 'analysis' / 'history.png'}" in status.stdout
    # importances need scores that differ: tiny data can give every trial AUC 1.0, and then the run says so
    run_log = (tmp_path / "run.log").read_text()
    assert ("analysis: importances -> " in run_log if "importances.png" in pngs else
            "analysis: no importances plot: every completed trial has the same score" in run_log)
    from mlflow.tracking import MlflowClient
    client = MlflowClient(f"sqlite:///{tmp_path / 'sweeps' / 'mlflow.db'}")
    run_id = json.loads((sweep / "state.json").read_text())["parent_run_id"]
    assert sorted(f.path for f in client.list_artifacts(run_id, "analysis")) == [f"analysis/{p}" for p in pngs]
    row = _dfsweep(["ls"], tmp_path).stdout.splitlines()[1].split()
    assert row[:5] == ["watched", "(latest)", "FINISHED", "done", "3/3"]
