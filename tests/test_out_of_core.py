"""Sets larger than the memory a command may use, for real: a cgroup-v1 memory limit (root) around a sweep and a
finalize on a set 1.5x that limit once decoded. The decode is killed halfway and resumes without redoing the
shards it finished; nothing is killed for memory; no process comes near the limit."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from memlimit import MemoryLimited, cgroup_parent
from tinydata import write_tiny_set

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(cgroup_parent() is None, reason="needs a writable cgroup-v1 memory controller")]

EXE = str(Path(sys.executable).parent / "dfsweep")
LIMIT = 2 << 30             # what every test here may use, all its processes together (a local Ray, the driver
                            # and a trial take ~1.5 GiB whatever the set)
SIZE = 256                  # px: 192 KiB a decoded image
LIMIT_ONE = 1 << 30         # a single process (finalize): torch, the model and its batches
N = int(1.5 * LIMIT) // (SIZE * SIZE * 3) + 1


def _names(root: Path, n: int) -> Path:
    """A labelled set of n images: 600 small PNGs (fakes carry a bright patch) under n names, each name's group
    its picture's, so a picture's copies never straddle a split."""
    base = write_tiny_set(root / "base", n_real=500, n_fake=100)
    pictures = sorted((base / "real").iterdir()) + sorted((base / "fake").iterdir())
    out = root / "set"
    out.mkdir()
    rows = ["image,label,group"]
    for i in range(n):
        pic = pictures[i % len(pictures)]
        (out / f"f{i:06d}.png").symlink_to(pic)
        rows.append(f"f{i:06d}.png,{pic.parent.name},{pic.stem}")
    (out / "labels.csv").write_text("\n".join(rows) + "\n")
    return out


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """1.5x LIMIT once decoded."""
    return _names(tmp_path_factory.mktemp("faces"), N)


def _shards(cache: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in (cache / "decoded" / f"{SIZE}px").glob("*.npy")}


def _largest(box: MemoryLimited) -> int:
    return max(box.peaks.values(), default=0)


def test_a_sweep_on_a_set_larger_than_its_memory_resumes_a_killed_decode(tmp_path, faces):
    spec = {"data": {"train": str(faces), "image_size": SIZE, "cache_dir": "cache"},
            "model": {"name": "deepfakenet", "width": 0.25},
            "train": {"epochs": 1, "batch_size": 16},
            "sweep": {"num_samples": 1, "data_fraction": 0.05, "confirm": {"top_k": 0}},
            "search": {"train.lr": {"float": [1e-4, 1e-3], "log": True}}}
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(spec))
    cache = tmp_path / "cache"
    cmd = [EXE, "run", str(space), "--name", "big"]

    # 1. killed (-9) while its Ray tasks decode: the shards finished by then stay
    with MemoryLimited(LIMIT) as box:
        proc = box.start(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while len(_shards(cache)) < 3:
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    before = _shards(cache)
    total = -(-N // (64 * 2**20 // (SIZE * SIZE * 3)))
    assert 3 <= len(before) < total

    # 2. run again: only the missing shards are decoded, and the sweep finishes within the limit
    with MemoryLimited(LIMIT) as box:
        proc = box.start(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out, _ = proc.communicate(timeout=900)
        oom, largest = box.oom_kills(), _largest(box)
    assert proc.returncode == 0 and oom == 0, out[-3000:]
    after = _shards(cache)
    assert len(after) == total and {k: after[k] for k in before} == before
    assert f"decoding {N - 341 * len(before):,} images at {SIZE} px" in out, out[-3000:]
    board = pd.read_csv(tmp_path / "sweeps" / "big" / "leaderboard.csv")
    assert (board["status"] == "FINISHED").all() and len(board) == 1
    assert largest < N * SIZE * SIZE * 3 // 3, largest      # not even a third of the set in any process


def test_a_run_the_kernel_kills_for_memory_says_so_in_one_line(tmp_path):
    """A batch far too large for the limit: the kernel kills the training process, and the command says what ran
    out and what to change instead of ending with a bare 137."""
    data = write_tiny_set(tmp_path / "d", n_real=40, n_fake=20)
    cfg = {"data": {"train": str(data), "image_size": SIZE, "cache_dir": "cache"},
           "model": {"name": "deepfakenet"}, "train": {"epochs": 1, "batch_size": 48, "threads": 1}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    with MemoryLimited(768 << 20) as box:
        proc = box.start([EXE, "train", str(tmp_path / "c.yaml"), "--out", "m"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err = proc.communicate(timeout=600)
        oom = box.oom_kills()
    lines = [l for l in err.splitlines() if l.startswith("dfsweep: error: ")]
    assert oom >= 1 and proc.returncode == 2, err[-3000:]
    assert len(lines) == 1 and "out of memory" in lines[0] and "train.batch_size" in lines[0], err[-3000:]
    assert "768.0 MiB" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "m" / "model.pth").exists()


def test_a_trial_the_kernel_kills_for_memory_is_named_so(tmp_path):
    """In a sweep the kernel kills the largest process, a trial's worker: its progress line says out of memory
    and what to lower (Ray's own error only says the worker died)."""
    data = write_tiny_set(tmp_path / "d", n_real=40, n_fake=20)
    spec = {"data": {"train": str(data), "image_size": SIZE, "cache_dir": "cache"},
            "model": {"name": "deepfakenet"}, "train": {"epochs": 1, "batch_size": 48},
            "sweep": {"num_samples": 1, "confirm": {"top_k": 0}},
            "search": {"train.lr": {"float": [1e-4, 1e-3], "log": True}}}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(spec))
    with MemoryLimited(LIMIT) as box:
        proc = box.start([EXE, "run", "space.yaml", "--name", "oom"], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        out, _ = proc.communicate(timeout=600)
        oom = box.oom_kills()
    said = [l for l in out.splitlines() if "out of memory" in l]
    assert oom >= 1 and said and "train.batch_size" in said[0], out[-3000:]
    assert "Traceback" not in out


def test_finalize_on_a_set_larger_than_its_memory(tmp_path):
    """finalize trains, picks its threshold and writes the submission for a set 1.5x its memory limit: decoded
    into the cache by its own threads, read a batch at a time, the test images scored a batch at a time."""
    n = int(1.5 * LIMIT_ONE) // (SIZE * SIZE * 3) + 1
    faces = _names(tmp_path / "faces", n)
    sweep = tmp_path / "sweeps" / "s"
    sweep.mkdir(parents=True)
    best = {"data": {"train": str(faces), "image_size": SIZE, "cache_dir": "cache"},
            "model": {"name": "deepfakenet", "width": 0.25},
            "train": {"batch_size": 32, "lr": 1e-3},
            "sweep": {"metric": "auc"},
            "finalize": {"epochs": 1, "finetune_epochs": 0, "register_model": False}}
    (sweep / "best.yaml").write_text(yaml.safe_dump(best))
    (sweep / "sweep.yaml").write_text(yaml.safe_dump(best))
    with MemoryLimited(LIMIT_ONE) as box:
        proc = box.start([EXE, "finalize", "s", "--test", str(faces)], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        out, _ = proc.communicate(timeout=1200)
        oom, largest = box.oom_kills(), _largest(box)
    assert proc.returncode == 0 and oom == 0, out[-3000:]
    sub = pd.read_csv(sweep / "final" / "submission.csv")
    assert len(sub) == n and sub["id"].is_unique
    assert json.loads((sweep / "final" / "finalize.json").read_text())["test_images"] == n
    assert largest < n * SIZE * SIZE * 3, largest      # no process holds the set
