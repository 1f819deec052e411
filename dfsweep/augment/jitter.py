"""ColorJitter per sample over a whole batch, as one 3×3 matrix and offset per sample.

Brightness, contrast (about the image's mean grey), saturation (about each pixel's grey) and hue (a rotation
of the chroma plane in YIQ space: linear, unlike v2's HSV rotation, which has no batched closed form) are each
affine in RGB, so together they are one matrix and one offset per sample, applied as one batched matmul over
the channel planes. v2 clamps to [0, peak] after each step; this clamps once at the end, which differs only
for pixels pushed out of range and back. The ImageNet normalisation after the clamp folds into the matrix,
the offset and the clamp bounds, so it costs no pass of its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Optional, Tuple

import numpy as np
import torch

from .normalize import STANDARDISE

__all__ = ["ColorJitter"]

_GREY = (0.299, 0.587, 0.114)
_GREY_ROWS = np.outer(np.ones(3), _GREY)           # each row the grey weights: v -> grey(v) in all channels
_JITTER_OFF = np.array([[1.0], [1.0], [1.0], [0.0]])  # b, c, s, h of a sample the jitter leaves alone

_RGB2YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
# a rotation by angle a of the chroma (I, Q) plane, taken to RGB: K0 + cos(a)·K1 + sin(a)·K2 (built once)
_HUE_BASIS = np.stack([np.linalg.inv(_RGB2YIQ) @ k @ _RGB2YIQ for k in (
    np.diag([1.0, 0.0, 0.0]), np.diag([0.0, 1.0, 1.0]),
    np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]))])


@dataclass(frozen=True)
class ColorJitter:
    """v2.ColorJitter(brightness, contrast, saturation, hue), order b, c, s, h, on each sample with
    probability p; pixels in [0, peak]. With `normalise` (pixel units, peak 255) the output is
    ImageNet-normalised. Returns a fresh channels-first batch."""
    p: float
    brightness: float
    contrast: float
    saturation: float
    hue: float
    peak: float = 1.0
    normalise: bool = False
    draws: ClassVar[int] = 5          # on/off, then the b, c, s and h factors
    reads_rows: ClassVar[bool] = False

    @property
    def normalises(self) -> bool:
        return self.normalise

    def plan(self, u: np.ndarray, n: int, size: Tuple[int, int],
             gpu: Optional[torch.device] = None) -> torch.Tensor:
        """Row b: batch b's n 3×3 matrices, its n contrast coefficients, and the shared grey weights, scale,
        shift and clamp bounds, as one float32 row (all the batches reach a GPU in one copy). In numpy for all
        k batches at once: a few dozen ops on n-vectors, cheap there and slow as per-batch torch ops."""
        k = u.shape[0]
        on = u[:, :n] < np.float32(self.p)
        low = np.array([max(0.0, 1 - self.brightness), max(0.0, 1 - self.contrast), max(0.0, 1 - self.saturation),
                        -self.hue])
        high = np.array([1 + self.brightness, 1 + self.contrast, 1 + self.saturation, self.hue])
        drawn = low[:, None, None] + (high - low)[:, None, None] * u[:, n:].reshape(k, 4, n).transpose(1, 0, 2)
        b, c, s, h = (v.ravel() for v in np.where(on, drawn, _JITTER_OFF[:, :, None]))   # k·n each, identity off
        sat = s[:, None, None] * np.eye(3) + (1 - s)[:, None, None] * _GREY_ROWS    # about each pixel's grey
        m = _hue_rotation(h) @ sat * (c * b)[:, None, None]
        # contrast blends towards the image's mean grey μ (after brightness: b·μ); saturation and hue keep grey
        # (sat·1 = 1, hue·1 = 1), so the offset (1 - c)·b·μ is the same for all three channels
        lo, hi, scale, shift = np.zeros(3), np.full(3, float(self.peak)), np.ones(3), np.zeros(3)
        if self.normalise:
            # clamp(v, 0, peak)·scale + shift == clamp(v·scale + shift, shift, peak·scale + shift) for scale > 0
            scale, shift = (t.double().cpu().numpy() for t in STANDARDISE)
            m = m * scale[None, :, None]
            lo, hi = shift, self.peak * scale + shift
        shared = np.broadcast_to(np.concatenate([_GREY_ROWS[0], scale, shift, lo, hi]), (k, 15))
        params = torch.from_numpy(np.concatenate([m.reshape(k, 9 * n), ((1 - c) * b).reshape(k, n), shared],
                                                 axis=1).astype(np.float32))
        return params if gpu is None else params.to(gpu, non_blocking=True)

    def __call__(self, x: torch.Tensor, params: torch.Tensor, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The batch jittered with one row of `plan` (on the batch's device). Its mean grey μ stays on the
        device: reading it back would make the host wait for a GPU every batch."""
        n, _, height, width = x.shape
        x = x.float()
        m_t, coef, grey_t, scale_t, shift_t, lo_t, hi_t = params.split([9 * n, n, 3, 3, 3, 3, 3])
        mu = torch.mv(x.mean(dim=(2, 3)), grey_t)                                             # n
        bias = torch.addcmul(shift_t.view(1, 3, 1), (coef * mu).view(n, 1, 1), scale_t.view(1, 3, 1))
        planes = x.reshape(n, 3, height * width)       # a view for channels-first and channels_last batches
        out = torch.baddbmm(bias, m_t.view(n, 3, 3), planes)   # over planes: faster than over pixels × RGB
        torch.maximum(out, lo_t.view(1, 3, 1), out=out)        # max then min: clamp_ with tensor bounds is slow
        torch.minimum(out, hi_t.view(1, 3, 1), out=out)
        return out.view(n, 3, height, width)


def _hue_rotation(shift: np.ndarray) -> np.ndarray:
    """n×3×3 RGB matrices rotating the chroma (I, Q) plane by shift·2π: a hue shift that keeps luma."""
    ang = (np.asarray(shift, dtype=np.float64) * (2 * math.pi))[:, None, None]
    k0, k1, k2 = _HUE_BASIS
    return k0 + np.cos(ang) * k1 + np.sin(ang) * k2
