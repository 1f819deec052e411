"""What every part of a sweep scores a trial by: the best value of the sweep metric over its epochs so far.

Each epoch's report carries it as `objective` (with `objective_epoch`), so ASHA compares trials at a rung by
their best epoch, Optuna is told the best epoch when a trial ends (its last report), and the leaderboard
ranks by the same number.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

__all__ = ["OBJECTIVE", "OBJECTIVE_EPOCH", "best_epoch", "objective_of", "rank_key"]

OBJECTIVE = "objective"
OBJECTIVE_EPOCH = "objective_epoch"


def _value(h: Mapping[str, Any], metric: str) -> float:
    v = h.get(metric)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def best_epoch(history: Sequence[Mapping[str, Any]], metric: str, mode: str = "max") -> Optional[Mapping[str, Any]]:
    """The epoch record with the best `metric` (the first one on ties; NaN never wins), or None when no
    epoch has a value."""
    best = None
    for h in history:
        v = _value(h, metric)
        if math.isnan(v):
            continue
        if best is None or (v > _value(best, metric) if mode == "max" else v < _value(best, metric)):
            best = h
    return best


def objective_of(history: Sequence[Mapping[str, Any]], metric: str, mode: str = "max") -> Dict[str, float]:
    """`{objective, objective_epoch}` after the epochs in `history` (NaN and 0 before any scored epoch)."""
    best = best_epoch(history, metric, mode)
    if best is None:
        return {OBJECTIVE: math.nan, OBJECTIVE_EPOCH: 0}
    return {OBJECTIVE: _value(best, metric), OBJECTIVE_EPOCH: int(best["epoch"])}


def rank_key(value: float, auc: float, val_loss: float, mode: str = "max") -> Tuple[float, float, float]:
    """Sort key, best first: the objective, then (ties, e.g. F1 saturated at 1.0) higher AUC, then lower
    validation loss, all at the trial's best epoch. NaN sorts last."""
    def last_if_nan(v: float, sign: float) -> float:
        return math.inf if v is None or math.isnan(v) else sign * v
    return (last_if_nan(value, -1.0 if mode == "max" else 1.0), last_if_nan(auc, -1.0), last_if_nan(val_loss, 1.0))
