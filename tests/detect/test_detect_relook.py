"""The second look at small faces (iznet.detect.relook): geometry against brute force, the choice of the face,
the three detector paths, and the bundled detector's points on a photo shrunk into a big canvas."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from iznet.detect.numpy_post import FoundFaces
from iznet.detect.relook import box_iou, pick_face, relook_found, relook_points, seen_sides, square_around
from iznet.detect.results import Detections
from iznet.detect.settings import DEFAULT_RELOOK, RelookConfig


def test_square_around_matches_a_pixel_loop():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for box in ([10.2, 5.7, 20.9, 18.1], [-6.0, -3.0, 8.0, 9.0], [45.0, 30.0, 60.5, 41.0], [0, 0, 53, 37]):
        box = np.array(box)
        for zoom in (1.0, 2.5, 4.5):
            sq, origin = square_around(img, box, zoom)
            side = int(round(zoom * max(box[2] - box[0], box[3] - box[1])))
            assert sq.shape == (side, side, 3) and origin.dtype == np.float64
            x0, y0 = int(origin[0]), int(origin[1])
            assert abs(x0 + side / 2 - (box[0] + box[2]) / 2) <= 0.5
            assert abs(y0 + side / 2 - (box[1] + box[3]) / 2) <= 0.5
            want = np.zeros_like(sq)
            for j in range(side):
                for i in range(side):
                    if 0 <= y0 + j < img.shape[0] and 0 <= x0 + i < img.shape[1]:
                        want[j, i] = img[y0 + j, x0 + i]
            np.testing.assert_array_equal(sq, want)
    sq, _ = square_around(img, np.array([500.0, 500.0, 510.0, 510.0]), 2.0)  # wholly outside: black
    assert sq.shape == (20, 20, 3) and not sq.any()


def test_seen_sides_follow_the_letterbox():
    boxes = np.array([[0, 0, 100, 50], [10, 10, 30, 70]], float)
    np.testing.assert_allclose(seen_sides(boxes, (1664, 832), 416), [25.0, 15.0])
    np.testing.assert_allclose(seen_sides(boxes, (200, 400), 416), [104.0, 62.4])


def test_pick_face_matches_a_loop():
    rng = np.random.default_rng(1)
    for _ in range(300):
        box = np.sort(rng.uniform(0, 50, 4).reshape(2, 2), axis=0).T.reshape(-1)[[0, 2, 1, 3]]
        boxes = rng.uniform(0, 50, (rng.integers(0, 6), 4))
        boxes[:, 2:] = boxes[:, :2] + rng.uniform(1, 30, (len(boxes), 2))
        centre = rng.uniform(0, 50, 2)
        best, best_d = -1, np.inf
        for k, b in enumerate(boxes):
            iw = max(0.0, min(box[2], b[2]) - max(box[0], b[0]))
            ih = max(0.0, min(box[3], b[3]) - max(box[1], b[1]))
            union = (box[2] - box[0]) * (box[3] - box[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
            d = ((b[0] + b[2]) / 2 - centre[0]) ** 2 + ((b[1] + b[3]) / 2 - centre[1]) ** 2
            if iw * ih / union >= 0.3 and d < best_d:
                best, best_d = k, d
        assert pick_face(box, boxes, centre, 0.3) == best
    assert box_iou(np.array([0, 0, 2, 2.0]), np.array([[1, 1, 3, 3.0]]))[0] == pytest.approx(1 / 7)


# A fake detector: white rectangles on black are faces; its points sit at fixed fractions of the box.
FRACTIONS = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])


def _points(box: np.ndarray) -> np.ndarray:
    return box[:2] + FRACTIONS * (box[2:] - box[:2])


def _white_boxes(img: np.ndarray) -> np.ndarray:
    """The bounding box (x1, y1, x2, y2) of a picture's white pixels (each square holds one rectangle at most)."""
    ys, xs = np.nonzero(img[..., 0] > 127)
    if len(xs) == 0:
        return np.zeros((0, 4))
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], float)


def _fake_look(squares):
    looked.append(len(squares))
    res = []
    for sq in squares:
        b = _white_boxes(sq)
        res.append((b, np.stack([_points(x) for x in b]) if len(b) else np.zeros((0, 5, 2))))
    return res


looked: list[int] = []


def test_relook_points_takes_the_points_found_large_and_leaves_big_faces_alone():
    img = np.zeros((2000, 3000, 3), np.uint8)
    truth = np.array([[100, 200, 160, 270], [400, 420, 452, 480], [1000, 1000, 1700, 1800],
                      [2900, 1950, 2960, 2010]], float)  # the last one runs off the picture's corner
    for x1, y1, x2, y2 in truth.astype(int):
        img[y1:y2, x1:x2] = 255
    coarse = np.stack([_points(b) for b in truth]) + np.array([6.0, -4.0])  # coarse: off by several pixels
    looked.clear()
    pts, changed = relook_points(_fake_look, img, truth, coarse, 416, RelookConfig(zoom=3.0, below=64.0))
    # seen sides: 70, 60, 800 and 60 image pixels x 416/3000 = 9.7, 8.3, 111 and 8.3: three are small
    assert looked == [3] and changed == 3
    want = np.stack([_points(np.minimum(b, [3000, 2000, 3000, 2000])) for b in truth])
    np.testing.assert_allclose(pts[[0, 1, 3]], want[[0, 1, 3]], atol=1e-9)
    np.testing.assert_array_equal(pts[2], coarse[2].astype(np.float32))  # big: untouched
    # a face the second look does not find (an empty square) keeps its coarse points
    pts, changed = relook_points(lambda sq: [(np.zeros((0, 4)), np.zeros((0, 5, 2)))] * len(sq), img, truth,
                                 coarse, 416, RelookConfig(zoom=3.0, below=64.0))
    assert changed == 0 and np.array_equal(pts, coarse.astype(np.float32))
    # a face found there that is another one (no overlap with the first box) is not taken
    far = np.array([[1200, 200, 1260, 270]], float)
    pts, changed = relook_points(lambda sq: [(np.array([[0, 0, 20, 20.0]]), np.zeros((1, 5, 2)))], img, far,
                                 _points(far[0])[None], 416, RelookConfig(zoom=3.0))
    assert changed == 0


@pytest.mark.parametrize("kind", ["detections", "found"])
def test_relook_found_keeps_the_result_type_and_what_has_no_points(kind):
    img = np.zeros((1500, 1500, 3), np.uint8)
    img[700:760, 700:750] = 255
    box = np.array([[700, 700, 750, 760]], float)
    coarse = (_points(box[0]) + 5)[None]
    make = ((lambda b, p: Detections(torch.tensor(b), torch.tensor([0.9]), (1500, 1500),
                                     None if p is None else torch.tensor(p)))
            if kind == "detections" else
            (lambda b, p: FoundFaces(b.astype(np.float32), np.array([0.9], np.float32), (1500, 1500),
                                     None if p is None else p.astype(np.float32))))

    def look(squares):
        return [make(b, p) for b, p in _fake_look(squares)]

    with_points, without = make(box, coarse), make(box, None)
    out = relook_found(look, [img, img], [with_points, without], 416, RelookConfig())
    assert type(out[0]) is type(with_points) and out[1] is without
    np.testing.assert_allclose(np.asarray(out[0].landmarks)[0], _points(box[0]), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(out[0].xyxy), np.asarray(with_points.xyxy))  # boxes stay
    assert relook_found(look, [img], [with_points], 416, None)[0] is with_points


def test_relook_config_refuses_bad_values():
    for bad in ({"zoom": 0.5}, {"below": 0}, {"tta": "sideways"}, {"min_iou": 1.5}):
        with pytest.raises(ValueError):
            RelookConfig(**bad)
    assert dataclasses.replace(DEFAULT_RELOOK, tta="full").tta == "full"


def test_loaded_detectors_look_again_unless_told_not_to():
    from iznet.loading import load_detector

    assert load_detector(runtime="torch").relook == DEFAULT_RELOOK
    assert load_detector(runtime="torch", relook=False).relook is None


def _eye_distance(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, 0] - points[:, 1], axis=1)


def test_the_bundled_detector_finds_better_points_for_faces_shrunk_into_a_big_canvas():
    """The demo photo's faces seen alone (their points are the reference) and then in the corner of a canvas
    four times wider (faces about 18 pixels in the detector's view): the second look brings the points back
    near the reference (here mean errors of 0.16-0.37 of the eye distance become 0.03-0.09)."""
    from iznet.data.images import load_image
    from iznet.loading import load_detector
    from iznet.recognize.pipeline import DEMO_PHOTO

    photo = load_image(DEMO_PHOTO)
    det = load_detector(runtime="torch", relook=False)
    ref = det.detect(photo)
    assert len(ref) >= 6 and ref.landmarks is not None
    canvas = np.full((photo.shape[0] * 4, photo.shape[1] * 4, 3), 118, np.uint8)
    canvas[100:100 + photo.shape[0], 200:200 + photo.shape[1]] = photo
    small = det.detect(canvas)
    again = relook_found(lambda sq: load_detector(runtime="torch", tta="off", relook=False).detect_batch(sq),
                         [canvas], [small], 416, dataclasses.replace(DEFAULT_RELOOK, below=1e9))[0]
    rb, rp = ref.xyxy.numpy(), ref.landmarks.numpy()
    errors = {"first": [], "second": []}
    for k, b in enumerate(small.xyxy.numpy() - [200, 100, 200, 100]):
        j = int(np.argmax(box_iou(b, rb)))
        if box_iou(b, rb)[j] < 0.4:
            continue
        iod = _eye_distance(rp[j:j + 1])[0]
        for key, res in (("first", small), ("second", again)):
            p = res.landmarks.numpy()[k] - [200, 100]
            errors[key].append(np.linalg.norm(p - rp[j], axis=1).mean() / iod)
    assert len(errors["first"]) >= 4
    first, second = np.mean(errors["first"]), np.mean(errors["second"])
    assert second < 0.6 * first, (first, second)
