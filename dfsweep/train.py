"""One training run: config -> per-epoch validation metrics. The sweep calls `fit` as a trial.

Data arrives decoded (uint8, N×H×W×3, shared or cached); this module only augments, trains and scores.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .augment import Augmenter, build_train_augment, normalize
from .bootstrap import intervals
from .config import Config, TrainConfig
from .data import DecodedSet, balanced_sampler, gather_rows, images_to_tensor, load_labelled, split_indices
from .losses import build_loss
from .metrics import score
from .models import create_model
from .runtime import configure_threads, cpu_has_bf16, pick_device, seed_everything
from .schedules import build_schedule

__all__ = ["fit", "FitResult", "TrainingDiverged", "validation_split", "predict_logits", "predict_scores", "images_to_tensor",
           "gather_rows", "build_model", "build_optimizer", "compile_step", "batch_generator", "train_autocast"]

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
    model: Optional[torch.nn.Module] = field(default=None, repr=False)


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """The augmentation RNG of one batch: a function of (seed, epoch, batch number) only, so a resumed run
    and a run with loader workers augment exactly like an uninterrupted in-process run."""
    state = np.random.SeedSequence([int(seed) % (2**32), epoch, batch]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


class _EpochBatches(Dataset):
    """Item b = training batch b of one epoch, gathered from the shared image array (never a copy of the
    whole set: the array stays in Ray's object store or the decoded cache) and, with `augment`, augmented.
    With `gather=False` an item is (b, rows, labels) and the training process augments straight from the
    shared array (the crop reads each box from its row, so the batch is never copied out first).

    Used directly in the training process, or through a DataLoader whose workers gather and augment the
    next batches while the model trains (CPU training with spare cores: `train.num_workers`)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batches: List[torch.Tensor], seed: int,
                 epoch: int, augment: Optional[Augmenter], gather: bool = True):
        self.images, self.labels, self.batches = images, labels, batches
        self.seed, self.epoch, self.augment, self.gather = seed, epoch, augment, gather

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int):
        idx = self.batches[b]
        if not self.gather:
            return b, idx, self.labels[idx]
        xb, yb = gather_rows(self.images, idx), self.labels[idx]
        if self.augment is not None:
            xb, yb = self.augment(xb, yb, batch_generator(self.seed, self.epoch, b))
        return b, xb, yb


def validation_split(cfg: Config, data: DecodedSet) -> Tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): the seeded, stratified, group-aware split `fit` uses by default
    (`data.split_seed`, else `train.seed`)."""
    seed = cfg.data.split_seed if cfg.data.split_seed is not None else cfg.train.seed
    return split_indices(data.labels, data.groups, cfg.data.val_fraction, seed)


def _on_device(images: torch.Tensor, device: torch.device, share: float = 0.25) -> torch.Tensor:
    """On CUDA, the decoded uint8 set moves to the GPU once per run when it takes at most `share` of the
    free GPU memory (3000 faces at 128 px: 147 MB): batches are then gathered there, with no host-to-device
    copy per step. Otherwise (CPU, or a set too large) the shared host array is used as it is."""
    if device.type != "cuda":
        return images
    free, _ = torch.cuda.mem_get_info(device)
    if images.numel() * images.element_size() > share * free:
        return images
    return images.to(device)


def build_model(cfg: Config, device: torch.device) -> torch.nn.Module:
    model = create_model(cfg.model.name, input=cfg.model.input, **dict(cfg.model.params))
    model = model.to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def build_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW (`train.lr`, `train.weight_decay`) as one fused kernel over all parameters: on this project's
    CPU its step took 1.4 ms for DeepFakeNet against 2.9 ms for the default per-parameter loop (the
    default on CPU), and on CUDA it is one launch instead of several per parameter. Same update rule."""
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
    """Mixed precision when `train.amp`: bfloat16 (float16 on GPUs without it) on CUDA; bfloat16 on CPUs
    with native bf16 units (AMX / AVX512-BF16), where a DeepFakeNet step measured 1.55x (128 px) to 2x
    (224 px) faster than float32. Weights, optimiser state and the loss stay float32."""
    if device.type == "cuda":
        enabled = cfg.train.amp
        dtype = torch.bfloat16 if enabled and torch.cuda.is_bf16_supported() else torch.float16
    else:
        enabled, dtype = cfg.train.amp and cpu_has_bf16(), torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, cfg: Config, device: torch.device,
                   tta_flip: bool = False, index: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Logits (float32, CPU) for uint8 N×3×H×W images (eval transform: normalisation only); with `index`,
    for images[index], gathered batch by batch (no copy of the whole subset)."""
    model.eval()
    out = []
    n = len(images) if index is None else len(index)
    if index is not None and images.is_cuda:
        index = index.to(images.device)      # one copy, not one per batch (see `plan_crops` on why)
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


def predict_scores(model: torch.nn.Module, images: torch.Tensor, cfg: Config, device: torch.device,
                   tta_flip: bool = False, index: Optional[torch.Tensor] = None) -> np.ndarray:
    """Fake probabilities in [0, 1]."""
    return torch.sigmoid(predict_logits(model, images, cfg, device, tta_flip, index)).numpy()


def fit(cfg: Config, data: DecodedSet | None = None, *, train_idx: Sequence[int] | None = None,
        val_idx: Sequence[int] | None = None, on_epoch: EpochCallback | None = None,
        resume: Dict[str, Any] | None = None, init_state: Dict[str, torch.Tensor] | None = None,
        select: str = "f1", min_precision: float | None = None) -> FitResult:
    """Train `cfg` and score validation every epoch.

    `train_idx`/`val_idx` default to the seeded stratified, group-aware split of `data`; an empty `val_idx`
    trains without validation (finalize's stage 2). `on_epoch(metrics, state_fn)` sees every epoch;
    `state_fn()` returns a resumable state (pass it back as `resume`). `init_state` starts from given weights.
    The best epoch is kept by `select` (higher is better); without validation, the last epoch.
    """
    t = cfg.train
    configure_threads(t.threads)
    seed_everything(t.seed)
    device = pick_device(t.device)

    # 1. data and split
    if data is None:
        data = load_labelled(cfg.data)
    if train_idx is None:
        train_idx, val_idx = validation_split(cfg, data)
    train_idx = np.asarray(train_idx, dtype=np.int64)
    val_idx = np.asarray(val_idx if val_idx is not None else [], dtype=np.int64)
    images = _on_device(images_to_tensor(data.images), device)
    y_train = data.labels[train_idx]
    y_val = data.labels[val_idx]
    g_val = None if data.groups is None else data.groups[val_idx]
    n_fake = int(y_train.sum())
    n_real = len(y_train) - n_fake

    # 2. model, loss, optimiser, LR schedule
    model = build_model(cfg, device)
    if init_state is not None:
        model.load_state_dict(init_state)
    criterion = build_loss(cfg.loss, n_real, n_fake).to(device)
    # the compiled module shares `model`'s parameters; state dicts and evaluation use `model` itself
    step_model, begin_step = compile_step(model, t, device)
    optimizer = build_optimizer(cfg, model)

    # 3. batches: 50/50 classes from the weighted sampler; augmentation per batch on the training device,
    #    or in loader workers (CPU only, `train.num_workers`) so the next batches are ready in time
    augment = build_train_augment(cfg.augment, channels_last=t.channels_last)
    labels_f = torch.from_numpy(data.labels.astype(np.float32)).to(images.device)
    train_idx_t, val_idx_t = torch.from_numpy(train_idx), torch.from_numpy(val_idx)
    gen = torch.Generator().manual_seed(t.seed)
    sampler = balanced_sampler(y_train, seed=t.seed) if cfg.data.balanced_sampler else None
    drop_last = len(train_idx) > t.batch_size
    steps_per_epoch = len(train_idx) // t.batch_size if drop_last else max(1, math.ceil(len(train_idx) / t.batch_size))
    schedule = build_schedule(optimizer, t, steps_per_epoch)
    in_workers = t.num_workers > 0 and device.type == "cpu"
    # augmenting in this process from a set on the training device: straight from the shared array
    direct = not in_workers and images.device.type == device.type

    def epoch_batches(epoch: int) -> DataLoader | _EpochBatches:
        if sampler is not None:
            order = torch.as_tensor(list(sampler))
        else:
            order = torch.randperm(len(train_idx), generator=gen)
        rows = train_idx_t[order]
        if direct and images.is_cuda:
            # the epoch's rows in one copy: a batch's own copy from pageable memory may wait for the GPU
            rows = rows.to(images.device)
        batches = list(torch.split(rows[:steps_per_epoch * t.batch_size], t.batch_size))
        ds = _EpochBatches(images, labels_f, batches, t.seed, epoch, augment if in_workers else None,
                           gather=not direct)
        if t.num_workers == 0 or images.is_cuda:      # a set on the GPU is gathered there, not in workers
            return ds
        # its own generator: a loader draws worker seeds from the global RNG otherwise, shifting dropout
        return DataLoader(ds, batch_size=None, num_workers=t.num_workers, pin_memory=device.type == "cuda",
                          generator=torch.Generator().manual_seed(t.seed))

    history: List[Dict[str, Any]] = []
    best: Dict[str, Any] = {"epoch": 0, "value": -math.inf, "metrics": {}, "state": None, "scores": None}
    start_epoch = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        schedule.load_state_dict(resume["scheduler"])
        history = list(resume["history"])
        best = dict(resume["best"])
        if isinstance(best.get("scores"), torch.Tensor):
            best["scores"] = best["scores"].numpy()
        start_epoch = int(resume["epoch"]) + 1
        torch.set_rng_state(resume["torch_rng"])
        gen.set_state(resume["loader_rng"])
        if sampler is not None:
            sampler.generator.set_state(resume["sampler_rng"])

    def state_fn() -> Dict[str, Any]:
        """Everything `resume` needs; tensors and plain Python only, so weights_only loading accepts it."""
        scores = best["scores"]
        return {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
            "history": list(history), "epoch": history[-1]["epoch"] if history else 0,
            "best": {**best, "scores": None if scores is None else torch.from_numpy(np.asarray(scores))},
            "torch_rng": torch.get_rng_state(), "loader_rng": gen.get_state(),
            "sampler_rng": sampler.generator.get_state() if sampler is not None else None,
        }

    for epoch in range(start_epoch, t.epochs + 1):
        # 4. one epoch of training
        t0 = time.perf_counter()
        model.train()
        # the loss is summed on the device and read once per epoch: a read per step would make the CPU
        # wait for the GPU before queueing the backward pass (a NaN/inf anywhere makes the sum non-finite)
        total, count = torch.zeros((), device=device), 0
        batches = epoch_batches(epoch)
        # the epoch's augmentation parameters in one vectorised pass (None: each batch draws its own, as
        # loader workers and uint8 ops do, without making the epoch's generators here first); the same
        # numbers either way, each batch's from its own generator
        plan = None if in_workers or augment.uint8_stage else augment.plan(
            [batch_generator(t.seed, epoch, b) for b in range(steps_per_epoch)],
            t.batch_size if drop_last else len(train_idx), images.shape[-2:], device)
        for b, xb, yb in batches:
            if in_workers:                           # augmented in the loader's workers
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            else:
                how = {"gen": batch_generator(t.seed, epoch, b)} if plan is None else {"planned": plan[b]}
                if direct:                           # xb holds the batch's rows of `images`
                    xb, yb = augment(images, yb, rows=xb, **how)
                else:
                    xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                    xb, yb = augment(xb, yb, **how)
            if t.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            begin_step()
            with train_autocast(cfg, device):
                logits = step_model(xb)
            loss = criterion(logits.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.after_batch()
            total += loss.detach() * len(yb)
            count += len(yb)
        train_loss = total.item() / max(count, 1)
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"training loss became {train_loss} in epoch {epoch}")
        train_time = time.perf_counter() - t0
        metrics: Dict[str, Any] = {"epoch": epoch, "train_loss": train_loss,
                                   "lr": optimizer.param_groups[0]["lr"], "train_time_s": train_time,
                                   "train_images_per_s": count / max(train_time, 1e-9)}

        # 5. validation: loss, AUC, AP, and F1/recall/precision at the F1-optimal threshold
        scores = None
        if len(val_idx):
            val_logits = predict_logits(model, images, cfg, device, index=val_idx_t)
            scores = torch.sigmoid(val_logits).numpy()
            with torch.no_grad():
                val_loss = criterion(val_logits.to(device), torch.from_numpy(y_val).to(device)).item()
            metrics["val_loss"] = val_loss
            metrics.update(score(y_val, scores, min_precision=min_precision))
            metrics.update(intervals(y_val, scores, g_val))      # 95%, resampled by group
        schedule.after_epoch(metrics.get("val_loss"))
        metrics["epoch_time_s"] = time.perf_counter() - t0
        history.append(metrics)

        value = metrics.get(select, math.nan) if len(val_idx) else epoch
        if best["state"] is None or (not math.isnan(value) and value > best["value"]):
            best = {"epoch": epoch, "value": value, "metrics": dict(metrics),
                    "state": copy.deepcopy(model.state_dict()), "scores": scores}
        if on_epoch is not None:
            on_epoch(metrics, state_fn)

    return FitResult(history=history, best_epoch=best["epoch"], best_metrics=best["metrics"],
                     best_state={k: v.cpu() for k, v in best["state"].items()},
                     threshold=float(best["metrics"].get("threshold", 0.5)),
                     val_labels=y_val if len(val_idx) else None, val_scores=best["scores"], model=model)
