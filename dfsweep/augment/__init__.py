"""Named augmentation pipelines, applied to whole uint8 batches with per-sample randomness.

A training batch goes, on the training device (the GPU when there is one):

    uint8 N×3×H×W ──self_blend──jpeg──rescale──> float [0, 1] ──preset ops──> ImageNet-normalised float

* The uint8 stage simulates how fakes are made and how images travel: Self-Blended Images
  (`augment.self_blend_p`, real faces become pseudo-fakes), JPEG re-compression (`jpeg_p`) and
  down/up-scaling (`rescale_p`). All are off unless set, for every preset.
* The preset (`augment.preset`, a registry: the function name is the YAML value) lists the float ops:
  `seed` = the recipe (RandomResizedCrop, HorizontalFlip, ColorJitter, GaussianBlur), `sharp` = the
  same with RandomAdjustSharpness instead of blur (HRNet), `none` = nothing.

Every random choice comes from the `torch.Generator` passed in, so a batch's augmentation is a function
of (seed, epoch, batch number) — resumable and identical on CPU and CUDA.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import torch

from ..config import AugmentConfig
from ..registry import Registry
from . import batched as B

__all__ = ["PRESETS", "Augmenter", "build_train_augment", "normalize", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FloatOp = Callable[[torch.Tensor, Optional[torch.Generator]], torch.Tensor]
PRESETS = Registry("augmentation preset")


def _crop_flip_jitter(cfg: AugmentConfig) -> List[FloatOp]:
    return [
        lambda x, g: B.resized_crop_flip(x, (cfg.crop_scale_min, 1.0), cfg.flip_p, g),
        lambda x, g: B.color_jitter(x, cfg.jitter_p, cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, g),
    ]


@PRESETS.register
def seed(cfg: AugmentConfig) -> List[FloatOp]:
    """The recipe: RandomResizedCrop, HorizontalFlip, ColorJitter, GaussianBlur(p=blur_p)."""
    sigma = (0.1, max(cfg.blur_sigma_max, 0.1))
    return _crop_flip_jitter(cfg) + [lambda x, g: B.gaussian_blur(x, cfg.blur_p, sigma, g)]


@PRESETS.register
def sharp(cfg: AugmentConfig) -> List[FloatOp]:
    """For HRNet: RandomAdjustSharpness instead of blur, so up-sampling artifacts are not washed out."""
    return _crop_flip_jitter(cfg) + [lambda x, g: B.adjust_sharpness(x, cfg.sharpness_p, cfg.sharpness_factor, g)]


@PRESETS.register
def none(cfg: AugmentConfig) -> List[FloatOp]:
    """No geometric or photometric augmentation."""
    return []


class Augmenter:
    """`augmenter(batch_u8, labels, gen) -> (normalised float batch, labels)`; labels change only through
    self-blending (a real face turned pseudo-fake is labelled fake)."""

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg
        self.ops = PRESETS.get(cfg.preset, "augment.preset")(cfg)

    def __call__(self, batch_u8: torch.Tensor, labels: torch.Tensor,
                 gen: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        if c.self_blend_p > 0:
            from .self_blend import self_blend
            batch_u8, labels = self_blend(batch_u8, labels, c.self_blend_p, generator=gen)
        if c.jpeg_p > 0:
            from .degrade import jpeg
            batch_u8 = jpeg(batch_u8, c.jpeg_p, (c.jpeg_quality_min, c.jpeg_quality_max), generator=gen)
        if c.rescale_p > 0:
            from .degrade import rescale
            batch_u8 = rescale(batch_u8, c.rescale_p, c.rescale_min, generator=gen)
        x = B.to_unit_float(batch_u8)
        for op in self.ops:
            x = op(x, gen)
        return _standardise(x), labels


def build_train_augment(cfg: AugmentConfig) -> Augmenter:
    return Augmenter(cfg)


def _standardise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


def normalize(batch_u8: torch.Tensor) -> torch.Tensor:
    """uint8 N×3×H×W -> float32, scaled to [0, 1] and ImageNet-normalised (the eval transform)."""
    return _standardise(B.to_unit_float(batch_u8))
