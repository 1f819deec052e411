"""End-to-end sweeps with real Ray, Optuna and MLflow (SQLite) on tiny real image folders."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from proctools import alive, descendants
from gpushare import assert_two_trials_shared_half_a_gpu
from tinydata import write_tiny_set

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).parent / "dfsweep")


def _space(tmp_path, data, **sweep):
    cfg = {
        "data": {"train": str(data), "image_size": 64, "cache_dir": str(tmp_path / "cache")},
        "model": {"name": "deepfakenet", "width": 0.25},
        "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3},
        "sweep": {"num_samples": 4, "max_concurrent_trials": 2, "metric": "auc", "seed": 3,
                  "scheduler": {"name": "fifo"}, "confirm": {"top_k": 0}, **sweep},
        "search": {
            "train.lr": {"float": [1e-4, 3e-3], "log": True},
            "augment.preset": {"choice": ["seed", "none"]},
            "augment.blur_p": {"float": [0.0, 0.5], "when": {"augment.preset": "seed"}},
        },
    }
    p = tmp_path / "space.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _dfsweep(args, cwd, timeout=600, **kw):
    return subprocess.run([EXE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)


def _mlflow_runs(cwd):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(f"sqlite:///{Path(cwd, 'sweeps', 'mlflow.db')}")
    runs = []
    for e in client.search_experiments():
        runs += client.search_runs([e.experiment_id], max_results=1000)
    return client, runs


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_set(tmp_path / "data", n_real=40, n_fake=12)


def test_sweep_end_to_end(tmp_path, tiny):
    space = _space(tmp_path, tiny)
    r = _dfsweep(["run", str(space), "--name", "e2e"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "\nleaderboard (" in r.stdout and "started" in r.stdout
    assert "WARNING" not in r.stdout + r.stderr         # no library's log lines amid the progress display
    sweep = tmp_path / "sweeps" / "e2e"
    assert (tmp_path / "sweeps" / "latest").resolve() == sweep.resolve()
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert len(board) == 4 and (board["status"] == "FINISHED").all()
    assert list(board["auc"]) == sorted(board["auc"], reverse=True)
    best = yaml.safe_load((sweep / "best.yaml").read_text())
    assert best["train"]["lr"] == pytest.approx(board.iloc[0]["param.train.lr"])
    client, runs = _mlflow_runs(tmp_path)
    parents = [x for x in runs if "mlflow.parentRunId" not in x.data.tags]
    children = [x for x in runs if x.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 4
    assert {c.info.status for c in children} == {"FINISHED"} and parents[0].info.status == "FINISHED"
    for c in children:
        hist = client.get_metric_history(c.info.run_id, "auc")
        assert sorted(m.step for m in hist) == [1, 2]
        assert "train.lr" in c.data.params


def test_search_then_confirmation_then_best_yaml_from_the_confirmed_winner(tmp_path, tiny):
    """The recipe row first, ASHA on the objective, the top 2 and the recipe re-trained with new seeds as
    trials of the same experiment and MLflow parent, and best.yaml from the best confirmed mean."""
    space = _space(tmp_path, tiny, num_samples=5, scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
                   confirm={"top_k": 2, "seeds": 2})
    cfg = yaml.safe_load(space.read_text())
    cfg["train"]["epochs"] = 3
    space.write_text(yaml.safe_dump(cfg))
    r = _dfsweep(["run", str(space), "--name", "conf"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "WARNING" not in r.stdout + r.stderr
    out = r.stdout
    assert "started: the recipe (the YAML's own values): " in out and "search over: confirming" in out
    sweep = tmp_path / "sweeps" / "conf"
    board = pd.read_csv(sweep / "leaderboard.csv")
    search, runs = board[board["role"] != "confirm"], board[board["role"] == "confirm"]
    assert len(search) == 5 and search["rank"].tolist() == [1, 2, 3, 4, 5]
    recipe = search[search["role"] == "recipe"].iloc[0]
    assert recipe["param.train.lr"] == 1e-3 and recipe["param.augment.preset"] == "seed"
    assert recipe["param.augment.blur_p"] == 0.3
    # 1. who was confirmed: the search's top 2 by objective (best epoch), and the recipe
    chosen = set(search.sort_values("auc", ascending=False)["trial_id"][:2]) | {recipe["trial_id"]}
    assert set(runs["confirms"]) == chosen and len(runs) == 2 * len(chosen)
    assert (runs["status"] == "FINISHED").all() and (runs["epochs_run"] == 3).all()
    assert sorted(runs.groupby("confirms")["seed_offset"].apply(sorted).tolist()) == [[1, 2]] * len(chosen)
    # 2. the winner is the best confirmed mean; best.yaml is its config with the YAML's own seed
    confirmed = search[search["confirm_n"] > 0]
    assert set(confirmed["trial_id"]) == chosen and (confirmed["confirm_n"] == 2).all()
    assert confirmed["confirm_mean"].tolist() == sorted(confirmed["confirm_mean"], reverse=True)
    assert search.iloc[0]["trial_id"] == confirmed.iloc[0]["trial_id"]
    for tid, grp in runs.groupby("confirms"):
        assert confirmed.set_index("trial_id").loc[tid, "confirm_mean"] == pytest.approx(grp["auc"].mean())
    best = yaml.safe_load((sweep / "best.yaml").read_text())
    assert best["train"]["lr"] == pytest.approx(search.iloc[0]["param.train.lr"]) and best["train"]["seed"] == 42
    assert "confirmed auc" in (sweep / "best.yaml").read_text().splitlines()[0]
    # 3. intervals on every score, and the verdict in words
    assert (search["auc_lo"] <= search["auc"]).all() and (search["auc"] <= search["auc_hi"]).all()
    assert f"winner: {search.iloc[0]['trial_id']}" in out
    assert "P(winner better)" in out and ("separated" in out or "tied within noise" in out)
    # 4. Optuna was told each search trial's best epoch (what the leaderboard ranks), not its last
    import optuna
    study = optuna.load_study(study_name="conf", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert sorted(t.value for t in study.trials) == pytest.approx(sorted(search["auc"]))
    # 5. MLflow: every trial and run nested under one parent, confirmation runs tagged as such
    client, mruns = _mlflow_runs(tmp_path)
    parents = [x for x in mruns if "mlflow.parentRunId" not in x.data.tags]
    children = [x for x in mruns if x.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == len(board)
    tagged = [c for c in children if c.data.tags.get("dfsweep.role") == "confirm"]
    assert len(tagged) == len(runs) and {c.data.tags["dfsweep.confirms"] for c in tagged} == chosen
    assert {c.info.status for c in children} == {"FINISHED"}
    assert "auc_lo" in children[0].data.metrics and "objective" in children[0].data.metrics
    assert "best_confirm_mean" in parents[0].data.metrics


def test_kill_9_during_confirmation_then_resume_completes_it(tmp_path, tiny):
    space = _space(tmp_path, tiny, num_samples=3, max_concurrent_trials=1, confirm={"top_k": 1, "seeds": 3})
    cfg = yaml.safe_load(space.read_text())
    cfg["train"]["epochs"] = 8
    space.write_text(yaml.safe_dump(cfg))

    def confirming(lines):   # a confirmation run is under way (its second epoch reported)
        ids = [_trial(l) for l in lines if " started: confirms " in l]
        return bool(ids) and any(_trial(l) == ids[0] and " epoch 2/" in l for l in lines)

    log1 = _kill_9_when(confirming, space, "kc", tmp_path)
    assert (tmp_path / "sweeps" / "kc" / "phase").read_text() in ("confirm", "done")
    finished_before = [_trial(l) for l in log1.read_text().splitlines() if " finished [" in l]

    r = _dfsweep(["run", str(space), "--resume"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    retrained = [_trial(l) for l in r.stdout.splitlines() if " started: " in l or " epoch " in l]
    assert not set(retrained) & set(finished_before), (retrained, finished_before)
    board = pd.read_csv(tmp_path / "sweeps" / "kc" / "leaderboard.csv")
    runs = board[board["role"] == "confirm"]
    n_chosen = runs["confirms"].nunique()
    assert n_chosen in (1, 2) and len(runs) == 3 * n_chosen            # top 1 and the recipe, 3 seeds each
    assert (runs["status"] == "FINISHED").all() and (runs["epochs_run"] == 8).all()
    assert (tmp_path / "sweeps" / "kc" / "best.yaml").is_file() and "winner: " in r.stdout
    _, mruns = _mlflow_runs(tmp_path)
    children = [x for x in mruns if "mlflow.parentRunId" in x.data.tags]
    assert sorted(x.data.tags["dfsweep.trial_id"] for x in children) == sorted(board["trial_id"].astype(str))
    assert {x.info.status for x in children} == {"FINISHED"}


def test_same_seed_same_sampled_configs(tmp_path, tiny):
    space = _space(tmp_path, tiny, num_samples=3, max_concurrent_trials=1)
    params = []
    for name in ("a", "b"):
        r = _dfsweep(["run", str(space), "--name", name, "--set", "train.epochs=1"], tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        # every cell as written (an inactive conditional parameter is empty or "-", not a float)
        board = pd.read_csv(tmp_path / "sweeps" / name / "leaderboard.csv", dtype=str, keep_default_na=False)
        cols = sorted(c for c in board if c.startswith("param."))
        params.append(sorted(map(tuple, board[cols].values.tolist())))
    assert params[0] == params[1]


def test_failing_trial_does_not_stop_the_sweep(tmp_path, tiny):
    space = _space(tmp_path, tiny, num_samples=4, max_concurrent_trials=2)
    cfg = yaml.safe_load(space.read_text())
    cfg["search"] = {"train.lr": {"choice": [1e-3, 1e25]}}   # 1e25 diverges: loss becomes NaN
    cfg["train"]["epochs"] = 3
    space.write_text(yaml.safe_dump(cfg))
    r = _dfsweep(["run", str(space), "--name", "fail"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    board = pd.read_csv(tmp_path / "sweeps" / "fail" / "leaderboard.csv")
    assert len(board) == 4
    failed = board[board["status"] == "ERROR"]
    assert len(failed) >= 1 and (failed["param.train.lr"] == 1e25).all()
    assert (board[board["status"] != "ERROR"]["param.train.lr"] == 1e-3).all()
    _, runs = _mlflow_runs(tmp_path)
    by_status = {}
    for x in runs:
        if "mlflow.parentRunId" in x.data.tags:
            by_status.setdefault(x.info.status, []).append(x)
    assert len(by_status.get("FAILED", [])) == len(failed)
    assert all("loss became" in x.data.tags.get("error", "") for x in by_status["FAILED"])


def _trial(line: str) -> str:
    """The trial name in a progress line `[   12s] <trial> ...` ("" for any other line)."""
    m = re.match(r"\[\s*\d+s\] (\S+) ", line)
    return m.group(1) if m else ""


def _kill_9_when(ready, space, name, cwd):
    """Start `dfsweep run` in its own process group; kill -9 the group (the driver and the Ray it started, like
    a crash) as soon as `ready(output lines)`; return the output's path."""
    log = cwd / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([EXE, "run", str(space), "--name", name], cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not ready(log.read_text().splitlines()):
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return log


def _epochs_seen(lines) -> dict:
    """trial -> the epochs its progress lines reported, in order."""
    seen = {}
    for l in lines:
        m = re.search(r" epoch (\d+)/", l)
        if m and _trial(l):
            seen.setdefault(_trial(l), []).append(int(m.group(1)))
    return seen


def test_kill_9_then_resume_loses_and_repeats_nothing(tmp_path, tiny):
    space = _space(tmp_path, tiny, num_samples=6, max_concurrent_trials=2)
    cfg = yaml.safe_load(space.read_text())
    cfg["train"]["epochs"] = 12
    space.write_text(yaml.safe_dump(cfg))

    def midway(lines):      # two trials finished and another is at least 3 epochs in
        done = {_trial(l) for l in lines if " finished [" in l}
        return len(done) >= 2 and any(t not in done and max(e) >= 3 for t, e in _epochs_seen(lines).items())

    log1 = _kill_9_when(midway, space, "k9", tmp_path)
    lines1 = log1.read_text().splitlines()
    finished_before = {_trial(l) for l in lines1 if " finished [" in l}
    cut = {t: max(e) for t, e in _epochs_seen(lines1).items() if t not in finished_before and max(e) >= 3}
    assert len(finished_before) >= 2 and cut

    r = _dfsweep(["run", str(space), "--resume"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    lines2 = r.stdout.splitlines()
    restarted = [_trial(l) for l in lines2 if " started: " in l or " epoch " in l or " resumed " in l]
    assert not set(restarted) & finished_before, (restarted, finished_before)
    # a trial cut off midway continued from its last checkpoint, not from epoch 1
    after = _epochs_seen(lines2)
    for t, last in cut.items():
        assert any(l.startswith("[") and f"{t} resumed from its last checkpoint" in l for l in lines2), t
        assert 1 < after[t][0] <= last + 1 and after[t][-1] == 12, (t, last, after[t])

    board = pd.read_csv(tmp_path / "sweeps" / "k9" / "leaderboard.csv")
    assert len(board) == 6 and (board["status"] == "FINISHED").all() and (board["epochs_run"] == 12).all()
    assert board["trial_id"].is_unique
    client, runs = _mlflow_runs(tmp_path)
    children = [x for x in runs if "mlflow.parentRunId" in x.data.tags]
    trial_ids = [x.data.tags["dfsweep.trial_id"] for x in children]
    assert sorted(trial_ids) == sorted(board["trial_id"].astype(str))      # one run per trial, no duplicates
    assert {x.info.status for x in children} == {"FINISHED"}
    for x in children:      # each epoch logged once: none lost to the kill, none trained and logged twice
        steps = sorted(m.step for m in client.get_metric_history(x.info.run_id, "val_loss"))
        assert steps == list(range(1, 13)), (x.data.tags["dfsweep.trial_id"], steps)
    parents = [x for x in runs if "mlflow.parentRunId" not in x.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


def _wait_for_line(log: Path, text: str, proc, timeout: float = 300) -> None:
    """Until `text` appears in the output file; fails (not hangs) when the run ends or the deadline passes."""
    deadline = time.time() + timeout
    while text not in log.read_text():
        assert proc.poll() is None, f"the sweep ended before {text!r}: {log.read_text()[-2000:]}"
        assert time.time() < deadline, f"no {text!r} within {timeout:.0f}s"
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["ctrl_c", "sigterm"])
def test_told_to_stop_closes_cleanly_prints_resume_and_resume_completes(tmp_path, tiny, how):
    """Ctrl-C (SIGINT to the terminal's process group) or `kill` (SIGTERM to dfsweep alone): exit 130, the
    resume line, the Ray processes this sweep started gone, no MLflow run left RUNNING."""
    space = _space(tmp_path, tiny, num_samples=4, max_concurrent_trials=1)
    cfg = yaml.safe_load(space.read_text())
    cfg["train"]["epochs"] = 30
    space.write_text(yaml.safe_dump(cfg))
    log = tmp_path / "cc.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([EXE, "run", str(space), "--name", "cc"], cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_line(log, " epoch 2/30", proc)
        started = descendants(proc.pid)         # its own Ray: GCS, raylet, workers (not other tests' Rays)
        assert any("raylet" in n for n in _names(started)), _names(started)
        if how == "ctrl_c":
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        else:
            os.kill(proc.pid, signal.SIGTERM)   # `kill`, systemd: the driver alone
        assert proc.wait(timeout=120) == 130, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert f"resume with: dfsweep run {space} --resume --name cc" in text
    assert "Traceback" not in text and "SIGTERM received" not in text
    deadline = time.time() + 30
    while alive(started) and time.time() < deadline:
        time.sleep(0.5)
    assert not alive(started), _names(alive(started))
    _, runs = _mlflow_runs(tmp_path)
    assert len(runs) >= 2 and "RUNNING" not in {x.info.status for x in runs}
    if how == "sigterm":
        return          # resuming is the same path for both; once is enough

    r = _dfsweep(["run", str(space), "--resume", "--name", "cc"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    board = pd.read_csv(tmp_path / "sweeps" / "cc" / "leaderboard.csv")
    assert len(board) == 4 and (board["status"] == "FINISHED").all() and (board["epochs_run"] == 30).all()
    _, runs = _mlflow_runs(tmp_path)
    children = [x for x in runs if "mlflow.parentRunId" in x.data.tags]
    assert len(children) == 4 and {x.info.status for x in children} == {"FINISHED"}


def _names(pids) -> list:
    names = []
    for p in pids:
        try:
            names.append(Path(f"/proc/{p}/comm").read_text().strip())
        except OSError:
            pass
    return names


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_fractional_gpu_trials_train_on_the_gpu(tmp_path, tiny):
    """`resources_per_trial.gpu: 0.5` on a real GPU: two trials share it at once and both train on CUDA."""
    space = _space(tmp_path, tiny, num_samples=2, max_concurrent_trials=2,
                   resources_per_trial={"cpu": 1, "gpu": 0.5})
    cfg = yaml.safe_load(space.read_text())
    cfg["train"]["epochs"] = 3
    space.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "dfsweep", "run", str(space), "--name", "gpu"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    progress = assert_two_trials_shared_half_a_gpu(tmp_path / "sweeps" / "gpu")
    assert pd.read_csv(tmp_path / "sweeps" / "gpu" / "leaderboard.csv")["on_cuda"].all()
    assert all((df["on_cuda"] == 1).all() for df in progress)


def test_resume_or_start_starts_a_new_sweep_then_continues_it(tmp_path, tiny):
    """What a retried job runs: the first call starts the named sweep, the same call again resumes it."""
    space = _space(tmp_path, tiny, num_samples=2, max_concurrent_trials=1)
    args = ["run", str(space), "--name", "job", "--resume-or-start", "--set", "train.epochs=1"]
    first = _dfsweep(args, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert " started: " in first.stdout and "resuming sweep" not in first.stdout
    again = _dfsweep(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming sweep job" in again.stdout and " started: " not in again.stdout
    assert len(pd.read_csv(tmp_path / "sweeps" / "job" / "leaderboard.csv")) == 2
    r = _dfsweep(["run", str(space), "--resume-or-start"], tmp_path)
    assert r.returncode == 2 and "--resume-or-start needs --name" in r.stderr
