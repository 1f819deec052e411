"""What a run trains and validates on: the training data, and the other labelled sets scored every epoch.

`data.val_sets` are decoded once here into the decoded-image cache, like the training data (trials read both
in place); with `sweep.validation: leave_one_domain_out` one domain of the training data is held out and scored as
a set of its own. Every set a metric names must exist: one line naming it otherwise.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from .config import Config
from .data import DecodedSet, hold_out_domain, load_labelled, load_val_sets
from .data.cache import Builder
from .errors import DfsweepError
from .objective import Scoring

__all__ = ["load_run_data", "describe"]


def describe(data: DecodedSet) -> str:
    real, fake = data.class_counts()
    return f"{len(data)} images ({real} real, {fake} fake)"


def load_run_data(cfg: Config, echo: Callable[[str], None] = print, builder: Optional[Builder] = None
                  ) -> Tuple[DecodedSet, Dict[str, DecodedSet]]:
    """(training data, {name: set scored as auc@name, ...}), decoded into the cache by `builder` (a sweep's Ray
    tasks; else threads here); every file is checked before anything runs."""
    data = load_labelled(cfg.data, builder=builder)
    echo(f"data: {describe(data)} at {cfg.data.image_size} px")
    val_sets = load_val_sets(cfg.data, builder)
    if cfg.sweep.validation == "leave_one_domain_out":
        data, name, held = hold_out_domain(data, cfg.data)
        if name in val_sets:
            raise DfsweepError(f"data.val_sets.{name}: the held-out domain has the same name; rename the set")
        val_sets = {**val_sets, name: held}
        domains = sorted(set(data.domains)) if data.domains is not None else []
        echo(f"leave one domain out: training on {', '.join(domains)} ({describe(data)}), "
             f"validating on the held-out domain {name} as auc@{name}, recall@{name}, ...")
    for name, vs in val_sets.items():
        echo(f"validation set {name}: {describe(vs)}, scored every epoch as auc@{name}, recall@{name}, ...")
    missing = sorted(Scoring.of(cfg.sweep, cfg.finalize).val_sets() - set(val_sets))
    if missing:
        raise DfsweepError(f"sweep.metric/objectives name validation set(s) {', '.join(missing)} that this run "
                           f"does not have (it has: {', '.join(val_sets) or 'none'})")
    return data, val_sets
