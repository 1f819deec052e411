import copy
import math

import numpy as np
import pytest
import torch

from dfsweep.config import config_from_dict
from dfsweep.data import DecodedSet
from dfsweep.errors import DfsweepError
from dfsweep.schedules import SCHEDULES, build_schedule
from dfsweep.train import fit


def _set(n=48, size=64, seed=0):
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    labels = np.array([0, 0, 1] * (n // 3), dtype=np.int64)
    return DecodedSet(imgs, labels, None, [f"i{i}" for i in range(n)])


def _cfg(schedule, epochs=3, lr=1e-3):
    return config_from_dict({"data": {"image_size": 64, "val_fraction": 0.25},
                             "model": {"name": "deepfakenet", "width": 0.25},
                             "train": {"epochs": epochs, "batch_size": 8, "lr": lr, "threads": 1,
                                       "lr_schedule": schedule}})


def _lrs(schedule, steps_per_epoch=5):
    """The learning rate before every batch of a run, stepping the schedule as `fit` does."""
    t = _cfg(schedule).train
    opt = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=t.lr)
    sched = build_schedule(opt, t, steps_per_epoch)
    seen = []
    for _ in range(t.epochs):
        for _ in range(steps_per_epoch):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.after_batch()
        sched.after_epoch(1.0)          # a flat validation loss
    return seen


def test_registered_schedules():
    assert SCHEDULES.names() == ["cosine", "onecycle", "plateau"]


def test_onecycle_warms_up_then_decays_below_its_start():
    lrs = _lrs("onecycle")
    peak = int(np.argmax(lrs))
    assert 0 < peak < len(lrs) - 1 and lrs[peak] == pytest.approx(1e-3, rel=0.05)
    assert lrs[0] < lrs[peak] / 10 and lrs[-1] < lrs[0]


def test_cosine_decays_from_lr_towards_one_percent():
    lrs = _lrs("cosine")
    assert lrs[0] == pytest.approx(1e-3) and all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert 1e-5 <= lrs[-1] < 1e-4


def test_plateau_holds_the_lr_within_its_patience():
    assert set(_lrs("plateau")[:15]) == {1e-3}     # patience 2: three flat epochs keep the lr


def test_unknown_schedule_is_a_config_error_listing_the_choices():
    with pytest.raises(DfsweepError, match="train.lr_schedule: unknown learning-rate schedule 'step'; "
                                           "valid choices: cosine, onecycle, plateau"):
        _cfg("step")


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_fit_steps_per_batch_schedules_and_resumes_them_exactly(schedule):
    data = _set()
    full = fit(_cfg(schedule), data)
    assert full.history[0]["lr"] != full.history[-1]["lr"]
    assert all(math.isfinite(h["train_loss"]) for h in full.history)
    states = []
    fit(_cfg(schedule), data, on_epoch=lambda m, s: states.append(copy.deepcopy(s())))   # as saved
    resumed = fit(_cfg(schedule), data, resume=states[0])
    assert [h["lr"] for h in resumed.history] == pytest.approx([h["lr"] for h in full.history])
    assert resumed.history[-1]["train_loss"] == pytest.approx(full.history[-1]["train_loss"], rel=1e-5)
