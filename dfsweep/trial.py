"""One Ray Tune trial: sampled params -> config -> `fit` -> `tune.report(metrics, checkpoint)` each epoch."""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Dict

import torch
from ray import tune

from .checkpoint import CheckpointWriteError
from .data import DecodedSet
from .data.cluster_cache import ensure_local
from .data.resize import at_size
from .objective import Scoring
from .roles import trial_config
from .runtime import pick_device
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


def _replay_finished(seen_epoch: int, scoring: Scoring, mode: str) -> None:
    """A trial that finished before a crash, restored from a slightly older snapshot: report the epochs
    the snapshot missed from its newest checkpoint instead of training them again.

    The checkpoints are read where Tune persisted them (the experiment's storage: sweeps/<name>/tune, a
    shared path or a URI), not from this process's working directory, which on a cluster is another node's."""
    import io
    import pyarrow.fs
    storage = tune.get_context().get_storage()
    fs = storage.storage_filesystem
    found = fs.get_file_info(pyarrow.fs.FileSelector(storage.trial_fs_path, allow_not_found=True))
    newest, newest_path = None, None
    for info in sorted(found, key=lambda i: i.path):
        if info.type != pyarrow.fs.FileType.Directory or not info.base_name.startswith("checkpoint_"):
            continue
        try:
            with fs.open_input_file(f"{info.path}/{STATE_FILE}") as f:
                state = torch.load(io.BytesIO(f.readall()), map_location="cpu", weights_only=True)
        except Exception:  # a checkpoint cut off by the crash
            continue
        if newest is None or state["epoch"] > newest["epoch"]:
            newest, newest_path = state, info.path
    if newest is None:
        return
    history = newest["history"]
    missed = [i for i, m in enumerate(history) if m["epoch"] > seen_epoch]
    for i in missed:
        # the last report carries the newest checkpoint, so the trial's result holds its whole history
        ckpt = tune.Checkpoint(newest_path, filesystem=fs) if i == missed[-1] else None
        tune.report({**_reportable(history[i]), **scoring.report(history[: i + 1], mode)}, checkpoint=ckpt)


def _save_state(state: Dict[str, Any], path: Path) -> None:
    """torch.save reports a failed disk write as an opaque RuntimeError; writing its bytes here fails with
    the OSError that names the reason (no space left, read-only file system)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    path.write_bytes(buf.getbuffer())


@contextlib.contextmanager
def _writing_checkpoint(epoch: int):
    """An OSError while the epoch's checkpoint is written (locally or into Tune's storage) fails the trial with
    one line saying which epoch and why; the full error stays chained in the traceback Tune records."""
    try:
        yield
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e).splitlines()[0]
        where = e.filename or e.strerror          # pyarrow (Tune's copy into storage) names the path in strerror
        detail = f" ({where})" if where and where != reason else ""
        raise CheckpointWriteError(f"the checkpoint of epoch {epoch} could not be written: {reason}{detail}") from e


def _placement(device: str) -> Dict[str, float]:
    """What this trial was given: its GPU share (`resources_per_trial.gpu`, fractional allowed), the
    number of GPUs Ray made visible to it (CUDA_VISIBLE_DEVICES) and whether it trains on one
    (`on_cuda`), so the leaderboard shows all three."""
    import ray
    res = tune.get_context().get_trial_resources().required_resources
    return {"gpu_share": float(res.get("GPU", 0.0)), "gpus_visible": float(len(ray.get_gpu_ids())),
            "on_cuda": float(pick_device(device).type == "cuda")}


def run_trial(params: Dict[str, Any], data: DecodedSet, space: SearchSpace, scoring: Scoring, mode: str,
              min_precision: float | None, skip_trials: frozenset | set = frozenset(),
              val_sets: Dict[str, DecodedSet] | None = None) -> None:
    """The trainable. `data` and `val_sets` arrive from Ray's object store: labels, groups and ids, and the
    names of their pixels' shards in the decoded-image cache, which this trial reads in place.

    1. sampled params (and a confirmation run's seed and split) -> a full, validated config; the data in this
       node's cache, at the trial's resolution
    2. resume from the trial's last checkpoint if Tune restored it (after a crash or --resume)
    3. train; every epoch report the metrics and the objective (the best epoch so far) with a checkpoint
       holding the resumable state
    """
    cfg = trial_config(space, params)
    # 1. the decoded sets in this node's cache (a node with a cache folder of its own copies what it lacks);
    #    a searched resolution: the shared images (decoded once at the spec's data.image_size) resized here
    for d in (data, *(val_sets or {}).values()):
        ensure_local(d.images)
    size = cfg.data.image_size
    data = at_size(data, size)
    val_sets = {name: at_size(vs, size) for name, vs in (val_sets or {}).items()}
    resume = None
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            resume = torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=True)
    if tune.get_context().get_trial_id() in skip_trials:
        _replay_finished(resume["epoch"] if resume else 0, scoring, mode)
        return

    placement = _placement(cfg.train.device)

    def on_epoch(metrics: Dict[str, Any], state_fn) -> None:
        state = state_fn()
        with _writing_checkpoint(state["epoch"]), tempfile.TemporaryDirectory(prefix="dfsweep-ckpt-") as d:
            _save_state(state, Path(d) / STATE_FILE)
            # Tune copies the checkpoint into the experiment's storage inside report()
            tune.report({**_reportable(metrics), **scoring.report(state["history"], mode), **placement},
                        checkpoint=tune.Checkpoint.from_directory(d))

    fit(cfg, data, on_epoch=on_epoch, resume=resume, select=scoring, val_sets=val_sets,
        min_precision=min_precision if scoring.needs_min_precision() else None)
