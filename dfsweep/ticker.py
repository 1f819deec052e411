"""Progress of long work outside a sweep (decoding, scoring many files) as plain log lines: readable in a
terminal and in a log file alike, at most one line every few seconds, and one at the end."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

__all__ = ["Ticker"]

log = logging.getLogger("dfsweep")


class Ticker:
    """`tick(n)` counts work done; a line `<what>: done/total (pct%), Ns` goes out when `every_s` has passed
    since the last one. Work that ends before `quiet_s` prints nothing (a cached or small set)."""

    def __init__(self, total: int, what: str, every_s: float = 5.0, quiet_s: float = 2.0,
                 emit: Optional[Callable[[str], None]] = None, clock: Callable[[], float] = time.monotonic):
        self.total, self.what, self.every_s, self.quiet_s = total, what, every_s, quiet_s
        self.emit = emit or log.info
        self.clock = clock
        self.t0 = self.last = clock()
        self.done = 0
        self.shown = False
        self._lock = threading.Lock()   # decoding ticks from a thread pool

    def tick(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            now = self.clock()
            due = now - self.last >= self.every_s if self.shown else now - self.t0 >= self.quiet_s
            if due and self.done < self.total:
                self._line(now)

    def close(self) -> None:
        """The last line, if any line went out before (a short job stays silent)."""
        with self._lock:
            if self.shown:
                self._line(self.clock())

    def _line(self, now: float) -> None:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        self.emit(f"{self.what}: {self.done}/{self.total} ({pct:.0f}%), {now - self.t0:.0f}s")
        self.last, self.shown = now, True
