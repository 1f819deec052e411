"""Process set-up for a training run: seeds, threads, denormals, device."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything", "configure_threads", "pick_device", "cpu_share"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def cpu_share() -> int:
    """CPUs this process may use (Ray sets affinity / OMP_NUM_THREADS for a trial's CPU share)."""
    omp = os.environ.get("OMP_NUM_THREADS")
    if omp and omp.isdigit() and int(omp) > 0:
        return int(omp)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def configure_threads(threads: int) -> int:
    """torch threads = `threads`, or the process's CPU share when 0. Also flushes denormals
    (high-pass inputs ran ~9x slower on this CPU without it, see STACK-NOTES)."""
    n = threads if threads > 0 else cpu_share()
    torch.set_num_threads(n)
    torch.set_flush_denormal(True)
    return n


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from .errors import DfsweepError
            raise DfsweepError("train.device: cuda requested but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")
