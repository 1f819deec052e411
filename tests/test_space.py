import optuna
import pytest

from dfsweep.config import config_from_dict
from dfsweep.errors import DfsweepError
from dfsweep.space import parse_space

SPACE = {
    "train.lr": {"float": [1e-5, 1e-2], "log": True},
    "model.name": {"choice": ["deepfakenet", "hrnet"]},
    "dfn_width": {"key": "model.width", "float": [0.25, 1.0], "step": 0.25, "when": {"model.name": "deepfakenet"}},
    "hrnet_width": {"key": "model.width", "int": [8, 16], "step": 4, "when": {"model.name": "hrnet"}},
    "augment.preset": {"choice": ["seed", "sharp", "none"]},
    "augment.blur_p": {"float": [0.0, 0.5], "when": {"augment.preset": "seed"}},
    "augment.sharpness_p": {"float": [0.0, 0.5], "when": {"augment.preset": ["sharp"]}},
}


def _space(search=SPACE, model=None):
    return parse_space(config_from_dict({"model": model or {"name": "deepfakenet"}, "search": search}))


def _sample(space, n, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), direction="maximize")
    define = space.define_by_run()
    out = []
    for i in range(n):
        t = study.ask()
        define(t)
        out.append(dict(t.params))
        study.tell(t, float(i % 3))
    return out


def test_conditional_entries_only_when_they_apply():
    samples = _sample(_space(), 40)
    for p in samples:
        assert ("dfn_width" in p) == (p["model.name"] == "deepfakenet")
        assert ("hrnet_width" in p) == (p["model.name"] == "hrnet")
        assert ("augment.blur_p" in p) == (p["augment.preset"] == "seed")
        assert ("augment.sharpness_p" in p) == (p["augment.preset"] == "sharp")
    assert {p["model.name"] for p in samples} == {"deepfakenet", "hrnet"}
    assert {p["augment.preset"] for p in samples} == {"seed", "sharp", "none"}


def test_sampled_params_make_valid_configs_with_the_right_keys():
    space = _space()
    for p in _sample(space, 20):
        cfg = space.config_for(p)
        assert cfg.train.lr == p["train.lr"]
        if p["model.name"] == "hrnet":
            assert cfg.model.name == "hrnet" and cfg.model.params["width"] == p["hrnet_width"]
            assert isinstance(cfg.model.params["width"], int)
        else:
            assert cfg.model.params["width"] == p["dfn_width"]


def test_same_seed_same_configs_other_seed_differs():
    assert _sample(_space(), 12, seed=5) == _sample(_space(), 12, seed=5)
    assert _sample(_space(), 12, seed=5) != _sample(_space(), 12, seed=6)


def test_order_in_the_file_does_not_matter():
    flipped = dict(reversed(list(SPACE.items())))
    samples = _sample(_space(flipped), 30)
    for p in samples:
        assert ("augment.blur_p" in p) == (p["augment.preset"] == "seed")
        assert ("hrnet_width" in p) == (p["model.name"] == "hrnet")


def test_condition_on_a_fixed_config_key():
    space = _space({"augment.blur_p": {"float": [0.0, 0.5], "when": {"augment.preset": "seed"}}})
    assert all("augment.blur_p" in p for p in _sample(space, 3))
    cfg = config_from_dict({"augment": {"preset": "none"},
                            "search": {"augment.blur_p": {"float": [0.0, 0.5], "when": {"augment.preset": "seed"}}}})
    assert all("augment.blur_p" not in p for p in _sample(parse_space(cfg), 3))


@pytest.mark.parametrize("search, needle", [
    ({"train.lr": {"float": [1e-2, 1e-5]}}, "search.train.lr:"),
    ({"train.lr": {"flot": [1e-5, 1e-2]}}, "search.train.lr.flot: unknown key"),
    ({"train.lr": {"float": [1e-5]}}, "needs [low, high]"),
    ({"train.lr": {"float": [0.0, 1e-2], "log": True}}, "search.train.lr:"),
    ({"model.name": {"choice": ["deepfakenet", "nope"]}}, "unknown model 'nope'"),
    ({"train.epoks": {"int": [1, 3]}}, "train.epoks: unknown key"),
    ({"sweep.seed": {"int": [1, 3]}}, "must be section.field"),
    ({"train.epochs": {"int": [0, 3]}}, "train.epochs: must be >= 1"),
    ({"model.name": {"choice": ["deepfakenet", "hrnet"]},
      "w": {"key": "model.width", "int": [8, 16], "when": {"model.name": "hrnett"}}}, "has no choice 'hrnett'"),
    ({"a": {"key": "augment.preset", "choice": ["seed"], "when": {"train.lr": 0.1}},
      "train.lr": {"choice": [0.1], "when": {"augment.preset": "seed"}}}, "cycle"),
    ({"train.lr": {"float": [1e-5, 1e-2], "when": {"train.nope": 1}}}, "train.nope is not a config key"),
    ({"train.lr": {"float": [1e-5, 1e-2], "choice": [1]}}, "exactly one of"),
])
def test_invalid_spaces_name_the_entry(search, needle):
    with pytest.raises(DfsweepError) as e:
        _space(search)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_shipped_spaces_parse():
    from pathlib import Path
    from dfsweep.config import load_config
    files = sorted((Path(__file__).resolve().parents[1] / "search_spaces").glob("*.yaml"))
    assert files
    for f in files:
        cfg = load_config(f)
        assert parse_space(cfg), f
