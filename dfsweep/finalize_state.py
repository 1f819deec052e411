"""finalize's resume state: what a killed finalize needs to go on, kept apart from its outputs.

out/.resume/          hidden, removed when finalize completes
  state.json          the config it was started with (flattened) and a digest of the training data
  stage1.pt           stage 1's resumable fit state after its last finished epoch (`fit`'s state_fn)
  stage2.pt           the same for stage 2
  publish/            each output is written whole here, then renamed into out/ (same filesystem), so out/
                      never holds a partial or temporary file
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional

import numpy as np
import torch

from .checkpoint import atomic_write_bytes
from .data import DecodedSet, ShardedImages
from .errors import DfsweepError

__all__ = ["ResumeState", "RESUME_DIR", "data_digest", "training_config"]

RESUME_DIR = ".resume"
FORMAT = "dfsweep-finalize-resume-v1"
# not compared on --resume: paths (the data are compared by content) and what only acts after training
_UNCOMPARED = ("data.train", "data.test", "data.cache_dir", "data.shard_mib", "finalize.data", "finalize.register_model",
               "finalize.tta_flip", "finalize.min_precision", "finalize.min_recall", "submission.")


def training_config(flat: Dict[str, Any]) -> Dict[str, Any]:
    """The flattened config minus the keys a resume may change; JSON round-tripped (tuples -> lists)."""
    kept = {k: v for k, v in flat.items() if not any(k == u or (u.endswith(".") and k.startswith(u))
                                                      for u in _UNCOMPARED)}
    return json.loads(json.dumps(kept, default=str, sort_keys=True))


def data_digest(data: DecodedSet) -> Dict[str, Any]:
    """Images, labels, groups and ids by content: a moved folder is the same data, an edited image is not."""
    h = hashlib.blake2b(digest_size=16)
    images = data.images
    h.update(f"{images.dtype} {images.shape}\n".encode())
    if isinstance(images, ShardedImages):       # the digests its shards were written with: nothing read again
        h.update(images.digest().encode())
    else:
        h.update(memoryview(np.ascontiguousarray(images)).cast("B"))
    for part in (data.labels, data.groups, data.ids):
        h.update(("\n".join(map(str, [] if part is None else part)) + "\0").encode())
    return {"images": len(data), "digest": h.hexdigest()}


class ResumeState:
    """The `.resume/` folder of one finalize output folder."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / RESUME_DIR
        self.file = self.dir / "state.json"

    def saved(self) -> Optional[Dict[str, Any]]:
        if not self.file.is_file():
            return None
        try:
            saved = json.loads(self.file.read_text())
        except (OSError, ValueError) as e:
            raise DfsweepError(f"{self.file}: unreadable resume state ({e}); use --restart to start over") from None
        if saved.get("format") != FORMAT:
            raise DfsweepError(f"{self.file}: not a {FORMAT} file; use --restart to start over")
        return saved

    def check(self, config: Dict[str, Any], resume: bool, restart: bool) -> None:
        """Before the data are read: refuse --resume with nothing to resume or another config, and a plain
        run over an unfinished one (its saved epochs would be lost without the user asking)."""
        saved = None if restart else self.saved()
        if resume and saved is None:
            raise DfsweepError(f"--resume: nothing to resume in {self.out_dir} (no unfinished finalize there; "
                               "run without --resume)")
        if saved is None:
            return
        if not resume:
            raise DfsweepError(f"{self.out_dir} holds an unfinished finalize: add --resume to continue it, "
                               "or --restart to start over")
        diff = [f"{k} {saved['config'].get(k, '(unset)')!r} -> {config.get(k, '(unset)')!r}"
                for k in sorted(set(saved["config"]) | set(config)) if saved["config"].get(k) != config.get(k)]
        if diff:
            more = f" (and {len(diff) - 3} more)" if len(diff) > 3 else ""
            raise DfsweepError(f"--resume: {self.out_dir} was started with another config: {', '.join(diff[:3])}"
                               f"{more}; use --restart to start over")

    def begin(self, config: Dict[str, Any], digest: Dict[str, Any], resume: bool) -> None:
        """After the data are read: on --resume compare them, else start a fresh state."""
        if resume:
            was = self.saved()["data"]
            if was != digest:
                raise DfsweepError(f"--resume: the training data differ from those {self.out_dir} was started with "
                                   f"({was['images']} images then, {digest['images']} now, content differs); "
                                   "use --restart to start over")
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        text = json.dumps({"format": FORMAT, "config": config, "data": digest}, indent=1).encode()
        atomic_write_bytes(self.file, lambda f: f.write(text))

    def load_stage(self, stage: int) -> Optional[Dict[str, Any]]:
        path = self.dir / f"stage{stage}.pt"
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 -- written atomically, so only outside damage lands here
            raise DfsweepError(f"{path}: unreadable ({type(e).__name__}); use --restart to start over") from None

    def save_stage(self, stage: int, state: Dict[str, Any]) -> None:
        atomic_write_bytes(self.dir / f"stage{stage}.pt", lambda f: torch.save(state, f))

    def publish(self, name: str, write: Callable[[Path], Any]) -> Path:
        """`write(path)` the output whole inside .resume/, then rename it into the output folder."""
        staged = self.dir / "publish" / name
        staged.parent.mkdir(parents=True, exist_ok=True)
        write(staged)
        final = self.out_dir / name
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        return final

    def discard(self, names: Iterable[str]) -> None:
        """Outputs of an earlier finalize in this folder: one folder holds one run's set, never a mix."""
        for name in names:
            (self.out_dir / name).unlink(missing_ok=True)

    def finish(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
