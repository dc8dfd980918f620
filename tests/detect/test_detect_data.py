import numpy as np
import pytest
import torch
from PIL import Image

from iznet.detect.boxes import (BoxLabels, BoxMapping, match_teacher, read_boxes_csv, reconcile_dataset,
                                write_boxes_csv)
from iznet.detect.data import (DetectionCollate, DetectionTrainSet, augment, background_region, clip_boxes,
                               composite_eval_set, compose, photo_eval_set, train_transforms)
from iznet.detect.pack import build_pack, load_pack, split_names
from iznet.errors import DataError

from detect_helpers import synthetic_image


def test_csv_round_trip_with_empty_image(tmp_path):
    labels = {"a.jpg": BoxLabels(np.array([[1, 2, 11, 22], [5, 5, 9, 9]], np.float32), np.array([0.9, 0.5], np.float32)),
              "empty.jpg": BoxLabels(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))}
    write_boxes_csv(tmp_path / "b.csv", labels)
    back = read_boxes_csv(tmp_path / "b.csv")
    assert list(back) == ["a.jpg", "empty.jpg"]
    assert np.allclose(back["a.jpg"].boxes, labels["a.jpg"].boxes) and np.allclose(back["a.jpg"].scores, [0.9, 0.5])
    assert back["empty.jpg"].boxes.shape == (0, 4)


def test_csv_errors_name_the_file(tmp_path):
    (tmp_path / "bad.csv").write_text("image,x,y,w,h\na.jpg,1,2,oops,4\n")
    with pytest.raises(DataError, match="bad.csv, line 2"):
        read_boxes_csv(tmp_path / "bad.csv")
    (tmp_path / "cols.csv").write_text("image,x,y\n")
    with pytest.raises(DataError, match="lacks the column"):
        read_boxes_csv(tmp_path / "cols.csv")
    with pytest.raises(DataError, match="does not exist"):
        read_boxes_csv(tmp_path / "none.csv")


def test_mapping_fit_and_apply():
    loose = np.array([[0, 0, 100, 100], [50, 50, 90, 110]], np.float32)
    rule = BoxMapping(dx=0.0, dy=0.1, sw=0.6, sh=0.8)
    tight = rule.apply(loose)
    assert tight[0].tolist() == pytest.approx([20, 20, 80, 100])
    fitted = BoxMapping.fit(loose, tight)
    assert (fitted.dx, fitted.dy, fitted.sw, fitted.sh) == pytest.approx((0.0, 0.1, 0.6, 0.8), abs=1e-5)


def test_match_teacher_by_containment():
    given = np.array([[0, 0, 100, 120], [200, 0, 300, 120]], np.float32)
    teacher = np.array([[215, 30, 285, 110],   # inside the second head box
                        [20, 30, 80, 110],     # inside the first
                        [400, 0, 450, 60]],    # a face nobody labelled
                       np.float32)
    assert sorted(match_teacher(given, teacher)) == [(0, 1), (1, 0)]
    # a teacher box that is much bigger than the given box is no match
    assert match_teacher(given[:1], np.array([[0, 0, 400, 400]], np.float32)) == []


def test_reconcile_dataset_counts():
    rule = BoxMapping(0.0, 0.1, 0.6, 0.8)
    given = {f"{i}.jpg": BoxLabels(np.array([[10 * i, 0, 10 * i + 100, 120]], np.float32)) for i in range(4)}
    teacher = {n: BoxLabels(rule.apply(g.boxes), np.array([0.9], np.float32)) for n, g in given.items()}
    teacher["0.jpg"] = BoxLabels(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))  # teacher missed it
    teacher["1.jpg"] = BoxLabels(np.concatenate([teacher["1.jpg"].boxes, [[300, 300, 340, 350]]]).astype(np.float32),
                                 np.array([0.9, 0.95], np.float32))                   # and found an extra face
    rec, stats = reconcile_dataset(given, teacher)
    assert (stats.matched, stats.mapped, stats.added) == (3, 1, 1)
    assert stats.mapping["sw"] == pytest.approx(0.6) and stats.median_iou_mapped_vs_teacher == pytest.approx(1.0)
    assert np.allclose(rec["0.jpg"].boxes, rule.apply(given["0.jpg"].boxes), atol=1e-3)  # mapped by the rule
    assert len(rec["1.jpg"].boxes) == 2 and len(rec["1.jpg"].avoid) >= 3


def test_split_is_deterministic_and_sized():
    names = [f"{i:04d}.jpg" for i in range(100)]
    a, b = split_names(names, seed=0), split_names(list(reversed(names)), seed=0)
    assert a == b
    assert [list(a.values()).count(s) for s in ("train", "dev", "test")] == [70, 10, 20]
    assert split_names(names, seed=1) != a


def test_boxes_follow_flip_and_affine():
    """Paint a white box, augment, and check the transformed box still frames the white pixels."""
    img = torch.zeros(3, 96, 96, dtype=torch.uint8)
    img[:, 20:50, 30:60] = 255
    torch.manual_seed(3)
    from torchvision.transforms import v2

    affine = v2.RandomAffine(0, translate=(0.2, 0.2), scale=(0.6, 1.2), fill=0)
    for t in [v2.RandomHorizontalFlip(1.0), affine, v2.Compose([affine, v2.RandomHorizontalFlip(0.5)])]:
        for _ in range(3):
            out, boxes = augment(img, np.array([[30, 20, 60, 50]], np.float32), t)
            mask = out.float().mean(0) > 60
            ys, xs = torch.nonzero(mask, as_tuple=True)
            if len(boxes) == 0:
                continue
            x1, y1, x2, y2 = boxes[0].tolist()
            assert abs(xs.min().item() - x1) <= 2 and abs(xs.max().item() + 1 - x2) <= 2
            assert abs(ys.min().item() - y1) <= 2 and abs(ys.max().item() + 1 - y2) <= 2


def test_train_transforms_keep_boxes_inside():
    torch.manual_seed(0)
    img = torch.randint(0, 255, (3, 80, 80), dtype=torch.uint8)
    for _ in range(10):
        out, boxes = augment(img, np.array([[10, 10, 40, 46], [50, 20, 70, 44]], np.float32), train_transforms(1.0))
        assert out.shape == (3, 80, 80) and out.dtype == torch.uint8
        assert len(boxes) <= 2 and bool((boxes >= 0).all() and (boxes <= 80).all())


def test_clip_boxes_drops_mostly_hidden():
    boxes = torch.tensor([[-30.0, 0, 10, 40], [-5.0, 0, 35, 40], [10.0, 10, 12, 30]])
    out = clip_boxes(boxes, 64, 64)
    assert out.tolist() == [[0.0, 0.0, 35.0, 40.0]]


def test_compose_exact_boxes():
    g = torch.Generator().manual_seed(0)
    crop = torch.zeros(3, 40, 40, dtype=torch.uint8)
    crop[:, 10:30, 12:28] = 250  # a bright "face" whose tight box is (12, 10, 28, 30)
    bg = torch.zeros(3, 128, 128, dtype=torch.uint8)
    img, boxes = compose(bg, [(crop, np.array([12, 10, 28, 30]))] * 3, g, min_face=16, max_face_frac=0.3)
    assert 1 <= len(boxes) <= 3
    for x1, y1, x2, y2 in boxes:
        cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
        assert img[:, cy, cx].float().mean() > 150  # the face is where its box says
        assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128


def test_background_region_avoids_faces():
    g = torch.Generator().manual_seed(0)
    avoid = np.array([[40, 40, 80, 80]], np.float32)
    for _ in range(20):
        r = background_region(200, 150, avoid, g)
        if r is None:
            continue
        x1, y1, x2, y2 = r
        assert x2 <= 200 and y2 <= 150
        assert x1 >= 88 or x2 <= 32 or y1 >= 88 or y2 <= 32
    assert background_region(100, 100, np.array([[0, 0, 100, 100]]), g) is None


def _fake_sources(tmp_path):
    """faces-1750-like folder + teacher CSV + LFW-like folder, all tiny."""
    g = torch.Generator().manual_seed(0)
    faces = tmp_path / "faces"
    (faces / "images").mkdir(parents=True)
    rows, trows = ["image,x,y,w,h"], ["image,x,y,w,h,score"]
    for i in range(10):
        img, boxes = synthetic_image(120, 1, g)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(faces / "images" / f"{i:03d}.jpg")
        x1, y1, x2, y2 = boxes[0]
        rows.append(f"{i:03d}.jpg,{x1 - 5},{y1 - 10},{x2 - x1 + 10},{y2 - y1 + 14}")  # loose
        trows.append(f"{i:03d}.jpg,{x1},{y1},{x2 - x1},{y2 - y1},0.9")
    (faces / "boxes.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "teacher.csv").write_text("\n".join(trows) + "\n")
    lfw = tmp_path / "lfw" / "images"
    for i in range(8):
        (lfw / f"Person_{i}").mkdir(parents=True)
        arr = np.full((250, 250, 3), 100, np.uint8)
        arr[67:189, 78:173] = 200
        Image.fromarray(arr).save(lfw / f"Person_{i}" / f"Person_{i}_0001.jpg")
    return faces, tmp_path / "teacher.csv", tmp_path / "lfw"


def test_build_pack_and_train_set(tmp_path):
    faces, teacher, lfw = _fake_sources(tmp_path)
    path, meta = build_pack(tmp_path / "p.pt", faces, teacher, lfw, keep_splits=("train", "dev", "test"))
    assert meta["reconcile"]["matched"] == 10
    pack = load_pack(path)
    assert len(pack.photos) == 10 and len(pack.faces) == 8
    assert {p.split for p in pack.photos} == {"train", "dev", "test"}
    # the tight (teacher) boxes are what the photos carry for training
    teacher_boxes = read_boxes_csv(teacher)
    p0 = pack.photos[0]
    assert np.allclose(p0.boxes, teacher_boxes[p0.name].boxes, atol=0.2)
    ds = DetectionTrainSet(pack, 64, "train")
    img, boxes = ds[0]
    assert img.shape == (3, 64, 64) and img.dtype == torch.uint8 and boxes.shape[1] == 4
    batch = DetectionCollate(64, 2)([ds[i] for i in range(len(ds))])
    assert batch[0].shape == (len(ds), 3, 64, 64) and batch[1].shape == (len(ds), 2, 2, 2, 5)
    assert len(photo_eval_set(pack, "test")) == 2
    a = composite_eval_set(pack, "train", 3, size=64, seed=5)
    b = composite_eval_set(pack, "train", 3, size=64, seed=5)
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b))


def test_load_pack_rejects_other_files(tmp_path):
    torch.save({"format": "something"}, tmp_path / "x.pt")
    with pytest.raises(DataError, match="not a detection pack"):
        load_pack(tmp_path / "x.pt")
    with pytest.raises(DataError, match="does not exist"):
        load_pack(tmp_path / "missing.pt")


def test_pack_save_round_trip(tmp_path, tiny_pack):
    tiny_pack.save(tmp_path / "t.pt")
    back = load_pack(tmp_path / "t.pt")
    assert [p.name for p in back.photos] == [p.name for p in tiny_pack.photos]
    assert all(np.allclose(a.boxes, b.boxes) and torch.equal(a.jpeg, b.jpeg) for a, b in zip(back.photos, tiny_pack.photos))
    assert [f.split for f in back.faces] == [f.split for f in tiny_pack.faces]


def _marked_photo(w: int, h: int, boxes) -> "PackedPhoto":
    """A black photo whose face boxes are painted white (each box exactly)."""
    from torchvision.io import encode_jpeg

    from iznet.detect.pack import PackedPhoto

    img = torch.zeros(3, h, w, dtype=torch.uint8)
    for x1, y1, x2, y2 in boxes:
        img[:, y1:y2, x1:x2] = 255
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return PackedPhoto("m.jpg", "train", encode_jpeg(img, quality=100), (w, h), b, b.copy(), b.copy())


@pytest.mark.parametrize("seed", range(6))
def test_hard_negative_crop_keeps_faces_where_the_pixels_are(seed):
    from iznet.detect.data import hard_negative_crop

    faces = [(20, 30, 60, 80), (150, 40, 190, 90)]
    photo = _marked_photo(240, 160, faces)
    g = torch.Generator().manual_seed(seed)
    img, boxes = hard_negative_crop(photo, [100, 100, 120, 124], 128, g)
    assert img.shape == (3, 128, 128) and img.dtype == torch.uint8
    kept = clip_boxes(boxes, 128, 128, min_visible=0.0, min_size=1.0).numpy()
    white = img[0].numpy() > 128
    # brute force: every white pixel lies in a mapped face box, and each mapped box is white inside
    covered = np.zeros_like(white)
    for x1, y1, x2, y2 in kept:
        covered[int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1] = True
        assert white[int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1].mean() > 0.95
    grown = np.zeros_like(white)
    for x1, y1, x2, y2 in kept:
        grown[max(0, int(y1) - 2):int(y2) + 3, max(0, int(x1) - 2):int(x2) + 3] = True
    assert not (white & ~grown).any()


def test_hard_negative_crop_zooms_on_the_false_face():
    from iznet.detect.data import hard_negative_crop

    photo = _marked_photo(1000, 1000, [(0, 0, 10, 10)])
    for seed in range(20):
        img, boxes = hard_negative_crop(photo, [500, 500, 540, 540], 200, torch.Generator().manual_seed(seed))
        # the crop is 2.5-8 box sides wide, so the 40-px box is 1/8 to 1/2.5 of the 200-px input
        assert len(clip_boxes(boxes, 200, 200)) == 0  # the face in the corner is far away
    # a crop wider than the photo is the whole photo
    small = _marked_photo(60, 40, [(5, 5, 15, 15)])
    img, boxes = hard_negative_crop(small, [20, 10, 40, 30], 64, torch.Generator().manual_seed(0), zoom=(4, 8))
    from iznet.detect.letterbox import Letterbox

    lb = Letterbox.fit(60, 40, 64)
    assert np.allclose(boxes, lb.to_input(np.array([[5, 5, 15, 15]], np.float32)), atol=1e-4)


def test_train_set_with_hard_negatives(tiny_pack):
    names = [p.name for p in tiny_pack.select_photos("train")]
    ds = DetectionTrainSet(tiny_pack, 64, "train", composite_ratio=1.0,
                           hard_negatives={names[0]: [[1, 1, 9, 9], [50, 50, 60, 62]]}, hard_ratio=2.0)
    n = len(names)
    assert len(ds) == n + n + 2 * n and len(ds.hard) == 2
    img, boxes = ds[len(ds) - 1]
    assert img.shape == (3, 64, 64) and boxes.shape[1] == 4
    assert len(DetectionTrainSet(tiny_pack, 64, "train", hard_negatives={}, hard_ratio=2.0)) == 2 * n
    with pytest.raises(DataError, match="not 'train' photos"):
        DetectionTrainSet(tiny_pack, 64, "train", hard_negatives={"nope.jpg": [[1, 1, 5, 5]]}, hard_ratio=1.0)
