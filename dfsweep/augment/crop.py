"""RandomResizedCrop + HorizontalFlip per sample over a whole batch (and, optionally, GaussianBlur with them).

Why not torchvision v2: a v2 transform called on a batch draws one set of parameters for the whole batch
(every image gets the same crop), and called image by image it costs a tenth of a training step. `CropFlip`
draws every parameter per sample with v2's conventions: an integer box of area scale·H·W and aspect ratio
drawn log-uniformly, placed uniformly (a box that would overflow is clamped to the image, not re-drawn).

On the CPU each box is resized on uint8, read straight from the whole decoded set when given the batch's
rows, and copied into a channels-first float batch; a blurred sample is blurred right after, while in cache.
On a GPU the crops are one `roi_align` over the batch and the blurred samples one batched blur: two kernels
instead of two per sample, which there is the difference between launching and computing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..data.layout import gather_rows
from .blur import blur_choice, blur_one, blur_rows, gaussian_taps
from .step import index_rows

__all__ = ["CropFlip", "CropPlan"]

Blur = Tuple[float, Tuple[float, float]]        # (p, (sigma min, sigma max))


@dataclass(frozen=True)
class CropPlan:
    """One batch's crops: per-sample integer boxes and flips, and for blurred samples their taps (None: not
    blurred). Planned for a GPU it also holds them as tensors there: `roi` (n × 5 `roi_align` boxes),
    `flips` (n bools), and the blurred samples' indices and taps (`blur_idx`, `blur_taps`)."""
    top: np.ndarray
    left: np.ndarray
    h: np.ndarray
    w: np.ndarray
    flip: np.ndarray
    taps: List[Optional[List[float]]]
    roi: Optional[torch.Tensor] = None
    flips: Optional[torch.Tensor] = None
    blur_idx: Optional[torch.Tensor] = None
    blur_taps: Optional[torch.Tensor] = None


@dataclass(frozen=True)
class CropFlip:
    """RandomResizedCrop(scale, ratio) back to the input size, then HorizontalFlip(flip_p); with `blur=(p,
    sigma)`, then GaussianBlur(5, sigma) on each sample with probability p. Returns a channels-first float32
    batch in the input's pixel units."""
    scale: Tuple[float, float]
    flip_p: float
    blur: Optional[Blur] = None
    ratio: Tuple[float, float] = (3 / 4, 4 / 3)
    reads_rows: ClassVar[bool] = True
    normalises: ClassVar[bool] = False

    @property
    def draws(self) -> int:
        """Uniforms per sample: area, aspect, top, left, flip[, blur on, blur sigma]."""
        return 5 if self.blur is None else 7

    def plan(self, u: np.ndarray, n: int, size: Tuple[int, int],
             gpu: Optional[torch.device] = None) -> List[CropPlan]:
        """The crops of k batches from their uniforms (k × draws·n), in float64 numpy as v2 does in Python."""
        k = u.shape[0]
        u = u.reshape(k, -1, n)
        top, left, h, w, flip = _boxes(u, size, self.scale, self.ratio, self.flip_p)
        blur_on, kernels = np.zeros((k, n), dtype=bool), np.zeros((0, 5), dtype=np.float32)
        taps: List[List[Optional[List[float]]]] = [[None] * n for _ in range(k)]
        if self.blur is not None:
            blur_on, sig = blur_choice(u[:, 5:7].reshape(k, 2 * n), n, *self.blur)
            chosen = np.flatnonzero(blur_on)                     # over k·n: one tap computation for all
            kernels = gaussian_taps(sig.ravel()[chosen])
            for c, kernel in zip(chosen.tolist(), kernels.tolist()):
                taps[c // n][c % n] = kernel
        plans = [CropPlan(top[b], left[b], h[b], w[b], flip[b], taps[b]) for b in range(k)]
        return plans if gpu is None else _for_gpu(plans, (top, left, h, w, flip), blur_on, kernels, gpu)

    def __call__(self, x: torch.Tensor, plan: CropPlan, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The batch x (or x[rows], x the whole set) cropped, flipped and blurred as `plan` says."""
        return _crop_loop(x, plan, rows) if plan.roi is None else _crop_batched(x, plan, rows)


def _boxes(u: np.ndarray, size: Tuple[int, int], scale: Tuple[float, float], ratio: Tuple[float, float],
           flip_p: float) -> Tuple[np.ndarray, ...]:
    """(top, left, h, w, flip), each k × n, from uniforms u (k × draws × n)."""
    height, width = size
    area = (scale[0] + (scale[1] - scale[0]) * u[:, 0].astype(np.float64)) * (height * width)
    log_r = math.log(ratio[0]), math.log(ratio[1])
    aspect = np.exp(log_r[0] + (log_r[1] - log_r[0]) * u[:, 1].astype(np.float64))
    w = np.clip(np.round(np.sqrt(area * aspect)), 1, width).astype(np.int64)
    h = np.clip(np.round(np.sqrt(area / aspect)), 1, height).astype(np.int64)
    top = np.minimum((u[:, 2] * (height - h + 1)).astype(np.int64), height - h)
    left = np.minimum((u[:, 3] * (width - w + 1)).astype(np.int64), width - w)
    return top, left, h, w, u[:, 4] < np.float32(flip_p)


def _for_gpu(plans: List[CropPlan], boxes: Tuple[np.ndarray, ...], blur_on: np.ndarray, kernels: np.ndarray,
             gpu: torch.device) -> List[CropPlan]:
    """The plans with their tensors on the GPU, made for all k batches in three copies (each batch's are
    views): a copy from pageable memory may wait for the GPU's queue, so per-batch copies would keep the host
    from queueing the next steps ahead."""
    k, n = blur_on.shape
    top, left, h, w, flip = boxes
    # per sample roi_align's box (its batch row, x1, y1, x2, y2) and the flip
    rois = np.stack([np.broadcast_to(np.arange(n), (k, n)), left, top, left + w, top + h, flip], axis=-1)
    rois = torch.from_numpy(rois.astype(np.float32)).to(gpu, non_blocking=True)
    roi, flips = rois[..., :5].contiguous(), rois[..., 5] > 0.5
    blur_idx = index_rows(blur_on, gpu)
    counts = [len(i) for i in blur_idx]
    blur_taps = torch.from_numpy(kernels).to(gpu, non_blocking=True).split(counts)
    return [replace(plan, roi=roi[b], flips=flips[b],
                    blur_idx=blur_idx[b] if counts[b] else None, blur_taps=blur_taps[b] if counts[b] else None)
            for b, plan in enumerate(plans)]


def _crop_loop(x: torch.Tensor, plan: CropPlan, rows: Optional[torch.Tensor]) -> torch.Tensor:
    """Box by box: each read from its row, flipped as its small uint8 box (the same pixels as flipping the
    output: the bilinear grid is symmetric), resized, copied into a channels-first float batch (the later
    ops run faster on that layout), and blurred there."""
    _, channels, height, width = x.shape
    source = range(x.shape[0]) if rows is None else rows.tolist()
    out = torch.empty((len(source), channels, height, width), dtype=torch.float32)
    boxes = zip(source, plan.top.tolist(), plan.left.tolist(), plan.h.tolist(), plan.w.tolist(),
                plan.flip.tolist(), plan.taps)
    for i, (j, t, l, hh, ww, f, k) in enumerate(boxes):
        box = x[j:j + 1, :, t:t + hh, l:l + ww]
        if f:
            box = box.flip(-1)
        if (hh, ww) != (height, width):
            # a box never exceeds the image, so this only up-samples, where the antialiased kernel gives the
            # plain bilinear pixels (tested) faster
            box = F.interpolate(box, (height, width), mode="bilinear", align_corners=False, antialias=True)
        out[i:i + 1].copy_(box)
        if k is not None:
            blur_one(out[i:i + 1], k)
    return out


def _crop_batched(x: torch.Tensor, plan: CropPlan, rows: Optional[torch.Tensor]) -> torch.Tensor:
    """One `roi_align` (one bilinear sample per output pixel at its centre, as `interpolate(align_corners=
    False)` samples a box), one flip, one blur of the chosen rows. With `rows` the batch is gathered first
    (one kernel), so only the batch is converted to float."""
    from torchvision.ops import roi_align      # here: torchvision's import is slow, and a CPU run never needs it
    if rows is not None:
        x = gather_rows(x, rows)
    n, _, height, width = x.shape
    out = roi_align(x.float(), plan.roi, (height, width), spatial_scale=1.0, sampling_ratio=1, aligned=True)
    out = torch.where(plan.flips.view(n, 1, 1, 1), out.flip(-1), out)
    if plan.blur_idx is not None:
        out[plan.blur_idx] = blur_rows(out, plan.blur_idx, plan.blur_taps)
    return out
