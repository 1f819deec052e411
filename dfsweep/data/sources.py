"""Listing a data folder: which files, which labels, which groups. Nothing is decoded here.

Two labelled layouts are read:
  * `<root>/real/*.jpg` + `<root>/fake/*.jpg` (images directly inside each class folder), or
  * `<root>/*.jpg` + `<root>/labels.csv` with columns image,label[,group][,domain] (names set by `data.*_column`).
If the CSV exists it wins, so a folder may keep class sub-folders and still be labelled by CSV.
An unlabelled (test) folder is just images directly inside it.

Every problem is a `DfsweepError` with one line that names the path.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from ..config import DataConfig
from ..errors import DfsweepError

__all__ = ["IMAGE_EXTENSIONS", "CLASS_NAMES", "Listing", "list_labelled", "list_unlabelled", "check_classes"]

log = logging.getLogger("dfsweep.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CLASS_NAMES = ("real", "fake")  # label 0, label 1
_SHOW = 3  # how many offending names an error message lists


@dataclass(frozen=True)
class Listing:
    paths: list[Path]                 # absolute, so a later chdir (Ray trials do one) cannot break them
    labels: Optional[np.ndarray]      # int64, 0 = real, 1 = fake; None for an unlabelled folder
    groups: Optional[np.ndarray]      # object array of str; None when the data names no groups
    ids: list[str]                    # file stems, unique
    domains: Optional[np.ndarray] = None  # object array of str; None when labels.csv has no domain column

    def __len__(self) -> int:
        return len(self.paths)


def _few(items: Sequence[str]) -> str:
    shown = ", ".join(repr(str(s)) for s in items[:_SHOW])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOW else "")


def _root(path: str | os.PathLike) -> Path:
    root = Path(path).expanduser().absolute()
    if not root.exists():
        raise DfsweepError(f"{root}: data folder not found")
    if not root.is_dir():
        raise DfsweepError(f"{root}: not a directory (expected a folder of images)")
    return root


def _images_in(folder: Path) -> list[Path]:
    # 1. Hidden files are skipped: macOS `._x.jpg` resource forks look like images and are not.
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        raise DfsweepError(f"{folder}: cannot list folder ({e.strerror or e})") from None
    return [Path(e.path) for e in entries
            if not e.name.startswith(".") and e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file()]


def _check_unique_ids(where: Path, paths: list[Path], ids: list[str] | None = None) -> list[str]:
    ids = [p.stem for p in paths] if ids is None else ids
    if len(set(ids)) != len(ids):
        seen: dict[str, Path] = {}
        dups = []
        for i, p in zip(ids, paths):
            if i in seen:
                dups.append(f"{seen[i].name} / {p.relative_to(where) if p.is_relative_to(where) else p}")
            seen.setdefault(i, p)
        raise DfsweepError(f"{where}: {len(dups)} duplicate image id(s) (file names without extension): "
                           f"{_few(dups)}")
    return ids


def list_unlabelled(path: str | os.PathLike) -> Listing:
    """Images directly in `path`, sorted by name. A labels.csv or sub-folders beside them are ignored."""
    root = _root(path)
    paths = _images_in(root)
    if not paths:
        raise DfsweepError(f"{root}: no images found (looked for {' '.join(IMAGE_EXTENSIONS)} directly inside)")
    return Listing(paths=paths, labels=None, groups=None, ids=_check_unique_ids(root, paths))


def list_labelled(path: str | os.PathLike, cfg: DataConfig) -> Listing:
    """A labelled folder in either layout (see the module docstring)."""
    root = _root(path)
    csv = root / cfg.labels_csv
    if csv.is_file():
        listing = _from_csv(root, csv, cfg)
        check_classes(csv, listing.labels)
        return listing
    if (root / "real").is_dir() or (root / "fake").is_dir():
        return _from_class_folders(root)  # checks each class folder itself
    raise DfsweepError(f"{root}: found neither {cfg.labels_csv} nor real/ and fake/ sub-folders")


def check_classes(where: Path | str, labels: np.ndarray, after: str = "") -> None:
    """Both classes must be present; `after` explains a shrink (e.g. after skipping bad images)."""
    counts = np.bincount(labels, minlength=2)
    for cls, name in enumerate(CLASS_NAMES):
        if counts[cls] == 0:
            raise DfsweepError(f"{where}: class {name!r} has no images{after}")


def _from_class_folders(root: Path) -> Listing:
    paths: list[Path] = []
    labels: list[int] = []
    for cls, name in enumerate(CLASS_NAMES):
        folder = root / name
        found = _images_in(folder) if folder.is_dir() else []
        if not found:
            raise DfsweepError(f"{folder}: class {name!r} has no images "
                               f"(looked for {' '.join(IMAGE_EXTENSIONS)} directly inside)")
        paths += found
        labels += [cls] * len(found)
    return Listing(paths=paths, labels=np.asarray(labels, dtype=np.int64), groups=None, ids=_ids(root, paths))


def _ids(root: Path, paths: list[Path]) -> list[str]:
    """File stems; where two files share a stem (real/0.jpg, fake/0.jpg — common in public sets), every id
    carries its folder instead ("real/0"), so ids stay unique and readable."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return _check_unique_ids(root, paths, [f"{p.parent.name}/{p.stem}" for p in paths])


def _read_csv(csv: Path) -> pd.DataFrame:
    # 1. Everything as text: `0`/`1` labels then compare equal to the configured "0"/"1", and ids never
    #    turn into floats. Empty cells stay "" (no NaN) so they can be reported plainly.
    # 2. utf-8-sig: spreadsheet exports start with a BOM, which would otherwise rename the first column.
    #    index_col=False: a trailing comma on each row must not turn the image column into the index.
    try:
        return pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True,
                           encoding="utf-8-sig", index_col=False)
    except pd.errors.EmptyDataError:
        raise DfsweepError(f"{csv}: empty CSV (expected a header row and one row per image)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        msg = " ".join(str(e).split())
        raise DfsweepError(f"{csv}: cannot read CSV ({msg})") from None
    except OSError as e:
        raise DfsweepError(f"{csv}: cannot read CSV ({e.strerror or e})") from None


def _from_csv(root: Path, csv: Path, cfg: DataConfig) -> Listing:
    df = _read_csv(csv)
    df.columns = [str(c).strip() for c in df.columns]
    found = ", ".join(df.columns)
    for key, col in (("data.image_column", cfg.image_column), ("data.label_column", cfg.label_column)):
        if col not in df.columns:
            raise DfsweepError(f"{csv}: no column {col!r} ({key}); columns found: {found}")
    if len(df) == 0:
        raise DfsweepError(f"{csv}: no rows (expected one row per image)")

    names = [s.strip() for s in df[cfg.image_column]]
    empty = [i + 2 for i, s in enumerate(names) if not s]  # +2: 1-based, after the header line
    if empty:
        raise DfsweepError(f"{csv}: empty {cfg.image_column!r} cell on line(s) {_few([str(i) for i in empty])}")
    counts = pd.Series(names).value_counts()
    dup = counts[counts > 1]
    if len(dup):
        raise DfsweepError(f"{csv}: {len(dup)} image(s) listed more than once: {_few(list(dup.index))}")

    labels = _parse_labels(csv, df[cfg.label_column], cfg)

    paths = [root / n for n in names]
    missing = [n for n, p in zip(names, paths) if not p.is_file()]
    if missing:
        raise DfsweepError(f"{csv}: {len(missing)} listed image(s) not found in {root}: {_few(missing)}")

    groups = _name_column(csv, df, cfg.group_column, "data.group_column", names)
    domains = _name_column(csv, df, cfg.domain_column, "data.domain_column", names)

    listed = set(names)
    n_unlisted = sum(1 for p in _images_in(root) if p.name not in listed)
    if n_unlisted:
        log.info("%s: %d image(s) in the folder are not in %s and are ignored", root, n_unlisted, csv.name)
    return Listing(paths=paths, labels=labels, groups=groups, ids=_ids(root, paths), domains=domains)


def _name_column(csv: Path, df: pd.DataFrame, column: str, key: str, names: list[str]) -> Optional[np.ndarray]:
    """The optional column `column` (config key `key`) as stripped names, None when absent; no cell may be blank."""
    if column not in df.columns:
        return None
    values = np.asarray([s.strip() for s in df[column]], dtype=object)
    blank = [names[i] for i in np.flatnonzero(values == "")]
    if blank:
        raise DfsweepError(f"{csv}: {len(blank)} row(s) with an empty {column!r} ({key}): {_few(blank)}")
    return values


def _parse_labels(csv: Path, column: pd.Series, cfg: DataConfig) -> np.ndarray:
    # 1. Matching is case-insensitive and ignores surrounding spaces: `Fake`, ` 1` are what people write.
    lookup = {v.strip().lower(): 0 for v in cfg.real_values}
    lookup.update({v.strip().lower(): 1 for v in cfg.fake_values})
    raw = [s.strip() for s in column]
    bad = sorted({s for s in raw if s.lower() not in lookup})
    if bad:
        raise DfsweepError(
            f"{csv}: unknown value(s) in column {cfg.label_column!r}: {_few(bad)}; valid: "
            f"real = {', '.join(map(repr, cfg.real_values))}, fake = {', '.join(map(repr, cfg.fake_values))}")
    return np.asarray([lookup[s.lower()] for s in raw], dtype=np.int64)
