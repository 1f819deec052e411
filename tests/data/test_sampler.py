import numpy as np

from dfsweep.data.sampler import balanced_sampler

Y = np.array([0] * 500 + [1] * 100)  # 5:1


def test_draws_are_about_half_fake():
    idx = np.array(list(balanced_sampler(Y, seed=0, num_samples=2000)))
    assert len(idx) == 2000
    assert 0.45 <= Y[idx].mean() <= 0.55


def test_defaults_to_one_draw_per_image():
    assert len(balanced_sampler(Y, seed=0)) == len(Y)
    assert len(list(balanced_sampler(Y, seed=0))) == len(Y)


def test_deterministic_per_seed():
    a = list(balanced_sampler(Y, seed=5))
    b = list(balanced_sampler(Y, seed=5))
    c = list(balanced_sampler(Y, seed=6))
    assert a == b and a != c
    s = balanced_sampler(Y, seed=5)
    assert list(s) == a and list(s) != a  # successive epochs of one sampler differ
