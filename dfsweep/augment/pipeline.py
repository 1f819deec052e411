"""A training batch's augmentation: plan its random choices (or a whole epoch's), then apply them.

    uint8 N×3×H×W ──self_blend──jpeg──rescale──preset steps (crop on uint8, then float [0, 255])──> normalised

Every random choice comes from the batch's own CPU `torch.Generator`, so a batch's augmentation is a function
of that generator alone: resumable, the same in loader workers, and the same on CPU and CUDA.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..config import AugmentConfig
from ..data.layout import gather_rows
from .normalize import standardise
from .presets import PRESETS
from .self_blend import self_blend
from .step import Step

__all__ = ["Augmenter", "BatchPlan", "gpu_or_none"]


def gpu_or_none(device: torch.device) -> Optional[torch.device]:
    """Where a plan's tensors go: a GPU's batched kernels take theirs there; None plans for the CPU's loops."""
    return device if device.type == "cuda" else None


@dataclass(frozen=True)
class BatchPlan:
    """One batch's random choices: each step's parameters, worked out ahead; or, when uint8 ops are on, the
    batch's generator: those ops draw from it as they run, and the steps' draws follow theirs."""
    params: Optional[List[Any]] = None
    gen: Optional[torch.Generator] = None


class Augmenter:
    """`plan(gens, n, size, device)` -> one `BatchPlan` per batch; `augmenter(images, labels, plan, rows)` ->
    (normalised float batch in the model's memory format, labels). Labels change only through self-blending
    (a real face turned pseudo-fake is labelled fake)."""

    def __init__(self, cfg: AugmentConfig, channels_last: bool = False):
        self.cfg = cfg
        self.steps: List[Step] = PRESETS.get(cfg.preset, "augment.preset")(cfg)
        self.channels_last = channels_last
        self.uint8_stage = cfg.self_blend_p > 0 or cfg.jpeg_p > 0 or cfg.rescale_p > 0
        # only a crop reads its boxes straight from the whole set by row; otherwise the batch is gathered first
        self.reads_rows = bool(self.steps) and self.steps[0].reads_rows and not self.uint8_stage
        self.normalised = bool(self.steps) and self.steps[-1].normalises

    def plan(self, gens: Sequence[torch.Generator], n: int, size: Tuple[int, int],
             device: torch.device) -> List[BatchPlan]:
        """Plans for batches of n samples of `size` (H, W), one generator each, in one vectorised pass over
        all of them; each batch's uniforms come from its own generator, so it gets the numbers it would draw
        alone. With uint8 ops a batch's plan is its generator (they draw first, from the batch itself)."""
        if self.uint8_stage:
            return [BatchPlan(gen=g) for g in gens]
        u = np.stack([torch.rand(self._draws(n), generator=g).numpy() for g in gens])
        return [BatchPlan(params=params) for params in self._plan_steps(u, n, size, device)]

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, plan: BatchPlan,
                 rows: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """The batch images[rows] (`images` itself without `rows`) and its labels, augmented as `plan` says."""
        if plan.params is not None and self.uint8_stage:
            raise ValueError("a planned batch cannot have uint8 ops (self-blending, JPEG, rescaling)")
        if rows is not None and not (self.reads_rows and isinstance(images, torch.Tensor)):
            images, rows = gather_rows(images, rows), None     # a set in the cache is read a batch at a time
        params = plan.params
        if params is None:
            images, labels = self._uint8_ops(images, labels, plan.gen)
            u = torch.rand(self._draws(len(images)), generator=plan.gen).numpy()[None]
            params = self._plan_steps(u, len(images), images.shape[-2:], images.device)[0]
        x = images                                            # pixel units [0, 255]
        for step, step_params in zip(self.steps, params):
            x, rows = step(x, step_params, rows), None        # a float batch after the first step
        if self.normalised:
            return (x.contiguous(memory_format=torch.channels_last) if self.channels_last else x), labels
        return standardise(x.float(), self.channels_last), labels

    def _draws(self, n: int) -> int:
        return n * sum(step.draws for step in self.steps)

    def _plan_steps(self, u: np.ndarray, n: int, size: Tuple[int, int], device: torch.device) -> List[List[Any]]:
        """Per batch (a row of u), each step's parameters, from its slice of the uniforms."""
        per_step, at, gpu = [], 0, gpu_or_none(device)
        for step in self.steps:
            per_step.append(step.plan(u[:, at:at + step.draws * n], n, tuple(size), gpu))
            at += step.draws * n
        return [[params[b] for params in per_step] for b in range(u.shape[0])]

    def _uint8_ops(self, images: torch.Tensor, labels: torch.Tensor,
                   gen: Optional[torch.Generator]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Self-blending, JPEG re-compression and rescaling, each where its probability is above 0."""
        c = self.cfg
        if c.self_blend_p > 0:
            images, labels = self_blend(images, labels, c.self_blend_p, generator=gen)
        if c.jpeg_p > 0:
            from .degrade import jpeg                # imported here: torchvision's import is slow, and rarely needed
            images = jpeg(images, c.jpeg_p, (c.jpeg_quality_min, c.jpeg_quality_max), generator=gen)
        if c.rescale_p > 0:
            from .degrade import rescale
            images = rescale(images, c.rescale_p, c.rescale_min, generator=gen)
        return images, labels
