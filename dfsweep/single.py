"""`dfsweep train`: one training run outside a sweep, saved to a folder."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pandas as pd
import yaml

from .checkpoint import atomic_write_bytes, save_checkpoint
from .config import Config
from .objective import Scoring
from .run_data import load_run_data
from .report import format_epoch
from .train import fit

__all__ = ["train_to_dir"]


def train_to_dir(cfg: Config, out_dir: Path, echo: Callable[[str], None] = print) -> dict:
    """Load and validate the data, train, then write model.pth, history.csv and config.yaml to out_dir."""
    t0 = time.perf_counter()
    data, val_sets = load_run_data(cfg, echo)  # validates every file before any output exists
    echo(f"decoded in {time.perf_counter() - t0:.1f}s")
    scoring = Scoring.of(cfg.sweep, cfg.finalize)
    result = fit(cfg, data, on_epoch=lambda m, _state: echo(format_epoch(m, cfg.train.epochs)), select=scoring,
                 val_sets=val_sets, min_precision=cfg.sweep.min_precision if scoring.needs_min_precision() else None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out_dir / "model.pth", result.best_state, cfg.to_dict(), result.threshold,
                    result.best_metrics, epoch=result.best_epoch)
    csv = pd.DataFrame(result.history).to_csv(index=False).encode()
    atomic_write_bytes(out_dir / "history.csv", lambda f: f.write(csv))
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode()
    atomic_write_bytes(out_dir / "config.yaml", lambda f: f.write(text))
    wall = time.perf_counter() - t0
    b = result.best_metrics
    echo(f"best epoch {result.best_epoch}: auc {b.get('auc', float('nan')):.3f} f1 {b.get('f1', float('nan')):.3f} "
         f"at threshold {result.threshold:.3f}; wall time {wall:.0f}s")
    echo(f"saved {out_dir / 'model.pth'}")
    return {"wall_s": wall, "best": b, "best_epoch": result.best_epoch}
