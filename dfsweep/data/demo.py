"""A small, offline, deterministic real/fake face set so `dfsweep` runs on a fresh machine.

Reals are procedurally drawn faces (skin tone, hair, eyes, brows, nose, mouth, background, lighting and
pose all vary) with optical blur, sensor noise and JPEG at a random quality. A fake is made the way a
face swap is: the face of one of the real images is passed through a generator-like down/up-sampling
(a transposed-convolution-style up-sampler whose uneven kernel overlap leaves a periodic trace), given a
slight colour mismatch and blended back through a feathered elliptical mask; then it gets the same
noise and JPEG quality range as the reals. A fake shares its `group` with the real it was made from.

How hard it is: the up-sampler's trace (12-22% gain spread) survives blur and resizing only in part, and
one fake in ten is a swap blended back at under 10% opacity, which no detector can tell from its source.
So no configuration reaches AUC 1.0 and configurations differ: the recipe's defaults (lr 1e-4, blur and
crop augmentation) learn the trace slowly and by a seed-dependent margin, a higher learning rate learns it
within a few epochs, heavy blur at a low learning rate hardly at all.

Layout: `<dir>/labels.csv` (image,label,group) and `<dir>/<random-looking id>.jpg`.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..errors import DfsweepError

__all__ = ["DEMO_VERSION", "generate_demo", "ensure_demo"]

DEMO_VERSION = "demo-v2"        # bump whenever the generator's output changes

_SS = 2                         # supersampling factor of the drawing canvas (anti-aliasing)
_JPEG_QUALITY = (70, 95)        # inclusive, the same range for both classes
_NOISE_SIGMA = (1.5, 5.0)       # sensor noise, grey levels, the same range for both classes
_BLUR_RADIUS = (0.2, 0.6)       # optics, pixels at the output size
_TRACE = (0.12, 0.22)           # relative gain spread between the up-sampler's output phases
_FAINT_P = 0.10                 # share of fakes blended back at a low opacity: a ceiling below AUC 1.0
_FAINT_OPACITY = (0.0, 0.1)
_TINT = 0.04                    # colour mismatch of the generated face: per-channel gain 1 +- _TINT
_REAL, _FAKE = 0, 1             # rng stream ids


@dataclass(frozen=True)
class _Face:
    """Where the face ended up in the output image (pixels), for the fake's mask."""
    cx: float
    cy: float
    half_w: float
    half_h: float
    angle: float                # radians; the face's down axis is (-sin, cos) in image coordinates


def _rng(seed: int, stream: int, index: int, part: int) -> np.random.Generator:
    # One independent stream per (image, purpose): images do not depend on generation order.
    return np.random.default_rng([seed, stream, index, part])


def _jitter(rng: np.random.Generator, rgb, amount: float) -> tuple:
    c = np.asarray(rgb, float) + rng.normal(0, amount, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def _mix(a, b, t: float) -> tuple:
    return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b))


_SKIN_LIGHT, _SKIN_DARK = (236, 200, 175), (88, 56, 40)
_HAIR = [(25, 20, 18), (60, 40, 25), (105, 70, 40), (190, 150, 90), (140, 60, 30), (150, 150, 150)]
_IRIS = [(70, 45, 25), (40, 30, 20), (60, 100, 140), (70, 110, 70), (110, 90, 60)]


def _scene_colour(rng: np.random.Generator) -> np.ndarray:
    grey = rng.uniform(30, 220)
    return np.clip(grey + rng.uniform(0.2, 0.8) * (rng.uniform(0, 255, 3) - grey), 0, 255)


def _background(rng: np.random.Generator, s: int) -> Image.Image:
    # 1. a two-colour gradient in a random direction, then a few blurred shapes (a room, a window),
    #    drawn at a quarter of the resolution: the background is out of focus anyway.
    out, s = s, s // 4
    c0, c1 = _scene_colour(rng), _scene_colour(rng)
    theta = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:s, 0:s] / s
    t = np.clip(0.5 + (x - 0.5) * np.cos(theta) + (y - 0.5) * np.sin(theta), 0, 1)[..., None]
    img = Image.fromarray(((1 - t) * c0 + t * c1).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(2, 6)):
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * s
        w, h = rng.uniform(0.1, 0.6, 2) * s
        col = tuple(int(v) for v in _scene_colour(rng))
        if rng.random() < 0.5:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=col)
        else:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=col)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    return img.resize((out, out), Image.Resampling.BILINEAR)


def _face_layer(rng: np.random.Generator, s: int) -> tuple[Image.Image, float, float]:
    """Draw a frontal face, centred, on a transparent canvas; return it with its half width/height."""
    layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    skin = _jitter(rng, _mix(_SKIN_LIGHT, _SKIN_DARK, rng.uniform(0, 1)), 6)
    shade = _mix(skin, (0, 0, 0), 0.25)
    hair = _jitter(rng, _HAIR[rng.integers(len(_HAIR))], 10)
    cloth = tuple(int(v) for v in _scene_colour(rng))
    cx, cy = s / 2, s * 0.47
    fw = s * rng.uniform(0.17, 0.21)                  # half width
    fh = fw * rng.uniform(1.22, 1.42)                 # half height
    style = _behind_face(d, rng, cx, cy, fw, fh, hair, shade, cloth)
    _face_and_hair(d, rng, cx, cy, fw, fh, skin, hair, style)
    eye_y, eye_rh = _eyes_and_brows(d, rng, cx, cy, fw, fh, hair)
    _nose_and_mouth(d, rng, cx, cy, fw, fh, skin, shade, eye_y, eye_rh)
    return layer, fw, fh


def _behind_face(d, rng, cx, cy, fw, fh, hair, shade, cloth) -> int:
    """Long hair, shoulders, neck, ears; returns the hair style (0 short, 1 long, 2 bald/shaved)."""
    style = rng.integers(3)                            # 0 short, 1 long, 2 bald/shaved
    if style == 1:
        d.rounded_rectangle([cx - fw * 1.35, cy - fh * 1.1, cx + fw * 1.35, cy + fh * 1.6],
                            radius=fw * 0.6, fill=hair)
    d.ellipse([cx - fw * 2.6, cy + fh * 1.25, cx + fw * 2.6, cy + fh * 3.2], fill=cloth)
    d.rectangle([cx - fw * 0.45, cy + fh * 0.5, cx + fw * 0.45, cy + fh * 1.45], fill=shade)
    for side in (-1, 1):
        ex = cx + side * fw * 0.98
        d.ellipse([ex - fw * 0.16, cy - fh * 0.18, ex + fw * 0.16, cy + fh * 0.22], fill=shade)
    return style


def _face_and_hair(d, rng, cx, cy, fw, fh, skin, hair, style) -> None:
    """The face, and the hair on top of it."""
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=skin)
    if style != 2:
        top = cy - fh * rng.uniform(1.05, 1.2)
        d.chord([cx - fw * 1.08, top, cx + fw * 1.08, cy + fh * rng.uniform(0.0, 0.25)],
                180, 360, fill=hair)


def _eyes_and_brows(d, rng, cx, cy, fw, fh, hair) -> tuple[float, float]:
    """Both eyes and brows; returns the eyes' height and half height (the nose starts there)."""
    eye_y = cy - fh * rng.uniform(0.02, 0.12)
    eye_dx, eye_rw, eye_rh = fw * rng.uniform(0.36, 0.44), fw * rng.uniform(0.15, 0.2), fh * rng.uniform(0.05, 0.08)
    iris = _jitter(rng, _IRIS[rng.integers(len(_IRIS))], 8)
    brow = _mix(hair, (0, 0, 0), 0.2)
    brow_lift, brow_w = fh * rng.uniform(0.12, 0.2), max(2.0, fw * rng.uniform(0.05, 0.09))
    for side in (-1, 1):
        ex = cx + side * eye_dx
        d.ellipse([ex - eye_rw, eye_y - eye_rh, ex + eye_rw, eye_y + eye_rh], fill=_jitter(rng, (235, 232, 225), 4))
        r = eye_rh * 0.95
        d.ellipse([ex - r, eye_y - r, ex + r, eye_y + r], fill=iris)
        d.ellipse([ex - r * 0.45, eye_y - r * 0.45, ex + r * 0.45, eye_y + r * 0.45], fill=(10, 8, 8))
        d.ellipse([ex + r * 0.1, eye_y - r * 0.5, ex + r * 0.4, eye_y - r * 0.2], fill=(250, 250, 250))
        by = eye_y - brow_lift
        tilt = side * fh * rng.uniform(-0.04, 0.04)
        d.line([ex - side * eye_rw * 1.1, by + tilt, ex + side * eye_rw * 1.2, by - tilt],
               fill=brow, width=int(brow_w))
    return eye_y, eye_rh


def _nose_and_mouth(d, rng, cx, cy, fw, fh, skin, shade, eye_y, eye_rh) -> None:
    nose_y = cy + fh * rng.uniform(0.2, 0.3)
    nose_w = fw * rng.uniform(0.12, 0.2)
    d.line([cx + nose_w * 0.3, eye_y + eye_rh, cx + nose_w * 0.6, nose_y], fill=shade, width=max(1, int(fw * 0.04)))
    for side in (-1, 1):
        nx = cx + side * nose_w * 0.6
        d.ellipse([nx - nose_w * 0.35, nose_y - nose_w * 0.2, nx + nose_w * 0.35, nose_y + nose_w * 0.2],
                  fill=_mix(skin, (0, 0, 0), 0.45))
    mouth_y, mouth_w = cy + fh * rng.uniform(0.5, 0.6), fw * rng.uniform(0.28, 0.42)
    lip = _jitter(rng, _mix(skin, (170, 40, 50), rng.uniform(0.25, 0.55)), 5)
    open_h = fh * rng.uniform(0.0, 0.1) if rng.random() < 0.4 else 0.0
    d.ellipse([cx - mouth_w, mouth_y - fh * 0.06 - open_h, cx + mouth_w, mouth_y + fh * 0.07 + open_h], fill=lip)
    if open_h > 0:
        d.ellipse([cx - mouth_w * 0.75, mouth_y - open_h, cx + mouth_w * 0.75, mouth_y + open_h],
                  fill=(45, 15, 20))
        d.rectangle([cx - mouth_w * 0.5, mouth_y - open_h, cx + mouth_w * 0.5, mouth_y - open_h * 0.4],
                    fill=(230, 225, 215))
    else:
        d.line([cx - mouth_w, mouth_y, cx + mouth_w, mouth_y], fill=_mix(lip, (0, 0, 0), 0.5),
               width=max(1, int(fh * 0.02)))


def _render(rng: np.random.Generator, size: int) -> tuple[np.ndarray, _Face]:
    """A clean (noise-free) scene with one face, uint8 HxWx3, and where the face is."""
    s = size * _SS
    bg = _background(rng, s)
    layer, fw, fh = _face_layer(rng, s)

    # 1. pose: rotate, scale and shift the face layer (inverse affine map, output -> input).
    angle = np.deg2rad(rng.uniform(-12, 12))
    scale = rng.uniform(0.85, 1.12)
    shift = rng.uniform(-0.06, 0.06, 2) * s
    # PIL wants the output -> input map: input = R(-angle) / scale @ (output - o) + centre.
    ca, sa = np.cos(angle) / scale, np.sin(angle) / scale
    ox, oy = s / 2 + shift[0], s / 2 + shift[1]           # where the layer's centre lands
    coeffs = (ca, sa, s / 2 - ca * ox - sa * oy, -sa, ca, s / 2 + sa * ox - ca * oy)
    layer = layer.transform((s, s), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
    bg.paste(layer, (0, 0), layer)

    # 2. lighting: a smooth multiplicative gradient from a random direction.
    img = np.asarray(bg.reduce(_SS), np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    y, x = (np.mgrid[0:size, 0:size] / size - 0.5).astype(np.float32)
    light = 1 + rng.uniform(0.05, 0.3) * (x * np.cos(theta) + y * np.sin(theta)) * 2
    img = np.clip(img * light[..., None] * rng.uniform(0.9, 1.1), 0, 255)

    # 3. optics: a slight blur.
    img = np.asarray(Image.fromarray(img.astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(*_BLUR_RADIUS))))

    # 4. the face centre sat 0.03 s above the layer's centre: map it through the forward transform.
    lx, ly = 0, -0.03 * s
    fx = ox + scale * (np.cos(angle) * lx - np.sin(angle) * ly)
    fy = oy + scale * (np.sin(angle) * lx + np.cos(angle) * ly)
    face = _Face(fx / _SS, fy / _SS, fw * scale / _SS, fh * scale / _SS, angle)
    return img, face


def _soft_ellipse(size: int, face: _Face, rx: float, ry: float, dy: float, feather: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    ca, sa = np.cos(face.angle), np.sin(face.angle)
    cx = face.cx - sa * dy * face.half_h
    cy = face.cy + ca * dy * face.half_h
    u = (x - cx) * ca + (y - cy) * sa
    v = -(x - cx) * sa + (y - cy) * ca
    a, b = rx * face.half_w, ry * face.half_h
    dist = (1 - np.sqrt((u / a) ** 2 + (v / b) ** 2)) * min(a, b) / feather   # ~pixels inside / feather
    t = np.clip(dist + 0.5, 0, 1)
    return t * t * (3 - 2 * t)


# Three "face-swap methods", like the several methods of a benchmark: each up-samples with its own
# stride(s), and the uneven overlap of its transposed-convolution kernel gives each output phase
# (x mod f, y mod f) a fixed relative gain (zero mean, so brightness is kept).
_GENERATORS = (
    ((1.0, -1.0),),                            # one stride-2 layer
    ((1.0, 0.2, -1.0, -0.2),),                 # one stride-4 layer
    ((-1.0, 1.0), (1.0, -1.0)),                # two stride-2 layers
)


def _generator(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A generator-like round trip: down-sample, then transposed-conv-like up-sampling(s)."""
    layers = _GENERATORS[rng.integers(len(_GENERATORS))]
    amount = rng.uniform(*_TRACE)
    out = face
    for phase in layers:
        f = len(phase)
        hh, ww = out.shape[0] // f, out.shape[1] // f
        small = out[: hh * f, : ww * f].reshape(hh, f, ww, f, 3).mean(axis=(1, 3))
        up = np.stack([np.asarray(Image.fromarray(small[..., k]).resize((ww * f, hh * f), Image.Resampling.BILINEAR))
                       for k in range(3)], axis=-1)
        g = 1 + amount * np.asarray(phase)
        out = up * (np.tile(g, hh)[:, None] * np.tile(g, ww)[None, :])[..., None]
    res = face.copy()
    res[: out.shape[0], : out.shape[1]] = out
    return res


def _fake(img: np.ndarray, face: _Face, rng: np.random.Generator) -> np.ndarray:
    size, img = img.shape[0], img.astype(np.float32)
    mask = _soft_ellipse(size, face, rng.uniform(0.82, 0.95), rng.uniform(0.78, 0.9),
                         rng.uniform(0.05, 0.12), rng.uniform(2.0, 5.0))
    opacity = rng.uniform(*_FAINT_OPACITY) if rng.random() < _FAINT_P else 1.0
    ys, xs = np.nonzero(mask > 0)
    # 1. crop the face region on a grid aligned box, the way a face is cut out for the generator.
    y0, y1 = max(0, ys.min() - 4) & ~3, min(size, ys.max() + 8)
    x0, x1 = max(0, xs.min() - 4) & ~3, min(size, xs.max() + 8)
    gen = img.copy()
    gen[y0:y1, x0:x1] = _generator(img[y0:y1, x0:x1], rng)
    # 2. the generated face is slightly off in colour: a per-channel gain and offset.
    gen = gen * rng.uniform(1 - _TINT, 1 + _TINT, 3) + rng.uniform(-4, 4, 3)
    alpha = opacity * mask[..., None]
    return alpha * gen + (1 - alpha) * img


def _finish(img: np.ndarray, rng: np.random.Generator) -> bytes:
    """Sensor noise and JPEG at a random quality; the same ranges for both classes."""
    sigma = rng.uniform(*_NOISE_SIGMA)
    noise = rng.normal(0, sigma, img.shape[:2])[..., None] + rng.normal(0, sigma * 0.35, img.shape)
    out = Image.fromarray(np.clip(np.rint(img + noise), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=int(rng.integers(_JPEG_QUALITY[0], _JPEG_QUALITY[1] + 1)),
             subsampling=2, optimize=False, progressive=False)
    return buf.getvalue()


def _name(seed: int, stream: int, index: int) -> str:
    return hashlib.blake2b(f"dfsweep-demo/{seed}/{stream}/{index}".encode(), digest_size=8).hexdigest()


def _write(folder: Path, n_real: int, n_fake: int, size: int, seed: int) -> None:
    rows, sources = [], {}
    for i in range(n_real):
        img, face = _render(_rng(seed, _REAL, i, 0), size)
        if i < n_fake:
            sources[i] = (img, face)
        rows.append((_name(seed, _REAL, i), "real", i, _finish(img, _rng(seed, _REAL, i, 1))))
    for j in range(n_fake):
        src = j % n_real                       # the real image (identity) this fake is made from
        img, face = sources[src]
        img = _fake(img, face, _rng(seed, _FAKE, j, 0))
        rows.append((_name(seed, _FAKE, j), "fake", src, _finish(img, _rng(seed, _FAKE, j, 1))))
    rows.sort()                                # by the neutral name: the order reveals no label
    with open(folder / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["image", "label", "group"])
        for name, label, group, data in rows:
            (folder / f"{name}.jpg").write_bytes(data)
            writer.writerow([f"{name}.jpg", label, f"id{group:05d}"])


def generate_demo(out_dir, n_real: int = 1500, n_fake: int = 300, size: int = 128, seed: int = 0) -> Path:
    """Write the demo set into `out_dir` (which must not exist or be empty) and return its path.

    The same arguments give byte-identical files. The set is built in a temporary sibling folder and
    renamed into place, so an interrupted run leaves no half-written set.
    """
    out = Path(out_dir)
    if n_real < 1 or n_fake < 0 or size < 32:
        raise DfsweepError(f"demo data: need n_real >= 1, n_fake >= 0, size >= 32 "
                           f"(got {n_real}, {n_fake}, {size})")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DfsweepError(f"demo data: {out} already exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _write(tmp, n_real, n_fake, size, seed)
        if out.exists():
            out.rmdir()                        # empty (checked above)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# the held-out demo test set: other identities (another seed), same 5:1 mix, labels.csv beside the images
_TEST_SET = {"n_real": 250, "n_fake": 50, "seed": 1}


def ensure_demo(cache_dir, split: str = "train") -> Path:
    """Return `<cache_dir>/<DEMO_VERSION>` (split "train") or `<cache_dir>/<DEMO_VERSION>-test` (split "test", 300
    images of other identities), generating the set there first if it is missing."""
    if split not in ("train", "test"):
        raise ValueError(f"demo split must be train or test, got {split!r}")
    out = Path(cache_dir) / (DEMO_VERSION if split == "train" else f"{DEMO_VERSION}-test")
    if (out / "labels.csv").is_file():
        return out
    try:
        return generate_demo(out, **(_TEST_SET if split == "test" else {}))
    except (DfsweepError, OSError):
        # Another process may have finished the same set first: that one is as good as ours.
        if (out / "labels.csv").is_file():
            return out
        raise
