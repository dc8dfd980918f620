"""Drawing boxes and labels."""

from __future__ import annotations

import numpy as np
import pytest

from iznet.viz.draw import DrawError, draw_detections, font_size_for, format_label, line_width_for

RED = np.array([255, 0, 0], np.uint8)


def _is_red(px):
    return np.array_equal(px, RED)


@pytest.mark.parametrize("size", [(64, 80), (300, 400), (1200, 1600)])
def test_box_edges_red_and_far_pixels_unchanged(size):
    H, W = size
    rng = np.random.default_rng(0)
    img = rng.integers(0, 200, size=(H, W, 3), dtype=np.uint8)  # never pure red
    original = img.copy()
    x1, y1, x2, y2 = int(W * 0.3), int(H * 0.4), int(W * 0.6), int(H * 0.8)
    out = draw_detections(img, [[x1, y1, x2, y2]], ["Alice 0.62"])
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(img, original)  # input untouched
    ym, xm = (y1 + y2) // 2, (x1 + x2) // 2
    for px in (out[ym, x1], out[ym, x2], out[y2, xm], out[y1, xm]):
        assert _is_red(px)
    # far from the box and its label: unchanged
    np.testing.assert_array_equal(out[H - 3 :, :], original[H - 3 :, :])
    np.testing.assert_array_equal(out[:, W - 3 :], original[:, W - 3 :])
    np.testing.assert_array_equal(out[ym - 2 : ym + 3, 2:5], original[ym - 2 : ym + 3, 2:5])
    # the box interior away from the edges and the label is unchanged
    lw = line_width_for(H, W)
    np.testing.assert_array_equal(out[ym, x1 + lw + 1 : x2 - lw - 1], original[ym, x1 + lw + 1 : x2 - lw - 1])


def test_label_is_drawn_above_with_text():
    img = np.full((200, 200, 3), 128, np.uint8)
    no_label = draw_detections(img, [[50, 100, 150, 180]], None)
    with_label = draw_detections(img, [[50, 100, 150, 180]], ["Bob"])
    changed = np.any(with_label != no_label, axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.max() < 100  # the label sits above the box
    region = with_label[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert np.any(region[..., 1] > 200)  # white (anti-aliased) text on the red background
    assert np.any(np.all(region == RED, axis=2))


def test_label_goes_inside_when_box_touches_top():
    img = np.full((100, 100, 3), 128, np.uint8)
    base = draw_detections(img, [[10, 0, 90, 90]], [""])
    out = draw_detections(img, [[10, 0, 90, 90]], ["Al"])
    ys, _ = np.nonzero(np.any(out != base, axis=2))
    assert ys.min() >= 0 and ys.max() < 40


def test_sizes_scale_with_image():
    assert line_width_for(112, 112) == 1 and font_size_for(112, 112) == 10
    assert line_width_for(3000, 4000) > line_width_for(300, 400)
    assert font_size_for(3000, 4000) > font_size_for(300, 400)


def test_no_boxes_and_clipping():
    img = np.zeros((50, 60, 3), np.uint8)
    np.testing.assert_array_equal(draw_detections(img, np.zeros((0, 4)), []), img)
    out = draw_detections(img, [[-20.5, -10, 200, 300]], ["x"])  # clipped to the image
    assert out.shape == img.shape and _is_red(out[49, 30]) and _is_red(out[25, 59])


def test_colours_per_box():
    img = np.zeros((100, 100, 3), np.uint8)
    out = draw_detections(img, [[10, 10, 40, 40], [60, 60, 90, 90]], None, color=[(255, 0, 0), (0, 255, 0)])
    assert _is_red(out[25, 10]) and np.array_equal(out[75, 60], [0, 255, 0])


def test_bad_inputs():
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(DrawError, match="uint8"):
        draw_detections(img.astype(np.float32), [[0, 0, 5, 5]])
    with pytest.raises(DrawError, match="uint8"):
        draw_detections(np.zeros((10, 10), np.uint8), [[0, 0, 5, 5]])
    with pytest.raises(DrawError, match=r"\(N, 4\)"):
        draw_detections(img, [[0, 0, 5]])
    with pytest.raises(DrawError, match="2 labels for 1 boxes"):
        draw_detections(img, [[0, 0, 5, 5]], ["a", "b"])


def test_format_label():
    assert format_label("Alice", 0.6234) == "Alice 0.62"
    assert format_label("unknown", None) == "unknown"
    assert format_label("Bob", float("inf")) == "Bob"
