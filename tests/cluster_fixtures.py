"""Real services for the cluster tests, on loopback: a PostgreSQL server, an MLflow tracking server backed by
it, and a 2-node Ray cluster with token auth.

Each lives in its own temp dir and its own process group, and is stopped through that group only: never
`ray stop` (it kills every Ray on the machine) nor a kill by process name.
"""
from __future__ import annotations

import ctypes
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

BIN = Path(sys.executable).parent          # the venv's ray, mlflow, dfsweep
PG_USER_CANDIDATES = ("postgres", "dfsweep-pg")


def free_ports(n: int, host: str = "127.0.0.1") -> List[int]:
    """n distinct ports the kernel had free a moment ago (all bound at once, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# -- process groups ----------------------------------------------------------------------------------
def become_subreaper(on: bool = True) -> None:
    """Orphans of what we start (daemons whose launcher exited) become our children instead of PID 1's,
    so we can reap them; a container's PID 1 often never does, leaving zombies behind. Linux only."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, int(on), 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _proc_stat(pid: int) -> Optional[tuple]:
    """(state, ppid, pgrp, starttime) of a process from /proc, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = text[text.rfind(")") + 2:].split()   # after "(comm)": state ppid pgrp ... (starttime is field 22)
    return f[0], int(f[1]), int(f[2]), int(f[19])


def _live_tree(pgid: int) -> Dict[int, int]:
    """pid -> starttime of the live processes of a process group and all their descendants (Ray's workers
    make process groups of their own)."""
    procs = {int(d[6:]): _proc_stat(int(d[6:])) for d in glob.glob("/proc/[0-9]*")}
    procs = {pid: st for pid, st in procs.items() if st is not None}
    found = {pid for pid, st in procs.items() if st[2] == pgid}
    while True:
        kids = {pid for pid, st in procs.items() if st[1] in found} - found
        if not kids:
            break
        found |= kids
    return {pid: procs[pid][3] for pid in found if procs[pid][0] != "Z"}


def _still_running(pid: int, starttime: int) -> bool:
    st = _proc_stat(pid)
    return st is not None and st[0] != "Z" and st[3] == starttime   # same start time: not a reused pid


def _reap(pids) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:   # not our child: nothing to reap
            pass


def stop_group(pgid: int, grace_s: float = 8.0) -> None:
    """SIGTERM a process group and its descendants, SIGKILL what is left after `grace_s`; reap those that
    ended up our children."""
    targets = _live_tree(pgid)
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        live = [pid for pid, t in targets.items() if _still_running(pid, t)]
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + wait
        while live and time.time() < deadline:
            time.sleep(0.2)
            _reap(targets)
            live = [pid for pid in live if _still_running(pid, targets[pid])]
        if not live:
            break
    _reap(targets)


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# -- PostgreSQL --------------------------------------------------------------------------------------
@dataclass
class Postgres:
    port: int
    user: str
    db: str
    base: Path

    @property
    def url(self) -> str:
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg (3); the dev extras install psycopg2-binary
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.db}"

    def connect(self, db: Optional[str] = None):
        import psycopg2
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=db or self.db)


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: install them with .ci/system-deps")


def _unprivileged_user() -> Optional[pwd.struct_passwd]:
    """initdb and postgres refuse to run as root: as root, run them as `postgres` (the Debian package's
    user) or a system user made for this; as anyone else, as ourselves (None)."""
    if os.geteuid() != 0:
        return None
    for name in PG_USER_CANDIDATES:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    name = PG_USER_CANDIDATES[-1]
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    return pwd.getpwnam(name)


@contextmanager
def postgres_server(user: str = "dfsweep", db: str = "mlflow") -> Iterator[Postgres]:
    """A throwaway PostgreSQL on 127.0.0.1 (trust auth, no fsync) with database `db` owned by `user`."""
    pg_bin = _pg_bin()
    run_as = _unprivileged_user()
    base = Path(tempfile.mkdtemp(prefix="dfsweep-pg-"))   # under /tmp, not pytest's root-only tmp_path
    kw: Dict = dict(cwd=base, env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"})
    if run_as is not None:
        os.chown(base, run_as.pw_uid, run_as.pw_gid)
        kw.update(user=run_as.pw_uid, group=run_as.pw_gid, extra_groups=[])
    data, log = base / "data", base / "postgres.log"
    port = free_ports(1)[0]
    started = False
    try:
        subprocess.run([pg_bin / "initdb", "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-locale",
                        "--no-sync", "--no-instructions"], check=True, capture_output=True, timeout=120, **kw)
        opts = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                f"-c full_page_writes=off")
        r = subprocess.run([pg_bin / "pg_ctl", "-D", data, "-l", log, "-o", opts, "-w", "-t", "60", "start"],
                           capture_output=True, text=True, timeout=90, start_new_session=True, **kw)
        started = True
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {r.stdout}{r.stderr}\n{_tail(log)}")
        pg = Postgres(port, user, db, base)
        conn = pg.connect("postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{db}"')
        conn.close()
        yield pg
    finally:
        if started:
            try:
                postmaster = int((data / "postmaster.pid").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                postmaster = None
            subprocess.run([pg_bin / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True,
                           timeout=60, **kw)
            if postmaster:
                _reap([postmaster])
        shutil.rmtree(base, ignore_errors=True)


# -- MLflow tracking server ----------------------------------------------------------------------------
@dataclass
class MlflowServer:
    url: str
    proc: subprocess.Popen
    log: Path

    def wait_ready(self, timeout_s: float = 120) -> str:
        """Until GET /health answers (the first start migrates the database: seconds)."""
        deadline = time.time() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}:\n{_tail(self.log)}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return self.url
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"mlflow server not healthy after {timeout_s:.0f}s:\n{_tail(self.log)}")
            time.sleep(0.3)


@contextmanager
def mlflow_server(backend_uri: str, artifacts: Path, port: Optional[int] = None) -> Iterator[MlflowServer]:
    """`mlflow server` on 127.0.0.1 over `backend_uri`, lean (one worker, no job runner), on `port` (else a
    free one). It is started, not awaited: call wait_ready() (so something else can start meanwhile)."""
    port = port or free_ports(1)[0]
    artifacts.mkdir(parents=True, exist_ok=True)
    log = artifacts.parent / "mlflow-server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log, "w") as out:
        proc = subprocess.Popen([BIN / "mlflow", "server", "--backend-store-uri", backend_uri,
                                 "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "1"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield MlflowServer(f"http://127.0.0.1:{port}", proc, log)
    finally:
        stop_group(proc.pid)
        proc.wait(timeout=10)


# -- Ray ------------------------------------------------------------------------------------------------
@dataclass
class RayCluster:
    address: str
    ips: List[str]
    temp_dir: Path
    env: Dict[str, str] = field(default_factory=dict)   # what a process needs to join: token auth
    groups: List[int] = field(default_factory=list)      # one process group per node

    def log(self, n: int = 4000) -> str:
        logs = sorted(self.temp_dir.glob("*/session_*/logs/raylet.err")) + sorted(self.temp_dir.glob("*.log"))
        return "\n".join(f"== {p}\n{_tail(p, n)}" for p in logs)


def _ray_start(args: List[str], env: Dict[str, str], log: Path, cluster: RayCluster) -> None:
    with open(log, "w") as out:
        # a new process group: every daemon this `ray start` leaves behind stays in it (and only those)
        proc = subprocess.Popen([BIN / "ray", "start", "--disable-usage-stats", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    cluster.groups.append(proc.pid)
    try:
        rc = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        rc = "timeout"
    if rc != 0:
        raise RuntimeError(f"ray start {' '.join(args)}: {rc}\n{_tail(log)}")


@contextmanager
def ray_cluster(ips=("127.0.0.2", "127.0.0.3"), cpus_per_node: int = 1, memory_gib: float = 3,
                object_store_mib: int = 128, gpus_per_node: int = 0,
                node_env: Optional[List[Dict[str, str]]] = None) -> Iterator[RayCluster]:
    """A head node on ips[0] and a worker node on each other ip, `cpus_per_node` CPUs each, with token auth
    (its own token, in the environment: ~/.ray/auth_token is never written). `node_env[i]`: what node i's
    processes (its raylet, its workers) have in their environment besides."""
    # short: Ray's unix socket paths under <temp dir>/<node>/session_<date>_<pid>/sockets/ must stay < 108 chars
    temp_dir = Path(tempfile.mkdtemp(prefix="dfray-"))
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    full_env = {**os.environ, **env}
    full_env.pop("RAY_ADDRESS", None)
    port = free_ports(1)[0]
    cluster = RayCluster(f"{ips[0]}:{port}", list(ips), temp_dir, env)
    # --num-gpus declares logical GPUs: Ray schedules and assigns them (CUDA_VISIBLE_DEVICES) even on a CPU box
    per_node = ["--num-cpus", str(cpus_per_node), "--num-gpus", str(gpus_per_node),
                "--memory", str(int(memory_gib * 2**30)),
                "--object-store-memory", str(object_store_mib * 2**20)]
    try:
        for i, ip in enumerate(ips):
            # fixed ports that default to well-known numbers would collide between nodes and other clusters
            agent, runtime_env = free_ports(2, ip)
            node = ["--node-ip-address", ip, "--temp-dir", str(temp_dir / f"node{i}"),
                    "--dashboard-agent-listen-port", str(agent), "--runtime-env-agent-port", str(runtime_env),
                    *per_node]
            head = ["--head", "--port", str(port), "--include-dashboard=false"] if i == 0 else ["--address", cluster.address]
            _ray_start(head + node, {**full_env, **(node_env[i] if node_env else {})},
                       temp_dir / f"start-node{i}.log", cluster)
        _wait_for_nodes(cluster, full_env, len(ips))
        yield cluster
    finally:
        for pgid in reversed(cluster.groups):   # workers first, the head (GCS) last
            stop_group(pgid, grace_s=3)         # the GCS ignores SIGTERM for longer than that
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_nodes(cluster: RayCluster, env: Dict[str, str], n: int, timeout_s: float = 60) -> None:
    """Until the GCS counts n alive nodes (a node's `ray start` can return before it registered)."""
    code = (
        "import sys, time, ray\n"
        "ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, logging_level='ERROR')\n"
        "deadline = time.time() + float(sys.argv[3])\n"
        "while sum(x['Alive'] for x in ray.nodes()) < int(sys.argv[2]) and time.time() < deadline:\n"
        "    time.sleep(0.3)\n"
        "print(sum(x['Alive'] for x in ray.nodes()))\n")
    r = subprocess.run([sys.executable, "-c", code, cluster.address, str(n), str(timeout_s)], env=env,
                       capture_output=True, text=True, timeout=timeout_s + 60)
    alive = r.stdout.strip().splitlines()[-1:] or ["?"]
    if r.returncode != 0 or alive[0] != str(n):
        raise RuntimeError(f"ray cluster at {cluster.address}: {alive[0]} of {n} nodes alive\n"
                           f"{r.stderr[-3000:]}\n{cluster.log()}")
