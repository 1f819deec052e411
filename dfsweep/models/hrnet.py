"""Artifact-sensitive HRNet: a high-resolution branch that is never pooled away, fused with coarser context.

Why HRNet for deepfakes: the evidence of a face swap is mostly high-frequency (blending seams,
up-sampling checkerboards, resampling noise) while the decision also needs face-level context.
Ordinary CNNs halve the resolution early and keep halving, so by the time the network "knows" it is
looking at a mouth, the pixel-level traces are gone. HRNet (Wang et al. 2019) keeps a branch at the
stem's resolution through the whole depth and repeatedly exchanges information with lower-resolution
branches, so the fine branch is steered by context and the coarse branches see fine evidence.

Design:

* **Stem without pooling**: two 3x3 convolutions (``2 * width`` then ``width`` channels), the first
  stride 2, the second stride 2 (``stem_stride: 4``, default) or 1 (``stem_stride: 2``, 3-4x the
  cost). Max-pooling keeps the strongest activation and discards the faint residue we are after, so
  there is none.
* **Branches**: ``branches`` (2-4) parallel streams; branch ``i`` runs at 1/2**i of the stem
  resolution with ``width * 2**i`` channels. New branches are created HRNet-style by a 3x3 stride-2
  conv from the currently coarsest branch, one more per fusion module until all exist.
* **Fusion modules** (``stages`` of them): ``blocks`` BasicBlocks per branch, then an exchange unit:
  every output branch ``i`` is the sum over input branches ``j`` of
  identity (``j == i``), 1x1 conv + BN + upsampling to branch ``i``'s exact size (``j > i``), or a chain
  of ``i - j`` 3x3 stride-2 convs + BN (``j < i``); ReLU after the sum. Upsampling uses the exact
  target size rather than a scale factor, so inputs that are not a multiple of 32 (e.g. 100 px) work.
* **Head**: every branch is average-pooled to the coarsest branch's grid and concatenated
  (``forward_features``: one map with ``width * (2**branches - 1)`` channels), then global average
  pooling -> dropout -> linear. Each branch keeps its own channels in the classifier, so the
  high-resolution evidence is not averaged into the coarse context. Fusing at the coarse scale rather
  than upsampling everything to the fine one (HRNetV2) gives the classifier the same pooled vector
  at a fraction of the memory traffic: on a 2-core CPU the upsample-and-concat head cost ~20% of
  each training step.

Variants are data: ``hrnet(...)`` turns its parameters into an :class:`HRNetCfg` table (branches per
fusion module) and :class:`HRNet` builds whatever the table says.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DfsweepError
from ._registry import check_common, register_model
from .layers import ConvBnAct, ResidualBlock, init_weights

__all__ = ["HRNet", "HRNetCfg", "hrnet"]


def _relu() -> nn.Module:
    return nn.ReLU(inplace=True)


@dataclass(frozen=True)
class HRNetCfg:
    width: int = 16                      # channels of the stem-resolution branch; branch i has width * 2**i
    stem_stride: int = 4                 # 2 or 4: input size / size of the stem-resolution branch
    modules: tuple[int, ...] = (2, 3, 4)  # number of branches in each fusion module, non-decreasing
    blocks: int = 1                      # BasicBlocks per branch per fusion module

    def channels(self, n: int) -> list[int]:
        return [self.width * 2 ** i for i in range(n)]


def _schedule(branches: int, stages: int) -> tuple[int, ...]:
    """Branches per fusion module: grow by one per module (HRNet), but reach `branches` by the last."""
    return tuple(max(min(branches, 2 + m), branches - (stages - 1 - m)) for m in range(stages))


class Transition(nn.Module):
    """Create branches `n_in .. n_out-1`, each by a 3x3 stride-2 conv from the previous coarsest one."""

    def __init__(self, channels: list[int], n_in: int):
        super().__init__()
        self.new = nn.ModuleList(ConvBnAct(channels[k - 1], channels[k], 3, 2, act=_relu)
                                 for k in range(n_in, len(channels)))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = list(xs)
        for make in self.new:
            xs.append(make(xs[-1]))
        return xs


class FusionModule(nn.Module):
    """Per-branch BasicBlocks followed by an HRNet exchange unit (every branch receives every other)."""

    def __init__(self, channels: list[int], blocks: int):
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(
            nn.Sequential(*[ResidualBlock(c, c, 1, _relu) for _ in range(blocks)]) for c in channels)
        self.fuse = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:
                    row.append(ConvBnAct(channels[j], channels[i], 1, act=None))
                else:
                    # i - j halvings; only the last changes width, as in HRNet (cheaper than widening first).
                    steps = [ConvBnAct(channels[j], channels[j], 3, 2, act=_relu) for _ in range(i - j - 1)]
                    steps.append(ConvBnAct(channels[j], channels[i], 3, 2, act=None))
                    row.append(nn.Sequential(*steps))
            self.fuse.append(row)
        self.act = nn.ReLU()

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        ys = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse):
            size = ys[i].shape[-2:]
            acc = ys[i]
            for j, f in enumerate(row):
                if j == i:
                    continue
                z = f(ys[j])
                # Strided chains reproduce the transitions' sizes (ceil(h / 2) per step), but upsampling
                # by 2**k does not once a size was odd (25 -> 13 -> 26), hence the exact target size.
                if j > i:
                    z = F.interpolate(z, size=size, mode="nearest")
                acc = acc + z
            out.append(self.act(acc))
        return out


class HRNet(nn.Module):
    def __init__(self, cfg: HRNetCfg, in_chans: int = 3, num_classes: int = 1, dropout: float = 0.3):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        # Twice the branch width in the middle of the stem: the first conv sees raw pixels and is the
        # last chance to keep faint high-frequency residue before it is squeezed into `width` channels.
        self.stem = nn.Sequential(ConvBnAct(in_chans, 2 * w, 3, 2, act=_relu),
                                  ConvBnAct(2 * w, w, 3, cfg.stem_stride // 2, act=_relu))
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        n_prev = 1
        for n in cfg.modules:
            self.transitions.append(Transition(cfg.channels(n), n_prev))
            self.stages.append(FusionModule(cfg.channels(n), cfg.blocks))
            n_prev = n
        self.num_features = sum(cfg.channels(n_prev))
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        xs = [self.stem(x)]
        for transition, stage in zip(self.transitions, self.stages):
            xs = stage(transition(xs))
        size = xs[-1].shape[-2:]
        return torch.cat([F.adaptive_avg_pool2d(y, size) for y in xs[:-1]] + [xs[-1]], dim=1)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(x.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def hrnet(*, in_chans: int = 3, num_classes: int = 1, width: int = 16, branches: int = 4, stages: int = 3,
          blocks: int = 1, stem_stride: int = 4, dropout: float = 0.3) -> HRNet:
    """HRNet with a stem-resolution branch kept to the end; `stages` fusion modules, `branches` scales."""
    if width < 4:
        raise DfsweepError(f"model.width: must be >= 4, got {width}")
    if not 2 <= branches <= 4:
        raise DfsweepError(f"model.branches: must be 2, 3 or 4, got {branches}")
    if stages < 1:
        raise DfsweepError(f"model.stages: must be >= 1, got {stages}")
    if blocks < 1:
        raise DfsweepError(f"model.blocks: must be >= 1, got {blocks}")
    if stem_stride not in (2, 4):
        raise DfsweepError(f"model.stem_stride: must be 2 or 4, got {stem_stride}")
    check_common(dropout=dropout)
    cfg = HRNetCfg(width=width, stem_stride=stem_stride, modules=_schedule(branches, stages), blocks=blocks)
    return HRNet(cfg, in_chans=in_chans, num_classes=num_classes, dropout=dropout)
