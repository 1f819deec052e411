"""A CSV written as it is made, that a killed run continues.

Rows go to a hidden partial file beside the output (`.NAME.partial`), and after each chunk a small record of how
far it got (`.NAME.partial.json`: what the run is, the inputs done, the bytes written). The output itself appears,
renamed whole, only when the last row is in; a killed run leaves the partial file for `--resume`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import pandas as pd

from .checkpoint import atomic_write_bytes
from .errors import DfsweepError

__all__ = ["PartialCsv"]


class PartialCsv:
    def __init__(self, out: Path, identity: Dict[str, Any]):
        self.out = Path(out).absolute()
        self.partial = self.out.parent / f".{self.out.name}.partial"
        self.record = self.out.parent / f".{self.out.name}.partial.json"
        self.identity = json.loads(json.dumps(identity))
        self.bytes = self.rows = 0

    def open(self, resume: bool, restart: bool) -> int:
        """How many inputs an earlier run finished (0 for a new run); refuses what would lose or mix work."""
        saved = None if restart else self._saved()
        if saved is None:
            if resume:
                raise DfsweepError(f"--resume: nothing to resume for {self.out} (no unfinished run there)")
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.partial.write_bytes(b"")
            self.record.unlink(missing_ok=True)
            return 0
        if not resume:
            raise DfsweepError(f"{self.out}: an unfinished run is there ({saved['done']} inputs done); --resume "
                               f"continues it, --restart starts over")
        differs = [k for k in self.identity if saved["identity"].get(k) != self.identity[k]]
        if differs:
            raise DfsweepError(f"--resume: the unfinished run for {self.out} had another {', '.join(differs)} "
                               f"(--restart starts over)")
        with open(self.partial, "r+b") as f:       # rows after the last record were cut off by the kill
            f.truncate(saved["bytes"])
        self.bytes, self.rows = saved["bytes"], saved["rows"]
        return int(saved["done"])

    def _saved(self):
        if not self.record.is_file():
            return None
        try:
            saved = json.loads(self.record.read_text())
            if self.partial.stat().st_size >= saved["bytes"]:
                return saved
        except (OSError, ValueError, KeyError):
            pass
        raise DfsweepError(f"{self.record}: the record of an unfinished run is damaged; --restart starts over")

    def append(self, chunk: pd.DataFrame, done: int) -> None:
        """Rows, then the record saying they (and `done` inputs) are in."""
        data = chunk.to_csv(index=False, header=self.bytes == 0).encode()
        with open(self.partial, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.bytes += len(data)
        self.rows += len(chunk)
        text = json.dumps({"identity": self.identity, "done": done, "bytes": self.bytes, "rows": self.rows}).encode()
        atomic_write_bytes(self.record, lambda f: f.write(text))

    def finish(self) -> int:
        """The output, whole; the partial file and its record gone. Returns the rows written."""
        if self.bytes == 0:
            self.partial.write_bytes(b"id,probability,label\n")
        os.replace(self.partial, self.out)
        self.record.unlink(missing_ok=True)
        return self.rows
