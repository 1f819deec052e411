"""Human-readable lines for the terminal (per-epoch metrics)."""
from __future__ import annotations

import math
from typing import Any, Dict

__all__ = ["format_epoch"]


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
    parts += [f"lr {m.get('lr', 0):.2e}", f"{m.get('epoch_time_s', 0):.1f}s"]
    return "  ".join(parts)
