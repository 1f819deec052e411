"""predict over many files: the CSV is written as the images are scored, memory stays a chunk's, and a run
killed with -9 continues with --resume to the same file an uninterrupted run writes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dfsweep.cli import main
from tinydata import write_config, write_tiny_set

EXE = str(Path(sys.executable).parent / "dfsweep")


def _predict(*args, **kw):
    return subprocess.Popen([EXE, "predict", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


@pytest.mark.slow
def test_predict_killed_mid_run_resumes_to_the_uninterrupted_csv(tmp_path):
    data = write_tiny_set(tmp_path / "d", n_real=300, n_fake=100)
    # predict scores a chunk of files at a time, a cache shard's worth (the model's data.shard_mib): 8 images
    cfg = write_config(tmp_path / "c.yaml", data, tmp_path / "cache", data={"shard_mib": 8 * 64 * 64 * 3 / 2**20})
    assert main(["train", str(cfg), "--out", str(tmp_path / "m")]) == 0
    model = tmp_path / "m" / "model.pth"

    whole = _predict(model, data, "--out", tmp_path / "whole.csv")
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    out, record = tmp_path / "p.csv", tmp_path / ".p.csv.partial.json"
    run = _predict(model, data, "--out", out)
    deadline = time.time() + 120
    while not record.exists() and run.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    done = json.loads(record.read_text())["done"]
    assert 0 < done < 400 and not out.exists()           # killed between its first and last chunk

    again = _predict(model, data, "--out", out)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 2 and "--resume continues it" in err and "Traceback" not in err
    resumed = _predict(model, data, "--out", out, "--resume")
    said, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resuming: {done} of 400 images were scored" in said
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".p.csv")) == []
    assert len(pd.read_csv(out)) == 400
