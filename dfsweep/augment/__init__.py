"""Named augmentation pipelines, applied to whole uint8 batches with per-sample randomness.

A training batch goes, on the training device (the GPU when there is one):

    uint8 N×3×H×W ──self_blend──jpeg──rescale──preset ops (crop on uint8, then float [0, 255])──> normalised

* The uint8 stage simulates how fakes are made and how images travel: Self-Blended Images
  (`augment.self_blend_p`, real faces become pseudo-fakes), JPEG re-compression (`jpeg_p`) and
  down/up-scaling (`rescale_p`). All are off unless set, for every preset.
* The preset (`augment.preset`, a registry: the function name is the YAML value) lists the ops, then
  ColorJitter, then the ImageNet normalisation: `seed` = the recipe (RandomResizedCrop,
  HorizontalFlip, GaussianBlur, ColorJitter), `sharp` = the same with RandomAdjustSharpness instead of
  blur (HRNet), `none` = nothing.

Every random choice comes from the `torch.Generator` passed in, so a batch's augmentation is a function
of (seed, epoch, batch number) — resumable and identical on CPU and CUDA.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch

from ..config import AugmentConfig
from ..data.layout import gather_rows
from ..registry import Registry
from . import batched as B

__all__ = ["PRESETS", "Preset", "Augmenter", "build_train_augment", "normalize", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Op = Callable[[torch.Tensor, Optional[torch.Generator]], torch.Tensor]
# (images, gen, rows) -> float batch of images[rows] (rows None: all of `images`)
CropOp = Callable[[torch.Tensor, Optional[torch.Generator], Optional[torch.Tensor]], torch.Tensor]
PRESETS = Registry("augmentation preset")


@dataclass(frozen=True)
class Preset:
    ops: List[Op]                   # in order, on float pixels, after the crop
    crop: Optional[CropOp] = None   # first, on uint8: the one op that can read its rows from the whole set
    jitter: bool = True             # ColorJitter last (one batched matmul with the normalisation folded in)


def _crop_flip(cfg: AugmentConfig, blur: Optional[Tuple[float, Tuple[float, float]]] = None) -> CropOp:
    return lambda x, g, rows: B.resized_crop_flip(x, (cfg.crop_scale_min, 1.0), cfg.flip_p, g, rows=rows, blur=blur)


@PRESETS.register
def seed(cfg: AugmentConfig) -> Preset:
    """The recipe: RandomResizedCrop, HorizontalFlip, GaussianBlur(p=blur_p), ColorJitter.

    Blur runs before the jitter here (v2's recipe blurs after it): both are per-sample linear maps, so the
    order only matters where the jitter clamps, and the jitter's matmul then carries the normalisation."""
    sigma = (0.1, max(cfg.blur_sigma_max, 0.1))
    # the blur rides in the crop's loop (the same draws as `gaussian_blur` after it), on each sample in cache
    return Preset([], crop=_crop_flip(cfg, blur=(cfg.blur_p, sigma)))


@PRESETS.register
def sharp(cfg: AugmentConfig) -> Preset:
    """For HRNet: RandomAdjustSharpness instead of blur, so up-sampling artifacts are not washed out."""
    return Preset([lambda x, g: B.adjust_sharpness(x, cfg.sharpness_p, cfg.sharpness_factor, g, peak=255.0)],
                  crop=_crop_flip(cfg))


@PRESETS.register
def none(cfg: AugmentConfig) -> Preset:
    """No geometric or photometric augmentation."""
    return Preset([], jitter=False)


class Augmenter:
    """`augmenter(batch_u8, labels, gen) -> (normalised float batch, labels)`; labels change only through
    self-blending (a real face turned pseudo-fake is labelled fake)."""

    def __init__(self, cfg: AugmentConfig, channels_last: bool = False):
        self.cfg = cfg
        self.preset = PRESETS.get(cfg.preset, "augment.preset")(cfg)
        self.channels_last = channels_last       # the last pass writes the model's memory format

    def __call__(self, batch_u8: torch.Tensor, labels: torch.Tensor, gen: Optional[torch.Generator] = None,
                 rows: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """With `rows`, the batch is batch_u8[rows] (batch_u8 the whole decoded set, `labels` the batch's
        labels): the crop reads its boxes from there and the batch is never gathered; a pipeline whose
        first ops change whole uint8 images (self-blending, JPEG, rescaling) or that has no crop gathers it."""
        c = self.cfg
        if rows is not None and (self.preset.crop is None or c.self_blend_p > 0 or c.jpeg_p > 0 or c.rescale_p > 0):
            batch_u8, rows = gather_rows(batch_u8, rows), None
        if c.self_blend_p > 0:
            from .self_blend import self_blend
            batch_u8, labels = self_blend(batch_u8, labels, c.self_blend_p, generator=gen)
        if c.jpeg_p > 0:
            from .degrade import jpeg
            batch_u8 = jpeg(batch_u8, c.jpeg_p, (c.jpeg_quality_min, c.jpeg_quality_max), generator=gen)
        if c.rescale_p > 0:
            from .degrade import rescale
            batch_u8 = rescale(batch_u8, c.rescale_p, c.rescale_min, generator=gen)
        x = batch_u8                                          # pixel units, [0, 255]
        if self.preset.crop is not None:
            x = self.preset.crop(x, gen, rows)                # a float batch from here on
        for op in self.preset.ops:
            x = op(x, gen)
        if self.preset.jitter:      # the normalisation is folded into the jitter's matmul and clamp
            x = B.color_jitter(x, c.jitter_p, c.brightness, c.contrast, c.saturation, c.hue, gen, peak=255.0,
                               then=_STANDARDISE)
            return (x.contiguous(memory_format=torch.channels_last) if self.channels_last else x), labels
        return _standardise(x.float(), self.channels_last), labels


def build_train_augment(cfg: AugmentConfig, channels_last: bool = False) -> Augmenter:
    return Augmenter(cfg, channels_last)


# per-channel (scale, shift) taking pixel units [0, 255] to ImageNet-normalised: x / (255 std) - mean / std
_STANDARDISE = (torch.tensor([1 / (255 * s) for s in IMAGENET_STD]),
                torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]))


def _standardise(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """Pixel units [0, 255] -> ImageNet-normalised in one pass, written in channels_last when asked (so the
    model's layout costs no extra copy)."""
    scale, shift = (t.to(x.device, x.dtype).view(1, 3, 1, 1) for t in _STANDARDISE)
    fmt = torch.channels_last if channels_last and x.dim() == 4 else torch.contiguous_format
    return torch.addcmul(shift, x, scale, out=torch.empty_like(x, memory_format=fmt))


def normalize(batch_u8: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 N×3×H×W -> float32, scaled to [0, 1] and ImageNet-normalised (the eval transform)."""
    return _standardise(batch_u8.float(), channels_last)
