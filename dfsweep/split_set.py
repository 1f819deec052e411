"""Split a labelled image set into two labelled halves, `<out>/select/` and `<out>/test/`: configurations are
chosen on one (as a validation set) and the clean figure is reported on the other.

Each half is a folder holding only `labels.csv` (image,label[,group]) whose `image` cells are the source
files' absolute paths, so nothing is copied and either half reads back as any labelled set does."""
from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import numpy as np

from .checkpoint import atomic_write_bytes
from .config import DataConfig
from .data import CLASS_NAMES, Listing, list_labelled, split_indices
from .errors import DfsweepError

__all__ = ["HALVES", "split_set"]

HALVES = ("select", "test")


def split_set(src: str | os.PathLike, out: str | os.PathLike, fraction: float = 0.5, seed: int = 0) -> dict:
    """Write `<out>/select/labels.csv` and `<out>/test/labels.csv`; `fraction` is the test half's share.

    Stratified by label and group-aware (a group, else a file, is on one side only), seeded. Returns
    {"select": {"path", "n", "n_real", "n_fake"}, "test": {...}, "grouped_by": column or None, "n_groups"}.
    Every refusal is a one-line DfsweepError raised before anything is created."""
    if not 0.0 < fraction < 1.0:  # `not` also refuses NaN
        raise DfsweepError(f"--fraction: must be in (0, 1), got {fraction}")
    out = Path(out).expanduser().absolute()
    dirs = {half: out / half for half in HALVES}
    for d in dirs.values():
        if d.exists():
            raise DfsweepError(f"{d}: already exists (choose another --out, or remove it)")
    cfg = DataConfig()
    listing = list_labelled(src, cfg)
    try:
        select_idx, test_idx = split_indices(listing.labels, listing.groups, fraction, seed)
    except DfsweepError as e:  # its messages name data.val_fraction, which this command does not have
        raise DfsweepError(f"{Path(src)}: {str(e).removeprefix('data.val_fraction: ')}") from None

    columns = [cfg.image_column, cfg.label_column] + ([cfg.group_column] if listing.groups is not None else [])
    tables = {"select": _labels_csv(listing, select_idx, columns), "test": _labels_csv(listing, test_idx, columns)}
    _write_halves(dirs, tables)

    result: dict = {"grouped_by": cfg.group_column if listing.groups is not None else None,
                    "n_groups": len(set(listing.groups)) if listing.groups is not None else len(listing)}
    for half, idx in (("select", select_idx), ("test", test_idx)):
        n_fake = int(listing.labels[idx].sum())
        result[half] = {"path": str(dirs[half]), "n": len(idx), "n_real": len(idx) - n_fake, "n_fake": n_fake}
    return result


def _labels_csv(listing: Listing, idx: np.ndarray, columns: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")  # quotes a path holding a comma or a quote
    w.writerow(columns)
    for i in idx:
        row = [str(listing.paths[i]), CLASS_NAMES[int(listing.labels[i])]]
        w.writerow(row + ([str(listing.groups[i])] if listing.groups is not None else []))
    return buf.getvalue().encode("utf-8")


def _write_halves(dirs: dict[str, Path], tables: dict[str, bytes]) -> None:
    """Both halves or neither: a half made here is removed again when the other cannot be written."""
    made: list[Path] = []
    try:
        for half, d in dirs.items():
            d.mkdir(parents=True)  # exist_ok=False: a folder that appeared since the check is not overwritten
            made.append(d)
            atomic_write_bytes(d / "labels.csv", lambda f, data=tables[half]: f.write(data))
    except OSError as e:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
        raise DfsweepError(f"{e.filename or dirs['select'].parent}: cannot write ({e.strerror or e})") from None
