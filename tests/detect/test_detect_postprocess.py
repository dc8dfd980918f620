import pytest
import torch

from iznet.detect.postprocess import Letterbox, PostprocessConfig, postprocess, select
from iznet.detect.results import Detections


def test_confidence_threshold():
    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]])
    scores = torch.tensor([0.29, 0.31, 0.9])
    b, s = select(boxes, scores)
    assert s.tolist() == pytest.approx([0.9, 0.31])
    b, s = select(boxes, scores, PostprocessConfig(conf_threshold=0.5))
    assert s.tolist() == pytest.approx([0.9])


def test_nms_at_iou_0_4():
    base = torch.tensor([0.0, 0, 10, 10])
    # shifted by 3 px: IoU = 70/130 = 0.54 > 0.4 -> suppressed; by 6 px: IoU = 40/160 = 0.25 -> kept
    boxes = torch.stack([base, base + torch.tensor([3.0, 0, 3, 0]), base + torch.tensor([0.0, 6, 0, 6])])
    b, s = select(boxes, torch.tensor([0.9, 0.8, 0.7]))
    assert s.tolist() == pytest.approx([0.9, 0.7])
    b, s = select(boxes, torch.tensor([0.9, 0.8, 0.7]), PostprocessConfig(iou_threshold=0.6))
    assert len(s) == 3


def test_at_most_12_boxes_highest_first():
    boxes = torch.tensor([[i * 20.0, 0, i * 20 + 10, 10] for i in range(20)])
    scores = torch.linspace(0.4, 0.99, 20)
    b, s = select(boxes, scores)
    assert len(s) == 12
    assert torch.all(s[:-1] >= s[1:])
    assert s.min().item() == pytest.approx(scores[8].item())


def _raw_with(grid, entries):
    raw = torch.full((1, grid, grid, 2, 5), -12.0)  # every confidence ~0
    for (r, c, a), vals in entries.items():
        p = torch.tensor(vals[:3])
        raw[0, r, c, a, :3] = torch.log(p / (1 - p))
        raw[0, r, c, a, 3:] = torch.tensor(vals[3:])  # sqrt(w), sqrt(h) are linear
    return raw


def test_postprocess_with_letterbox():
    # one box centred in cell (1, 2) of a 4x4 grid over a 128 px input, conf 0.9, w 0.25, h 0.36
    raw = _raw_with(4, {(1, 2, 0): [0.9, 0.5, 0.5, 0.5, 0.6]})
    dets = postprocess(raw, image_size=128)
    assert len(dets) == 1 and len(dets[0]) == 1
    cx, cy, w, h = 2.5 * 32, 1.5 * 32, 0.25 * 128, 0.36 * 128
    assert dets[0].xyxy[0].tolist() == pytest.approx([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], abs=1e-3)
    # the original was 256 x 192, scaled by 0.5 and padded 16 px at the top
    lb = Letterbox(scale=0.5, pad_x=0.0, pad_y=16.0, width=256, height=192)
    d = postprocess(raw, image_size=128, letterboxes=[lb])[0]
    assert d.image_size == (256, 192)
    assert d.xyxy[0].tolist() == pytest.approx([(cx - w / 2) * 2, (cy - h / 2 - 16) * 2, (cx + w / 2) * 2,
                                                (cy + h / 2 - 16) * 2], abs=1e-3)
    assert torch.allclose(lb.to_input(d.xyxy), dets[0].xyxy, atol=1e-3)


def test_postprocess_nothing_found_gives_empty_detections():
    d = postprocess(torch.full((2, 3, 3, 2, 5), -12.0), image_size=15)
    assert [len(x) for x in d] == [0, 0]


def test_detections_object():
    d = Detections(torch.tensor([[1.0, 2, 11, 22]]), torch.tensor([0.75]), (40, 30))
    assert len(d) == 1
    assert d.to_json() == [{"xyxy": [1.0, 2.0, 11.0, 22.0], "score": 0.75}]
    boxes, scores = d.numpy()
    assert boxes.shape == (1, 4) and scores.shape == (1,)
    assert d.xywh[0].tolist() == [1.0, 2.0, 10.0, 20.0]
    assert len(Detections.empty()) == 0 and Detections.empty().to_json() == []
    with pytest.raises(ValueError):
        Detections(torch.zeros(2, 4), torch.zeros(3))
