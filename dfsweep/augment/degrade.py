"""How images travel: JPEG re-compression and down/up-scaling, on whole uint8 batches.

Test-time videos were re-encoded and resized on their way to us, which wipes out exactly the
high-frequency traces a detector likes to learn from clean training crops. Degrading a random share of
training samples the same way makes the model rely on cues that survive the trip.

Random numbers are drawn on the CPU from `generator` for every sample, in a fixed order, so the same
seed selects the same samples with the same settings on CPU and CUDA. Only the selected samples are
touched, one at a time: with a small `p` they are few, and per-sample sizes and qualities differ.
"""
from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["jpeg", "rescale"]


def _check(images: torch.Tensor, p: float) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be uint8 N×3×H×W, got {images.dtype} {tuple(images.shape)}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")


def jpeg(
    images: torch.Tensor, p: float, quality: tuple[int, int] = (30, 95), generator: torch.Generator | None = None
) -> torch.Tensor:
    """With probability `p` per sample, re-compress it as JPEG at a quality drawn from [q_min, q_max]."""
    _check(images, p)
    q_min, q_max = quality
    if not (1 <= q_min <= 100 and 1 <= q_max <= 100) or q_min > q_max:
        raise ValueError(f"quality must satisfy 1 <= q_min <= q_max <= 100, got {quality}")
    if p == 0.0:
        return images
    n = images.shape[0]
    chosen = torch.rand(n, generator=generator) < p
    qualities = torch.randint(q_min, q_max + 1, (n,), generator=generator)
    idx = torch.nonzero(chosen, as_tuple=True)[0].tolist()
    if not idx:
        return images
    # one quality per sample, so one by one on the CPU with libjpeg both ways (a GPU decoder rounds
    # differently): CPU and GPU runs train on the same pixels
    cpu = images[idx].permute(0, 2, 3, 1).cpu().numpy()
    decoded = torch.from_numpy(np.stack([_jpeg_round_trip(cpu[i], int(qualities[j])) for i, j in enumerate(idx)]))
    decoded = decoded.permute(0, 3, 1, 2).to(images.device, non_blocking=True)
    out = images.clone()
    out[torch.tensor(idx, device=images.device)] = decoded
    return out


def _jpeg_round_trip(hwc: np.ndarray, quality: int) -> np.ndarray:
    """One H×W×3 uint8 image encoded as JPEG at `quality` and decoded again (Pillow's libjpeg)."""
    buf = io.BytesIO()
    Image.fromarray(hwc).save(buf, format="JPEG", quality=quality)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def rescale(
    images: torch.Tensor, p: float, scale_min: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """With probability `p` per sample, shrink it by a factor in [scale_min, 1) and enlarge it back.

    Down with antialiased bilinear (area-like, as a video scaler would), up with bilinear: the result
    has the original size but only the detail the small copy kept.
    """
    _check(images, p)
    if not 0.0 < scale_min <= 1.0:
        raise ValueError(f"scale_min must be in (0, 1], got {scale_min}")
    if p == 0.0:
        return images
    n, (h, w) = images.shape[0], images.shape[-2:]
    chosen = torch.rand(n, generator=generator) < p
    scales = scale_min + torch.rand(n, generator=generator) * (1.0 - scale_min)
    idx = torch.nonzero(chosen, as_tuple=True)[0].tolist()
    if not idx:
        return images
    out = images.clone()
    for i in idx:
        s = float(scales[i])
        small_size = (max(1, round(h * s)), max(1, round(w * s)))
        if small_size == (h, w):
            continue  # a round trip at the same size would only blur through resampling
        x = images[i : i + 1].float()
        small = F.interpolate(x, size=small_size, mode="bilinear", antialias=True, align_corners=False)
        back = F.interpolate(small, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        out[i] = back[0].round_().clamp_(0, 255).to(torch.uint8)
    return out
