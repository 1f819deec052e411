"""A sampler that draws real and fake images equally often, whatever the class ratio on disk."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

__all__ = ["balanced_sampler"]


def balanced_sampler(labels: np.ndarray, seed: int, num_samples: Optional[int] = None) -> WeightedRandomSampler:
    """50/50 classes in expectation: each image weighs 1 / (its class's count), drawn with replacement.

    The generator is seeded once, so two samplers built with one seed give the same epochs, while
    successive epochs of one sampler differ.
    """
    labels = np.asarray(labels).astype(np.int64, copy=False)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    counts = np.bincount(labels)
    weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return WeightedRandomSampler(weights, num_samples=int(num_samples or len(labels)), replacement=True,
                                 generator=gen)
