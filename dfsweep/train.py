"""One training run: config -> per-epoch validation metrics. The sweep calls `fit` as a trial.

Data arrives decoded (uint8, N×H×W×3, shared or cached). The recipe, one idea per function: a batch source
(`batches.py`) yields augmented batches; `train_one_epoch` steps the model through them; `evaluate` scores the
validation split; `fit` composes them epoch by epoch, keeps the best epoch and hands out resumable state.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .augment import normalize
from .batches import Batch, EpochOrder, batch_source
from .bootstrap import intervals
from .config import Config, TrainConfig
from .data import DecodedSet, gather_rows, images_to_tensor, load_labelled, pixels_on, split_indices
from .data.layout import Pixels
from .losses import build_loss
from .metrics import score
from .models import create_model
from .objective import Scoring
from .metric_spec import parse_metric
from .runtime import configure_threads, cpu_has_bf16, pick_device, seed_everything
from .schedules import Schedule, build_schedule

__all__ = ["fit", "FitResult", "TrainingDiverged", "TrainStep", "Validation", "train_one_epoch", "evaluate",
           "validation_split", "predict_logits", "predict_scores", "images_to_tensor", "build_model",
           "build_optimizer", "compile_step", "train_autocast"]

EpochCallback = Callable[[Dict[str, Any], Callable[[], Dict[str, Any]]], None]


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class FitResult:
    history: List[Dict[str, Any]]
    best_epoch: int
    best_metrics: Dict[str, Any]
    best_state: Dict[str, torch.Tensor]
    threshold: float
    val_labels: Optional[np.ndarray] = None
    val_scores: Optional[np.ndarray] = None      # best epoch's validation probabilities
    val_set_scores: Dict[str, np.ndarray] = field(default_factory=dict)   # ... on each other validation set
    model: Optional[torch.nn.Module] = field(default=None, repr=False)


def validation_split(cfg: Config, data: DecodedSet) -> Tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): the seeded, stratified, group-aware split `fit` uses by default
    (`data.split_seed`, else `train.seed`)."""
    seed = cfg.data.split_seed if cfg.data.split_seed is not None else cfg.train.seed
    return split_indices(data.labels, data.groups, cfg.data.val_fraction, seed)


def build_model(cfg: Config, device: torch.device) -> torch.nn.Module:
    model = create_model(cfg.model.name, input=cfg.model.input, **dict(cfg.model.params))
    model = model.to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def build_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW (`train.lr`, `train.weight_decay`) as one fused kernel over all parameters: the same update rule,
    faster than the default per-parameter loop on CPU, and one launch instead of several per parameter on CUDA."""
    params = list(model.parameters())
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay, fused=fused or None)


def compile_step(model: torch.nn.Module, t: TrainConfig, device: torch.device) -> Tuple[torch.nn.Module, Callable[[], None]]:
    """(the module a training step calls, what to call before each step) for `train.compile`/`compile_mode`.

    With CUDA graphs (mode "reduce-overhead" or "max-autotune" on a GPU) each step starts with
    `cudagraph_mark_step_begin`: the graphs' outputs live in memory the next replay reuses, and the mark
    tells torch that the previous step's outputs are no longer read."""
    if not t.compile:
        return model, _no_op
    compiled = torch.compile(model, mode=t.compile_mode)
    if device.type == "cuda" and t.compile_mode in ("reduce-overhead", "max-autotune"):
        return compiled, torch.compiler.cudagraph_mark_step_begin
    return compiled, _no_op


def _no_op() -> None:
    return None


def train_autocast(cfg: Config, device: torch.device):
    """Mixed precision when `train.amp`: bfloat16 (float16 on GPUs without it) on CUDA; bfloat16 on CPUs with
    native bf16 units (AMX / AVX512-BF16), where it is faster than float32 (elsewhere it is not, so float32).
    Weights, optimiser state and the loss stay float32."""
    if device.type == "cuda":
        enabled = cfg.train.amp
        dtype = torch.bfloat16 if enabled and torch.cuda.is_bf16_supported() else torch.float16
    else:
        enabled, dtype = cfg.train.amp and cpu_has_bf16(), torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: Pixels, cfg: Config, device: torch.device,
                   tta_flip: bool = False, index: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Logits (float32, CPU) for uint8 N×3×H×W images (eval transform: normalisation only); with `index`,
    for images[index], gathered batch by batch (no copy of the whole subset)."""
    model.eval()
    out = []
    n = len(images) if index is None else len(index)
    if index is not None and images.is_cuda:
        index = index.to(images.device)      # one copy, not one per batch that may wait for the GPU's queue
    for start in range(0, n, cfg.train.eval_batch_size):
        sl = slice(start, start + cfg.train.eval_batch_size)
        xb = images[sl] if index is None else gather_rows(images, index[sl])
        xb = normalize(xb.to(device, non_blocking=True), cfg.train.channels_last)
        with train_autocast(cfg, device):
            logits = model(xb).float().reshape(-1)
            if tta_flip:
                logits = (logits + model(torch.flip(xb, dims=[3])).float().reshape(-1)) / 2
        out.append(logits)                   # read back once at the end: a read per batch waits for the GPU
    return torch.cat(out).cpu() if out else torch.zeros(0)


def predict_scores(model: torch.nn.Module, images: Pixels, cfg: Config, device: torch.device,
                   tta_flip: bool = False, index: Optional[torch.Tensor] = None) -> np.ndarray:
    """Fake probabilities in [0, 1]."""
    return torch.sigmoid(predict_logits(model, images, cfg, device, tta_flip, index)).numpy()


@dataclass
class TrainStep:
    """One optimisation step on a batch: forward in the run's precision, loss, backward, AdamW, LR schedule."""
    model: torch.nn.Module              # what state dicts and evaluation use
    forward: torch.nn.Module            # what the step calls: `model`, or a compiled module sharing its weights
    begin: Callable[[], None]           # called before each step (`compile_step`)
    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    cfg: Config
    device: torch.device

    def __call__(self, batch: Batch) -> torch.Tensor:
        x = batch.x.contiguous(memory_format=torch.channels_last) if self.cfg.train.channels_last else batch.x
        self.begin()
        with train_autocast(self.cfg, self.device):
            logits = self.forward(x)
        loss = self.criterion(logits.float(), batch.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.after_batch()
        return loss.detach()


def train_one_epoch(step: TrainStep, batches: Iterable[Batch], epoch: int) -> Dict[str, Any]:
    """One pass over an epoch's batches: the mean training loss, the LR and the throughput."""
    t0 = time.perf_counter()
    step.model.train()
    # summed on the device and read once per epoch: a read per step would make the CPU wait for the GPU
    # before queueing the backward pass (a NaN/inf anywhere makes the sum non-finite)
    total, count = torch.zeros((), device=step.device), 0
    for batch in batches:
        total += step(batch) * len(batch.y)
        count += len(batch.y)
    train_loss = total.item() / max(count, 1)
    if not math.isfinite(train_loss):
        raise TrainingDiverged(f"training loss became {train_loss} in epoch {epoch}")
    seconds = time.perf_counter() - t0
    return {"epoch": epoch, "train_loss": train_loss, "lr": step.optimizer.param_groups[0]["lr"],
            "train_time_s": seconds, "train_images_per_s": count / max(seconds, 1e-9)}


@dataclass
class Validation:
    """The validation split: rows of the decoded set, their labels and groups (for the intervals)."""
    index: torch.Tensor
    labels: np.ndarray
    groups: Optional[np.ndarray]

    @classmethod
    def of(cls, data: DecodedSet, val_idx: Sequence[int] | None) -> "Validation":
        idx = np.asarray(val_idx if val_idx is not None else [], dtype=np.int64)
        return cls(torch.from_numpy(idx), data.labels[idx], None if data.groups is None else data.groups[idx])


def evaluate(model: torch.nn.Module, criterion: torch.nn.Module, images: Pixels, val: Validation, cfg: Config,
             device: torch.device, min_precision: float | None = None) -> Tuple[Dict[str, Any], np.ndarray]:
    """(metrics, fake probabilities) on the validation split: loss, AUC, AP, and F1/recall/precision at the
    F1-optimal threshold (the best above `min_precision` when given), with 95% intervals resampled by group."""
    logits = predict_logits(model, images, cfg, device, index=val.index)
    scores = torch.sigmoid(logits).numpy()
    with torch.no_grad():
        val_loss = criterion(logits.to(device), torch.from_numpy(val.labels).to(device)).item()
    metrics: Dict[str, Any] = {"val_loss": val_loss}
    metrics.update(score(val.labels, scores, min_precision=min_precision))
    metrics.update(intervals(val.labels, scores, val.groups))
    return metrics, scores


_COUNTS = ("tn", "fp", "fn", "tp")


@dataclass
class OtherSet:
    """A labelled set scored beside the in-domain split (`data.val_sets`, a held-out domain)."""
    name: str
    images: Pixels
    val: Validation

    @classmethod
    def of(cls, name: str, data: DecodedSet, device: torch.device) -> "OtherSet":
        return cls(name, pixels_on(images_to_tensor(data.images), device), Validation.of(data, np.arange(len(data))))

    def evaluate(self, model, criterion, cfg: Config, device: torch.device,
                 min_precision: float | None) -> Tuple[Dict[str, Any], np.ndarray]:
        """(its metrics as `auc@NAME`, ...: each at this set's own F1-optimal threshold, as on the in-domain
        split; its fake probabilities)."""
        m, scores = evaluate(model, criterion, self.images, self.val, cfg, device, min_precision)
        return {f"{k}@{self.name}": v for k, v in m.items() if k not in _COUNTS}, scores


@dataclass
class EpochScores:
    """What is scored after each epoch: the in-domain split, then every other set, then the sweep's composite
    metrics (which read both)."""
    val: Validation
    others: List[OtherSet]
    scoring: Scoring
    min_precision: float | None

    @classmethod
    def of(cls, val: Validation, val_sets: Optional[Dict[str, DecodedSet]], select: str | Scoring,
           min_precision: float | None, device: torch.device) -> "EpochScores":
        """The other sets are moved to the device once; a run without a validation split scores none."""
        others = [OtherSet.of(name, vs, device) for name, vs in (val_sets or {}).items()] if len(val.index) else []
        scoring = select if isinstance(select, Scoring) else Scoring(parse_metric(select, "select"))
        return cls(val, others, scoring, min_precision)

    def __call__(self, model, criterion, images: Pixels, cfg: Config, device: torch.device
                 ) -> Tuple[Dict[str, Any], Optional[np.ndarray], Dict[str, np.ndarray]]:
        """(metrics, in-domain probabilities, {set: probabilities}); nothing without a validation split."""
        if not len(self.val.index):
            return {}, None, {}
        metrics, scores = evaluate(model, criterion, images, self.val, cfg, device, self.min_precision)
        set_scores: Dict[str, np.ndarray] = {}
        for other in self.others:
            other_metrics, set_scores[other.name] = other.evaluate(model, criterion, cfg, device, self.min_precision)
            metrics.update(other_metrics)
        self.scoring.derive(metrics)
        return metrics, scores, set_scores


@dataclass
class _Record:
    """The epochs so far and the best one: highest `select` with validation, else the last."""
    history: List[Dict[str, Any]] = field(default_factory=list)
    best: Dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "value": -math.inf, "metrics": {},
                                                          "state": None, "scores": None, "set_scores": {}})

    def add(self, metrics: Dict[str, Any], model: torch.nn.Module, scores: Optional[np.ndarray], select: str,
            set_scores: Optional[Dict[str, np.ndarray]] = None) -> None:
        self.history.append(metrics)
        value = metrics.get(select, math.nan) if scores is not None else metrics["epoch"]
        if self.best["state"] is None or (not math.isnan(value) and value > self.best["value"]):
            self.best = {"epoch": metrics["epoch"], "value": value, "metrics": dict(metrics),
                         "state": copy.deepcopy(model.state_dict()), "scores": scores,
                         "set_scores": dict(set_scores or {})}

    def result(self, model: torch.nn.Module, val: Validation) -> FitResult:
        best = self.best
        return FitResult(history=self.history, best_epoch=best["epoch"], best_metrics=best["metrics"],
                         best_state={k: v.cpu() for k, v in best["state"].items()},
                         threshold=float(best["metrics"].get("threshold", 0.5)),
                         val_labels=val.labels if len(val.index) else None, val_scores=best["scores"], model=model,
                         val_set_scores=dict(best.get("set_scores") or {}))


def _resumable(step: TrainStep, record: _Record, order: EpochOrder) -> Dict[str, Any]:
    """Everything `resume` needs; tensors and plain Python only, so weights_only loading accepts it."""
    scores = record.best["scores"]
    return {
        "model": step.model.state_dict(), "optimizer": step.optimizer.state_dict(),
        "scheduler": step.schedule.state_dict(),
        "history": list(record.history), "epoch": record.history[-1]["epoch"] if record.history else 0,
        "best": {**record.best, "scores": None if scores is None else torch.from_numpy(np.asarray(scores)),
                 "set_scores": {k: torch.from_numpy(np.asarray(v)) for k, v in record.best["set_scores"].items()}},
        "torch_rng": torch.get_rng_state(), **order.state_dict(),
    }


def _restore(resume: Dict[str, Any], step: TrainStep, order: EpochOrder) -> _Record:
    """Weights, optimiser, schedule and RNG streams as `_resumable` saved them; the record so far."""
    step.model.load_state_dict(resume["model"])
    step.optimizer.load_state_dict(resume["optimizer"])
    step.schedule.load_state_dict(resume["scheduler"])
    torch.set_rng_state(resume["torch_rng"])
    order.load_state_dict(resume)
    best = dict(resume["best"])
    if isinstance(best.get("scores"), torch.Tensor):
        best["scores"] = best["scores"].numpy()
    best["set_scores"] = {k: v.numpy() for k, v in (best.get("set_scores") or {}).items()}
    return _Record(list(resume["history"]), best)


def fit(cfg: Config, data: DecodedSet | None = None, *, train_idx: Sequence[int] | None = None,
        val_idx: Sequence[int] | None = None, on_epoch: EpochCallback | None = None,
        resume: Dict[str, Any] | None = None, init_state: Dict[str, torch.Tensor] | None = None,
        select: str | Scoring = "f1", min_precision: float | None = None,
        val_sets: Dict[str, DecodedSet] | None = None) -> FitResult:
    """Train `cfg` and score validation every epoch.

    `train_idx`/`val_idx` default to the seeded stratified, group-aware split of `data`; an empty `val_idx`
    trains without validation (finalize's stage 2). `on_epoch(metrics, state_fn)` sees every epoch;
    `state_fn()` returns a resumable state (pass it back as `resume`). `init_state` starts from given weights.
    The best epoch is kept by `select` (a metric name or a sweep's Scoring; higher is better); without
    validation, the last epoch. `val_sets` are scored every epoch beside the split, as `auc@NAME`, ...
    """
    t = cfg.train
    configure_threads(t.threads)
    seed_everything(t.seed)
    device = pick_device(t.device)

    # 1. data and split; the decoded set stays shared (on a GPU it moves there once, when it fits)
    if data is None:
        data = load_labelled(cfg.data)
    if train_idx is None:
        train_idx, val_idx = validation_split(cfg, data)
    train_idx = np.asarray(train_idx, dtype=np.int64)
    val = Validation.of(data, val_idx)
    images = pixels_on(images_to_tensor(data.images), device)
    score_epoch = EpochScores.of(val, val_sets, select, min_precision, device)

    # 2. model, loss, optimiser
    model = build_model(cfg, device)
    if init_state is not None:
        model.load_state_dict(init_state)
    n_fake = int(data.labels[train_idx].sum())
    criterion = build_loss(cfg.loss, len(train_idx) - n_fake, n_fake).to(device)
    forward, begin = compile_step(model, t, device)
    optimizer = build_optimizer(cfg, model)

    # 3. batches from a source chosen once (this process or loader workers); the LR schedule counts their steps
    source = batch_source(cfg, images, data.labels, train_idx, device)
    schedule = build_schedule(optimizer, t, source.order.steps)
    step = TrainStep(model, forward, begin, criterion, optimizer, schedule, cfg, device)

    # 4. a resumed run continues after its last finished epoch, its RNG streams where they were
    record = _Record() if resume is None else _restore(resume, step, source.order)
    first_epoch = 1 if resume is None else int(resume["epoch"]) + 1

    # 5. per epoch: train, validate, step the schedule, keep the best, report
    for epoch in range(first_epoch, t.epochs + 1):
        t0 = time.perf_counter()
        metrics = train_one_epoch(step, source.epoch(epoch), epoch)
        val_metrics, scores, set_scores = score_epoch(model, criterion, images, cfg, device)
        metrics.update(val_metrics)
        schedule.after_epoch(metrics.get("val_loss"))
        metrics["epoch_time_s"] = time.perf_counter() - t0
        record.add(metrics, model, scores, score_epoch.scoring.key, set_scores)
        if on_epoch is not None:
            on_epoch(metrics, partial(_resumable, step, record, source.order))
    return record.result(model, val)
