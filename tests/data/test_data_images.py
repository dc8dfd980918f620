"""Image loading: every bad input gives a clear ImageError, every mode becomes RGB uint8, EXIF is applied."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_fixtures import smooth_image, write_jpeg
from iznet.data.images import (IMAGE_EXTENSIONS, SkipReport, list_images, load_image, load_image_bytes,
                               load_images, to_rgb_array)
from iznet.errors import DataError, ImageError


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- bad inputs

def test_missing_file(tmp_path):
    with pytest.raises(ImageError) as e:
        load_image(tmp_path / "nope.jpg")
    assert e.value.path == tmp_path / "nope.jpg"
    assert "does not exist" in e.value.reason
    assert "nope.jpg" in str(e.value)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(p)


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    p = write_jpeg(tmp_path / "full.jpg", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = p.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    load_image(p)  # the whole file is fine
    with pytest.raises(ImageError, match="truncated or corrupt") as e:
        load_image(cut)
    assert e.value.path == cut


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n")
    with pytest.raises(ImageError, match="not an image file"):
        load_image(p)


def test_directory(tmp_path):
    d = tmp_path / "folder.jpg"
    d.mkdir()
    with pytest.raises(ImageError, match="directory"):
        load_image(d)


def test_bytes_bad_inputs():
    with pytest.raises(ImageError, match="0 bytes"):
        load_image_bytes(b"", name="up.png")
    with pytest.raises(ImageError, match="not an image") as e:
        load_image_bytes(b"hello world" * 10, name="up.png")
    assert e.value.path == Path("up.png")
    with pytest.raises(ImageError, match="expected bytes"):
        load_image_bytes("a string")  # type: ignore[arg-type]


def test_bytes_round_trip_and_pixel_guard():
    img = smooth_image(30, 50, 1)
    data = _png_bytes(Image.fromarray(img))
    np.testing.assert_array_equal(load_image_bytes(data), img)
    with pytest.raises(ImageError, match="over the limit"):
        load_image_bytes(data, max_pixels=30 * 50 - 1)
    # The guard reads only the header: a huge-looking image is refused before any pixel is decoded.
    big = _png_bytes(Image.new("L", (4000, 3000)))[:64]
    with pytest.raises(ImageError, match="12,000,000 pixels, over the limit"):
        load_image_bytes(big, name="bomb.png", max_pixels=1_000_000)


def test_file_pixel_guard(tmp_path):
    p = tmp_path / "a.png"
    Image.fromarray(smooth_image(20, 20, 2)).save(p)
    assert load_image(p).shape == (20, 20, 3)
    with pytest.raises(ImageError, match="over the limit"):
        load_image(p, max_pixels=399)


# ---------------------------------------------------------------- modes

def _check_rgb(a: np.ndarray, shape):
    assert a.dtype == np.uint8 and a.shape == (*shape, 3) and a.flags["C_CONTIGUOUS"]


def test_grayscale_L(tmp_path):
    g = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    p = tmp_path / "g.png"
    Image.fromarray(g, mode="L").save(p)
    a = load_image(p)
    _check_rgb(a, (4, 6))
    for c in range(3):
        np.testing.assert_array_equal(a[:, :, c], g)


def test_palette_P(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (200, 10, 30)
    rgb[2:] = (5, 100, 250)
    p = tmp_path / "p.png"
    Image.fromarray(rgb).quantize(colors=4).save(p)
    assert Image.open(p).mode == "P"
    a = load_image(p)
    _check_rgb(a, (4, 4))
    np.testing.assert_array_equal(a, rgb)


def test_palette_with_transparency_on_white(tmp_path):
    im = Image.new("P", (4, 2))
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    im.putdata([0, 1, 0, 1, 1, 1, 0, 0])
    p = tmp_path / "pt.png"
    im.save(p, transparency=0)  # palette index 0 (black) is transparent
    a = load_image(p)
    _check_rgb(a, (2, 4))
    np.testing.assert_array_equal(a[0, 0], [255, 255, 255])  # transparent -> white, not black
    np.testing.assert_array_equal(a[0, 1], [255, 0, 0])


def test_palette_gif_transparency(tmp_path):
    im = Image.new("P", (3, 1))
    im.putpalette([0, 0, 0, 0, 255, 0] + [0] * (254 * 3))
    im.putdata([0, 1, 0])
    p = tmp_path / "t.gif"
    im.save(p, transparency=0)
    a = load_image(p)
    np.testing.assert_array_equal(a[0], [[255, 255, 255], [0, 255, 0], [255, 255, 255]])


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_composited_on_white(tmp_path, mode):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)        # fully transparent black -> white
    rgba[0, 1] = (0, 0, 0, 255)      # opaque black stays black
    rgba[0, 2] = (0, 0, 0, 128)      # half black on white -> mid grey
    im = Image.fromarray(rgba, mode="RGBA")
    if mode == "LA":
        im = im.convert("LA")
    p = tmp_path / f"{mode}.png"
    im.save(p)
    assert Image.open(p).mode == mode
    a = load_image(p)
    _check_rgb(a, (1, 3))
    np.testing.assert_array_equal(a[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(a[0, 1], [0, 0, 0])
    assert 120 <= int(a[0, 2, 0]) <= 135 and a[0, 2, 0] == a[0, 2, 1] == a[0, 2, 2]


def test_cmyk(tmp_path):
    cmyk = np.zeros((2, 2, 4), np.uint8)
    cmyk[0, 0] = (0, 0, 0, 0)        # no ink: white
    cmyk[0, 1] = (255, 0, 0, 0)      # cyan
    cmyk[1, 0] = (0, 0, 0, 255)      # black
    cmyk[1, 1] = (0, 255, 255, 0)    # magenta + yellow = red
    p = tmp_path / "c.tif"
    Image.fromarray(cmyk, mode="CMYK").save(p)
    assert Image.open(p).mode == "CMYK"
    a = load_image(p)
    _check_rgb(a, (2, 2))
    np.testing.assert_array_equal(a[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(a[0, 1], [0, 255, 255])
    np.testing.assert_array_equal(a[1, 0], [0, 0, 0])
    np.testing.assert_array_equal(a[1, 1], [255, 0, 0])


def test_cmyk_jpeg(tmp_path):
    p = tmp_path / "c.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(p, quality=95)
    a = load_image(p)
    _check_rgb(a, (8, 8))
    assert a[4, 4, 0] > 200 and a[4, 4, 1] < 50 and a[4, 4, 2] < 50


def test_16bit_grayscale(tmp_path):
    v = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(v).save(p)
    assert Image.open(p).mode.startswith("I")
    a = load_image(p)
    _check_rgb(a, (1, 3))
    np.testing.assert_array_equal(a[0, :, 0], [0, 100, 255])
    np.testing.assert_array_equal(a[:, :, 0], a[:, :, 2])


def test_32bit_int_and_float_modes():
    i16_range = Image.fromarray(np.array([[0, 257 * 10, 65535]], dtype=np.int32), mode="I")
    np.testing.assert_array_equal(to_rgb_array(i16_range)[0, :, 1], [0, 10, 255])
    i8_range = Image.fromarray(np.array([[0, 7, 255]], dtype=np.int32), mode="I")
    np.testing.assert_array_equal(to_rgb_array(i8_range)[0, :, 1], [0, 7, 255])
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    np.testing.assert_array_equal(to_rgb_array(unit)[0, :, 0], [0, 128, 255])


def test_bilevel_and_multiframe(tmp_path):
    p = tmp_path / "b.png"
    Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1").save(p)
    np.testing.assert_array_equal(load_image(p)[0], [[0, 0, 0], [255, 255, 255]])
    frames = [Image.new("RGB", (4, 4), c) for c in [(255, 0, 0), (0, 0, 255)]]
    g = tmp_path / "anim.gif"
    frames[0].save(g, save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(load_image(g)[0, 0], [255, 0, 0])


# ---------------------------------------------------------------- EXIF orientation

@pytest.mark.parametrize("orientation,shape,top_left_red", [
    (1, (10, 20), True),   # as stored: red left half, blue right half
    (6, (20, 10), True),   # rotate 90 clockwise for display: the left half goes to the top
    (8, (20, 10), False),  # rotate 90 counter-clockwise: the left half goes to the bottom
    (3, (10, 20), False),  # rotate 180: red ends on the right
])
def test_exif_orientation(tmp_path, orientation, shape, top_left_red):
    img = np.zeros((10, 20, 3), np.uint8)
    img[:, :10] = (255, 0, 0)
    img[:, 10:] = (0, 0, 255)
    im = Image.fromarray(img)
    exif = im.getexif()
    exif[0x0112] = orientation
    p = tmp_path / f"o{orientation}.jpg"
    im.save(p, exif=exif.tobytes(), quality=95)
    a = load_image(p)
    assert a.shape == (*shape, 3)
    corner = a[1, 1].astype(int)
    assert (corner[0] > 200 and corner[2] < 60) == top_left_red
    assert (corner[2] > 200 and corner[0] < 60) == (not top_left_red)
    # the same rule for uploads
    np.testing.assert_array_equal(load_image_bytes(p.read_bytes()), a)


# ---------------------------------------------------------------- listing and bulk loading

def test_list_images(tmp_path):
    for rel in ["b/2.JPG", "b/1.png", "a.jpeg", "a/x.webp", "a/deep/y.bmp", ".hidden.jpg", "notes.txt",
                ".cache/z.jpg"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert got == ["a/deep/y.bmp", "a/x.webp", "a.jpeg", "b/1.png", "b/2.JPG"]  # Path order: by parts
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.jpeg"]
    assert list_images(tmp_path / "a.jpeg") == [tmp_path / "a.jpeg"]
    assert ".jpg" in IMAGE_EXTENSIONS and ".png" in IMAGE_EXTENSIONS
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "missing")
    with pytest.raises(DataError, match="not an image file"):
        list_images(tmp_path / "notes.txt")


def test_load_images_skips_and_reports(tmp_path):
    good = [write_jpeg(tmp_path / f"g{i}.jpg", smooth_image(8, 8, i)) for i in range(3)]
    empty = tmp_path / "e.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "t.jpg"
    text.write_text("nope")
    paths = [good[0], empty, good[1], tmp_path / "missing.jpg", text, good[2]]
    loaded, report = load_images(paths)
    assert [p for p, _ in loaded] == good
    assert all(a.shape == (8, 8, 3) for _, a in loaded)
    assert report.count == 3 and len(report) == 3
    assert [p for p, _ in report.skipped] == [empty, tmp_path / "missing.jpg", text]
    s = report.summary()
    assert s.startswith("skipped 3 unreadable files") and "e.jpg (file is empty" in s and "missing.jpg" in s
    assert "and 2 more" in report.summary(limit=1)


def test_skip_report_basics():
    r = SkipReport()
    assert r.count == 0 and r.summary() == "skipped 0 files"
    r.add("x.jpg", "bad")
    other = SkipReport()
    other.add("y.jpg", "worse")
    r.extend(other)
    assert r.count == 2 and r.skipped[1] == (Path("y.jpg"), "worse")


@pytest.mark.parametrize("w,h,why", [(1, 39_000_000, "a side over"), (60_000, 2_000, "a side over"),
                                     (3000, 40, "thinner than 1:50"), (13_000, 13_000, "pixels, over the limit")])
def test_thin_long_and_huge_images_are_refused_from_the_header(tmp_path, w, h, why):
    """Small files that would take seconds and gigabytes to decode are refused before decoding."""
    import io

    from PIL import Image

    from iznet.data.images import load_image, load_image_bytes

    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, "PNG")
    data = buf.getvalue()
    with pytest.raises(ImageError, match=why):
        load_image_bytes(data, "up.png")
    f = tmp_path / "big.png"
    f.write_bytes(data)
    with pytest.raises(ImageError, match=why):
        load_image(f)
