import numpy as np
import pytest

from dfsweep.data.split import split_indices
from dfsweep.errors import DfsweepError


def _labels(n_real, n_fake, seed=0):
    y = np.array([0] * n_real + [1] * n_fake)
    return np.random.default_rng(seed).permutation(y)


def _check_partition(tr, va, n):
    assert tr.dtype == np.int64 and va.dtype == np.int64
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(n))


def test_stratified_without_groups():
    y = _labels(1000, 200)
    tr, va = split_indices(y, None, 0.12, seed=0)
    _check_partition(tr, va, len(y))
    assert (y[va] == 0).sum() == 120 and (y[va] == 1).sum() == 24  # exactly 12% of each class


def test_grouped_never_shares_a_group_and_keeps_the_ratio():
    rng = np.random.default_rng(1)
    # 400 source videos: each gives 1-3 real frames, and a fifth of them 1-4 fake frames as well.
    y, g = [], []
    for v in range(400):
        y += [0] * int(rng.integers(1, 4))
        if v % 5 == 0:
            y += [1] * int(rng.integers(1, 5))
        g += [f"vid{v}"] * (len(y) - len(g))
    y, g = np.array(y), np.array(g)
    tr, va = split_indices(y, g, 0.12, seed=3)
    _check_partition(tr, va, len(y))
    assert not set(g[tr]) & set(g[va])
    assert abs(len(va) / len(y) - 0.12) < 0.02
    assert abs(y[va].mean() - y.mean()) < 0.03


@pytest.mark.parametrize("grouped", [False, True])
def test_deterministic_per_seed(grouped):
    y = _labels(500, 100)
    g = np.arange(len(y)) // 2 if grouped else None
    a = split_indices(y, g, 0.2, seed=7)
    b = split_indices(y, g, 0.2, seed=7)
    c = split_indices(y, g, 0.2, seed=8)
    assert all(np.array_equal(x, z) for x, z in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_rare_class_gets_a_place_on_both_sides():
    y = _labels(300, 2)
    tr, va = split_indices(y, None, 0.12, seed=0)
    assert (y[va] == 1).sum() == 1 and (y[tr] == 1).sum() == 1


def test_a_class_that_only_comes_with_many_of_the_other_still_gets_both_sides():
    # Both fakes of a group sit with 30 reals: adding such a group never brings the fake count closer
    # to its target of 1, so only the rule "every class on both sides" puts one in validation; the
    # polish pass then moves out the real singletons it made surplus.
    y = np.array(([1, 1] + [0] * 30) * 4 + [0] * 300)
    g = np.concatenate([np.repeat(np.arange(4), 32), 100 + np.arange(300)])
    for seed in range(5):
        tr, va = split_indices(y, g, 0.05, seed=seed)
        assert (y[va] == 1).sum() == 2 and (y[tr] == 1).sum() == 6
        assert not set(g[tr]) & set(g[va])
        assert len(va) == 32  # one mixed group and nothing else: the closest to 21 reals it can get


@pytest.mark.parametrize("y, g, msg", [
    ([0, 0, 0, 1], None, "class 'fake' has 1 image"),
    ([0, 0, 0, 0], None, "only class 'real'"),
    ([], None, "no images"),
    ([0, 0, 0, 1, 1], [1, 2, 3, 4, 4], "class 'fake' has 2 image(s) in 1 group(s)"),
])
def test_too_few_to_split(y, g, msg):
    with pytest.raises(DfsweepError) as e:
        split_indices(np.array(y, dtype=np.int64), None if g is None else np.array(g), 0.12, seed=0)
    assert msg in str(e.value) and str(e.value).startswith("data.val_fraction:")


def test_stratified_fraction_keeps_class_shares_and_whole_groups():
    from dfsweep.data import stratified_fraction
    rng = np.random.default_rng(0)
    labels = np.array([0] * 500 + [1] * 100)
    groups = np.array([f"v{i // 4}" for i in range(600)])        # groups of 4 images
    keep = stratified_fraction(labels, groups, 0.3, seed=1)
    assert abs(len(keep) - 180) <= 8
    assert abs(labels[keep].mean() - 100 / 600) < 0.03
    kept_groups = set(groups[keep])
    assert all((groups[keep] == g).sum() == 4 for g in rng.choice(sorted(kept_groups), 10))
    assert np.array_equal(keep, stratified_fraction(labels, groups, 0.3, seed=1))
    assert np.array_equal(stratified_fraction(labels, groups, 1.0, seed=1), np.arange(600))
