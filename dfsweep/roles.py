"""What a trial is for: a search trial, the recipe row (the YAML's own values) or a confirmation run.

The role rides in the trial's Tune config under reserved `dfsweep.*` keys beside the sampled parameters, so
the trial, the scheduler, the trackers and the leaderboard all read it from the same place, and a resumed
sweep keeps it.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

from .config import Config
from .errors import DfsweepError
from .space import SearchSpace, lookup

__all__ = ["ROLE", "OF", "SEED_OFFSET", "FOLD", "SEARCH", "RECIPE", "CONFIRM", "split_params", "role_of",
           "trial_config", "recipe_params"]

ROLE, OF, SEED_OFFSET, FOLD = "dfsweep.role", "dfsweep.confirms", "dfsweep.seed_offset", "dfsweep.fold"
SEARCH, RECIPE, CONFIRM = "search", "recipe", "confirm"
_PREFIX = "dfsweep."


def split_params(config: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """A trial's Tune config -> (the sampled parameters, the role keys)."""
    params = {k: v for k, v in config.items() if not k.startswith(_PREFIX)}
    meta = {k: v for k, v in config.items() if k.startswith(_PREFIX)}
    return params, meta


def role_of(config: Mapping[str, Any]) -> str:
    return str(config.get(ROLE, SEARCH))


def trial_config(space: SearchSpace, config: Mapping[str, Any]) -> Config:
    """The full config a trial trains. A confirmation run trains its configuration with training seed
    `train.seed + seed_offset` on the split with seed `split seed + fold` (fold 0: the search's own split)."""
    params, meta = split_params(config)
    cfg = space.config_for(params)
    if meta.get(ROLE) != CONFIRM:
        return cfg
    split_seed = cfg.data.split_seed if cfg.data.split_seed is not None else cfg.train.seed
    return cfg.replace({"train.seed": cfg.train.seed + int(meta[SEED_OFFSET]),
                        "data.split_seed": split_seed + int(meta.get(FOLD, 0))})


def recipe_params(space: SearchSpace) -> Dict[str, Any]:
    """The YAML's own value of every search entry that applies to it: the first trial of a sweep that
    starts from its defaults. A value outside an entry's range or choices is refused (Optuna would not
    accept it as a point of the space)."""
    values: Dict[str, Any] = {}
    params: Dict[str, Any] = {}
    for e in space.entries:
        if not e.applies(values, space.base):
            continue
        v = lookup(space.base, e.key)
        if not e.contains(v):
            raise DfsweepError(f"search.{e.name}: the config's own value {v!r} is outside the searched range, so "
                               "the recipe cannot be the first trial (set sweep.start_from_defaults: false, or "
                               "widen the range)")
        values[e.key] = v
        params[e.name] = v
    return params
