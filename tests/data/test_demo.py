"""The embedded demo set: deterministic, 5:1, no global-statistics shortcut, learnable by DeepFakeNet."""
from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dfsweep.data.demo as demo
from dfsweep.data.demo import DEMO_VERSION, ensure_demo, generate_demo
from dfsweep.errors import DfsweepError


def _rows(folder: Path) -> list[dict]:
    with open(folder / "labels.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="session")
def demo_set(tmp_path_factory):
    """`data.train: demo`: the default set, generated once per session into a fresh cache and decoded.

    Returns (folder, DecodedSet, encoded file sizes in bytes)."""
    from dfsweep.config import DataConfig
    from dfsweep.data import load_labelled

    cache = tmp_path_factory.mktemp("cache")
    data = load_labelled(DataConfig(train="demo", image_size=128, cache_dir=str(cache)))
    folder = cache / DEMO_VERSION
    sizes = np.array([(folder / f"{i}.jpg").stat().st_size for i in data.ids], dtype=np.float64)
    return folder, data, sizes


def test_small_set_is_deterministic_and_well_formed(tmp_path):
    a = generate_demo(tmp_path / "a", n_real=60, n_fake=12, seed=3)
    b = generate_demo(tmp_path / "b", n_real=60, n_fake=12, seed=3)
    assert _tree(a) == _tree(b)                               # byte-identical, labels.csv included

    rows = _rows(a)
    assert set(rows[0]) == {"image", "label", "group"}
    assert sum(r["label"] == "real" for r in rows) == 60
    assert sum(r["label"] == "fake" for r in rows) == 12
    assert {p.name for p in a.iterdir()} == {r["image"] for r in rows} | {"labels.csv"}
    # Names are neutral ids; a fake shares the group of the real it was made from.
    assert all(re.fullmatch(r"[0-9a-f]{16}\.jpg", r["image"]) for r in rows)
    real_groups = {r["group"] for r in rows if r["label"] == "real"}
    assert len(real_groups) == 60
    assert {r["group"] for r in rows if r["label"] == "fake"} <= real_groups
    for r in rows:
        with Image.open(a / r["image"]) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (128, 128))

    c = generate_demo(tmp_path / "c", n_real=60, n_fake=12, seed=4)
    assert _tree(c) != _tree(a)


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = {"n": 0}
    finish = demo._finish

    def flaky(img, rng):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return finish(img, rng)

    monkeypatch.setattr(demo, "_finish", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate_demo(tmp_path / "out", n_real=10, n_fake=2)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DfsweepError, match="not an empty folder"):
        generate_demo(tmp_path / "out", n_real=5, n_fake=1)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert generate_demo(tmp_path / "empty", n_real=5, n_fake=1) == tmp_path / "empty"


def test_ensure_demo_keeps_an_existing_set(tmp_path):
    existing = tmp_path / DEMO_VERSION
    existing.mkdir()
    (existing / "labels.csv").write_text("image,label,group\n")
    assert ensure_demo(tmp_path) == existing
    assert [p.name for p in existing.iterdir()] == ["labels.csv"]


def test_default_set_has_no_global_statistics_shortcut(demo_set):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder, data, sizes = demo_set
    assert folder.name == DEMO_VERSION
    assert data.images.shape == (1800, 128, 128, 3) and data.labels.sum() == 300
    # Per-channel mean and std of each decoded image, and its encoded size.
    pixels = (im.reshape(-1, 3).astype(np.float64) for im in data.images)
    stats = np.array([[*p.mean(axis=0), *p.std(axis=0)] for p in pixels])
    feats = np.column_stack([stats, sizes])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    auc = cross_val_score(clf, feats, data.labels, cv=cv, scoring="roc_auc").mean()
    print(f"logistic regression on global statistics: AUC {auc:.3f}")
    assert auc < 0.65, f"global statistics separate real from fake: AUC {auc:.3f}"


@pytest.mark.slow
def test_briefly_trained_deepfakenet_detects_the_fakes(demo_set):
    import torch
    from sklearn.metrics import roc_auc_score

    from dfsweep.config import config_from_dict
    from dfsweep.data import split_indices
    from dfsweep.train import fit, images_to_tensor, predict_scores

    _, data, _ = demo_set
    # 1. A third of the identities is held out; a fake always sits with the real it was made from.
    train_idx, test_idx = split_indices(data.labels, data.groups, val_fraction=1 / 3, seed=0)
    assert not set(data.groups[train_idx]) & set(data.groups[test_idx])

    # 2. The project's own training loop, briefly: 8 epochs of a half-width DeepFakeNet at 128 px,
    #    no augmentation, balanced batches; the best epoch is picked on a validation split of the training part.
    cfg = config_from_dict({
        "data": {"image_size": 128},
        "model": {"name": "deepfakenet", "width": 0.5, "dropout": 0.0},
        "augment": {"preset": "none"},
        "train": {"epochs": 8, "batch_size": 32, "lr": 2e-3, "seed": 0, "device": "cpu"},
    })
    start = time.perf_counter()
    result = fit(cfg, data.subset(train_idx), select="auc")
    train_s = time.perf_counter() - start

    # 3. Scored on identities it never saw.
    result.model.load_state_dict(result.best_state)
    scores = predict_scores(result.model, images_to_tensor(data.images[test_idx]), cfg, torch.device("cpu"))
    auc = roc_auc_score(data.labels[test_idx], scores)
    print(f"DeepFakeNet held-out AUC {auc:.3f} after {train_s:.0f} s of training (epoch {result.best_epoch})")
    # learnable, but not to 1.0: one fake in ten is blended at under 10% opacity (the demo's ceiling)
    assert 0.93 < auc < 0.995
