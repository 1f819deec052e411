"""Scoring with a saved checkpoint: load it safely, predict image files or folders, evaluate a labelled set."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from .bootstrap import intervals
from .checkpoint import atomic_write_bytes, load_checkpoint
from .config import Config, config_from_dict
from .data import IMAGE_EXTENSIONS, DecodedSet, images_to_tensor, list_labelled, list_unlabelled, load_labelled
from .data.cache import report_bad
from .data.decode import cpu_count, decode_many
from .data.shards import shard_rows
from .errors import DfsweepError
from .metrics import score
from .model_uri import downloaded_checkpoint, is_model_uri
from .models import create_model
from .partial_csv import PartialCsv
from .runtime import configure_threads, pick_device
from .ticker import Ticker
from .train import predict_scores

__all__ = ["LoadedModel", "load_model", "score_images", "predict_chunks", "predict_paths", "predict_to_csv", "evaluate_checkpoint",
           "write_csv"]


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


def _chunks(lm: LoadedModel, files: List[Path], ids: List[str], truth: List[Optional[int]], start: int,
            tta_flip: bool) -> Iterator[Tuple[int, pd.DataFrame]]:
    """(files done, their predictions) a chunk at a time from file `start` on: each chunk decoded (threads, no
    cache: a folder is scored once), scored and dropped, so memory stays flat whatever the file count."""
    d = lm.cfg.data
    step = shard_rows(d.image_size, d.shard_mib)
    labelled = any(t is not None for t in truth)
    ticker = Ticker(len(files) - start, f"predicting {len(files) - start} images")
    for at in range(start, len(files), step):
        part = files[at:at + step]
        images, bad = decode_many(part, d.image_size, cpu_count())
        if bad:
            report_bad(part, bad, d.on_bad_image)
            keep = np.setdiff1d(np.arange(len(part)), list(bad))
            images = images[keep]
        else:
            keep = np.arange(len(part))
        probs = score_images(lm, images, tta_flip)
        chunk = pd.DataFrame({"id": [ids[at + i] for i in keep], "probability": probs,
                              "label": (probs >= lm.threshold).astype(int)})
        if labelled:
            chunk["true_label"] = pd.array([truth[at + i] for i in keep], dtype="Int64")
        ticker.tick(len(part))
        yield at + len(part), chunk
    ticker.close()


def predict_chunks(model_path, paths: Sequence[str], tta_flip: bool = False) -> Iterator[pd.DataFrame]:
    """id, probability, label (1 = fake at the checkpoint's threshold) for image files and folders, a chunk of
    rows at a time; with a `true_label` column (0 real, 1 fake) where an input is a labelled set."""
    lm = load_model(model_path)
    files, ids, truth = _inputs(paths, lm.cfg.data)
    for _, chunk in _chunks(lm, files, ids, truth, 0, tta_flip):
        yield chunk


def predict_paths(model_path, paths: Sequence[str], tta_flip: bool = False) -> pd.DataFrame:
    """`predict_chunks` as one frame."""
    return pd.concat(list(predict_chunks(model_path, paths, tta_flip)), ignore_index=True)


def predict_to_csv(model_path, paths: Sequence[str], out, tta_flip: bool = False, resume: bool = False,
                   restart: bool = False, echo=print) -> int:
    """Predictions for image files and folders written to `out` as they are made: into a hidden partial file
    beside it, renamed to `out` when complete, so `out` is never half-written. A killed run continues with
    `resume` from the last chunk written. Returns the rows written."""
    lm = load_model(model_path)
    files, ids, truth = _inputs(paths, lm.cfg.data)
    job = PartialCsv(Path(out), {"model": str(model_path), "tta": tta_flip, "files": _listing_digest(files)})
    start = job.open(resume, restart)
    if start:
        echo(f"resuming: {start} of {len(files)} images were scored before the interruption")
    for done, chunk in _chunks(lm, files, ids, truth, start, tta_flip):
        job.append(chunk, done)
    return job.finish()


def _listing_digest(files: List[Path]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for f in files:
        h.update(f"{f}\n".encode())
    return h.hexdigest()


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
