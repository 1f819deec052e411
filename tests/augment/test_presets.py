import pytest
import torch

from dfsweep.augment import IMAGENET_MEAN, IMAGENET_STD, PRESETS, Augmenter, normalize
from dfsweep.config import AugmentConfig, config_from_dict
from dfsweep.errors import DfsweepError
from oneshot import augment_once
from dfsweep.batches import batch_generator


def _batch(n=8, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("name", PRESETS.names())
def test_presets_return_normalised_float_batches_of_the_same_shape(name):
    x = _batch()
    y, labels = augment_once(Augmenter(AugmentConfig(preset=name)), x, torch.zeros(8), batch_generator(1, 1, 0))
    assert y.dtype == torch.float32 and y.shape == x.shape and torch.isfinite(y).all()
    assert torch.equal(labels, torch.zeros(8))
    lo = min((0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD))
    hi = max((1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD))
    assert y.min() >= lo - 1e-5 and y.max() <= hi + 1e-5


@pytest.mark.parametrize("name", PRESETS.names())
def test_channels_last_output_has_the_same_values_in_the_models_layout(name):
    x = _batch()
    a, _ = augment_once(Augmenter(AugmentConfig(preset=name)), x, torch.zeros(8), batch_generator(1, 1, 0))
    b, _ = augment_once(Augmenter(AugmentConfig(preset=name), channels_last=True), x, torch.zeros(8),
                        batch_generator(1, 1, 0))
    assert a.is_contiguous() and b.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b)


@pytest.mark.parametrize("extra", [{"preset": "seed"}, {"preset": "sharp"}, {"preset": "none"},
                                   {"preset": "seed", "jpeg_p": 0.5}])
def test_rows_of_the_whole_set_augment_like_the_gathered_batch(extra):
    images = _batch(12).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)       # the decoded layout
    rows = torch.tensor([3, 11, 0, 3, 7, 5])
    aug = Augmenter(AugmentConfig(**extra), channels_last=True)
    a, la = augment_once(aug, images, torch.ones(6), batch_generator(1, 2, 3), rows=rows)
    b, lb = augment_once(aug, images[rows], torch.ones(6), batch_generator(1, 2, 3))
    assert a.shape == (6, 3, 64, 64) and torch.equal(a, b) and torch.equal(la, lb)


@pytest.mark.parametrize("extra", [{"preset": "seed"}, {"preset": "seed", "blur_p": 1.0, "blur_sigma_max": 0.3},
                                   {"preset": "seed", "jitter_p": 0.5, "flip_p": 0.5}, {"preset": "sharp"},
                                   {"preset": "none"}])
def test_a_planned_epoch_augments_each_batch_as_it_would_draw_alone(extra):
    # an epoch's parameters worked out in one pass give every batch exactly its own generator's numbers
    images = _batch(12).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    aug = Augmenter(AugmentConfig(**extra), channels_last=True)
    plan = aug.plan([batch_generator(42, 2, b) for b in range(5)], 6, (64, 64), torch.device("cpu"))
    assert len(plan) == 5
    for b in range(5):
        rows = torch.randperm(12, generator=torch.Generator().manual_seed(b))[:6]
        alone, _ = augment_once(aug, images, torch.ones(6), batch_generator(42, 2, b), rows=rows)
        planned, _ = aug(images, torch.ones(6), plan[b], rows=rows)
        assert torch.equal(planned, alone)


@pytest.mark.parametrize("name", ["seed", "sharp"])
def test_an_epoch_planned_for_a_gpu_augments_like_the_per_box_path(name, monkeypatch):
    # the GPU's path (one roi_align crop per batch, the blurred or sharpened rows by index, the plan's
    # tensors on the device), made to run on the CPU: the same draws, so only interpolation rounding at
    # the boxes' edges differs (~0.005 here); another batch's plan differs by ~1 (normalised units)
    from dfsweep.augment import pipeline
    images = _batch(12).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    aug = Augmenter(AugmentConfig(preset=name), channels_last=True)
    gens = lambda: [batch_generator(42, 2, b) for b in range(4)]
    per_box = aug.plan(gens(), 6, (64, 64), torch.device("cpu"))
    monkeypatch.setattr(pipeline, "gpu_or_none", lambda device: device)
    on_device = aug.plan(gens(), 6, (64, 64), torch.device("cpu"))
    assert on_device[0].params[0].roi is not None and per_box[0].params[0].roi is None
    for b in range(4):
        rows = torch.randperm(12, generator=torch.Generator().manual_seed(b))[:6]
        want, _ = aug(images, torch.ones(6), per_box[b], rows=rows)
        got, _ = aug(images, torch.ones(6), on_device[b], rows=rows)
        wrong, _ = aug(images, torch.ones(6), on_device[(b + 1) % 4], rows=rows)
        assert got.is_contiguous(memory_format=torch.channels_last)
        assert (got - want).abs().mean() < 0.02 < 0.5 < (wrong - want).abs().mean()


def test_uint8_ops_are_planned_as_the_batchs_generator_and_a_plan_cannot_skip_them():
    # uint8 ops draw from the batch's generator as they run, so their batch's plan is that generator
    aug = Augmenter(AugmentConfig(jpeg_p=0.5))
    gen = batch_generator(1, 1, 0)
    assert aug.plan([gen], 4, (64, 64), torch.device("cpu"))[0].gen is gen
    planned = Augmenter(AugmentConfig()).plan([batch_generator(1, 1, 0)], 4, (64, 64), torch.device("cpu"))[0]
    with pytest.raises(ValueError, match="uint8"):
        aug(_batch(4), torch.zeros(4), planned)


def test_none_is_normalisation_only():
    x = _batch()
    y, _ = augment_once(Augmenter(AugmentConfig(preset="none")), x, torch.zeros(8), batch_generator(1, 1, 0))
    assert torch.allclose(y, normalize(x))


def test_seed_preset_changes_every_sample_differently():
    x = _batch(1).expand(8, -1, -1, -1).contiguous()      # eight copies of one image
    y, _ = augment_once(Augmenter(AugmentConfig()), x, torch.zeros(8), batch_generator(1, 1, 0))
    flat = y.flatten(1)
    assert not torch.allclose(flat[0], normalize(x[:1]).flatten())
    diffs = [(flat[i] - flat[j]).abs().mean().item() for i in range(8) for j in range(i + 1, 8)]
    assert min(diffs) > 1e-3                              # per-sample parameters, not one draw per batch


def test_same_generator_seed_same_augmentation_and_different_batches_differ():
    aug = Augmenter(AugmentConfig())
    x = _batch()
    a, _ = augment_once(aug, x, torch.zeros(8), batch_generator(42, 3, 7))
    b, _ = augment_once(aug, x, torch.zeros(8), batch_generator(42, 3, 7))
    c, _ = augment_once(aug, x, torch.zeros(8), batch_generator(42, 3, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_all_probabilities_zero_and_full_crop_is_identity_up_to_interpolation():
    cfg = AugmentConfig(flip_p=0.0, jitter_p=0.0, blur_p=0.0, crop_scale_min=1.0)
    x = _batch()
    y, _ = augment_once(Augmenter(cfg), x, torch.zeros(8), batch_generator(0, 1, 0))
    # scale 1.0 still draws an aspect ratio in [3/4, 4/3], so allow the crop's resampling
    assert (y - normalize(x)).abs().mean() < 1.5


def test_flip_p_one_mirrors():
    cfg = AugmentConfig(flip_p=1.0, jitter_p=0.0, blur_p=0.0, crop_scale_min=1.0)
    x = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    x[..., :16] = 255                                      # left half white
    y, _ = augment_once(Augmenter(cfg), x, torch.zeros(2), batch_generator(0, 1, 0))
    assert (y[..., 20:] > y[..., :12].mean()).all()       # now the right half is the bright one


def test_self_blend_relabels_real_faces():
    cfg = AugmentConfig(preset="none", self_blend_p=1.0)
    y, labels = augment_once(Augmenter(cfg), _batch(), torch.tensor([0.0, 1.0] * 4), batch_generator(0, 1, 0))
    assert torch.equal(labels, torch.ones(8))


@pytest.mark.parametrize("key,value", [("self_blend_p", 1.5), ("jpeg_p", -0.1), ("rescale_min", 1.0),
                                       ("jpeg_quality_min", 0), ("jpeg_quality_max", 101)])
def test_out_of_range_settings_name_the_key(key, value):
    with pytest.raises(DfsweepError, match="augment.jpeg_quality_min" if "quality" in key else f"augment.{key}"):
        config_from_dict({"augment": {key: value}})


def test_jpeg_quality_bounds_are_ordered():
    with pytest.raises(DfsweepError, match="jpeg_quality"):
        AugmentConfig(jpeg_quality_min=90, jpeg_quality_max=50)


def test_normalize_is_imagenet():
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    y = normalize(x)
    for c in range(3):
        assert y[0, c, 0, 0].item() == pytest.approx((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], rel=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", PRESETS.names())
def test_cuda_draws_the_same_augmentation_as_cpu(name):
    """The generator lives on the CPU, so a batch augmented on the GPU gets the same crops, flips, jitter and
    blur as on the CPU: the two differ by interpolation rounding only (a wrong draw differs by ~0.5)."""
    x = _batch()
    aug = Augmenter(AugmentConfig(preset=name))
    cpu, _ = augment_once(aug, x, torch.zeros(8), batch_generator(1, 1, 0))
    gpu, _ = augment_once(aug, x.cuda(), torch.zeros(8, device="cuda"), batch_generator(1, 1, 0))
    assert gpu.device.type == "cuda"
    assert (cpu - gpu.cpu()).abs().mean() < 0.05
    rows = torch.tensor([5, 0, 7, 7])
    from_rows, _ = augment_once(aug, x.cuda(), torch.zeros(4, device="cuda"), batch_generator(1, 1, 0), rows=rows)
    gathered, _ = augment_once(aug, x[rows].cuda(), torch.zeros(4, device="cuda"), batch_generator(1, 1, 0))
    assert torch.allclose(from_rows, gathered, atol=1e-5)
    plan = aug.plan([batch_generator(1, 1, 0)], 4, (64, 64), torch.device("cuda"))
    planned, _ = aug(x.cuda(), torch.zeros(4, device="cuda"), plan[0], rows=rows)
    assert torch.equal(planned, from_rows)
