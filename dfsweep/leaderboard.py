"""The leaderboard: one row per trial from Tune's results and the trials' own checkpoints.

Search rows (the recipe row among them) are ranked; a configuration that was confirmed carries the mean,
standard deviation and number of its confirmation runs, and the confirmed configurations rank first, by
that mean. Confirmation runs follow as rows of their own (role `confirm`, `confirms` = the trial they
repeat), unranked. Each row's status and note say how its trial ended (dfsweep.statuses); a trial with no
scored epoch keeps its scores empty and says so in its note.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from .bootstrap import STATS
from .objective import best_epoch, pareto_front, rank_key
from .roles import CONFIRM, FOLD, OF, ROLE, SEARCH, SEED_OFFSET, split_params
from .statuses import ERROR, RETRIES, ending

__all__ = ["TrialRecord", "read_trials", "leaderboard", "confirmed", "winner_row", "PARETO"]

log = logging.getLogger("dfsweep.leaderboard")

_AT_BEST = ("auc", "ap", "f1", "recall", "precision", "threshold", "val_loss")
PARETO = "pareto"
_INTERVALS = {f"{s}_{b}" for s in STATS for b in ("lo", "hi")}


@dataclass
class TrialRecord:
    """What the sweep knows of one trial after it ended."""
    trial_id: str
    config: Dict[str, Any]                        # Tune config: sampled parameters and role keys
    history: List[Dict[str, Any]]
    best_scores: Optional[np.ndarray] = None      # validation probabilities of the best epoch
    error: str = ""
    last: Dict[str, Any] = field(default_factory=dict)   # its last result: why it ended (dfsweep.statuses)
    set_scores: Dict[str, np.ndarray] = field(default_factory=dict)   # best epoch's scores on each other set

    @property
    def role(self) -> str:
        return str(self.config.get(ROLE, SEARCH))


def _read_state(result) -> Optional[Dict[str, Any]]:
    import torch
    from .trial import STATE_FILE
    if result.checkpoint is None:
        return None
    try:
        with result.checkpoint.as_directory() as d:
            return torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- Tune's own record is still there
        log.warning("could not read %s: %s", result.checkpoint.path, e)
        return None


def _history(result, state: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """A trial's per-epoch metrics, merged by epoch from Tune's results and its newest checkpoint.

    The checkpoint is the trial's own record, complete even when the driver died before writing Tune's
    progress files; Tune's results hold epochs replayed after a resume (reported without a checkpoint)."""
    by_epoch: Dict[int, Dict[str, Any]] = {}
    df = result.metrics_dataframe
    if df is not None and "epoch" in df:
        for rec in df.to_dict("records"):
            if not pd.isna(rec.get("epoch")):
                by_epoch[int(rec["epoch"])] = rec
    state = _read_state(result) if state is None else state
    for rec in (state or {}).get("history", []):
        by_epoch[int(rec["epoch"])] = dict(rec)
    return [by_epoch[k] for k in sorted(by_epoch)]


def read_trials(results) -> List[TrialRecord]:
    """One record per Tune result (a ResultGrid or a list of Results)."""
    out = []
    for r in results:
        state = _read_state(r)
        best = (state or {}).get("best") or {}
        scores = best.get("scores")
        set_scores = {k: np.asarray(v, dtype=np.float64) for k, v in (best.get("set_scores") or {}).items()}
        metrics = r.metrics or {}
        config = r.config or metrics.get("config") or {}
        trial_id = metrics.get("trial_id") or Path(r.path).name.removeprefix("trial_")
        error = (str(r.error).strip().splitlines() or [""])[-1][:200] if r.error else ""
        out.append(TrialRecord(str(trial_id), dict(config), _history(r, state),
                               None if scores is None else np.asarray(scores, dtype=np.float64), error, metrics,
                               set_scores))
    return out


def _at_best(key: str, extra: Sequence[str]) -> bool:
    """Which of the best epoch's metrics the row shows: the in-domain scores and their intervals, every score
    on another set (`auc@NAME`) and the sweep's composite objectives."""
    base = key.split("@")[0]
    return key in extra or base in _AT_BEST or base in _INTERVALS


def _row(rec: TrialRecord, metric: str, mode: str, epochs: int, extra: Sequence[str] = ()) -> Dict[str, Any]:
    params, meta = split_params(rec.config)
    row: Dict[str, Any] = {"trial_id": rec.trial_id, "role": rec.role, "confirms": meta.get(OF, "")}
    best = best_epoch(rec.history, metric, mode)
    if best is not None:
        row.update({metric: best[metric], "best_epoch": int(best["epoch"]),
                    "epochs_run": int(max(h["epoch"] for h in rec.history))})
        for k, v in best.items():
            if k != metric and _at_best(k, extra):
                row[k] = v
    else:   # no scored epoch: the scores stay empty, and the note says why
        row.update({metric: math.nan, "best_epoch": 0,
                    "epochs_run": int(max((h["epoch"] for h in rec.history), default=0))})
    end = ending(rec.last, row["epochs_run"], epochs, rec.error, int(rec.last.get(RETRIES, 0) or 0))
    row["status"], row["note"] = end.status, end.note
    row["error"] = rec.error
    # the node of the trial's last report (Tune adds node_ip to every result): where it ran
    row["node_ip"] = rec.last.get("node_ip") or ""
    row["gpu_share"] = rec.last.get("gpu_share", 0.0)
    row["on_cuda"] = bool(rec.last.get("on_cuda", 0.0))
    if rec.role == CONFIRM:
        row["seed_offset"], row["fold"] = int(meta.get(SEED_OFFSET, 0)), int(meta.get(FOLD, 0))
    for k, v in params.items():
        row[f"param.{k}"] = v
    return row


def leaderboard(records: List[TrialRecord], metric: str, mode: str, epochs: int,
                objectives: Sequence[str] = ()) -> pd.DataFrame:
    """Search rows ranked (confirmed configurations first, by their confirmation mean), then the
    confirmation runs. With `objectives` (a multi-objective sweep's keys) a `pareto` column marks the search
    rows no other search row beats in every objective, and those rank first (by `metric`, the pick rule)."""
    rows = [_row(r, metric, mode, epochs, objectives) for r in records]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    search = df[df["role"] != CONFIRM].copy()
    runs = df[df["role"] == CONFIRM].copy()
    # 1. each confirmed configuration's mean, std and n over its confirmation runs (errors excluded)
    ok = runs[runs["status"] != ERROR]
    stats = ok.groupby("confirms")[metric].agg(["mean", "std", "count"]) if len(ok) else None
    for col, agg in (("confirm_mean", "mean"), ("confirm_std", "std"), ("confirm_n", "count")):
        search[col] = search["trial_id"].map(stats[agg]) if stats is not None else math.nan
    search["confirm_n"] = search["confirm_n"].fillna(0).astype(int)
    if objectives:
        values = [[r.get(k, math.nan) for k in objectives] for _, r in search.iterrows()]
        search[PARETO] = pareto_front(values, mode) if len(search) else []
    # 2. rank: confirmed first by their mean, then the search's own order (objective, AUC, validation loss)
    sign = -1.0 if mode == "max" else 1.0
    def key(r) -> tuple:
        confirmed = r["confirm_n"] > 0 and not pd.isna(r["confirm_mean"])
        own = rank_key(r[metric], r.get("auc", math.nan), r.get("val_loss", math.nan), mode)
        front = 0 if bool(r.get(PARETO, False)) else 1
        return (0, 0, sign * r["confirm_mean"], *own) if confirmed else (1, front, 0.0, *own)
    order = sorted(range(len(search)), key=lambda i: key(search.iloc[i]))
    search = search.iloc[order].reset_index(drop=True)
    search.insert(0, "rank", pd.array(range(1, len(search) + 1), dtype="Int64"))
    runs = runs.sort_values(["confirms", "fold", "seed_offset"], kind="stable") if len(runs) else runs
    runs.insert(0, "rank", pd.array([pd.NA] * len(runs), dtype="Int64"))
    return pd.concat([search, runs], ignore_index=True) if len(runs) else search


def confirmed(board: pd.DataFrame) -> pd.DataFrame:
    """The search rows that were confirmed, best first."""
    if not len(board) or "confirm_n" not in board:
        return board.iloc[0:0]
    return board[(board["role"] != CONFIRM) & (board["confirm_n"] > 0)]


def winner_row(board: pd.DataFrame, metric: str) -> Optional[pd.Series]:
    """The leaderboard's rank 1 (the confirmed winner when there was a confirmation), or None when no
    trial has a score."""
    if not len(board):
        return None
    top = board.iloc[0]
    if top["role"] == CONFIRM or (pd.isna(top[metric]) and not top.get("confirm_n", 0)):
        return None
    return top
