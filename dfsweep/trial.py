"""One Ray Tune trial: sampled params -> config -> `fit` -> `tune.report(metrics, checkpoint)` each epoch."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Dict

import torch
from ray import tune

from .data import DecodedSet
from .space import SearchSpace
from .train import fit

__all__ = ["run_trial", "STATE_FILE"]

STATE_FILE = "state.pt"


def _reportable(metrics: Dict[str, Any]) -> Dict[str, Any]:
    """Numbers only; NaN stays NaN (Tune and MLflow both accept it)."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool):
            out[k] = int(v)
        elif isinstance(v, (int, float)):
            out[k] = v
    return out


def _replay_finished(seen_epoch: int) -> None:
    """A trial that finished before a crash, restored from a slightly older snapshot: report the epochs
    the snapshot missed from its newest checkpoint on disk instead of training them again."""
    trial_dir = Path(tune.get_context().get_trial_dir())
    newest = None
    for d in sorted(trial_dir.glob("checkpoint_*")):
        f = d / STATE_FILE
        if f.is_file():
            try:
                state = torch.load(f, map_location="cpu", weights_only=True)
            except Exception:  # a checkpoint cut off by the crash
                continue
            if newest is None or state["epoch"] > newest["epoch"]:
                newest = state
    if newest is None:
        return
    for metrics in newest["history"]:
        if metrics["epoch"] > seen_epoch:
            tune.report(_reportable(metrics))


def run_trial(params: Dict[str, Any], data: DecodedSet, space: SearchSpace, metric: str,
              min_precision: float | None, skip_trials: frozenset | set = frozenset()) -> None:
    """The trainable. `data` arrives from Ray's object store (decoded once by the driver, shared zero-copy).

    1. sampled params -> a full, validated config
    2. resume from the trial's last checkpoint if Tune restored it (after a crash or --resume)
    3. train; every epoch report the metrics with a checkpoint holding the resumable state
    """
    cfg = space.config_for(params)
    resume = None
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            resume = torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=True)
    if tune.get_context().get_trial_id() in skip_trials:
        _replay_finished(resume["epoch"] if resume else 0)
        return

    def on_epoch(metrics: Dict[str, Any], state_fn) -> None:
        with tempfile.TemporaryDirectory(prefix="dfsweep-ckpt-") as d:
            torch.save(state_fn(), Path(d) / STATE_FILE)
            tune.report(_reportable(metrics), checkpoint=tune.Checkpoint.from_directory(d))

    fit(cfg, data, on_epoch=on_epoch, resume=resume, select=metric,
        min_precision=min_precision if metric == "recall_at_precision" else None)
