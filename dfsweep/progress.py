"""A live, line-oriented progress display of a sweep in the terminal (a Tune callback)."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Dict

from ray import tune

from .memory import OOM_ADVICE, gib, memory_limit, oom_kill_count
from .metric_spec import interval_keys
from .objective import OBJECTIVE
from .roles import CONFIRM, FOLD, OF, RECIPE, SEED_OFFSET, role_of, split_params
from .statuses import in_words, trial_ending

__all__ = ["ProgressCallback", "last_error_line"]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _with_interval(result: Dict[str, Any], k: str) -> str:
    lo, hi = (result.get(x) for x in interval_keys(k))
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and not math.isnan(lo):
        return f"{k} {result[k]:.3f} [{lo:.3f}, {hi:.3f}]"
    return f"{k} {result[k]:.3f}"


def last_error_line(error_file) -> str:
    """The exception's own line from Tune's error file (its traceback stays in MLflow and the file)."""
    try:
        lines = [l for l in Path(error_file).read_text().splitlines() if l.strip()] if error_file else []
    except OSError:
        lines = []
    return lines[-1][:200] if lines else "(error recorded)"


class ProgressCallback(tune.Callback):
    """One line per trial event: started (params, or what it confirms), each epoch (metrics with their 95%
    intervals), finished / stopped / failed, always with the search's and the confirmation's counts and the
    best objective so far."""

    def __init__(self, metric: str, mode: str, num_samples: int, num_confirm: int, epochs: int,
                 done: set = frozenset(), sets: tuple = ()):
        self.sets = tuple(sets)     # other validation sets: their AUC and recall beside the in-domain ones
        self.metric, self.mode, self.num_samples, self.num_confirm, self.epochs = metric, mode, num_samples, num_confirm, epochs
        self.done = set(done)   # trials that finished before an interruption (resume)
        self.best: Dict[str, Any] = {"value": None, "trial": None}
        self.confirming = False
        self.t0 = time.time()
        self.oom_kills = oom_kill_count()     # a trial's worker the kernel kills for memory is named as such

    def _echo(self, text: str) -> None:
        print(f"[{time.time() - self.t0:6.0f}s] {text}", file=sys.stdout, flush=True)

    def _counts(self, trials) -> str:
        running = sum(t.status == "RUNNING" for t in trials)
        ended = [t for t in trials if t.status in ("TERMINATED", "ERROR")]
        confirm = sum(role_of(t.config) == CONFIRM for t in ended)
        best = self.best["value"]
        best_s = f"best {self.metric} {best:.4f} ({self.best['trial']})" if best is not None else "best -"
        phase = f", confirmed {confirm}" if self.confirming else ""
        return f"[running {running}, searched {len(ended) - confirm}/{self.num_samples}{phase}, {best_s}]"

    def on_trial_start(self, iteration, trials, trial, **info):
        if trial.trial_id in self.done:
            return
        if trial.checkpoint is not None:
            self._echo(f"{trial.trial_id} resumed from its last checkpoint {self._counts(trials)}")
            return
        params, meta = split_params(trial.config)
        if role_of(trial.config) == CONFIRM:
            if not self.confirming:
                self._echo(f"search over: confirming the best configurations and the recipe with new seeds "
                           f"({self.num_confirm} runs at most)")
                self.confirming = True
            self._echo(f"{trial.trial_id} started: confirms {meta[OF]} (seed +{meta[SEED_OFFSET]}, split "
                       f"{meta.get(FOLD, 0)}) {self._counts(trials)}")
            return
        what = "the recipe (the YAML's own values): " if role_of(trial.config) == RECIPE else ""
        self._echo(f"{trial.trial_id} started: {what}{', '.join(f'{k}={_fmt(v)}' for k, v in params.items())} "
                   f"{self._counts(trials)}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if trial.trial_id in self.done:  # replayed from disk, not trained: count it, don't show it
            self._track_best(trial, result)
            return
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        self._track_best(trial, result)
        keys = ("val_loss", "auc", "f1", "recall") + tuple(f"{k}@{n}" for n in self.sets for k in ("auc", "recall"))
        extra = "  ".join(_with_interval(result, k) if k.split("@")[0] in ("auc", "f1") else f"{k} {result[k]:.3f}"
                          for k in keys if isinstance(result.get(k), (int, float)))
        self._echo(f"{trial.trial_id} epoch {epoch}/{self.epochs}  {extra}  {self._counts(trials)}")

    def _track_best(self, trial, result) -> None:
        value = result.get(OBJECTIVE)
        if role_of(trial.config) == CONFIRM or not isinstance(value, (int, float)) or math.isnan(value):
            return
        if self.best["value"] is None or (value > self.best["value"] if self.mode == "max" else value < self.best["value"]):
            self.best = {"value": float(value), "trial": trial.trial_id}

    def on_trial_complete(self, iteration, trials, trial, **info):
        if trial.trial_id in self.done:
            return
        self._echo(f"{trial.trial_id} {in_words(trial_ending(trial, self.epochs))} {self._counts(trials)}")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._echo(f"{trial.trial_id} FAILED: {self._killed_for_memory() or last_error_line(trial.error_file)} "
                   f"{self._counts(trials)}")

    def _killed_for_memory(self) -> str:
        """The reason, when the kernel has killed processes for memory since the sweep started (a dead worker's
        error only says it died)."""
        limit = memory_limit()
        now = oom_kill_count(limit)
        if self.oom_kills is None or now is None or now <= self.oom_kills:
            return ""
        self.oom_kills = now
        return (f"out of memory: the kernel killed its worker ({limit.where} allows {gib(limit.limit)} in all); "
                f"{OOM_ADVICE}")

    def on_trial_recover(self, iteration, trials, trial, **info):
        # Tune retries a crashed trial (sweep.max_failures): a lost node, a killed worker
        n = getattr(trial, "num_failures", 0) or 1
        self._echo(f"{trial.trial_id} lost its worker (a node or process died); retrying from its last checkpoint "
                   f"(failure {n}) {self._counts(trials)}")
