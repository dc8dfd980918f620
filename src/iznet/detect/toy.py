"""The toy rectangles task of the write-up (section 3.2, Figure 15, Table 1).

Images are 15×15, one channel, black, with 1–3 filled axis-aligned rectangles of random grey levels; the
detector predicts a 3×3 grid × 2 boxes × 5 (90 numbers) and is trained with :class:`YoloLoss`.

Generation rules (so every image has one right answer): sides are whole pixels from 3 to 9; two
rectangles overlap by at most IoU 0.3 and cover at most half of the smaller one; no cell holds more
centres than there are anchors; grey levels add up where rectangles overlap and touching rectangles
differ in level (``render="add"``; ``render="occlude"`` paints later rectangles over earlier ones, which
makes some images ambiguous). An image is *solved* when every rectangle is found at IoU ≥ 0.5 by a
distinct predicted box and no predicted box is left over (after the usual post-processing).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from iznet.detect.ops import box_iou

from iznet.detect.loss import YoloLoss, activate, paired_iou
from iznet.detect.postprocess import PostprocessConfig, postprocess
from iznet.detect.targets import DEFAULT_ANCHORS, encode_targets, to_xyxy

TOY_SIZE = 15
TOY_GRID = 3
TOY_ASSIGN = ("anchor", "match", "match-all")  # which predictor answers for a rectangle (ToyConfig.assign)


def _overlap_ok(a: list[int], b: list[int]) -> bool:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter) <= 0.3 and inter <= 0.5 * min(area_a, area_b)


def _touch(a: list[int], b: list[int]) -> bool:
    """True when two pixel rectangles overlap or share an edge."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def make_rectangles(n: int, generator: torch.Generator | None = None, image_size: int = TOY_SIZE,
                    grid: int = TOY_GRID, max_per_cell: int = 2, min_side: int = 3, max_side: int = 9,
                    max_rects: int = 3, render: str = "add") -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Random rectangle images.

    Args:
        n: number of images.
        generator: torch RNG (seed it for a fixed set).
        render: ``"add"`` (default): grey levels add up where rectangles overlap, and rectangles that touch
            differ in level by at least 0.15, so every rectangle's full extent is visible; ``"occlude"``:
            later rectangles paint over earlier ones with any level (touching or half-hidden rectangles can
            then look like other shapes, as in the write-up's own remark on Figure 16).

    Returns:
        ``images`` (n, 1, image_size, image_size) float32 (0 background; up to about 2 where rectangles
        overlap with ``render="add"``) and a list of n (K, 4) float32
        ``x1, y1, x2, y2`` boxes (pixel edges), 1 ≤ K ≤ ``max_rects``.
    """
    if render not in ("add", "occlude"):
        raise ValueError(f"render must be 'add' or 'occlude', got {render!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    # one torch draw seeds a fast Python RNG for this call: same generator state -> same images
    rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=g)))
    images = torch.zeros(n, 1, image_size, image_size)
    boxes_out = []
    cell = image_size / grid
    for i in range(n):
        k = rng.randint(1, max_rects)
        rects: list[list[int]] = []
        cells: dict[tuple[int, int], int] = {}
        tries = 0
        while len(rects) < k and tries < 200:
            tries += 1
            w, h = rng.randint(min_side, max_side), rng.randint(min_side, max_side)
            x1, y1 = rng.randint(0, image_size - w), rng.randint(0, image_size - h)
            r = [x1, y1, x1 + w, y1 + h]
            c = (int((y1 + h / 2) / cell), int((x1 + w / 2) / cell))
            if cells.get(c, 0) >= max_per_cell or not all(_overlap_ok(r, o) for o in rects):
                continue
            cells[c] = cells.get(c, 0) + 1
            rects.append(r)
        levels: list[float] = []
        for j, r in enumerate(rects):
            if render == "occlude":
                level = 0.35 + 0.65 * rng.random()
                images[i, 0, r[1]:r[3], r[0]:r[2]] = level
                continue
            for _ in range(100):
                level = 0.3 + 0.4 * rng.random()
                if all(abs(level - levels[o]) >= 0.15 for o in range(j) if _touch(r, rects[o])):
                    break
            levels.append(level)
            images[i, 0, r[1]:r[3], r[0]:r[2]] += level
        boxes_out.append(torch.tensor(rects, dtype=torch.float32).reshape(-1, 4))
    return images, boxes_out


class ToyNet(nn.Module):
    """Table 1 of the write-up: three 5×5 convolutions (BN, LeakyReLU 0.1) and a fully connected output.

    Args:
        width: filters per convolution (128 in the write-up).
        image_size: input side (15).
        grid, anchors: output grid and anchors (3 × 3 × 2 × 5 = 90 outputs).

    Shapes: input (N, 1, image_size, image_size) → raw output (N, grid, grid, B, 5).
    """

    def __init__(self, width: int = 128, image_size: int = TOY_SIZE, grid: int = TOY_GRID,
                 anchors: tuple[tuple[float, float], ...] = DEFAULT_ANCHORS):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for _ in range(3):
            layers += [nn.Conv2d(c_in, width, 5, padding=2, bias=False), nn.BatchNorm2d(width),
                       nn.LeakyReLU(0.1, inplace=True)]
            c_in = width
        self.features = nn.Sequential(*layers)
        self.grid, self.anchors, self.image_size = grid, tuple(anchors), image_size
        self.fc = nn.Linear(width * image_size * image_size, grid * grid * len(anchors) * 5)
        with torch.no_grad():  # start near "no rectangle, mid-size box" rather than at random outputs
            self.fc.weight.mul_(0.1)
            bias = self.fc.bias.view(grid, grid, len(anchors), 5)
            bias.zero_()
            bias[..., 0] = -4.0
            bias[..., 3:] = 0.6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(self.features(x).flatten(1))
        return y.view(x.shape[0], self.grid, self.grid, len(self.anchors), 5)


def image_solved(pred: torch.Tensor, gt: torch.Tensor, iou_threshold: float = 0.5) -> bool:
    """True when every ground-truth box has its own prediction at IoU ≥ threshold and none is left over.

    Args:
        pred: (P, 4) predicted boxes; gt: (G, 4) true boxes.
    """
    if pred.shape[0] != gt.shape[0]:
        return False
    if gt.shape[0] == 0:
        return True
    iou = box_iou(gt, pred)
    used_gt: set[int] = set()
    used_pred: set[int] = set()
    for flat in torch.argsort(iou.flatten(), descending=True).tolist():  # greedy, best pairs first
        g, p = divmod(flat, pred.shape[0])
        if iou[g, p] < iou_threshold:
            break
        if g not in used_gt and p not in used_pred:
            used_gt.add(g)
            used_pred.add(p)
    return len(used_gt) == gt.shape[0]


@dataclass
class ToyConfig:
    """Training of the toy task: the write-up's model with our loss (λcoord 25, λnoobj 0.5).

    The defaults are the recipe chosen on validation images (``scripts/toy_sweep.py``, docs/detection.md):
    64 filters per convolution (half of Table 1's 128, which ``width=128`` restores), 12,000 steps of 128
    fresh images, confidence trained towards 1, predictors matched to rectangles in crowded cells.

    ``assign``: ``"anchor"`` trains on the targets as encoded (each rectangle goes to the predictor of its
    cell whose anchor aspect ratio is closest, see :mod:`iznet.detect.targets`); ``"match"`` re-orders, in
    every cell holding several rectangles, which predictor answers for which rectangle so that the current
    predicted boxes overlap them most (:func:`match_cell_targets`); ``"match-all"`` does so in every cell
    holding a rectangle, which is YOLOv1's own rule (the responsible predictor is the one whose current box
    has the highest IoU with the object).

    ``crowd`` > 0 oversamples the rare images with two rectangle centres in one grid cell (about 6% of
    fresh images): that share of every training batch is drawn from such images (evaluation images are
    never filtered).

    ``ema_decay`` > 0 keeps an exponential moving average of the weights and batch-norm statistics (its
    decay ramps up as (1 + n) / (10 + n) until ``ema_decay``) and returns it as the trained model; 0 returns
    the last weights.
    """

    width: int = 64
    steps: int = 12000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    lambda_coord: float = 25.0
    lambda_noobj: float = 0.5
    conf_target: str = "one"
    assign: str = "match"
    ema_decay: float = 0.0
    crowd: float = 0.0
    max_rects: int = 3
    render: str = "add"
    seed: int = 0
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)


def _ema_fn(decay: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """Weight-average update whose decay ramps up as (1 + n) / (10 + n) until ``decay``."""

    def fn(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        n = float(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        return averaged * d + current.detach() * (1 - d)

    return fn


def match_cell_targets(raw: torch.Tensor, target: torch.Tensor, min_objects: int = 2) -> torch.Tensor:
    """Permute the anchor slots of the targets in cells holding objects to fit the current predictions.

    In a cell with at least ``min_objects`` objects the permutation of its B target slots with the largest
    summed IoU between each predictor's box and the object (if any) of the slot it receives is kept (ties
    keep the encoded order); other cells are left as encoded. Which predictor answers for which rectangle of a crowded cell then need not
    be learnt from the anchor rule (with the toy's nearly equal anchors, 1:1 and 1:1.15, that rule hinges on
    comparing areas and aspect ratios of rectangles that may overlap).

    Args:
        raw: (N, S, S, B, 5) raw network outputs (only read, no gradient).
        target: (N, S, S, B, 5) encoded targets.
        min_objects: re-order only cells holding at least this many objects (1: every cell with one).

    Returns:
        a new target tensor of the same shape.
    """
    if min_objects < 1:
        raise ValueError(f"min_objects must be at least 1, got {min_objects}")
    if raw.shape != target.shape or raw.dim() != 5:
        raise ValueError(f"raw {tuple(raw.shape)} and target {tuple(target.shape)} must both be (N, S, S, B, 5)")
    b = target.shape[3]
    target = target.to(raw.device, torch.float32)
    with torch.no_grad():
        pred_xyxy = to_xyxy(activate(raw.detach()))             # (N, S, S, B, 4)
        tgt_xyxy = to_xyxy(target)
        obj = (target[..., 0] > 0.5).float()                    # (N, S, S, B)
        # iou[..., i, j]: predictor i against the object in slot j (0 for an empty slot)
        iou = paired_iou(pred_xyxy[..., :, None, :], tgt_xyxy[..., None, :, :]) * obj[..., None, :]
        perms = torch.tensor(list(itertools.permutations(range(b))), device=raw.device)  # (P, B)
        rows = torch.arange(b, device=raw.device)
        score = iou[..., rows[None, :], perms].sum(-1)           # (N, S, S, P); perms[0] is the identity
        best = score.argmax(-1)
        best = torch.where(obj.sum(-1) >= min_objects, best, torch.zeros_like(best))
        order = perms[best]                                     # (N, S, S, B): slot i takes object order[i]
    return torch.gather(target, 3, order[..., None].expand_as(target))


def shared_cell(boxes: list[torch.Tensor], image_size: int = TOY_SIZE, grid: int = TOY_GRID) -> list[bool]:
    """For each image's (K, 4) boxes: whether two box centres fall in one grid cell."""
    cell = image_size / grid
    out = []
    for b in boxes:
        cx = ((b[:, 0] + b[:, 2]) / 2 / cell).long().clamp(0, grid - 1)
        cy = ((b[:, 1] + b[:, 3]) / 2 / cell).long().clamp(0, grid - 1)
        idx = (cy * grid + cx).tolist()
        out.append(len(set(idx)) < len(idx))
    return out


def _training_batch(config: "ToyConfig", g: torch.Generator) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A fresh batch; with ``config.crowd`` > 0 that share of it has two centres in one cell."""
    images, boxes = make_rectangles(config.batch_size, g, max_rects=config.max_rects, render=config.render)
    n_crowd = round(config.crowd * config.batch_size)
    if n_crowd == 0:
        return images, boxes
    keep_img: list[torch.Tensor] = []
    keep_box: list[torch.Tensor] = []
    while len(keep_img) < n_crowd:
        more_img, more_box = make_rectangles(256, g, max_rects=config.max_rects, render=config.render)
        for i in (i for i, s in enumerate(shared_cell(more_box)) if s):
            keep_img.append(more_img[i])
            keep_box.append(more_box[i])
    images[:n_crowd] = torch.stack(keep_img[:n_crowd])
    boxes[:n_crowd] = keep_box[:n_crowd]
    return images, boxes


def evaluate_toy(model: nn.Module, n_images: int = 100, seed: int = 12345,
                 postprocess_config: PostprocessConfig = PostprocessConfig(), max_rects: int = 3,
                 render: str = "add") -> float:
    """Share of ``n_images`` fresh rectangle images (seeded) that the model solves."""
    images, boxes = make_rectangles(n_images, torch.Generator().manual_seed(seed), max_rects=max_rects,
                                    render=render)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        dets = postprocess(model(images.to(device)), TOY_SIZE, postprocess_config)
    model.train(was_training)
    return sum(image_solved(d.xyxy, b) for d, b in zip(dets, boxes)) / n_images


def train_toy(config: ToyConfig = ToyConfig(), device: torch.device | str = "cpu",
              callback: Callable[[int, dict[str, float]], None] | None = None) -> tuple[ToyNet, dict]:
    """Train :class:`ToyNet` on freshly generated images (every batch is new data).

    Args:
        config: hyper-parameters.
        device: where to train.
        callback: called as ``callback(step, losses)`` after every step (for progress bars).

    Returns:
        the trained model (eval mode; the weight average when ``config.ema_decay`` > 0) and a summary dict
        (config, last losses).
    """
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {config.ema_decay}")
    if not 0.0 <= config.crowd <= 1.0:
        raise ValueError(f"crowd must be in [0, 1], got {config.crowd}")
    if config.crowd > 0 and config.max_rects < 2:
        raise ValueError(f"crowd > 0 needs images with several rectangles; max_rects is {config.max_rects}")
    if config.assign not in TOY_ASSIGN:
        raise ValueError(f"assign must be 'anchor', 'match' or 'match-all', got {config.assign!r}")
    torch.manual_seed(config.seed)
    g = torch.Generator().manual_seed(config.seed)
    model = ToyNet(config.width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, config.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    loss_fn = YoloLoss(config.lambda_coord, config.lambda_noobj, config.conf_target)
    ema = (AveragedModel(model, avg_fn=_ema_fn(config.ema_decay), use_buffers=True)
           if config.ema_decay > 0 else None)
    last: dict[str, float] = {}
    model.train()
    for step in range(config.steps):
        images, boxes = _training_batch(config, g)
        target = encode_targets(boxes, TOY_GRID, model.anchors, TOY_SIZE).to(device)
        raw = model(images.to(device))
        if config.assign != "anchor":
            target = match_cell_targets(raw, target, 1 if config.assign == "match-all" else 2)
        out = loss_fn(raw, target)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(model)
        last = {k: float(v.detach()) for k, v in out.items()}
        if callback is not None:
            callback(step, last)
    if ema is not None:
        model = ema.module
    model.eval()
    summary = {"config": {k: v for k, v in asdict(config).items() if k != "postprocess"},
               "postprocess": asdict(config.postprocess), "last_losses": last}
    return model, summary
