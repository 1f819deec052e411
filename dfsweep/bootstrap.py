"""95% bootstrap intervals for validation scores, and paired bootstrap comparisons between configurations.

Resampling is by `group` (the source video a fake was made from) when the data has groups: a group's rows are
drawn together, because images of one video are not independent evidence. Every resample is a weight vector
over the validation rows (how often each row was drawn), so all resamples of one score vector are scored in a
few array operations: AUC, AP and the best F1 over thresholds, the same numbers scikit-learn gives with
`sample_weight` (tested against it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

__all__ = ["N_RESAMPLES", "LEVEL", "STATS", "resample_weights", "weighted_stats", "intervals", "Run",
           "Comparison", "compare"]

N_RESAMPLES = 1000
LEVEL = 0.95
STATS = ("auc", "ap", "f1")        # f1: the best F1 over thresholds, as the validation `f1` is chosen


def resample_weights(n: int, groups: Optional[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) counts: row i's weight in each resample. With `groups`, whole groups are drawn with
    replacement (every row of a group gets the group's count); without, single rows are."""
    if groups is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    _, group_of = np.unique(np.asarray(groups), return_inverse=True)
    group_of = group_of.reshape(-1)
    n_groups = int(group_of.max()) + 1 if n else 0
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(np.float64)
    return counts[:, group_of]


def weighted_stats(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> Dict[str, np.ndarray]:
    """AUC, AP and best F1 of `scores` under each row of `weights` ((B, n) → three (B,) arrays; NaN where a
    resample lacks a class). Ties in the scores count as sklearn counts them: one threshold per distinct score."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    w = weights[:, order]
    # 1. cumulative true and false positives at each distinct score, thresholds from high to low
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), len(s_sorted) - 1]
    tp = np.cumsum(w * y[order], axis=1)[:, last]
    fp = np.cumsum(w * ~y[order], axis=1)[:, last]
    pos, neg = tp[:, -1], fp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        # 2. AUC: the ROC curve's trapezoids (a tie counts half, as in the Mann-Whitney statistic)
        tp0 = np.pad(tp, ((0, 0), (1, 0)))
        fp0 = np.pad(fp, ((0, 0), (1, 0)))
        auc = (np.diff(fp0, axis=1) * (tp0[:, 1:] + tp0[:, :-1])).sum(axis=1) / (2 * pos * neg)
        # 3. AP: precision at each threshold times the recall it adds (sklearn's step sum, no interpolation)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), 0.0)
        ap = (np.diff(tp0, axis=1) * precision).sum(axis=1) / pos
        # 4. best F1 over thresholds: 2TP / (2TP + FP + FN) with FN = positives - TP
        f1 = (2 * tp / np.maximum(tp + fp + pos[:, None], 1e-300)).max(axis=1)
    bad = (pos <= 0) | (neg <= 0)
    return {"auc": np.where(bad, np.nan, auc), "ap": np.where(bad, np.nan, ap), "f1": np.where(bad, np.nan, f1)}


def intervals(y: np.ndarray, scores: np.ndarray, groups: Optional[np.ndarray] = None, n_boot: int = N_RESAMPLES,
              level: float = LEVEL, seed: int = 0) -> Dict[str, float]:
    """`{auc_lo, auc_hi, ap_lo, ap_hi, f1_lo, f1_hi}`: percentile bootstrap intervals, seeded (the same
    scores give the same interval)."""
    w = resample_weights(len(y), groups, n_boot, np.random.default_rng(seed))
    stats = weighted_stats(y, scores, w)
    tail = (1 - level) / 2 * 100
    out: Dict[str, float] = {}
    for k, v in stats.items():
        v = v[~np.isnan(v)]
        lo, hi = np.percentile(v, [tail, 100 - tail]) if len(v) else (math.nan, math.nan)
        out[f"{k}_lo"], out[f"{k}_hi"] = float(lo), float(hi)
    return out


@dataclass(frozen=True)
class Run:
    """One training run's validation predictions: which split (`fold`) and its scores on that split's rows."""
    fold: int
    scores: np.ndarray


@dataclass(frozen=True)
class Comparison:
    p_better: float          # P(a's mean score > b's), ties counted half
    diff: float              # a's mean - b's mean on the validation rows as they are
    diff_lo: float
    diff_hi: float

    def separated(self, level: float = LEVEL) -> bool:
        return self.p_better >= level


def compare(a: Sequence[Run], b: Sequence[Run], folds: Dict[int, Tuple[np.ndarray, Optional[np.ndarray]]],
            stat: str, n_boot: int = N_RESAMPLES, level: float = LEVEL, seed: int = 0) -> Comparison:
    """Paired bootstrap of configuration `a` against `b` on `stat` (auc, ap or f1).

    `folds[f] = (labels, groups)` of split f's validation rows; every run of a and b on split f was scored on
    those rows. Each resample draws the rows (by group) once per split and scores both configurations on the
    same draw (paired), and draws each configuration's runs on that split with replacement (seed noise).
    A configuration's value is the mean over its runs."""
    rng = np.random.default_rng(seed)
    sums = {"a": np.zeros(n_boot), "b": np.zeros(n_boot)}
    point = {"a": [], "b": []}
    counts = {"a": 0, "b": 0}
    for f, (y, groups) in sorted(folds.items()):
        runs = {"a": [r for r in a if r.fold == f], "b": [r for r in b if r.fold == f]}
        if not runs["a"] and not runs["b"]:
            continue
        w = resample_weights(len(y), groups, n_boot, rng)
        ones = np.ones((1, len(y)))
        for side, rs in runs.items():
            if not rs:
                continue
            per_run = np.stack([weighted_stats(y, r.scores, w)[stat] for r in rs])          # (R, B)
            pick = rng.integers(0, len(rs), size=(len(rs), n_boot))                         # seeds redrawn
            sums[side] += per_run[pick, np.arange(n_boot)].sum(axis=0)
            counts[side] += len(rs)
            point[side] += [float(weighted_stats(y, r.scores, ones)[stat][0]) for r in rs]
    if not counts["a"] or not counts["b"]:
        raise ValueError("compare: both configurations need at least one run")
    da, db = sums["a"] / counts["a"], sums["b"] / counts["b"]
    ok = ~(np.isnan(da) | np.isnan(db))
    d = da[ok] - db[ok]
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(d, [tail, 100 - tail])
    p = float(((d > 0).sum() + 0.5 * (d == 0).sum()) / max(len(d), 1))
    return Comparison(p, float(np.mean(point["a"]) - np.mean(point["b"])), float(lo), float(hi))
