"""Several data.train folders as domains, a labels.csv domain column, data.val_sets, and leave-one-domain-out."""
import numpy as np
import pytest

import dfsweep.data.demo as demo
from dfsweep.config import DataConfig
from dfsweep.data import DecodedSet, hold_out_domain, load_labelled, load_val_sets
from dfsweep.data.sources import list_labelled
from test_sources import _raises  # one-line DfsweepError naming every part

S = 64


def _cfg(tmp_path, **kw):
    return DataConfig(image_size=S, cache_dir=str(tmp_path / "cache"), **kw)


def _colour(seed):
    return tuple(int(c) for c in np.random.default_rng(seed).integers(0, 256, 3))


@pytest.fixture
def folder(write_image):
    """folder(root, real=[stems], fake=[stems], csv=None): class folders, or flat images + labels.csv when `csv`
    (the text after the header `image,label<,extra columns>`, one `stem,label[,...]` row per image) is given.
    Each image is one solid colour chosen by its seed, so tests can tell rows apart after decoding."""
    seeds = iter(range(10_000))

    def make(root, real=(), fake=(), csv=None, header="image,label"):
        colours = {}
        if csv is None:
            for cls, stems in (("real", real), ("fake", fake)):
                for stem in stems:
                    colours[stem] = _colour(next(seeds))
                    write_image(root / cls / f"{stem}.png", color=colours[stem])
            return root, colours
        rows = []
        for line in csv.strip().splitlines():
            stem, rest = line.split(",", 1)
            colours[stem] = _colour(next(seeds))
            write_image(root / f"{stem}.png", color=colours[stem])
            rows.append(f"{stem}.png,{rest}")
        (root / "labels.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
        return root, colours
    return make


def _centre(data, row):
    return tuple(int(c) for c in data.images[row, S // 2, S // 2])


# --- several folders --------------------------------------------------------------------------------

def test_two_folders_are_two_domains_with_prefixed_ids_and_mixed_groups(tmp_path, folder):
    a, ca = folder(tmp_path / "sets" / "ffpp", real=["r1", "x0"], fake=["f0"])
    # b's own domain column is not read: with several folders the folder name is the domain
    b, cb = folder(tmp_path / "other" / "celeb", csv="x0,fake,v1,zz\nb1,real,v1,zz\nb2,real,v2,yy",
                   header="image,label,group,domain")
    data = load_labelled(_cfg(tmp_path, train=(str(a) + "/", str(b))))
    assert data.ids == ["ffpp/r1", "ffpp/x0", "ffpp/f0", "celeb/x0", "celeb/b1", "celeb/b2"]
    assert data.domains.tolist() == ["ffpp"] * 3 + ["celeb"] * 3 and data.domains.dtype == object
    assert data.labels.tolist() == [0, 0, 1, 1, 0, 0]
    # ffpp names no groups: each of its rows is its own group; celeb's groups stay as written
    assert data.groups.tolist() == ["ffpp/r1", "ffpp/x0", "ffpp/f0", "v1", "v1", "v2"]
    colours = [ca["r1"], ca["x0"], ca["f0"], cb["x0"], cb["b1"], cb["b2"]]
    assert [_centre(data, i) for i in range(len(data))] == colours
    assert data.images.shape == (6, S, S, 3)


def test_folders_without_groups_keep_none_and_relative_paths_name_the_domain(tmp_path, folder, monkeypatch):
    folder(tmp_path / "a", real=["r"], fake=["f"])
    folder(tmp_path / "b", real=["r"], fake=["f"])
    monkeypatch.chdir(tmp_path)
    data = load_labelled(_cfg(tmp_path, train=("b", "./a")))
    assert data.groups is None
    assert data.ids == ["b/r", "b/f", "a/r", "a/f"] and data.domains.tolist() == ["b", "b", "a", "a"]


def test_same_base_name_is_an_error(tmp_path, folder):
    a, _ = folder(tmp_path / "x" / "set", real=["r"], fake=["f"])
    b, _ = folder(tmp_path / "y" / "set", real=["r"], fake=["f"])
    _raises([a, b, "'set'", "data.train"], load_labelled, _cfg(tmp_path, train=(str(a), str(b))))


def test_every_folder_check_still_names_the_folder(tmp_path, folder):
    a, _ = folder(tmp_path / "a", real=["r"], fake=["f"])
    only_real, _ = folder(tmp_path / "b", real=["r"])
    _raises([tmp_path / "nope", "not found"], load_labelled, _cfg(tmp_path, train=(str(a), str(tmp_path / "nope"))))
    _raises([only_real / "fake", "class 'fake' has no images"], load_labelled,
            _cfg(tmp_path, train=(str(a), str(only_real))))


# --- a domain column in labels.csv ----------------------------------------------------------------------

def test_domain_column_is_read_and_stays_aligned_when_a_bad_image_is_skipped(tmp_path, folder):
    root, colours = folder(tmp_path / "set", csv="a,real,sd\nb,fake, sd \nc,real,gan\nd,fake,gan",
                           header="image,label,source")
    (root / "b.png").write_bytes(b"junk")
    cfg = _cfg(tmp_path, domain_column="source", on_bad_image="skip")
    assert list_labelled(root, cfg).domains.tolist() == ["sd", "sd", "gan", "gan"]
    data = load_labelled(cfg, str(root))
    assert data.ids == ["a", "c", "d"] and data.domains.tolist() == ["sd", "gan", "gan"]
    assert _centre(data, 1) == colours["c"]
    assert load_labelled(_cfg(tmp_path, on_bad_image="skip"), str(root)).domains is None  # no 'domain' column


def test_blank_domain_cell_is_an_error(tmp_path, folder):
    root, _ = folder(tmp_path / "set", csv="a,real,sd\nb,fake,", header="image,label,domain")
    _raises([root / "labels.csv", "empty 'domain'", "data.domain_column", "'b.png'"],
            list_labelled, root, DataConfig())


def test_subset_keeps_domains(tmp_path, folder):
    a, _ = folder(tmp_path / "a", real=["r"], fake=["f"])
    b, _ = folder(tmp_path / "b", real=["r"], fake=["f"])
    data = load_labelled(_cfg(tmp_path, train=(str(a), str(b))))
    sub = data.subset(np.array([3, 0]))
    assert sub.ids == ["b/f", "a/r"] and sub.domains.tolist() == ["b", "a"]
    assert data.subset(data.labels == 1).domains.tolist() == ["a", "b"]
    assert DecodedSet(data.images, data.labels, None, data.ids).subset([0]).domains is None


# --- data.val_sets ----------------------------------------------------------------------------------------

def test_load_val_sets(tmp_path, folder):
    a, ca = folder(tmp_path / "a", real=["r0", "r1"], fake=["f"])
    b, _ = folder(tmp_path / "b", csv="x,1\ny,0", header="image,label")
    sets = load_val_sets(_cfg(tmp_path, val_sets={"celeb": str(a), "wild": str(b)}))
    assert list(sets) == ["celeb", "wild"]
    assert sets["celeb"].ids == ["r0", "r1", "f"] and sets["wild"].labels.tolist() == [1, 0]
    assert _centre(sets["celeb"], 2) == ca["f"]
    assert load_val_sets(_cfg(tmp_path)) == {}


def test_val_set_errors_carry_its_name(tmp_path, folder):
    a, _ = folder(tmp_path / "a", real=["r"], fake=["f"])
    only_fake, _ = folder(tmp_path / "b", csv="x,fake\ny,fake")
    msg = _raises([only_fake / "labels.csv", "class 'real' has no images"], load_val_sets,
                  _cfg(tmp_path, val_sets={"ok": str(a), "fakes": str(only_fake)}))
    assert msg.startswith("data.val_sets.fakes: ")
    gone = tmp_path / "gone"
    msg = _raises([gone, "not found"], load_val_sets, _cfg(tmp_path, val_sets={"gone": str(gone)}))
    assert msg.startswith("data.val_sets.gone: ")


# --- hold_out_domain ---------------------------------------------------------------------------------------

@pytest.fixture
def three(tmp_path, folder):
    """Folders zeta, alpha, mid (not in sorted order), two images each plus one extra real in alpha."""
    paths = [folder(tmp_path / "zeta", real=["r"], fake=["f"])[0],
             folder(tmp_path / "alpha", real=["r", "s"], fake=["f"])[0],
             folder(tmp_path / "mid", real=["r"], fake=["f"])[0]]
    return load_labelled(_cfg(tmp_path, train=tuple(map(str, paths))))


def test_hold_out_the_last_domain_by_default(tmp_path, three):
    train, name, val = hold_out_domain(three, _cfg(tmp_path))
    assert name == "mid"
    assert val.ids == ["mid/r", "mid/f"] and set(val.domains) == {"mid"}
    assert train.ids == ["zeta/r", "zeta/f", "alpha/r", "alpha/s", "alpha/f"]
    assert train.labels.tolist() == [0, 1, 0, 0, 1] and len(train.images) == 5


def test_hold_out_a_named_domain(tmp_path, three):
    train, name, val = hold_out_domain(three, _cfg(tmp_path, holdout_domain="zeta"))
    assert name == "zeta" and val.ids == ["zeta/r", "zeta/f"]
    assert set(train.domains) == {"alpha", "mid"} and len(train) == 5
    assert (val.images[0] == three.images[0]).all()


def test_hold_out_the_last_domain_of_a_domain_column(tmp_path, folder):
    root, _ = folder(tmp_path / "set", csv="a,real,b\nb,fake,b\nc,real,a\nd,fake,a\ne,real,b",
                     header="image,label,domain")
    data = load_labelled(_cfg(tmp_path), str(root))
    train, name, val = hold_out_domain(data, _cfg(tmp_path))
    assert name == "a" and val.ids == ["c", "d"] and train.ids == ["a", "b", "e"]


def _set(domains, labels):
    n = len(labels)
    return DecodedSet(np.zeros((n, 2, 2, 3), np.uint8), np.asarray(labels, np.int64), None,
                      [str(i) for i in range(n)], None if domains is None else np.asarray(domains, dtype=object))


@pytest.mark.parametrize("data, kw, parts", [
    (_set(None, [0, 1]), {}, ["needs domains", "several data.train folders", "`domain` column in labels.csv"]),
    (_set(["a", "a"], [0, 1]), {}, ["two or more domains", "'a'"]),
    (_set(["a", "a", "b", "b"], [0, 1, 0, 1]), {"holdout_domain": "c"}, ["data.holdout_domain 'c'", "'a', 'b'"]),
    (_set(["a", "a", "b", "b"], [0, 0, 0, 1]), {}, ["training domains ('a') have no 'fake' images"]),
    (_set(["a", "b", "a", "c", "c"], [1, 1, 1, 0, 1]), {"holdout_domain": "c"},
     ["training domains ('a', 'b') have no 'real' images"]),
    (_set(["a", "a", "b", "b"], [0, 1, 1, 1]), {}, ["held-out domain 'b' has no 'real' images"]),
    (_set(["a", "a", "b"], [0, 1, 0]), {}, ["held-out domain 'b' has no 'fake' images"]),
])
def test_hold_out_errors(tmp_path, data, kw, parts):
    msg = _raises(["sweep.validation: leave_one_domain_out", *parts], hold_out_domain, data, _cfg(tmp_path, **kw))
    assert msg.startswith("sweep.validation: leave_one_domain_out")


def test_demo_among_several_folders_is_the_demo_set(tmp_path, folder, monkeypatch):
    generated, _ = folder(tmp_path / "cache" / "demo-v1", real=["r"], fake=["f"])
    b, _ = folder(tmp_path / "b", real=["r"], fake=["f"])
    monkeypatch.setattr(demo, "ensure_demo", lambda cache_dir: generated)
    data = load_labelled(_cfg(tmp_path, train=("demo", str(b))))
    assert data.ids == ["demo/r", "demo/f", "b/r", "b/f"]
