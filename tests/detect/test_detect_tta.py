"""Test-time augmentation of the detector: sides, mirror mapping, box voting and fused scores."""

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from iznet.detect.detector import YoloFaceDetector
from iznet.detect.letterbox import letterbox
from iznet.detect.model import create_detector
from iznet.detect.postprocess import PostprocessConfig, postprocess
from iznet.detect.tta import TTA_MODES, TTAConfig, detect_images, fuse_passes, tta_config, tta_mode_name

TRAINED = 64


def test_sides_are_multiples_of_32_and_modes_are_named():
    assert TTAConfig(scales=(1.0, 1.3)).sides(416) == (416, 544)
    assert TTAConfig(scales=(1.3, 1.0, 1.01)).sides(416) == (416, 544)
    assert TTAConfig(scales=(1.0,), flip=True).passes(416) == 2
    assert TTA_MODES["full"].passes(416) == 4
    assert TTA_MODES["off"].is_single_pass(416) and not TTA_MODES["flip"].is_single_pass(416)
    assert tta_config(None) == TTA_MODES["full"] and tta_config(" OFF ") == TTA_MODES["off"]
    assert tta_mode_name(TTA_MODES["flip"]) == "flip" and tta_mode_name(TTAConfig(vote_iou=0.7)) == "custom"
    with pytest.raises(ValueError, match="choose one of off, flip, full"):
        tta_config("mirror")
    with pytest.raises(ValueError, match="scales"):
        TTAConfig(scales=())
    with pytest.raises(ValueError, match="vote_iou"):
        TTAConfig(vote_iou=0.0)


def square_finder(x: torch.Tensor) -> torch.Tensor:
    """A stand-in network that "detects" the white square of each input the way a trained detector reports
    it: centre as a cell offset, width and height as a fraction of the *trained* side (the pixels it sees)."""
    n, _, side, _ = x.shape
    grid = side // 32
    raw = torch.full((n, grid, grid, 2, 5), -12.0)
    for i in range(n):
        ys, xs = torch.nonzero(x[i].min(0).values > 0.9, as_tuple=True)
        x1, x2, y1, y2 = xs.min().item(), xs.max().item() + 1, ys.min().item(), ys.max().item() + 1
        cx, cy = (x1 + x2) / 2 / 32, (y1 + y2) / 2 / 32
        c, r = int(cx), int(cy)
        ox, oy = torch.tensor([cx - c, cy - r]).clamp(1e-4, 1 - 1e-4)
        raw[i, r, c, 0, 0] = 4.0
        raw[i, r, c, 0, 1:3] = torch.log(torch.stack([ox, oy]) / (1 - torch.stack([ox, oy])))
        raw[i, r, c, 0, 3] = ((x2 - x1) / TRAINED) ** 0.5
        raw[i, r, c, 0, 4] = ((y2 - y1) / TRAINED) ** 0.5
    return raw


@pytest.mark.parametrize("mode", ["off", "flip", "full"])
def test_every_pass_maps_back_to_the_original_pixels(mode):
    # a wide photo (letterboxed with padding above and below), the square off-centre to the right: a
    # mirror pass that forgot to flip back, or a side pass without the width correction, lands elsewhere
    img = np.zeros((120, 200, 3), np.uint8)
    img[30:70, 130:170] = 255
    dets = detect_images(square_finder, [img], TRAINED, PostprocessConfig(), tta_config(mode))[0]
    assert len(dets) == 1
    assert dets.image_size == (200, 120)
    assert dets.xyxy[0].tolist() == pytest.approx([130, 30, 170, 70], abs=3.0)
    assert dets.scores[0].item() == pytest.approx(torch.sigmoid(torch.tensor(4.0)).item(), abs=1e-5)


def brute_fuse(passes, config, tta):
    """The fusion rule written out with loops."""
    cand = [(b.tolist(), float(s), i) for i, (bs, ss) in enumerate(passes) for b, s in zip(bs, ss)
            if float(s) >= min(tta.candidate_threshold, config.conf_threshold)]
    cand.sort(key=lambda c: -c[1])
    iou = lambda a, b: box_iou(torch.tensor([a]), torch.tensor([b])).item()  # noqa: E731
    kept = []
    for c in cand:  # greedy NMS
        if all(iou(c[0], k[0]) <= config.iou_threshold for k in kept):
            kept.append(c)
    out = []
    for k in kept:
        voters = [c for c in cand if iou(k[0], c[0]) >= tta.vote_iou]
        wsum = sum(c[1] for c in voters)
        box = [sum(c[0][j] * c[1] for c in voters) / wsum for j in range(4)]
        best = [max([c[1] for c in voters if c[2] == i], default=0.0) for i in range(len(passes))]
        score = sum(best) / len(passes)
        if score >= config.conf_threshold:
            out.append((box, score))
    out.sort(key=lambda o: -o[1])
    final = []
    for o in out:  # greedy NMS again over the fused boxes
        if all(iou(o[0], f[0]) <= config.iou_threshold for f in final):
            final.append(o)
    return final[: config.max_detections]


@pytest.mark.parametrize("seed", range(5))
def test_fusion_matches_loops(seed):
    g = torch.Generator().manual_seed(seed)
    passes = []
    centres = torch.rand(6, 2, generator=g) * 200
    for _ in range(3):  # three passes that see jittered versions of six faces plus clutter
        c = torch.cat([centres + torch.randn(6, 2, generator=g) * 4, torch.rand(10, 2, generator=g) * 200])
        half = 10 + torch.rand(16, 1, generator=g) * 10
        boxes = torch.cat([c - half, c + half], 1)
        passes.append((boxes, torch.rand(16, generator=g)))
    config = PostprocessConfig(conf_threshold=0.2, iou_threshold=0.4, max_detections=5)
    tta = TTAConfig(vote_iou=0.5, candidate_threshold=0.05)
    b, s = fuse_passes(passes, config, tta)
    want = brute_fuse(passes, config, tta)
    assert len(s) == len(want)
    for i, (wb, ws) in enumerate(want):
        assert s[i].item() == pytest.approx(ws, abs=1e-6)
        assert b[i].tolist() == pytest.approx(wb, abs=1e-4)


def test_voting_cannot_leave_two_boxes_overlapping_beyond_the_nms_iou():
    # A and B overlap at IoU 0.25, so NMS keeps both; C (IoU 0.54 with each) is suppressed but votes for
    # both, and the two voted boxes end up at IoU 0.45: one face boxed twice without the second NMS.
    boxes = torch.tensor([[0.0, 0, 10, 10], [6.0, 0, 16, 10], [3.0, 0, 13, 10]])
    scores = torch.tensor([0.9, 0.8, 0.5])
    config, tta = PostprocessConfig(conf_threshold=0.3, iou_threshold=0.4), TTAConfig(vote_iou=0.5)
    b, s = fuse_passes([(boxes, scores)], config, tta)
    assert s.tolist() == pytest.approx([0.9])
    assert b[0].tolist() == pytest.approx([1.5 / 1.4, 0, 15.5 / 1.4, 10])
    # Farther apart, the voted boxes stay below the IoU and both remain.
    boxes[1] += torch.tensor([2.0, 0, 2, 0])
    b, s = fuse_passes([(boxes, scores)], config, tta)
    assert s.tolist() == pytest.approx([0.9, 0.8])


@pytest.mark.parametrize("seed", range(3))
def test_fused_boxes_never_overlap_beyond_the_nms_iou(seed):
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(40, 2, generator=g) * 60  # crowded: many candidates close together
    boxes = torch.cat([c - 10, c + 10], 1)
    config = PostprocessConfig(conf_threshold=0.1, iou_threshold=0.4, max_detections=50)
    b, s = fuse_passes([(boxes[:20], torch.rand(20, generator=g)), (boxes[20:], torch.rand(20, generator=g))],
                       config, TTAConfig(vote_iou=0.3, candidate_threshold=0.05))
    iou = box_iou(b, b) - torch.eye(len(b))
    assert len(b) >= 2 and float(iou.max()) <= 0.4


def test_a_face_seen_by_one_pass_of_two_keeps_half_its_score():
    box = torch.tensor([[10.0, 10, 50, 50]])
    seen, unseen = (box, torch.tensor([0.8])), (box + 100, torch.tensor([0.02]))
    b, s = fuse_passes([seen, unseen], PostprocessConfig(conf_threshold=0.3), TTAConfig())
    assert s.tolist() == pytest.approx([0.4])
    b, s = fuse_passes([seen, unseen], PostprocessConfig(conf_threshold=0.5), TTAConfig())
    assert len(s) == 0


def test_votes_average_overlapping_boxes_by_score():
    a, b_ = torch.tensor([[0.0, 0, 40, 40]]), torch.tensor([[4.0, 0, 44, 40]])  # IoU 36/44 = 0.82
    b, s = fuse_passes([(a, torch.tensor([0.9])), (b_, torch.tensor([0.3]))], PostprocessConfig(), TTAConfig())
    assert b[0].tolist() == pytest.approx([1.0, 0, 41, 40])
    assert s.tolist() == pytest.approx([0.6])


def test_no_candidates_gives_empty_results():
    b, s = fuse_passes([(torch.zeros(0, 4), torch.zeros(0))] * 2, PostprocessConfig(), TTAConfig())
    assert b.shape == (0, 4) and s.shape == (0,)
    with pytest.raises(ValueError, match="at least one pass"):
        fuse_passes([], PostprocessConfig(), TTAConfig())


def test_off_is_the_plain_single_pass():
    torch.manual_seed(0)
    model = create_detector("light", image_size=TRAINED).eval()
    low = PostprocessConfig(conf_threshold=0.0, max_detections=5)
    det = YoloFaceDetector(model, low, tta="off")
    g = np.random.default_rng(0)
    imgs = [g.integers(0, 255, (50, 70, 3), dtype=np.uint8), g.integers(0, 255, (64, 40, 3), dtype=np.uint8)]
    got = det.detect_batch(imgs)
    placed = [letterbox(im, TRAINED) for im in imgs]
    with torch.no_grad():
        x = torch.stack([p[0] for p in placed]).float() / 255.0
        # on the CPU the detector feeds channels_last batches (faster; the rounding, and so the order of
        # tied scores, can differ from NCHW's)
        raw = model(x.contiguous(memory_format=torch.channels_last))
    want = postprocess(raw, TRAINED, low, [p[1] for p in placed])
    for a, b in zip(got, want):
        assert torch.equal(a.xyxy, b.xyxy) and torch.equal(a.scores, b.scores)
    assert YoloFaceDetector(model).tta == TTA_MODES["full"]
    assert len(YoloFaceDetector(model, low, tta="full").detect(imgs[0])) > 0
