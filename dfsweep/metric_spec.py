"""What a sweep scores by: a metric name (`auc`, `auc@ciplab`), a weighted mean of names or their minimum.

A name is a validation score (`auc`, `ap`, `f1`, `recall`, `precision`, `recall_at_precision`; higher is better),
optionally `@set`: the same metric on the labelled set `data.val_sets[set]` (or the held-out domain of a
leave-one-domain-out sweep). YAML forms:

    metric: auc@ciplab
    metric: {mean: {auc: 0.5, auc@ciplab: 0.5}}      # weighted mean (weights need not sum to 1)
    metric: {mean: [auc, auc@ciplab]}                # equal weights
    metric: {min: [auc, auc@ciplab]}                 # the worst case across sets

Each spec has a `key`: the column it is stored under in every epoch's metrics, the leaderboard and
MLflow (`min(auc,auc@ciplab)`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Tuple

from .errors import DfsweepError

__all__ = ["BASE_METRICS", "MetricSpec", "interval_keys", "parse_metric", "parse_metrics", "split_name", "SET_NAME", "mlflow_name"]

# per-set validation scores a spec may name: a run keeps the epoch where its spec is highest
BASE_METRICS = ("f1", "auc", "ap", "recall", "precision", "recall_at_precision")
SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def interval_keys(name: str) -> Tuple[str, str]:
    """Where a metric's 95% interval is kept: `auc` -> (auc_lo, auc_hi), `auc@x` -> (auc_lo@x, auc_hi@x)."""
    base, at, where = name.partition("@")
    return f"{base}_lo{at}{where}", f"{base}_hi{at}{where}"


def split_name(name: str) -> Tuple[str, str]:
    """`auc@ciplab` -> ("auc", "ciplab"); `auc` -> ("auc", "")."""
    base, _, where = name.partition("@")
    return base, where


def _check_name(name: Any, key: str) -> str:
    if not isinstance(name, str):
        raise DfsweepError(f"{key}: expected a metric name such as auc or auc@ciplab, got {name!r}")
    base, where = split_name(name.strip())
    if base not in BASE_METRICS:
        raise DfsweepError(f"{key}: unknown metric {name!r}; valid: {', '.join(BASE_METRICS)}, each optionally "
                           f"@<a data.val_sets name>")
    if "@" in name and SET_NAME.fullmatch(where) is None:
        raise DfsweepError(f"{key}: {name!r} names no validation set after '@'")
    return name.strip()


@dataclass(frozen=True)
class MetricSpec:
    op: str                                # "one", "mean" or "min"
    terms: Tuple[Tuple[str, float], ...]   # (metric name, weight)

    @property
    def key(self) -> str:
        if self.op == "one":
            return self.terms[0][0]
        weights = {w for _, w in self.terms}
        if self.op == "min" or len(weights) == 1:
            return f"{self.op}({','.join(n for n, _ in self.terms)})"
        return f"mean({','.join(f'{w:g}*{n}' for n, w in self.terms)})"

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(n for n, _ in self.terms)

    def val_sets(self) -> set:
        """The validation sets it reads besides the in-domain split."""
        return {split_name(n)[1] for n in self.names if "@" in n}

    def value(self, metrics: Mapping[str, Any]) -> float:
        """Its value on one epoch's (or one leaderboard row's) metrics; NaN when a term has none."""
        vals = []
        for name, _ in self.terms:
            v = metrics.get(name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(float(v)):
                return math.nan
            vals.append(float(v))
        if self.op == "min":
            return min(vals)
        total = sum(w for _, w in self.terms)
        return sum(w * v for (_, w), v in zip(self.terms, vals)) / total

    def raw(self) -> Any:
        """The YAML form."""
        if self.op == "one":
            return self.terms[0][0]
        if self.op == "min":
            return {"min": list(self.names)}
        return {"mean": {n: w for n, w in self.terms}}


def parse_metric(raw: Any, key: str = "sweep.metric") -> MetricSpec:
    """A YAML value -> MetricSpec; anything else is one line naming `key`."""
    if isinstance(raw, MetricSpec):
        return raw
    if isinstance(raw, str):
        return MetricSpec("one", ((_check_name(raw, key), 1.0),))
    if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in ("mean", "min"):
        raise DfsweepError(f"{key}: expected a metric name, {{mean: {{name: weight, ...}}}} or {{min: [name, ...]}}, "
                           f"got {raw!r}")
    op, body = next(iter(raw.items()))
    if op == "mean" and isinstance(body, Mapping):
        terms = []
        for n, w in body.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0:
                raise DfsweepError(f"{key}.mean.{n}: a weight must be a number > 0, got {w!r}")
            terms.append((_check_name(n, key), float(w)))
    elif isinstance(body, (list, tuple)):
        terms = [(_check_name(n, key), 1.0) for n in body]
    else:
        raise DfsweepError(f"{key}.{op}: expected a list of metric names" + (" or a mapping name: weight"
                                                                            if op == "mean" else ""))
    if len(terms) < 2:
        raise DfsweepError(f"{key}.{op}: needs at least two metrics, got {len(terms)}")
    if len({n for n, _ in terms}) != len(terms):
        raise DfsweepError(f"{key}.{op}: a metric is named twice")
    return MetricSpec(op, tuple(terms))


def parse_metrics(raw: Iterable[Any], key: str) -> Tuple[MetricSpec, ...]:
    return tuple(parse_metric(r, f"{key}[{i}]") for i, r in enumerate(raw))


_MLFLOW_BAD = re.compile(r"[^A-Za-z0-9_\-. :/]")


def mlflow_name(key: str) -> str:
    """A metric key as MLflow accepts it: `auc@ciplab` -> `auc_at_ciplab`, `min(auc,auc@x)` -> `min.auc.auc_at_x`."""
    key = key.replace("@", "_at_").replace("(", ".").replace(")", "").replace(",", ".").replace("*", "x")
    return _MLFLOW_BAD.sub("_", key)
