"""Bootstrap intervals and paired comparisons: the scores match scikit-learn's, the intervals cover, groups
stay together, and a real difference is told from noise."""
import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from dfsweep.bootstrap import Run, compare, intervals, resample_weights, weighted_stats
from dfsweep.metrics import choose_threshold


def _scores(rng, n_real, n_fake, d, ties=False):
    y = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
    s = rng.normal(d * y, 1.0)
    return y, (np.round(s, 1) if ties else s)


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_scores_equal_sklearn_with_sample_weight(ties):
    rng = np.random.default_rng(0)
    y, s = _scores(rng, 300, 60, 0.8, ties)
    w = resample_weights(len(y), rng.integers(0, 120, len(y)), 6, rng)
    stats = weighted_stats(y, s, w)
    for b in range(len(w)):
        assert stats["auc"][b] == pytest.approx(roc_auc_score(y, s, sample_weight=w[b]), abs=1e-12)
        assert stats["ap"][b] == pytest.approx(average_precision_score(y, s, sample_weight=w[b]), abs=1e-12)
        rows = np.repeat(np.arange(len(y)), w[b].astype(int))          # integer weights = repeated rows
        assert stats["f1"][b] == pytest.approx(choose_threshold(y[rows], s[rows])["f1"], abs=1e-12)


def test_a_resample_without_fakes_scores_nan():
    y, s = np.array([0, 0, 1]), np.array([0.1, 0.2, 0.9])
    stats = weighted_stats(y, s, np.array([[1.0, 2.0, 0.0], [1.0, 1.0, 1.0]]))
    assert np.isnan(stats["auc"][0]) and stats["auc"][1] == 1.0


def test_grouped_resampling_keeps_a_groups_rows_together():
    groups = np.array(["a", "a", "b", "c", "c", "c", "d"])
    w = resample_weights(len(groups), groups, 500, np.random.default_rng(1))
    for g in "acd":
        cols = w[:, groups == g]
        assert (cols == cols[:, :1]).all()                  # every row of a group drawn as often as the group
    assert (w.sum(axis=1) != len(groups)).any()             # whole groups: the row count varies
    assert ((w[:, groups == "a"] == 0).mean()) == pytest.approx((1 - 1 / 4) ** 4, abs=0.06)


def test_interval_covers_a_known_auc_about_95_percent_of_the_time():
    # binormal scores: AUC = Phi(d / sqrt 2); 60 fakes as in a DFDC validation split
    d = 0.8
    true_auc = norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(7)
    hits, widths = [], []
    for rep in range(300):
        y, s = _scores(rng, 300, 60, d)
        ci = intervals(y, s, n_boot=400, seed=rep)
        hits.append(ci["auc_lo"] <= true_auc <= ci["auc_hi"])
        widths.append(ci["auc_hi"] - ci["auc_lo"])
    coverage = np.mean(hits)
    print(f"coverage {coverage:.3f}, mean width {np.mean(widths):.3f}")
    assert 0.90 <= coverage <= 0.99
    assert 0.10 < np.mean(widths) < 0.20                   # ~ +-0.07 at AUC 0.71 with 60 fakes


def test_intervals_are_seeded_and_grouped_ones_are_wider_when_groups_are_correlated():
    rng = np.random.default_rng(3)
    # 60 fakes made from 12 source videos share their video's detectability (as DFDC's do): rows of a group
    # are not independent evidence; 300 reals, each its own group
    groups = np.r_[np.arange(300), 300 + np.repeat(np.arange(12), 5)]
    y = np.r_[np.zeros(300, int), np.ones(60, int)]
    s = rng.normal(0, 1, 360) + y * (0.8 + rng.normal(0, 1.0, 312)[groups])
    assert intervals(y, s, groups, seed=5) == intervals(y, s, groups, seed=5)
    by_row, by_group = intervals(y, s, None), intervals(y, s, groups)
    assert by_group["auc_hi"] - by_group["auc_lo"] > 1.3 * (by_row["auc_hi"] - by_row["auc_lo"])


def test_paired_comparison_separates_a_real_difference_and_ties_noise():
    rng = np.random.default_rng(11)
    y = np.r_[np.zeros(300, int), np.ones(60, int)]
    groups = np.arange(len(y)) // 3
    base = rng.normal(0, 1, len(y))
    # a and b see the same rows; a adds signal, b2 is b with other seed noise only
    a = [Run(0, base + 1.2 * y + rng.normal(0, 0.3, len(y))) for _ in range(3)]
    b = [Run(0, base + 0.4 * y + rng.normal(0, 0.3, len(y))) for _ in range(3)]
    b2 = [Run(0, base + 0.4 * y + rng.normal(0, 0.3, len(y))) for _ in range(3)]
    folds = {0: (y, groups)}
    better = compare(a, b, folds, "auc")
    assert better.separated() and better.p_better > 0.99 and better.diff_lo > 0
    tie = compare(b, b2, folds, "auc")
    assert not tie.separated() and 0.05 < tie.p_better < 0.95 and tie.diff_lo < 0 < tie.diff_hi
    assert compare(b, a, folds, "auc").p_better < 0.01


def test_comparison_over_two_splits_uses_each_splits_rows():
    rng = np.random.default_rng(2)
    folds = {}
    a, b = [], []
    for f, n in ((0, 200), (5, 150)):             # splits named by their seed, of different sizes
        y = (rng.random(n) < 0.2).astype(int)
        folds[f] = (y, None)
        a.append(Run(f, rng.normal(1.5 * y, 1)))
        b.append(Run(f, rng.normal(0.2 * y, 1)))
    c = compare(a, b, folds, "ap")
    assert c.p_better > 0.99
    with pytest.raises(ValueError):
        compare(a, [], folds, "ap")
