import pytest
import torch


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    # Tiny inputs gain nothing from threads, and on a busy 2-core box a preempted OpenMP worker stalls
    # every op at its barrier (seen: HRNet's 64 px forward at 2 s with 2 threads, 20 ms with 1).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
