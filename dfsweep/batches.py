"""Where a run's training batches come from: one `Batch` per step, augmented, on the training device.

The source is chosen once per run (`batch_source`):
* `InProcess` (the default): this process augments each batch on the training device, from an epoch's
  augmentation planned in one pass; the crop reads each box straight from the shared decoded set by row.
* `InWorkers` (CPU training with `train.num_workers`): DataLoader workers gather and augment the next
  batches while the model trains.
Batch b of an epoch is augmented from its own generator (`batch_generator(seed, epoch, b)`), so both give the
same batches, and a resumed run the batches an uninterrupted one would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .augment import Augmenter
from .config import Config
from .data import balanced_sampler, gather_rows
from .data.layout import Pixels

__all__ = ["Batch", "batch_generator", "EpochOrder", "BatchSource", "InProcess", "InWorkers",
           "batch_source"]


@dataclass
class Batch:
    x: torch.Tensor          # augmented, ImageNet-normalised float N×3×H×W on the training device
    y: torch.Tensor          # float labels (1 = fake) on the training device


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """The augmentation RNG of one batch: a function of (seed, epoch, batch number) only."""
    state = np.random.SeedSequence([int(seed) % (2**32), epoch, batch]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


class EpochOrder:
    """Which rows of the decoded set each training batch of an epoch takes: 50/50 classes from the weighted
    sampler (`data.balanced_sampler`), else a seeded permutation of the split; whole batches only, unless the
    split is one batch or less."""

    def __init__(self, train_idx: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, balanced: bool):
        self.train_idx = torch.from_numpy(train_idx)
        self.batch_size = batch_size
        self.steps = max(1, len(train_idx) // batch_size)
        self.gen = torch.Generator().manual_seed(seed)
        self.sampler = balanced_sampler(labels[train_idx], seed=seed) if balanced else None

    def batches(self, device: torch.device) -> List[torch.Tensor]:
        """The next epoch's batches of rows, on `device`: a GPU's in one copy (a batch's own copy from
        pageable memory may wait for the GPU's queue)."""
        if self.sampler is not None:
            order = torch.as_tensor(list(self.sampler))
        else:
            order = torch.randperm(len(self.train_idx), generator=self.gen)
        rows = self.train_idx[order]
        if device.type == "cuda":
            rows = rows.to(device)
        return list(torch.split(rows[:self.steps * self.batch_size], self.batch_size))

    def state_dict(self) -> Dict[str, Any]:
        return {"loader_rng": self.gen.get_state(),
                "sampler_rng": self.sampler.generator.get_state() if self.sampler is not None else None}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.gen.set_state(state["loader_rng"])
        if self.sampler is not None:
            self.sampler.generator.set_state(state["sampler_rng"])


@dataclass
class BatchSource:
    images: Pixels               # the whole decoded set, uint8 N×3×H×W (shared or cached, never copied whole)
    labels: torch.Tensor         # the whole set's float labels, on the images' device
    order: EpochOrder
    augment: Augmenter
    seed: int
    device: torch.device         # the training device
    num_workers: int

    def epoch(self, epoch: int) -> Iterator[Batch]:
        raise NotImplementedError


class InProcess(BatchSource):
    """This process augments each batch on the training device; the epoch's random choices are planned in
    one pass. Pixels come from the set where it is on the training device (the crop reads its boxes there by
    row, or the batch is read from the cache); else each batch is gathered on the host (in loader workers with
    `train.num_workers`) and copied."""

    def epoch(self, epoch: int) -> Iterator[Batch]:
        batches = self.order.batches(self.images.device)
        gens = [batch_generator(self.seed, epoch, b) for b in range(len(batches))]
        plans = self.augment.plan(gens, len(batches[0]), self.images.shape[-2:], self.device)
        for plan, (pixels, rows, labels) in zip(plans, self._pixels(batches)):
            yield Batch(*self.augment(pixels, labels, plan, rows=rows))

    def _pixels(self, batches: List[torch.Tensor]) -> Iterator[Tuple[torch.Tensor, Any, torch.Tensor]]:
        """(images, rows, labels) per batch on the training device: the whole set and the batch's rows, or the
        gathered batch and None."""
        if self.images.device.type == self.device.type:
            for rows in batches:
                yield self.images, rows, self.labels[rows]
            return
        gathered = _Gathered(self.images, self.labels, batches)
        loader = (DataLoader(gathered, batch_size=None, num_workers=self.num_workers,
                             pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(self.seed))
                  if self.num_workers > 0 else (gathered[b] for b in range(len(gathered))))
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), None, y.to(self.device, non_blocking=True)


class InWorkers(BatchSource):
    """CPU training with `train.num_workers`: loader workers gather and augment the next batches while this
    process trains."""

    def epoch(self, epoch: int) -> Iterator[Batch]:
        augmented = _Augmented(self.images, self.labels, self.order.batches(self.images.device), self.augment,
                               self.seed, epoch)
        # its own generator: a loader draws worker seeds from the global RNG otherwise, shifting dropout
        loader = DataLoader(augmented, batch_size=None, num_workers=self.num_workers,
                            generator=torch.Generator().manual_seed(self.seed))
        for x, y in loader:
            yield Batch(x, y)


def batch_source(cfg: Config, images: Pixels, labels: np.ndarray, train_idx: np.ndarray,
                 device: torch.device) -> BatchSource:
    """The run's batches over `train_idx` (rows of `images`, the whole decoded set; `labels` the whole set's)."""
    t = cfg.train
    order = EpochOrder(train_idx, labels, t.batch_size, t.seed, cfg.data.balanced_sampler)
    augment = Augmenter(cfg.augment, channels_last=t.channels_last)
    labels_f = torch.from_numpy(labels.astype(np.float32)).to(images.device)
    source = InWorkers if t.num_workers > 0 and device.type == "cpu" else InProcess
    return source(images, labels_f, order, augment, t.seed, device, t.num_workers)


class _Gathered(Dataset):
    """Item b = (pixels, labels) of batch b, gathered from the shared set."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batches: List[torch.Tensor]):
        self.images, self.labels, self.batches = images, labels, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> Tuple[torch.Tensor, torch.Tensor]:
        rows = self.batches[b]
        return gather_rows(self.images, rows), self.labels[rows]


class _Augmented(_Gathered):
    """Item b = batch b augmented from its own generator (a loader worker plans and applies it)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batches: List[torch.Tensor],
                 augment: Augmenter, seed: int, epoch: int):
        super().__init__(images, labels, batches)
        self.augment, self.seed, self.epoch = augment, seed, epoch

    def __getitem__(self, b: int) -> Tuple[torch.Tensor, torch.Tensor]:
        rows = self.batches[b]
        plan = self.augment.plan([batch_generator(self.seed, self.epoch, b)], len(rows), self.images.shape[-2:],
                                 self.images.device)[0]
        return self.augment(self.images, self.labels[rows], plan, rows=rows)
