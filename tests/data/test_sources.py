import numpy as np
import pytest

from dfsweep.config import DataConfig
from dfsweep.data.sources import list_labelled, list_unlabelled
from dfsweep.errors import DfsweepError


def _csv(root, text, name="labels.csv"):
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
    return root / name


@pytest.fixture
def images(write_image):
    def make(root, names):
        for i, n in enumerate(names):
            write_image(root / n, seed=i)
    return make


def _raises(match_parts, fn, *args):
    with pytest.raises(DfsweepError) as e:
        fn(*args)
    msg = str(e.value)
    assert "\n" not in msg
    for part in match_parts:
        assert str(part) in msg, msg
    return msg


# --- layouts ---------------------------------------------------------------------------------------

def test_class_folders(class_folders, write_image):
    (class_folders / "real" / "notes.txt").write_text("not an image")
    (class_folders / "real" / "._r0.jpg").write_bytes(b"macOS resource fork")
    (class_folders / "fake" / "nested").mkdir()
    write_image(class_folders / "fake" / "nested" / "deep.jpg")
    lst = list_labelled(class_folders, DataConfig())
    assert lst.ids == ["r0", "r1", "r2", "r3", "r4", "f0", "f1"]
    assert lst.labels.dtype == np.int64 and lst.labels.tolist() == [0] * 5 + [1] * 2
    assert lst.groups is None
    assert all(p.is_absolute() and p.is_file() for p in lst.paths)


def test_csv_with_01_labels_and_custom_columns(tmp_path, images, write_image):
    root = tmp_path / "set"
    images(root, ["a.jpg", "b.png", "c.jpg", "d.jpg"])
    write_image(root / "unlisted.jpg")
    _csv(root, "file,is_fake,video\na.jpg,0,v1\nb.png,1,v1\nc.jpg, 0 ,v2\nd.jpg,1,v3\n", "meta.csv")
    cfg = DataConfig(labels_csv="meta.csv", image_column="file", label_column="is_fake", group_column="video")
    lst = list_labelled(root, cfg)
    assert lst.ids == ["a", "b", "c", "d"]
    assert lst.labels.tolist() == [0, 1, 0, 1]
    assert lst.groups.tolist() == ["v1", "v1", "v2", "v3"]
    assert [p.name for p in lst.paths] == ["a.jpg", "b.png", "c.jpg", "d.jpg"]


def test_csv_words_any_case_bom_no_group_column(tmp_path, images):
    root = tmp_path / "set"
    images(root, ["a.jpg", "b.jpg"])
    (root / "labels.csv").write_bytes("\ufeffimage,label\na.jpg,Real\nb.jpg,FAKE\n".encode("utf-8"))
    lst = list_labelled(root, DataConfig())
    assert lst.labels.tolist() == [0, 1] and lst.groups is None


def test_csv_wins_over_class_folders(tmp_path, images):
    root = tmp_path / "set"
    images(root, ["real/a.jpg", "fake/b.jpg"])
    _csv(root, "image,label\nreal/a.jpg,fake\nfake/b.jpg,real\n")
    assert list_labelled(root, DataConfig()).labels.tolist() == [1, 0]


def test_relative_path_resolves_against_cwd(class_folders, monkeypatch):
    monkeypatch.chdir(class_folders.parent)
    lst = list_labelled("set", DataConfig())
    assert lst.paths[0] == class_folders / "real" / "r0.jpg"


def test_unlabelled_folder(tmp_path, images, write_image):
    root = tmp_path / "test"
    images(root, ["b.jpg", "a.PNG", "c.webp"])
    _csv(root, "image,label\na.PNG,real\n")
    write_image(root / "sub" / "x.jpg")
    lst = list_unlabelled(root)
    assert lst.ids == ["a", "b", "c"] and lst.labels is None and lst.groups is None


# --- errors ----------------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    _raises([tmp_path / "nope", "not found"], list_labelled, tmp_path / "nope", DataConfig())
    _raises([tmp_path / "nope", "not found"], list_unlabelled, tmp_path / "nope")


def test_not_a_directory(tmp_path, write_image):
    f = write_image(tmp_path / "x.jpg")
    _raises([f, "not a directory"], list_labelled, f, DataConfig())


def test_empty_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    _raises([tmp_path / "empty", "no images"], list_unlabelled, tmp_path / "empty")
    _raises([tmp_path / "empty", "labels.csv", "real/"], list_labelled, tmp_path / "empty", DataConfig())


def test_class_without_images(class_folders):
    for p in (class_folders / "fake").iterdir():
        p.unlink()
    _raises([class_folders / "fake", "class 'fake' has no images"], list_labelled, class_folders, DataConfig())
    (class_folders / "fake").rmdir()
    _raises(["class 'fake' has no images"], list_labelled, class_folders, DataConfig())


def test_csv_class_without_images(tmp_path, images):
    root = tmp_path / "set"
    images(root, ["a.jpg", "b.jpg"])
    csv = _csv(root, "image,label\na.jpg,real\nb.jpg,0\n")
    _raises([csv, "class 'fake' has no images"], list_labelled, root, DataConfig())


def test_unknown_labels(tmp_path, images):
    root = tmp_path / "set"
    images(root, ["a.jpg", "b.jpg", "c.jpg"])
    csv = _csv(root, "image,label\na.jpg,real\nb.jpg,deepfake\nc.jpg,2\n")
    _raises([csv, "'deepfake'", "'2'", "'real'", "'fake'", "'1'"], list_labelled, root, DataConfig())


def test_csv_missing_column(tmp_path, images):
    root = tmp_path / "set"
    images(root, ["a.jpg"])
    csv = _csv(root, "filename,label\na.jpg,real\n")
    _raises([csv, "'image'", "filename, label"], list_labelled, root, DataConfig())
    _csv(root, "image,cls\na.jpg,real\n")
    _raises([csv, "'label'", "image, cls"], list_labelled, root, DataConfig())


def test_csv_names_absent_images(tmp_path, images):
    root = tmp_path / "set"
    images(root, ["a.jpg", "b.jpg"])
    rows = "".join(f"gone{i}.jpg,fake\n" for i in range(5))
    csv = _csv(root, "image,label\na.jpg,real\nb.jpg,fake\n" + rows)
    _raises([csv, "5 listed image(s) not found", "'gone0.jpg'", "'gone1.jpg'"], list_labelled, root, DataConfig())


def test_duplicate_rows_and_ids(tmp_path, images):
    root = tmp_path / "set"
    images(root, ["a.jpg", "b.jpg", "a.png"])
    csv = _csv(root, "image,label\na.jpg,real\nb.jpg,fake\na.jpg,real\n")
    _raises([csv, "more than once", "'a.jpg'"], list_labelled, root, DataConfig())
    _csv(root, "image,label\na.jpg,real\nb.jpg,fake\na.png,real\n")
    _raises([root, "duplicate image id", "a.jpg / a.png"], list_labelled, root, DataConfig())
    _raises([root, "duplicate image id"], list_unlabelled, root)


def test_same_stem_in_both_class_folders_gets_class_prefixed_ids(tmp_path, images):
    root = tmp_path / "set"
    images(root, ["real/x.jpg", "real/y.jpg", "fake/x.png"])
    listing = list_labelled(root, DataConfig())
    assert listing.ids == ["real/x", "real/y", "fake/x"] and list(listing.labels) == [0, 0, 1]


def test_duplicate_ids_within_a_class_folder(tmp_path, images):
    root = tmp_path / "set"
    images(root, ["real/x.jpg", "real/x.png", "fake/x.png"])
    _raises([root, "duplicate image id", "x"], list_labelled, root, DataConfig())


@pytest.mark.parametrize("content, why", [
    (b"", "empty CSV"),
    (b"image,label\n\xff\xfe\x80a.jpg,real\n", "cannot read CSV"),
    (b'image,label\n"a.jpg,real\n', "cannot read CSV"),
    (b"image,label\n", "no rows"),
])
def test_unreadable_csv(tmp_path, content, why, images):
    root = tmp_path / "set"
    images(root, ["a.jpg"])
    (root / "labels.csv").write_bytes(content)
    _raises([root / "labels.csv", why], list_labelled, root, DataConfig())


def test_empty_group_cell(tmp_path, images):
    root = tmp_path / "set"
    images(root, ["a.jpg", "b.jpg"])
    csv = _csv(root, "image,label,group\na.jpg,real,g\nb.jpg,fake,\n")
    _raises([csv, "empty 'group'", "'b.jpg'"], list_labelled, root, DataConfig())
