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
``ConvBnAct``, ``ResidualBlock``, ``make_stages`` and ``init_weights`` are reused by the other families.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from ._registry import check_common, register_model

__all__ = [
    "AttentionPool2d", "ConvBnAct", "DeepFakeNet", "ResidualBlock", "deepfakenet", "init_weights", "make_divisible",
    "make_stages",
]

_BASE_WIDTHS = (32, 64, 128, 256)


def make_divisible(channels: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of `divisor` (never below it); SIMD kernels like such widths."""
    return max(divisor, int(round(channels / divisor)) * divisor)


class ConvBnAct(nn.Sequential):
    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1,
                 act: Callable[[], nn.Module] | None = nn.SiLU):
        layers = [
            nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_chs),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """BasicBlock: conv3x3 -> BN -> act -> conv3x3 -> BN, plus shortcut, then act."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, act: Callable[[], nn.Module] = nn.SiLU):
        super().__init__()
        self.conv1 = ConvBnAct(in_chs, out_chs, 3, stride, act=act)
        self.conv2 = ConvBnAct(out_chs, out_chs, 3, 1, act=None)
        self.shortcut = nn.Identity()
        if stride != 1 or in_chs != out_chs:
            self.shortcut = ConvBnAct(in_chs, out_chs, 1, stride, act=None)
        self.act = act()

    def zero_init_last(self) -> None:
        # Zero gamma: the block starts as its shortcut (Goyal et al. 2017), so stacks train from scratch.
        nn.init.zeros_(self.conv2[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


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


def init_weights(module: nn.Module) -> None:
    """Kaiming for convs, unit BN, small normal for linears; then each `zero_init_last()` hook (timm's habit).

    A model built on the meta device (the config's range check) has no values to initialise: there the
    random inits would only cost time (`normal_` on meta imports torch._dynamo, ~1-1.6 s per process)."""
    if any(p.is_meta for p in module.parameters()):
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in module.modules():
        if hasattr(m, "zero_init_last"):
            m.zero_init_last()


def make_stages(widths: Sequence[int], in_chs: int, depth: int, act: Callable[[], nn.Module]) -> nn.Sequential:
    """Residual stages; every stage after the first halves the resolution in its first block."""
    stages = []
    for i, out_chs in enumerate(widths):
        blocks = [ResidualBlock(in_chs if j == 0 else out_chs, out_chs, 2 if (i > 0 and j == 0) else 1, act)
                  for j in range(depth)]
        stages.append(nn.Sequential(*blocks))
        in_chs = out_chs
    return nn.Sequential(*stages)


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
