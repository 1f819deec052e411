"""MLflow, and only here: one experiment per sweep, a parent run, a nested child run per trial.

All logging happens on the driver (a Tune callback), so trials need no tracking access of their own and
every run's status follows Tune's: a trial stopped by ASHA is FINISHED, one that raised is FAILED, one
that died with the driver is KILLED on the next start. The tags `dfsweep.status` and `dfsweep.status_note`
say how each trial ended, in the leaderboard's words (dfsweep.statuses: STOPPED_BY_ASHA, ENDED_BY_BUDGET, ...).
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from ray import tune

from .errors import DfsweepError
from .held_writes import HeldWrites
from .metric_spec import mlflow_name
from .model_uri import global_store
from .objective import OBJECTIVE
from .roles import ROLE, SEARCH, split_params
from .statuses import Ending, trial_ending

__all__ = ["SweepTracker", "TrackingCallback", "FinalizeTracker", "default_tracking_uri", "warm_store", "TRIAL_TAG",
           "CHAMPION", "sweep_experiment_id", "TRIAL_CURVE"]

log = logging.getLogger("dfsweep.tracking")

TRIAL_TAG = "dfsweep.trial_id"
STATUS_TAG = "dfsweep.status"        # how the trial ended (dfsweep.statuses): the leaderboard's status
NOTE_TAG = "dfsweep.status_note"     # ... and its note ("after epoch 2 of 4", "no epoch finished")
PARENT_TAG = "mlflow.parentRunId"
SWEEP_TAG = "dfsweep.sweep"
KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"   # MLflow 3's kind for model training, not GenAI
TRIAL_CURVE = "val_auc"          # the parent run's `val_auc/<trial id>`: each trial's validation AUC by epoch
CHAMPION = "champion"              # the alias of the registered version to load and serve


def default_tracking_uri(sweeps_dir: Path) -> str:
    """A SQLite store under sweeps/, so a fresh machine needs no server (MLFLOW_TRACKING_URI wins)."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(sweeps_dir) / 'mlflow.db').resolve()}"


def _client(uri: str):
    from mlflow.tracking import MlflowClient
    # mlflow sets its own logger to INFO on import; its database-migration chatter is not for the terminal
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # a server that is down: one line from HeldWrites, not urllib3's per-request "Retrying ..." warnings
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    # with a tracking server, every set_terminated prints "View run ... at: URL" amid the progress lines
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # ... and logging a model copies its files with a progress bar each time
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return MlflowClient(tracking_uri=uri)


def warm_store(uri: str) -> None:
    """Import MLflow and, for a SQLite store, open it (a new file is created and migrated), writing no
    experiment or run. The sweep's driver calls it in a thread while `ray.init` starts the local Ray (each
    took ~2-3 s here, one after the other), and MLflow keeps the opened store for the clients made later.
    A server is not contacted here: one that does not answer would be retried twice over. Best effort:
    any error is left for the real use of the store to report."""
    try:
        client = _client(uri)
        if uri.startswith("sqlite:"):
            client.search_experiments(max_results=1)
    except Exception:  # noqa: BLE001 -- SweepTracker meets the same problem and reports it in one line
        log.debug("warming the tracking store at %s failed", uri, exc_info=True)


def _mark_model_training(client, exp) -> None:
    """Tag an experiment as model training unless it has a kind: sweeps from before the tag get it too."""
    if KIND_TAG not in exp.tags:
        client.set_experiment_tag(exp.experiment_id, KIND_TAG, MODEL_TRAINING)


def sweep_experiment_id(uri: str, name: str) -> Optional[str]:
    """The id of experiment `name` in the store at `uri`, tagged as model training; None when it is not there."""
    client = _client(uri)
    exp = client.get_experiment_by_name(name)
    if exp is None or exp.lifecycle_stage == "deleted":
        return None
    _mark_model_training(client, exp)
    return exp.experiment_id


def _params(d: Mapping[str, Any]) -> Dict[str, str]:
    return {str(k)[:250]: str(v)[:6000] for k, v in d.items()}


class SweepTracker:
    """The parent run of a sweep and its children, through MlflowClient (explicit run ids, no global state)."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Optional[Path] = None):
        self.uri = tracking_uri
        self._client = None
        try:
            exp = self.client.get_experiment_by_name(experiment)
        except Exception as e:  # noqa: BLE001 -- a corrupt file, a server that does not answer, a bad URI
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise DfsweepError(f"cannot open the MLflow tracking store {tracking_uri}: {msg}") from None
        if exp is None:
            location = None
            if artifact_root is not None and tracking_uri.startswith("sqlite:"):
                location = (Path(artifact_root) / experiment).resolve().as_uri()
            # the tag makes MLflow 3's UI open the experiment on its runs table, not the GenAI overview
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=location, tags={KIND_TAG: MODEL_TRAINING})
        else:
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            _mark_model_training(self.client, exp)
            self.experiment_id = exp.experiment_id
        self.experiment = experiment
        self.parent_id: Optional[str] = None

    @property
    def client(self):
        if self._client is None:
            self._client = _client(self.uri)
        return self._client

    def __getstate__(self):  # Tune pickles callbacks into its experiment state; clients reconnect lazily
        state = self.__dict__.copy()
        state["_client"] = None
        return state

    # -- parent ---------------------------------------------------------------------------------
    def start_parent(self, name: str, params: Mapping[str, Any], run_id: Optional[str] = None) -> str:
        if run_id:
            self.parent_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags={SWEEP_TAG: name})
        self.parent_id = run.info.run_id
        self.client.log_batch(self.parent_id, params=[self._param(k, v) for k, v in _params(params).items()])
        return self.parent_id

    def log_parent_artifact(self, path: Path, artifact_path: Optional[str] = None) -> None:
        self.client.log_artifact(self.parent_id, str(path), artifact_path)

    def log_parent_metrics(self, metrics: Mapping[str, float]) -> None:
        self._log_metrics(self.parent_id, metrics, step=0)

    def end_parent(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.parent_id, status=status)

    # -- children -------------------------------------------------------------------------------
    def children(self) -> List[Any]:
        return self.client.search_runs([self.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{self.parent_id}'",
                                       max_results=10000)

    def child_for(self, trial_id: str, run_name: str, params: Mapping[str, Any],
                  tags: Optional[Mapping[str, Any]] = None) -> str:
        """The child run of `trial_id`: the existing one after a resume, else a new nested run (`tags`: what
        the trial is for, e.g. dfsweep.role = confirm)."""
        for r in self.children():
            if r.data.tags.get(TRIAL_TAG) == trial_id:
                self.client.update_run(r.info.run_id, status="RUNNING")
                return r.info.run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name,
                                     tags={PARENT_TAG: self.parent_id, TRIAL_TAG: trial_id, SWEEP_TAG: self.experiment,
                                           **{k: str(v) for k, v in (tags or {}).items()}})
        self.client.log_batch(run.info.run_id, params=[self._param(k, v) for k, v in _params(params).items()])
        return run.info.run_id

    def last_step(self, run_id: str, key: str = OBJECTIVE) -> int:
        """The last epoch logged to a run under `key` (0 for none): every epoch report carries the objective."""
        return max((m.step for m in self.client.get_metric_history(run_id, key)), default=0)

    def last_curve_step(self, trial_id: str) -> int:
        """The last epoch of a trial's AUC curve on the parent run (0 for none)."""
        return self.last_step(self.parent_id, f"{TRIAL_CURVE}/{trial_id}")

    def finished_trials(self) -> set:
        """Trial ids whose child run ended FINISHED (the driver saw them complete)."""
        return {r.data.tags.get(TRIAL_TAG) for r in self.children() if r.info.status == "FINISHED"}

    def log_epoch(self, run_id: str, metrics: Mapping[str, Any], step: int) -> None:
        self._log_metrics(run_id, metrics, step)

    def log_trial_curve(self, trial_id: str, metrics: Mapping[str, Any], step: int) -> None:
        """A trial's validation AUC on the parent run too: MLflow charts only a run's own metrics."""
        if "auc" in metrics:
            self._log_metrics(self.parent_id, {f"{TRIAL_CURVE}/{trial_id}": metrics["auc"]}, step)

    def end_child(self, run_id: str, status: str, error: Optional[str] = None, end: Optional[Ending] = None) -> None:
        """Close a trial's run; `end`: why it ended, as the tags STATUS_TAG and NOTE_TAG."""
        if error:
            self.client.set_tag(run_id, "error", error[:5000])
        if end is not None:
            self.client.set_tag(run_id, STATUS_TAG, end.status)
            self.client.set_tag(run_id, NOTE_TAG, end.note)
        self.client.set_terminated(run_id, status=status)

    def close_dangling(self, keep: Iterable[str] = ()) -> int:
        """Children left RUNNING (their driver died) -> KILLED; children of trials Tune no longer knows
        (created after the last experiment snapshot, re-sampled on resume) are deleted: no duplicates."""
        keep = set(keep)
        n = 0
        for r in self.children():
            tid = r.data.tags.get(TRIAL_TAG)
            if keep and tid not in keep:
                self.client.set_terminated(r.info.run_id, status="KILLED")
                self.client.delete_run(r.info.run_id)
                n += 1
            elif r.info.status == "RUNNING":
                self.client.set_terminated(r.info.run_id, status="KILLED")
                n += 1
        return n

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _param(k, v):
        from mlflow.entities import Param
        return Param(k, v)

    def _log_metrics(self, run_id: str, metrics: Mapping[str, Any], step: int) -> None:
        _log_metrics(self.client, run_id, metrics, step)


def _log_metrics(client, run_id: str, metrics: Mapping[str, Any], step: int) -> None:
    """Numbers only (NaN dropped: MLflow charts choke on it), one batch; names as MLflow accepts them
    (`auc@ciplab` -> `auc_at_ciplab`)."""
    import time
    from mlflow.entities import Metric
    now = int(time.time() * 1000)
    batch = [Metric(mlflow_name(k), float(v), now, step) for k, v in metrics.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(float(v))]
    if batch:
        client.log_batch(run_id, metrics=batch)


def _once(done: Dict[str, int], tid: str, step: int, stored: Callable[[], int], write: Callable[[], None]) -> None:
    """`write` epoch `step` unless the store already has it. After a failed write the store is asked again:
    a server that went down mid-request may have taken the write before it stopped answering."""
    if tid not in done:
        done[tid] = stored()
    if step <= done[tid]:
        return
    try:
        write()
    except Exception:
        done.pop(tid, None)
        raise
    done[tid] = step


def store_unavailable(e: BaseException) -> bool:
    """The store did not answer (a server down or restarting, a timeout): worth retrying. An MLflow error
    with a 4xx status means it answered and refused."""
    from mlflow.exceptions import MlflowException
    if isinstance(e, MlflowException):
        return e.get_http_status_code() >= 500
    return isinstance(e, OSError)       # requests' connection errors and timeouts are OSErrors


# Tune bookkeeping that is not a metric worth a chart
_SKIP = {"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "pid", "time_since_restore",
         "iterations_since_restore", "done", "epoch", "checkpoint_dir_name", "should_checkpoint",
         "gpu_share", "gpus_visible", "on_cuda"}


class TrackingCallback(tune.Callback):
    """Mirrors Tune's trial lifecycle into MLflow child runs. Never raises (an exception in a Tune callback
    aborts the whole sweep): a write the store cannot take now is held and written when it answers again."""

    def __init__(self, tracker: SweepTracker, epochs: int = 0):
        self.tracker = tracker
        self.epochs = epochs                # each trial's epochs: fewer means it was stopped short
        self.runs: Dict[str, str] = {}
        self.logged: Dict[str, int] = {}    # trial -> last epoch in MLflow
        self.curved: Dict[str, int] = {}    # trial -> last epoch of its curve on the parent run
        self.held = HeldWrites(store_unavailable)   # what a tracking server that is down could not take yet

    def __getstate__(self):  # Tune pickles callbacks; the held writes are closures of this driver
        state = self.__dict__.copy()
        state["held"] = HeldWrites(store_unavailable)
        return state

    def _safe(self, trial, fn, *a) -> None:
        self.held.write(trial.trial_id, lambda: fn(*a))

    def _run_id(self, trial) -> str:
        if trial.trial_id not in self.runs:
            params, meta = split_params(trial.config)
            self.runs[trial.trial_id] = self.tracker.child_for(trial.trial_id, trial.trial_id, params,
                                                               {ROLE: SEARCH, **meta})
        return self.runs[trial.trial_id]

    def on_trial_start(self, iteration, trials, trial, **info):
        self._safe(trial, self._run_id, trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        metrics = {k: v for k, v in result.items() if k not in _SKIP}
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        self._safe(trial, self._log_epoch, trial, metrics, step)

    def _log_epoch(self, trial, metrics, step: int) -> None:
        run_id = self._run_id(trial)
        tid = trial.trial_id
        # a trial restored from a checkpoint one epoch older than its last report trains that epoch again
        # (the same numbers, seeded by epoch): MLflow keeps the first copy
        _once(self.logged, tid, step, lambda: self.tracker.last_step(run_id),
              lambda: self.tracker.log_epoch(run_id, metrics, step))
        _once(self.curved, tid, step, lambda: self.tracker.last_curve_step(tid),
              lambda: self.tracker.log_trial_curve(tid, metrics, step))

    def on_trial_complete(self, iteration, trials, trial, **info):
        # MLflow's FINISHED also for a trial ASHA or the budget stopped: it ended as the sweep meant; the tags say why
        end = trial_ending(trial, self.epochs)
        self._safe(trial, lambda: self.tracker.end_child(self._run_id(trial), "FINISHED", end=end))

    def on_trial_error(self, iteration, trials, trial, **info):
        def fail():
            err = None
            if trial.error_file and Path(trial.error_file).is_file():
                err = Path(trial.error_file).read_text()[-5000:]
            reason = (err or "").strip().splitlines()[-1:] or ["failed"]
            self.tracker.end_child(self._run_id(trial), "FAILED", err, trial_ending(trial, self.epochs, reason[0]))
        self._safe(trial, fail)


class FinalizeTracker:
    """The `finalize` run, nested under the sweep's parent run; registers the fine-tuned model."""

    def __init__(self, tracking_uri: str, experiment: str, parent_run_id: Optional[str]):
        self.uri = tracking_uri
        self.client = _client(tracking_uri)
        exp = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (exp.experiment_id if exp else
                              self.client.create_experiment(experiment, tags={KIND_TAG: MODEL_TRAINING}))
        tags = {SWEEP_TAG: experiment, "dfsweep.stage": "finalize"}
        if parent_run_id:
            tags[PARENT_TAG] = parent_run_id
        self.run_id = self.client.create_run(self.experiment_id, run_name="finalize", tags=tags).info.run_id
        self.experiment = experiment

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, params=[SweepTracker._param(k, v) for k, v in _params(params).items()])

    def log_curve(self, history: List[Mapping[str, Any]], prefix: str = "") -> None:
        import time
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        batch = [Metric(mlflow_name(f"{prefix}{k}"), float(v), now, int(h["epoch"])) for h in history for k, v in h.items()
                 if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)
                 and not math.isnan(float(v))]
        for i in range(0, len(batch), 900):  # MLflow caps a batch at 1000 entries
            self.client.log_batch(self.run_id, metrics=batch[i:i + 900])

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        _log_metrics(self.client, self.run_id, metrics, 0)

    def log_artifact(self, path: Path, artifact_path: Optional[str] = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_model(self, spec: Mapping[str, Any], name: Optional[str], tags: Mapping[str, Any]) -> Optional[int]:
        """Log the pyfunc model `spec` (mlflow.pyfunc.log_model's arguments) in this run; with a `name`, register
        it as a new version of that model and point the alias `champion` at it. Returns the version."""
        import mlflow.pyfunc
        from mlflow.exceptions import MlflowException
        tags = {k: str(v) for k, v in tags.items()}
        with global_store(self.uri):
            with mlflow.start_run(run_id=self.run_id):
                info = mlflow.pyfunc.log_model(name="detector", tags=tags, **spec)
            if name is None:
                return None
            try:
                self.client.create_registered_model(name)
            except MlflowException:
                pass  # exists
            mv = self.client.create_model_version(name, source=info.model_uri, run_id=self.run_id, tags=tags,
                                                  model_id=info.model_id)
        self.client.set_registered_model_alias(name, CHAMPION, mv.version)
        return int(mv.version)

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)
