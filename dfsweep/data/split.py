"""Train/validation split: stratified by label, grouped by group (a group is never on both sides), seeded."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import DfsweepError
from .sources import CLASS_NAMES

__all__ = ["split_indices", "stratified_fraction"]


def _name(c: int) -> str:
    return CLASS_NAMES[c] if 0 <= c < len(CLASS_NAMES) else str(c)


def split_indices(
    labels: np.ndarray,
    groups: Optional[np.ndarray] = None,
    val_fraction: float = 0.12,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx), both sorted int64, together a partition of range(len(labels)).

    Each class gets as close to `val_fraction` of its images in validation as whole groups allow, and
    at least one image on each side, so validation AUC is always defined.

    Why not scikit-learn: `StratifiedGroupKFold(n_splits=round(1/f))` can only give fractions 1/k
    (0.12 -> 1/8 = 0.125, 0.3 -> 1/3), and neither it nor `train_test_split(stratify=...)` promises the
    rare class a place in a small validation set (2 fakes of 1000 at 0.12 expect 0.24 fakes in validation,
    often 0). A seeded greedy pass over the shuffled groups, then a short polish, hits each class's target
    to within about one group, and is a uniform random stratified split when every image is its own group.
    """
    labels = np.asarray(labels).astype(np.int64, copy=False)
    if not 0.0 < val_fraction < 1.0:
        raise DfsweepError(f"data.val_fraction: must be in (0, 1), got {val_fraction}")
    group_of = _group_ids(labels, groups)
    classes, class_totals = _splittable_classes(labels)

    # 1. One row per group: how many images of each class it holds.
    counts = np.zeros((int(group_of.max()) + 1, len(classes)), dtype=np.int64)
    np.add.at(counts, (group_of, np.searchsorted(classes, labels)), 1)
    # 2. Per-class targets, at least 1 and at most total-1.
    target = np.clip(val_fraction * class_totals, 1.0, class_totals - 1.0)
    # 3-4. Groups into validation by a seeded greedy walk, then a polish.
    in_val, val, missing = _choose_groups(counts, class_totals, target, np.random.default_rng(seed))
    if missing:
        k = int(np.flatnonzero((val == 0) | (val == class_totals))[0])
        n_grp = len(np.unique(group_of[labels == classes[k]]))
        raise DfsweepError(
            f"data.val_fraction: cannot split by group: class {_name(int(classes[k]))!r} has "
            f"{class_totals[k]} image(s) in {n_grp} group(s), which cannot be put on both sides")
    val_mask = in_val[group_of]
    return np.flatnonzero(~val_mask).astype(np.int64), np.flatnonzero(val_mask).astype(np.int64)


def _group_ids(labels: np.ndarray, groups: Optional[np.ndarray]) -> np.ndarray:
    """Each image's group as 0..G-1 (every image its own group when there are none)."""
    n = len(labels)
    if groups is None:
        return np.arange(n)
    groups = np.asarray(groups)
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} labels")
    _, group_of = np.unique(groups, return_inverse=True)
    return group_of.reshape(-1)


def _splittable_classes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, their image counts); two classes of at least two images each, else one line naming why."""
    classes, class_totals = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        have = f"only class {_name(int(classes[0]))!r} is present" if len(labels) else "there are no images"
        raise DfsweepError(f"data.val_fraction: cannot split: {have}; need both real and fake images")
    for c, t in zip(classes, class_totals):
        if t < 2:
            raise DfsweepError(f"data.val_fraction: cannot split: class {_name(int(c))!r} has {t} image; "
                               "need at least 2 (one for training, one for validation)")
    return classes, class_totals


def _choose_groups(counts: np.ndarray, class_totals: np.ndarray, target: np.ndarray, rng: np.random.Generator):
    """(in_val per group, validation count per class, whether a class is missing from a side).

    The cost compares first how many classes are missing from a side (that must reach 0), then the summed
    relative miss, so the rare class weighs as much as the common one when a group holds both."""
    def cost(v: np.ndarray) -> tuple[int, float]:
        missing = int(((v == 0) | (v == class_totals)).sum())
        return missing, float((np.abs(v - target) / target).sum())

    # a group joins validation when that lowers the cost (one image per group: a uniform stratified split)
    n_groups = len(counts)
    in_val = np.zeros(n_groups, dtype=bool)
    val = np.zeros(counts.shape[1], dtype=np.int64)
    best = cost(val)
    for g in rng.permutation(n_groups):
        c = cost(val + counts[g])
        if c < best:
            in_val[g], val, best = True, val + counts[g], c
    # polish: a group that joined late to give a class a place may make earlier choices an overshoot
    for _ in range(3):
        changed = False
        for g in rng.permutation(n_groups):
            v = val - counts[g] if in_val[g] else val + counts[g]
            c = cost(v)
            if c < best:
                in_val[g], val, best, changed = not in_val[g], v, c, True
        if not changed:
            break
    return in_val, val, bool(best[0])


def stratified_fraction(labels: np.ndarray, groups: Optional[np.ndarray], fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a stratified, group-aware `fraction` of the images (all of them at 1.0): a sweep's
    lower-fidelity share of the data. It is the validation side of `split_indices`, so each class keeps
    its share to within about one group and a group is never cut."""
    if fraction >= 1.0:
        return np.arange(len(labels), dtype=np.int64)
    return split_indices(labels, groups, fraction, seed)[1]
