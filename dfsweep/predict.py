"""Scoring with a saved checkpoint: load it safely, predict image files or folders, evaluate a labelled set."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from .bootstrap import intervals
from .checkpoint import atomic_write_bytes, load_checkpoint
from .config import Config, config_from_dict
from .data import (IMAGE_EXTENSIONS, DecodedSet, decode_images, images_to_tensor, list_labelled, list_unlabelled,
                   load_labelled)
from .errors import DfsweepError
from .metrics import score
from .model_uri import downloaded_checkpoint, is_model_uri
from .models import create_model
from .runtime import configure_threads, pick_device
from .train import predict_scores

__all__ = ["LoadedModel", "load_model", "score_images", "predict_paths", "evaluate_checkpoint", "write_csv"]


class LoadedModel:
    def __init__(self, model: torch.nn.Module, cfg: Config, threshold: float, ckpt: Dict[str, Any], device):
        self.model, self.cfg, self.threshold, self.ckpt, self.device = model, cfg, threshold, ckpt, device


def load_model(path, device: str = "auto") -> LoadedModel:
    """A dfsweep checkpoint -> model in eval mode, its config and threshold (torch.load weights_only=True).
    `path` may also be an MLflow model URI (models:/NAME@champion) in the store `dfsweep ui` shows."""
    if is_model_uri(path):
        from .tracking import default_tracking_uri
        with downloaded_checkpoint(str(path), default_tracking_uri(Path("sweeps"))) as local:
            return load_model(local, device)
    ckpt = load_checkpoint(path)
    try:
        cfg = config_from_dict(ckpt["config"])
    except DfsweepError as e:
        raise DfsweepError(f"{path}: checkpoint config is not valid: {e}") from None
    configure_threads(cfg.train.threads)
    dev = pick_device(device)
    model = create_model(cfg.model.name, input=cfg.model.input, **dict(cfg.model.params))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise DfsweepError(f"{path}: weights do not fit model {cfg.model.name!r} ({str(e).splitlines()[0][:120]})") from None
    model = model.to(dev).eval()
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return LoadedModel(model, cfg, float(ckpt["threshold"]), ckpt, dev)


def score_images(lm: LoadedModel, images: np.ndarray, tta_flip: bool = False) -> np.ndarray:
    """Fake probabilities for decoded uint8 N×H×W×3 images."""
    return predict_scores(lm.model, images_to_tensor(images), lm.cfg, lm.device, tta_flip=tta_flip)


def _is_labelled(folder: Path, cfg) -> bool:
    return (folder / cfg.labels_csv).is_file() or (folder / "real").is_dir() or (folder / "fake").is_dir()


def _inputs(paths: Sequence[str], cfg) -> Tuple[List[Path], List[str], List[Optional[int]]]:
    """Files to score, their ids, and their known labels (None where the input carries none): a folder of
    images, a labelled set as evaluate takes it (real/ + fake/, or images + labels.csv), or image files."""
    files: List[Path] = []
    labels: List[Optional[int]] = []
    for p in paths:
        q = Path(p).expanduser().absolute()
        if q.is_dir() and _is_labelled(q, cfg):
            listing = list_labelled(q, cfg)
            files += listing.paths
            labels += [int(v) for v in listing.labels]
        elif q.is_dir():
            found = list_unlabelled(q).paths
            files += found
            labels += [None] * len(found)
        elif q.is_file():
            if q.suffix.lower() not in IMAGE_EXTENSIONS:
                raise DfsweepError(f"{p}: not an image file ({', '.join(IMAGE_EXTENSIONS)})")
            files.append(q)
            labels.append(None)
        else:
            raise DfsweepError(f"{p}: not found")
    if not files:
        raise DfsweepError("no images to predict")
    ids = [f.stem for f in files]
    seen, dups = set(), []
    for i in ids:
        if i in seen:
            dups.append(i)
        seen.add(i)
    if dups:
        raise DfsweepError(f"duplicate image ids (file stems): {', '.join(sorted(set(dups))[:5])}")
    return files, ids, labels


def predict_paths(model_path, paths: Sequence[str], tta_flip: bool = False) -> pd.DataFrame:
    """id, probability, label (1 = fake at the checkpoint's threshold) for image files and folders; with a
    `true_label` column (0 real, 1 fake) where an input is a labelled set."""
    lm = load_model(model_path)
    d = lm.cfg.data
    files, ids, truth = _inputs(paths, d)
    images, kept = decode_images(files, d.image_size, d.cache_dir, d.on_bad_image)
    ids = [i for i, k in zip(ids, kept) if k]
    truth = [t for t, k in zip(truth, kept) if k]
    probs = score_images(lm, images, tta_flip)
    df = pd.DataFrame({"id": ids, "probability": probs, "label": (probs >= lm.threshold).astype(int)})
    if any(t is not None for t in truth):
        df["true_label"] = pd.array(truth, dtype="Int64")
    return df


def evaluate_checkpoint(model_path, data_path, tta_flip: bool = False) -> Dict[str, Any]:
    """AUC and AP with their 95% bootstrap intervals (resampled by group when the set has groups) and, at the
    checkpoint's threshold, F1 / fake-recall / precision / confusion matrix."""
    lm = load_model(model_path)
    data: DecodedSet = load_labelled(lm.cfg.data, data_path)
    probs = score_images(lm, data.images, tta_flip)
    m = score(data.labels, probs, threshold=lm.threshold)
    ci = intervals(data.labels, probs, data.groups)
    counts = data.class_counts()
    return {"model": str(model_path), "data": str(data_path), "n": int(len(data)), "n_real": int(counts[0]),
            "n_fake": int(counts[1]), "auc": m["auc"], "auc_lo": ci["auc_lo"], "auc_hi": ci["auc_hi"],
            "ap": m["ap"], "ap_lo": ci["ap_lo"], "ap_hi": ci["ap_hi"], "threshold": m["threshold"], "f1": m["f1"],
            "recall": m["recall"], "precision": m["precision"],
            "confusion": {"tn": m["tn"], "fp": m["fp"], "fn": m["fn"], "tp": m["tp"]}}


def write_csv(df: pd.DataFrame, path) -> Path:
    """Atomically: a crash mid-write leaves the old file or none, never a partial one."""
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    data = buf.getvalue().encode()
    atomic_write_bytes(Path(path), lambda f: f.write(data))
    return Path(path)
