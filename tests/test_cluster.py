"""A sweep on a real 2-node Ray cluster (loopback, token auth), logging to a real MLflow tracking server on a
real PostgreSQL, with Tune's experiment on a `--storage` path outside sweeps/; then --resume through
RAY_ADDRESS and `finalize` against the same server (slow; services in tests/cluster_fixtures.py). Plus a
quick test of where `--storage` puts the experiment."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from cluster_fixtures import (become_subreaper, free_ports, mlflow_server, postgres_server, ray_cluster,
                              stop_group)
from dfsweep.data.shards import CACHE_ENV
from dfsweep.sweep import SweepPaths, _split_location, experiment_location
from gpushare import assert_two_trials_shared_half_a_gpu
from tinydata import write_tiny_set

EXE = str(Path(sys.executable).parent / "dfsweep")
HEAD, WORKER = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    become_subreaper()
    tmp = tmp_path_factory.mktemp("services")
    try:
        with postgres_server() as pg, mlflow_server(pg.url, tmp / "artifacts") as mlflow, \
                ray_cluster((HEAD, WORKER), cpus_per_node=1) as cluster:
            mlflow.wait_ready()      # it booted while the Ray nodes started
            yield SimpleNamespace(pg=pg, mlflow=mlflow.url, ray=cluster)
    finally:
        become_subreaper(False)


def _dfsweep(args, cwd, env, timeout=300):
    r = subprocess.run([EXE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"dfsweep {' '.join(args)}: {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _space(tmp_path, data):
    cfg = {
        "data": {"train": str(data), "image_size": 64, "cache_dir": str(tmp_path / "cache")},
        "model": {"name": "deepfakenet", "width": 0.25},
        "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3},
        # 2 trials at a time, 1 CPU each, on nodes of 1 CPU: the first two are placed on different nodes at once.
        # No actor reuse: a trial this short would otherwise be done before the second node's actor is up, and
        # Tune would hand the next trial to the first node's idle actor instead.
        "sweep": {"confirm": {"top_k": 0}, "num_samples": 4, "max_concurrent_trials": 2, "metric": "auc", "seed": 3,
                  "scheduler": {"name": "fifo"}, "resources_per_trial": {"cpu": 1}, "reuse_actors": False},
        "search": {"train.lr": {"float": [1e-4, 3e-3], "log": True},
                   "augment.preset": {"choice": ["seed", "none"]}},
    }
    p = tmp_path / "space.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _query(pg, sql, *args):
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def _runs(pg, experiment):
    """(run_uuid, status, {tag: value}) of the experiment's live runs, read from PostgreSQL itself."""
    rows = _query(pg, "SELECT r.run_uuid, r.status, t.key, t.value FROM runs r JOIN experiments e "
                      "ON r.experiment_id = e.experiment_id LEFT JOIN tags t ON t.run_uuid = r.run_uuid "
                      "WHERE e.name = %s AND r.lifecycle_stage = 'active'", experiment)
    runs = {}
    for run_id, status, key, value in rows:
        runs.setdefault(run_id, (run_id, status, {}))[2].update({key: value} if key else {})
    return list(runs.values())


def test_experiment_location_default_path_and_uri(tmp_path, monkeypatch):
    paths = SweepPaths(tmp_path / "sweeps", "s")
    assert experiment_location(paths) == str((tmp_path / "sweeps" / "s" / "tune").resolve())
    monkeypatch.chdir(tmp_path)
    assert experiment_location(paths, "shared") == str(tmp_path.resolve() / "shared" / "s")
    uri = experiment_location(paths, "s3://bucket/pre/?region=eu-west-1")
    assert uri == "s3://bucket/pre/s?region=eu-west-1"                        # the name before the query
    assert _split_location(uri) == ("s3://bucket/pre?region=eu-west-1", "s")   # RunConfig(storage_path, name)
    assert _split_location(experiment_location(paths, "gs://bucket")) == ("gs://bucket", "s")
    assert _split_location(str(tmp_path / "x" / "s")) == (str(tmp_path / "x"), "s")


@pytest.mark.slow
def test_sweep_on_two_node_cluster_with_mlflow_server_on_postgres(services, tmp_path):
    data = write_tiny_set(tmp_path / "data", n_real=40, n_fake=12)
    space = _space(tmp_path, data)
    storage = tmp_path / "shared-storage"   # what every node of a real cluster would mount
    env = {**os.environ, **services.ray.env}
    for k in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI"):
        env.pop(k, None)

    # 1. the sweep, on the cluster, into the tracking server and the storage path
    r = _dfsweep(["run", str(space), "--name", "cl", "--address", services.ray.address,
                  "--tracking-uri", services.mlflow, "--storage", str(storage)], tmp_path, env)
    assert f"ray: cluster at {services.ray.address}: 2 nodes ({HEAD}, {WORKER})" in r.stdout
    sweep = tmp_path / "sweeps" / "cl"
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert len(board) == 4 and (board["status"] == "FINISHED").all(), board.to_string()
    assert set(board["node_ip"]) == {HEAD, WORKER}, r.stdout   # trials (and the data) reached both nodes
    assert "node_ip" in r.stdout                              # printed when trials ran on several nodes
    state = json.loads((sweep / "state.json").read_text())
    assert state["storage"] == str(storage / "cl") and state["tracking_uri"] == services.mlflow
    assert state["address"] == services.ray.address
    assert (storage / "cl" / "tuner.pkl").is_file() and not (sweep / "tune").exists()
    assert len(list((storage / "cl").glob("trial_*/checkpoint_*"))) >= 4
    assert (sweep / "best.yaml").is_file() and (sweep / "optuna.db").is_file()

    # 2. every run is in PostgreSQL: the parent and one FINISHED child per trial, with per-epoch metrics
    runs = _runs(services.pg, "cl")
    parents = [x for x in runs if "mlflow.parentRunId" not in x[2]]
    assert len(parents) == 1 and parents[0][1] == "FINISHED"
    children = [x for x in runs if x[2].get("mlflow.parentRunId") == parents[0][0]]
    assert sorted(x[2]["dfsweep.trial_id"] for x in children) == sorted(board["trial_id"].astype(str))
    assert {x[1] for x in children} == {"FINISHED"}
    for run_id, _, _ in children:
        steps = _query(services.pg, "SELECT step FROM metrics WHERE run_uuid = %s AND key = 'auc' ORDER BY step",
                       run_id)
        assert [x for (x,) in steps] == [1, 2]

    # 3. --resume via RAY_ADDRESS, state from --storage as recorded: nothing left to run, nothing run again
    r = _dfsweep(["run", str(space), "--resume", "--name", "cl"], tmp_path, {**env, "RAY_ADDRESS": services.ray.address})
    assert f"ray: cluster at {services.ray.address}: 2 nodes" in r.stdout
    assert f"resuming sweep cl from {storage / 'cl'}" in r.stdout
    assert " started: " not in r.stdout and " epoch " not in r.stdout
    assert len(pd.read_csv(sweep / "leaderboard.csv")) == 4
    runs = _runs(services.pg, "cl")
    assert len(runs) == 5 and {x[1] for x in runs} == {"FINISHED"}

    # 4. finalize reads best.yaml and state.json: its run lands under the sweep's parent on the server
    test_dir = write_tiny_set(tmp_path / "test", n_real=6, n_fake=2, seed=1)
    _dfsweep(["finalize", "cl", "--test", str(test_dir / "real"), "--set", "finalize.epochs=1",
              "--set", "finalize.finetune_epochs=1"], tmp_path, env)
    assert (sweep / "final" / "submission.csv").is_file()
    final = [x for x in _runs(services.pg, "cl") if x[2].get("dfsweep.stage") == "finalize"]
    assert len(final) == 1 and final[0][1] == "FINISHED" and final[0][2]["mlflow.parentRunId"] == parents[0][0]
    versions = _query(services.pg, "SELECT count(*) FROM model_versions WHERE name = 'cl' AND run_id = %s",
                      final[0][0])
    assert versions == [(1,)]


@pytest.mark.slow
def test_tracking_server_stopped_and_restarted_mid_sweep_loses_nothing(services, tmp_path):
    """The MLflow server (on the cluster test's PostgreSQL) is stopped while trials train and started again on
    the same port: the sweep goes on, and what it could not log meanwhile reaches the server once it is back."""
    data = write_tiny_set(tmp_path / "data", n_real=40, n_fake=12)
    space = _space(tmp_path, data)
    cfg = yaml.safe_load(space.read_text())
    cfg["train"]["epochs"] = 20
    cfg["sweep"].update(num_samples=3, max_concurrent_trials=1, resources_per_trial={"cpu": 1})
    space.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    port = free_ports(1)[0]
    log = tmp_path / "run.log"
    with mlflow_server(services.pg.url, tmp_path / "artifacts", port=port) as first:
        url = first.wait_ready()
        with open(log, "w") as out:
            proc = subprocess.Popen([EXE, "run", str(space), "--name", "tsl", "--tracking-uri", url],
                                    cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_for(lambda: " epoch 3/20" in log.read_text(), proc, log)
            stop_group(first.proc.pid)                       # the server goes away mid-trial
            _wait_for(lambda: "did not answer" in log.read_text(), proc, log)
            _wait_for(lambda: log.read_text().count(" finished [") >= 1, proc, log)   # a trial ends meanwhile
            with mlflow_server(services.pg.url, tmp_path / "artifacts", port=port) as second:
                second.wait_ready()
                assert proc.wait(timeout=400) == 0, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert "answers again" in text and "incomplete there" not in text, text[-3000:]
    board = pd.read_csv(tmp_path / "sweeps" / "tsl" / "leaderboard.csv")
    runs = _runs(services.pg, "tsl")
    parents = [x for x in runs if "mlflow.parentRunId" not in x[2]]
    assert len(parents) == 1 and parents[0][1] == "FINISHED"
    children = [x for x in runs if x[2].get("mlflow.parentRunId") == parents[0][0]]
    assert sorted(x[2]["dfsweep.trial_id"] for x in children) == sorted(board["trial_id"].astype(str))
    assert {x[1] for x in children} == {"FINISHED"}, children
    for run_id, _, tags in children:        # every epoch there once, those logged while it was down included
        steps = _query(services.pg, "SELECT step FROM metrics WHERE run_uuid = %s AND key = 'auc' ORDER BY step",
                       run_id)
        assert [x for (x,) in steps] == list(range(1, 21)), tags["dfsweep.trial_id"]


def _wait_for(ready, proc, log: Path, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)


def test_a_cluster_run_retries_a_crashed_trial_by_default():
    from dfsweep.sweep import retries
    assert retries(None, "127.0.0.2:6379") == 1 and retries(None, None) == 0 and retries(None, "local") == 0
    assert retries(0, "127.0.0.2:6379") == 0 and retries(3, None) == 3


def _running_on(log: Path, n: int) -> bool:
    """n trials at epoch 2 or later at once (none finished yet): on two 1-CPU nodes, one per node."""
    lines = log.read_text().splitlines()
    at2 = {l.split()[2] for l in lines if " epoch 2/" in l}
    done = {l.split()[2] for l in lines if " finished [" in l}
    return len(at2 - done) >= n


@pytest.mark.slow
def test_worker_node_lost_mid_sweep_its_trial_continues_on_the_other_node(tmp_path):
    """kill -9 every process of the worker node while a trial trains there: with the default max_failures of
    a cluster run, the trial is retried from its last checkpoint on the head node and the sweep completes."""
    become_subreaper()
    try:
        with ray_cluster((HEAD, WORKER), cpus_per_node=1) as cluster:
            data = write_tiny_set(tmp_path / "data", n_real=40, n_fake=12)
            space = _space(tmp_path, data)
            cfg = yaml.safe_load(space.read_text())
            cfg["train"]["epochs"] = 25
            cfg["sweep"]["num_samples"] = 3
            space.write_text(yaml.safe_dump(cfg))
            env = {**os.environ, **cluster.env}
            env.pop("RAY_ADDRESS", None)
            log = tmp_path / "run.log"
            with open(log, "w") as out:
                proc = subprocess.Popen([EXE, "run", str(space), "--name", "lost", "--address", cluster.address],
                                        cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                deadline = time.time() + 240
                while not _running_on(log, 2):
                    assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
                    time.sleep(0.1)
                stop_group(cluster.groups[1], grace_s=0)        # the worker node, as a crash: SIGKILL
                assert proc.wait(timeout=400) == 0, log.read_text()[-3000:]
            finally:
                if proc.poll() is None:
                    proc.kill()
            text = log.read_text()
    finally:
        become_subreaper(False)
    retried = [l.split()[2] for l in text.splitlines() if "retrying from its last checkpoint" in l]
    assert len(retried) == 1, text[-3000:]
    # it went on from where its checkpoint was, not from epoch 1
    lines = text.splitlines()
    cut = next(i for i, l in enumerate(lines) if "retrying from its last checkpoint" in l)
    before, after = ([int(re.search(r" epoch (\d+)/", l).group(1)) for l in part
                      if l.split()[2:3] == retried and " epoch " in l] for part in (lines[:cut], lines[cut:]))
    assert before and 1 < after[0] <= before[-1] + 1 and after[-1] == 25, (before, after)
    board = pd.read_csv(tmp_path / "sweeps" / "lost" / "leaderboard.csv")
    assert len(board) == 3 and (board["epochs_run"] == 25).all(), board.to_string()
    client, runs = _mlflow_runs(tmp_path)
    children = [x for x in runs if "mlflow.parentRunId" in x.data.tags]
    assert sorted(x.data.tags["dfsweep.trial_id"] for x in children) == sorted(board["trial_id"].astype(str))
    assert "RUNNING" not in {x.info.status for x in runs}
    run = next(x for x in children if x.data.tags["dfsweep.trial_id"] == retried[0])
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "auc")) == list(range(1, 26))
    row = board.set_index(board["trial_id"].astype(str)).loc[retried[0]]
    assert row["node_ip"] == HEAD and row["status"] == "TRIAL_RETRIED", board.to_string()


@pytest.mark.slow
def test_nodes_with_caches_of_their_own_decode_a_share_each_and_copy_the_rest(tmp_path):
    """Each node has a cache folder of its own (DFSWEEP_CACHE_DIR, as machines without shared storage have):
    Ray tasks on both nodes decode the shards, each into its node's folder, and a trial first copies what its
    node lacks from the node that built it. Both folders end with every shard, byte for byte the same."""
    become_subreaper()
    caches = [tmp_path / "head-cache", tmp_path / "worker-cache"]
    try:
        with ray_cluster((HEAD, WORKER), cpus_per_node=1,
                         node_env=[{CACHE_ENV: str(c)} for c in caches]) as cluster:
            data = write_tiny_set(tmp_path / "data", n_real=45, n_fake=15)
            space = _space(tmp_path, data)
            cfg = yaml.safe_load(space.read_text())
            cfg["data"]["shard_mib"] = 6 * 64 * 64 * 3 / 2**20          # 6 images a shard: 10 shards
            cfg["sweep"]["num_samples"] = 2
            space.write_text(yaml.safe_dump(cfg))
            env = {**os.environ, **cluster.env, CACHE_ENV: str(caches[0])}    # the driver runs on the head node
            env.pop("RAY_ADDRESS", None)
            _dfsweep(["run", str(space), "--name", "local", "--address", cluster.address], tmp_path, env)
    finally:
        become_subreaper(False)
    board = pd.read_csv(tmp_path / "sweeps" / "local" / "leaderboard.csv")
    assert set(board["node_ip"]) == {HEAD, WORKER} and (board["status"] == "FINISHED").all(), board.to_string()
    assert not (tmp_path / "cache" / "decoded").exists()               # data.cache_dir is not where they went
    shards = [{p.name: p.read_bytes() for p in (c / "decoded" / "64px").glob("*.npy")} for c in caches]
    assert len(shards[0]) == 10 and shards[0] == shards[1]
    # each node decoded a share (a shard's record names the node that built it, and travels with its copy), so
    # each node's trial copied the others'
    records = [{p.name: json.loads(p.read_text()) for p in (c / "decoded" / "64px").glob("*.json")} for c in caches]
    assert records[0] == records[1]
    assert len({r["node"] for r in records[0].values()}) == 2, records[0]


def _mlflow_runs(cwd):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(f"sqlite:///{Path(cwd, 'sweeps', 'mlflow.db')}")
    return client, [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


@pytest.mark.slow
def test_fractional_gpu_share_reaches_each_trial(tmp_path):
    """`resources_per_trial.gpu: 0.5` on a node with one (logical) GPU: both trials hold half of it at the
    same time, and each sees that GPU. On this CPU machine the trials then train on the CPU."""
    become_subreaper()
    try:
        with ray_cluster(("127.0.0.2",), cpus_per_node=2, gpus_per_node=1) as cluster:
            data = write_tiny_set(tmp_path / "data", n_real=30, n_fake=10)
            space = _space(tmp_path, data)
            cfg = yaml.safe_load(space.read_text())
            cfg["train"]["epochs"] = 40     # long enough that the second trial starts before the first ends
            cfg["sweep"].update({"num_samples": 2, "resources_per_trial": {"cpu": 1, "gpu": 0.5}})
            space.write_text(yaml.safe_dump(cfg))
            env = {**os.environ, **cluster.env}
            env.pop("RAY_ADDRESS", None)
            _dfsweep(["run", str(space), "--name", "gpu", "--address", cluster.address], tmp_path, env)
    finally:
        become_subreaper(False)
    assert_two_trials_shared_half_a_gpu(tmp_path / "sweeps" / "gpu")
