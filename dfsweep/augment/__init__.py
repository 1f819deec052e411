"""Augmentation of whole uint8 training batches with per-sample randomness, on the training device.

    uint8 N×3×H×W ──self_blend──jpeg──rescale──preset steps (crop on uint8, then float [0, 255])──> normalised

* The uint8 stage simulates how fakes are made and how images travel: Self-Blended Images
  (`augment.self_blend_p`, real faces become pseudo-fakes, `self_blend.py`), JPEG re-compression (`jpeg_p`)
  and down/up-scaling (`rescale_p`, both `degrade.py`). All are off unless set, for every preset.
* The preset (`augment.preset`, `presets.py`) lists the float stage's steps: `seed` = the recipe
  (RandomResizedCrop, HorizontalFlip, GaussianBlur, ColorJitter), `sharp` = the same with
  RandomAdjustSharpness instead of blur (HRNet), `none` = nothing. Each step (`crop.py`, `sharpen.py`,
  `jitter.py`) plans its per-sample parameters from uniforms, then applies them to a batch (`step.py`).

One API (`pipeline.py`): `Augmenter.plan` works out the random choices of an epoch's batches in one pass
(one generator per batch), and `Augmenter(...)(images, labels, plan[b], rows)` applies batch b's.
`normalize` is the eval transform.
"""
from .normalize import IMAGENET_MEAN, IMAGENET_STD, normalize
from .pipeline import Augmenter, BatchPlan
from .presets import PRESETS
from .step import Step

__all__ = ["PRESETS", "Step", "Augmenter", "BatchPlan", "normalize", "IMAGENET_MEAN", "IMAGENET_STD"]
