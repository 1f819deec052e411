"""RandomAdjustSharpness per sample over a whole batch (the `sharp` preset, for HRNet)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .step import index_rows

__all__ = ["Sharpen"]


@dataclass(frozen=True)
class Sharpen:
    """v2.RandomAdjustSharpness(factor, p) per sample: blend with v2's smoothed image (3×3 kernel of ones with
    5 in the centre, /13), borders unchanged; pixels in [0, peak]. Works in place on the pipeline's batch."""
    p: float
    factor: float
    peak: float = 1.0
    draws: ClassVar[int] = 1
    reads_rows: ClassVar[bool] = False
    normalises: ClassVar[bool] = False

    def plan(self, u: np.ndarray, n: int, size: Tuple[int, int],
             gpu: Optional[torch.device] = None) -> Union[np.ndarray, Sequence[torch.Tensor]]:
        """Per batch, which samples are sharpened: a boolean row, or on a GPU their indices there."""
        on = u < np.float32(self.p)
        return on if gpu is None else index_rows(on, gpu)

    def __call__(self, x: torch.Tensor, on: Union[np.ndarray, torch.Tensor],
                 rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x with the samples where `on` is True (or the indices `on`, on x's device) sharpened, in place.
        v2's blend factor·x + (1 - factor)·smooth, with smooth = (3×3 box sum + 4·x) / 13, is one multiply-add
        of the box sum and the image; the box sum is two in-place shifted adds per axis."""
        idx = on if isinstance(on, torch.Tensor) else torch.from_numpy(np.flatnonzero(on)).to(x.device)
        if len(idx) == 0:
            return x
        sel = x.index_select(0, idx)
        height, width = sel.shape[-2:]
        rows_sum = sel[..., 0:width - 2] + sel[..., 1:width - 1]
        rows_sum.add_(sel[..., 2:width])
        box = rows_sum[..., 0:height - 2, :] + rows_sum[..., 1:height - 1, :]     # 3×3 sums of the interior
        box.add_(rows_sum[..., 2:height, :])
        a = (1 - self.factor) / 13
        x[idx, :, 1:-1, 1:-1] = box.mul_(a).add_(sel[..., 1:-1, 1:-1], alpha=self.factor + 4 * a).clamp_(0, self.peak)
        return x
