"""Leave-one-domain-out: validate on one domain (a generator, a data source) that training never sees."""
from __future__ import annotations

from typing import Tuple

from ..config import DataConfig
from ..errors import DfsweepError
from .dataset import DecodedSet
from .sources import CLASS_NAMES

__all__ = ["hold_out_domain"]

_WHERE = "sweep.validation: leave_one_domain_out"


def hold_out_domain(data: DecodedSet, cfg: DataConfig) -> Tuple[DecodedSet, str, DecodedSet]:
    """(the rows of every other domain, the held-out domain's name, its rows). The held-out domain is
    `cfg.holdout_domain`, or the last domain in order of first appearance (with several folders, the last one's)."""
    if data.domains is None:
        raise DfsweepError(f"{_WHERE} needs domains: give several data.train folders or a "
                           f"`{cfg.domain_column}` column in {cfg.labels_csv}")
    found = list(dict.fromkeys(data.domains))  # order of first appearance, which "the last domain" refers to
    if len(found) < 2:
        raise DfsweepError(f"{_WHERE} needs two or more domains, found only {found[0]!r}" if found else
                           f"{_WHERE} needs two or more domains, found none")
    held = found[-1] if cfg.holdout_domain is None else cfg.holdout_domain
    if held not in found:
        raise DfsweepError(f"{_WHERE}: data.holdout_domain {held!r} is not a domain of the data "
                           f"(found: {', '.join(map(repr, found))})")
    is_held = data.domains == held
    train, val = data.subset(~is_held), data.subset(is_held)
    others = ", ".join(repr(d) for d in found if d != held)
    _check_both(train, f"the training domains ({others}) have")
    _check_both(val, f"the held-out domain {held!r} has")
    return train, held, val


def _check_both(rows: DecodedSet, what: str) -> None:
    # AUC and the loss's class balance both need each class on each side of the split
    missing = [name for name, n in zip(CLASS_NAMES, rows.class_counts()) if n == 0]
    if missing:
        raise DfsweepError(f"{_WHERE}: {what} no {' and no '.join(map(repr, missing))} images")
