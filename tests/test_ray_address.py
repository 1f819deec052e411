"""A cluster that is not there: one line and exit 2 within seconds, before any decoding or writing."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dfsweep.errors import DfsweepError
from dfsweep.ray_address import check_reachable
from tinydata import write_tiny_set
from uitools import free_port

EXE = str(Path(sys.executable).parent / "dfsweep")


@pytest.mark.parametrize("address, needle", [
    ("127.0.0.1:{free}", "connection refused"),
    ("no-such-host.invalid:6379", "host 'no-such-host.invalid' not found"),
    ("10.0.0.5", "not HOST:PORT"),
    ("10.0.0.5:99999", "not HOST:PORT"),
])
def test_an_address_with_nothing_behind_it_is_one_line(address, needle):
    with pytest.raises(DfsweepError, match=needle):
        check_reachable(address.format(free=free_port()))


def test_a_listening_port_passes_the_probe():
    with socket.create_server(("127.0.0.1", 0)) as srv:
        check_reachable(f"127.0.0.1:{srv.getsockname()[1]}")


def _cli(tmp_path, args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(env_extra or {})
    t0 = time.time()
    r = subprocess.run([EXE, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    return r, time.time() - t0


def _space(tmp_path):
    data = write_tiny_set(tmp_path / "data", n_real=20, n_fake=6)
    cfg = {"data": {"train": str(data), "image_size": 64, "cache_dir": str(tmp_path / "cache")},
           "sweep": {"num_samples": 1},
           "search": {"train.lr": {"float": [1e-4, 1e-3], "log": True}}}
    p = tmp_path / "space.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _assert_one_line_nothing_written(tmp_path, r, wall, address, needle, limit_s):
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("dfsweep: error: ") and address in lines[0], r.stderr
    assert needle in lines[0], lines[0]
    assert wall < limit_s, wall
    assert "data:" not in r.stdout                          # nothing decoded ...
    assert not (tmp_path / "cache").exists()
    assert not any((tmp_path / "sweeps").glob("fresh*"))   # ... and no sweep folder


@pytest.mark.slow
@pytest.mark.parametrize("listening, needle, limit_s", [
    (False, "connection refused", 15),
    (True, "no Ray head replied", 40),       # accepts, never answers: Ray alone would wait for ever
])
def test_run_on_an_address_without_a_ray_head_ends_in_seconds(tmp_path, listening, needle, limit_s):
    space = _space(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        address = f"127.0.0.1:{port}" if listening else f"127.0.0.9:{free_port()}"
        r, wall = _cli(tmp_path, ["run", str(space), "--name", "fresh", "--address", address])
    _assert_one_line_nothing_written(tmp_path, r, wall, address, needle, limit_s)


@pytest.mark.slow
def test_resume_on_the_recorded_address_that_is_gone_ends_in_seconds(tmp_path):
    space = _space(tmp_path)
    sweep = tmp_path / "sweeps" / "fresh-k"
    sweep.mkdir(parents=True)
    (sweep / "sweep.yaml").write_text(space.read_text())
    address = f"127.0.0.9:{free_port()}"
    (sweep / "state.json").write_text(json.dumps({"address": address, "status": "RUNNING"}))
    before = sorted(p.name for p in sweep.iterdir())
    r, wall = _cli(tmp_path, ["run", str(space), "--resume", "--name", "fresh-k"])
    assert r.returncode == 2 and address in r.stderr and "connection refused" in r.stderr, r.stderr
    assert wall < 15 and "data:" not in r.stdout
    assert sorted(p.name for p in sweep.iterdir()) == before       # the sweep's records untouched
