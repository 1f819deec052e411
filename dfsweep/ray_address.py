"""Is a Ray cluster there? A bounded check of `--address` before anything is decoded or written.

`ray.init(address=...)` retries for ever where no Ray head answers (Ray 2.60), so a mistyped address would
hang the sweep: the host and port are checked here first, and joining itself gets a deadline."""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
from typing import Optional

from .errors import DfsweepError

__all__ = ["check_reachable", "JoinDeadline", "PROBE_TIMEOUT_S", "JOIN_TIMEOUT_S"]

PROBE_TIMEOUT_S = 5.0     # one TCP connect to the head's GCS port
JOIN_TIMEOUT_S = 15.0     # ray.init once the port answers (a port that answers but is not a Ray head)


def _host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DfsweepError(f"--address {address}: not HOST:PORT (the head node's GCS address, e.g. 10.0.0.5:6379)")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise DfsweepError (one line) unless something accepts a TCP connection at `address`."""
    if address == "auto" or "://" in address:
        return                      # Ray resolves these itself and fails at once when nothing runs
    host, port = _host_port(address)
    what = f"cannot join the Ray cluster at {address}"
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise DfsweepError(f"{what}: host {host!r} not found ({e.strerror})") from None
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except ConnectionRefusedError:
        raise DfsweepError(f"{what}: connection refused (no Ray head listens on port {port} of {host})") from None
    except (socket.timeout, TimeoutError):
        raise DfsweepError(f"{what}: no answer from {host} within {timeout_s:g} s (host down or port "
                           f"filtered)") from None
    except OSError as e:
        raise DfsweepError(f"{what}: {e.strerror or e}") from None


class JoinDeadline:
    """Ends the process with one line and exit 2 if joining a cluster outlasts `timeout_s` (ray.init cannot be
    interrupted from another thread, and nothing has been written yet when it runs). Meanwhile the process's
    stderr (fd 2) is set aside: Ray's C++ client prints its connection retries there, not through Python."""

    def __init__(self, address: str, timeout_s: float = JOIN_TIMEOUT_S):
        self.address, self.timeout_s = address, timeout_s
        self._timer: Optional[threading.Timer] = None
        self._stderr: Optional[int] = None

    def _expire(self) -> None:
        line = (f"dfsweep: error: cannot join the Ray cluster at {self.address}: the port answers but no Ray head "
                f"replied within {self.timeout_s:g} s (is it the head's GCS port, 6379 by default?)\n")
        os.write(self._stderr if self._stderr is not None else 2, line.encode())
        os._exit(2)

    def __enter__(self) -> "JoinDeadline":
        sys.stderr.flush()
        self._stderr = os.dup(2)
        with tempfile.TemporaryFile() as aside:
            os.dup2(aside.fileno(), 2)
        self._timer = threading.Timer(self.timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        sys.stderr.flush()
        os.dup2(self._stderr, 2)
        os.close(self._stderr)
        self._stderr = None
