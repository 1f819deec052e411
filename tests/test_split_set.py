"""`dfsweep split`: a labelled set into select/ and test/ halves that are stratified, group-aware, seeded,
and read back as labelled sets; every refusal is one line, exit 2, nothing written."""
import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dfsweep.cli import main
from dfsweep.config import DataConfig
from dfsweep.data import list_labelled
from dfsweep.errors import DfsweepError
from dfsweep.split_set import split_set
from tinydata import write_tiny_set


def _grouped_set(root, n_groups=12, per_group=(2, 1), fake_groups=None):
    """Images + labels.csv with a group column: group g (an identity) holds per_group real and fake images
    (fakes only in `fake_groups` when given). Never decoded, so 4x4 pixels do."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [["image", "label", "group"]]
    for g in range(n_groups):
        for cls, n in zip(("real", "fake"), per_group):
            if cls == "fake" and fake_groups is not None and g not in fake_groups:
                continue
            for i in range(n):
                name = f"g{g}_{cls}{i}.png"
                Image.new("RGB", (4, 4)).save(root / name)
                rows.append([name, cls, f"id{g}"])
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root


def _read_back(out):
    return {half: list_labelled(out / half, DataConfig()) for half in ("select", "test")}


def _check_partition(src, halves, fraction, tolerance):
    """Disjoint halves covering src with its labels (and groups), each class's test share within tolerance."""
    whole = list_labelled(src, DataConfig())
    label_of = dict(zip(whole.paths, whole.labels))
    sel, test = halves["select"], halves["test"]
    assert not set(sel.paths) & set(test.paths)
    assert sorted(sel.paths + test.paths) == sorted(whole.paths)
    for half in (sel, test):
        assert all(p.is_absolute() for p in half.paths)
        assert [label_of[p] for p in half.paths] == list(half.labels)
    for cls in (0, 1):
        total = int((whole.labels == cls).sum())
        assert abs(int((test.labels == cls).sum()) - fraction * total) <= tolerance
        assert (sel.labels == cls).any() and (test.labels == cls).any()
    return whole


def test_class_folders_split_by_file_and_read_back(tmp_path, monkeypatch, capsys):
    write_tiny_set(tmp_path / "src", n_real=21, n_fake=9, size=40)
    monkeypatch.chdir(tmp_path)  # a relative SRC and --out still give absolute paths in labels.csv
    assert main(["split", "src", "--out", "halves"]) == 0
    out = tmp_path / "halves"
    halves = _read_back(out)
    _check_partition(tmp_path / "src", halves, 0.5, tolerance=1)
    for half in ("select", "test"):
        assert [p.name for p in (out / half).iterdir()] == ["labels.csv"]
        assert (out / half / "labels.csv").read_text().splitlines()[0] == "image,label"
        assert halves[half].groups is None
    assert capsys.readouterr().out.splitlines() == [
        f"{half}: {len(h)} images ({int((h.labels == 0).sum())} real, {int(h.labels.sum())} fake) -> {out / half}"
        for half, h in halves.items()] + ["grouped by file (no group column)"]


@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_csv_with_groups_keeps_every_group_on_one_side(tmp_path, fraction):
    src = _grouped_set(tmp_path / "src")
    r = split_set(src, tmp_path / "out", fraction=fraction, seed=3)
    assert r["grouped_by"] == "group" and r["n_groups"] == 12
    halves = _read_back(tmp_path / "out")
    _check_partition(src, halves, fraction, tolerance=2)  # a group holds 2 reals: within one group
    assert not set(halves["select"].groups) & set(halves["test"].groups)
    assert (tmp_path / "out" / "test" / "labels.csv").read_text().splitlines()[0] == "image,label,group"
    assert r["test"]["n"] == len(halves["test"]) and r["test"]["n_fake"] == int(halves["test"].labels.sum())


def test_stratified_by_file_at_other_fractions_and_seeds(tmp_path):
    write_tiny_set(tmp_path / "src", n_real=23, n_fake=7, size=40)
    for k, (fraction, seed) in enumerate([(0.3, 0), (0.7, 1), (0.5, 2)]):
        split_set(tmp_path / "src", tmp_path / f"out{k}", fraction=fraction, seed=seed)
        _check_partition(tmp_path / "src", _read_back(tmp_path / f"out{k}"), fraction, tolerance=1)


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    src = _grouped_set(tmp_path / "src")
    texts = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        split_set(src, tmp_path / name, seed=seed)
        texts[name] = (tmp_path / name / "test" / "labels.csv").read_text()
    assert texts["a"] == texts["b"]
    assert texts["a"] != texts["c"]


def _refusal_cases(tmp_path):
    ok = write_tiny_set(tmp_path / "ok", n_real=6, n_fake=4, size=40)
    one_fake = write_tiny_set(tmp_path / "one_fake", n_real=6, n_fake=1, size=40)
    one_group = _grouped_set(tmp_path / "one_group", per_group=(2, 3), fake_groups={0})
    (tmp_path / "empty").mkdir()
    return {
        "select exists": (ok, [], "already exists", "select"),
        "test exists": (ok, [], "already exists", "test"),
        "not labelled": (tmp_path / "empty", [], "found neither labels.csv nor real/ and fake/", None),
        "missing": (tmp_path / "nope", [], "data folder not found", None),
        "one fake": (one_fake, [], "class 'fake' has 1 image", None),
        "fakes in one group": (one_group, [], "cannot split by group: class 'fake'", None),
        "fraction 0": (ok, ["--fraction", "0"], "--fraction: must be in (0, 1), got 0.0", None),
        "fraction 1": (ok, ["--fraction", "1"], "--fraction: must be in (0, 1), got 1.0", None),
        "fraction nan": (ok, ["--fraction", "nan"], "--fraction: must be in (0, 1), got nan", None),
    }


@pytest.mark.parametrize("case", ["select exists", "test exists", "not labelled", "missing", "one fake",
                                  "fakes in one group", "fraction 0", "fraction 1", "fraction nan"])
def test_refusals_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, case):
    src, extra, needle, premade = _refusal_cases(tmp_path)[case]
    out = tmp_path / "out"
    if premade:
        (out / premade).mkdir(parents=True)
    assert main(["split", str(src), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("dfsweep: error: ") and needle in err[0], err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ([premade] if premade else [])


def test_a_set_whose_real_and_fake_files_share_names_splits_and_reads_back(tmp_path):
    """real/0.png beside fake/0.png (as in public sets): the halves keep them apart by folder."""
    src = tmp_path / "same_stems"
    for cls in ("real", "fake"):
        (src / cls).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (4, 4), (i * 10, 0, 0)).save(src / cls / f"{i}.png")
    split_set(src, tmp_path / "out")
    back = [list_labelled(tmp_path / "out" / h, DataConfig()) for h in ("select", "test")]
    ids = sorted(i for b in back for i in b.ids)
    assert ids == sorted(f"{c}/{i}" for c in ("real", "fake") for i in range(6))
    assert sum(int(b.labels.sum()) for b in back) == 6


def test_refusal_through_the_console_entry(tmp_path):
    """`python -m dfsweep split` ends a refusal with one stderr line and exit code 2, writing nothing."""
    src = write_tiny_set(tmp_path / "src", n_real=4, n_fake=2, size=40)
    (tmp_path / "out" / "test").mkdir(parents=True)
    r = subprocess.run([sys.executable, "-m", "dfsweep", "split", str(src), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        f"dfsweep: error: {tmp_path / 'out' / 'test'}: already exists (choose another --out, or remove it)"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["test"] and not any((tmp_path / "out" / "test").iterdir())


def test_a_failed_write_leaves_neither_half(tmp_path, monkeypatch):
    import dfsweep.split_set as mod
    real_write = mod.atomic_write_bytes

    def fail_on_test(path, write):
        if path.parent.name == "test":
            raise OSError(28, "No space left on device", str(path))
        real_write(path, write)

    monkeypatch.setattr(mod, "atomic_write_bytes", fail_on_test)
    src = write_tiny_set(tmp_path / "src", n_real=4, n_fake=2, size=40)
    with pytest.raises(DfsweepError, match="No space left on device"):
        split_set(src, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_labels_csv_quotes_awkward_file_names(tmp_path):
    src = tmp_path / "a, b"  # a comma in the folder name reaches every absolute path
    write_tiny_set(src, n_real=4, n_fake=2, size=40)
    split_set(src, tmp_path / "out", seed=0)
    halves = _read_back(tmp_path / "out")
    assert np.all([str(p).startswith(str(src)) for h in halves.values() for p in h.paths])
    _check_partition(src, halves, 0.5, tolerance=1)
