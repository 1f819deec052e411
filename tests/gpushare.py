"""The check two fractional-GPU tests share (imported by tests/test_cluster.py and tests/test_sweep.py)."""
from pathlib import Path
from typing import List

import pandas as pd


def assert_two_trials_shared_half_a_gpu(sweep: Path) -> List[pd.DataFrame]:
    """Both trials of `sweep` finished holding 0.5 GPU, each saw one GPU, and they ran at the same time
    (their report windows overlap). Returns each trial's progress table for further checks."""
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert len(board) == 2 and (board["status"] == "FINISHED").all()
    assert (board["gpu_share"] == 0.5).all()
    progress = [pd.read_csv(d / "progress.csv") for d in sorted((sweep / "tune").glob("trial_*"))]
    windows = []
    for df in progress:
        assert (df["gpus_visible"] == 1).all() and (df["gpu_share"] == 0.5).all()
        windows.append((df["timestamp"].min(), df["timestamp"].max()))
    (a0, a1), (b0, b1) = windows
    assert a0 <= b1 and b0 <= a1, windows
    return progress
