import pytest

from iznet.detect.evaluate import average_precision, evaluate_detections, match_image, recall_at

BOX = [0.0, 0.0, 10.0, 10.0]
FAR = [100.0, 100.0, 110.0, 110.0]


def shift(b, dx):
    return [b[0] + dx, b[1], b[2] + dx, b[3]]


def test_match_image_each_truth_once_and_highest_score_first():
    # two detections on the same face: the higher-scored one is the true positive
    tp, matched = match_image([shift(BOX, 1), BOX], [0.6, 0.9], [BOX])
    assert tp.tolist() == [False, True] and matched.tolist() == [True]


def test_ap_hand_case():
    # image 1: faces A, B; detections: A (0.9, TP), false (0.8), B (0.7, TP)
    # image 2: face C, not found; a false detection (0.6)
    dets = [([BOX, FAR, shift(BOX, 50)], [0.9, 0.8, 0.7]), ([FAR], [0.6])]
    gts = [[BOX, shift(BOX, 50)], [shift(BOX, 20)]]
    # ranked: TP, FP, TP, FP -> recall 1/3, 1/3, 2/3, 2/3; precision 1, 1/2, 2/3, 1/2
    # all-point: 1/3 * 1 + 1/3 * 2/3 = 5/9
    assert average_precision(dets, gts) == pytest.approx(5 / 9)
    assert recall_at(dets, gts, 0.5) == pytest.approx(2 / 3)


def test_ap_perfect_and_empty():
    assert average_precision([([BOX], [0.5])], [[BOX]]) == 1.0
    assert average_precision([([], [])], [[BOX]]) == 0.0
    assert average_precision([([BOX], [0.5])], [[]]) == 0.0
    with pytest.raises(ValueError):
        average_precision([([BOX], [0.5])], [])


def test_recall_depends_on_iou_threshold():
    # shifted by 4 px: IoU = 60 / 140 = 0.43: a hit at 0.3, a miss at 0.5
    dets = [([shift(BOX, 4)], [0.9])]
    assert recall_at(dets, [[BOX]], 0.3) == 1.0
    assert recall_at(dets, [[BOX]], 0.5) == 0.0


def test_evaluate_detections_operating_threshold():
    dets = [([BOX, FAR], [0.9, 0.2])]
    m = evaluate_detections(dets, [[BOX, FAR]], operating_threshold=0.3)
    assert m.ap50 == pytest.approx(1.0)        # ranked list finds both
    assert m.recall50 == pytest.approx(0.5)    # the 0.2 box is below the operating threshold
    assert m.precision50 == 1.0 and m.detections == 1 and m.faces == 2 and m.images == 1
