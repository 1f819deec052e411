"""Layers the model families share: conv-BN-act, the residual block and stages, weight init, the log spectrum."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

__all__ = ["ConvBnAct", "ResidualBlock", "init_weights", "log_spectrum", "make_divisible", "make_stages"]


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


def init_weights(module: nn.Module) -> None:
    """Kaiming for convs, unit BN, small normal for linears; then each `zero_init_last()` hook (timm's habit).

    A model built on the meta device (the config's range check) has no values to initialise: there the
    random inits would only cost time (`normal_` on the meta device imports torch's compiler stack)."""
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


def log_spectrum(x: torch.Tensor, gray: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """Per-image standardised log1p magnitude of the centred 2-D FFT; (N, 1 or C, H, W), x's dtype."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        z = x.float()
        if gray:
            z = z.mean(dim=1, keepdim=True)
        s = torch.fft.fftshift(torch.fft.fft2(z, norm="ortho"), dim=(-2, -1)).abs().log1p()
        s = (s - s.mean(dim=(1, 2, 3), keepdim=True)) / (s.std(dim=(1, 2, 3), keepdim=True) + eps)
    if x.is_contiguous(memory_format=torch.channels_last):
        s = s.contiguous(memory_format=torch.channels_last)
    return s.to(x.dtype)
