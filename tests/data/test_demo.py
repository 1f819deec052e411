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
    """The default demo set, made once per session through the cache entry point, decoded with PIL."""
    folder = ensure_demo(tmp_path_factory.mktemp("cache"))
    rows = _rows(folder)
    images = np.stack([np.asarray(Image.open(folder / r["image"]).convert("RGB")) for r in rows])
    labels = np.array([r["label"] == "fake" for r in rows], dtype=np.int64)
    groups = np.array([r["group"] for r in rows])
    sizes = np.array([(folder / r["image"]).stat().st_size for r in rows], dtype=np.float64)
    return folder, images, labels, groups, sizes


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

    folder, images, labels, _, sizes = demo_set
    assert folder.name == DEMO_VERSION
    assert len(labels) == 1800 and labels.sum() == 300
    x = images.astype(np.float64)
    feats = np.column_stack([x.mean(axis=(1, 2)), x.std(axis=(1, 2)), sizes])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    auc = cross_val_score(clf, feats, labels, cv=cv, scoring="roc_auc").mean()
    assert auc < 0.65, f"global statistics separate real from fake: AUC {auc:.3f}"


@pytest.mark.slow
def test_briefly_trained_deepfakenet_detects_the_fakes(demo_set):
    import torch
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupShuffleSplit

    from dfsweep.models import create_model

    _, images, labels, groups, _ = demo_set
    train_idx, test_idx = next(GroupShuffleSplit(1, test_size=1 / 3, random_state=0)
                               .split(images, labels, groups))

    # 1. ImageNet-normalised float input, N x 3 x 128 x 128.
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    y = torch.from_numpy(labels).float()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255

    def batch(idx):
        return (x[idx].float() - mean) / std

    # 2. A plain seeded loop: AdamW, pos_weight for the 5:1 imbalance, random horizontal flips.
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    gen = torch.Generator().manual_seed(0)
    model = create_model("deepfakenet", width=0.5, dropout=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    y_train = y[train_idx]
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=(y_train == 0).sum() / (y_train == 1).sum())
    train_idx = torch.from_numpy(train_idx)
    start = time.perf_counter()
    model.train()
    for _ in range(10):
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        for i in range(0, len(order) - 31, 32):
            idx = order[i:i + 32]
            xb = batch(idx)
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb[flip] = xb[flip].flip(3)
            loss = loss_fn(model(xb).view(-1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    train_s = time.perf_counter() - start

    # 3. Held-out groups: no identity is on both sides.
    model.eval()
    with torch.no_grad():
        scores = torch.cat([model(batch(test_idx[i:i + 128])).view(-1) for i in range(0, len(test_idx), 128)])
    auc = roc_auc_score(labels[test_idx], scores.numpy())
    print(f"DeepFakeNet held-out AUC {auc:.3f} after {train_s:.0f} s of training")
    assert auc > 0.95
