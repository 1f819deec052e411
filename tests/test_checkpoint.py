import os
import signal
import subprocess
import sys

import pytest
import torch

from dfsweep.checkpoint import atomic_write_bytes, load_checkpoint, save_checkpoint
from dfsweep.errors import DfsweepError


def test_roundtrip_with_weights_only(tmp_path):
    p = save_checkpoint(tmp_path / "m.pth", {"w": torch.ones(2)}, {"train": {"lr": 1e-3}, "data": {"x": (1, 2)}}, 0.37,
                        {"auc": 0.9}, stage=1)
    raw = torch.load(p, weights_only=True)
    assert raw["threshold"] == pytest.approx(0.37) and raw["config"]["data"]["x"] == [1, 2] and raw["stage"] == 1
    assert torch.equal(load_checkpoint(p)["state_dict"]["w"], torch.ones(2))


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    evil = tmp_path / "evil.pth"
    marker = tmp_path / "pwned"
    torch.save({"format": "dfsweep-checkpoint-v1", "x": _Payload(str(marker))}, evil)
    assert not marker.exists()
    with pytest.raises(DfsweepError, match="refused to load"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "a.pth").write_text("hello")
    with pytest.raises(DfsweepError, match="not a dfsweep checkpoint"):
        load_checkpoint(tmp_path / "a.pth")
    torch.save({"state_dict": {}}, tmp_path / "b.pth")
    with pytest.raises(DfsweepError, match="not a dfsweep checkpoint"):
        load_checkpoint(tmp_path / "b.pth")
    with pytest.raises(DfsweepError, match="not found"):
        load_checkpoint(tmp_path / "c.pth")


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "submission.csv"
    target.write_text("old,complete\n")

    def half_then_crash(f):
        f.write(b"id,label\n1,")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        atomic_write_bytes(target, half_then_crash)
    assert target.read_text() == "old,complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["submission.csv"]


def test_atomic_write_survives_kill_9_mid_write(tmp_path):
    target = tmp_path / "submission.csv"
    code = f"""
import sys, time
from pathlib import Path
from dfsweep.checkpoint import atomic_write_bytes
def slow(f):
    for i in range(10000):
        f.write(b"row,%d\\n" % i)
        if i == 100:
            f.flush(); print("writing", flush=True)
        time.sleep(0.001)
atomic_write_bytes(Path({str(target)!r}), slow)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not target.exists()                      # no partial file under the real name
    leftovers = list(tmp_path.iterdir())
    assert leftovers and all(p.name.startswith(".submission.csv.") for p in leftovers)
    atomic_write_bytes(target, lambda f: f.write(b"id,label\n"))   # the next run cleans up
    assert [p.name for p in tmp_path.iterdir()] == ["submission.csv"]
