"""Learning-rate schedules by name (`train.lr_schedule`; the function name is the YAML value).

Each wraps a torch scheduler behind two hooks, so `fit` steps every schedule the same way and a resumed run
continues any of them from its state dict:
* `plateau` (the recipe): ReduceLROnPlateau on the validation loss, once per epoch (`train.plateau_*`);
* `cosine`: cosine decay from `train.lr` to 1% of it over all the run's batches;
* `onecycle`: OneCycleLR — warm-up to `train.lr` over the first 30% of the batches, then decay.
"""
from __future__ import annotations

from typing import Any, Dict

import torch

from .registry import Registry

__all__ = ["SCHEDULES", "Schedule", "build_schedule"]

SCHEDULES = Registry("learning-rate schedule")


class Schedule:
    """`after_batch()` after every optimiser step, `after_epoch(val_loss)` after every epoch (val_loss None
    without validation); only the hook the schedule uses steps it."""

    def __init__(self, scheduler: Any, per_batch: bool):
        self.scheduler, self.per_batch = scheduler, per_batch

    def after_batch(self) -> None:
        if self.per_batch:
            self.scheduler.step()

    def after_epoch(self, val_loss: float | None) -> None:
        if not self.per_batch and val_loss is not None:
            self.scheduler.step(val_loss)

    def state_dict(self) -> Dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


@SCHEDULES.register
def plateau(optimizer: torch.optim.Optimizer, train_cfg: Any, total_steps: int) -> Schedule:
    return Schedule(torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=train_cfg.plateau_factor, patience=train_cfg.plateau_patience), False)


@SCHEDULES.register
def cosine(optimizer: torch.optim.Optimizer, train_cfg: Any, total_steps: int) -> Schedule:
    return Schedule(torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(total_steps, 1), eta_min=train_cfg.lr * 0.01), True)


@SCHEDULES.register
def onecycle(optimizer: torch.optim.Optimizer, train_cfg: Any, total_steps: int) -> Schedule:
    return Schedule(torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=train_cfg.lr, total_steps=max(total_steps, 2), pct_start=0.3), True)


def build_schedule(optimizer: torch.optim.Optimizer, train_cfg: Any, steps_per_epoch: int) -> Schedule:
    """The schedule `train_cfg.lr_schedule` names, over `train_cfg.epochs` epochs of `steps_per_epoch` batches."""
    factory = SCHEDULES.get(train_cfg.lr_schedule, "train.lr_schedule")
    return factory(optimizer, train_cfg, train_cfg.epochs * steps_per_epoch)
