"""Process set-up for a training run: seeds, threads, denormals, device."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything", "configure_threads", "configure_allocator", "cpu_has_bf16", "pick_device",
           "cpu_share"]


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
    """torch threads = `threads`, or the process's CPU share when 0. Also flushes denormals (the high-pass
    input stems produce them, and x86 computes on denormals many times slower) and keeps freed memory for
    reuse (`configure_allocator`)."""
    n = threads if threads > 0 else cpu_share()
    torch.set_num_threads(n)
    torch.set_flush_denormal(True)
    configure_allocator()
    return n


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def configure_allocator() -> bool:
    """glibc: serve large CPU tensors from the heap and keep freed memory there.

    Why: a training step allocates and frees the same few-MB activation and augmentation buffers every
    batch. By default glibc maps each one fresh (mmap) and returns it on free, so every step pays
    zero-filled page faults again. The cost: the process keeps its peak memory. Returns whether glibc
    accepted it."""
    import ctypes
    import ctypes.util
    import sys
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def cpu_has_bf16() -> bool:
    """Native bfloat16 on this CPU (AMX tiles or AVX512-BF16): where CPU autocast pays off. Without it,
    bf16 convolutions are emulated and slower than float32."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None and fn():
            return True
    return False


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from .errors import DfsweepError
            raise DfsweepError("train.device: cuda requested but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")
