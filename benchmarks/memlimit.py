"""Run a command under a memory limit and watch what it holds: a cgroup-v1 memory cgroup of its own (as root,
under this process's cgroup), removed afterwards. Used by `benchmarks/scale.py` and the memory-limited tests.

Reported: the exit code and output; each process's peak memory the kernel cannot reclaim (anonymous + shared
memory, sampled), the group's peak with page cache, and how many processes the kernel killed for memory.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

__all__ = ["Limited", "MemoryLimited", "cgroup_parent", "run_limited"]

_ROOT = Path("/sys/fs/cgroup/memory")


def cgroup_parent() -> Optional[Path]:
    """This process's memory cgroup folder where a child cgroup can be made (root, cgroup v1), else None."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, rel = line.split(":", 2)
            if "memory" in controllers.split(","):
                folder = _ROOT / rel.lstrip("/")
                return folder if os.access(folder, os.W_OK) and (folder / "memory.limit_in_bytes").exists() else None
    except OSError:
        pass
    return None


@dataclass
class Limited:
    returncode: int
    output: str
    wall_s: float
    group_peak: int                                   # the cgroup's peak, page cache included
    oom_kills: int
    process_peaks: Dict[str, int] = field(default_factory=dict)   # "pid name" -> peak anon + shmem bytes

    def largest(self) -> tuple[str, int]:
        return max(self.process_peaks.items(), key=lambda kv: kv[1], default=("", 0))


def _held(pid: int) -> Optional[int]:
    """Anonymous + shared memory of a process (what the kernel cannot drop as page cache)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        return sum(int(fields[k].split()[0]) * 1024 for k in ("RssAnon", "RssShmem") if k in fields)
    except (OSError, ValueError):
        return None


def _name(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = "?"
    return f"{pid} {cmd[:90]}"


def _pids(group: Path) -> List[int]:
    try:
        return [int(p) for p in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []


class MemoryLimited:
    """A cgroup with `limit_bytes` of memory; `start(cmd)` runs a command in it (and all it starts), `close()`
    ends what is left there, reads the figures and removes the group. A context manager."""

    def __init__(self, limit_bytes: int, sample_s: float = 0.25):
        parent = cgroup_parent()
        if parent is None:
            raise RuntimeError("no writable cgroup-v1 memory controller (needs root)")
        self.limit = limit_bytes
        self.group = parent / f"dfsweep-limit-{os.getpid()}-{time.monotonic_ns()}"
        self.group.mkdir()
        (self.group / "memory.limit_in_bytes").write_text(str(limit_bytes))
        self.peaks: Dict[str, int] = {}
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, args=(sample_s,), daemon=True)
        self._watcher.start()

    def _watch(self, sample_s: float) -> None:
        while not self._stop.is_set():
            for pid in _pids(self.group):
                held = _held(pid)
                if held is not None:
                    key = _name(pid)
                    self.peaks[key] = max(self.peaks.get(key, 0), held)
            self._stop.wait(sample_s)

    def start(self, cmd: List[str], **popen_kw) -> subprocess.Popen:
        procs = str(self.group / "cgroup.procs")

        def enter() -> None:             # in the child, before exec: it and all it starts are in the group
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        return subprocess.Popen(cmd, preexec_fn=enter, **popen_kw)

    def oom_kills(self) -> int:
        for line in (self.group / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def group_peak(self) -> int:
        return int((self.group / "memory.max_usage_in_bytes").read_text())

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._watcher.join()
        _empty(self.group)

    def __enter__(self) -> "MemoryLimited":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_limited(cmd: List[str], limit_bytes: int, *, cwd=None, env=None, timeout: float = 1800,
                sample_s: float = 0.25) -> Limited:
    """`cmd` with `limit_bytes` of memory for it and every process it starts, to its end."""
    with MemoryLimited(limit_bytes, sample_s) as box:
        t0 = time.perf_counter()
        proc = box.start(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        wall = time.perf_counter() - t0
        oom, peak = box.oom_kills(), box.group_peak()
        box._stop.set()
        box._watcher.join()
        return Limited(proc.returncode, out, wall, peak, oom, dict(box.peaks))


def _empty(group: Path) -> None:
    """End whatever is left in the group (processes a command's Ray left behind), then remove it."""
    deadline = time.monotonic() + 30
    while _pids(group) and time.monotonic() < deadline:
        for pid in _pids(group):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    for _ in range(50):
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.2)
