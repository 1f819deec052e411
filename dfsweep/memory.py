"""How much memory this process may use: the machine's, or less where a cgroup (a container, a job scheduler, a
test) limits it. The page cache counts as free: the kernel gives it back before it kills anything."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

__all__ = ["MemoryLimit", "memory_limit", "available_memory", "gib", "oom_kill_count", "OOM_ADVICE"]

# what to lower when the kernel kills for memory: the per-process costs that do not depend on the set's size
OOM_ADVICE = ("lower train.batch_size or train.eval_batch_size (a sweep: also sweep.max_concurrent_trials), use a "
              "smaller model.width or data.image_size, or give it more memory")

_UNLIMITED = 1 << 60       # cgroup v1 writes a huge number for "no limit"


def gib(n: float) -> str:
    """Bytes for a reader: GiB, or MiB below one GiB."""
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


@dataclass(frozen=True)
class MemoryLimit:
    limit: int                 # bytes this process's group may hold (the machine's memory when no cgroup limits)
    used: int                  # bytes it holds now that the kernel cannot reclaim (page cache excluded)
    where: str                 # "cgroup /path" or "this machine"
    oom_kills: Optional[int] = None    # processes the kernel killed in that cgroup for memory, where it counts them

    @property
    def available(self) -> int:
        return max(0, self.limit - self.used)


def _meminfo() -> Dict[str, int]:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return out


def _stat(path: Path) -> Dict[str, int]:
    out = {}
    try:
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            if v.strip().lstrip("-").isdigit():
                out[k] = int(v)
    except OSError:
        pass
    return out


def _cgroup() -> Optional[MemoryLimit]:
    """This process's memory cgroup (v1 or v2) where one sets a limit below the machine's memory."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if "memory" in controllers.split(","):                        # v1
            d = Path("/sys/fs/cgroup/memory") / rel.lstrip("/")
            st = _stat(d / "memory.stat")
            limit = st.get("hierarchical_memory_limit", _UNLIMITED)
            usage = _stat_int(d / "memory.usage_in_bytes")
            if usage is None or limit >= _UNLIMITED:
                return None
            cache = st.get("total_inactive_file", 0) + st.get("total_active_file", 0)
            oom = _stat(d / "memory.oom_control").get("oom_kill")
            return MemoryLimit(limit, max(0, usage - cache), f"cgroup {rel}", oom)
        if controllers == "" and line.startswith("0::"):              # v2
            d = Path("/sys/fs/cgroup") / rel.lstrip("/")
            limit = _stat_int(d / "memory.max")
            usage = _stat_int(d / "memory.current")
            if limit is None or usage is None:
                return None
            st = _stat(d / "memory.stat")
            cache = st.get("inactive_file", 0) + st.get("active_file", 0)
            return MemoryLimit(limit, max(0, usage - cache), f"cgroup {rel}",
                               _stat(d / "memory.events").get("oom_kill"))
    return None


def _stat_int(path: Path) -> Optional[int]:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def memory_limit() -> MemoryLimit:
    """The tighter of this process's cgroup and the machine."""
    info = _meminfo()
    total = info.get("MemTotal", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    machine = MemoryLimit(total, total - info.get("MemAvailable", total), "this machine")
    group = _cgroup()
    return group if group is not None and group.available < machine.available else machine


def available_memory() -> int:
    return memory_limit().available


def oom_kill_count(limit: Optional[MemoryLimit] = None) -> Optional[int]:
    """Processes the kernel has killed for memory so far: in this process's cgroup where it counts them, else on
    the machine (None where neither is readable)."""
    limit = limit or memory_limit()
    if limit.oom_kills is not None:
        return limit.oom_kills
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None
