"""Five-point alignment: the similarity fit against known transforms, and the warp against the template."""

from __future__ import annotations

import numpy as np
import pytest

from iznet.data.align import TEMPLATE_112, align_face, similarity_transform


def _apply(m, pts):
    return pts @ m[:, :2].T + m[:, 2]


@pytest.mark.parametrize("seed", range(5))
def test_similarity_recovers_a_known_transform(seed):
    rng = np.random.default_rng(seed)
    ang, s, t = rng.uniform(-np.pi, np.pi), rng.uniform(0.2, 5), rng.uniform(-100, 100, 2)
    r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    src = rng.uniform(0, 200, (5, 2))
    dst = s * src @ r.T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], s * r, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-7)


def test_similarity_is_the_least_squares_fit():
    """With noisy points, no nearby similarity has a smaller squared error (brute-force perturbation)."""
    rng = np.random.default_rng(7)
    src = rng.uniform(0, 100, (5, 2))
    dst = 1.3 * src[:, ::-1] * [1, -1] + 20 + rng.normal(0, 3, (5, 2))
    m = similarity_transform(src, dst)
    a, b, tx, ty = m[0, 0], m[1, 0], m[0, 2], m[1, 2]
    assert np.isclose(m[0, 1], -b) and np.isclose(m[1, 1], a)  # a similarity: no shear, no reflection

    def err(a, b, tx, ty):
        mm = np.array([[a, -b, tx], [b, a, ty]])
        return ((_apply(mm, src) - dst) ** 2).sum()

    best = err(a, b, tx, ty)
    for d in rng.normal(0, 1e-3, (200, 4)):
        assert err(a + d[0], b + d[1], tx + d[2], ty + d[3]) >= best - 1e-9


def test_similarity_rejects_bad_points():
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.ones((5, 2)), TEMPLATE_112)
    with pytest.raises(ValueError, match="same shape"):
        similarity_transform(np.zeros((4, 2)), TEMPLATE_112)
    with pytest.raises(ValueError, match="not finite"):
        similarity_transform(np.full((5, 2), np.nan), TEMPLATE_112)


def test_align_face_puts_marked_points_on_the_template():
    """Draw five dots at known places of a rotated, scaled 'face'; after alignment they sit on the template."""
    rng = np.random.default_rng(3)
    ang, s, t = 0.4, 2.5, np.array([160.0, 90.0])
    r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    pts = s * TEMPLATE_112 @ r.T + t
    img = np.zeros((500, 520, 3), np.uint8)
    for k, (x, y) in enumerate(pts):
        yy, xx = np.mgrid[0:500, 0:520]
        img[(xx - x) ** 2 + (yy - y) ** 2 <= 36, k % 3] = 255
    out = align_face(img, pts + rng.normal(0, 0.2, (5, 2)), 112)
    assert out.shape == (112, 112, 3) and out.dtype == np.uint8
    for k, (x, y) in enumerate(TEMPLATE_112):
        patch = out[int(y) - 4:int(y) + 5, int(x) - 4:int(x) + 5, k % 3]
        ys, xs = np.nonzero(patch > 60)
        assert len(ys) > 0
        assert abs(ys.mean() - 4 - (y - int(y))) < 1.0 and abs(xs.mean() - 4 - (x - int(x))) < 1.0


def test_align_face_scales_the_template_and_fills_outside_black():
    img = np.full((40, 40, 3), 200, np.uint8)  # maps to 160x160 of the 224 output
    pts = TEMPLATE_112 * 0.5  # a face of half the template size at the top-left corner
    out = align_face(img, pts, 224)
    assert out.shape == (224, 224, 3)
    assert out[:100, :100].mean() > 190  # inside the image
    assert out[-10:, -10:].max() == 0  # beyond it: black
    with pytest.raises(ValueError, match="5 landmarks"):
        align_face(img, TEMPLATE_112[:4], 112)


def test_align_face_shrinks_large_faces_without_aliasing():
    """A fine stripe pattern on a big face averages to mid-grey instead of aliasing into bands."""
    img = np.zeros((2000, 2000, 3), np.uint8)
    img[:, ::2] = 255
    out = align_face(img, TEMPLATE_112 * 12 + 200, 112)
    assert abs(float(out[20:90, 20:90].mean()) - 127.5) < 10
    assert float(out[20:90, 20:90].std()) < 20


def test_yunet_landmarks_align_an_lfw_face(shared_data):
    """The teacher's five points on a real face come in the template's order and align it near the template."""
    import cv2

    from iznet.data.images import load_image
    from iznet.detect.teachers import YuNetDetector

    models = sorted((shared_data.parent / "models").glob("face_detection_yunet*.onnx"))
    if not models:
        pytest.skip("no YuNet model in ../shared/models")
    img = load_image(shared_data / "lfw" / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg")
    boxes, lms, scores = YuNetDetector(models[-1]).detect_landmarks(img)
    assert len(boxes) == 1 and scores[0] > 0.6 and lms.shape == (1, 5, 2)
    le, re, nose, lm, rm = lms[0]
    assert le[0] < nose[0] < re[0] and lm[0] < rm[0] and max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])
    # aligned twice: the second pass finds the points where the template puts them
    aligned = align_face(img, lms[0], 112)
    canvas = cv2.copyMakeBorder(aligned, 56, 56, 56, 56, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    _, lm2, _ = YuNetDetector(models[-1]).detect_landmarks(canvas)
    assert np.abs(lm2[0] - 56 - TEMPLATE_112).max() < 6


def test_face_pixels_follows_the_convention_and_falls_back_without_landmarks():
    from iznet.data.align import face_pixels, needs_landmarks
    from iznet.data.crops import crop_face

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 140, 3), dtype=np.uint8)
    box = (30.0, 20.0, 90.0, 95.0)
    pts = TEMPLATE_112 * 0.5 + np.array([30.0, 20.0])
    assert np.array_equal(face_pixels(img, box, pts, 56, "aligned"), align_face(img, pts, 56))
    assert np.array_equal(face_pixels(img, box, pts, 56, "box"), crop_face(img, box, 56))
    assert np.array_equal(face_pixels(img, box, None, 56, "aligned", scale=1.1), crop_face(img, box, 56, scale=1.1))
    assert needs_landmarks("aligned", None) and not needs_landmarks("box", None)
    assert not needs_landmarks("aligned", pts)
    with pytest.raises(ValueError, match="unknown face crop convention 'tight'"):
        face_pixels(img, box, pts, 56, "tight")
