"""Input stems: fixed (parameter-free) maps from the normalised RGB batch to what a model's first conv sees.

Why: a detector trained from scratch on pixels learns low-level forensic traces only indirectly. These
stems hand it the traces directly, for every registered model, chosen by YAML `model.input`:

* ``rgb``: the pixels unchanged (3 ch).
* ``npr``: neighbouring-pixel relationships, ``x - up(down(x))`` with nearest resampling by 2 (Tan et al.,
  "Rethinking the Up-Sampling Operations in CNN-based Generative Network for Generalizable Deepfake
  Detection", CVPR 2024): generators up-sample, which ties each pixel to its 2x2 neighbours (3 ch).
* ``srm``: the three SRM noise-residual kernels of Zhou et al. 2018 ("Learning Rich Features for Image
  Manipulation Detection") on the grayscale image (3 ch).
* ``fft``: the log1p magnitude of each channel's centred 2-D FFT, where up-sampling leaves peaks (3 ch).

`rgb+npr` concatenates stems along channels. A stem has no parameters and its filters are non-persistent
buffers, so a checkpoint's keys depend only on the model. Every stem maps (N, 3, H, W) -> (N, C, H, W)
with batched ops only; the residual stems run in float32 with autocast off (a bf16 5x5 high-pass filter
cancels away most of the 8-bit signal; cuFFT half precision only takes power-of-two sizes) and return
x's dtype and memory format. Un-scaled high-pass residuals are full of tiny values that ran CPU steps ~9x
slower until `torch.set_flush_denormal(True)` (set by dfsweep.runtime); scaled to unit RMS as here, a
128 px deepfakenet step ran equally fast with and without it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DfsweepError
from ..registry import Registry
from .layers import log_spectrum

__all__ = ["INPUTS", "register_input", "build_input", "input_channels", "input_names", "WithInput"]

INPUTS = Registry("model input")
register_input = INPUTS.register

_KEY = "model.input"
# RMS floor for the residual stems, in normalised units (one 8-bit step is 1/255/0.226 ~ 0.017): a flat
# image's residual is scaled by at most 100 instead of blowing its rounding noise up to unit variance.
_RMS_FLOOR = 1e-2


def _match_format(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous():
        y = y.contiguous(memory_format=torch.channels_last)
    return y.to(like.dtype)


def _rms_normalise(r: torch.Tensor) -> torch.Tensor:
    """Divide by the per-image RMS over (C, H, W). No mean removal: the residuals are zero-mean by
    construction, and NPR's exact zeros (the sampled pixel of each 2x2 block) stay zeros."""
    rms = r.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
    return r / rms.clamp_min(_RMS_FLOOR)


class _Fp32Stem(nn.Module):
    """Runs `residual` in float32 with autocast off; returns x's dtype and memory format."""
    out_channels = 3

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            y = self.residual(x.float())
        return _match_format(y, x)


class RGB(nn.Identity):
    out_channels = 3


class NPR(_Fp32Stem):
    """x - nearest_up(nearest_down(x)), per channel, divided by the per-image RMS.

    Scale: the residual of a natural image is ~0.1-0.3 of the normalised pixels' spread and varies with
    resolution, blur and JPEG quality. Alone, a fixed gain would barely matter (BatchNorm follows the
    first conv), but in `rgb+npr` the first conv mixes both, and Adam moves every weight by about the
    same step: an input 10x smaller would stay 10x less influential for many steps. Per-image RMS puts
    every stem at unit scale whatever the data set; the absolute residual energy is the one cue given up.
    """

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # 1. down = the top-left pixel of each 2x2 block (ceil(H/2) rows, so an odd last row keeps its own)
        # 2. nearest up by exactly 2, cropped back to H x W
        up = F.interpolate(x[..., ::2, ::2], scale_factor=2.0, mode="nearest")[..., :h, :w]
        return _rms_normalise(x - up)


def _srm_kernels() -> torch.Tensor:
    """The three SRM kernels of Zhou et al. 2018 (their eqs.), zero-padded to 5x5: (3, 1, 5, 5)."""
    kv = torch.tensor([[-1, 2, -2, 2, -1],
                       [2, -6, 8, -6, 2],
                       [-2, 8, -12, 8, -2],
                       [2, -6, 8, -6, 2],
                       [-1, 2, -2, 2, -1]], dtype=torch.float32) / 12
    kb = torch.zeros(5, 5)
    kb[1:4, 1:4] = torch.tensor([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=torch.float32) / 4
    k2 = torch.zeros(5, 5)
    k2[2, 1:4] = torch.tensor([1, -2, 1], dtype=torch.float32) / 2
    return torch.stack([kv, kb, k2]).unsqueeze(1)


class SRM(_Fp32Stem):
    """The SRM residuals (KV 5x5, KB 3x3, 2nd-order 1-D) of the grayscale image, RMS-normalised per image.

    Grayscale, as Zhou et al. do (their 5x5x3 kernels sum R, G and B): the noise residuals of the three
    channels are highly correlated (demosaicing, channel-shared up-sampling), so 3 outputs carry nearly
    what 9 depthwise ones would, and the first conv stays as wide as for `rgb`. Reflect padding, so the
    image border is not read as an edge against zeros. Scale: see NPR.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("kernels", _srm_kernels(), persistent=False)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        gray = F.pad(x.mean(dim=1, keepdim=True), (2, 2, 2, 2), mode="reflect")
        return _rms_normalise(F.conv2d(gray, self.kernels.to(gray)))


class FFT(_Fp32Stem):
    """Per-channel log1p |centred FFT|, standardised per image (`fft.log_spectrum`)."""

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return log_spectrum(x, gray=False)


@register_input
def rgb() -> nn.Module:
    """The normalised pixels as they are."""
    return RGB()


@register_input
def npr() -> nn.Module:
    """Neighbouring-pixel residual x - up(down(x)) (Tan et al. CVPR 2024)."""
    return NPR()


@register_input
def srm() -> nn.Module:
    """Three fixed SRM noise-residual filters on the grayscale image (Zhou et al. 2018)."""
    return SRM()


@register_input
def fft() -> nn.Module:
    """Log-magnitude spectrum of each channel."""
    return FFT()


class Concat(nn.Module):
    """Several stems side by side along channels (`rgb+npr`)."""

    def __init__(self, stems: list[nn.Module]):
        super().__init__()
        self.stems = nn.ModuleList(stems)
        self.out_channels = sum(s.out_channels for s in stems)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _match_format(torch.cat([s(x) for s in self.stems], dim=1), x)


def input_names(spec: str) -> tuple[str, ...]:
    """`"rgb+npr"` -> ("rgb", "npr"); an unknown or repeated name raises naming `model.input`."""
    if not isinstance(spec, str):
        raise DfsweepError(f"{_KEY}: expected a string such as rgb or rgb+npr, got {spec!r}")
    names = tuple(part.strip() for part in spec.split("+"))
    for i, name in enumerate(names):
        INPUTS.get(name, _KEY)
        if name in names[:i]:
            raise DfsweepError(f"{_KEY}: {name!r} appears twice in {spec!r}")
    return names


def build_input(spec: str) -> nn.Module:
    """The stem for a spec such as `npr` or `rgb+npr`; it exposes `out_channels`."""
    stems = [INPUTS.get(name, _KEY)() for name in input_names(spec)]
    return stems[0] if len(stems) == 1 else Concat(stems)


def input_channels(spec: str) -> int:
    """Channels the model's first layer receives for this spec (stems are tiny and cheap to build)."""
    return build_input(spec).out_channels


class WithInput(nn.Module):
    """`net(stem(x))`; the stem has no state, so the state_dict is the net's under `net.`."""

    def __init__(self, stem: nn.Module, net: nn.Module):
        super().__init__()
        self.stem, self.net = stem, net

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.stem(x))
