"""The face-crop convention: square around the tight box, black outside the image, LFW's fixed box."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from data_fixtures import smooth_image
from iznet.data import crops
from iznet.data.crops import (FACE_CROP_SCALE, LFW_FACE_BOX, LFW_FRAME, crop_box, crop_face, haar_face_box,
                              lfw_crop)
from iznet.data.images import load_image
from iznet.errors import ModelError

needs_haar = pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"),
                                reason=f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 dropped them)")


def test_crop_box_is_a_centred_square():
    assert crop_box((10, 20, 30, 60), scale=1.0) == (0, 20, 40, 60)  # side = max(20, 40)
    x0, y0, x1, y1 = crop_box((10, 20, 30, 60), scale=1.5)
    assert x1 - x0 == y1 - y0 == 60
    assert (x0 + x1) / 2 == 20 and (y0 + y1) / 2 == 40
    for bad in [(5, 5, 5, 9), (5, 9, 8, 2), (0, 0, float("nan"), 3)]:
        with pytest.raises(ValueError, match="empty or not finite"):
            crop_box(bad)
    with pytest.raises(ValueError, match="positive"):
        crop_box((0, 0, 4, 4), scale=0)


def test_crop_inside_is_the_exact_square():
    img = smooth_image(60, 80, 0)
    out = crop_face(img, (30, 20, 50, 40), size=20, scale=1.0)
    np.testing.assert_array_equal(out, img[20:40, 30:50])
    small = crop_face(img, (30, 20, 50, 40), size=10, scale=1.0)
    assert small.shape == (10, 10, 3) and small.dtype == np.uint8
    # a 2x2 area average of the exact square
    ref = img[20:40, 30:50].reshape(10, 2, 10, 2, 3).mean((1, 3))
    assert np.abs(small.astype(float) - ref).max() <= 1.0


def test_crop_pads_black_outside_the_image():
    img = np.full((30, 30, 3), 200, np.uint8)
    out = crop_face(img, (0, 0, 10, 10), size=20, scale=2.0)  # square (-5, -5)..(15, 15)
    assert out.shape == (20, 20, 3)
    assert (out[:5] == 0).all() and (out[:, :5] == 0).all()
    assert (out[5:, 5:] == 200).all()
    far = crop_face(img, (100, 100, 110, 110), size=8)  # entirely outside: all black
    assert (far == 0).all()


def test_crop_rejects_bad_image():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        crop_face(np.zeros((10, 10), np.uint8), (1, 1, 5, 5), 8)


def test_lfw_box_and_scale_are_sane():
    assert 1.25 <= FACE_CROP_SCALE <= 1.4
    x0, y0, x1, y1 = LFW_FACE_BOX
    assert 0 < x0 < x1 < LFW_FRAME and 0 < y0 < y1 < LFW_FRAME
    c0, r0, c1, r1 = crop_box(LFW_FACE_BOX)
    assert 0 <= c0 and 0 <= r0 and c1 <= LFW_FRAME and r1 <= LFW_FRAME  # the LFW crop never needs padding
    assert abs((c0 + c1) / 2 - LFW_FRAME / 2) < 10


def test_lfw_crop_matches_crop_face_and_scales_with_frame():
    img = smooth_image(250, 250, 3)
    np.testing.assert_array_equal(lfw_crop(img, 64), crop_face(img, LFW_FACE_BOX, 64))
    half = img[::2, ::2]  # the same picture in a 125x125 frame
    a = lfw_crop(img, 32).astype(float)
    b = lfw_crop(half, 32).astype(float)
    assert np.abs(a - b).mean() < 4


@needs_haar
def test_haar_finds_nothing_in_a_blank_image():
    assert haar_face_box(np.full((120, 120, 3), 128, np.uint8)) is None


def test_haar_missing_is_a_clear_error(monkeypatch):
    monkeypatch.delattr(cv2, "CascadeClassifier", raising=False)
    crops._haar_cascade.cache_clear()
    try:
        with pytest.raises(ModelError, match="opencv-python-headless<5"):
            haar_face_box(np.zeros((50, 50, 3), np.uint8))
    finally:
        crops._haar_cascade.cache_clear()


@needs_haar
@pytest.mark.shared
def test_haar_box_agrees_with_the_lfw_box(shared_data):
    images = sorted((shared_data / "lfw" / "images").glob("A*/*_0001.jpg"))[:12]
    if not images:
        pytest.skip("no LFW images in the shared data")
    lx0, ly0, lx1, ly1 = LFW_FACE_BOX
    found = 0
    for p in images:
        box = haar_face_box(load_image(p))
        if box is None:
            continue
        found += 1
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        assert abs(cx - (lx0 + lx1) / 2) < 25 and abs(cy - (ly0 + ly1) / 2) < 25
        assert 0.7 < (box[2] - box[0]) / max(lx1 - lx0, ly1 - ly0) < 1.4
    assert found >= 9
