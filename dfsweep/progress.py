"""A live, line-oriented progress display of a sweep in the terminal (a Tune callback)."""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Dict

from ray import tune

__all__ = ["ProgressCallback", "trial_name"]


def trial_name(trial_id: str) -> str:
    """The name shown and used for a trial everywhere (terminal, MLflow, leaderboard): Tune's trial id,
    stable across resumes."""
    return trial_id


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class ProgressCallback(tune.Callback):
    """One line per trial event: started (params), each epoch (metric), finished / stopped / failed,
    always with the running / finished counts and the best so far."""

    def __init__(self, metric: str, mode: str, num_samples: int, epochs: int, done: set = frozenset()):
        self.metric, self.mode, self.num_samples, self.epochs = metric, mode, num_samples, epochs
        self.done = set(done)   # trials that finished before an interruption (resume)
        self.best: Dict[str, Any] = {"value": None, "trial": None}
        self.last_epoch: Dict[str, int] = {}
        self.t0 = time.time()

    def _echo(self, text: str) -> None:
        print(f"[{time.time() - self.t0:6.0f}s] {text}", file=sys.stdout, flush=True)

    def _counts(self, trials) -> str:
        running = sum(t.status == "RUNNING" for t in trials)
        done = sum(t.status in ("TERMINATED", "ERROR") for t in trials)
        best = self.best["value"]
        best_s = f"best {self.metric} {best:.4f} ({self.best['trial']})" if best is not None else "best -"
        return f"[running {running}, finished {done}/{self.num_samples}, {best_s}]"

    def on_trial_start(self, iteration, trials, trial, **info):
        if trial.trial_id in self.done:
            return
        if trial.checkpoint is not None:
            self._echo(f"{trial_name(trial.trial_id)} resumed from its last checkpoint {self._counts(trials)}")
            return
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.config.items())
        self._echo(f"{trial_name(trial.trial_id)} started: {params} {self._counts(trials)}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        value = result.get(self.metric)
        if trial.trial_id in self.done:  # replayed from disk, not trained: count it, don't show it
            self._track_best(trial, value)
            return
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        self.last_epoch[trial.trial_id] = epoch
        self._track_best(trial, value)
        extra = "  ".join(f"{k} {result[k]:.3f}" for k in ("val_loss", "auc", "f1", "recall") if k in result
                          and isinstance(result[k], (int, float)))
        self._echo(f"{trial_name(trial.trial_id)} epoch {epoch}/{self.epochs}  {extra}  {self._counts(trials)}")

    def _track_best(self, trial, value) -> None:
        if isinstance(value, (int, float)) and not math.isnan(value):
            better = self.best["value"] is None or (value > self.best["value"] if self.mode == "max"
                                                    else value < self.best["value"])
            if better:
                self.best = {"value": float(value), "trial": trial_name(trial.trial_id)}

    def on_trial_complete(self, iteration, trials, trial, **info):
        if trial.trial_id in self.done:
            return
        epoch = self.last_epoch.get(trial.trial_id, 0)
        how = "finished" if epoch >= self.epochs else f"stopped early after epoch {epoch}"
        self._echo(f"{trial_name(trial.trial_id)} {how} {self._counts(trials)}")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._echo(f"{trial_name(trial.trial_id)} FAILED (error recorded) {self._counts(trials)}")

