import io
import logging
import os

import numpy as np
import pytest
from PIL import Image, ImageFile

from dfsweep.data.decode import decode_image, decode_images
from dfsweep.errors import DfsweepError

S = 64


@pytest.mark.parametrize("name, mode, size, kw", [
    ("gray.jpg", "L", (50, 61), {}),
    ("gray.png", "L", (33, 17), {}),
    ("rgba.png", "RGBA", (70, 64), {}),
    ("la.png", "LA", (64, 64), {}),
    ("odd.bmp", "RGB", (37, 91), {}),
    ("big.jpg", "RGB", (600, 500), {"quality": 90}),
    ("prog.jpg", "RGB", (300, 280), {"progressive": True}),
    ("small.webp", "RGB", (20, 20), {}),
    ("cmyk.jpg", "CMYK", (80, 80), {}),
])
def test_any_mode_and_size_decodes_to_square_rgb(tmp_path, write_image, name, mode, size, kw):
    out = decode_image(write_image(tmp_path / name, size=size, mode=mode, **kw), S)
    assert out.shape == (S, S, 3) and out.dtype == np.uint8


def test_colours_survive(tmp_path, write_image):
    red = decode_image(write_image(tmp_path / "red.jpg", mode="CMYK", color=(0, 255, 255, 0)), S)
    assert np.abs(red.reshape(-1, 3).mean(0) - [255, 0, 0]).max() < 8
    grey = decode_image(write_image(tmp_path / "g.png", mode="L", color=200), S)
    assert (grey == 200).all()
    see_through = decode_image(write_image(tmp_path / "t.png", mode="RGBA", color=(255, 255, 255, 0)), S)
    assert (see_through == 0).all()  # fully transparent -> the black background, not the hidden white
    pal = Image.new("P", (30, 30), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert (decode_image(tmp_path / "p.png", S) == [10, 200, 30]).all()


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((40, 40), 30000, dtype=np.uint16)).save(tmp_path / "g16.png")
    out = decode_image(tmp_path / "g16.png", S)
    assert (out == round(30000 * 255 / 65535)).all()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (S, S), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, S // 2, S))  # white left half
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = decode_image(tmp_path / "rot.jpg", S)
    assert out[:, -4:].mean() > 200 and out[:, :4].mean() < 50


# --- the cache -------------------------------------------------------------------------------------

def _files(cache):
    d = cache / "decoded"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_second_run_reads_the_cache(tmp_path, write_image):
    # BMP is uncompressed: other pixels at the same size give a file of the same length.
    a = write_image(tmp_path / "a.bmp", seed=1)
    b = write_image(tmp_path / "b.bmp", seed=2)
    cache = tmp_path / "cache"
    first, kept = decode_images([a, b], S, cache)
    assert first.shape == (2, S, S, 3) and kept.all()
    assert len(_files(cache)) == 1 and not any(n.endswith(".tmp") for n in _files(cache))

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
    (npy,) = (cache / "decoded").iterdir()
    npy.write_bytes(npy.read_bytes()[:200])  # cut short
    again, _ = decode_images([a], S, cache)
    np.testing.assert_array_equal(again, images)
    assert "ignoring unreadable cache" in caplog.text
