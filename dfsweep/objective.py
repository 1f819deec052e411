"""What every part of a sweep scores a trial by: the best value of the sweep metric over its epochs so far.

Each epoch's report carries it as `objective` (with `objective_epoch`), so ASHA compares trials at a rung by
their best epoch, Optuna is told the best epoch when a trial ends (its last report), and the leaderboard
ranks by the same number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .metric_spec import MetricSpec, parse_metric, parse_metrics

__all__ = ["OBJECTIVE", "OBJECTIVE_EPOCH", "Scoring", "best_epoch", "objective_of", "objective_key", "rank_key",
           "pareto_front"]

OBJECTIVE = "objective"
OBJECTIVE_EPOCH = "objective_epoch"


def objective_key(i: int) -> str:
    """The report key of a multi-objective sweep's i-th objective (at the trial's selected epoch)."""
    return f"{OBJECTIVE}_{i}"


@dataclass(frozen=True)
class Scoring:
    """What a sweep ranks by. `select` picks a trial's epoch and is its scalar score (ASHA in a one-objective
    sweep, the leaderboard's order, confirmation); `objectives` (two or more) make the search multi-objective:
    Optuna is told their values at the selected epoch, ASHA acts on the first."""
    select: MetricSpec
    objectives: Tuple[MetricSpec, ...] = ()

    @classmethod
    def of(cls, sweep, finalize=None) -> "Scoring":
        """From the sweep section (and finalize.pick: the front member's rule, default the objectives' minimum)."""
        objectives = parse_metrics(sweep.objectives, "sweep.objectives")
        if not objectives:
            return cls(parse_metric(sweep.metric))
        pick = getattr(finalize, "pick", None)
        if pick is not None:
            return cls(parse_metric(pick, "finalize.pick"), objectives)
        return cls(parse_metric({"min": [o.key for o in objectives]}), objectives)

    @classmethod
    def of_spec(cls, spec: Mapping[str, Any]) -> "Scoring":
        """From a sweep.yaml read as a plain mapping (what `dfsweep status` holds)."""
        from types import SimpleNamespace
        sweep = spec.get("sweep") or {}
        pick = (spec.get("finalize") or {}).get("pick")
        return cls.of(SimpleNamespace(metric=sweep.get("metric", "f1"), objectives=sweep.get("objectives") or ()),
                      SimpleNamespace(pick=pick))

    @property
    def multi(self) -> bool:
        return bool(self.objectives)

    @property
    def key(self) -> str:
        return self.select.key

    def specs(self) -> List[MetricSpec]:
        return [*self.objectives, self.select]

    def derive(self, metrics: Dict[str, Any]) -> None:
        """Adds the composite metrics (objectives first: a pick rule may read them) to one epoch's metrics."""
        for spec in self.specs():
            if spec.op != "one":
                metrics[spec.key] = spec.value(metrics)

    def needs_min_precision(self) -> bool:
        return any(n.split("@")[0] == "recall_at_precision" for s in self.specs() for n in s.names)

    def val_sets(self) -> set:
        return set().union(*(s.val_sets() for s in self.specs()))

    @property
    def scheduler_metric(self) -> str:
        return objective_key(0) if self.multi else OBJECTIVE

    def searcher_metric(self):
        """OptunaSearch's metric (and its mode per metric): the objective, or each of the objectives."""
        return [objective_key(i) for i in range(len(self.objectives))] if self.multi else OBJECTIVE

    def report(self, history: Sequence[Mapping[str, Any]], mode: str = "max") -> Dict[str, float]:
        """What every epoch's report carries: `objective` (the best `select` so far), the epoch it came from,
        and in a multi-objective sweep each objective's value at that epoch."""
        out = objective_of(history, self.key, mode)
        if self.multi:
            best = best_epoch(history, self.key, mode)
            for i, spec in enumerate(self.objectives):
                out[objective_key(i)] = _value(best, spec.key) if best is not None else math.nan
        return out


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


def pareto_front(values: Sequence[Sequence[float]], mode: str = "max") -> List[bool]:
    """Whether each row of objective values is on the Pareto front: no other row is at least as good in
    every objective and better in one. A row with a NaN is never on it."""
    sign = 1.0 if mode == "max" else -1.0
    rows = [tuple(sign * float(v) for v in r) for r in values]
    ok = [not any(math.isnan(v) for v in r) for r in rows]

    def dominates(a, b) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))
    return [ok[i] and not any(ok[j] and dominates(rows[j], rows[i]) for j in range(len(rows)) if j != i)
            for i in range(len(rows))]
