"""The decoded-image cache: shards keyed by their files, reused, resumed, bad files named, a damaged or
unwritable cache survived."""
import io
import logging
import os

import numpy as np
import pytest
from PIL import Image, ImageFile

from dfsweep.data.cache import decode_images
from dfsweep.data.decode import decode_image
from dfsweep.errors import DfsweepError

S = 64


# --- the cache -------------------------------------------------------------------------------------

def _files(cache, size=S):
    """The shards' pixel files (a .npy marks a complete shard)."""
    d = cache / "decoded" / f"{size}px"
    return sorted(p.name for p in d.glob("*.npy")) if d.exists() else []


def test_second_run_reads_the_cache(tmp_path, write_image):
    # BMP is uncompressed: other pixels at the same size give a file of the same length.
    a = write_image(tmp_path / "a.bmp", seed=1)
    b = write_image(tmp_path / "b.bmp", seed=2)
    cache = tmp_path / "cache"
    first, kept = decode_images([a, b], S, cache)
    assert first.shape == (2, S, S, 3) and kept.all()
    assert len(_files(cache)) == 1 and not list((cache / "decoded").rglob("*.tmp"))

    st = a.stat()
    size = st.st_size
    write_image(a, seed=3)
    assert a.stat().st_size == size
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    second, _ = decode_images([a, b], S, cache)
    np.testing.assert_array_equal(second, first)  # the old pixels: nothing was decoded again

    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    third, _ = decode_images([a, b], S, cache)
    np.testing.assert_array_equal(third[0], decode_image(a, S))
    assert not np.array_equal(third[0], first[0])
    np.testing.assert_array_equal(third[1], first[1])
    assert len(_files(cache)) == 2

    other_size, _ = decode_images([a, b], 32, cache)
    assert other_size.shape == (2, 32, 32, 3)


# --- bad images ------------------------------------------------------------------------------------

@pytest.fixture
def bad_set(tmp_path, write_image):
    """Two good images and one of each kind of bad file, in a known order."""
    d = tmp_path / "imgs"
    good = [write_image(d / "good0.jpg", seed=0), write_image(d / "good1.png", seed=1)]
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(buf, "JPEG")
    jpg = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (60, 60, 3), dtype=np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    bad = {
        "zero.jpg": (b"", "empty file"),
        "trunc.jpg": (jpg[: len(jpg) // 2], "truncated"),
        "trunc.png": (png[: len(png) // 2], "truncated"),
        "garbage.png": (np.random.default_rng(2).bytes(3000), "not an image"),
        "notes.jpg": (b"these are my notes, not a picture\n" * 20, "not an image"),
    }
    paths = list(good)
    for name, (data, _) in bad.items():
        (d / name).write_bytes(data)
        paths.append(d / name)
    return paths, {d / k: why for k, (_, why) in bad.items()}


def test_each_bad_file_is_named_in_error_mode(tmp_path, bad_set):
    paths, bad = bad_set
    good = paths[:2]
    for path, why in bad.items():
        cache = tmp_path / f"cache-{path.name}"
        with pytest.raises(DfsweepError) as e:
            decode_images(good + [path], S, cache)
        msg = str(e.value)
        assert str(path) in msg and why in msg and "on_bad_image" in msg and "\n" not in msg
        assert _files(cache) == []  # nothing written before the error


def test_truncated_detected_even_if_pillow_told_to_accept(tmp_path, bad_set, monkeypatch):
    paths, _ = bad_set
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(DfsweepError, match="truncated"):
        decode_images([paths[0], paths[3]], S, tmp_path / "cache")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_skip_mode_drops_and_logs_each_bad_file(tmp_path, bad_set, caplog):
    paths, bad = bad_set
    cache = tmp_path / "cache"
    caplog.set_level(logging.WARNING, logger="dfsweep.data")
    images, kept = decode_images(paths, S, cache, on_bad_image="skip")
    assert kept.tolist() == [True, True] + [False] * 5
    assert images.shape == (2, S, S, 3)
    np.testing.assert_array_equal(images[1], decode_image(paths[1], S))
    text = caplog.text
    for path in bad:
        assert str(path) in text
    assert "skipped 5 bad image(s) of 7" in text

    # From the cache: the same result, and error mode still names the first bad file.
    again, kept2 = decode_images(paths, S, cache, on_bad_image="skip")
    np.testing.assert_array_equal(again, images)
    assert (kept2 == kept).all()
    with pytest.raises(DfsweepError, match=r"zero\.jpg: empty file \(0 bytes\) \(4 more bad image"):
        decode_images(paths, S, cache, on_bad_image="error")


def test_unwritable_or_damaged_cache_is_not_fatal(tmp_path, write_image, caplog):
    a = write_image(tmp_path / "a.png")
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    images, _ = decode_images([a], S, blocker)
    assert images.shape == (1, S, S, 3) and "could not write" in caplog.text

    cache = tmp_path / "cache2"
    decode_images([a], S, cache)
    (npy,) = (cache / "decoded" / f"{S}px").glob("*.npy")
    npy.write_bytes(npy.read_bytes()[:200])  # cut short
    again, _ = decode_images([a], S, cache)
    np.testing.assert_array_equal(again, images)
    assert "ignoring unreadable cache" in caplog.text


# --- shards, resuming, room on disk ------------------------------------------------------------------

MIB5 = 5 * S * S * 3 / 2**20        # shards of 5 files at S px


@pytest.fixture
def twelve(tmp_path, write_image):
    """12 image files (in shards of 5 files at S px: 5, 5, 2)."""
    return [write_image(tmp_path / "imgs" / f"i{i:02d}.png", seed=i) for i in range(12)]


class Counting:
    """The in-process builder, counting the shards it builds, stopping (as a kill would) after `stop_after`."""

    def __init__(self, stop_after=None):
        from dfsweep.data.cache import LocalBuilder
        self.inner, self.built, self.stop_after = LocalBuilder(1), [], stop_after

    def build(self, jobs, *args):
        for meta in self.inner.build(jobs, *args):
            self.built.append(meta.key)
            yield meta
            if self.stop_after is not None and len(self.built) >= self.stop_after:
                raise KeyboardInterrupt


def test_a_decode_stopped_halfway_resumes_without_redoing_finished_shards(tmp_path, twelve):
    cache = tmp_path / "cache"
    first = Counting(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        decode_images(twelve, S, cache, builder=first, shard_mib=MIB5)
    assert len(first.built) == 2 and len(_files(cache)) == 2
    kept = {n: (cache / "decoded" / f"{S}px" / n).stat().st_mtime_ns for n in _files(cache)}

    again = Counting()
    images, _ = decode_images(twelve, S, cache, builder=again, shard_mib=MIB5)
    assert len(again.built) == 1 and again.built[0] not in first.built      # only the missing shard
    assert {n: (cache / "decoded" / f"{S}px" / n).stat().st_mtime_ns for n in kept} == kept
    assert len(images.shards) == 3 and [s.rows for s in images.shards] == [5, 5, 2]
    np.testing.assert_array_equal(np.asarray(images), np.stack([decode_image(p, S) for p in twelve]))


def test_a_changed_file_rebuilds_its_own_shard_only(tmp_path, twelve, write_image):
    cache = tmp_path / "cache"
    decode_images(twelve, S, cache, shard_mib=MIB5)
    write_image(twelve[7], seed=99)
    st = twelve[7].stat()
    os.utime(twelve[7], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = Counting()
    images, _ = decode_images(twelve, S, cache, builder=again, shard_mib=MIB5)
    assert len(again.built) == 1
    np.testing.assert_array_equal(images[7], decode_image(twelve[7], S))


def test_a_disk_too_small_for_the_cache_is_refused_before_decoding(tmp_path, twelve):
    if os.geteuid() != 0:
        pytest.skip("mounts a small tmpfs (root only)")
    import subprocess
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(small)], check=True)
    try:
        with pytest.raises(DfsweepError) as e:
            decode_images(twelve, S, small / "cache", shard_mib=MIB5)
        msg = str(e.value)
        assert "decoding 12 images at 64 px needs 0.1 MiB" in msg and "data.cache_dir" in msg and "\n" not in msg
        assert _files(small / "cache") == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_no_writable_cache_and_no_room_in_memory_is_one_line(tmp_path, twelve, monkeypatch):
    import dfsweep.data.cache as cache_mod
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setattr(cache_mod, "IN_MEMORY_SHARE", 0.0)
    with pytest.raises(DfsweepError, match=r"cannot write the decoded-image cache .* does not fit in memory"):
        decode_images(twelve, S, blocker, shard_mib=MIB5)
