"""What every random op of the float stage is: a `Step` that plans its parameters, then applies them.

A step takes `draws` uniforms per sample. `plan(u, n, size, gpu)` turns the uniforms of k batches of n samples
of `size` (H, W) (a k × draws·n float32 array, one row per batch) into k per-batch parameters; `step(x, params,
rows)` applies one batch's. Planning many batches at once is the same arithmetic as one at a time, row by row,
so a batch gets the same numbers either way. `gpu` is where a GPU's batched kernels want their parameters
(None: the CPU's loops, which take numpy and lists).
"""
from __future__ import annotations

from typing import Any, List, Optional, Protocol, Sequence, Tuple

import numpy as np
import torch

__all__ = ["Step", "index_rows"]


class Step(Protocol):
    draws: int               # uniforms per sample
    reads_rows: bool         # as a first step, reads the batch's rows of the whole decoded set (never gathered)
    normalises: bool         # its output is already ImageNet-normalised

    def plan(self, u: np.ndarray, n: int, size: Tuple[int, int], gpu: Optional[torch.device]) -> Sequence[Any]:
        ...

    def __call__(self, x: torch.Tensor, params: Any, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        ...


def index_rows(on: np.ndarray, device: torch.device) -> List[torch.Tensor]:
    """For each row of a k × n boolean array, the indices of its True entries as a tensor on `device`: views of
    one tensor made in one copy (a copy from pageable memory to a GPU may wait for its queue to drain)."""
    flat = np.flatnonzero(on)
    counts = np.bincount(flat // on.shape[1], minlength=on.shape[0]).tolist()
    return list(torch.from_numpy(flat % on.shape[1]).to(device, non_blocking=True).split(counts))
