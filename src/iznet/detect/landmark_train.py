"""Training the landmark branch of a detector from a teacher's labels, and measuring it.

The stage runs on a trained detector: its backbone, head and box outputs stay frozen (so its boxes, scores
and AP do not change) and only the landmark branch (:mod:`iznet.detect.model`) learns. Each training
image is placed at a random scale and position in the square input (or letterboxed as in inference), and
mirrored half the time (left and right points swap). The frozen detector decodes every predictor's box;
the predictors that answer for a labelled face — box IoU with the teacher's box ≥ ``match_iou`` and
confidence ≥ ``min_score``, plus the best of them always — learn the face's points encoded on *their own*
decoded box (:func:`iznet.detect.landmarks.encode_landmarks`). So the points decode consistently from any
predictor that fuses into the face at inference, through test-time augmentation included.

Labels (:class:`LandmarkLabels`, an ``.npz``): per image its path, the teacher's face boxes and five points
each, and a split. :func:`label_images` makes them with a teacher such as YuNet (``detect_landmarks``), run
on a padded canvas so that faces touching the border are found.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from iznet.detect.detector import KIND, YoloFaceDetector, detector_from_checkpoint, save_detector
from iznet.detect.landmarks import FLIP_ORDER, LANDMARK_NAMES, LandmarkLoss, encode_landmarks, interocular_nme
from iznet.detect.letterbox import PAD_VALUE
from iznet.detect.loss import activate
from iznet.detect.ops import box_iou
from iznet.detect.targets import decode
from iznet.errors import DataError, ModelError
from iznet.utils.checkpoint import load_checkpoint, safe_load
from iznet.utils.io import atomic_path

_logger = logging.getLogger(__name__)
LABELS_FORMAT = "iznet-landmarks-v1"


@dataclass
class LandmarkLabels:
    """Teacher landmarks: per image a path, boxes (K, 4) ``x1, y1, x2, y2``, points (K, 5, 2), a split."""

    paths: list[str]
    boxes: list[np.ndarray]
    points: list[np.ndarray]
    split: list[str]
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    def select(self, split: str) -> "LandmarkLabels":
        idx = [i for i, s in enumerate(self.split) if s == split]
        return LandmarkLabels([self.paths[i] for i in idx], [self.boxes[i] for i in idx],
                              [self.points[i] for i in idx], [split] * len(idx), dict(self.meta))

    def faces(self) -> int:
        return int(sum(len(b) for b in self.boxes))

    def save(self, path: str | Path) -> Path:
        counts = np.array([len(b) for b in self.boxes], np.int64)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh, format=np.array(LABELS_FORMAT), paths=np.array(self.paths), split=np.array(self.split),
                    counts=counts, meta=np.array(json.dumps(self.meta)),
                    boxes=np.concatenate([b.reshape(-1, 4) for b in self.boxes] or [np.zeros((0, 4))]).astype(np.float32),
                    points=np.concatenate([p.reshape(-1, 5, 2) for p in self.points] or [np.zeros((0, 5, 2))]
                                          ).astype(np.float32))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "LandmarkLabels":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"landmark labels {path} do not exist; make them with scripts/landmark_labels.py")
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z.files or str(z["format"]) != LABELS_FORMAT:
                raise DataError(f"{path} is not an iznet landmark label file ({LABELS_FORMAT})")
            counts = z["counts"]
            cuts = np.concatenate([[0], np.cumsum(counts)])
            all_boxes, all_points = z["boxes"], z["points"]  # each z[...] decompresses the whole array again
            boxes = [all_boxes[a:b].copy() for a, b in zip(cuts[:-1], cuts[1:])]
            points = [all_points[a:b].copy() for a, b in zip(cuts[:-1], cuts[1:])]
            return cls([str(p) for p in z["paths"]], boxes, points, [str(s) for s in z["split"]],
                       json.loads(str(z["meta"])))


def teacher_faces(image: np.ndarray, teacher, min_score: float = 0.7, pad: float = 0.25, min_eye_px: float = 6.0,
                  max_side: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's confident faces in ``image``: boxes (K, 4) and points (K, 5, 2) in its pixels.

    The image is padded by ``pad`` of its size on every side (black) and scaled to at most ``max_side``
    pixels before the teacher sees it; faces whose eyes are under ``min_eye_px`` apart are left out.
    """
    import cv2

    h, w = image.shape[:2]
    px, py = int(round(pad * w)), int(round(pad * h))
    canvas = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    f = min(1.0, max_side / max(canvas.shape[:2]))
    if f < 1.0:
        canvas = cv2.resize(canvas, (round(canvas.shape[1] * f), round(canvas.shape[0] * f)),
                            interpolation=cv2.INTER_AREA)
    boxes, points, scores = teacher.detect_landmarks(canvas)
    boxes, points = boxes / f, points / f
    boxes[:, 0::2] -= px
    boxes[:, 1::2] -= py
    points[..., 0] -= px
    points[..., 1] -= py
    eye = np.linalg.norm(points[:, 0] - points[:, 1], axis=-1) if len(points) else np.zeros(0)
    keep = (scores >= min_score) & (eye >= min_eye_px)
    return boxes[keep].astype(np.float32), points[keep].astype(np.float32)


def label_images(paths: Sequence[str | Path], splits: Sequence[str], teacher, min_score: float = 0.7,
                 progress: Callable[[int], None] | None = None) -> tuple[LandmarkLabels, dict]:
    """Teacher labels for images; images the teacher finds no confident face in are counted, not kept."""
    from iznet.data.images import load_image

    out = LandmarkLabels([], [], [], [])
    skipped = {"unreadable": 0, "no confident face": 0}
    for p, s in zip(paths, splits):
        try:
            img = load_image(p)
        except Exception:  # noqa: BLE001 - counted and reported
            skipped["unreadable"] += 1
            continue
        boxes, points = teacher_faces(img, teacher, min_score)
        if progress:
            progress(1)
        if len(boxes) == 0:
            skipped["no confident face"] += 1
            continue
        out.paths.append(str(p))
        out.boxes.append(boxes)
        out.points.append(points)
        out.split.append(s)
    return out, skipped


# --------------------------------------------------------------------------- samples


def random_placement(width: int, height: int, boxes: np.ndarray, size: int, rng: np.random.Generator,
                     p_letterbox: float = 0.3, face_frac: tuple[float, float] = (0.04, 0.9)) -> np.ndarray:
    """A 2×3 affine (uniform scale + shift) placing an image in a ``size`` square for training.

    With probability ``p_letterbox`` it is the inference letterbox; otherwise a random face of ``boxes``
    gets a width log-uniform in ``face_frac`` of the input and the image a random shift that keeps that
    face's centre inside the input.
    """
    if len(boxes) == 0 or rng.random() < p_letterbox:
        s = size / max(width, height)
        tx, ty = (size - width * s) / 2, (size - height * s) / 2
        return np.array([[s, 0, tx], [0, s, ty]], np.float64)
    b = boxes[rng.integers(len(boxes))]
    bw = max(float(b[2] - b[0]), 1.0)
    target = math.exp(rng.uniform(math.log(face_frac[0]), math.log(face_frac[1]))) * size
    s = target / bw
    cx, cy = (b[0] + b[2]) / 2 * s, (b[1] + b[3]) / 2 * s
    ox, oy = rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size
    return np.array([[s, 0, ox - cx], [0, s, oy - cy]], np.float64)


def place_sample(image: np.ndarray, boxes: np.ndarray, points: np.ndarray, affine: np.ndarray, size: int,
                 flip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp an image and its labels with ``affine`` (and a mirror): (size, size, 3) image, boxes, points."""
    import cv2

    a = affine.copy()
    if flip:
        a = np.array([[-1, 0, size], [0, 1, 0]], np.float64) @ np.vstack([a, [0, 0, 1]])
    out = cv2.warpAffine(image, a, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(PAD_VALUE,) * 3)
    pts = points.reshape(-1, 2) @ a[:, :2].T + a[:, 2]
    pts = pts.reshape(-1, 5, 2)
    corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 3]]], 1).reshape(-1, 2) @ a[:, :2].T + a[:, 2]
    corners = corners.reshape(-1, 2, 2)
    new_boxes = np.concatenate([corners.min(1), corners.max(1)], 1)
    if flip:
        pts = pts[:, list(FLIP_ORDER)]
    return out, new_boxes.astype(np.float32), pts.astype(np.float32)


def match_predictors(pred_boxes: torch.Tensor, scores: torch.Tensor, face_boxes: torch.Tensor,
                     match_iou: float = 0.45, min_score: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Which predictors answer for which face.

    Args:
        pred_boxes: (M, 4) decoded boxes of one image's predictors; scores: (M,).
        face_boxes: (K, 4) labelled faces.

    Returns:
        ``(predictor indices (P,), face indices (P,))``: every predictor with IoU ≥ ``match_iou`` and score ≥
        ``min_score`` for a face (a predictor goes to the face it overlaps most), plus, for each face, the
        predictor maximising IoU × score when that IoU is ≥ ``match_iou`` (even below ``min_score``).
    """
    if len(face_boxes) == 0 or len(pred_boxes) == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    iou = box_iou(face_boxes.float(), pred_boxes.float())  # (K, M)
    best_iou, best_face = iou.max(0)
    ok = (best_iou >= match_iou) & (scores >= min_score)
    chosen = dict(zip(torch.nonzero(ok).reshape(-1).tolist(), best_face[ok].tolist()))
    top = (iou * scores[None]).argmax(1)
    for k, m in enumerate(top.tolist()):
        if iou[k, m] >= match_iou:
            chosen[m] = k
    pred_idx = torch.tensor(sorted(chosen), dtype=torch.long)
    return pred_idx, torch.tensor([chosen[m] for m in pred_idx.tolist()], dtype=torch.long)


# --------------------------------------------------------------------------- training


@dataclass
class LandmarkTrainConfig:
    steps: int = 1500
    batch: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    beta: float = 0.02
    match_iou: float = 0.45
    min_score: float = 0.05
    p_letterbox: float = 0.3
    seed: int = 0
    checkpoint_every: int = 100
    per_face: bool = True  # draw images in proportion to their labelled faces (group photos more often)


CACHE_BYTES = 2 << 30  # decoded training images kept in memory


def cosine_lr(opt: torch.optim.Optimizer, base: float, step: int, steps: int) -> None:
    """Set every parameter group's learning rate to ``base`` on a cosine from step 0 to ``steps``."""
    for g in opt.param_groups:
        g["lr"] = base * 0.5 * (1 + math.cos(math.pi * step / steps))


def save_run_state(path: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, step: int,
                   rng: np.random.Generator) -> None:
    """What a resumed run needs to continue exactly: weights, optimiser, step and random state."""
    torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "step": step, "rng": rng.bit_generator.state},
               path)


def load_run_state(path: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, rng: np.random.Generator) -> int:
    """Restore a :func:`save_run_state` file into ``net``, ``opt`` and ``rng``; the step to continue from (0 when
    there is no file)."""
    if not Path(path).exists():
        return 0
    st = safe_load(path, "landmark run state", ModelError)
    net.load_state_dict(st["net"])
    opt.load_state_dict(st["opt"])
    rng.bit_generator.state = st["rng"]
    return int(st["step"])


def image_sampler(boxes: Sequence[np.ndarray], per_face: bool = True) -> Callable[[np.random.Generator], int]:
    """A function drawing an image index: in proportion to its labelled faces (every face equally likely),
    or uniformly."""
    w = np.array([max(len(b), 1) if per_face else 1 for b in boxes], dtype=np.float64)
    cum = np.cumsum(w / w.sum())
    return lambda rng: min(int(np.searchsorted(cum, rng.random(), side="right")), len(w) - 1)


def _read(path: str, cache: dict) -> np.ndarray:
    from iznet.data.images import load_image

    if path not in cache:
        img = load_image(path)
        used = cache.get("__bytes__", 0)
        if used + img.nbytes <= CACHE_BYTES:
            cache[path] = img
            cache["__bytes__"] = used + img.nbytes
        return img
    return cache[path]


def train_landmark_head(detector: str | Path, labels: LandmarkLabels, out: str | Path,
                        config: LandmarkTrainConfig = LandmarkTrainConfig(),
                        progress: Callable[[int, float], None] | None = None) -> Path:
    """Train the landmark branch of ``detector`` (a checkpoint; its other weights stay frozen).

    Writes ``out/last.pt`` every ``checkpoint_every`` steps (resumed from when present, exactly: weights,
    optimiser, step and random state) and ``out/model.pt`` (a detector checkpoint with landmarks) at the end.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train = labels.select("train")
    if len(train) == 0:
        raise DataError("the landmark labels hold no 'train' images")
    base = load_checkpoint(detector, kind=KIND)
    kwargs = dict(base.get("model_kwargs") or {})
    kwargs["landmarks"] = True
    ckpt = dict(base, model_kwargs=kwargs, state_dict=dict(base["state_dict"]))
    model = detector_from_checkpoint_partial(ckpt)
    for p in model.parameters():
        p.requires_grad_(False)
    branch = model.landmark_branch
    for p in branch.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(branch.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = LandmarkLoss(beta=config.beta)
    rng = np.random.default_rng(config.seed)
    last = out / "last.pt"
    step = load_run_state(last, branch, opt, rng)
    size = model.image_size
    draw = image_sampler(train.boxes, config.per_face)
    cache: dict = {}
    model.eval()
    branch.train()
    t0 = time.time()
    while step < config.steps:
        cosine_lr(opt, config.lr, step, config.steps)
        imgs, faces = [], []
        for _ in range(config.batch):
            i = draw(rng)
            img = _read(train.paths[i], cache)
            aff = random_placement(img.shape[1], img.shape[0], train.boxes[i], size, rng, config.p_letterbox)
            im, b, p = place_sample(img, train.boxes[i], train.points[i], aff, size, bool(rng.random() < 0.5))
            imgs.append(torch.from_numpy(im).permute(2, 0, 1))
            faces.append((torch.from_numpy(b), torch.from_numpy(p)))
        x = torch.stack(imgs).float() / 255.0
        with torch.no_grad():
            feats = model.features(x)
            pred = activate(model.outputs(feats, box_only=True))
            boxes, scores = decode(pred, size)
        uv = branch(feats)
        n, _, s_h, s_w = uv.shape
        uv = uv.view(n, len(model.anchors), 10, s_h, s_w).permute(0, 3, 4, 1, 2).reshape(n, -1, 10)
        target = torch.zeros_like(uv)
        mask = torch.zeros(uv.shape[:2], dtype=torch.bool)
        for k, (fb, fp) in enumerate(faces):
            pi, fi = match_predictors(boxes[k], scores[k], fb, config.match_iou, config.min_score)
            if len(pi):
                target[k, pi] = encode_landmarks(fp[fi], boxes[k, pi])
                mask[k, pi] = True
        loss = loss_fn(uv, target, mask)
        opt.zero_grad(set_to_none=True)
        if mask.any():
            loss.backward()
            opt.step()
        step += 1
        if progress:
            progress(step, float(loss.detach()))
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_run_state(last, branch, opt, step, rng)
    meta = dict(base.get("meta") or {})
    meta.pop("landmarks_stale", None)  # the branch now fits the features it reads (DetectorTrainer's mark)
    meta["landmarks"] = {"trained_from": str(detector), "labels": labels.meta, "train_images": len(train),
                         "train_faces": train.faces(), "config": asdict(config),
                         "seconds_this_session": round(time.time() - t0, 1)}
    return save_detector(out / "model.pt", model, base["model"], kwargs, meta=meta)


def detector_from_checkpoint_partial(ckpt: dict) -> torch.nn.Module:
    """A detector with landmarks built from a checkpoint that may lack the landmark stages (a box-only
    detector: they start from their initialisation)."""
    return detector_from_checkpoint(ckpt, allow_missing=("landmark_branch.", "landmark_refiner."))


# --------------------------------------------------------------------------- measuring


SIZE_BUCKETS = ((0.0, 12.0), (12.0, 24.0), (24.0, 48.0), (48.0, float("inf")))


def evaluate_landmarks(detector: YoloFaceDetector, labels: LandmarkLabels, match_iou: float = 0.4,
                       progress: Callable[[int], None] | None = None) -> dict:
    """Normalised mean error (by the teacher's inter-ocular distance) of the detector's points against the
    teacher's, on the faces both find (one-to-one, greedy by IoU ≥ ``match_iou``).

    Returns:
        dict with ``faces`` (teacher faces), ``matched``, ``nme_mean``, ``nme_median``, ``share_under_0.1``
        (and 0.2), ``per_point`` (mean error of each point / IOD), ``by_size`` (median and share under 0.1 by
        the teacher's inter-ocular distance in pixels) and ``worst`` (the 10 largest: path, nme).
    """
    from iznet.data.images import load_image

    errs, per_point, worst, iods = [], [], [], []
    faces = matched = 0
    for path, tb, tp in zip(labels.paths, labels.boxes, labels.points):
        det = detector.detect(load_image(path))
        if progress:
            progress(1)
        faces += len(tb)
        if len(det) == 0 or det.landmarks is None or len(tb) == 0:
            continue
        iou = box_iou(torch.as_tensor(tb).float(), det.xyxy)
        used: set[int] = set()
        for k in torch.argsort(iou.max(1).values, descending=True).tolist():
            order = torch.argsort(iou[k], descending=True).tolist()
            m = next((m for m in order if m not in used and iou[k, m] >= match_iou), None)
            if m is None:
                continue
            used.add(m)
            matched += 1
            truth = torch.as_tensor(tp[k:k + 1]).double()
            pred = det.landmarks[m:m + 1].double()
            e = float(interocular_nme(pred, truth)[0])
            errs.append(e)
            iod = float((truth[0, 0] - truth[0, 1]).norm())
            iods.append(iod)
            per_point.append(((pred - truth).norm(dim=-1)[0] / max(iod, 1e-6)).numpy())
            worst.append((e, path))
    e = np.asarray(errs)
    iod_arr = np.asarray(iods)
    by_size = {}
    for lo, hi in SIZE_BUCKETS:
        m = (iod_arr >= lo) & (iod_arr < hi)
        if m.any():
            by_size[f"iod {lo:g}-{hi:g} px"] = {"faces": int(m.sum()), "nme_median": round(float(np.median(e[m])), 4),
                                                "share_under_0.1": round(float((e[m] < 0.1).mean()), 4)}
    worst.sort(reverse=True)
    return {
        "faces": faces, "matched": matched,
        "nme_mean": float(e.mean()) if len(e) else float("nan"),
        "nme_median": float(np.median(e)) if len(e) else float("nan"),
        "share_under_0.1": float((e < 0.1).mean()) if len(e) else float("nan"),
        "share_under_0.2": float((e < 0.2).mean()) if len(e) else float("nan"),
        "per_point": dict(zip(LANDMARK_NAMES,
                              [round(float(v), 4) for v in np.mean(per_point, 0)] if per_point else [])),
        "by_size": by_size,
        "worst": [{"path": p, "nme": round(v, 4)} for v, p in worst[:10]],
    }


__all__ = ["LandmarkLabels", "LandmarkTrainConfig", "teacher_faces", "label_images", "random_placement",
           "place_sample", "match_predictors", "train_landmark_head", "evaluate_landmarks",
           "detector_from_checkpoint_partial"]
