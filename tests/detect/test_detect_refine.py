"""The landmark refiner: crop geometry, simulated coarse points, mirrored samples, an overfit, the detector hook."""

import numpy as np
import pytest
import torch

from iznet.detect.landmarks import interocular_nme
from iznet.detect.refine import (REFINE_SIZE, REFINE_TEMPLATE, LandmarkRefiner, RefinerTrainConfig, crop_transform,
                                 perturb, refine_points, train_refiner, training_sample)

FACE = np.array([[40.0, 50], [70, 49], [56, 66], [44, 80], [68, 79]])


def marked_image(points: np.ndarray, shape=(140, 150), r: int = 3) -> np.ndarray:
    img = np.full((*shape, 3), 60, np.uint8)
    for k, (x, y) in enumerate(points):
        img[int(round(y)) - r:int(round(y)) + r + 1, int(round(x)) - r:int(round(x)) + r + 1] = 40 * (k + 2)
    return img


def test_crop_transform_puts_the_points_on_the_template():
    a = np.deg2rad(20)
    r = 1.7 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = REFINE_TEMPLATE @ r.T + np.array([30.0, -12])
    m = crop_transform(pts)
    np.testing.assert_allclose(pts @ m[:, :2].T + m[:, 2], REFINE_TEMPLATE, atol=1e-6)


def test_perturbation_is_a_bounded_similarity_plus_noise():
    rng = np.random.default_rng(0)
    cfg = RefinerTrainConfig(point_noise=0.0)
    iod = np.linalg.norm(FACE[0] - FACE[1])
    for _ in range(50):
        p = perturb(FACE, rng, cfg)
        d = np.linalg.norm(p[0] - p[1]) / iod
        assert 1 - cfg.scale - 1e-9 <= d <= 1 + cfg.scale + 1e-9
        assert np.linalg.norm(p.mean(0) - FACE.mean(0)) <= np.sqrt(2) * cfg.shift * iod + 1e-9


def test_warp_crop_cuts_only_what_it_needs_and_matches_a_full_warp():
    import cv2

    from iznet.detect.refine import warp_crop

    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 2.0)
    for pts in (FACE * 0.4 + [150, 100], FACE * 0.3 + [330, 240], FACE * 0.4 - [20, 20], FACE * 3):
        m = crop_transform(pts)
        scale = float(np.hypot(m[0, 0], m[1, 0]))
        src, mm = img, m.copy()
        if scale < 0.5:  # the reference: the whole image area-averaged, then warped
            f = 1.0 / scale / 1.5
            src = cv2.resize(img, (round(400 / f), round(300 / f)), interpolation=cv2.INTER_AREA)
            mm[:, :2] *= f
        full = cv2.warpAffine(src, mm, (REFINE_SIZE, REFINE_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        diff = np.abs(warp_crop(img, m).astype(int) - full.astype(int))
        assert (diff.max() <= 1) if scale >= 0.5 else (diff.mean() < 2.0), (scale, diff.max(), diff.mean())


def test_training_samples_show_each_marker_at_its_target_also_mirrored():
    small = np.round((FACE - FACE.mean(0)) * 0.45 + FACE.mean(0))  # about the crop's scale: markers stay sharp
    cfg = RefinerTrainConfig(rot_deg=10, point_noise=0.02)
    flips = 0
    for seed in range(12):
        centres = []
        for k in range(5):  # one marker per image, the same random sample each time
            img = np.zeros((140, 150, 3), np.uint8)
            x, y = np.round(small[k]).astype(int)
            img[y - 1:y + 2, x - 1:x + 2] = 255
            crop, target = training_sample(img, small, np.random.default_rng(seed), cfg)
            w = crop[..., 0].astype(float)
            ys, xs = np.mgrid[0:crop.shape[0], 0:crop.shape[1]]
            centres.append(((w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()))  # pixel centres at integers
        pts = target.reshape(5, 2) * REFINE_SIZE
        centres = np.array(centres)
        order = [int(np.argmin(np.linalg.norm(centres - p, axis=1))) for p in pts]
        assert max(np.linalg.norm(centres[o] - p) for o, p in zip(order, pts)) < 0.3
        flips += order == [1, 0, 2, 4, 3]
        assert order in ([0, 1, 2, 3, 4], [1, 0, 2, 4, 3])
    assert 0 < flips < 12


def test_an_untrained_refiner_returns_about_its_input():
    torch.manual_seed(0)
    net = LandmarkRefiner().eval()
    out = refine_points(net, marked_image(FACE), FACE[None], iters=1)
    assert float(interocular_nme(torch.from_numpy(out), torch.from_numpy(FACE[None]))) < 0.1
    assert refine_points(net, marked_image(FACE), np.zeros((0, 5, 2))).shape == (0, 5, 2)


def test_training_learns_marked_points_and_the_detector_applies_it(tmp_path):
    from PIL import Image

    from iznet.detect.landmark_train import LandmarkLabels

    rng = np.random.default_rng(2)
    paths, points = [], []
    for i in range(6):
        pts = FACE * rng.uniform(0.8, 1.2) + rng.uniform(-10, 10, 2)
        p = tmp_path / f"f{i}.png"
        Image.fromarray(marked_image(pts)).save(p)
        paths.append(str(p))
        points.append(pts[None].astype(np.float32))
    labels = LandmarkLabels(paths, [np.zeros((1, 4), np.float32)] * 6, points, ["train"] * 6)
    cfg = RefinerTrainConfig(steps=400, batch=16, lr=1e-3, checkpoint_every=200, rot_deg=5, scale=0.05,
                             shift=0.08, point_noise=0.04)
    net = train_refiner(labels, tmp_path / "run", cfg)
    g = np.random.default_rng(7)
    coarse = [perturb(p[0].astype(np.float64), g, cfg) for p in points]
    before = np.mean([float(interocular_nme(torch.from_numpy(c[None]), torch.from_numpy(p.astype(np.float64))))
                      for c, p in zip(coarse, points)])
    after = np.mean([float(interocular_nme(torch.from_numpy(refine_points(net, np.asarray(Image.open(pa)), c[None])),
                                           torch.from_numpy(p.astype(np.float64))))
                     for pa, c, p in zip(paths, coarse, points)])
    assert after < 0.5 * before  # an untrained refiner returns about its input (see above): this is learning
    assert (tmp_path / "run" / "refiner.pt").exists()

    # the detector runs it after detection
    from iznet.detect.detector import YoloFaceDetector
    from iznet.detect.model import create_detector
    from iznet.detect.results import Detections

    model = create_detector("light", image_size=64, landmarks=True, refiner=True)
    model.landmark_refiner.load_state_dict(net.state_dict())
    det = YoloFaceDetector(model, tta="off")
    coarse_dets = Detections(torch.tensor([[0.0, 0, 100, 100]]), torch.tensor([0.9]), (150, 140),
                             torch.from_numpy(coarse[0][None]).float())
    from iznet.detect.detector import refine_detections

    img = np.asarray(Image.open(paths[0]))
    refined = refine_detections(model.landmark_refiner, [img], [coarse_dets])[0]
    want = refine_points(net, img, coarse[0][None])
    np.testing.assert_allclose(refined.landmarks.numpy(), want, atol=1e-3)
    assert len(det.detect(img).xyxy.shape) == 2
    with pytest.raises(Exception, match="needs the landmark branch"):
        create_detector("light", image_size=64, refiner=True)


def test_face_patches_give_the_same_crops_as_the_photo():
    from iznet.detect.refine import face_patch, warp_crop

    rng = np.random.default_rng(5)
    import cv2

    img = cv2.GaussianBlur(rng.integers(0, 256, (200, 220, 3), dtype=np.uint8), (0, 0), 3.0)
    for pts in (FACE * 0.5 + [60, 50], FACE * 1.6 - [20, 30], FACE - [38, 45]):  # small, large, at the border
        patch, ppts = face_patch(img, pts)
        m_img, m_patch = crop_transform(pts), crop_transform(ppts)
        a, b = warp_crop(img, m_img).astype(float), warp_crop(patch, m_patch).astype(float)
        assert np.abs(a - b).mean() < 4.0
