"""Self-blended images: who gets converted, where the pixels change, the mask, reproducibility."""
import pytest
import torch
import torch.nn.functional as F

from dfsweep.augment.self_blend import blend_masks, self_blend

CUDA = pytest.param("cuda", marks=[pytest.mark.gpu,
                                   pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")])
DEVICES = ["cpu", CUDA]


def _faces(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Smooth random textures: enough structure that colour, blur and shifts all change pixels."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, size // 8, size // 8, generator=g) * 255
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 255).to(torch.uint8)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("device", DEVICES)
def test_keeps_shape_dtype_and_device(device):
    x, y = _faces(6).to(device), torch.zeros(6, device=device)
    out, labels = self_blend(x, y, 0.5, _gen())
    assert out.shape == x.shape and out.dtype == torch.uint8 and out.device == x.device
    assert labels.shape == y.shape and labels.dtype == y.dtype and labels.device == y.device


def test_p0_is_identity():
    x, y = _faces(4), torch.tensor([0.0, 1.0, 0.0, 1.0])
    out, labels = self_blend(x, y, 0.0, _gen())
    assert torch.equal(out, x) and torch.equal(labels, y)


def test_p1_converts_every_real_and_never_touches_fakes():
    x, y = _faces(8), torch.tensor([0.0, 1.0] * 4)
    out, labels = self_blend(x, y, 1.0, _gen())
    assert torch.equal(labels, torch.ones(8))
    assert torch.equal(out[1::2], x[1::2])
    changed = (out[0::2].float() - x[0::2].float()).abs().mean(dim=(1, 2, 3))
    assert (changed > 0.5).all(), changed
    # The inputs are not modified in place.
    assert torch.equal(y, torch.tensor([0.0, 1.0] * 4))


def test_p_is_the_share_converted():
    x, y = _faces(400, size=16), torch.zeros(400)
    _, labels = self_blend(x, y, 0.3, _gen())
    assert 0.22 < labels.mean().item() < 0.38


def test_changes_sit_in_the_face_region_not_the_corners():
    x, y = _faces(16, size=64), torch.zeros(16)
    out, _ = self_blend(x, y, 1.0, _gen())
    diff = (out.float() - x.float()).abs().mean(dim=1)  # N×H×W
    centre = diff[:, 20:44, 20:44].mean()
    corners = torch.stack([diff[:, :8, :8], diff[:, :8, -8:], diff[:, -8:, :8], diff[:, -8:, -8:]]).mean()
    assert centre > 5.0 and corners < 0.5, (centre, corners)


@pytest.mark.parametrize("device", DEVICES)
def test_masks_are_soft_face_regions(device):
    m = blend_masks(32, 64, _gen(), device)
    assert m.shape == (32, 1, 64, 64) and m.dtype == torch.float32 and m.device.type == device
    assert m.min() >= 0 and m.max() <= 1
    soft = ((m > 0.02) & (m < 0.98)).flatten(1).any(dim=1)
    assert soft.all(), "every mask needs a soft edge"
    centre = m[:, 0, 28:36, 28:36].mean(dim=(1, 2))
    corners = torch.stack([m[:, 0, :6, :6], m[:, 0, :6, -6:], m[:, 0, -6:, :6], m[:, 0, -6:, -6:]]).amax(dim=(0, 2, 3))
    assert (centre > corners + 0.2).all() and corners.max() < 0.05


def test_mask_sizes_above_and_below_the_mask_resolution():
    for size in (24, 224):
        m = blend_masks(2, size, _gen())
        assert m.shape == (2, 1, size, size) and m.max() > 0.2


def test_same_seed_same_output_and_global_rng_untouched():
    x, y = _faces(8), torch.tensor([0.0, 1.0] * 4)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = self_blend(x, y, 0.7, _gen(5))
    assert torch.equal(torch.get_rng_state(), state)
    b = self_blend(x, y, 0.7, _gen(5))
    c = self_blend(x, y, 0.7, _gen(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.equal(blend_masks(3, 32, _gen(1)), blend_masks(3, 32, _gen(1)))


@pytest.mark.parametrize("bad", [
    dict(images=torch.zeros(2, 3, 8, 8)),  # float
    dict(images=torch.zeros(2, 1, 8, 8, dtype=torch.uint8)),  # one channel
    dict(images=torch.zeros(2, 3, 8, 12, dtype=torch.uint8)),  # not square
    dict(p=1.5),
])
def test_rejects_bad_input(bad):
    args = dict(images=_faces(2, size=8), labels=torch.zeros(2), p=0.5) | bad
    with pytest.raises(ValueError):
        self_blend(**args)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_makes_the_same_choices_as_cpu():
    x, y = _faces(16), torch.tensor([0.0, 1.0, 0.0, 0.0] * 4)
    cpu_out, cpu_labels = self_blend(x, y, 0.5, _gen(3))
    gpu_out, gpu_labels = self_blend(x.cuda(), y.cuda(), 0.5, _gen(3))
    assert torch.equal(gpu_labels.cpu(), cpu_labels)
    # Same samples, same perturbations: only float rounding may differ.
    assert (gpu_out.cpu().float() - cpu_out.float()).abs().mean() < 0.5
