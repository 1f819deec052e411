"""One-shot forms of the augmentation steps, for tests: draw one batch's uniforms from `gen`, plan, apply.

The package itself only plans (an epoch or a batch) and applies; these read like torchvision's per-call
transforms, so the tests can compare the two."""
from typing import Optional, Tuple

import numpy as np
import torch

from dfsweep.augment.blur import blur_choice, blur_rows, gaussian_taps
from dfsweep.augment.crop import CropFlip
from dfsweep.augment.jitter import ColorJitter
from dfsweep.augment.sharpen import Sharpen


def uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (high - low) + low


def bernoulli(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def once(step, x: torch.Tensor, gen: torch.Generator, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
    """`step` on the batch x (or x[rows]) with its parameters drawn from `gen` in one draw."""
    n = x.shape[0] if rows is None else len(rows)
    u = torch.rand(step.draws * n, generator=gen).numpy()[None]
    return step(x, step.plan(u, n, tuple(x.shape[-2:]), None)[0], rows)


def resized_crop_flip(x, scale, flip_p, gen, ratio=(3 / 4, 4 / 3), rows=None, blur=None) -> torch.Tensor:
    return once(CropFlip(scale, flip_p, blur=blur, ratio=ratio), x, gen, rows)


def color_jitter(x, p, brightness, contrast, saturation, hue, gen, peak=1.0, normalise=False) -> torch.Tensor:
    return once(ColorJitter(p, brightness, contrast, saturation, hue, peak=peak, normalise=normalise), x, gen)


def adjust_sharpness(x, p, factor, gen, peak=1.0) -> torch.Tensor:
    return once(Sharpen(p, factor, peak=peak), x.clone(), gen)


def gaussian_blur(x: torch.Tensor, p: float, sigma: Tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """v2.GaussianBlur(5, sigma) on each sample with probability p, through the batched blur kernel."""
    on, sig = blur_choice(torch.rand(2 * x.shape[0], generator=gen).numpy(), x.shape[0], p, sigma)
    idx = np.flatnonzero(on)
    out = x.clone()
    if len(idx):
        rows = torch.from_numpy(idx)
        out[rows] = blur_rows(x, rows, torch.from_numpy(gaussian_taps(sig[idx])))
    return out


def augment_once(aug, images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator,
                 rows: Optional[torch.Tensor] = None):
    """`aug` on the batch images[rows] (or images) with its random choices planned from `gen` alone."""
    n = images.shape[0] if rows is None else len(rows)
    plan = aug.plan([gen], n, tuple(images.shape[-2:]), images.device)[0]
    return aug(images, labels, plan, rows=rows)
