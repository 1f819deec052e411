"""`models:/NAME@champion` (or `runs:/...`) where a checkpoint path is taken: the dfsweep checkpoint inside
the MLflow model that finalize logs (dfsweep.serving), fetched with MLflow's public download API."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import DfsweepError

__all__ = ["CHECKPOINT", "is_model_uri", "downloaded_checkpoint", "global_store"]

CHECKPOINT = "checkpoint"       # the model's artifact key for the checkpoint it wraps
_SCHEMES = ("models:/", "runs:/")


def is_model_uri(path: Any) -> bool:
    return str(path).startswith(_SCHEMES)


@contextlib.contextmanager
def global_store(uri: str) -> Iterator[None]:
    """MLflow's global tracking URI set to `uri`, then put back: log_model and the registry's look-up of a models:/
    URI read it, not the URI a client or call was given. Setting it sets MLFLOW_TRACKING_URI too."""
    import mlflow
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)     # None: neither set, as before


@contextlib.contextmanager
def downloaded_checkpoint(uri: str, tracking_uri: str) -> Iterator[Path]:
    """The checkpoint file of the MLflow model at `uri`, downloaded into a temporary folder removed after."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model
    with tempfile.TemporaryDirectory(prefix="dfsweep-model-") as tmp:
        try:
            with global_store(tracking_uri):
                local = download_artifacts(artifact_uri=uri, dst_path=tmp)
            flavor = Model.load(local).flavors.get("python_function", {})
        except (MlflowException, OSError) as e:
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise DfsweepError(f"{uri}: cannot load it from {tracking_uri}: {msg}") from None
        rel = flavor.get("artifacts", {}).get(CHECKPOINT, {}).get("path")
        if rel is None:
            raise DfsweepError(f"{uri}: not a dfsweep model (no {CHECKPOINT!r} artifact)")
        yield Path(local) / rel
