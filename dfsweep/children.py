"""Child processes dfsweep starts: run one in its own process group, forward SIGTERM/SIGINT/SIGHUP to the whole
group and wait for it, so `kill`, systemd or `docker stop` leave no server (or its workers) behind."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Dict, List, Optional

__all__ = ["run_forwarding_signals", "FORWARDED", "GRACE_S"]

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
GRACE_S = 10.0      # after a forwarded signal, how long the group may take before it is killed


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def run_forwarding_signals(argv: List[str], env: Optional[Dict[str, str]] = None) -> int:
    """Run `argv` to its end; a signal in FORWARDED goes to its process group, which then gets GRACE_S to end
    (else SIGKILL). Returns the child's exit code, or 0 when it ended because a signal asked it to."""
    received: List[int] = []

    def forward(signum, _frame):
        received.append(signum)
        _signal_group(proc, signum)

    # the group is the child's own (its workers included); a terminal's Ctrl-C reaches it through us
    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        deadline = None
        while True:
            try:
                code = proc.wait(timeout=0.5)     # in slices: a handler's signal must not leave us waiting
                break
            except subprocess.TimeoutExpired:
                if received:
                    deadline = deadline or time.monotonic() + GRACE_S
                    if time.monotonic() > deadline:
                        _signal_group(proc, signal.SIGKILL)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _signal_group(proc, signal.SIGKILL)     # workers the server left behind, if any
    return 0 if received else code
