"""The augmentation steps against torchvision's own per-image functions, where their definitions coincide,
and their plans: many batches planned at once are each batch's own."""
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from dfsweep.augment import Augmenter
from dfsweep.augment.blur import gaussian_taps
from dfsweep.augment.crop import CropFlip
from dfsweep.augment.jitter import ColorJitter
from dfsweep.augment.normalize import standardise
from dfsweep.augment.sharpen import Sharpen
from dfsweep.augment.step import index_rows
from dfsweep.batches import batch_generator
from dfsweep.config import AugmentConfig
from oneshot import adjust_sharpness, bernoulli, color_jitter, gaussian_blur, resized_crop_flip, uniform


def _imgs(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_crop_with_full_scale_square_ratio_and_no_flip_is_identity():
    x = _imgs()
    y = resized_crop_flip(x, (1.0, 1.0), 0.0, _gen(), ratio=(1.0, 1.0))
    assert torch.allclose(y, x, atol=1e-5)


def test_flip_p_one_matches_torchvision_hflip():
    x = _imgs()
    y = resized_crop_flip(x, (1.0, 1.0), 1.0, _gen(), ratio=(1.0, 1.0))
    assert torch.allclose(y, TF.horizontal_flip(x), atol=1e-5)


def test_crop_zooms_in():
    # a checkerboard of 1-pixel squares: zooming in (scale 0.5) lowers the mean local contrast
    x = ((torch.arange(32).view(1, -1) + torch.arange(32).view(-1, 1)) % 2).float().expand(4, 3, 32, 32)
    y = resized_crop_flip(x.contiguous(), (0.5, 0.5), 0.0, _gen())
    assert y.diff(dim=3).abs().mean() < 0.9 * x.diff(dim=3).abs().mean()


@pytest.mark.parametrize("which", ["brightness", "contrast", "saturation"])
def test_single_jitter_factor_matches_torchvision(which):
    x = _imgs()
    kw = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0, which: 0.5}
    y = color_jitter(x, 1.0, gen=_gen(3), **kw)
    # replay the draws: on-mask, then b, c, s factors (only `which` is away from 1), then hue
    g = _gen(3)
    bernoulli(4, 1.0, g)
    draws = {k: uniform(4, 0.5, 1.5, g) for k in ("brightness", "contrast", "saturation")}
    fn = {"brightness": TF.adjust_brightness, "contrast": TF.adjust_contrast, "saturation": TF.adjust_saturation}[which]
    want = torch.stack([fn(x[i], draws[which][i].item()) for i in range(4)])
    assert torch.allclose(y, want, atol=1e-4)


def test_hue_shift_keeps_grey_and_luma_and_zero_shift_is_identity():
    grey = torch.full((2, 3, 8, 8), 0.4)
    assert torch.allclose(color_jitter(grey, 1.0, 0, 0, 0, 0.5, _gen()), grey, atol=1e-5)
    x = _imgs(2)
    assert torch.allclose(color_jitter(x, 1.0, 0, 0, 0, 0.0, _gen()), x, atol=1e-5)
    y = color_jitter(x, 1.0, 0, 0, 0, 0.1, _gen())
    luma = lambda t: (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)  # noqa: E731
    inside = (y > 0.01).all(1) & (y < 0.99).all(1)          # clamping aside
    assert torch.allclose(luma(y)[inside], luma(x)[inside], atol=1e-4)
    assert not torch.allclose(y, x, atol=1e-3)


def test_folded_normalisation_is_standardising_after_the_clamp():
    # strong factors push many pixels out of [0, 255]; the normalisation folded into the matrix, offset and
    # clamp bounds must match standardising the clamped output
    x = _imgs(6) * 255
    plain = color_jitter(x, 1.0, 0.9, 0.9, 0.9, 0.3, _gen(4), peak=255.0)
    folded = color_jitter(x, 1.0, 0.9, 0.9, 0.9, 0.3, _gen(4), peak=255.0, normalise=True)
    assert ((plain == 0) | (plain == 255)).float().mean() > 0.05      # the clamp is exercised
    assert torch.allclose(folded, standardise(plain), atol=1e-4)


def test_jitter_gives_the_same_result_for_channels_last_input():
    x = _imgs(3) * 255
    a = color_jitter(x, 1.0, 0.4, 0.4, 0.4, 0.1, _gen(2), peak=255.0)
    b = color_jitter(x.contiguous(memory_format=torch.channels_last), 1.0, 0.4, 0.4, 0.4, 0.1, _gen(2), peak=255.0)
    assert torch.allclose(a, b, atol=1e-4)


def test_crop_returns_a_channels_first_float_batch_from_either_layout():
    x = (_imgs(4) * 255).to(torch.uint8)
    a = resized_crop_flip(x, (0.5, 1.0), 0.5, _gen(1))
    b = resized_crop_flip(x.contiguous(memory_format=torch.channels_last), (0.5, 1.0), 0.5, _gen(1))
    assert a.dtype == torch.float32 and a.is_contiguous() and b.is_contiguous()
    assert torch.equal(a, b)


def test_crop_reads_rows_of_the_whole_set_like_a_gathered_batch():
    images = (_imgs(10) * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # decoded layout
    rows = torch.tensor([7, 2, 2, 9, 0])
    a = resized_crop_flip(images, (0.5, 1.0), 0.5, _gen(3), rows=rows)
    b = resized_crop_flip(images[rows], (0.5, 1.0), 0.5, _gen(3))
    assert a.shape == (5, 3, 32, 32) and torch.equal(a, b)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_blur_in_the_crop_loop_is_the_crop_then_gaussian_blur(layout):
    x = (_imgs(12) * 255).to(torch.uint8).contiguous(memory_format=layout)
    fused = resized_crop_flip(x, (0.6, 1.0), 0.5, _gen(4), blur=(0.5, (0.1, 2.0)))
    g = _gen(4)
    then = gaussian_blur(resized_crop_flip(x, (0.6, 1.0), 0.5, g), 0.5, (0.1, 2.0), g)
    assert torch.allclose(fused, then, atol=1e-3)
    assert not torch.allclose(fused, resized_crop_flip(x, (0.6, 1.0), 0.5, _gen(4)), atol=1e-2)  # it blurred


def test_flipping_the_box_before_the_resize_is_flipping_the_crop():
    x = (_imgs(6) * 255).to(torch.uint8).contiguous(memory_format=torch.channels_last)
    plain = resized_crop_flip(x, (0.5, 0.9), 0.0, _gen(2))        # the flip draw is taken either way
    flipped = resized_crop_flip(x, (0.5, 0.9), 1.0, _gen(2))
    assert torch.equal(flipped, plain.flip(-1))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_antialiased_upsampling_is_plain_bilinear(dtype):
    # the crop resizes with antialias=True (the faster separable kernel): it must not filter when up-sampling
    g = _gen(9)
    for h, w in [(20, 31), (32, 25), (17, 17), (31, 32)]:
        box = (torch.rand(1, 3, h, w, generator=g) * 255).to(dtype).contiguous(memory_format=torch.channels_last)
        aa = torch.nn.functional.interpolate(box, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
        plain = torch.nn.functional.interpolate(box, size=(32, 32), mode="bilinear", align_corners=False)
        assert torch.allclose(aa.float(), plain.float(), atol=1e-3 if dtype == torch.float32 else 0)


def test_jitter_probability_zero_changes_nothing():
    x = _imgs()
    assert torch.allclose(color_jitter(x, 0.0, 0.4, 0.4, 0.4, 0.1, _gen()), x, atol=1e-6)


def test_blur_matches_torchvision_gaussian_blur():
    x = _imgs()
    y = gaussian_blur(x, 1.0, (0.5, 2.0), _gen(5))
    g = _gen(5)
    bernoulli(4, 1.0, g)
    sig = uniform(4, 0.5, 2.0, g)
    want = torch.stack([TF.gaussian_blur(x[i], [5, 5], [sig[i].item()] * 2) for i in range(4)])
    assert torch.allclose(y, want, atol=1e-4)


def test_blur_probability_selects_samples():
    x = _imgs(64)
    y = gaussian_blur(x, 0.3, (1.0, 1.0), _gen())
    changed = (y - x).flatten(1).abs().amax(1) > 1e-6
    assert 5 <= int(changed.sum()) <= 35


@pytest.mark.parametrize("factor", [0.0, 0.5, 2.0, 5.0])
def test_sharpness_matches_torchvision(factor):
    x = _imgs()
    y = adjust_sharpness(x, 1.0, factor, _gen())
    want = torch.stack([TF.adjust_sharpness(x[i], factor) for i in range(4)])
    assert torch.allclose(y, want, atol=1e-5)


def test_sharpness_changes_only_the_chosen_samples_in_place():
    x = _imgs(5) * 255
    before = x.clone()
    on = np.array([True, False, True, False, False])
    y = Sharpen(1.0, 2.0, peak=255.0)(x, on)
    assert y is x
    assert torch.equal(y[~torch.from_numpy(on)], before[~torch.from_numpy(on)])
    assert not torch.equal(y[0], before[0]) and not torch.equal(y[2], before[2])
    want = torch.stack([TF.adjust_sharpness(before[i] / 255, 2.0) * 255 for i in range(5)])
    assert torch.allclose(y[[0, 2]], want[[0, 2]], atol=1e-3)


def test_a_probability_does_not_shift_the_other_steps_draws():
    # every step takes its uniforms whatever its probabilities are, so one setting does not reshuffle the others
    def plan(**kw):
        return Augmenter(AugmentConfig(**kw)).plan([batch_generator(7, 1, 0)], 6, (32, 32), torch.device("cpu"))[0]
    a, b = plan(blur_p=0.0, flip_p=0.0), plan(blur_p=1.0, flip_p=1.0)
    assert all(np.array_equal(getattr(a.params[0], f), getattr(b.params[0], f)) for f in ("top", "left", "h", "w"))
    assert not np.array_equal(a.params[0].flip, b.params[0].flip)
    assert torch.equal(a.params[1], b.params[1])                               # the jitter's parameters


@pytest.mark.parametrize("blur", [None, (0.5, (0.1, 2.0))])
def test_each_crop_parameter_takes_its_own_block_of_n_uniforms(blur):
    # a batch's uniforms are n areas, n aspects, n tops, n lefts, n flips[, n blur choices, n sigmas]
    crop = CropFlip((0.5, 1.0), 0.5, blur=blur)
    assert crop.draws == (5 if blur is None else 7)
    u = torch.rand(1, crop.draws * 6, generator=_gen(11)).numpy()
    for flip_u, flipped in ((0.0, True), (0.99, False)):
        v = u.copy()
        v[0, 24:30] = flip_u
        p, q = crop.plan(u, 6, (32, 32))[0], crop.plan(v, 6, (32, 32))[0]
        assert (q.flip == flipped).all()
        assert all(np.array_equal(getattr(p, f), getattr(q, f)) for f in ("top", "left", "h", "w")) and p.taps == q.taps


def test_small_sigma_blur_in_the_crop_loop_skips_zero_taps_and_matches_the_batched_blur():
    # sigma below ~0.38 zeroes the outer taps (`gaussian_taps`), which the in-loop blur then skips
    assert (gaussian_taps([0.2, 0.3])[:, [0, 4]] == 0).all() and (gaussian_taps([1.5])[:, [0, 4]] > 0).all()
    x = (_imgs(12) * 255).to(torch.uint8)
    fused = resized_crop_flip(x, (0.6, 1.0), 0.5, _gen(6), blur=(1.0, (0.15, 0.35)))
    g = _gen(6)
    then = gaussian_blur(resized_crop_flip(x, (0.6, 1.0), 0.5, g), 1.0, (0.15, 0.35), g)
    assert torch.allclose(fused, then, atol=1e-3)
    assert not torch.allclose(fused, resized_crop_flip(x, (0.6, 1.0), 0.5, _gen(6)), atol=1e-2)


def test_crops_planned_for_many_batches_are_each_batchs_own():
    crop = CropFlip((0.3, 1.0), 0.5, blur=(0.5, (0.1, 2.0)))
    u = torch.rand(4, 7 * 6, generator=_gen(8)).numpy()
    together = crop.plan(u, 6, (32, 40))
    for b in range(4):
        alone = crop.plan(u[b:b + 1], 6, (32, 40))[0]
        for f in ("top", "left", "h", "w", "flip"):
            assert np.array_equal(getattr(together[b], f), getattr(alone, f)), f
        assert together[b].taps == alone.taps
    assert all(((p.top + p.h) <= 32).all() and ((p.left + p.w) <= 40).all() for p in together)
    assert 0 < sum(t is not None for p in together for t in p.taps) < 24


@pytest.mark.parametrize("blur", [None, (0.5, (0.1, 2.0))])
def test_crops_planned_for_a_gpu_crop_in_one_batch_like_the_loop(blur):
    # a plan made for a GPU carries its boxes, flips and blur taps as tensors there and crops the batch in one
    # roi_align (that path, run here on the CPU): the same boxes as the loop, whose pixels differ by
    # interpolation at the box edges only (roi_align reads past a box edge, interpolate clamps to it)
    crop = CropFlip((0.4, 1.0), 0.5, blur=blur)
    x = (_imgs(12, 48) * 255).to(torch.uint8)
    rows = [torch.tensor([3, 0, 7, 7, 11, 2]), torch.tensor([1, 2, 3, 4, 5, 6])]
    u = torch.rand(2, crop.draws * 6, generator=_gen(10)).numpy()
    on_gpu = crop.plan(u, 6, (48, 48), gpu=torch.device("cpu"))
    in_loop = crop.plan(u, 6, (48, 48))
    for b in range(2):
        assert on_gpu[b].roi.shape == (6, 5) and in_loop[b].roi is None
        batched, looped = crop(x, on_gpu[b], rows[b]), crop(x, in_loop[b], rows[b])
        assert batched.shape == looped.shape == (6, 3, 48, 48) and batched.dtype == torch.float32
        assert (batched - looped).abs().mean() < 2.0                         # grey levels
        alone = crop.plan(u[b:b + 1], 6, (48, 48), gpu=torch.device("cpu"))[0]
        assert torch.equal(crop(x, alone, rows[b]), batched)
    if blur is not None:
        assert sum(0 if p.blur_idx is None else len(p.blur_idx) for p in on_gpu) == \
            sum(t is not None for p in in_loop for t in p.taps) > 0


def test_jitter_planned_for_many_batches_is_each_batchs_own_and_applies_like_one_shot():
    jitter = ColorJitter(0.7, 0.4, 0.4, 0.4, 0.2, peak=255.0)
    u = torch.rand(3, 5 * 4, generator=_gen(9)).numpy()
    together = jitter.plan(u, 4, (32, 32))
    for b in range(3):
        assert torch.equal(together[b], jitter.plan(u[b:b + 1], 4, (32, 32))[0])
    x = _imgs(4) * 255
    want = color_jitter(x, 0.7, 0.4, 0.4, 0.4, 0.2, _gen(9), peak=255.0)     # the first batch's draws
    assert torch.equal(jitter(x, together[0]), want)


def test_index_rows_gives_each_rows_chosen_columns_and_sharpening_takes_them_as_the_choice():
    on = np.array([[True, False, True], [False, False, False], [False, True, False]])
    got = index_rows(on, torch.device("cpu"))
    assert [t.tolist() for t in got] == [[0, 2], [], [1]]
    x = _imgs(3) * 255
    sharpen = Sharpen(1.0, 2.0, peak=255.0)
    assert torch.equal(sharpen(x.clone(), got[0]), sharpen(x.clone(), on[0]))
    assert sharpen(x, got[1]) is x
