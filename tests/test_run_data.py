"""What a run trains and validates on: other labelled sets, a held-out domain, and the sets a metric names."""
import pytest

from dfsweep.config import config_from_dict
from dfsweep.errors import DfsweepError
from dfsweep.run_data import load_run_data
from tinydata import write_tiny_set


def _cfg(tmp_path, **sections):
    raw = {"data": {"image_size": 64, "cache_dir": str(tmp_path / "cache"), **sections.pop("data", {})}}
    return config_from_dict({**raw, **sections})


def test_val_sets_are_decoded_beside_the_training_data(tmp_path):
    train = write_tiny_set(tmp_path / "train", 10, 4)
    other = write_tiny_set(tmp_path / "other", 6, 5, seed=3)
    lines = []
    data, sets = load_run_data(_cfg(tmp_path, data={"train": str(train), "val_sets": {"other": str(other)}},
                                    sweep={"metric": "auc@other"}), lines.append)
    assert len(data) == 14 and list(sets) == ["other"] and len(sets["other"]) == 11
    assert sets["other"].images.shape[1:] == (64, 64, 3)
    assert any("validation set other: 11 images (6 real, 5 fake)" in line for line in lines)


def test_leave_one_domain_out_holds_the_last_folder_out_as_a_set(tmp_path):
    a = write_tiny_set(tmp_path / "dfdc", 10, 4)
    b = write_tiny_set(tmp_path / "ciplab", 6, 5, seed=3)
    lines = []
    data, sets = load_run_data(_cfg(tmp_path, data={"train": [str(a), str(b)]},
                                    sweep={"validation": "leave_one_domain_out", "metric": "auc@ciplab"}),
                               lines.append)
    assert len(data) == 14 and set(data.domains) == {"dfdc"}
    assert list(sets) == ["ciplab"] and len(sets["ciplab"]) == 11 and set(sets["ciplab"].domains) == {"ciplab"}
    assert any("held-out domain ciplab" in line for line in lines)


def test_a_metric_on_a_set_the_run_lacks_is_one_line(tmp_path):
    a = write_tiny_set(tmp_path / "dfdc", 10, 4)
    b = write_tiny_set(tmp_path / "ciplab", 6, 5, seed=3)
    cfg = _cfg(tmp_path, data={"train": [str(a), str(b)]},
               sweep={"validation": "leave_one_domain_out", "metric": "auc@dfdc"})
    with pytest.raises(DfsweepError, match=r"name validation set\(s\) dfdc that this run does not have \(it has: "
                                           r"ciplab\)"):
        load_run_data(cfg, lambda _: None)
    clash = _cfg(tmp_path, data={"train": [str(a), str(b)], "val_sets": {"ciplab": str(b)}},
                 sweep={"validation": "leave_one_domain_out"})
    with pytest.raises(DfsweepError, match="data.val_sets.ciplab: the held-out domain has the same name"):
        load_run_data(clash, lambda _: None)
