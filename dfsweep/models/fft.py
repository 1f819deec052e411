"""Two-stream detector: RGB pixels plus the image's log-magnitude Fourier spectrum.

Why: generators and face-swap pipelines up-sample (transposed convs, interpolation) and re-compress,
which leaves periodic patterns that are faint in pixel space but show up as peaks and a distorted
high-frequency fall-off in the spectrum (Durall et al. 2020, Frank et al. 2020). A CNN trained from
scratch on pixels can learn such patterns only indirectly; handing it the spectrum makes them
first-class, while the RGB stream keeps the semantic/blending evidence.

Design:

* **Spectrum, computed inside the model** from the (ImageNet-normalised) input, so data loading and
  augmentation stay unchanged: grayscale (channel mean; ``spectrum: rgb`` keeps one spectrum per
  channel) -> ``torch.fft.fft2`` (orthonormal) -> ``fftshift`` (low frequencies in the centre, so the
  convolutions see a radially organised, translation-consistent map) -> ``log1p(|F|)`` (the spectrum
  spans orders of magnitude) -> standardised per image (zero mean, unit variance), so the stream
  sees the spectrum's shape, not the image's brightness or contrast. It runs in float32 with autocast
  off: cuFFT's half precision only accepts power-of-two sizes and bfloat16 FFTs are not implemented.
* **Two small residual trunks** (DeepFakeNet's stem and blocks, SiLU): RGB with base widths
  32-64-128-256, spectrum with 16-32-64-128 (it carries less varied content), both times ``width``,
  ``depth`` blocks per stage, both downsampling by 32 so their maps line up.
* **Fusion**: the two final maps are concatenated along channels (``forward_features``); the head is
  global average pooling -> dropout -> linear, i.e. the pooled features of both streams side by side.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import DfsweepError
from ._registry import check_common, register_model
from .layers import ConvBnAct, init_weights, log_spectrum, make_divisible, make_stages

__all__ = ["FFTNet", "fft"]

_RGB_WIDTHS = (32, 64, 128, 256)
_SPEC_WIDTHS = (16, 32, 64, 128)


def _trunk(in_chs: int, base: tuple[int, ...], width: float, depth: int) -> tuple[nn.Sequential, int]:
    widths = [make_divisible(c * width) for c in base]
    stem_mid = make_divisible(widths[0] / 2)
    trunk = nn.Sequential(ConvBnAct(in_chs, stem_mid, 3, 2), ConvBnAct(stem_mid, widths[0], 3, 2),
                          *make_stages(widths, widths[0], depth, nn.SiLU))
    return trunk, widths[-1]


class FFTNet(nn.Module):
    def __init__(self, in_chans: int = 3, num_classes: int = 1, width: float = 1.0, depth: int = 1,
                 spectrum: str = "gray", dropout: float = 0.3):
        super().__init__()
        self.gray = spectrum == "gray"
        self.rgb, rgb_out = _trunk(in_chans, _RGB_WIDTHS, width, depth)
        self.spec, spec_out = _trunk(1 if self.gray else in_chans, _SPEC_WIDTHS, width, depth)
        self.num_features = rgb_out + spec_out
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.rgb(x), self.spec(log_spectrum(x, self.gray))], dim=1)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(x.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def fft(*, in_chans: int = 3, num_classes: int = 1, width: float = 1.0, depth: int = 1, spectrum: str = "gray",
        dropout: float = 0.3) -> FFTNet:
    """RGB stream + log-magnitude FFT stream (gray or per-channel), features concatenated, linear head."""
    check_common(width=width, depth=depth, dropout=dropout)
    if spectrum not in ("gray", "rgb"):
        raise DfsweepError(f"model.spectrum: must be one of gray, rgb; got {spectrum!r}")
    return FFTNet(in_chans, num_classes, width, depth, spectrum, dropout)
