import pytest
import torch
from torchvision.transforms import v2

from dfsweep.augment import PRESETS, build_train_transform, normalize, IMAGENET_MEAN, IMAGENET_STD
from dfsweep.config import AugmentConfig


def _types(t):
    """All transform classes inside a (nested) v2 pipeline."""
    out = [type(t)]
    for child in getattr(t, "transforms", []) or []:
        out += _types(child)
    return out


@pytest.mark.parametrize("name", PRESETS.names())
def test_presets_keep_uint8_size_and_shape(name):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (3, 80, 80), dtype=torch.uint8)
    y = build_train_transform(AugmentConfig(preset=name), 80)(x)
    assert y.dtype == torch.uint8 and y.shape == (3, 80, 80)


def test_seed_blurs_and_sharp_sharpens():
    seed = _types(build_train_transform(AugmentConfig(preset="seed"), 64))
    sharp = _types(build_train_transform(AugmentConfig(preset="sharp"), 64))
    assert v2.GaussianBlur in seed and v2.RandomAdjustSharpness not in seed
    assert v2.RandomAdjustSharpness in sharp and v2.GaussianBlur not in sharp
    for t in (seed, sharp):
        assert v2.RandomResizedCrop in t and v2.RandomHorizontalFlip in t and v2.ColorJitter in t


def test_none_is_identity():
    x = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    assert torch.equal(build_train_transform(AugmentConfig(preset="none"), 64)(x), x)


def test_probabilities_are_parameters():
    cfg = AugmentConfig(flip_p=1.0, jitter_p=0.0, blur_p=0.0, crop_scale_min=1.0)
    t = build_train_transform(cfg, 64)
    flips = [m for m in t.transforms if isinstance(m, v2.RandomHorizontalFlip)]
    assert flips[0].p == 1.0
    applies = [m for m in t.transforms if isinstance(m, v2.RandomApply)]
    assert sorted(a.p for a in applies) == [0.0, 0.0]


def test_same_seed_same_augmentation():
    x = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    t = build_train_transform(AugmentConfig(), 64)
    torch.manual_seed(3)
    a = t(x)
    torch.manual_seed(3)
    b = t(x)
    assert torch.equal(a, b)


def test_normalize_is_imagenet():
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    y = normalize(x)
    for c in range(3):
        assert y[0, c, 0, 0].item() == pytest.approx((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], rel=1e-5)
