"""A seeded run's per-epoch history is pinned: a change to the training loop or the augmentation that is meant
to keep the numbers (a refactor) must keep them bit for bit. Recorded per CPU kernel family (float sums differ
between AVX2 and AVX-512 kernels); on a CPU kind without a record the history is checked to 1e-4.

The same runs from the decoded-image cache (the pixels read in place from shards) give the same histories.

Re-record (only for a change meant to alter the numbers): `python tests/test_fit_pinned.py`."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dfsweep.config import config_from_dict
from tinydata import bright_patch_set, in_cache
from dfsweep.train import fit

PINNED = Path(__file__).parent / "pinned" / "fit_history.json"
KEYS = ("train_loss", "val_loss", "auc", "f1", "threshold")

# each batch path and augmentation branch: in-process and loader workers; every preset; uint8 stage steps
CASES = {
    "seed_in_process": {},
    "seed_loader_worker": {"train": {"num_workers": 1}},
    "sharp": {"augment": {"preset": "sharp"}},
    "none_full_crop": {"augment": {"preset": "none", "crop_scale_min": 1.0}},
    "uint8_stage": {"augment": {"self_blend_p": 0.5, "jpeg_p": 0.5, "rescale_p": 0.5}},
    "hrnet_onecycle": {"model": {"name": "hrnet", "width": 4, "branches": 2, "stages": 1},
                       "train": {"lr_schedule": "onecycle"}},
}


def _set():
    return bright_patch_set(n_real=32, n_fake=16, patch=12, margin=4)


def _history(case: str, data=None) -> list:
    over = CASES[case]
    cfg = {"data": {"image_size": 64, "val_fraction": 0.25},
           "model": {"name": "deepfakenet", "width": 0.25, **over.get("model", {})},
           "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "threads": 1, "seed": 5, **over.get("train", {})},
           "augment": over.get("augment", {})}
    res = fit(config_from_dict(cfg), _set() if data is None else data)
    return [[float(h[k]).hex() for k in KEYS] for h in res.history]


def _kernels() -> str:
    """torch's CPU kernel family, and whether the CPU has bf16 (oneDNN picks other kernels there)."""
    try:
        bf16 = "avx512_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        bf16 = False
    return torch.backends.cpu.get_cpu_capability() + ("+bf16" if bf16 else "")


def _record() -> None:
    pinned = json.loads(PINNED.read_text()) if PINNED.is_file() else {}
    pinned[_kernels()] = {case: _history(case) for case in CASES}
    PINNED.parent.mkdir(exist_ok=True)
    PINNED.write_text(json.dumps(pinned, indent=1, sort_keys=True) + "\n")


@pytest.mark.parametrize("case", sorted(CASES))
def test_seeded_history_is_as_pinned(case):
    pinned = json.loads(PINNED.read_text())
    got = _history(case)
    if _kernels() in pinned:
        assert got == pinned[_kernels()][case]
    else:
        want = next(iter(pinned.values()))[case]
        assert np.allclose([[float.fromhex(x) for x in e] for e in got],
                           [[float.fromhex(x) for x in e] for e in want], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", ["seed_in_process", "seed_loader_worker", "sharp", "uint8_stage"])
def test_a_set_read_from_the_cache_trains_bit_for_bit_as_in_memory(case, tmp_path):
    """Out of core changes where the pixels come from, not the numbers: every batch path and augmentation
    branch gives the same history from cache shards as from the array."""
    assert _history(case, in_cache(_set(), tmp_path / "cache")) == _history(case)


if __name__ == "__main__":
    sys.exit(_record())
