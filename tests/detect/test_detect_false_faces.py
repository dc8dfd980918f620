"""The hard-negative miner's box rule and the false-face kinds of iznet.detect.evaluate, against loops."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_script", SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _random_boxes(rng, n):
    xy = rng.uniform(0, 80, (n, 2))
    wh = rng.uniform(4, 30, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


@pytest.mark.parametrize("seed", range(5))
def test_no_face_there_matches_a_loop(seed):
    mod = _script("mine_hard_negatives")
    rng = np.random.default_rng(seed)
    boxes, faces, teacher = _random_boxes(rng, 40), _random_boxes(rng, 5), _random_boxes(rng, 3)
    got = mod.no_face_there(boxes, faces, teacher, max_iou=0.1)
    for b, keep in zip(boxes, got):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        inside = any(f[0] <= cx <= f[2] and f[1] <= cy <= f[3] for f in faces)
        want = (not inside and all(_iou(b, f) < 0.1 for f in faces) and all(_iou(b, t) < 0.3 for t in teacher))
        assert keep == want
    assert mod.no_face_there(np.zeros((0, 4)), faces, teacher).shape == (0,)
    assert mod.no_face_there(boxes, np.zeros((0, 4)), np.zeros((0, 4))).all()


@pytest.mark.parametrize("seed", range(5))
def test_false_face_kinds_match_a_loop(seed):
    from iznet.detect.evaluate import false_face_kinds, false_faces

    rng = np.random.default_rng(seed)
    truth, extra = _random_boxes(rng, 4), _random_boxes(rng, 3)
    # boxes near the true ones (some found, some loose), near the unlabelled ones, and anywhere
    boxes = np.concatenate([truth + rng.normal(0, 3, truth.shape), extra + rng.normal(0, 2, extra.shape),
                            _random_boxes(rng, 6)])
    scores = rng.uniform(0, 1, len(boxes))
    got = false_face_kinds(boxes, scores, truth, extra)
    taken = [False] * len(truth)
    want: dict[int, object] = {}
    for i in np.argsort(-scores, kind="stable"):  # VOC matching: highest score first
        b = boxes[i]
        ious = [(-1.0 if taken[j] else _iou(b, g)) for j, g in enumerate(truth)]
        j = int(np.argmax(ious))
        if ious[j] >= 0.5:
            taken[j] = True
            want[i] = None
        elif max(_iou(b, g) for g in truth) >= 0.3:
            want[i] = "loose"
        elif max(_iou(b, e) for e in extra) >= 0.5:
            want[i] = "unlabelled face"
        else:
            want[i] = "no face"
    assert got == [want[i] for i in range(len(boxes))]
    counts = false_faces([(boxes, scores)], [truth], [extra])
    assert sum(counts.values()) == sum(k is not None for k in got)


def test_unlabelled_faces_and_ap_ignoring():
    from iznet.detect.evaluate import ap_ignoring, average_precision, unlabelled_faces

    given = np.array([[0, 0, 10, 10]], np.float64)
    teacher = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float64)
    extra = unlabelled_faces(teacher, given)
    assert extra.tolist() == [[50, 50, 60, 60]]
    assert unlabelled_faces(np.zeros((0, 4)), given).shape == (0, 4)
    found = [(np.array([[50, 50, 60, 60], [0, 0, 10, 10]], np.float64), np.array([0.9, 0.8]))]
    # plain AP: the unlabelled face outranks the true one (AP 0.5); leaving it out, the ranking is perfect
    assert average_precision(found, [given]) == pytest.approx(0.5)
    assert ap_ignoring(found, [given], [extra]) == pytest.approx(1.0)
    assert ap_ignoring(found, [given], [np.zeros((0, 4))]) == pytest.approx(0.5)
