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
of (seed, epoch, batch number) — resumable and identical on CPU and CUDA. The ops after the uint8 stage
are `Step`s whose parameters can be worked out for many batches at once: a trial plans an epoch's in one
pass (`Augmenter.plan`, one generator per batch), and each batch gets the numbers it would draw alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..config import AugmentConfig
from ..data.layout import gather_rows
from ..registry import Registry
from . import batched as B

__all__ = ["PRESETS", "Preset", "Step", "Augmenter", "build_train_augment", "normalize", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PRESETS = Registry("augmentation preset")


@dataclass(frozen=True)
class Step:
    """One random op of the float stage. It takes `draws` uniforms per sample; `plan(u, n, size, device)`
    turns the uniforms of k batches of n samples of `size` (a k × draws·n float32 array) into k per-batch
    parameters, and `apply(x, params, rows)` runs it on a batch. Only a first step with `reads_rows` is
    given the batch's rows of the whole decoded set (the crop reads each box from there)."""
    draws: int
    plan: Callable[[np.ndarray, int, Tuple[int, int], torch.device], Sequence[Any]]
    apply: Callable[[torch.Tensor, Any, Optional[torch.Tensor]], torch.Tensor]
    reads_rows: bool = False


@dataclass(frozen=True)
class Preset:
    steps: List[Step]               # in order; a crop comes first (on uint8), the rest on float pixels
    jitter: bool = True             # ColorJitter last (one batched matmul with the normalisation folded in)


def _crop_flip(cfg: AugmentConfig, blur: Optional[Tuple[float, Tuple[float, float]]] = None) -> Step:
    return Step(B.crop_draws(blur is not None),
                lambda u, n, size, device: B.plan_crops(u, n, size, (cfg.crop_scale_min, 1.0), cfg.flip_p,
                                                        blur=blur, device=B.gpu_or_none(device)),
                lambda x, plan, rows: B.crop_with(x, plan, rows), reads_rows=True)


def _jitter(cfg: AugmentConfig) -> Step:
    def plan(u: np.ndarray, n: int, size: Tuple[int, int], device: torch.device) -> torch.Tensor:
        params = B.plan_jitter(u, n, cfg.jitter_p, cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue,
                               peak=255.0, then=_STANDARDISE)
        return params.to(device, non_blocking=True)       # all the batches' parameters in one copy
    return Step(B.JITTER_DRAWS, plan, lambda x, params, rows: B.jitter_with(x, params))


@PRESETS.register
def seed(cfg: AugmentConfig) -> Preset:
    """The recipe: RandomResizedCrop, HorizontalFlip, GaussianBlur(p=blur_p), ColorJitter.

    Blur runs before the jitter here (v2's recipe blurs after it): both are per-sample linear maps, so the
    order only matters where the jitter clamps, and the jitter's matmul then carries the normalisation."""
    sigma = (0.1, max(cfg.blur_sigma_max, 0.1))
    # the blur rides in the crop's loop (the same draws as `gaussian_blur` after it), on each sample in cache
    return Preset([_crop_flip(cfg, blur=(cfg.blur_p, sigma))])


@PRESETS.register
def sharp(cfg: AugmentConfig) -> Preset:
    """For HRNet: RandomAdjustSharpness instead of blur, so up-sampling artifacts are not washed out."""
    def plan(u: np.ndarray, n: int, size: Tuple[int, int], device: torch.device):
        on = u < np.float32(cfg.sharpness_p)
        return on if B.gpu_or_none(device) is None else B.index_rows(on, device)
    sharpen = Step(1, plan, lambda x, on, rows: B.sharpen_with(x, on, cfg.sharpness_factor, peak=255.0, inplace=True))
    return Preset([_crop_flip(cfg), sharpen])


@PRESETS.register
def none(cfg: AugmentConfig) -> Preset:
    """No geometric or photometric augmentation."""
    return Preset([], jitter=False)


class Augmenter:
    """`augmenter(batch_u8, labels, gen) -> (normalised float batch, labels)`; labels change only through
    self-blending (a real face turned pseudo-fake is labelled fake).

    `plan(gens, n, size, device)` works out the float stage's parameters for a whole epoch's batches at
    once (one generator per batch, so each batch gets exactly the numbers it would draw alone); each
    batch is then `augmenter(batch_u8, labels, rows=rows, planned=plan[b])`."""

    def __init__(self, cfg: AugmentConfig, channels_last: bool = False):
        self.cfg = cfg
        preset = PRESETS.get(cfg.preset, "augment.preset")(cfg)
        self.steps = list(preset.steps) + ([_jitter(cfg)] if preset.jitter else [])
        self.normalises = preset.jitter          # the jitter's matmul carries the normalisation
        self.channels_last = channels_last       # the last pass writes the model's memory format
        self.uint8_stage = cfg.self_blend_p > 0 or cfg.jpeg_p > 0 or cfg.rescale_p > 0

    def plan(self, gens: Sequence[torch.Generator], n: int, size: Tuple[int, int],
             device: torch.device) -> Optional[List[List[Any]]]:
        """Per batch (one generator each, n samples of `size` (H, W)), the float stage's parameters, from one
        vectorised pass over all the batches: done batch by batch, the parameters' small numpy and torch
        ops measured ~0.5 ms of a ~2.4 ms augmented batch in a training loop on this project's CPU.

        None when a uint8 op (self-blending, JPEG, rescaling) is on: those draw from a batch's generator
        first, so its batches are augmented (and drawn) one by one."""
        if self.uint8_stage:
            return None
        u = np.stack([torch.rand(self._draws(n), generator=g).numpy() for g in gens])
        return self._plan(u, n, size, device)

    def _draws(self, n: int) -> int:
        return n * sum(step.draws for step in self.steps)

    def _plan(self, u: np.ndarray, n: int, size: Tuple[int, int], device: torch.device) -> List[List[Any]]:
        per_step, at = [], 0
        for step in self.steps:
            per_step.append(step.plan(u[:, at:at + step.draws * n], n, tuple(size), device))
            at += step.draws * n
        return [[params[b] for params in per_step] for b in range(u.shape[0])]

    def __call__(self, batch_u8: torch.Tensor, labels: torch.Tensor, gen: Optional[torch.Generator] = None,
                 rows: Optional[torch.Tensor] = None,
                 planned: Optional[List[Any]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """With `rows`, the batch is batch_u8[rows] (batch_u8 the whole decoded set, `labels` the batch's
        labels): the crop reads its boxes from there and the batch is never gathered; a pipeline whose
        first ops change whole uint8 images (self-blending, JPEG, rescaling) or that has no crop gathers it.
        With `planned` (one batch of `plan`), `gen` is not used."""
        c = self.cfg
        if rows is not None and (not self.steps or not self.steps[0].reads_rows or self.uint8_stage):
            batch_u8, rows = gather_rows(batch_u8, rows), None
        if planned is not None and self.uint8_stage:
            raise ValueError("a planned batch cannot have uint8 ops (self-blending, JPEG, rescaling)")
        if c.self_blend_p > 0:
            from .self_blend import self_blend
            batch_u8, labels = self_blend(batch_u8, labels, c.self_blend_p, generator=gen)
        if c.jpeg_p > 0:
            from .degrade import jpeg
            batch_u8 = jpeg(batch_u8, c.jpeg_p, (c.jpeg_quality_min, c.jpeg_quality_max), generator=gen)
        if c.rescale_p > 0:
            from .degrade import rescale
            batch_u8 = rescale(batch_u8, c.rescale_p, c.rescale_min, generator=gen)
        if planned is None:         # this batch's uniforms in one draw: the stream of each op drawing in turn
            n = batch_u8.shape[0] if rows is None else len(rows)
            u = torch.rand(self._draws(n), generator=gen).numpy()[None]
            planned = self._plan(u, n, batch_u8.shape[-2:], batch_u8.device)[0]
        x = batch_u8                                          # pixel units, [0, 255]
        for step, params in zip(self.steps, planned):
            x = step.apply(x, params, rows)                   # a float batch after the first step
            rows = None
        if self.normalises:
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
