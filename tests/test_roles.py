"""Trial roles: the recipe row's parameters, and the seed and split of a confirmation run."""
from pathlib import Path

import numpy as np
import pytest

from dfsweep.config import config_from_dict, load_config
from dfsweep.errors import DfsweepError
from dfsweep.roles import CONFIRM, FOLD, OF, ROLE, SEED_OFFSET, recipe_params, split_params, trial_config
from dfsweep.space import parse_space

SPACES = sorted(Path(__file__).resolve().parents[1].joinpath("search_spaces").glob("*.yaml"))


def _effective(cfg):
    """The config as trained: model parameters resolved (set or default)."""
    return {**cfg.to_dict(), "model": {"name": cfg.model.name, "input": cfg.model.input, **cfg.model.resolved()}}


def _space(search, **sections):
    return parse_space(config_from_dict({"search": search, **sections}))


def test_recipe_params_are_the_configs_own_values_where_entries_apply():
    space = _space({"train.lr": {"float": [1e-5, 1e-2], "log": True},
                    "augment.preset": {"choice": ["seed", "sharp", "none"]},
                    "augment.blur_p": {"float": [0.0, 0.6], "when": {"augment.preset": "seed"}},
                    "augment.sharpness_p": {"float": [0.0, 0.6], "when": {"augment.preset": "sharp"}}},
                   train={"lr": 3e-4}, augment={"blur_p": 0.2})
    assert recipe_params(space) == {"train.lr": 3e-4, "augment.preset": "seed", "augment.blur_p": 0.2}
    assert _effective(space.config_for(recipe_params(space))) == _effective(space.base)


def test_a_default_outside_the_searched_range_is_refused_by_name():
    with pytest.raises(DfsweepError, match=r"search\.train\.lr: the config's own value 0.0001 is outside"):
        recipe_params(_space({"train.lr": {"float": [1e-3, 1e-2]}}))
    with pytest.raises(DfsweepError, match="model.width"):
        recipe_params(_space({"model.width": {"choice": [0.5, 0.75]}}))
    with pytest.raises(DfsweepError, match="batch_size"):
        recipe_params(_space({"train.batch_size": {"int": [8, 32], "step": 5}}))


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.name)
def test_every_shipped_space_can_start_from_its_recipe(path):
    space = parse_space(load_config(path))
    params = recipe_params(space)
    assert params and _effective(space.config_for(params)) == _effective(space.base)


def test_a_confirmation_run_trains_with_a_new_seed_on_the_chosen_split():
    space = _space({"train.lr": {"float": [1e-5, 1e-2]}}, train={"seed": 7})
    config = {"train.lr": 1e-3, ROLE: CONFIRM, OF: "abc", SEED_OFFSET: 2, FOLD: 0}
    assert split_params(config) == ({"train.lr": 1e-3}, {ROLE: CONFIRM, OF: "abc", SEED_OFFSET: 2, FOLD: 0})
    cfg = trial_config(space, config)
    assert (cfg.train.seed, cfg.data.split_seed, cfg.train.lr) == (9, 7, 1e-3)   # the search's split, seed 7
    assert trial_config(space, {**config, FOLD: 3}).data.split_seed == 10
    assert trial_config(space, {"train.lr": 1e-3}).train.seed == 7                 # a search trial: as sampled


def test_split_seed_decouples_the_split_from_the_training_seed():
    from dfsweep.data import DecodedSet
    from dfsweep.train import validation_split
    rng = np.random.default_rng(0)
    data = DecodedSet(np.zeros((200, 1, 1, 3), np.uint8), (rng.random(200) < 0.2).astype(np.int64), None,
                      [str(i) for i in range(200)])
    base = config_from_dict({"train": {"seed": 1}})
    _, val = validation_split(base, data)
    _, same = validation_split(base.replace({"train.seed": 5, "data.split_seed": 1}), data)
    _, other = validation_split(base.replace({"train.seed": 5}), data)
    assert np.array_equal(val, same) and not np.array_equal(val, other)
