"""Self-Blended Images (Shiohara & Yamasaki, CVPR 2022) on whole uint8 batches.

A real face becomes a pseudo-fake by blending a slightly perturbed copy of itself back through a soft
face-region mask. The detector then has to find the generic traces of face swapping (a blending
boundary, a colour or sharpness mismatch between inner face and surroundings) instead of memorising
the artefacts of the few generators in the training set — which is why SBI generalises across methods.

We have no landmarks, so the face region is a jittered, elastically deformed ellipse around the crop
centre (DFDC crops are roughly centred faces filling most of the crop). Everything is vectorised over
the batch. All random numbers are drawn on the CPU from `generator`, for every sample in a fixed order,
and only then moved to the batch's device: the same seed makes the same choices on CPU and CUDA.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["self_blend", "blend_masks"]

# SBI draws the blend ratio from this list; full-strength blends are three times as likely.
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)

# Masks are built at this resolution and upsampled: the face region is low-frequency, and blurring a
# 64x64 mask costs the same whatever the image size.
_MASK_RES = 64
_NOISE_RES = 5  # control points per side of the elastic displacement field
_MAX_SIGMA = 3.0  # mask-edge blur, in mask pixels (about 5 % of the crop at most)
_KSIZE = 2 * math.ceil(3 * _MAX_SIGMA) + 1


def _uniform(n: int, low: float, high: float, g: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=g) * (high - low) + low


def _mask_params(n: int, g: torch.Generator | None) -> dict[str, torch.Tensor]:
    """Random mask parameters for `n` samples, on the CPU (see the module docstring for why)."""
    return {
        "cx": _uniform(n, -0.08, 0.08, g),
        "cy": _uniform(n, -0.05, 0.12, g),  # face crops put the eyes above the centre, so the chin lower
        "ax": _uniform(n, 0.52, 0.75, g),
        "ay": _uniform(n, 0.62, 0.85, g),
        "angle": _uniform(n, -0.25, 0.25, g),  # radians, about +-15 degrees
        "noise": (torch.rand(n, 2, _NOISE_RES, _NOISE_RES, generator=g) * 2 - 1),
        "noise_amp": _uniform(n, 0.04, 0.12, g),
        "sigma": _uniform(n, 0.8, _MAX_SIGMA, g),
        "ratio": torch.tensor(BLEND_RATIOS)[torch.randint(len(BLEND_RATIOS), (n,), generator=g)],
    }


def _render_masks(prm: dict[str, torch.Tensor], size: int, device: torch.device) -> torch.Tensor:
    """Parameters -> soft masks n×1×size×size in [0, 1] (blend ratio included)."""
    prm = {k: v.to(device) for k, v in prm.items()}
    n = prm["cx"].shape[0]
    res = min(_MASK_RES, size)
    lin = (torch.arange(res, device=device, dtype=torch.float32) + 0.5) / res * 2 - 1
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    # 1. Elastic deformation: displace the coordinates by a smooth random field before the ellipse test,
    #    so the outline wobbles like a landmark hull instead of being a perfect conic.
    field = F.interpolate(prm["noise"], size=(res, res), mode="bicubic", align_corners=True)
    field = field * prm["noise_amp"].view(n, 1, 1, 1)
    x = xx + field[:, 0] - prm["cx"].view(n, 1, 1)
    y = yy + field[:, 1] - prm["cy"].view(n, 1, 1)
    # 2. Rotated ellipse: inside where (u/ax)^2 + (v/ay)^2 <= 1.
    cos, sin = prm["angle"].cos().view(n, 1, 1), prm["angle"].sin().view(n, 1, 1)
    u, v = cos * x + sin * y, -sin * x + cos * y
    inside = ((u / prm["ax"].view(n, 1, 1)) ** 2 + (v / prm["ay"].view(n, 1, 1)) ** 2 <= 1).float()
    # 3. Per-sample Gaussian blur as one grouped, separable conv (one group per sample).
    r = torch.arange(_KSIZE, device=device, dtype=torch.float32) - _KSIZE // 2
    k = torch.exp(-0.5 * (r.view(1, -1) / prm["sigma"].view(n, 1)) ** 2)
    k = k / k.sum(dim=1, keepdim=True)
    m = F.pad(inside.unsqueeze(0), (_KSIZE // 2,) * 4, mode="constant", value=0.0)
    m = F.conv2d(m, k.view(n, 1, 1, _KSIZE), groups=n)
    m = F.conv2d(m, k.view(n, 1, _KSIZE, 1), groups=n)
    m = m.transpose(0, 1)  # n×1×res×res
    # 4. SBI normalises by the maximum so that the face core is a full blend before the ratio applies.
    m = m / m.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    if res != size:
        m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
    return (m * prm["ratio"].view(n, 1, 1, 1)).clamp_(0.0, 1.0)


def blend_masks(
    n: int, size: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """`n` random soft face-region masks, float32 n×1×size×size in [0, 1], blend ratio included."""
    return _render_masks(_mask_params(n, generator), size, torch.device(device or "cpu"))


def _source_params(n: int, g: torch.Generator | None) -> dict[str, torch.Tensor]:
    """Random colour, frequency and geometry perturbations for the source copy, on the CPU."""
    def maybe(values: torch.Tensor, identity: float, p: float = 0.5) -> torch.Tensor:
        return torch.where(torch.rand(n, generator=g) < p, values, torch.full_like(values, identity))

    sharpen = torch.rand(n, generator=g) < 0.5
    return {
        # Per-channel gains rather than SBI's additive +-20: an additive shift turns dark faces green
        # or purple, a gain looks like the white-balance mismatch of a real swap.
        "rgb": torch.where(torch.rand(n, 1, generator=g) < 0.5, torch.rand(n, 3, generator=g) * 0.2 + 0.9, 1.0),
        "hue": maybe(_uniform(n, -0.1, 0.1, g), 0.0),  # radians
        "sat": maybe(_uniform(n, 0.8, 1.2, g), 1.0),
        "contrast": maybe(_uniform(n, 0.85, 1.15, g), 1.0),
        "bright": maybe(_uniform(n, -12.0, 12.0, g), 0.0),
        # Unsharp amount: negative blurs towards a 2x down-up copy, positive sharpens (SBI's OneOf of
        # RandomDownScale and Sharpen) — one scalar, so the whole batch takes one code path.
        "freq": torch.where(sharpen, _uniform(n, 0.3, 1.0, g), _uniform(n, -1.0, -0.4, g)),
        "scale": _uniform(n, 0.95, 1.05, g),
        "tx": _uniform(n, -0.06, 0.06, g),  # normalised coordinates span 2: +-3 % of the width
        "ty": _uniform(n, -0.03, 0.03, g),
    }


# Luma weights and the RGB<->YIQ matrix: a hue shift is a rotation of the (I, Q) chroma plane.
_LUMA = (0.299, 0.587, 0.114)
_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _colour_matrix(prm: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-channel gain, hue, saturation and contrast folded into one 3×3 matrix per sample (on the CPU:
    tiny, and a CUDA batch then gets one copy instead of a dozen small kernels)."""
    n = prm["hue"].shape[0]
    yiq = torch.tensor(_YIQ)
    c, s = prm["hue"].cos(), prm["hue"].sin()
    rot = torch.zeros(n, 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    hue = torch.linalg.inv(yiq) @ rot @ yiq
    sat = prm["sat"].view(n, 1, 1) * torch.eye(3) + (1 - prm["sat"].view(n, 1, 1)) * torch.tensor(_LUMA)
    return prm["contrast"].view(n, 1, 1) * (torch.diag_embed(prm["rgb"]) @ sat @ hue)


def _colour(x: torch.Tensor, mat: torch.Tensor, contrast: torch.Tensor, bright: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    # Contrast pivots on the image's mean grey level, so it does not also shift brightness.
    grey = torch.einsum("c,nc->n", torch.tensor(_LUMA, device=x.device), x.mean(dim=(2, 3)))
    bias = (1 - contrast) * grey + bright
    flat = torch.baddbmm(bias.view(n, 1, 1), mat, x.view(n, 3, -1))
    return flat.view_as(x).clamp_(0, 255)


def _frequency(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """x + amount*(x - low): blur towards a 2x down-up copy (amount < 0) or unsharp-mask (amount > 0)."""
    h, w = x.shape[-2:]
    # Bilinear at exactly half size averages 2x2 blocks, like avg_pool2d, at a quarter of its CPU cost.
    half = F.interpolate(x, size=(max(1, h // 2), max(1, w // 2)), mode="bilinear", align_corners=False)
    low = F.interpolate(half, size=(h, w), mode="bilinear", align_corners=False)
    return torch.lerp(low, x, (1 + amount).view(-1, 1, 1, 1))


def _affine(prm: dict[str, torch.Tensor]) -> torch.Tensor:
    theta = torch.zeros(prm["scale"].shape[0], 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = prm["scale"]
    theta[:, 0, 2], theta[:, 1, 2] = prm["tx"], prm["ty"]
    return theta


def _geometry(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _blend(images: torch.Tensor, mprm: dict[str, torch.Tensor], sprm: dict[str, torch.Tensor]) -> torch.Tensor:
    """Blend the perturbed copy (source) into the images (target) through the face masks. Source values
    that resampling pushes out of [0, 255] are left to the final clamp."""
    target = images.float()
    source = _colour(target, sprm["mat"], sprm["contrast"], sprm["bright"])
    source = _geometry(_frequency(source, sprm["freq"]), sprm["theta"])
    mask = _render_masks(mprm, images.shape[-1], images.device)
    return torch.lerp(target, source, mask).round_().clamp_(0, 255).to(torch.uint8)


def self_blend(
    images: torch.Tensor, labels: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """With probability `p`, turn each real sample (label 0) into a self-blended fake (label 1).

    images: uint8 N×3×H×W with H == W, on any device; labels: float N. Returns new tensors; fake
    samples and unselected real ones are copied unchanged. Target = the original image, source = a
    colour-, sharpness- and geometry-perturbed copy; output = mask*source + (1-mask)*target.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be uint8 N×3×H×W, got {images.dtype} {tuple(images.shape)}")
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"images must be square, got {tuple(images.shape[2:])}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if p == 0.0:
        return images, labels
    n, dev = images.shape[0], images.device
    # 1. Draw everything for all N samples, in a fixed order, whatever is selected: reproducible.
    chosen = torch.rand(n, generator=generator) < p
    mprm, sprm = _mask_params(n, generator), _source_params(n, generator)
    idx = torch.nonzero(chosen & (labels == 0).cpu(), as_tuple=True)[0]
    if idx.numel() == 0:
        return images, labels
    mprm = {k: v[idx] for k, v in mprm.items()}
    sprm = {k: v[idx] for k, v in sprm.items()}
    sprm |= {"mat": _colour_matrix(sprm), "theta": _affine(sprm)}
    out, out_labels = images.clone(), labels.clone()
    out[idx.to(dev)] = _blend(images[idx.to(dev)], mprm, {k: v.to(dev) for k, v in sprm.items()})
    out_labels[idx.to(labels.device)] = 1.0
    return out, out_labels
