"""Human-readable lines for the terminal (per-epoch metrics)."""
from __future__ import annotations

import math
from typing import Any, Dict

import pandas as pd

from .metric_spec import interval_keys

__all__ = ["format_epoch", "board_table"]


def _f(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "  -  "
    return f"{v:.{nd}f}"


def format_epoch(m: Dict[str, Any], epochs: int | None = None) -> str:
    head = f"epoch {m['epoch']}" + (f"/{epochs}" if epochs else "")
    parts = [head, f"train_loss {_f(m.get('train_loss'))}"]
    if "val_loss" in m:
        parts += [f"val_loss {_f(m['val_loss'])}", f"auc {_f(m.get('auc'))}", f"ap {_f(m.get('ap'))}",
                  f"f1 {_f(m.get('f1'))}", f"recall {_f(m.get('recall'))}", f"precision {_f(m.get('precision'))}",
                  f"thr {_f(m.get('threshold'))}"]
    # every other validation set: its AUC and recall (at its own F1-optimal threshold)
    parts += [f"{k} {_f(v)}" for k, v in m.items() if k.split("@")[0] in ("auc", "recall") and "@" in k]
    parts += [f"lr {m.get('lr', 0):.2e}", f"{m.get('epoch_time_s', 0):.1f}s"]
    return "  ".join(parts)


def _interval(row, k: str) -> str:
    lo, hi = (row.get(x) for x in interval_keys(k))
    if row.get(k) is None or pd.isna(row.get(k)):
        return "-"
    if lo is None or pd.isna(lo):
        return f"{row[k]:.3f}"
    return f"{row[k]:.3f} [{lo:.3f}, {hi:.3f}]"


def board_table(board: "pd.DataFrame", metric: str, max_rows: int = 30) -> str:
    """The leaderboard's ranked rows for the terminal: each score with its 95% interval, a confirmed
    configuration's mean ± std (n), status and the sampled parameters."""
    search = board[board["role"] != "confirm"].head(max_rows)
    if not len(search):
        return "(no trials)"
    others = [c for c in search.columns if c.startswith("auc@")]     # AUC on every other validation set
    shown = [k for k in dict.fromkeys([metric, "auc", "f1", *others]) if k in search]
    out = pd.DataFrame({"rank": search["rank"], "trial_id": search["trial_id"], "role": search["role"]})
    if "pareto" in search:      # a multi-objective sweep: its Pareto front
        out["front"] = ["*" if v is True or str(v) == "True" else "" for v in search["pareto"]]
    if "confirm_n" in search and (search["confirm_n"] > 0).any():
        out[f"confirmed {metric}"] = [
            f"{r.confirm_mean:.3f} ± {0 if pd.isna(r.confirm_std) else r.confirm_std:.3f} (n={int(r.confirm_n)})"
            if r.confirm_n else "" for r in search.itertuples()]
    for k in shown:
        out[f"{k} [95%]"] = [_interval(r, k) for _, r in search.iterrows()]
    for k in ("best_epoch", "epochs_run", "status"):
        out[k] = search[k]
    if "note" in search and (search["note"].fillna("") != "").any():   # why a trial stopped short
        out["note"] = search["note"].fillna("")
    if "node_ip" in search and search["node_ip"].nunique() > 1:   # a cluster: where each trial ran
        out["node_ip"] = search["node_ip"]
    for c in [c for c in search.columns if c.startswith("param.")]:
        out[c] = [_fmt_param(v) for v in search[c]]
    return out.to_string(index=False)


def _fmt_param(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
