"""Named augmentation pipelines (torchvision.transforms.v2) on uint8 CHW tensors.

A preset returns the *geometric and photometric* part only; images stay uint8 so that batches travel
cheaply (and to the GPU as bytes). `normalize` turns a uint8 batch into ImageNet-normalised floats on
whatever device it is on.
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2

from .config import AugmentConfig
from .registry import Registry

__all__ = ["PRESETS", "build_train_transform", "normalize", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PRESETS = Registry("augmentation preset")


def _crop_flip_jitter(cfg: AugmentConfig, size: int) -> list:
    return [
        v2.RandomResizedCrop(size, scale=(cfg.crop_scale_min, 1.0), antialias=True),
        v2.RandomHorizontalFlip(p=cfg.flip_p),
        v2.RandomApply([v2.ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)], p=cfg.jitter_p),
    ]


@PRESETS.register
def seed(cfg: AugmentConfig, size: int) -> v2.Transform:
    """The recipe: RandomResizedCrop, HorizontalFlip, ColorJitter, GaussianBlur(p=blur_p)."""
    blur = v2.GaussianBlur(kernel_size=5, sigma=(0.1, max(cfg.blur_sigma_max, 0.1)))
    return v2.Compose(_crop_flip_jitter(cfg, size) + [v2.RandomApply([blur], p=cfg.blur_p)])


@PRESETS.register
def sharp(cfg: AugmentConfig, size: int) -> v2.Transform:
    """For HRNet: RandomAdjustSharpness instead of blur, so up-sampling artifacts are not washed out."""
    return v2.Compose(
        _crop_flip_jitter(cfg, size)
        + [v2.RandomAdjustSharpness(sharpness_factor=cfg.sharpness_factor, p=cfg.sharpness_p)]
    )


@PRESETS.register
def none(cfg: AugmentConfig, size: int) -> v2.Transform:
    """No augmentation (images are already decoded at `size`)."""
    return v2.Identity()


def build_train_transform(cfg: AugmentConfig, size: int) -> v2.Transform:
    return PRESETS.get(cfg.preset, "augment.preset")(cfg, size)


def normalize(batch_u8: torch.Tensor) -> torch.Tensor:
    """uint8 N×3×H×W -> float32, scaled to [0, 1] and ImageNet-normalised (the eval transform)."""
    x = batch_u8.float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)
