"""Is the winner better than the recipe, and than the runner-up, by more than noise?

A paired bootstrap on the validation rows both were scored on (`bootstrap.compare`): each configuration is
represented by its confirmation runs (else by its search trial alone), the rows are redrawn by group once
per resample for both, and the runs of each are redrawn too, so seed-to-seed spread counts as noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .bootstrap import STATS, Comparison, Run, compare
from .data import DecodedSet
from .leaderboard import TrialRecord, confirmed
from .metric_spec import interval_keys
from .roles import CONFIRM, OF, RECIPE, trial_config
from .space import SearchSpace

__all__ = ["Verdict", "judge", "verdict_lines"]


@dataclass(frozen=True)
class Verdict:
    winner: str                                   # trial id of the winning configuration
    winner_role: str
    against: Dict[str, Tuple[str, Comparison]]    # "recipe" / "runner-up" -> (trial id, comparison)


class _Splits:
    """Validation rows of each split a run was scored on, by split seed (computed once each)."""

    def __init__(self, data: DecodedSet, space: SearchSpace):
        self.data, self.space = data, space
        self.by_seed: Dict[int, Tuple[np.ndarray, Optional[np.ndarray]]] = {}

    def run(self, rec: TrialRecord) -> Optional[Run]:
        from .train import validation_split
        if rec.best_scores is None or rec.error:
            return None
        cfg = trial_config(self.space, rec.config)
        seed = cfg.data.split_seed if cfg.data.split_seed is not None else cfg.train.seed
        if seed not in self.by_seed:
            _, val = validation_split(cfg, self.data)
            groups = None if self.data.groups is None else self.data.groups[val]
            self.by_seed[seed] = (self.data.labels[val], groups)
        if len(self.by_seed[seed][0]) != len(rec.best_scores):   # a searched val_fraction: not the same rows
            return None
        return Run(seed, rec.best_scores)


class _OtherSet:
    """Another validation set: the same rows for every run (one 'split'), scored at each run's best epoch."""

    def __init__(self, name: str, data: DecodedSet):
        self.name = name
        self.by_seed = {0: (data.labels, data.groups)}

    def run(self, rec: TrialRecord) -> Optional[Run]:
        scores = rec.set_scores.get(self.name)
        if scores is None or rec.error or len(scores) != len(self.by_seed[0][0]):
            return None
        return Run(0, scores)


def judge(records: List[TrialRecord], board: pd.DataFrame, metric: str, data: DecodedSet,
          space: SearchSpace, val_sets: Optional[Dict[str, DecodedSet]] = None) -> Optional[Verdict]:
    """Compare the leaderboard's rank 1 with the recipe row and the runner-up (None when the metric has
    no bootstrap, e.g. a weighted mean, or fewer than two configurations were scored). A metric on another
    validation set (`auc@NAME`) is compared on that set's rows."""
    stat, _, where = metric.partition("@")
    if stat not in STATS or not len(board) or (where and where not in (val_sets or {})):
        return None
    splits = _OtherSet(where, val_sets[where]) if where else _Splits(data, space)
    by_id = {r.trial_id: r for r in records}
    search = board[board["role"] != CONFIRM]
    scored = search[~search[metric].isna() | (search.get("confirm_n", 0) > 0)]
    if len(scored) < 2:
        return None

    def runs_of(trial_id: str) -> List[Run]:
        reps = [r for r in records if r.role == CONFIRM and r.config.get(OF) == trial_id]
        runs = [x for x in map(splits.run, reps) if x is not None]
        if not runs and trial_id in by_id:
            own = splits.run(by_id[trial_id])
            runs = [own] if own is not None else []
        return runs

    top = scored.iloc[0]
    pool = confirmed(board) if len(confirmed(board)) >= 2 else scored
    others = {"runner-up": next((t for t in pool["trial_id"] if t != top["trial_id"]), None)}
    recipe = search[search["role"] == RECIPE]["trial_id"]
    if len(recipe) and recipe.iloc[0] != top["trial_id"]:
        if others["runner-up"] == recipe.iloc[0]:
            others = {"recipe (also the runner-up)": recipe.iloc[0]}
        else:
            others = {"recipe": recipe.iloc[0], **others}
    mine = runs_of(top["trial_id"])
    against = {}
    for name, tid in others.items():
        theirs = runs_of(tid) if tid else []
        if mine and theirs:
            against[name] = (tid, compare(mine, theirs, splits.by_seed, stat))
    return Verdict(str(top["trial_id"]), str(top["role"]), against)


def verdict_lines(v: Optional[Verdict], board: pd.DataFrame, metric: str) -> List[str]:
    """The sweep's last words on its winner, in plain sentences."""
    if v is None:
        return []
    row = board[board["trial_id"] == v.winner].iloc[0]
    lines = [f"winner: {v.winner}{' (the recipe itself)' if v.winner_role == RECIPE else ''}: {_score(row, metric)}"]
    for name, (tid, c) in v.against.items():
        other = board[board["trial_id"] == tid].iloc[0]
        word = ("separated: the winner is better" if c.separated() else "tied within noise")
        lines.append(f"  against the {name} {tid} ({_score(other, metric)}): difference {c.diff:+.3f} "
                     f"[95% {c.diff_lo:+.3f}, {c.diff_hi:+.3f}], P(winner better) {c.p_better:.3f}: {word}")
    return lines


def _score(row: pd.Series, metric: str) -> str:
    n = int(row.get("confirm_n", 0) or 0)
    search = f"search {metric} {row[metric]:.3f}"
    lo, hi = interval_keys(metric)
    if lo in row and not pd.isna(row.get(lo)):
        search += f" [{row[lo]:.3f}, {row[hi]:.3f}]"
    if n:
        std = row["confirm_std"]
        spread = f" ± {std:.3f}" if not pd.isna(std) else ""
        return f"confirmed {metric} {row['confirm_mean']:.3f}{spread} (n={n}); {search}"
    return search
