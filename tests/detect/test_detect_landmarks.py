"""Detector landmarks: encoding, mirror, loss, fusion, decoding through test-time augmentation, training."""

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from iznet.detect.detector import YoloFaceDetector, save_detector
from iznet.detect.landmark_train import (LandmarkLabels, LandmarkTrainConfig, detector_from_checkpoint_partial,
                                         evaluate_landmarks, match_predictors, place_sample, random_placement,
                                         train_landmark_head)
from iznet.detect.landmarks import (FLIP_ORDER, LandmarkLoss, decode_landmarks, encode_landmarks,
                                    flip_landmarks, interocular_nme)
from iznet.detect.model import create_detector
from iznet.detect.postprocess import PostprocessConfig, postprocess
from iznet.detect.results import Detections
from iznet.detect.tta import TTAConfig, detect_images, fuse_passes, fuse_passes_with_points, tta_config
from iznet.utils.checkpoint import load_checkpoint

TRAINED = 64


def test_encoding_round_trips_and_is_relative_to_the_box():
    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(7, 2, generator=g) * 100
    boxes = torch.cat([boxes, boxes + 10 + torch.rand(7, 2, generator=g) * 50], 1)
    pts = boxes[:, None, :2] + torch.rand(7, 5, 2, generator=g) * (boxes[:, None, 2:] - boxes[:, None, :2])
    uv = encode_landmarks(pts, boxes)
    assert uv.shape == (7, 10)
    assert decode_landmarks(uv, boxes) == pytest.approx(pts, abs=1e-4)
    # the box centre is (0, 0) and the right edge u = 0.5
    centre = ((boxes[:, :2] + boxes[:, 2:]) / 2)[:, None].expand(-1, 5, -1)
    assert encode_landmarks(centre, boxes).abs().max() < 1e-5
    edge = torch.stack([boxes[:, 2], (boxes[:, 1] + boxes[:, 3]) / 2], 1)[:, None].expand(-1, 5, -1)
    assert encode_landmarks(edge, boxes)[:, 0::2] == pytest.approx(torch.full((7, 5), 0.5), abs=1e-5)


def test_mirror_swaps_left_and_right_and_is_an_involution():
    pts = torch.tensor([[[10.0, 20], [30, 21], [22, 30], [12, 40], [28, 41]]])
    m = flip_landmarks(pts, 100.0)
    # the eye on the image's left of the mirrored picture is the mirror of the original right eye
    assert m[0, 0].tolist() == [70.0, 21.0] and m[0, 1].tolist() == [90.0, 20.0]
    assert m[0, 2].tolist() == [78.0, 30.0]
    assert m[0, 3].tolist() == [72.0, 41.0] and m[0, 4].tolist() == [88.0, 40.0]
    assert flip_landmarks(m, 100.0) == pytest.approx(pts)
    assert sorted(FLIP_ORDER) == list(range(5))


def test_loss_matches_a_loop_and_passes_gradcheck():
    g = torch.Generator().manual_seed(1)
    uv = torch.randn(3, 8, 10, generator=g, dtype=torch.float64) * 0.05
    target = torch.randn(3, 8, 10, generator=g, dtype=torch.float64) * 0.05
    mask = torch.rand(3, 8, generator=g) < 0.4
    loss = LandmarkLoss(weight=2.0, beta=0.02)
    want = 0.0
    for n in range(3):
        for m in range(8):
            if mask[n, m]:
                for k in range(10):
                    d = abs(float(uv[n, m, k] - target[n, m, k]))
                    want += 0.5 * d * d / 0.02 if d < 0.02 else d - 0.01
    assert float(loss(uv, target, mask)) == pytest.approx(2.0 * want / 3)
    uv.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda u: loss(u, target, mask), (uv,))
    with pytest.raises(ValueError, match="must be"):
        loss(uv[..., :8], target[..., :8], mask)


def test_interocular_nme_by_hand():
    truth = torch.tensor([[[0.0, 0], [10, 0], [5, 5], [2, 8], [8, 8]]])
    pred = truth.clone()
    pred[0, 2] += torch.tensor([3.0, 4.0])  # one point 5 px off: mean 1 px, IOD 10
    assert interocular_nme(pred, truth).tolist() == pytest.approx([0.1])


def test_detections_carry_and_check_landmarks():
    pts = torch.arange(20, dtype=torch.float32).reshape(2, 5, 2)
    d = Detections(torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20]]), torch.tensor([0.9, 0.5]), (30, 30), pts)
    js = d.to_json()
    assert js[1]["landmarks"][0] == [10.0, 11.0] and len(js[0]["landmarks"]) == 5
    assert d.subset([1]).landmarks.tolist() == pts[1:].tolist()
    assert "landmarks" not in Detections(d.xyxy, d.scores).to_json()[0]
    with pytest.raises(ValueError, match="landmark sets"):
        Detections(d.xyxy, d.scores, None, pts[:1])


def brute_match(pred_boxes, scores, face_boxes, match_iou, min_score):
    iou = box_iou(face_boxes, pred_boxes)
    chosen = {}
    for m in range(len(pred_boxes)):
        k = int(iou[:, m].argmax())
        if iou[k, m] >= match_iou and scores[m] >= min_score:
            chosen[m] = k
    for k in range(len(face_boxes)):
        best, val = None, -1.0
        for m in range(len(pred_boxes)):
            v = float(iou[k, m] * scores[m])
            if v > val:
                best, val = m, v
        if iou[k, best] >= match_iou:
            chosen[best] = k
    return chosen


@pytest.mark.parametrize("seed", range(4))
def test_predictor_matching_matches_loops(seed):
    g = torch.Generator().manual_seed(seed)
    faces = torch.rand(3, 2, generator=g) * 80
    faces = torch.cat([faces, faces + 20], 1)
    jitter = faces.repeat(6, 1) + torch.randn(18, 4, generator=g) * 4
    preds = torch.cat([jitter, torch.rand(10, 4, generator=g).sort(-1).values[:, [0, 1, 2, 3]] * 100])
    scores = torch.rand(len(preds), generator=g)
    pi, fi = match_predictors(preds, scores, faces, 0.45, 0.3)
    assert dict(zip(pi.tolist(), fi.tolist())) == brute_match(preds, scores, faces, 0.45, 0.3)
    empty = match_predictors(preds, scores, torch.zeros(0, 4))
    assert len(empty[0]) == 0


def test_placement_moves_points_with_the_pixels_and_mirrors_them():
    rng = np.random.default_rng(0)
    img = np.zeros((90, 120, 3), np.uint8)
    pts = np.array([[[30.0, 40], [60, 41], [45, 55], [35, 70], [58, 69]]], np.float32)
    for k, (x, y) in enumerate(pts[0]):
        img[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 50 * (k + 1)
    boxes = np.array([[20.0, 25, 70, 80]], np.float32)
    for flip in (False, True):
        aff = random_placement(120, 90, boxes, 128, rng, p_letterbox=0.0, face_frac=(0.5, 0.9))
        out, b, p = place_sample(img, boxes, pts, aff, 128, flip)
        order = list(FLIP_ORDER) if flip else list(range(5))
        for k in range(5):  # the marker of original point order[k] sits where point k went
            x, y = np.round(p[0, k]).astype(int)
            if 2 <= x < 126 and 2 <= y < 126:
                patch = out[y - 2:y + 3, x - 2:x + 3, 0].astype(int)
                assert abs(patch.max() - 50 * (order[k] + 1)) <= 30
        assert b.shape == (1, 4) and (b[:, 2:] > b[:, :2]).all()
    aff = random_placement(120, 90, boxes, 128, rng, p_letterbox=1.0)
    assert aff[0, 0] == pytest.approx(128 / 120) and aff[1, 2] == pytest.approx((128 - 90 * 128 / 120) / 2)


# --------------------------------------------------------------------------- decoding through TTA

COLOURS = {"eye": (255, 0, 0), "nose": (0, 255, 0), "mouth": (0, 0, 255)}


def marked_face(img: np.ndarray, x1: int, y1: int, side: int) -> np.ndarray:
    """A white square face with coloured markers: eyes red, nose green (off to the right), mouth blue.
    Returns the true points (5, 2) in the image's pixels (marker centres)."""
    img[y1:y1 + side, x1:x1 + side] = 255
    rel = [(0.28, 0.32), (0.72, 0.32), (0.62, 0.55), (0.3, 0.78), (0.7, 0.78)]
    kinds = ["eye", "eye", "nose", "mouth", "mouth"]
    r = max(2, side // 14)
    pts = []
    for (u, v), k in zip(rel, kinds):
        cx, cy = x1 + u * side, y1 + v * side
        img[int(cy) - r:int(cy) + r, int(cx) - r:int(cx) + r] = COLOURS[k]
        pts.append((int(cx), int(cy)))
    return np.array(pts, np.float32)


def marker_centroids(x: torch.Tensor, kind: str) -> list[torch.Tensor]:
    r, g, b = x[0], x[1], x[2]
    masks = {"eye": (r > 0.6) & (g < 0.4) & (b < 0.4), "nose": (g > 0.6) & (r < 0.4) & (b < 0.4),
             "mouth": (b > 0.6) & (r < 0.4) & (g < 0.4)}
    ys, xs = torch.nonzero(masks[kind], as_tuple=True)
    pts = torch.stack([xs.float() + 0.5, ys.float() + 0.5], 1)
    if kind == "nose":
        return [pts.mean(0)]
    split = pts[:, 0] < pts[:, 0].mean()  # two markers: image-left first
    return [pts[split].mean(0), pts[~split].mean(0)]


def landmark_finder(x: torch.Tensor) -> torch.Tensor:
    """A stand-in 15-channel network: the white square as a box (like the TTA tests' square finder) and the
    markers as landmarks encoded on that box, read from the pixels (so a mirrored input mirrors them)."""
    n, _, side, _ = x.shape
    grid = side // 32
    raw = torch.full((n, grid, grid, 2, 15), -12.0)
    for i in range(n):
        ys, xs = torch.nonzero(x[i].min(0).values > 0.9, as_tuple=True)
        ys2, xs2 = torch.nonzero(x[i].max(0).values > 0.9, as_tuple=True)  # face pixels incl. markers
        x1, x2, y1, y2 = xs2.min().item(), xs2.max().item() + 1, ys2.min().item(), ys2.max().item() + 1
        cx, cy = (x1 + x2) / 2 / 32, (y1 + y2) / 2 / 32
        c, r = int(cx), int(cy)
        off = torch.tensor([cx - c, cy - r]).clamp(1e-4, 1 - 1e-4)
        raw[i, r, c, 0, 0] = 4.0
        raw[i, r, c, 0, 1:3] = torch.log(off / (1 - off))
        raw[i, r, c, 0, 3] = ((x2 - x1) / TRAINED) ** 0.5
        raw[i, r, c, 0, 4] = ((y2 - y1) / TRAINED) ** 0.5
        eyes, nose, mouth = marker_centroids(x[i], "eye"), marker_centroids(x[i], "nose"), marker_centroids(x[i], "mouth")
        pts = torch.stack(eyes + nose + mouth)[None]
        raw[i, r, c, 0, 5:] = encode_landmarks(pts, torch.tensor([[x1, y1, x2, y2]], dtype=torch.float32))[0]
    return raw


@pytest.mark.parametrize("mode", ["off", "flip", "full"])
def test_landmarks_map_back_to_the_original_pixels_through_every_pass(mode):
    img = np.zeros((160, 260, 3), np.uint8)
    truth = marked_face(img, 150, 40, 84)
    dets = detect_images(landmark_finder, [img], TRAINED, PostprocessConfig(), tta_config(mode))[0]
    assert len(dets) == 1 and dets.landmarks is not None
    got = dets.landmarks[0]
    # nose to the right of the eyes' midpoint: a mirror pass that forgot to flip back, or to swap left
    # and right, would put it on the left or swap the eyes
    assert got[0, 0] < got[1, 0] and got[3, 0] < got[4, 0] and got[2, 0] > (got[0, 0] + got[1, 0]) / 2
    assert got.numpy() == pytest.approx(truth, abs=5.0)


def brute_fuse_points(passes, config, tta):
    cand = [(b, float(s), p, i) for i, (bs, ss, ps) in enumerate(passes) for b, s, p in zip(bs, ss, ps)
            if float(s) >= min(tta.candidate_threshold, config.conf_threshold)]
    cand.sort(key=lambda c: -c[1])
    iou = lambda a, b: box_iou(a[None], b[None]).item()  # noqa: E731
    kept = []
    for c in cand:
        if all(iou(c[0], k[0]) <= config.iou_threshold for k in kept):
            kept.append(c)
    out = []
    for k in kept:
        voters = [c for c in cand if iou(k[0], c[0]) >= tta.vote_iou]
        w = sum(c[1] for c in voters)
        out.append(sum(c[2] * c[1] for c in voters) / w)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_fused_points_are_the_voted_means(seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[50.0, 50], [150, 50], [50, 150], [150, 150]]) + torch.rand(4, 2, generator=g) * 20
    passes = []
    for _ in range(2):
        c = centres + torch.randn(4, 2, generator=g) * 3
        boxes = torch.cat([c - 20, c + 20], 1)
        pts = c[:, None] + torch.randn(4, 5, 2, generator=g) * 5
        passes.append((boxes, torch.rand(4, generator=g) * 0.5 + 0.5, pts))
    config, tta = PostprocessConfig(conf_threshold=0.1, max_detections=20), TTAConfig(candidate_threshold=0.05)
    b, s, p = fuse_passes_with_points(passes, config, tta)
    want = brute_fuse_points(passes, config, tta)
    assert len(p) == len(want) == 4
    # fused boxes follow fused points: order by matching box centres
    for i in range(len(b)):
        centre = (b[i, :2] + b[i, 2:]) / 2
        j = min(range(len(want)), key=lambda j: float((want[j].mean(0) - centre).norm()))
        assert p[i] == pytest.approx(want[j], abs=1e-4)
    assert fuse_passes([x[:2] for x in passes], config, tta)[0] == pytest.approx(b)
    assert fuse_passes_with_points([x[:2] for x in passes], config, tta)[2] is None


def test_single_pass_postprocess_carries_landmarks():
    img = np.zeros((160, 260, 3), np.uint8)
    truth = marked_face(img, 40, 50, 70)
    from iznet.detect.tta import _letterboxed

    x, lbs = _letterboxed([img], TRAINED)
    dets = postprocess(landmark_finder(x), TRAINED, PostprocessConfig(), lbs)[0]
    assert dets.landmarks.numpy()[0] == pytest.approx(truth, abs=5.0)
    assert postprocess(landmark_finder(x)[..., :5], TRAINED, PostprocessConfig(), lbs)[0].landmarks is None


# --------------------------------------------------------------------------- the network and its training


def test_landmark_branch_leaves_the_boxes_alone():
    torch.manual_seed(0)
    plain = create_detector("light", image_size=64).eval()
    with_lm = create_detector("light", image_size=64, landmarks=True).eval()
    missing, unexpected = with_lm.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("landmark_branch.") for k in missing)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out, want = with_lm(x), plain(x)
    assert out.shape == (2, 2, 2, 2, 15) and with_lm.channels == 15
    assert torch.allclose(out[..., :5], want, atol=1e-6)


def test_training_the_branch_overfits_a_few_faces_and_keeps_the_boxes(tmp_path):
    """Labels: the base detector's own boxes on synthetic photos, with points at fixed places in each box.
    A short run must learn them (far below the untrained error) and leave every box weight untouched."""
    from PIL import Image

    from iznet.data.images import load_image
    from iznet.detect.landmarks import landmark_points
    from iznet.detect.letterbox import letterbox
    from iznet.detect.loss import activate
    from iznet.detect.targets import decode

    torch.manual_seed(0)
    base = create_detector("light", image_size=64)
    with torch.no_grad():  # face-sized boxes (half the input), so the offsets are of order one
        base.pred.bias.view(2, 5)[:, 3:] = 0.7
        base.train()  # batch-norm statistics of random images, so that the frozen features are not degenerate
        for _ in range(10):
            base(torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(_)))
        base.eval()
    save_detector(tmp_path / "base.pt", base, "light", {"image_size": 64},
                  {"landmarks_stale": "a box run from a detector with landmarks"})
    g = torch.Generator().manual_seed(3)
    rel = torch.tensor([[-0.2, -0.15], [0.2, -0.15], [0.05, 0.05], [-0.15, 0.25], [0.15, 0.25]])
    paths, boxes, points = [], [], []
    for i in range(3):
        img = (torch.rand(3, 80, 80, generator=g) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
        p = tmp_path / f"p{i}.png"
        Image.fromarray(img).save(p)
        b = np.array([[20.0 + 5 * i, 15, 60, 60 - 3 * i]], np.float32)
        c, s = (b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]
        paths.append(str(p))
        boxes.append(b)
        points.append((c[:, None] + rel.numpy()[None] * s[:, None]).astype(np.float32))
    labels = LandmarkLabels(paths, boxes, points, ["train"] * 3)
    cfg = LandmarkTrainConfig(steps=60, batch=4, lr=1e-2, match_iou=0.0, min_score=0.0, p_letterbox=1.0,
                              checkpoint_every=30)
    out = train_landmark_head(tmp_path / "base.pt", labels, tmp_path / "run", cfg)
    ck = load_checkpoint(out, kind="detector")
    assert ck["model_kwargs"]["landmarks"] is True and "landmarks" in ck["meta"]
    assert "landmarks_stale" not in ck["meta"]  # retrained: the mark of a box run goes
    for k, v in base.state_dict().items():
        assert torch.equal(ck["state_dict"][k], v), k
    model = detector_from_checkpoint_partial(ck).eval()
    base_ck = load_checkpoint(tmp_path / "base.pt")
    base_ck["model_kwargs"]["landmarks"] = True
    untrained = detector_from_checkpoint_partial(base_ck).eval()

    def err(m):
        """Mean NME over every predictor of the letterboxed (unmirrored) photos, against the labels."""
        total = []
        for path, b, p in zip(paths, boxes, points):
            x = letterbox(load_image(path), 64)[0].float()[None] / 255
            with torch.no_grad():
                raw = m(x)
            pb, ps = decode(activate(raw), 64)
            scale = 64 / 80
            pi, fi = match_predictors(pb[0], ps[0], torch.from_numpy(b) * scale, 0.0, 0.0)
            pts = landmark_points(raw, pb)[0][pi]
            total.append(float(interocular_nme(pts, torch.from_numpy(p * scale)[fi]).mean()))
        return float(np.mean(total))

    assert err(model) < 0.35 * err(untrained)
    # resume: the last checkpoint is at the final step, so a rerun only rewrites the model
    again = train_landmark_head(tmp_path / "base.pt", labels, tmp_path / "run", cfg)
    assert torch.equal(load_checkpoint(again)["state_dict"]["landmark_branch.4.weight"],
                       ck["state_dict"]["landmark_branch.4.weight"])


def test_evaluation_counts_teacher_faces_and_matches(tmp_path):
    from PIL import Image

    img = np.zeros((160, 260, 3), np.uint8)
    truth = marked_face(img, 150, 40, 84)
    Image.fromarray(img).save(tmp_path / "a.png")

    class Finder:
        def detect(self, image):
            return detect_images(landmark_finder, [image], TRAINED, PostprocessConfig(), tta_config("flip"))[0]

    labels = LandmarkLabels([str(tmp_path / "a.png")], [np.array([[150.0, 40, 234, 124]], np.float32)],
                            [truth[None]], ["test"])
    res = evaluate_landmarks(Finder(), labels)
    assert res["faces"] == 1 and res["matched"] == 1 and res["nme_mean"] < 0.1
    labels.boxes[0] = np.array([[0.0, 0, 20, 20]], np.float32)  # the teacher's face elsewhere: no match
    assert evaluate_landmarks(Finder(), labels)["matched"] == 0


def test_labels_round_trip_and_refuse_other_files(tmp_path):
    labels = LandmarkLabels(["a.jpg", "b.jpg"], [np.zeros((2, 4), np.float32), np.ones((1, 4), np.float32)],
                            [np.zeros((2, 5, 2), np.float32), np.ones((1, 5, 2), np.float32)], ["train", "test"],
                            {"teacher": "t"})
    back = LandmarkLabels.load(labels.save(tmp_path / "l.npz"))
    assert back.paths == labels.paths and back.split == labels.split and back.meta == {"teacher": "t"}
    assert [b.shape for b in back.boxes] == [(2, 4), (1, 4)] and back.points[1].tolist() == labels.points[1].tolist()
    assert len(back.select("test")) == 1 and back.faces() == 3
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    from iznet.errors import DataError

    with pytest.raises(DataError, match="not an iznet landmark label file"):
        LandmarkLabels.load(tmp_path / "x.npz")
    with pytest.raises(DataError, match="do not exist"):
        LandmarkLabels.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("per_face", [True, False])
def test_image_sampler_draws_in_proportion_to_faces_chi_square(per_face):
    from scipy.stats import chisquare

    from iznet.detect.landmark_train import image_sampler

    boxes = [np.zeros((k, 4)) for k in (1, 4, 2, 8, 1)]
    draw = image_sampler(boxes, per_face)
    rng = np.random.default_rng(0)
    counts = np.bincount([draw(rng) for _ in range(16000)], minlength=5)
    w = np.array([1, 4, 2, 8, 1.0]) if per_face else np.ones(5)
    assert chisquare(counts, w / w.sum() * counts.sum()).pvalue > 0.001
