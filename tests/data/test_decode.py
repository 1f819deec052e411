import numpy as np
import pytest
from PIL import Image

from dfsweep.data.decode import decode_image

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
