"""Writes to a tracking store that did not answer, held in order and written when it answers again: a tracking
server restarted mid-sweep loses nothing, and one that never comes back costs the sweep nothing but a report."""
from __future__ import annotations

import logging
import time
from typing import Callable, List, Optional, Set, Tuple

__all__ = ["HeldWrites"]

log = logging.getLogger("dfsweep.tracking")


class HeldWrites:
    """`write(key, fn)` runs fn now, or holds it behind earlier held writes; `key` names what it belongs to
    (a trial id) so the ones never written can be reported. A held queue is retried at most every
    `retry_every_s`, so a store that is down does not stall every Tune event on a failing request."""

    def __init__(self, retryable: Callable[[BaseException], bool], retry_every_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.retryable = retryable      # False: the store answered and refused it; held, it would block the rest
        self.queue: List[Tuple[str, Callable[[], None]]] = []
        self.retry_every_s = retry_every_s
        self.clock = clock
        self.last_try = float("-inf")
        self.last_error: Optional[str] = None

    def write(self, key: str, fn: Callable[[], None]) -> None:
        self.queue.append((key, fn))
        if len(self.queue) == 1 or self.clock() - self.last_try >= self.retry_every_s:
            self.flush()

    def flush(self) -> bool:
        """Write what is held, in order, up to the first failure; True when nothing is left."""
        self.last_try = self.clock()
        written = 0
        while self.queue:
            try:
                self.queue[0][1]()
            except Exception as e:  # noqa: BLE001 -- a store that is down raises whatever its client raises
                if not self.retryable(e):
                    log.warning("mlflow: a write was refused and dropped: %s", _first_line(e))
                    self.queue.pop(0)
                    continue
                if self.last_error is None:
                    log.warning("mlflow: the tracking store did not answer (%s); its writes are held and "
                                "retried", _first_line(e))
                self.last_error = _first_line(e)
                return False
            self.queue.pop(0)
            written += 1
        if self.last_error is not None:
            log.warning("mlflow: the tracking store answers again; %d held writes written", written)
        self.last_error = None
        return True

    def settle(self, wait_s: float, sleep: Callable[[float], None] = time.sleep) -> bool:
        """Retry what is held for up to `wait_s` (the end of a sweep); True when everything was written."""
        deadline = self.clock() + wait_s
        while not self.flush():
            if self.clock() >= deadline:
                return False
            sleep(min(self.retry_every_s, max(deadline - self.clock(), 0)))
        return True

    def pending(self) -> Set[str]:
        """Keys of the writes still held."""
        return {k for k, _ in self.queue}


def _first_line(e: BaseException) -> str:
    return ((str(e).strip().splitlines() or [type(e).__name__])[0])[:200]
