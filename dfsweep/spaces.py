"""The search spaces shipped with dfsweep (the repo's search_spaces/, installed as dfsweep.search_spaces):
`dfsweep run deepfakenet` finds one by name when no such file exists."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import List, Optional

__all__ = ["shipped_space", "shipped_names"]


def _folder():
    try:
        return resources.files("dfsweep.search_spaces")
    except ModuleNotFoundError:     # a source tree that was never installed
        return None


def shipped_names() -> List[str]:
    folder = _folder()
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")) if folder else []


def shipped_space(name: str) -> Optional[Path]:
    """The shipped space called `name` (with or without .yaml), else None."""
    stem = name[:-5] if name.endswith(".yaml") else name
    if "/" in stem or stem not in shipped_names():
        return None
    return Path(str(_folder() / f"{stem}.yaml"))
