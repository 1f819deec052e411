"""A multi-objective sweep's Pareto front: its lines for the terminal, and which member finalize trains.

The leaderboard marks the front (`pareto`); `finalize.pick` (a metric rule, maximised) chooses one member,
`finalize --trial ID` any trial. trials.yaml keeps each search trial's sampled parameters, so a chosen
trial's full config is rebuilt from the sweep's own spec.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd

from .errors import DfsweepError
from .leaderboard import PARETO
from .metric_spec import interval_keys
from .objective import Scoring
from .roles import CONFIRM, split_params

__all__ = ["front_lines", "trial_params", "pick_trial", "trial_config_dict"]


def trial_params(records) -> Dict[str, Dict[str, Any]]:
    """{trial id: its sampled parameters} of the search trials (confirmation runs repeat one of them)."""
    out = {}
    for r in records:
        if r.role != CONFIRM:
            params, _ = split_params(r.config)
            out[r.trial_id] = {k: _plain(v) for k, v in params.items()}
    return out


def _plain(v: Any) -> Any:
    """numpy scalars as Python numbers: safe_dump writes only plain types."""
    return v.item() if hasattr(v, "item") else v


def _fmt(row: pd.Series, key: str) -> str:
    v = row.get(key, math.nan)
    text = f"{key} {v:.3f}" if isinstance(v, (int, float)) and not pd.isna(v) else f"{key} -"
    lo, hi = interval_keys(key)
    if lo in row and not pd.isna(row.get(lo)):
        text += f" [{row[lo]:.3f}, {row[hi]:.3f}]"
    return text


def front_lines(board: pd.DataFrame, scoring: Scoring) -> List[str]:
    """The front, member by member with each objective's 95% interval, and the member finalize.pick takes."""
    if not len(board) or PARETO not in board:
        return []
    front = board[(board["role"] != CONFIRM) & (board[PARETO] == True)]  # noqa: E712 -- a column of booleans
    keys = [o.key for o in scoring.objectives]
    lines = [f"Pareto front over {', '.join(keys)}: {len(front)} of {int((board['role'] != CONFIRM).sum())} trials"]
    for _, row in front.iterrows():
        lines.append(f"  {row['trial_id']}: " + "; ".join(_fmt(row, k) for k in keys))
    picked = pick_trial(board, scoring)
    if picked is not None:
        lines.append(f"finalize.pick {scoring.key} chooses {picked} (or: dfsweep finalize --trial ID)")
    return lines


def pick_trial(board: pd.DataFrame, scoring: Scoring) -> Optional[str]:
    """The front member with the highest `scoring.select` value (read from its row; ties: leaderboard order);
    on a leaderboard without a `pareto` column, the search row with the highest value."""
    search = board[board["role"] != CONFIRM] if len(board) else board
    if not len(search):
        return None
    pool = search[search[PARETO] == True] if PARETO in search else search   # noqa: E712
    best, best_v = None, -math.inf
    for _, row in pool.iterrows():
        v = scoring.select.value(row.to_dict())
        if not math.isnan(v) and v > best_v:
            best, best_v = str(row["trial_id"]), v
    if best is None and PARETO in search:
        missing = [n for n in scoring.select.names if n not in board]
        if missing:
            raise DfsweepError(f"finalize.pick: the leaderboard has no {', '.join(missing)} column "
                               f"(pick among: {', '.join(o.key for o in scoring.objectives)})")
    return best


def trial_config_dict(sweep_dir: Path, trial_id: str) -> Dict[str, Any]:
    """The full config of search trial `trial_id`: the sweep's spec with the trial's sampled parameters."""
    import yaml
    from .config import config_from_dict, read_yaml
    from .space import parse_space
    trials_file = sweep_dir / "trials.yaml"
    if not trials_file.is_file():
        raise DfsweepError(f"{sweep_dir}: no trials.yaml (the sweep has not finished, or predates --trial)")
    trials = yaml.safe_load(trials_file.read_text()) or {}
    if trial_id not in trials:
        shown = ", ".join(list(trials)[:6])
        raise DfsweepError(f"--trial {trial_id}: not a search trial of {sweep_dir.name} (trials: {shown}"
                           f"{', ...' if len(trials) > 6 else ''})")
    spec = config_from_dict(read_yaml(sweep_dir / "sweep.yaml"))
    cfg = parse_space(spec).config_for(trials[trial_id]).to_dict()
    cfg.pop("search", None)
    return cfg
