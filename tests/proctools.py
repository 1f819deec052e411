"""Processes seen through /proc: a process's descendants, which of a set still live, who names a port."""
import os
from typing import Dict, Iterable, List, Set


def _stat(pid: str) -> List[str]:
    """Fields after the command name: [state, ppid, pgrp, ...]."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _table() -> Dict[int, List[str]]:
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            table[int(pid)] = _stat(pid)
        except OSError:
            continue
    return table


def descendants(root: int) -> Set[int]:
    """Every live process below `root` (children, their children, ...)."""
    children: Dict[int, List[int]] = {}
    for pid, fields in _table().items():
        children.setdefault(int(fields[1]), []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: Iterable[int]) -> Set[int]:
    """Those of `pids` that still run (zombies waiting for their parent do not count)."""
    table = _table()
    return {p for p in pids if p in table and table[p][0] != "Z"}


def processes_naming(text: str) -> List[str]:
    """Command lines of live processes with `text` as one of their arguments (or its `:text`/`=text` end)."""
    found = []
    for pid, fields in _table().items():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        t = text.encode()
        if fields[0] != "Z" and any(a == t or a.endswith(b":" + t) or a.endswith(b"=" + t) for a in argv):
            found.append(b" ".join(argv).decode(errors="replace"))
    return found
