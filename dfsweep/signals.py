"""dfsweep's own process told to end: SIGTERM and SIGHUP (`kill`, systemd, `docker stop`, a closed terminal)
take the same path as Ctrl-C, so a sweep stops its trials, closes its MLflow runs and can be resumed."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

__all__ = ["ENDING", "ending_like_ctrl_c"]

ENDING = (signal.SIGTERM, signal.SIGHUP)


def _as_ctrl_c(_signum, _frame) -> None:
    # whatever handles SIGINT right now (Tune's graceful stop during fit, else KeyboardInterrupt) runs next
    signal.raise_signal(signal.SIGINT)


@contextlib.contextmanager
def ending_like_ctrl_c() -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP act as SIGINT (install after ray.init: Ray sets its own SIGTERM handler,
    which exits without closing the sweep's records)."""
    if threading.current_thread() is not threading.main_thread():
        yield           # signal handlers can only be set from the main thread
        return
    previous = {s: signal.signal(s, _as_ctrl_c) for s in ENDING}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
