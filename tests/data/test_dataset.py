import numpy as np
import pytest

import dfsweep.data.demo as demo
from dfsweep.config import DataConfig
from dfsweep.data.dataset import DecodedSet, load_labelled, load_unlabelled
from dfsweep.errors import DfsweepError

S = 64
COLOURS = {"r0": (250, 0, 0), "r1": (0, 250, 0), "r2": (0, 0, 250), "f0": (250, 250, 0), "f1": (0, 250, 250)}


@pytest.fixture
def solid_set(tmp_path, write_image):
    root = tmp_path / "set"
    for name, c in COLOURS.items():
        write_image(root / ("real" if name[0] == "r" else "fake") / f"{name}.png", color=c)
    return root


def _cfg(tmp_path, **kw):
    return DataConfig(image_size=S, cache_dir=str(tmp_path / "cache"), **kw)


def test_load_labelled_and_subset(tmp_path, solid_set):
    data = load_labelled(_cfg(tmp_path), str(solid_set))
    assert data.images.shape == (5, S, S, 3) and data.ids == ["r0", "r1", "r2", "f0", "f1"]
    assert data.class_counts().tolist() == [3, 2]
    for img, i in zip(data.images, data.ids):
        assert (img[S // 2, S // 2] == COLOURS[i]).all()
    sub = data.subset(np.array([4, 0]))
    assert sub.ids == ["f1", "r0"] and sub.labels.tolist() == [1, 0] and (sub.images[0] == data.images[4]).all()
    assert data.subset(data.labels == 1).ids == ["f0", "f1"]


def test_skip_keeps_labels_aligned(tmp_path, solid_set):
    (solid_set / "real" / "r1.png").write_bytes(b"")
    cfg = _cfg(tmp_path, on_bad_image="skip")
    data = load_labelled(cfg, str(solid_set))
    assert data.ids == ["r0", "r2", "f0", "f1"] and data.labels.tolist() == [0, 0, 1, 1]
    assert (data.images[1, 0, 0] == COLOURS["r2"]).all()
    with pytest.raises(DfsweepError, match="r1.png: empty file"):
        load_labelled(_cfg(tmp_path), str(solid_set))


def test_skip_that_empties_a_class_is_an_error(tmp_path, solid_set):
    for n in ("f0", "f1"):
        (solid_set / "fake" / f"{n}.png").write_bytes(b"junk")
    with pytest.raises(DfsweepError, match="class 'fake' has no images after skipping bad images"):
        load_labelled(_cfg(tmp_path, on_bad_image="skip"), str(solid_set))


def test_load_unlabelled(tmp_path, write_image):
    for i in range(3):
        write_image(tmp_path / "test" / f"t{i}.jpg", seed=i)
    data = load_unlabelled(str(tmp_path / "test"), _cfg(tmp_path))
    assert data.ids == ["t0", "t1", "t2"] and data.labels is None and data.images.shape == (3, S, S, 3)
    with pytest.raises(ValueError):
        data.class_counts()


def test_demo_is_generated_on_demand(tmp_path, solid_set, monkeypatch):
    seen = []
    monkeypatch.setattr(demo, "ensure_demo", lambda cache_dir: seen.append(cache_dir) or solid_set)
    cfg = _cfg(tmp_path, train="demo")
    assert len(load_labelled(cfg)) == 5 and seen == [cfg.cache_dir]


def test_decoded_set_is_frozen(tmp_path, solid_set):
    data = load_labelled(_cfg(tmp_path), str(solid_set))
    with pytest.raises(AttributeError):
        data.ids = []
    assert isinstance(data, DecodedSet)
