"""Per-sample Gaussian blur (v2.GaussianBlur: 5 taps, reflect padding) as separable shifted multiply-adds.

Two forms of one kernel: `blur_one` blurs one sample in place with scalar taps (the CPU crop loop calls it
while the sample is in cache), `blur_rows` blurs chosen rows of a batch with per-row tap tensors (a GPU's
batched path). A per-sample filter as a few batched multiply-adds runs much faster on CPU than a grouped
convolution with one kernel per sample.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["blur_choice", "gaussian_taps", "blur_rows", "blur_one"]


def blur_choice(u: np.ndarray, n: int, p: float, sigma: Tuple[float, float]) -> Tuple[np.ndarray, np.ndarray]:
    """(blurred?, sigma) for n samples from 2n float32 uniforms (the last axis; leading axes are batches):
    the first n choose with probability p, the next n give sigma in [sigma[0], sigma[1]]."""
    return u[..., :n] < np.float32(p), np.float32(sigma[0]) + np.float32(sigma[1] - sigma[0]) * u[..., n:2 * n]


def gaussian_taps(sig: Sequence[float], kernel_size: int = 5) -> np.ndarray:
    """m×k normalised Gaussian taps (float32) for m sigmas, in numpy (tiny arrays: cheaper than torch ops).
    Taps far below 8-bit precision become 0: for sigma ≈ 0.14 the outer taps are float32 denormals, which
    slow every multiply-add they touch on CPU; `blur_one` skips zero taps."""
    half = (kernel_size - 1) / 2
    taps = np.linspace(-half, half, kernel_size)
    k = np.exp(-0.5 * (taps[None, :] / np.asarray(sig, dtype=np.float64).reshape(-1, 1)) ** 2)
    k = k / k.sum(axis=1, keepdims=True)
    return np.where(k < 1e-6, 0.0, k).astype(np.float32)


def blur_rows(x: torch.Tensor, idx: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """x[idx] blurred, sample i with the separable taps[i] (m × k, on x's device), reflect padding."""
    pad = taps.shape[1] // 2
    y = F.pad(x[idx], (pad, pad, pad, pad), mode="reflect")
    return _shift_sum(_shift_sum(y, taps, 3), taps, 2)


def _shift_sum(x: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """Σ_k weights[:, k] · x shifted by k along `dim` (valid part only)."""
    k = weights.shape[1]
    length = x.shape[dim] - k + 1
    w = weights.to(x.device, x.dtype).view(-1, 1, 1, 1, k)
    out = x.narrow(dim, 0, length) * w[..., 0]
    for j in range(1, k):
        out.addcmul_(x.narrow(dim, j, length), w[..., j])     # in place: no temporary per tap
    return out


def blur_one(sample: torch.Tensor, taps: List[float]) -> None:
    """One 1×C×H×W channels-first float sample, blurred in place (reflect padding) with scalar taps; zero
    taps are skipped. Channels-first float, not the resize's channels_last uint8: the pad and the shifted
    adds take slow strided paths there."""
    height, width = sample.shape[-2:]
    padded = F.pad(sample, (len(taps) // 2,) * 4, mode="reflect")
    (j0, t0), *rest = [(j, t) for j, t in enumerate(taps) if t != 0.0]
    rows = padded[..., j0:j0 + width] * t0                   # horizontal pass over all padded rows
    for j, t in rest:
        rows.add_(padded[..., j:j + width], alpha=t)
    torch.mul(rows[..., j0:j0 + height, :], t0, out=sample)  # vertical pass, written back into the batch
    for j, t in rest:
        sample.add_(rows[..., j:j + height, :], alpha=t)
