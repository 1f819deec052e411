"""The command runs in a child process watched by a small parent, so that an out-of-memory kill never goes
unsaid: when the kernel kills the child for memory, the parent prints one line naming what ran out and what to
change (a killed process cannot say it itself).

The parent forwards SIGINT, SIGTERM and SIGHUP to the child (in a process group of its own, so a terminal's
Ctrl-C reaches it once, through the parent), and the child dies with the parent (a `kill -9` of the command
ends both, as it ended one process before).
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import List

from .memory import OOM_ADVICE, MemoryLimit, gib, memory_limit, oom_kill_count

__all__ = ["SUPERVISED", "supervise", "oom_line"]

SUPERVISED = "DFSWEEP_SUPERVISED"        # set in the child: it runs the command itself
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the parent dies (PR_SET_PDEATHSIG); its own process group."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    os.setpgid(0, 0)


def _held(pid: int) -> int:
    """Memory a process holds that the kernel cannot drop (anonymous + shared), 0 once it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        return sum(int(fields[k].split()[0]) * 1024 for k in ("RssAnon", "RssShmem") if k in fields)
    except (OSError, ValueError):
        return 0


def oom_line(limit: MemoryLimit, peak: int) -> str:
    held = f" after holding {gib(peak)}" if peak else ""
    return (f"dfsweep: error: out of memory: the kernel killed the command's process{held} ({limit.where} allows "
            f"{gib(limit.limit)} in all); {OOM_ADVICE}")


def supervise(argv: List[str]) -> int:
    """Run `dfsweep argv` in a child and return its exit code (128 + N for signal N, as a shell does); say so in
    one line when the kernel killed it for memory."""
    before = oom_kill_count()
    child = subprocess.Popen([sys.executable, "-m", "dfsweep", *argv], env={**os.environ, SUPERVISED: "1"},
                             preexec_fn=_die_with_parent)
    for sig in _FORWARDED:
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    peak, done = [0], threading.Event()

    def watch() -> None:                 # what the child held last: the line says how far it got
        while not done.wait(0.5):
            peak[0] = max(peak[0], _held(child.pid))

    threading.Thread(target=watch, name="dfsweep-memory-watch", daemon=True).start()
    rc = child.wait()
    done.set()
    if rc == -signal.SIGKILL:
        limit = memory_limit()
        after = oom_kill_count(limit)
        if before is not None and after is not None and after > before:
            print(oom_line(limit, peak[0]), file=sys.stderr, flush=True)
            return 2
    return rc if rc >= 0 else 128 - rc
