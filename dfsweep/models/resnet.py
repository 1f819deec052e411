"""A plain ResNet baseline: the reference point every other family has to beat.

Deliberately conventional (He et al. 2016, BasicBlock variant): a 7x7 stride-2 conv stem followed by
a 3x3 stride-2 max-pool, four stages of BasicBlocks with base widths 64 -> 128 -> 256 -> 512 times
``width`` (rounded to a multiple of 8), ``depth`` blocks per stage, ReLU, then global average
pooling -> dropout -> linear. ``width=1.0, depth=2`` is ResNet-18's layout. Nothing here is tuned for
manipulation traces (no attention pooling, max-pool in the stem), which is the point of a baseline:
a gap between it and DeepFakeNet/HRNet/FFT measures what their design choices buy.

The default is half width, so that from-scratch training on a 2-core CPU stays within ~2x the cost
of DeepFakeNet; set ``width: 1.0`` for the full ResNet-18 widths.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ._registry import check_common, register_model
from .layers import ConvBnAct, init_weights, make_divisible, make_stages

__all__ = ["ResNet", "resnet"]

_BASE_WIDTHS = (64, 128, 256, 512)


def _relu() -> nn.Module:
    return nn.ReLU(inplace=True)


class ResNet(nn.Module):
    def __init__(self, in_chans: int = 3, num_classes: int = 1, width: float = 0.5, depth: int = 2,
                 dropout: float = 0.3):
        super().__init__()
        widths = [make_divisible(c * width) for c in _BASE_WIDTHS]
        self.stem = nn.Sequential(ConvBnAct(in_chans, widths[0], 7, 2, act=_relu),
                                  nn.MaxPool2d(3, 2, padding=1))
        self.stages = make_stages(widths, widths[0], depth, _relu)
        self.num_features = widths[-1]
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(x.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def resnet(*, in_chans: int = 3, num_classes: int = 1, width: float = 0.5, depth: int = 2,
           dropout: float = 0.3) -> ResNet:
    """Plain BasicBlock ResNet (64-128-256-512 x width, depth blocks per stage), GAP head."""
    check_common(width=width, depth=depth, dropout=dropout)
    return ResNet(in_chans, num_classes, width, depth, dropout)
