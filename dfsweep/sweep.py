"""A sweep: spec -> OptunaSearch + scheduler + Tuner.fit(); owns sweeps/<name>/.

sweeps/<name>/
  sweep.yaml        the resolved spec (what --resume and finalize read)
  state.json        tracking URI, MLflow parent run id, Ray address, where Tune's experiment is, status
  optuna.db         the Optuna study (RDB storage: survives a crash)
  tune/             Ray Tune's experiment (trials, checkpoints, snapshots), unless `--storage` put it
                    at <storage>/<name> (a shared path or a URI every node of a cluster can reach)
  phase             search | confirm | done: how far the search algorithm got (--resume goes on from there)
  leaderboard.csv   one row per trial, best first (confirmed configurations ranked by their mean); rewritten
                    while the sweep runs, trials still going marked RUNNING or PENDING (dfsweep/live_board.py)
  analysis/         the search's parameter importances, parallel coordinates and history (dfsweep/analysis.py)
  best.yaml         the winner's full config (the confirmed winner when there was a confirmation; in a
                    multi-objective sweep, the Pareto-front member finalize.pick chooses)
  trials.yaml       each search trial's sampled parameters (what `finalize --trial ID` trains)
sweeps/latest -> <name>
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pandas as pd
import yaml

from .checkpoint import atomic_write_bytes
from .config import Config, apply_overrides, config_from_dict, flat_dict, read_yaml
from .errors import DfsweepError
from .front import front_lines, trial_params
from .metric_spec import interval_keys
from .objective import Scoring
from .space import SearchSpace, parse_space
from .storage import check_sweeps_folder
from .sweep_paths import SweepPaths, read_state, resolve_sweep_dir

__all__ = ["SweepPaths", "prepare_sweep", "run_sweep", "SweepOutcome", "resolve_sweep_dir", "experiment_location"]

log = logging.getLogger("dfsweep.sweep")


@dataclass
class SweepOutcome:
    paths: SweepPaths
    leaderboard: pd.DataFrame
    best_config: Optional[Dict[str, Any]]
    wall_s: float
    parent_run_id: Optional[str]
    interrupted: bool = False
    verdict: List[str] = field(default_factory=list)   # the last lines: is the winner separated from the recipe?


def _write_text(path: Path, text: str) -> None:
    data = text.encode()
    atomic_write_bytes(path, lambda f: f.write(data))


def prepare_sweep(space_yaml: str, sets: List[str], data: Optional[str], name: Optional[str], resume: bool,
                  root: Path = Path("sweeps")) -> tuple[Config, SearchSpace, SweepPaths]:
    """Read and validate everything before Ray starts: the YAML, the overrides, the whole search space."""
    if resume:
        if name:
            paths = SweepPaths(root, name)
        elif (root / "latest").exists():
            paths = SweepPaths(root, (root / "latest").resolve().name)
        else:
            raise DfsweepError(f"--resume: no sweep to resume in {root} (give --name)")
        if not paths.spec.is_file():
            raise DfsweepError(f"--resume: {paths.dir} is not a sweep folder (no sweep.yaml)")
        raw = read_yaml(paths.spec)  # the spec the sweep started with: the space must not change mid-sweep
        extra = list(sets) + ([f"data.train={data}"] if data else [])
        if extra:
            log.warning("--resume: --set/--data ignored; the sweep continues with %s", paths.spec)
        cfg = config_from_dict(raw)
        space = parse_space(cfg)
        check_sweeps_folder(root)
        return cfg, space, paths

    raw = read_yaml(space_yaml)
    try:
        raw = apply_overrides(raw, list(sets) + ([f"data.train={data}"] if data else []))
        cfg = config_from_dict(raw)
        space = parse_space(cfg)
    except DfsweepError as e:
        raise DfsweepError(f"{space_yaml}: {e}") from None
    if not space:
        raise DfsweepError(f"{space_yaml}: no `search:` section; nothing to sweep (use `dfsweep train`)")
    sweep_name = name or cfg.sweep.name or f"{Path(space_yaml).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    paths = SweepPaths(root, sweep_name)
    if paths.dir.exists():
        raise DfsweepError(f"sweep {sweep_name!r} exists in {root}: add --resume to continue it, or pick --name")
    if cfg.sweep.name != sweep_name:
        cfg = cfg.replace({"sweep.name": sweep_name})
        space = parse_space(cfg)  # the space's base config carries the name into best.yaml
    check_sweeps_folder(root)   # read-only or full: one line now, not a failed trial later
    return cfg, space, paths


def _point_latest(paths: SweepPaths) -> None:
    link = paths.latest
    tmp = paths.root / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(paths.name)          # relative: the sweeps/ folder can move
    os.replace(tmp, link)


def _write_state(paths: SweepPaths, **kw) -> None:
    state = {**read_state(paths), **kw}
    _write_text(paths.state, json.dumps(state, indent=2))


def experiment_location(paths: SweepPaths, storage: Optional[str] = None) -> str:
    """Where Tune keeps the sweep's experiment: <storage>/<name> (a local or shared path, or a URI such as
    s3://bucket/prefix), else sweeps/<name>/tune."""
    if not storage:
        return str(paths.tune_dir.resolve())
    if "://" not in storage:
        return str(Path(storage).expanduser().resolve() / paths.name)
    u = urllib.parse.urlsplit(storage)  # the name goes into the path, not after a ?query
    return urllib.parse.urlunsplit(u._replace(path=f"{u.path.rstrip('/')}/{paths.name}"))


def _split_location(location: str) -> tuple[str, str]:
    """RunConfig's (storage_path, name) for an experiment location."""
    if "://" not in location:
        return str(Path(location).parent), Path(location).name
    u = urllib.parse.urlsplit(location)
    parent, name = u.path.rstrip("/").rsplit("/", 1)
    return urllib.parse.urlunsplit(u._replace(path=parent)), name


def _unfinished_trials(location: str) -> List[str]:
    """Trials that Tune's saved experiment state holds as not done (what --resume would continue).
    (Callbacks cannot tell: on Ctrl-C Tune stops running trials without on_trial_complete.)"""
    from ray.tune import ExperimentAnalysis
    try:
        analysis = ExperimentAnalysis(location)
    except Exception as e:  # noqa: BLE001 -- no saved state: nothing to resume
        log.warning("could not read the experiment state in %s: %s", location, e)
        return []
    return [t.trial_id for t in analysis.trials if t.status not in ("TERMINATED", "ERROR")]


def _best_config(records, board: pd.DataFrame, metric: str, space: SearchSpace) -> Optional[Dict[str, Any]]:
    """The full config of the leaderboard's rank 1 (the confirmed winner), with the YAML's own seed and split."""
    from .leaderboard import winner_row
    from .roles import split_params
    top = winner_row(board, metric)
    if top is None:
        return None
    params, _ = split_params(next(r.config for r in records if r.trial_id == top["trial_id"]))
    cfg = space.config_for(params).to_dict()
    cfg.pop("search", None)
    return cfg


def run_sweep(cfg: Config, space: SearchSpace, paths: SweepPaths, *, resume: bool = False,
              address: Optional[str] = None, tracking_uri: Optional[str] = None, storage: Optional[str] = None,
              echo: Callable[[str], None] = print) -> SweepOutcome:
    """Run (or resume) the sweep to the end; write the leaderboard, best.yaml and the MLflow records.

    `address` (else RAY_ADDRESS, else the one the sweep recorded) joins an existing Ray cluster; this process
    must run on one of its nodes. `storage` (else the recorded one) is where Tune keeps the experiment, as
    <storage>/<name>: on a cluster, a path or URI that every node reaches. sweeps/<name>/ stays the local
    record either way."""
    t0 = time.time()
    from .run_data import load_run_data

    # 1. where it runs and where Tune's experiment lives: as given, else as the sweep recorded (--resume
    #    continues on the same cluster and storage; `--address local` brings a cluster sweep home)
    state = read_state(paths)
    address = address or os.environ.get("RAY_ADDRESS") or state.get("address")
    location = experiment_location(paths, storage) if storage else (state.get("storage") or experiment_location(paths))
    if resume and state.get("storage") and location != state["storage"]:
        log.warning("--resume: --storage points at %s; the sweep recorded %s", location, state["storage"])
    joining = _joins_cluster(address)

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")   # snapshot often: a kill -9 loses little
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # we snapshot on purpose every second; Ray's warning about it would repeat all sweep long
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # a tracking server that does not answer: held writes retry it (dfsweep/held_writes.py); MLflow's own
    # backoff (7 retries, minutes) would stall every Tune event meanwhile
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    import ray
    # 2. a cluster first: one that is not there is reported within seconds, before any decoding or writing
    if joining:
        _connect_ray(address, echo)
    try:
        from .tracking import default_tracking_uri
        uri = tracking_uri or state.get("tracking_uri") or default_tracking_uri(paths.root)
        if not joining:
            _start_local_ray(address, uri, echo)
        # 3. data, decoded by Ray tasks on every node into the cache: every bad file is reported before the
        #    sweep's folder exists
        from .data.cluster_cache import RayBuilder
        data, val_sets = load_run_data(cfg, echo, RayBuilder())
        if cfg.sweep.data_fraction < 1:
            # multi-fidelity: a stratified, group-aware share, the same for every trial (and on --resume)
            from .data import stratified_fraction
            data = data.subset(stratified_fraction(data.labels, data.groups, cfg.sweep.data_fraction, cfg.sweep.seed))
            counts = data.class_counts()
            echo(f"sweep.data_fraction {cfg.sweep.data_fraction:g}: trials use {len(data)} images "
                 f"({counts[0]} real, {counts[1]} fake)")

        from .signals import ending_like_ctrl_c
        with ending_like_ctrl_c():
            return _run_connected(cfg, space, paths, (data, val_sets), state, address, location, resume, uri,
                                  echo, t0)
    finally:
        ray.shutdown()


def _start_local_ray(address: Optional[str], uri: str, echo: Callable[[str], None]) -> None:
    """A new local Ray (`address` None or "local"), with the MLflow store opened meanwhile."""
    from .tracking import warm_store
    # a local Ray's start mostly waits on its processes: MLflow's import and store open meanwhile in a thread
    # (the two share no import cycle, so no import-lock deadlock; checked with Ray 2.60 and MLflow 3.17)
    # Ray 2.60 logs a WARNING about token authentication on every local start, amid the progress lines
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    warming = threading.Thread(target=warm_store, args=(uri,), name="dfsweep-mlflow-warm", daemon=True)
    warming.start()
    try:
        _connect_ray(address, echo)
    finally:
        warming.join()      # MLflow caches the store it opens: never open it twice at once


def retries(max_failures: Optional[int], address: Optional[str]) -> int:
    """sweep.max_failures as given, else 1 on a cluster: a lost node's trial continues from its checkpoint."""
    return max_failures if max_failures is not None else int(_joins_cluster(address))


def _joins_cluster(address: Optional[str]) -> bool:
    """Whether `address` names a Ray cluster to join ("local": a new local Ray even where RAY_ADDRESS is set)."""
    return address not in (None, "", "local")


def _connect_ray(address: Optional[str], echo: Callable[[str], None]) -> None:
    """ray.init: a local Ray without an address, else the cluster at `address` (one line when it fails)."""
    import ray
    joining = _joins_cluster(address)
    from .ray_address import JoinDeadline, check_reachable
    if joining:
        check_reachable(address)    # a dead address in seconds, not Ray's endless retries
    try:
        with JoinDeadline(address) if joining else contextlib.nullcontext():
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True, logging_level=logging.WARNING, configure_logging=True)
    except Exception as e:  # noqa: BLE001 -- Ray raises several types; all mean "no cluster to run on"
        if not joining:
            raise
        msg = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        hint = ("; a cluster with token authentication needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN, "
                "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token" if os.environ.get("RAY_AUTH_MODE") != "token" else "")
        raise DfsweepError(f"cannot join the Ray cluster at {address}: {msg}{hint}") from None
    if joining:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = ray.cluster_resources().get("CPU", 0)
        echo(f"ray: cluster at {address}: {len(nodes)} nodes "
             f"({', '.join(sorted(n['NodeManagerAddress'] for n in nodes))}), {cpus:g} CPUs")


def _run_connected(cfg: Config, space: SearchSpace, paths: SweepPaths, run_data, state: Dict[str, Any],
                   address: Optional[str], location: str, resume: bool, uri: str,
                   echo: Callable[[str], None], t0: float) -> SweepOutcome:
    data, val_sets = run_data
    # 4. the tracking store (one that cannot be opened leaves no sweep folder behind), the folder, its spec
    tracker, parent = _open_records(cfg, paths, state, address, location, resume, uri)
    # 5. the search algorithm (Optuna, then the confirmation runs), the scheduler, the Tuner
    tuner, callbacks = _build_tuner(cfg, space, paths, run_data, address, location, resume, tracker, echo)
    results = tuner.fit()
    # Ctrl-C (SIGINT): Tune stops the loop, saves its state and returns; unfinished trials and the rest of
    # the search or confirmation wait for --resume
    interrupted = bool(_unfinished_trials(location)) or _read_phase(paths) != "done"
    # 6. the leaderboard, the verdict on the winner, best.yaml, the search's analysis, and the parent run's
    #    artifacts
    board, best, verdict, lines = _write_results(cfg, space, paths, run_data, results, interrupted)
    from .analysis import write_analysis
    scoring = Scoring.of(cfg.sweep, cfg.finalize)
    analysis = write_analysis(paths.optuna_db, cfg.sweep.name, scoring, paths.analysis)
    for line in analysis.lines:
        echo(line)

    def close_parent() -> None:
        tracker.close_dangling(keep={str(t) for t in board["trial_id"]} if len(board) else ())
        tracker.log_parent_artifact(paths.leaderboard)
        for png in analysis.written:
            tracker.log_parent_artifact(png, "analysis")
        if best is not None:
            tracker.log_parent_artifact(paths.best)
            tracker.log_parent_metrics(_verdict_metrics(board, verdict, scoring.key))
        tracker.end_parent("KILLED" if interrupted else "FINISHED")
    incomplete = _settle_tracking(callbacks[0].held, close_parent, uri, echo)
    wall = time.time() - t0
    _write_state(paths, status="INTERRUPTED" if interrupted else "FINISHED", wall_s=wall,
                 mlflow_incomplete=incomplete)
    return SweepOutcome(paths, board, best, wall, parent, interrupted, lines)


def _open_records(cfg: Config, paths: SweepPaths, state: Dict[str, Any], address: Optional[str], location: str,
                  resume: bool, uri: str):
    """The MLflow experiment and parent run, the sweep folder with its spec, state.json: (tracker, parent id)."""
    s = cfg.sweep
    from .tracking import SweepTracker       # its client quiets MLflow's and Alembic's loggers
    tracker = SweepTracker(uri, s.name, artifact_root=paths.root / "mlartifacts")
    paths.dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        _write_text(paths.spec, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    _point_latest(paths)
    parent = tracker.start_parent(s.name, flat_dict(cfg.to_dict()), run_id=state.get("parent_run_id"))
    # pid and host: `dfsweep status` can tell a RUNNING sweep whose driver is gone
    _write_state(paths, tracking_uri=uri, parent_run_id=parent, experiment=s.name, address=address,
                 storage=location, status="RUNNING", pid=os.getpid(), host=socket.gethostname(),
                 started_at=time.time())
    tracker.log_parent_artifact(paths.spec)
    return tracker, parent


def _build_tuner(cfg: Config, space: SearchSpace, paths: SweepPaths, run_data, address: Optional[str],
                 location: str, resume: bool, tracker, echo: Callable[[str], None]):
    """The Tuner (restored on --resume) and its callbacks: MLflow, the progress lines, the statuses."""
    s = cfg.sweep
    import optuna
    from ray import tune
    from .confirm import max_confirmation_runs
    from .live_board import LiveBoard
    from .progress import ProgressCallback
    from .status_callback import StatusCallback
    from .tracking import TrackingCallback
    from .trial import run_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # a failed trial is reported in one line by ProgressCallback, with its error in MLflow and the
    # leaderboard; Tune's own multi-line tracebacks would bury the progress display
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    # Tune's TensorBoard logger renames `auc@set` keys with one INFO line per key and epoch
    logging.getLogger("tensorboardX").setLevel(logging.WARNING)
    # trials MLflow saw finish are never trained again, even if Tune's last snapshot predates that
    done = tracker.finished_trials() if resume else set()
    data, val_sets = run_data
    scoring = Scoring.of(s, cfg.finalize)
    # with_parameters puts the sets in the object store once: labels, groups, ids and the names of the shards
    # whose pixels each trial reads in place from its node's cache
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, data=data, space=space, scoring=scoring, mode=s.mode,
                             min_precision=s.min_precision, skip_trials=done, val_sets=val_sets),
        {"cpu": s.resources_per_trial.cpu, "gpu": s.resources_per_trial.gpu})
    n_confirm = max_confirmation_runs(s.confirm, s.start_from_defaults)
    progress = ProgressCallback(scoring.key, s.mode, s.num_samples, n_confirm, cfg.train.epochs, done,
                                sets=tuple(val_sets))
    callbacks = [TrackingCallback(tracker, cfg.train.epochs), progress, StatusCallback(),
                 LiveBoard(paths.leaderboard, scoring.key, s.mode, cfg.train.epochs,
                           objectives=[o.key for o in scoring.objectives])]
    if resume and tune.Tuner.can_restore(location):
        echo(f"resuming sweep {s.name} from {location}")
        tuner = tune.Tuner.restore(location, trainable=trainable, resume_unfinished=True, resume_errored=True)
        _replace_callbacks(tuner, callbacks)
        return tuner, callbacks
    return _new_tuner(cfg, space, paths, trainable, callbacks, n_confirm, address, location), callbacks


def _new_tuner(cfg: Config, space: SearchSpace, paths: SweepPaths, trainable, callbacks, n_confirm: int,
               address: Optional[str], location: str):
    s = cfg.sweep
    import optuna
    from ray import tune
    from .confirm import SearchThenConfirm
    from .objective import OBJECTIVE
    from .roles import recipe_params
    from .samplers import build_sampler
    from .scheduling import BudgetClock, SearchBudgetStopper, build_scheduler
    from .searcher import ResumableOptunaSearch

    storage = optuna.storages.RDBStorage(f"sqlite:///{paths.optuna_db.resolve()}")
    scoring = Scoring.of(s, cfg.finalize)
    metric = scoring.searcher_metric()     # one objective, or each of several (Optuna's multi-objective study)
    optuna_search = ResumableOptunaSearch(
        space.define_by_run(), metric=metric, mode=[s.mode] * len(metric) if scoring.multi else s.mode,
        sampler=build_sampler(s.sampler, s.seed),
        study_name=s.name, storage=storage,
        points_to_evaluate=[recipe_params(space)] if s.start_from_defaults else None)
    clock = BudgetClock(s.time_budget_s)   # one budget: the searcher stops asking, the stopper stops trials
    searcher = SearchThenConfirm(optuna_search, num_samples=s.num_samples, budget_s=s.time_budget_s, clock=clock,
                                 confirm=s.confirm, recipe=s.start_from_defaults, metric=OBJECTIVE,
                                 mode=s.mode, phase_file=str(paths.phase.resolve()),
                                 objectives=len(scoring.objectives))
    storage_path, exp_name = _split_location(location)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=build_scheduler(cfg), num_samples=s.num_samples + n_confirm,
            max_concurrent_trials=s.max_concurrent_trials or None, reuse_actors=s.reuse_actors,
            trial_name_creator=lambda t: t.trial_id,
            trial_dirname_creator=lambda t: f"trial_{t.trial_id}"),
        run_config=tune.RunConfig(
            name=exp_name, storage_path=storage_path, callbacks=callbacks, verbose=0,
            stop=SearchBudgetStopper(s.time_budget_s, clock),
            failure_config=tune.FailureConfig(max_failures=retries(s.max_failures, address)),
            # 2, not 1: the newest snapshot may still name the previous checkpoint after a kill -9
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )


def _write_results(cfg: Config, space: SearchSpace, paths: SweepPaths, run_data, results, interrupted: bool):
    """leaderboard.csv, the verdict on the winner and best.yaml: (board, best config, verdict, verdict lines)."""
    s = cfg.sweep
    data, val_sets = run_data
    from .leaderboard import read_trials, leaderboard
    from .verdict import judge, verdict_lines
    scoring = Scoring.of(s, cfg.finalize)
    metric = scoring.key
    records = read_trials(results)
    board = leaderboard(records, metric, s.mode, cfg.train.epochs, [o.key for o in scoring.objectives])
    _write_text(paths.leaderboard, board.to_csv(index=False))
    _write_text(paths.trials, yaml.safe_dump(trial_params(records), sort_keys=False))
    verdict = None if interrupted else judge(records, board, metric, data, space, val_sets)
    lines = verdict_lines(verdict, board, metric)
    if scoring.multi:
        lines = front_lines(board, scoring) + lines
    best = None if interrupted else _best_config(records, board, metric, space)
    if best is not None:
        top = board.iloc[0]
        how = (f"confirmed {metric} {top['confirm_mean']:.4f} over {int(top['confirm_n'])} runs"
               if top.get("confirm_n", 0) else f"{metric} {top[metric]:.4f}")
        header = f"# best trial {top['trial_id']} of sweep {s.name}: {how}\n"
        _write_text(paths.best, header + yaml.safe_dump(best, sort_keys=False))
    return board, best, verdict, lines


TRACKING_SETTLE_S = 60.0    # how long the end of a sweep waits for a tracking store that is down


def _settle_tracking(held, close_parent: Callable[[], None], uri: str, echo: Callable[[str], None]) -> List[str]:
    """The parent run's last writes, then whatever a store that was down could not take; what it still cannot
    take after TRACKING_SETTLE_S is named (the records on disk are complete either way)."""
    held.write("the sweep's parent run", close_parent)
    if held.settle(TRACKING_SETTLE_S):
        return []
    missing = sorted(held.pending())
    echo(f"mlflow: the tracking store at {uri} did not answer for {TRACKING_SETTLE_S:.0f}s; incomplete there: "
         f"{', '.join(missing)} (leaderboard.csv and best.yaml on disk are complete)")
    return missing


def _replace_callbacks(tuner, callbacks: List[Any]) -> None:
    """A restored Tuner's callbacks are the pickled ones of the previous driver (its counters, its MLflow
    client state); Tuner.restore takes no run config, so the fresh ones go into the run config it restored,
    a private attribute (checked against Ray 2.60)."""
    tuner._local_tuner.get_run_config().callbacks = callbacks


def _read_phase(paths: SweepPaths) -> str:
    return paths.phase.read_text().strip() if paths.phase.is_file() else ""


def _verdict_metrics(board: pd.DataFrame, verdict, metric: str) -> Dict[str, float]:
    """The parent run's summary: the winner's scores and its comparisons (P(winner better), difference)."""
    top = board.iloc[0]
    out = {f"best_{metric}": float(top[metric])}
    for k in (*interval_keys(metric), "confirm_mean", "confirm_std", "confirm_n"):
        if k in top and not pd.isna(top[k]):
            out[f"best_{k}"] = float(top[k])
    for name, (_, c) in (verdict.against.items() if verdict else ()):
        key = name.split(" ")[0].replace("-", "_")
        out.update({f"p_better_than_{key}": c.p_better, f"diff_vs_{key}": c.diff,
                    f"diff_vs_{key}_lo": c.diff_lo, f"diff_vs_{key}_hi": c.diff_hi})
    return out
