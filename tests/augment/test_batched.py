"""The batched ops against torchvision's own per-image functions, where their definitions coincide."""
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from dfsweep.augment import batched as B


def _imgs(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_crop_with_full_scale_square_ratio_and_no_flip_is_identity():
    x = _imgs()
    y = B.resized_crop_flip(x, (1.0, 1.0), 0.0, _gen(), ratio=(1.0, 1.0))
    assert torch.allclose(y, x, atol=1e-5)


def test_flip_p_one_matches_torchvision_hflip():
    x = _imgs()
    y = B.resized_crop_flip(x, (1.0, 1.0), 1.0, _gen(), ratio=(1.0, 1.0))
    assert torch.allclose(y, TF.horizontal_flip(x), atol=1e-5)


def test_crop_zooms_in():
    # a checkerboard of 1-pixel squares: zooming in (scale 0.5) lowers the mean local contrast
    x = ((torch.arange(32).view(1, -1) + torch.arange(32).view(-1, 1)) % 2).float().expand(4, 3, 32, 32)
    y = B.resized_crop_flip(x.contiguous(), (0.5, 0.5), 0.0, _gen())
    assert y.diff(dim=3).abs().mean() < 0.9 * x.diff(dim=3).abs().mean()


@pytest.mark.parametrize("which", ["brightness", "contrast", "saturation"])
def test_single_jitter_factor_matches_torchvision(which):
    x = _imgs()
    kw = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0, which: 0.5}
    g = _gen(3)
    y = B.color_jitter(x, 1.0, gen=g, **kw)
    # replay the draws: on-mask, then b, c, s factors (only `which` is away from 1), then hue
    g = _gen(3)
    B.bernoulli(4, 1.0, g)
    draws = {k: B.uniform(4, 0.5, 1.5, g) for k in ("brightness", "contrast", "saturation")}
    fn = {"brightness": TF.adjust_brightness, "contrast": TF.adjust_contrast, "saturation": TF.adjust_saturation}[which]
    want = torch.stack([fn(x[i], draws[which][i].item()) for i in range(4)])
    assert torch.allclose(y, want, atol=1e-4)


def test_hue_shift_keeps_grey_and_luma_and_zero_shift_is_identity():
    grey = torch.full((2, 3, 8, 8), 0.4)
    assert torch.allclose(B.color_jitter(grey, 1.0, 0, 0, 0, 0.5, _gen()), grey, atol=1e-5)
    x = _imgs(2)
    assert torch.allclose(B.color_jitter(x, 1.0, 0, 0, 0, 0.0, _gen()), x, atol=1e-5)
    y = B.color_jitter(x, 1.0, 0, 0, 0, 0.1, _gen())
    luma = lambda t: (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)  # noqa: E731
    inside = (y > 0.01).all(1) & (y < 0.99).all(1)          # clamping aside
    assert torch.allclose(luma(y)[inside], luma(x)[inside], atol=1e-4)
    assert not torch.allclose(y, x, atol=1e-3)


def test_jitter_then_is_the_affine_map_after_the_clamp():
    # strong factors push many pixels out of [0, 255]; the folded (scale, shift) must match applying it after
    x = _imgs(6) * 255
    scale, shift = torch.tensor([0.02, 0.017, 0.015]), torch.tensor([-2.1, -2.0, -1.8])
    plain = B.color_jitter(x, 1.0, 0.9, 0.9, 0.9, 0.3, _gen(4), peak=255.0)
    folded = B.color_jitter(x, 1.0, 0.9, 0.9, 0.9, 0.3, _gen(4), peak=255.0, then=(scale, shift))
    assert ((plain == 0) | (plain == 255)).float().mean() > 0.05      # the clamp is exercised
    assert torch.allclose(folded, plain * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1), atol=1e-4)


def test_jitter_gives_the_same_result_for_channels_last_input():
    x = _imgs(3) * 255
    a = B.color_jitter(x, 1.0, 0.4, 0.4, 0.4, 0.1, _gen(2), peak=255.0)
    b = B.color_jitter(x.contiguous(memory_format=torch.channels_last), 1.0, 0.4, 0.4, 0.4, 0.1, _gen(2), peak=255.0)
    assert torch.allclose(a, b, atol=1e-4)


def test_crop_returns_a_channels_first_float_batch_from_either_layout():
    x = (_imgs(4) * 255).to(torch.uint8)
    a = B.resized_crop_flip(x, (0.5, 1.0), 0.5, _gen(1))
    b = B.resized_crop_flip(x.contiguous(memory_format=torch.channels_last), (0.5, 1.0), 0.5, _gen(1))
    assert a.dtype == torch.float32 and a.is_contiguous() and b.is_contiguous()
    assert torch.equal(a, b)


def test_crop_reads_rows_of_the_whole_set_like_a_gathered_batch():
    images = (_imgs(10) * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # decoded layout
    rows = torch.tensor([7, 2, 2, 9, 0])
    a = B.resized_crop_flip(images, (0.5, 1.0), 0.5, _gen(3), rows=rows)
    b = B.resized_crop_flip(images[rows], (0.5, 1.0), 0.5, _gen(3))
    assert a.shape == (5, 3, 32, 32) and torch.equal(a, b)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_blur_in_the_crop_loop_is_the_crop_then_gaussian_blur(layout):
    x = (_imgs(12) * 255).to(torch.uint8).contiguous(memory_format=layout)
    fused = B.resized_crop_flip(x, (0.6, 1.0), 0.5, _gen(4), blur=(0.5, (0.1, 2.0)))
    g = _gen(4)
    then = B.gaussian_blur(B.resized_crop_flip(x, (0.6, 1.0), 0.5, g), 0.5, (0.1, 2.0), g)
    assert torch.allclose(fused, then, atol=1e-3)
    assert not torch.allclose(fused, B.resized_crop_flip(x, (0.6, 1.0), 0.5, _gen(4)), atol=1e-2)  # it blurred


def test_flipping_the_box_before_the_resize_is_flipping_the_crop():
    x = (_imgs(6) * 255).to(torch.uint8).contiguous(memory_format=torch.channels_last)
    plain = B.resized_crop_flip(x, (0.5, 0.9), 0.0, _gen(2))        # the flip draw is taken either way
    flipped = B.resized_crop_flip(x, (0.5, 0.9), 1.0, _gen(2))
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
    assert torch.allclose(B.color_jitter(x, 0.0, 0.4, 0.4, 0.4, 0.1, _gen()), x, atol=1e-6)


def test_blur_matches_torchvision_gaussian_blur():
    x = _imgs()
    g = _gen(5)
    y = B.gaussian_blur(x, 1.0, (0.5, 2.0), g)
    g = _gen(5)
    B.bernoulli(4, 1.0, g)
    sig = B.uniform(4, 0.5, 2.0, g)
    want = torch.stack([TF.gaussian_blur(x[i], [5, 5], [sig[i].item()] * 2) for i in range(4)])
    assert torch.allclose(y, want, atol=1e-4)


def test_blur_probability_selects_samples():
    x = _imgs(64)
    y = B.gaussian_blur(x, 0.3, (1.0, 1.0), _gen())
    changed = (y - x).flatten(1).abs().amax(1) > 1e-6
    assert 5 <= int(changed.sum()) <= 35


@pytest.mark.parametrize("factor", [0.0, 0.5, 2.0, 5.0])
def test_sharpness_matches_torchvision(factor):
    x = _imgs()
    y = B.adjust_sharpness(x, 1.0, factor, _gen())
    want = torch.stack([TF.adjust_sharpness(x[i], factor) for i in range(4)])
    assert torch.allclose(y, want, atol=1e-5)


def test_sharpness_changes_only_the_chosen_samples_and_in_place_only_when_asked():
    x = _imgs(5) * 255
    before = x.clone()
    on = np.array([True, False, True, False, False])
    y = B.sharpen_with(x, on, 2.0, peak=255.0)
    assert torch.equal(x, before)
    assert torch.equal(y[~torch.from_numpy(on)], x[~torch.from_numpy(on)])
    assert not torch.equal(y[0], x[0]) and not torch.equal(y[2], x[2])
    want = torch.stack([TF.adjust_sharpness(x[i] / 255, 2.0) * 255 for i in range(5)])
    assert torch.allclose(y[[0, 2]], want[[0, 2]], atol=1e-3)
    z = B.sharpen_with(x, on, 2.0, peak=255.0, inplace=True)
    assert z is x and torch.equal(x, y)


def test_draws_do_not_depend_on_probabilities():
    # the stream position after an op is the same whatever p is, so one setting does not reshuffle others
    g1, g2 = _gen(7), _gen(7)
    B.gaussian_blur(_imgs(), 0.0, (0.1, 2.0), g1)
    B.gaussian_blur(_imgs(), 1.0, (0.1, 2.0), g2)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


@pytest.mark.parametrize("blur", [None, (0.5, (0.1, 2.0))])
def test_crop_takes_its_draws_in_one_call_at_the_same_stream_position(blur):
    # one torch.rand for the batch's boxes, flips (and blur choices) leaves the generator where separate
    # draws of each (area, aspect, top, left, flip[, blur on, sigma]) would, so later ops see the same numbers
    x = (_imgs(6) * 255).to(torch.uint8)
    g1, g2 = _gen(11), _gen(11)
    B.resized_crop_flip(x, (0.5, 1.0), 0.5, g1, blur=blur)
    for _ in range(5 if blur is None else 7):
        torch.rand(6, generator=g2)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))


def test_small_sigma_blur_in_the_crop_loop_skips_zero_taps_and_matches_the_batched_blur():
    # sigma below ~0.38 zeroes the outer taps (`_blur_taps`), which the in-loop blur then skips
    assert (B._blur_taps([0.2, 0.3])[:, [0, 4]] == 0).all() and (B._blur_taps([1.5])[:, [0, 4]] > 0).all()
    x = (_imgs(12) * 255).to(torch.uint8)
    fused = B.resized_crop_flip(x, (0.6, 1.0), 0.5, _gen(6), blur=(1.0, (0.15, 0.35)))
    g = _gen(6)
    then = B.gaussian_blur(B.resized_crop_flip(x, (0.6, 1.0), 0.5, g), 1.0, (0.15, 0.35), g)
    assert torch.allclose(fused, then, atol=1e-3)
    assert not torch.allclose(fused, B.resized_crop_flip(x, (0.6, 1.0), 0.5, _gen(6)), atol=1e-2)


def test_crops_planned_for_many_batches_are_each_batchs_own():
    u = torch.rand(4, 7 * 6, generator=_gen(8)).numpy()
    together = B.plan_crops(u, 6, (32, 40), (0.3, 1.0), 0.5, blur=(0.5, (0.1, 2.0)))
    for b in range(4):
        alone = B.plan_crops(u[b:b + 1], 6, (32, 40), (0.3, 1.0), 0.5, blur=(0.5, (0.1, 2.0)))[0]
        for f in ("top", "left", "h", "w", "flip"):
            assert np.array_equal(getattr(together[b], f), getattr(alone, f)), f
        assert together[b].taps == alone.taps
    assert all(((p.top + p.h) <= 32).all() and ((p.left + p.w) <= 40).all() for p in together)
    assert 0 < sum(t is not None for p in together for t in p.taps) < 24


@pytest.mark.parametrize("blur", [None, (0.5, (0.1, 2.0))])
def test_crops_planned_for_a_device_crop_in_one_batch_like_the_loop(blur):
    # a plan made for a device carries its boxes, flips and blur taps as tensors there and crops the batch
    # in one roi_align (the GPU path, run here on the CPU): the same boxes as the loop, whose pixels differ
    # by interpolation at the box edges only (roi_align reads past a box edge, interpolate clamps to it)
    x = (_imgs(12, 48) * 255).to(torch.uint8)
    rows = [torch.tensor([3, 0, 7, 7, 11, 2]), torch.tensor([1, 2, 3, 4, 5, 6])]
    u = torch.rand(2, B.crop_draws(blur is not None) * 6, generator=_gen(10)).numpy()
    on_device = B.plan_crops(u, 6, (48, 48), (0.4, 1.0), 0.5, blur=blur, device=torch.device("cpu"))
    in_loop = B.plan_crops(u, 6, (48, 48), (0.4, 1.0), 0.5, blur=blur)
    for b in range(2):
        assert on_device[b].roi.shape == (6, 5) and in_loop[b].roi is None
        batched = B.crop_with(x, on_device[b], rows[b])
        looped = B.crop_with(x, in_loop[b], rows[b])
        assert batched.shape == looped.shape == (6, 3, 48, 48) and batched.dtype == torch.float32
        assert (batched - looped).abs().mean() < 2.0                         # grey levels
        alone = B.plan_crops(u[b:b + 1], 6, (48, 48), (0.4, 1.0), 0.5, blur=blur, device=torch.device("cpu"))[0]
        assert torch.equal(B.crop_with(x, alone, rows[b]), batched)
    if blur is not None:
        assert sum(0 if p.blur_idx is None else len(p.blur_idx) for p in on_device) == \
            sum(t is not None for p in in_loop for t in p.taps) > 0


def test_jitter_planned_for_many_batches_is_each_batchs_own_and_applies_like_color_jitter():
    u = torch.rand(3, 5 * 4, generator=_gen(9)).numpy()
    together = B.plan_jitter(u, 4, 0.7, 0.4, 0.4, 0.4, 0.2, peak=255.0)
    for b in range(3):
        assert torch.equal(together[b], B.plan_jitter(u[b:b + 1], 4, 0.7, 0.4, 0.4, 0.4, 0.2, peak=255.0)[0])
    x = _imgs(4) * 255
    g = _gen(9)
    want = B.color_jitter(x, 0.7, 0.4, 0.4, 0.4, 0.2, g, peak=255.0)     # the first batch's draws
    assert torch.equal(B.jitter_with(x, together[0]), want)


def test_index_rows_gives_each_rows_chosen_columns_and_sharpening_takes_them_as_the_choice():
    on = np.array([[True, False, True], [False, False, False], [False, True, False]])
    got = B.index_rows(on, torch.device("cpu"))
    assert [t.tolist() for t in got] == [[0, 2], [], [1]]
    x = _imgs(3) * 255
    assert torch.equal(B.sharpen_with(x, got[0], 2.0, peak=255.0), B.sharpen_with(x, on[0], 2.0, peak=255.0))
    assert B.sharpen_with(x, got[1], 2.0, peak=255.0) is x
