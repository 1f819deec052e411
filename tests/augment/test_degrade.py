"""JPEG re-compression and down/up-scaling: identity at p=0, real degradation, bounds, reproducibility."""
import pytest
import torch
import torch.nn.functional as F

from dfsweep.augment.degrade import jpeg, rescale

CUDA = pytest.param("cuda", marks=[pytest.mark.gpu,
                                   pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")])
DEVICES = ["cpu", CUDA]


def _images(n: int, size: int = 64, detail: int = 4, seed: int = 0) -> torch.Tensor:
    """Random textures; `detail` is the upsampling factor, so smaller means more high frequencies."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, size // detail, size // detail, generator=g) * 255
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False).to(torch.uint8)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _laplacian_energy(x: torch.Tensor) -> torch.Tensor:
    """Mean |laplacian| per image: a cheap measure of fine detail."""
    k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).expand(3, 1, 3, 3)
    return F.conv2d(x.float(), k, groups=3).abs().mean(dim=(1, 2, 3))


def _mean_abs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).abs().mean(dim=(1, 2, 3))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", [lambda x, g: jpeg(x, 0.5, (20, 60), g), lambda x, g: rescale(x, 0.5, 0.4, g)])
def test_keeps_shape_dtype_and_device(fn, device):
    x = _images(6).to(device)
    out = fn(x, _gen())
    assert out.shape == x.shape and out.dtype == torch.uint8 and out.device == x.device


def test_p0_returns_the_input():
    x = _images(3)
    assert jpeg(x, 0.0, (10, 20), _gen()) is x
    assert rescale(x, 0.0, 0.5, _gen()) is x


def test_low_quality_jpeg_changes_every_sample_and_high_quality_little():
    x = _images(4, detail=2)
    low = jpeg(x, 1.0, (5, 10), _gen())
    high = jpeg(x, 1.0, (95, 100), _gen())
    assert (_mean_abs(low, x) > 3).all()
    assert (_mean_abs(high, x) < _mean_abs(low, x) / 2).all()


def test_jpeg_p_selects_samples_and_leaves_the_rest_alone():
    x = _images(200, size=16, detail=2)
    out = jpeg(x, 0.25, (5, 10), _gen())
    changed = _mean_abs(out, x) > 0
    assert 0.15 < changed.float().mean() < 0.35
    assert torch.equal(out[~changed], x[~changed])


@pytest.mark.parametrize("quality", [(0, 50), (50, 101), (80, 20), (-5, -1)])
def test_jpeg_rejects_bad_quality(quality):
    with pytest.raises(ValueError):
        jpeg(_images(2), 0.5, quality, _gen())


def test_rescale_near_one_changes_little():
    x = _images(8, size=128, detail=16)  # face-like: mostly low frequencies
    near = rescale(x, 1.0, 0.95, _gen())
    assert _mean_abs(near, x).max() < 1.5


def test_rescale_to_a_quarter_blurs():
    x = _images(8, detail=2)
    quarter = rescale(x, 1.0, 0.25, _gen())
    before, after = _laplacian_energy(x), _laplacian_energy(quarter)
    assert (after < before).all() and after.mean() < 0.7 * before.mean()


@pytest.mark.parametrize("scale_min", [0.0, -0.5, 1.5])
def test_rescale_rejects_bad_scale(scale_min):
    with pytest.raises(ValueError):
        rescale(_images(2), 0.5, scale_min, _gen())


@pytest.mark.parametrize("p", [-0.1, 1.1])
def test_rejects_bad_p(p):
    with pytest.raises(ValueError):
        jpeg(_images(2), p, (50, 60))
    with pytest.raises(ValueError):
        rescale(_images(2), p, 0.5)


def test_rejects_non_uint8():
    with pytest.raises(ValueError):
        jpeg(_images(2).float(), 0.5, (50, 60))
    with pytest.raises(ValueError):
        rescale(_images(2).float(), 0.5, 0.5)


def test_same_seed_same_output():
    x = _images(16)
    assert torch.equal(jpeg(x, 0.5, (10, 90), _gen(1)), jpeg(x, 0.5, (10, 90), _gen(1)))
    assert torch.equal(rescale(x, 0.5, 0.3, _gen(1)), rescale(x, 0.5, 0.3, _gen(1)))
    assert not torch.equal(rescale(x, 0.5, 0.3, _gen(1)), rescale(x, 0.5, 0.3, _gen(2)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_makes_the_same_choices_as_cpu():
    x = _images(16, detail=2)
    for fn in (lambda t: jpeg(t, 0.5, (10, 40), _gen(4)), lambda t: rescale(t, 0.5, 0.3, _gen(4))):
        cpu, gpu = fn(x), fn(x.cuda()).cpu()
        assert torch.equal(_mean_abs(cpu, x) > 0, _mean_abs(gpu, x) > 0)
        assert (_mean_abs(cpu, gpu) < 2.0).all()
