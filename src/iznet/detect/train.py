"""Training the face detector from a detection pack.

The loop never prints: it reports through ``on_event`` and writes its run folder::

    config.json      the resolved DetectorTrainConfig (and the pack's meta)
    metrics.jsonl    one JSON line per epoch: losses, dev AP@0.5, recall@0.3/0.5, images/s, time
    last.pt          resumable checkpoint (weights, EMA weights, optimizer, epoch, RNG state)
    best.pt          the detector with the best dev AP (EMA weights; kind="detector")

Device is automatic (CUDA when present) with bf16 autocast on CUDA; images travel to the device as uint8.
A resumed run continues weights, EMA, optimizer, epoch and schedule; its data order is not bit-identical
to an uninterrupted run (the loader's workers draw their own augmentation).
Evaluation and the saved detector use an exponential moving average of the weights (decay 0.999).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader

from iznet.detect.data import DetectionCollate, DetectionTrainSet, composite_eval_set, photo_eval_set
from iznet.detect.detector import KIND, save_detector
from iznet.detect.evaluate import DetectionMetrics, evaluate_detections
from iznet.detect.letterbox import Letterbox, letterbox
from iznet.detect.loss import CONF_TARGETS, YoloLoss
from iznet.detect.model import YoloDetector, create_detector, list_detectors
from iznet.detect.pack import DetectionPack, load_pack
from iznet.detect.postprocess import PostprocessConfig, postprocess
from iznet.utils.checkpoint import load_checkpoint
from iznet.errors import TrainingError
from iznet.utils.device import autocast, default_device
from iznet.utils.io import write_json

_logger = logging.getLogger(__name__)

#: Thresholds for ranking detections when computing AP (low, so the whole precision-recall curve counts).
AP_POSTPROCESS = PostprocessConfig(conf_threshold=0.01, iou_threshold=0.4, max_detections=100)


@dataclass
class DetectorTrainConfig:
    """A detector training run. Loss defaults are the write-up's (λcoord 25, λnoobj 0.5)."""

    backbone: str = "light"
    width: int | None = None  # light backbone width (default: the registry's)
    landmarks: bool = False  # the network has the landmark branch (a run from a detector that has one); the
    # branch is kept frozen here (the pack has no landmark labels): retrain it with scripts/train_landmarks.py
    image_size: int = 416
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    lambda_coord: float = 25.0
    lambda_noobj: float = 0.5
    conf_target: str = "iou"
    composite_ratio: float = 1.0
    hard_negatives: str | None = None  # JSON from scripts/mine_hard_negatives.py: photo name -> false-face boxes
    hard_ratio: float = 0.5  # hard-negative crops per training photo in an epoch (with hard_negatives)
    max_faces: int = 8
    dev_composites: int = 100
    ema_decay: float = 0.999
    workers: int | None = None  # DataLoader workers (default: CPU count - 1, at most 12)
    seed: int = 0
    bf16: bool = True
    channels_last: bool = True  # model and batches in channels_last memory format (faster on CPU and CUDA)
    max_minutes: float | None = None  # stop (and save) after this much training time

    def validate(self) -> None:
        if self.backbone not in list_detectors():
            raise TrainingError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(list_detectors())}")
        if self.image_size % 32 or self.image_size < 64:
            raise TrainingError(f"image size must be a multiple of 32 and at least 64, got {self.image_size}")
        if self.conf_target not in CONF_TARGETS:
            raise TrainingError(f"conf target must be 'iou' or 'one', got {self.conf_target!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise TrainingError(f"learning rate must be positive, got {self.lr}")
        if not 0.0 <= self.hard_ratio <= 10.0:
            raise TrainingError(f"hard-negative ratio must be in 0..10, got {self.hard_ratio}")

    def model_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"image_size": self.image_size}
        if self.width is not None and self.backbone == "light":
            kw["width"] = self.width
        if self.landmarks:
            kw["landmarks"] = True
        return kw

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DetectorTrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise TrainingError(f"unknown detector config key(s) {sorted(unknown)}")
        return cls(**d)


class EvalBatch:
    """An evaluation set letterboxed once: images (M, 3, S, S) uint8, placements and true boxes."""

    def __init__(self, items: Sequence[tuple[np.ndarray, np.ndarray]], image_size: int):
        placed = [letterbox(img, image_size) for img, _ in items]
        self.images = torch.stack([p[0] for p in placed]) if placed else torch.zeros(0, 3, image_size, image_size,
                                                                                      dtype=torch.uint8)
        self.letterboxes: list[Letterbox] = [p[1] for p in placed]
        self.truth = [np.asarray(b, np.float32).reshape(-1, 4) for _, b in items]

    def __len__(self) -> int:
        return len(self.truth)


@torch.no_grad()
def evaluate_model(model: YoloDetector, data: EvalBatch, device: torch.device, batch_size: int = 32,
                   bf16: bool = True, operating: PostprocessConfig = PostprocessConfig()) -> DetectionMetrics:
    """AP@0.5 (ranked at confidence ≥ 0.01) and recall/precision at the operating thresholds."""
    was_training = model.training
    model.eval()
    ranked = []
    for i in range(0, len(data), batch_size):
        x = data.images[i:i + batch_size].to(device).float() / 255.0
        x = x.contiguous(memory_format=torch.channels_last)  # faster on both CPU (oneDNN) and CUDA
        with autocast(device, bf16):
            raw = model(x)
        for d in postprocess(raw.float(), model.image_size, AP_POSTPROCESS, data.letterboxes[i:i + batch_size]):
            ranked.append(d.numpy())
    model.train(was_training)
    return evaluate_detections(ranked, data.truth, operating.conf_threshold, operating.max_detections)


def load_hard_negatives(path: str | Path | None) -> dict[str, list[list[float]]] | None:
    """The ``boxes`` of a hard-negative file (``scripts/mine_hard_negatives.py``): photo name -> boxes."""
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
        boxes = data["boxes"]
        if not isinstance(boxes, dict) or not all(
                np.asarray(b, np.float32).reshape(-1, 4).shape[0] == len(b) for b in boxes.values()):
            raise ValueError("'boxes' must map photo names to lists of [x1, y1, x2, y2]")
    except FileNotFoundError:
        raise TrainingError(f"hard-negative file {path} not found; write it with scripts/mine_hard_negatives.py")
    except (ValueError, KeyError, TypeError) as e:
        raise TrainingError(f"{path} is not a hard-negative file ({e}); write it with "
                            f"scripts/mine_hard_negatives.py") from None
    return boxes


def _ema_fn(decay: float):
    """EMA update whose decay ramps up as (1 + n) / (10 + n) until ``decay`` (short runs still average)."""

    def fn(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        n = float(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        return averaged * d + current.detach() * (1 - d)

    return fn


def _default_workers(device: torch.device) -> int:
    cpus = os.cpu_count() or 1
    return max(0, min(12, cpus - 1)) if device.type == "cuda" else min(1, cpus - 1)


class DetectorTrainer:
    """Train a :class:`YoloDetector` on a :class:`DetectionPack`.

    Args:
        config: the run's settings.
        pack: the data (or a path to it).
        run_dir: output folder.
        device: default CUDA when present.
        on_event: called with dicts ``{"event": "step"|"epoch"|"done", ...}``.
        meta: stored in the checkpoints (e.g. the command line).
    """

    def __init__(self, config: DetectorTrainConfig, pack: DetectionPack | str | Path, run_dir: str | Path,
                 device: torch.device | str | None = None, on_event: Callable[[dict], None] | None = None,
                 meta: dict | None = None):
        config.validate()
        self.cfg = config
        self.pack_path = None if isinstance(pack, DetectionPack) else str(pack)
        self.pack = pack if isinstance(pack, DetectionPack) else load_pack(pack)
        self.run_dir = Path(run_dir)
        self.device = default_device(str(device) if device is not None else None)
        self.on_event = on_event or (lambda ev: None)
        self.meta = dict(meta or {})
        torch.manual_seed(config.seed)
        self.model = create_detector(config.backbone, **config.model_kwargs()).to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.model.landmark_branch is not None:  # no landmark labels in a detection pack: keep it as it is
            self.model.landmark_branch.requires_grad_(False)
        self.ema = AveragedModel(self.model, avg_fn=_ema_fn(config.ema_decay), use_buffers=True)
        self.loss_fn = YoloLoss(config.lambda_coord, config.lambda_noobj, config.conf_target)
        self.train_set = DetectionTrainSet(self.pack, config.image_size, "train", config.composite_ratio,
                                           max_faces=config.max_faces,
                                           hard_negatives=load_hard_negatives(config.hard_negatives),
                                           hard_ratio=config.hard_ratio)
        self.steps_per_epoch = max(1, len(self.train_set) // config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
        dev_items = photo_eval_set(self.pack, "dev", truth="boxes")
        if config.dev_composites and self.pack.select_faces("dev"):
            dev_items += composite_eval_set(self.pack, "dev", config.dev_composites, config.image_size,
                                            seed=config.seed + 1, max_faces=config.max_faces)
        self.dev = EvalBatch(dev_items, config.image_size)
        self.epoch = 0
        self.step = 0
        self.best_ap = -1.0
        self.train_seconds = 0.0

    # ------------------------------------------------------------------ state

    def _lr_at(self, step: int, seconds: float = 0.0) -> float:
        """Linear warm-up, then cosine to 2% of ``lr``; with ``max_minutes`` the cosine follows the elapsed
        share of the time budget when that is further along than the share of steps."""
        warm = max(1, int(self.cfg.warmup_epochs * self.steps_per_epoch))
        if step < warm:
            return self.cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, self.total_steps - warm)
        if self.cfg.max_minutes:
            t = max(t, seconds / (self.cfg.max_minutes * 60))
        return self.cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    def _model_kwargs(self) -> dict:
        kw = self.cfg.model_kwargs()
        kw["anchors"] = [list(a) for a in self.model.anchors]
        return kw

    def _meta(self, metrics: dict | None = None) -> dict:
        return {**self.meta, "config": self.cfg.to_dict(), "pack": self.pack_path, "pack_meta_counts":
                self.pack.meta.get("counts"), "epoch": self.epoch, "metrics": metrics or {},
                "postprocess": dataclasses.asdict(PostprocessConfig()),
                "box_convention": "tight face boxes (YuNet-like), x1 y1 x2 y2 pixels"}

    def save_last(self, metrics: dict | None = None) -> Path:
        state = {"optimizer": self.opt.state_dict(), "epoch": self.epoch, "step": self.step,
                 "best_ap": self.best_ap, "train_seconds": self.train_seconds,
                 "ema": self.ema.module.state_dict(), "ema_n": self.ema.n_averaged.detach().cpu(),
                 "rng": torch.get_rng_state()}
        return save_detector(self.run_dir / "last.pt", self.model, self.cfg.backbone, self._model_kwargs(),
                             self._meta(metrics), train_state=state)

    def resume(self, path: str | Path) -> None:
        """Continue from a ``last.pt`` (weights, EMA, optimizer, epoch, RNG)."""
        ckpt = load_checkpoint(path, kind=KIND)
        state = ckpt.get("train_state")
        if not state:
            raise TrainingError(f"{path} holds no training state (use the run's last.pt to resume)")
        if ckpt["model"] != self.cfg.backbone:
            raise TrainingError(f"{path} is a {ckpt['model']!r} run; this run's backbone is {self.cfg.backbone!r}")
        self.model.load_state_dict(ckpt["state_dict"])
        self.ema.module.load_state_dict(state["ema"])
        self.ema.n_averaged.fill_(int(state["ema_n"]))
        self.opt.load_state_dict(state["optimizer"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best_ap, self.train_seconds = float(state["best_ap"]), float(state["train_seconds"])
        torch.set_rng_state(state["rng"])

    def init_from(self, path: str | Path, ckpt: dict | None = None) -> None:
        """Start from a trained detector's weights (fine-tuning, e.g. the bundled detector on your own photos).

        Only the weights come over: the optimizer, the schedule and the epoch count start fresh, and the
        image size may differ (the network is fully convolutional). The backbone, its width and the anchors
        must match, or the run stops with a message saying which. ``ckpt``: the checkpoint at ``path``
        when the caller has loaded it already.
        """
        if ckpt is None:
            ckpt = load_checkpoint(path, kind=KIND)
        if ckpt["model"] != self.cfg.backbone:
            raise TrainingError(f"{path} is a {ckpt['model']!r} detector; give --backbone {ckpt['model']} "
                                f"to start from it")
        theirs = [tuple(map(float, a)) for a in (ckpt.get("model_kwargs") or {}).get("anchors", [])]
        ours = [tuple(map(float, a)) for a in self.model.anchors]
        if theirs and theirs != ours:
            raise TrainingError(f"{path} was trained with anchors {theirs}; this run has {ours}")
        theirs_lm = bool((ckpt.get("model_kwargs") or {}).get("landmarks", False))
        if theirs_lm != self.cfg.landmarks:
            raise TrainingError(f"{path} is a detector {'with' if theirs_lm else 'without'} landmarks; this run "
                                f"is {'with' if self.cfg.landmarks else 'without'} (set DetectorTrainConfig."
                                f"landmarks={theirs_lm}; `iznet train-detector --init` does it)")
        try:
            self.model.load_state_dict(ckpt["state_dict"])
        except RuntimeError:
            width = (ckpt.get("model_kwargs") or {}).get("width")
            mine = f"width {self.cfg.width}" if self.cfg.width else "the default width"
            raise TrainingError(f"{path}: its weights do not fit this run's {self.cfg.backbone} ({mine})"
                                + (f"; give --width {width}" if width else "")) from None
        self.ema.module.load_state_dict(self.model.state_dict())
        self.meta["init"] = str(path)
        if self.cfg.landmarks:
            # the branch reads features this run changes: record that its points are the start's, to retrain
            self.meta["landmarks_stale"] = ("the landmark branch of the start was kept frozen while the rest "
                                            "trained; retrain it with scripts/train_landmarks.py")

    # ------------------------------------------------------------------ loop

    def _loader(self) -> DataLoader:
        """One loader for the whole run; its workers live across epochs (a fresh start costs seconds)."""
        workers = self.cfg.workers if self.cfg.workers is not None else _default_workers(self.device)
        g = torch.Generator().manual_seed(self.cfg.seed * 1000 + self.epoch)
        return DataLoader(self.train_set, batch_size=self.cfg.batch_size, shuffle=True, drop_last=True,
                          num_workers=workers, collate_fn=DetectionCollate(self.cfg.image_size, self.model.grid,
                                                                           self.model.anchors),
                          pin_memory=self.device.type == "cuda", generator=g,
                          persistent_workers=workers > 0, prefetch_factor=4 if workers else None)

    def fit(self) -> dict:
        """Train for the configured epochs (or until ``max_minutes``); returns the summary."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.run_dir / "config.json", {"config": self.cfg.to_dict(), "pack": self.pack_path,
                                                  "pack_meta": self.pack.meta, **self.meta})
        metrics_path = self.run_dir / "metrics.jsonl"
        deadline = None if self.cfg.max_minutes is None else self.cfg.max_minutes * 60
        last: dict = {}
        self.model.train()
        loader = self._loader()
        while self.epoch < self.cfg.epochs:
            t0 = time.perf_counter()
            sums: dict[str, float] = {}
            n_batches = n_images = 0
            stop = False
            for images, target, _ in loader:
                lr = self._lr_at(self.step, self.train_seconds + time.perf_counter() - t0)
                for group in self.opt.param_groups:
                    group["lr"] = lr
                x = images.to(self.device, non_blocking=True).float().div_(255.0)
                if self.cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                target = target.to(self.device, non_blocking=True)
                with autocast(self.device, self.cfg.bf16):
                    raw = self.model(x)
                out = self.loss_fn(raw.float()[..., :5], target)  # the boxes (a landmark branch stays frozen)
                if not torch.isfinite(out["loss"]):
                    raise TrainingError(f"loss became {out['loss'].item()} at step {self.step}; lower --lr")
                self.opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
                self.opt.step()
                self.ema.update_parameters(self.model)
                self.step += 1
                n_batches += 1
                n_images += x.shape[0]
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                self.on_event({"event": "step", "step": self.step, "epoch": self.epoch,
                               "loss": float(out["loss"].detach())})
                if deadline is not None and self.train_seconds + time.perf_counter() - t0 > deadline:
                    stop = True
                    break
            elapsed = time.perf_counter() - t0
            self.train_seconds += elapsed
            self.epoch += 1
            dev = evaluate_model(self.ema.module, self.dev, self.device, bf16=self.cfg.bf16) if len(self.dev) else None
            last = {"epoch": self.epoch, "step": self.step, "lr": self.opt.param_groups[0]["lr"],
                    **{f"loss_{k}": v / max(1, n_batches) for k, v in sums.items()},
                    "images_per_s": n_images / max(elapsed, 1e-9), "train_seconds": round(self.train_seconds, 1)}
            if dev is not None:
                last.update({f"dev_{k}": v for k, v in dev.to_dict().items()})
            with open(metrics_path, "a") as fh:
                fh.write(json.dumps(last) + "\n")
            if dev is not None and dev.ap50 > self.best_ap:
                self.best_ap = dev.ap50
                save_detector(self.run_dir / "best.pt", self.ema.module, self.cfg.backbone, self._model_kwargs(),
                              self._meta(last))
            self.save_last(last)
            self.on_event({"event": "epoch", **last})
            if stop:
                _logger.info("time budget of %.1f min reached after epoch %d", self.cfg.max_minutes, self.epoch)
                break
        if not (self.run_dir / "best.pt").exists():  # no dev set: the last EMA weights are the model
            save_detector(self.run_dir / "best.pt", self.ema.module, self.cfg.backbone, self._model_kwargs(),
                          self._meta(last))
        summary = {"epochs": self.epoch, "steps": self.step, "train_seconds": round(self.train_seconds, 1),
                   "best_dev_ap50": self.best_ap, "last": last, "best": str(self.run_dir / "best.pt")}
        write_json(self.run_dir / "summary.json", summary)
        self.on_event({"event": "done", **summary})
        return summary
