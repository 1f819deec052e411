"""Named augmentation presets (`augment.preset`, a registry: the function name is the YAML value).

A preset lists the float stage's steps in order: a crop first (it reads uint8 pixels), the rest on float
pixels in [0, 255], and ColorJitter last, whose matmul also carries the ImageNet normalisation.
"""
from __future__ import annotations

from typing import List

from ..config import AugmentConfig
from ..registry import Registry
from .crop import CropFlip
from .jitter import ColorJitter
from .sharpen import Sharpen
from .step import Step

__all__ = ["PRESETS"]

PRESETS = Registry("augmentation preset")


@PRESETS.register
def seed(cfg: AugmentConfig) -> List[Step]:
    """The recipe: RandomResizedCrop, HorizontalFlip, GaussianBlur(p=blur_p), ColorJitter.

    The blur runs in the crop's loop, before the jitter (v2's recipe blurs after it): both are per-sample
    linear maps, so the order only matters where the jitter clamps, and the jitter's matmul then carries
    the normalisation."""
    return [_crop_flip(cfg, blur=True), _color_jitter(cfg)]


@PRESETS.register
def sharp(cfg: AugmentConfig) -> List[Step]:
    """For HRNet: RandomAdjustSharpness instead of blur, so up-sampling artifacts are not washed out."""
    return [_crop_flip(cfg), Sharpen(cfg.sharpness_p, cfg.sharpness_factor, peak=255.0), _color_jitter(cfg)]


@PRESETS.register
def none(cfg: AugmentConfig) -> List[Step]:
    """No geometric or photometric augmentation."""
    return []


def _crop_flip(cfg: AugmentConfig, blur: bool = False) -> CropFlip:
    sigma = (0.1, max(cfg.blur_sigma_max, 0.1))
    return CropFlip((cfg.crop_scale_min, 1.0), cfg.flip_p, blur=(cfg.blur_p, sigma) if blur else None)


def _color_jitter(cfg: AugmentConfig) -> ColorJitter:
    return ColorJitter(cfg.jitter_p, cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, peak=255.0,
                       normalise=True)
