from pathlib import Path

import pytest
import yaml

from dfsweep.config import Config, config_from_dict, load_config, parse_set
from dfsweep.errors import DfsweepError


def _write(tmp_path, obj, name="c.yaml"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else yaml.safe_dump(obj))
    return p


def test_defaults_are_the_recipe():
    c = Config()
    assert (c.train.lr, c.train.weight_decay, c.train.batch_size, c.train.epochs, c.train.seed) == (1e-4, 1e-4, 16, 20, 42)
    assert (c.loss.bce_weight, c.loss.gamma) == (0.6, 2.0)
    assert c.augment.preset == "seed" and c.augment.blur_p == 0.3 and c.augment.crop_scale_min == 0.8
    assert c.data.image_size == 256 and c.data.val_fraction == 0.12
    assert c.model.name == "deepfakenet"
    assert (c.sweep.sampler, c.sweep.start_from_defaults, c.sweep.confirm.top_k, c.sweep.confirm.seeds) == ("tpe", True, 2, 2)


def test_shipped_space_loads():
    c = load_config(Path(__file__).resolve().parents[1] / "search_spaces" / "deepfakenet.yaml")
    assert c.model.name == "deepfakenet" and c.data.train == "demo"


def test_configs_are_frozen():
    c = Config()
    with pytest.raises(Exception):
        c.train.lr = 1.0


@pytest.mark.parametrize("raw, needle", [
    ({"train": {"epoch": 3}}, "train.epoch: unknown key; valid keys: epochs"),
    ({"trian": {}}, "trian: unknown section"),
    ({"train": {"epochs": "three"}}, "train.epochs: expected an integer"),
    ({"train": {"epochs": -1}}, "train.epochs: must be >= 1"),
    ({"data": {"image_size": 0}}, "data.image_size: must be >= 64"),
    ({"train": {"lr": True}}, "train.lr: expected a number"),
    ({"model": {"name": "nope"}}, "unknown model 'nope'; valid choices: deepfakenet"),
    ({"model": {"name": "deepfakenet", "widht": 2}}, "model.widht: unknown parameter"),
    ({"augment": {"preset": "blurry"}}, "augment.preset: 'blurry' is not valid; valid choices: seed, sharp, none"),
    ({"augment": {"blur_p": 1.5}}, "augment.blur_p: must be a probability"),
    ({"train": {"device": "tpu"}}, "train.device: 'tpu' is not valid; valid choices: auto, cpu, cuda"),
    ({"train": {"compile_mode": "cudagraphs"}}, "train.compile_mode: 'cudagraphs' is not valid; valid choices: "
                                                "default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs"),
    ({"loss": {"bce_weight": 2}}, "loss.bce_weight: must be in [0, 1]"),
    ({"data": {"on_bad_image": "ignore"}}, "valid choices: error, skip"),
    ({"finalize": {"min_recall": 1.5}}, "finalize.min_recall: must be in (0, 1]"),
    ({"finalize": {"min_recall": 0.8, "min_precision": 0.5}}, "cannot be combined with finalize.min_precision"),
    ({"sweep": {"sampler": "cmaes"}}, "sweep.sampler: unknown sampler 'cmaes'; valid choices: nsga2, random, tpe"),
    ({"sweep": {"confirm": {"topk": 2}}}, "sweep.confirm.topk: unknown key; valid keys: top_k, seeds, folds"),
    ({"sweep": {"confirm": {"seeds": 0}}}, "sweep.confirm.seeds: must be >= 1"),
    ({"sweep": {"start_from_defaults": "yes"}}, "sweep.start_from_defaults: expected true/false"),
    ({"data": {"split_seed": 1.5}}, "data.split_seed: expected an integer"),
])
def test_bad_values_name_the_key_and_choices(raw, needle):
    with pytest.raises(DfsweepError) as e:
        config_from_dict(raw)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_model_params_are_typed_by_the_factory_defaults():
    c = config_from_dict({"model": {"name": "deepfakenet", "width": 1, "dropout": 0}})
    assert isinstance(c.model.params["width"], float) and isinstance(c.model.params["dropout"], float)
    with pytest.raises(DfsweepError, match="model.depth: expected an integer"):
        config_from_dict({"model": {"depth": 1.5}})


def test_set_overrides_any_key_and_rejects_unknown(tmp_path):
    p = _write(tmp_path, {"train": {"epochs": 5}})
    c = load_config(p, ["train.epochs=3", "data.image_size=128", "model.width=0.5", "data.train=some/dir"])
    assert c.train.epochs == 3 and c.data.image_size == 128 and c.model.params["width"] == 0.5
    assert c.data.train == "some/dir"
    with pytest.raises(DfsweepError, match="train.epoks: unknown key"):
        load_config(p, ["train.epoks=3"])
    with pytest.raises(DfsweepError, match="expected section.key=value"):
        load_config(p, ["train.epochs"])


def test_parse_set_uses_yaml_scalars():
    assert parse_set("train.lr=0.001") == ("train.lr", 1e-3)
    assert config_from_dict({"train": {"lr": parse_set("train.lr=1e-3")[1]}}).train.lr == 1e-3
    assert parse_set("train.amp=false") == ("train.amp", False)
    assert parse_set("data.real_values=[a, b]") == ("data.real_values", ["a", "b"])


def test_not_yaml_and_missing_file(tmp_path):
    bad = _write(tmp_path, "train: [unclosed\n  epochs: 3")
    with pytest.raises(DfsweepError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(DfsweepError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(DfsweepError, match="expected a YAML mapping"):
        load_config(_write(tmp_path, "- a\n- b\n", "list.yaml"))


def test_yaml_is_loaded_safely(tmp_path):
    p = _write(tmp_path, "train: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(DfsweepError):
        load_config(p)
    assert not (tmp_path / "pwned").exists()


def test_roundtrip_to_dict():
    c = config_from_dict({"model": {"name": "deepfakenet", "width": 0.5}, "train": {"epochs": 2}})
    again = config_from_dict(c.to_dict())
    assert again == c
    assert c.replace({"train.lr": 0.01}).train.lr == 0.01


def test_augment_presets_in_the_config_are_the_registered_ones():
    import typing
    from dfsweep.augment import PRESETS
    from dfsweep.config import AugmentConfig
    hint = typing.get_type_hints(AugmentConfig)["preset"]
    assert set(typing.get_args(hint)) == set(PRESETS.names())
    with pytest.raises(DfsweepError, match="augment.preset"):
        config_from_dict({"augment": {"preset": "nope"}})


def test_flat_dict_gives_dotted_keys_and_keeps_the_search_block_whole():
    from dfsweep.config import flat_dict
    flat = flat_dict({"train": {"lr": 1e-3, "epochs": 2}, "search": {"train.lr": {"float": [1e-4, 1e-2]}}})
    assert flat == {"train.lr": 1e-3, "train.epochs": 2, "search": {"train.lr": {"float": [1e-4, 1e-2]}}}


def test_val_sets_objectives_and_several_training_folders():
    from dfsweep.config import config_from_dict
    cfg = config_from_dict({"data": {"train": ["a", "b"], "val_sets": {"ciplab": "c"}},
                            "sweep": {"metric": {"min": ["auc", "auc@ciplab"]}, "objectives": ["auc", "auc@ciplab"]},
                            "finalize": {"pick": "auc@ciplab"}})
    assert cfg.data.train == ("a", "b") and cfg.data.val_sets == {"ciplab": "c"}
    assert cfg.sweep.objectives == ("auc", "auc@ciplab")
    assert config_from_dict({"data": {"train": ["a"]}}).data.train == "a"
    # the round trip through YAML keeps every form
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("raw, needle", [
    ({"sweep": {"metric": "auc@ciplab"}}, "sweep.metric: auc@ciplab names validation set(s) ciplab that data.val_sets"),
    ({"sweep": {"objectives": ["auc", "auc@x"]}}, "sweep.objectives: auc@x names validation set(s) x"),
    ({"finalize": {"pick": "f1@x"}}, "finalize.pick: f1@x names validation set(s) x"),
    ({"sweep": {"objectives": ["auc"]}}, "sweep.objectives: needs two or more"),
    ({"sweep": {"objectives": ["auc", "auc"]}}, "sweep.objectives: an objective is named twice"),
    ({"sweep": {"objectives": ["auc", "f1"], "mode": "min"}}, "every objective is maximised"),
    ({"sweep": {"objectives": "auc"}}, "sweep.objectives: needs two or more"),
    ({"data": {"val_sets": ["x"]}}, "data.val_sets: expected a mapping"),
    ({"data": {"val_sets": {"a@b": "x"}}}, "data.val_sets.a@b: a name is letters"),
    ({"data": {"val_sets": {"a": 3}}}, "data.val_sets.a: expected a folder"),
    ({"data": {"train": ["a", "a"]}}, "data.train: a folder is listed twice"),
    ({"sweep": {"validation": "kfold"}}, "sweep.validation: 'kfold' is not valid"),
])
def test_bad_generalisation_settings_are_one_line(raw, needle):
    from dfsweep.config import config_from_dict
    with pytest.raises(DfsweepError) as e:
        config_from_dict(raw)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_leave_one_domain_out_may_name_the_held_out_domain_before_the_data_is_read():
    from dfsweep.config import config_from_dict
    cfg = config_from_dict({"sweep": {"validation": "leave_one_domain_out", "metric": "auc@fakes2"}})
    assert cfg.sweep.metric == "auc@fakes2"
