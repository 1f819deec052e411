"""DeepFakeNet: a small residual CNN with a two-part pooled head, built for training from scratch.

Design, and why:

* **Stem**: two 3x3 stride-2 convolutions (BN + SiLU after each) take the input to 1/4 resolution.
  Strided convolutions instead of a 7x7 conv + max-pool keep the early layers learnable (max-pool
  throws away exactly the low-amplitude, high-frequency residue that blending and up-sampling leave
  behind) and they are cheap on a CPU.
* **Body**: four residual stages with base widths 32 -> 64 -> 128 -> 256, times ``width`` and rounded
  to a multiple of 8 (vector-friendly channel counts); ``depth`` blocks per stage; stages 2-4 halve
  the resolution in their first block. Blocks are BasicBlocks (two 3x3 convs, activation after the
  addition) with SiLU; the last BN of each residual branch starts at gamma = 0, so every block begins
  as its shortcut and the untrained net is shallow, which keeps from-scratch training stable.
* **Head**: ``concat(global average pooling, adaptive context pooling) -> dropout -> linear``.
  Manipulation traces are often local (mouth, eyes, the blending boundary); a plain average dilutes
  them with the rest of the face. *Adaptive context pooling* is learned spatial-attention pooling:
  for a feature map ``F`` of shape (N, C, H, W), a 1x1 convolution (C -> 1, no bias: a bias cannot
  change a softmax) gives one logit ``s_p`` per position ``p``; ``a = softmax(s)`` over the H*W
  positions of each image; the pooled vector is ``sum_p a_p * F[:, :, p]`` (N, C). The 1x1 conv is
  zero-initialised, so at the start the attention is uniform and the context branch equals the
  average; training then learns where to look. Both vectors are concatenated (N, 2C): the average
  keeps the global statistics, the attended one the most telling region.

Every pooling is adaptive, so any input size works (>= 64 px: the net downsamples by 32).
The blocks, stages and init are shared with the other families (``layers.py``).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ._registry import check_common, register_model
from .layers import ConvBnAct, init_weights, make_divisible, make_stages

__all__ = ["AttentionPool2d", "DeepFakeNet", "deepfakenet"]

_BASE_WIDTHS = (32, 64, 128, 256)


class AttentionPool2d(nn.Module):
    """Adaptive context pooling: softmax over H*W of a 1x1-conv logit map, attention-weighted sum."""

    def __init__(self, channels: int):
        super().__init__()
        self.logits = nn.Conv2d(channels, 1, 1, bias=False)

    def zero_init_last(self) -> None:
        # Zero weights -> uniform attention -> starts as average pooling (see module docstring).
        nn.init.zeros_(self.logits.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Softmax in float32: under autocast a float16 exp saturates on large logits and the weights stop summing to 1.
        attn = self.logits(x).flatten(1).float().softmax(dim=-1).to(x.dtype)  # (N, HW)
        return torch.bmm(x.flatten(2), attn.unsqueeze(-1)).squeeze(-1)  # (N, C)


class DeepFakeNet(nn.Module):
    def __init__(self, in_chans: int = 3, num_classes: int = 1, width: float = 1.0, depth: int = 1,
                 dropout: float = 0.3):
        super().__init__()
        widths = [make_divisible(c * width) for c in _BASE_WIDTHS]
        stem_mid = make_divisible(widths[0] / 2)
        self.stem = nn.Sequential(ConvBnAct(in_chans, stem_mid, 3, 2), ConvBnAct(stem_mid, widths[0], 3, 2))
        self.stages = make_stages(widths, widths[0], depth, nn.SiLU)
        self.num_features = 2 * widths[-1]
        self.context_pool = AttentionPool2d(widths[-1])
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x.mean(dim=(2, 3)), self.context_pool(x)], dim=1)
        return self.fc(self.drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def deepfakenet(*, in_chans: int = 3, num_classes: int = 1, width: float = 1.0, depth: int = 1,
                dropout: float = 0.3) -> DeepFakeNet:
    """Residual CNN, stem to 1/4, 4 stages (32-64-128-256 x width), GAP + attention-pool head."""
    check_common(width=width, depth=depth, dropout=dropout)
    return DeepFakeNet(in_chans, num_classes, width, depth, dropout)
