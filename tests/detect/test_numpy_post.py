"""The torch-free post-processing (iznet.detect.numpy_post) gives the PyTorch path's boxes, scores and points."""

import numpy as np
import pytest
import torch

from iznet.detect.letterbox import letterbox, letterbox_array
from iznet.detect.numpy_post import box_iou, decode_raw, detect_arrays, fuse_passes, nms
from iznet.detect.settings import PostprocessConfig, TTAConfig, tta_config
from iznet.detect.tta import detect_images


def brute_nms(boxes, scores, thr):
    """Greedy NMS written the slow way: repeatedly take the best remaining box, drop what overlaps it."""
    left = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    while left:
        i = left.pop(0)
        keep.append(i)
        left = [j for j in left if box_iou(boxes[[i]], boxes[[j]])[0, 0] <= thr]
    return keep


def test_nms_matches_a_loop_including_ties():
    rng = np.random.default_rng(0)
    for _ in range(30):
        xy = rng.uniform(0, 80, (25, 2)).astype(np.float32)
        wh = rng.uniform(5, 40, (25, 2)).astype(np.float32)
        boxes = np.concatenate([xy, xy + wh], 1)
        scores = rng.choice([0.2, 0.5, 0.5, 0.9], 25).astype(np.float32)  # ties: the earlier box wins
        assert nms(boxes, scores, 0.4).tolist() == brute_nms(boxes, scores, 0.4)
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.4).tolist() == []


def test_decode_matches_the_torch_decoding():
    from iznet.detect.landmarks import landmark_points
    from iznet.detect.loss import activate
    from iznet.detect.targets import decode

    raw = torch.randn(2, 5, 5, 2, 15) * 3
    boxes, scores, points = decode_raw(raw.numpy(), 160)
    tb, ts = decode(activate(raw), 160)
    np.testing.assert_allclose(boxes, tb.numpy(), atol=1e-4)
    np.testing.assert_allclose(scores, ts.numpy(), atol=1e-6)
    np.testing.assert_allclose(points, landmark_points(raw, tb).numpy(), atol=1e-3)
    assert decode_raw(raw[..., :5].numpy(), 160)[2] is None


def test_letterbox_without_torch_gives_pytorchs_pixels():
    rng = np.random.default_rng(1)
    for h, w, side in [(120, 200, 64), (300, 90, 128), (50, 50, 96), (33, 71, 160), (64, 64, 64)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # shrink, enlarge, keep
        ref, lb_ref = letterbox(img, side)
        got, lb = letterbox_array(img, side)
        assert lb == lb_ref and got.shape == (side, side, 3)
        diff = np.abs(got.astype(int) - ref.permute(1, 2, 0).numpy().astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # rounding ties of float sums only


def test_a_large_picture_goes_through_pillow_within_a_grey_level(monkeypatch):
    import iznet.detect.letterbox as lb_module

    monkeypatch.setattr(lb_module, "EXACT_MAX_PIXELS", 1000)  # the same path as a 12-megapixel photo
    img = np.random.default_rng(2).integers(0, 256, (90, 140, 3), dtype=np.uint8)
    ref, _ = letterbox(img, 64)
    got, _ = letterbox_array(img, 64)
    assert np.abs(got.astype(int) - ref.permute(1, 2, 0).numpy().astype(int)).max() <= 1


def test_fusion_of_passes_keeps_its_contract():
    # two passes seeing one face, one pass also seeing a weak second face
    a = (np.array([[10, 10, 50, 50], [100, 100, 130, 130]], np.float32), np.array([0.9, 0.2], np.float32))
    b = (np.array([[12, 12, 52, 52]], np.float32), np.array([0.7], np.float32))
    boxes, scores, points = fuse_passes([a, b], PostprocessConfig(), TTAConfig())
    assert points is None and len(boxes) == 1  # the weak face keeps 0.2 / 2 = 0.1 < 0.3
    np.testing.assert_allclose(boxes[0], (0.9 * np.array([10, 10, 50, 50]) + 0.7 * np.array([12, 12, 52, 52]))
                               / 1.6, rtol=1e-5)
    np.testing.assert_allclose(scores, [0.8], rtol=1e-6)


@pytest.fixture(scope="module")
def bundled():
    """The bundled detector (it has landmarks) and the demo photo, plus a crop of it (another aspect ratio)."""
    from iznet.data.images import load_image
    from iznet.detect.detector import YoloFaceDetector
    from iznet.utils.assets import default_detector_spec, demo_assets

    det = YoloFaceDetector.from_checkpoint(default_detector_spec())
    photo = load_image(demo_assets().photo)
    return det, [photo, np.ascontiguousarray(photo[40:300, 100:330])]


@pytest.mark.parametrize("mode", ["off", "flip", "full"])
def test_the_bundled_detector_gives_the_same_faces_on_both_paths(bundled, mode):
    det, images = bundled

    def forward(x):
        with torch.no_grad():
            return det.model(x)

    # at 0.2 no face of these pictures sits near the threshold (the network sees the numpy letterbox here:
    # a few pixels may differ by a grey level from PyTorch's)
    config = PostprocessConfig(conf_threshold=0.2)
    ref = detect_images(forward, images, det.model.image_size, config, tta_config(mode))
    got = detect_arrays(lambda x: forward(torch.from_numpy(x)).numpy(), images, det.model.image_size, config,
                        tta_config(mode))
    assert [len(r) for r in ref] == [len(g) for g in got] and len(ref[0]) >= 6
    for r, g in zip(ref, got):
        assert g.image_size == r.image_size
        np.testing.assert_allclose(g.xyxy, r.xyxy.numpy(), atol=0.5)
        np.testing.assert_allclose(g.scores, r.scores.numpy(), atol=5e-3)
        np.testing.assert_allclose(g.landmarks, r.landmarks.numpy(), atol=0.5)
