"""Losses: the recipe's mix  w * BCEWithLogits(pos_weight) + (1 - w) * Focal(gamma)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from .config import LossConfig

__all__ = ["BceFocalLoss", "build_loss"]


class BceFocalLoss(nn.Module):
    """Mean over the batch of  w * BCE(pos_weight) + (1 - w) * Focal(gamma) for binary logits.

    The focal term is torchvision's `sigmoid_focal_loss` without alpha balancing (alpha=-1): the class
    imbalance is already handled by pos_weight on the BCE term and by the balanced sampler.
    """

    def __init__(self, bce_weight: float = 0.6, gamma: float = 2.0, pos_weight: float | None = None):
        super().__init__()
        self.bce_weight = float(bce_weight)
        self.gamma = float(gamma)
        pw = torch.tensor(float(pos_weight)) if pos_weight is not None else None
        self.register_buffer("pos_weight", pw, persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float().reshape(-1)
        targets = targets.float().reshape(-1)
        bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight)
        if self.bce_weight >= 1.0:
            return bce
        focal = sigmoid_focal_loss(logits, targets, alpha=-1, gamma=self.gamma, reduction="mean")
        return self.bce_weight * bce + (1.0 - self.bce_weight) * focal


def build_loss(cfg: LossConfig, n_real: int, n_fake: int) -> BceFocalLoss:
    """pos_weight defaults to n_real / n_fake of the training split (the recipe's class weight)."""
    pos_weight = cfg.pos_weight if cfg.pos_weight is not None else n_real / max(n_fake, 1)
    return BceFocalLoss(cfg.bce_weight, cfg.gamma, pos_weight)
