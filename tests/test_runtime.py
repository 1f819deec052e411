import sys

import pytest
import torch

from dfsweep.config import config_from_dict
from dfsweep.runtime import configure_allocator, configure_threads, cpu_has_bf16
from dfsweep.train import train_autocast


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_allocator_keeps_freed_buffers_on_glibc():
    assert configure_allocator() is True


def test_threads_default_to_the_cpu_share():
    assert configure_threads(1) == 1 and torch.get_num_threads() == 1
    assert configure_threads(0) >= 1


@pytest.mark.parametrize("amp", [True, False])
def test_cpu_autocast_follows_train_amp_and_the_cpu(amp):
    cfg = config_from_dict({"train": {"amp": amp}})
    with train_autocast(cfg, torch.device("cpu")):
        on = torch.is_autocast_enabled("cpu")
        y = torch.nn.Linear(4, 2)(torch.randn(3, 4))
    assert on == (amp and cpu_has_bf16())
    assert y.dtype == (torch.bfloat16 if on else torch.float32)
