"""Per-sample random augmentation applied to whole batches, on whatever device the batch is on.

Why not torchvision v2 directly: a v2 transform called on a batch draws *one* set of random parameters
for the whole batch (every image gets the same crop, the same jitter), and calling it image by image
costs ~1.5 ms per 128 px image on this CPU — a tenth of a training step. These ops draw every parameter
per sample (from a CPU `torch.Generator`, so CPU and CUDA runs make the same choices) and apply them to
the batch in a few vectorised kernels, with v2's parameter conventions:

* `resized_crop_flip`: RandomResizedCrop(scale, ratio 3/4–4/3) + HorizontalFlip: a per-sample integer
  box, as v2 draws it, resized by bilinear interpolation (on uint8 on CPU; the one per-sample loop here,
  because it measured faster than a batched `grid_sample`), read straight from the whole decoded set
  when given the batch's rows. Crops are never larger than the decoded image, so this only up-samples
  (the antialiased kernel is used for speed; it gives the same pixels there). It can blur each chosen
  sample in the same loop (`blur=`, the `seed` preset), the same draws as `gaussian_blur` after it.
* `color_jitter`: brightness, contrast (about the image's mean grey), saturation (about each pixel's
  grey) and hue (a rotation of the chroma plane in YIQ space — linear, so batched as one 3×3 matrix per
  sample; v2 rotates in HSV, which has no closed batched form), each clamped to [0, 1] as v2 does.
* `gaussian_blur`: a 5-tap separable Gaussian with a per-sample sigma, as shifted multiply-adds.
* `adjust_sharpness`: v2's 3×3 smoothing kernel blended with the image by `factor`, borders kept.

Images are float between ops (no re-quantisation to uint8 between steps), in [0, `peak`]: the training
pipeline keeps pixel units (peak 255) so that the uint8 -> float step and the final standardisation are one
pass each.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..data.layout import gather_rows

__all__ = ["uniform", "bernoulli", "resized_crop_flip", "color_jitter", "gaussian_blur", "adjust_sharpness",
           "CropPlan", "crop_draws", "plan_crops", "crop_with", "JITTER_DRAWS", "plan_jitter", "jitter_with",
           "sharpen_with", "index_rows", "gpu_or_none"]

_GREY = (0.299, 0.587, 0.114)
_GREY_ROWS = np.outer(np.ones(3), _GREY)           # each row the grey weights: v -> grey(v) in all channels
_JITTER_OFF = np.array([[1.0], [1.0], [1.0], [0.0]])  # b, c, s, h of a sample the jitter leaves alone


def uniform(n: int, low: float, high: float, gen: Optional[torch.Generator]) -> torch.Tensor:
    """n draws from U(low, high) on the CPU (float32)."""
    return torch.rand(n, generator=gen) * (high - low) + low


def bernoulli(n: int, p: float, gen: Optional[torch.Generator]) -> torch.Tensor:
    """n booleans, each True with probability p (always drawn, so the stream does not depend on p)."""
    return torch.rand(n, generator=gen) < p


def gpu_or_none(device: torch.device) -> Optional[torch.device]:
    """Where a plan's tensors go: a GPU's ops take theirs from there, the CPU's take numpy and lists."""
    return device if device.type == "cuda" else None


def crop_draws(blur: bool) -> int:
    """Uniforms per sample the crop takes: area, aspect, top, left, flip[, blur on, blur sigma]."""
    return 7 if blur else 5


@dataclass(frozen=True)
class CropPlan:
    """One batch's crops: per-sample integer boxes and flips, and for blurred samples their taps (the CPU
    loop). A plan made for a device (`plan_crops(..., device=)`) also holds them as tensors there for the
    batched crop: `roi` (n × 5 `roi_align` boxes), `flips` (n bools), and the blurred samples' indices and
    taps (`blur_idx`, `blur_taps`)."""
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


def plan_crops(u: np.ndarray, n: int, size: Tuple[int, int], scale: Tuple[float, float], flip_p: float,
               ratio: Tuple[float, float] = (3 / 4, 4 / 3),
               blur: Optional[Tuple[float, Tuple[float, float]]] = None,
               device: Optional[torch.device] = None) -> List[CropPlan]:
    """The crops of k batches of n samples of `size` (H, W) from their uniforms `u` (k × crop_draws·n
    float32: n areas, n aspects, n tops, n lefts, n flips[, n blur choices, n sigmas]), worked out in numpy
    (float64, as v2 does in Python) for all k at once: per batch, these few dozen small ops measured
    ~0.3 ms in a training loop, against a few µs per batch when an epoch's batches go in one pass.

    With `device`, the batched crop's tensors are made there for all k batches in three copies (each batch's
    are views): a copy from pageable host memory to a GPU may wait for the GPU's queue to drain, so
    per-batch copies would keep the host from queueing the next steps ahead."""
    height, width = size
    k = u.shape[0]
    u = u.reshape(k, -1, n)
    area = (scale[0] + (scale[1] - scale[0]) * u[:, 0].astype(np.float64)) * (height * width)
    log_r = math.log(ratio[0]), math.log(ratio[1])
    aspect = np.exp(log_r[0] + (log_r[1] - log_r[0]) * u[:, 1].astype(np.float64))
    w = np.clip(np.round(np.sqrt(area * aspect)), 1, width).astype(np.int64)
    h = np.clip(np.round(np.sqrt(area / aspect)), 1, height).astype(np.int64)
    top = np.minimum((u[:, 2] * (height - h + 1)).astype(np.int64), height - h)
    left = np.minimum((u[:, 3] * (width - w + 1)).astype(np.int64), width - w)
    flip = u[:, 4] < np.float32(flip_p)
    taps: List[List[Optional[List[float]]]] = [[None] * n for _ in range(k)]
    blur_on, kernels = np.zeros((k, n), dtype=bool), np.zeros((0, 5), dtype=np.float32)
    if blur is not None:
        blur_on, blur_sig = _blur_choice(u[:, 5:7].reshape(k, 2 * n), n, *blur)
        chosen = np.flatnonzero(blur_on)                     # over k·n: one tap computation for all
        kernels = _blur_taps(blur_sig.ravel()[chosen])
        for c, kernel in zip(chosen.tolist(), kernels.tolist()):
            taps[c // n][c % n] = kernel
    plans = [CropPlan(top[b], left[b], h[b], w[b], flip[b], taps[b]) for b in range(k)]
    if device is None:
        return plans
    # per sample roi_align's box (its batch row, x1, y1, x2, y2) and the flip; the blurred samples' rows
    # and taps: three copies for the k batches
    boxes = np.stack([np.broadcast_to(np.arange(n), (k, n)), left, top, left + w, top + h, flip], axis=-1)
    boxes = torch.from_numpy(boxes.astype(np.float32)).to(device, non_blocking=True)
    roi, flips = boxes[..., :5].contiguous(), boxes[..., 5] > 0.5           # each batch's: a contiguous view
    blur_idx = index_rows(blur_on, device)
    counts = [len(i) for i in blur_idx]
    blur_taps = torch.from_numpy(kernels).to(device, non_blocking=True).split(counts)
    return [replace(plan, roi=roi[b], flips=flips[b],
                    blur_idx=blur_idx[b] if counts[b] else None, blur_taps=blur_taps[b] if counts[b] else None)
            for b, plan in enumerate(plans)]


def resized_crop_flip(x: torch.Tensor, scale: Tuple[float, float], flip_p: float,
                      gen: Optional[torch.Generator], ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                      rows: Optional[torch.Tensor] = None,
                      blur: Optional[Tuple[float, Tuple[float, float]]] = None) -> torch.Tensor:
    """Per-sample RandomResizedCrop back to the input size, then horizontal flip with probability flip_p;
    returns a channels-first float32 batch (pixel values unchanged in scale).

    With `rows`, the batch is x[rows] (x the whole decoded set): each box is read from its row there, so
    the batch is never gathered first (16 rows at 128 px: ~0.3 ms of copying saved per batch).

    v2's parameters: an integer box of area scale·H·W and aspect ratio drawn log-uniformly, placed
    uniformly (a box that overflows is clamped to the image rather than re-drawn). Each crop is one
    bilinear `interpolate` from the box, on uint8 on CPU. The box never exceeds the image, so the resize
    only up-samples, where `antialias=True` gives the same pixels as without (tested) through the
    separable kernel torchvision's Resize uses: 42 µs per 128 px face against 60–66 µs for the plain one
    (2 threads). A flipped sample is flipped as its small uint8 box, before the resize (the same pixels:
    the bilinear grid is symmetric), which is cheaper than flipping the float output. (Running this loop
    on one thread made each resize faster still, but the training step after it ~3 ms slower: measured.)

    `blur=(p, sigma)` is `gaussian_blur(p, sigma)` after the crop, with the same draws: on CPU each chosen
    sample is blurred inside the loop, in place on its channels-first float copy in the batch, while it is
    in cache (in one process with training steps between batches: 2.44 against 2.83 ms per batch for crop +
    batched blur when it blurred the resize's channels_last uint8 output; on the float copy ~0.4 ms less
    again, paired A/B)."""
    n = x.shape[0] if rows is None else len(rows)
    # one draw of every uniform the batch needs, in the order of separate calls (the same stream as
    # `uniform`/`bernoulli`/`_blur_draws` one after the other)
    u = torch.rand(crop_draws(blur is not None) * n, generator=gen).numpy()[None]
    return crop_with(x, plan_crops(u, n, x.shape[-2:], scale, flip_p, ratio, blur, device=gpu_or_none(x.device))[0],
                     rows)


def crop_with(x: torch.Tensor, plan: CropPlan, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
    """`resized_crop_flip` with its parameters given: the batch x (or x[rows]) cropped, flipped and
    blurred as `plan` says, as a channels-first float32 batch: batched (`roi_align`) when the plan was
    made for a device (a GPU), else box by box."""
    n = x.shape[0] if rows is None else len(rows)
    _, channels, height, width = x.shape
    if plan.roi is not None:
        out = _crop_flip_batched(x, rows, plan.roi, plan.flips)
        if plan.blur_idx is not None:
            out[plan.blur_idx] = _blur_rows(out, plan.blur_idx, plan.blur_taps)
        return out
    source = range(n) if rows is None else rows.tolist()
    # each crop is copied straight into a channels-first float batch (the dtype change rides on that copy):
    # the later ops (blur, jitter's matmul over channel planes) measured faster on channels-first batches
    out = torch.empty((n, channels, height, width), dtype=torch.float32)
    boxes = zip(source, plan.top.tolist(), plan.left.tolist(), plan.h.tolist(), plan.w.tolist(),
                plan.flip.tolist(), plan.taps)
    for i, (j, t, l, hh, ww, f, k) in enumerate(boxes):
        box = x[j:j + 1, :, t:t + hh, l:l + ww]
        if f:
            box = box.flip(-1)
        if (hh, ww) != (height, width):
            # F.interpolate(box, (height, width), mode="bilinear", align_corners=False, antialias=True) without
            # its Python argument checks (~4 of its ~32 µs per face)
            box = torch._C._nn._upsample_bilinear2d_aa(box, (height, width), False)
        out[i:i + 1].copy_(box)
        if k is not None:
            _blur_one(out[i:i + 1], k)
    return out


def _crop_flip_batched(x: torch.Tensor, rows: Optional[torch.Tensor], roi: torch.Tensor,
                       flips: torch.Tensor) -> torch.Tensor:
    """The crops as one batched `roi_align` (one bilinear sample per output pixel at its centre, as
    `interpolate(align_corners=False)` samples a box) and one flip: two kernels instead of two per sample,
    which on a GPU is the difference between launching and computing. With `rows` the batch is gathered
    first (`gather_rows`, one kernel on the GPU), so only the batch is converted to float. `roi` (n × 5
    boxes: batch row, x1, y1, x2, y2) and `flips` are on x's device."""
    from torchvision.ops import roi_align
    if rows is not None:
        x = gather_rows(x, rows)
    n, _, height, width = x.shape
    out = roi_align(x.float(), roi, (height, width), spatial_scale=1.0, sampling_ratio=1, aligned=True)
    return torch.where(flips.view(n, 1, 1, 1), out.flip(-1), out)


JITTER_DRAWS = 5       # uniforms per sample the jitter takes: on/off, then b, c, s and h factors


def color_jitter(x: torch.Tensor, p: float, brightness: float, contrast: float, saturation: float, hue: float,
                 gen: Optional[torch.Generator], peak: float = 1.0,
                 then: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
    """v2.ColorJitter per sample (applied to each sample with probability p), order b, c, s, h.

    The four steps are affine in RGB, so they compose into one 3×3 matrix and one offset per sample
    (the same for all three channels), applied as one batched matmul over the channel planes
    (3×3 @ 3×HW per sample) with the offset as its bias (v2 clamps to [0, peak] after each step; this
    clamps once at the end, which differs only for pixels pushed out of range and back).
    `then=(scale, shift)`, per channel with scale > 0, is an affine map after the clamp (the
    normalisation): it is folded into the matrix, the bias and the clamp bounds, so it costs no pass.
    Returns a fresh contiguous (channels-first) batch: the matmul over planes measured ~3x faster on
    CPU than one over pixels × RGB, which strides across the channels."""
    # one draw from `gen` for the batch, in the order of separate calls (the stream of `bernoulli` for
    # on/off, then `uniform` for b, c, s and h)
    u = torch.rand(JITTER_DRAWS * x.shape[0], generator=gen).numpy()[None]
    params = plan_jitter(u, x.shape[0], p, brightness, contrast, saturation, hue, peak, then)[0]
    return jitter_with(x, params.to(x.device, non_blocking=True))


def plan_jitter(u: np.ndarray, n: int, p: float, brightness: float, contrast: float, saturation: float,
                hue: float, peak: float = 1.0, then: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
    """The jitter's parameters for k batches of n samples from their uniforms `u` (k × 5n float32: n on/off,
    then n each of b, c, s, h): row b holds batch b's n 3×3 matrices, its n contrast offsets and the
    shared grey weights, scale, shift and clamp bounds, as one float32 row (one copy to a GPU).

    In numpy, for all k batches at once: these few dozen ops on n-vectors cost microseconds per epoch
    this way, as torch ops ~0.25 ms per batch (measured), and per batch in numpy ~0.2 ms in a training loop."""
    k = u.shape[0]
    on = u[:, :n] < np.float32(p)
    low = np.array([max(0.0, 1 - brightness), max(0.0, 1 - contrast), max(0.0, 1 - saturation), -hue])
    high = np.array([1 + brightness, 1 + contrast, 1 + saturation, hue])
    drawn = low[:, None, None] + (high - low)[:, None, None] * u[:, n:].reshape(k, 4, n).transpose(1, 0, 2)
    b, c, s, h = (v.ravel() for v in np.where(on, drawn, _JITTER_OFF[:, :, None]))   # k·n each, identity off
    sat = s[:, None, None] * np.eye(3) + (1 - s)[:, None, None] * _GREY_ROWS    # about each pixel's grey
    m = _hue_rotation(h) @ sat * (c * b)[:, None, None]
    grey = _GREY_ROWS[0]
    # contrast blends towards the image's mean grey μ (after brightness: b·μ); saturation and hue keep grey
    # (sat·1 = 1, hue·1 = 1), so the offset (1 - c)·b·μ is the same for all three channels
    lo, hi, scale, shift = np.zeros(3), np.full(3, float(peak)), np.ones(3), np.zeros(3)
    if then is not None:
        # clamp(v, 0, peak)·scale + shift == clamp(v·scale + shift, shift, peak·scale + shift) for scale > 0
        scale, shift = (t.double().cpu().numpy() for t in then)
        m = m * scale[None, :, None]
        lo, hi = shift, peak * scale + shift
    shared = np.broadcast_to(np.concatenate([grey, scale, shift, lo, hi]), (k, 15))
    return torch.from_numpy(np.concatenate([m.reshape(k, 9 * n), ((1 - c) * b).reshape(k, n), shared], axis=1)
                            .astype(np.float32))


def jitter_with(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """`color_jitter` with its parameters given: one row of `plan_jitter`, on the batch's device."""
    n, _, height, width = x.shape
    # μ is computed on the batch's device and stays there (reading it back would make the host wait for
    # the GPU every batch instead of queueing work ahead of it)
    x = x.float()
    m_t, coef, grey_t, scale_t, shift_t, lo_t, hi_t = params.split([9 * n, n, 3, 3, 3, 3, 3])
    mu = torch.mv(x.mean(dim=(2, 3)), grey_t)                                             # n
    bias = torch.addcmul(shift_t.view(1, 3, 1), (coef * mu).view(n, 1, 1), scale_t.view(1, 3, 1))
    planes = x.reshape(n, 3, height * width)            # a view for channels-first and channels_last batches
    out = torch.baddbmm(bias, m_t.view(n, 3, 3), planes)
    # max then min: clamp_ with per-channel tensor bounds measured ~7x slower on CPU
    torch.maximum(out, lo_t.view(1, 3, 1), out=out)
    torch.minimum(out, hi_t.view(1, 3, 1), out=out)
    return out.view(n, 3, height, width)


_RGB2YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
# a rotation by angle a of the chroma (I, Q) plane, taken to RGB: K0 + cos(a)·K1 + sin(a)·K2 (built once)
_HUE_BASIS = np.stack([np.linalg.inv(_RGB2YIQ) @ k @ _RGB2YIQ for k in (
    np.diag([1.0, 0.0, 0.0]), np.diag([0.0, 1.0, 1.0]),
    np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]))])


def _hue_rotation(shift: np.ndarray) -> np.ndarray:
    """n×3×3 RGB matrices rotating the chroma (I, Q) plane by shift·2π: a hue shift that keeps luma."""
    ang = (np.asarray(shift, dtype=np.float64) * (2 * math.pi))[:, None, None]
    k0, k1, k2 = _HUE_BASIS
    return k0 + np.cos(ang) * k1 + np.sin(ang) * k2


def _shift_sum(x: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """Σ_k weights[:, k] · x shifted by k along `dim` (valid part only): a per-sample 1-D filter as a few
    batched multiply-adds, much faster on CPU than a grouped convolution with one kernel per sample."""
    k = weights.shape[1]
    length = x.shape[dim] - k + 1
    w = weights.to(x.device, x.dtype).view(-1, 1, 1, 1, k)
    out = x.narrow(dim, 0, length) * w[..., 0]
    for j in range(1, k):
        out.addcmul_(x.narrow(dim, j, length), w[..., j])     # in place: no temporary per tap
    return out


def _blur_draws(n: int, p: float, sigma: Tuple[float, float], gen: Optional[torch.Generator]):
    """Which samples are blurred and with which sigma, as numpy arrays (always both drawn, so the stream
    does not depend on p), from one draw of 2n uniforms: the stream of `bernoulli` then `uniform`."""
    return _blur_choice(torch.rand(2 * n, generator=gen).numpy(), n, p, sigma)


def _blur_choice(u: np.ndarray, n: int, p: float, sigma: Tuple[float, float]):
    """(blurred?, sigma) for n samples from 2n float32 uniforms (the last axis; leading axes are batches):
    the first n choose, the next n give sigma (as `bernoulli` and `uniform` would from the same numbers)."""
    return u[..., :n] < np.float32(p), np.float32(sigma[0]) + np.float32(sigma[1] - sigma[0]) * u[..., n:2 * n]


def _blur_taps(sig: np.ndarray, kernel_size: int = 5) -> np.ndarray:
    """m×k normalised Gaussian taps (float32) for m sigmas. Taps far below 8-bit precision become 0: for
    sigma ≈ 0.14 the outer taps are float32 denormals, which made the multiply-adds of the whole batch ~2x
    slower on CPU (measured), and the in-loop blur skips zero taps. In numpy: a batch's taps are a few
    ops on tiny arrays, which cost ~5 µs each as torch ops."""
    half = (kernel_size - 1) / 2
    taps = np.linspace(-half, half, kernel_size)
    k = np.exp(-0.5 * (taps[None, :] / np.asarray(sig, dtype=np.float64).reshape(-1, 1)) ** 2)
    k = k / k.sum(axis=1, keepdims=True)
    return np.where(k < 1e-6, 0.0, k).astype(np.float32)


def gaussian_blur(x: torch.Tensor, p: float, sigma: Tuple[float, float], gen: Optional[torch.Generator],
                  kernel_size: int = 5, inplace: bool = False) -> torch.Tensor:
    """v2.GaussianBlur(kernel_size, sigma) applied to each sample with probability p (reflect padding);
    `inplace` writes the blurred samples into `x` (for a batch the pipeline owns) instead of a copy."""
    on, sig = _blur_draws(x.shape[0], p, sigma, gen)
    return _blur_samples(x, on, sig, kernel_size, inplace)


def _blur_samples(x: torch.Tensor, on: np.ndarray, sig: np.ndarray, kernel_size: int = 5,
                  inplace: bool = False) -> torch.Tensor:
    idx = np.flatnonzero(on)
    if len(idx) == 0:
        return x
    dev_idx = torch.from_numpy(idx).to(x.device)
    y = _blur_rows(x, dev_idx, torch.from_numpy(_blur_taps(sig[idx], kernel_size)).to(x.device))
    out = x if inplace else x.clone()
    out[dev_idx] = y
    return out


def _blur_rows(x: torch.Tensor, idx: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """x[idx] blurred, sample i with the separable taps[i] (m × k, on x's device), reflect padding."""
    pad = taps.shape[1] // 2
    y = F.pad(x[idx], (pad, pad, pad, pad), mode="reflect")
    return _shift_sum(_shift_sum(y, taps, 3), taps, 2)


def _blur_one(sample: torch.Tensor, taps: List[float]) -> None:
    """One 1×C×H×W channels-first float sample, Gaussian-blurred in place (reflect padding), as scalar
    multiply-adds on data still in cache: the crop loop calls it right after the sample's copy into the
    batch. On that channels-first float copy rather than the resize's channels_last uint8 output: 84
    against 178 µs per 128 px sample (the pad and the shifted adds took slow strided paths there; measured).
    Zero taps (small sigmas: below ~0.38 the outer pair is zeroed by `_blur_taps`) are skipped."""
    height, width = sample.shape[-2:]
    padded = F.pad(sample, (len(taps) // 2,) * 4, mode="reflect")
    (j0, t0), *rest = [(j, t) for j, t in enumerate(taps) if t != 0.0]
    rows = padded[..., j0:j0 + width] * t0                   # horizontal pass over all padded rows
    for j, t in rest:
        rows.add_(padded[..., j:j + width], alpha=t)
    torch.mul(rows[..., j0:j0 + height, :], t0, out=sample)  # vertical pass, written back into the batch
    for j, t in rest:
        sample.add_(rows[..., j:j + height, :], alpha=t)


def adjust_sharpness(x: torch.Tensor, p: float, factor: float, gen: Optional[torch.Generator],
                     peak: float = 1.0) -> torch.Tensor:
    """v2.RandomAdjustSharpness(factor, p) per sample: blend with v2's smoothed image (3×3 kernel of ones
    with 5 in the centre, /13), borders unchanged."""
    return sharpen_with(x, bernoulli(x.shape[0], p, gen).numpy(), factor, peak)


def sharpen_with(x: torch.Tensor, on: Union[np.ndarray, torch.Tensor], factor: float, peak: float = 1.0,
                 inplace: bool = False) -> torch.Tensor:
    """`adjust_sharpness` with its choice given: the samples where `on` is True (or the indices `on` on x's
    device) are sharpened (`inplace`: written into `x`, for a batch the pipeline owns). v2's blend
    factor·x + (1 - factor)·smooth, with smooth = (3×3 box sum + 4·x) / 13, is one multiply-add of the box
    sum and the image: with the box sum as two in-place shifted adds per axis, 0.26 against 2.0 ms for 8 of
    16 faces at 128 px as separate smooth, blend, clone and scatter passes (measured)."""
    idx = on if isinstance(on, torch.Tensor) else torch.from_numpy(np.flatnonzero(on)).to(x.device)
    if len(idx) == 0:
        return x
    sel = x.index_select(0, idx)
    height, width = sel.shape[-2:]
    rows = sel[..., 0:width - 2] + sel[..., 1:width - 1]
    rows.add_(sel[..., 2:width])
    box = rows[..., 0:height - 2, :] + rows[..., 1:height - 1, :]                # 3×3 sums of the interior
    box.add_(rows[..., 2:height, :])
    a = (1 - factor) / 13
    sharpened = box.mul_(a).add_(sel[..., 1:-1, 1:-1], alpha=factor + 4 * a).clamp_(0, peak)
    out = x if inplace else x.clone()
    out[idx, :, 1:-1, 1:-1] = sharpened                                          # borders unchanged
    return out


def index_rows(on: np.ndarray, device: torch.device) -> List[torch.Tensor]:
    """For each row of a k × n boolean array, the indices of its True entries as a tensor on `device`: views
    of one tensor, made in one copy (see `plan_crops` on per-batch copies to a GPU)."""
    flat = np.flatnonzero(on)
    counts = np.bincount(flat // on.shape[1], minlength=on.shape[0]).tolist()
    return list(torch.from_numpy(flat % on.shape[1]).to(device, non_blocking=True).split(counts))
