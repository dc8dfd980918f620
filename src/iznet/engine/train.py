"""Training loop for embedders: triplet loss with online mining or uniform triplets, contrastive loss,
DeepFace-style pair classification, and identity classification with a cosine margin (CosFace), alone or
as a second term next to the triplet or contrastive loss.

Reproducibility: every random choice of step ``s`` (the batch order, the augmentation, the uniform
triplets or pairs) is derived from ``(seed, s)``, so a run stopped after step ``s`` and resumed from its
checkpoint (weights, optimizer state, step) takes exactly the same steps as an uninterrupted run.

The loop never prints: it reports through the ``on_event`` callback and writes its run folder:
``config.json``, ``metrics.jsonl``, ``last.pt`` (resumable), ``model.pt`` (the embedder checkpoint),
``snapshots/`` (embeddings for t-SNE sequences) and ``test.json`` when the data has test pairs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from iznet.engine.augment import augment_batch, normalise
from iznet.engine.config import TrainConfig
from iznet.utils.checkpoint import load_checkpoint, save_checkpoint
from iznet.engine.data import PairSet, TrainData
from iznet.errors import DataError, TrainingError
from iznet.utils.device import autocast, cpu_channels_last, default_device
from iznet.utils.io import write_json

_logger = logging.getLogger(__name__)

def _step_generator(seed: int, step: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step * 7919 + 17) % (2**63 - 1))
    return g


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7919 + 23) % (2**31 - 1)


class _PhaseClock:
    """Seconds spent in each phase of a training step (``laps``). On CUDA the device is synchronised at
    each boundary only when ``exact`` (otherwise the GPU phases hold launch times and the last one waits)."""

    def __init__(self, device: torch.device, exact: bool):
        self._sync = device.type == "cuda" and exact
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        if self._sync:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 6)
        self._t = now


def phase_shares(events: list[dict], skip: int = 10) -> dict[str, Any]:
    """Mean seconds per step in each phase and its share of the step, over step events after ``skip``."""
    rows = [e["t"] for e in events if e.get("event") == "step" and "t" in e][skip:]
    if not rows:
        return {}
    names = list(dict.fromkeys(k for r in rows for k in r))
    mean = {k: sum(r.get(k, 0.0) for r in rows) / len(rows) for k in names}
    total = sum(mean.values())
    return {"steps": len(rows), "seconds_per_step": total,
            "seconds": mean, "share": {k: v / total for k, v in mean.items()} if total > 0 else {}}


class _Batches:
    """P×K batches over the training labels, one epoch's order fixed by (seed, epoch)."""

    def __init__(self, labels: np.ndarray, p: int, k: int, seed: int, extra: int = 0,
                 people_weight: str = "uniform", lookalikes: np.ndarray | None = None, group: int = 1):
        from iznet.sampling.batches import PKBatchSampler
        from iznet.sampling._layout import SamplingError

        try:
            self.sampler = PKBatchSampler(labels, p=p, k=k, seed=seed, extra=extra, people_weight=people_weight,
                                          lookalikes=lookalikes, group=group)
        except SamplingError as e:
            raise TrainingError(f"{e} (--singletons)" if extra else str(e)) from None
        self.per_epoch = len(self.sampler)
        if self.per_epoch == 0:
            raise TrainingError(f"not enough people for batches of {p} people; lower --p")
        self._epoch = -1
        self._batches: list[list[int]] = []

    def at(self, step: int) -> np.ndarray:
        epoch, pos = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._batches = [list(b) for b in self.sampler]
            self._epoch = epoch
        return np.asarray(self._batches[pos], dtype=np.int64)


def _lr_at(cfg: TrainConfig, step: int) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return cfg.lr * (0.1 ** int(t / 0.4))  # "step": x0.1 at 40% and 80% of the run


def _make_optimizer(cfg: TrainConfig, params, head_params=()) -> torch.optim.Optimizer:
    # No weight decay on 1-d parameters (norm scales and shifts, biases): decaying the scale of the BN
    # before the L2 norm shrinks every embedding towards one point (the first default embedder collapsed
    # to distances of 0.03-0.04 on the unit sphere). With a head warm-up the network's groups are marked
    # ("network": True) so that their learning rate can stay 0 while the loss's head learns; without one the
    # two groups are those of every earlier run (their checkpoints resume as they were).
    params, head_params = list(params), list(head_params)

    def split(ps: list, **extra) -> list[dict]:
        return [{"params": [p for p in ps if p.ndim > 1], "weight_decay": cfg.weight_decay, **extra},
                {"params": [p for p in ps if p.ndim <= 1], "weight_decay": 0.0, **extra}]

    if cfg.head_warmup:
        groups = split(params, network=True) + split(head_params, network=False)
    else:
        groups = split(params + head_params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


@torch.no_grad()
def embed_images(model: nn.Module, images: torch.Tensor, indices: np.ndarray, size: int,
                 device: torch.device, bf16: bool = True, tta: bool = True,
                 batch_size: int = 256) -> np.ndarray:
    """Embed ``images[indices]`` in eval mode; flip TTA sums both views and renormalises."""
    was_training = model.training
    model.eval()
    out = []
    for s in range(0, len(indices), batch_size):
        idx = torch.as_tensor(indices[s:s + batch_size], device=images.device)
        x = normalise(images[idx].to(device), size)
        x = cpu_channels_last(x)
        with autocast(device, bf16):
            e = model(x).float()
            if tta:
                e = e + model(torch.flip(x, dims=[3])).float()
        out.append(torch.nn.functional.normalize(e, dim=1).cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 128), np.float32)


def pair_distances(model, images, pairs: PairSet, size, device, bf16=True, tta=True) -> np.ndarray:
    """Euclidean distances of the embeddings of each pair (each image embedded once)."""
    uniq, inv = np.unique(np.concatenate([pairs.idx1, pairs.idx2]), return_inverse=True)
    emb = embed_images(model, images, uniq, size, device, bf16, tta)
    n = len(pairs.idx1)
    e1, e2 = emb[inv[:n]], emb[inv[n:]]
    return np.linalg.norm(e1 - e2, axis=1)


NEW_HEAD_KEYS = ("head.pool.weight",)
"""Weights ``--init`` may leave at their start: the depthwise pooling head (starting as the average pool)."""


def load_init_weights(model: nn.Module, spec: str) -> dict:
    """Copy an embedder checkpoint's weights into ``model`` (fine-tuning); ``spec`` is a path or ``bundled``.

    Raises:
        TrainingError: the checkpoint is missing, of another kind, or holds another architecture.
    """
    from iznet.errors import ModelError

    path = spec
    if spec == "bundled":
        from iznet.utils.assets import default_embedder_spec

        path = default_embedder_spec()
    try:
        ck = load_checkpoint(path, kind="embedder")
    except ModelError as e:
        raise TrainingError(f"--init {spec}: {e}") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    # A new pooling head (--head gdc) on a network trained with the average pool: its weights start as the
    # average pool (DepthwisePool2d), so they are the only ones the checkpoint may lack.
    own = model.state_dict()
    fresh = [k for k in NEW_HEAD_KEYS if k in own and k not in state]
    for k in fresh:
        state[k] = own[k]
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise TrainingError(f"--init {spec}: its weights ({ck['model']} {ck.get('model_kwargs', {})}) do not fit "
                            f"this model; train with --model {ck['model']} ({first})") from None
    out = {"spec": spec, "path": str(path), "model": ck["model"], "model_kwargs": ck.get("model_kwargs", {}),
           "source_run": ck.get("meta", {}).get("source_run"), "calibration": ck.get("meta", {}).get("calibration")}
    if fresh:
        out["fresh"] = fresh
    return out


def frozen_prefixes(model: nn.Module, through: str) -> tuple[str, ...]:
    """Parameter-name prefixes of ``model.features``' children up to and including ``through``
    (``TrainConfig.freeze_through``).

    Raises:
        TrainingError: the model has no ``features`` sequence, or no child of that name (the names are listed).
    """
    feats = getattr(model, "features", None)
    names = [n for n, _ in feats.named_children()] if isinstance(feats, nn.Sequential) else []
    if through not in names:
        choices = ", ".join(names) if names else "none: this network has no features sequence"
        raise TrainingError(f"--freeze-through {through!r}: not a block of this network (blocks: {choices})")
    return tuple(f"features.{n}." for n in names[: names.index(through) + 1])


class Trainer:
    """Trains an embedder on a :class:`TrainData` and writes a run folder.

    Args:
        cfg: the run's configuration.
        data: training images, split and pairs.
        run_dir: the folder for config, metrics, checkpoints and snapshots.
        device: defaults to CUDA when present.
        on_event: called with dicts ``{"event": "step"|"eval"|"snapshot"|"checkpoint"|"done", ...}``.
        meta: extra metadata (e.g. the command line) stored in checkpoints.
    """

    def __init__(self, cfg: TrainConfig, data: TrainData, run_dir: str | Path,
                 device: torch.device | str | None = None,
                 on_event: Callable[[dict], None] | None = None, meta: dict | None = None):
        from iznet.models import create_model

        cfg.validate()
        self.cfg = cfg
        self.data = data
        self.run_dir = Path(run_dir)
        self.device = default_device(str(device) if device else None)
        self.on_event = on_event or (lambda e: None)
        self.meta = dict(meta or {})
        torch.manual_seed(cfg.seed)
        self.model = create_model(cfg.model, **cfg.model_kwargs).to(self.device)
        self.size = int(self.model.input_size)
        self._channels_last = (self.device.type == "cpu" if cfg.channels_last is None
                               else bool(cfg.channels_last))
        if cfg.init:
            self.meta["init"] = load_init_weights(self.model, cfg.init)
            cal = self.meta["init"].pop("calibration", None)
            if isinstance(cal, dict):  # a fine-tuned model starts with its base's unknown-face rule
                self.meta["calibration"] = {**cal, "source": f"inherited from --init {cfg.init}: {cal.get('source')}"}
        self._best_auc = -1.0
        self._frozen: tuple[str, ...] = ()  # module-name prefixes whose weights and BN statistics stay fixed
        if cfg.freeze_trunk:
            self._frozen = tuple(f"{n}." for n, _ in self.model.named_children() if n != "head")
        elif cfg.freeze_through:
            self._frozen = frozen_prefixes(self.model, cfg.freeze_through)
        for name, prm in self.model.named_parameters():
            if name.startswith(self._frozen):
                prm.requires_grad_(False)
        params = [prm for prm in self.model.parameters() if prm.requires_grad]
        head_params: list = []
        self.head = None
        if cfg.loss == "pair":
            from iznet.losses import PairClassifier

            self.head = PairClassifier(dim=self.model.embedding_dim, metric=cfg.pair_metric).to(self.device)
            head_params += list(self.head.parameters())
        self.id_loss = None
        if cfg.uses_id_loss:
            from iznet.losses import CosFaceLoss

            n_classes = max(2, len(data.train.classes), int(data.train.labels.max(initial=-1)) + 1)
            self.id_loss = CosFaceLoss(self.model.embedding_dim, n_classes,
                                       scale=cfg.id_scale, margin=cfg.id_margin).to(self.device)
            head_params += list(self.id_loss.parameters())
        self._teacher: torch.Tensor | None = None  # unit teacher targets of every image (iznet.engine.distill)
        if cfg.distill:
            from iznet.engine.distill import load_teacher, teacher_targets

            if data.paths is None:
                raise TrainingError(f"--distill {cfg.distill}: the teacher describes a pack's images; train on a "
                                    f"pack file, not {data.spec!r}")
            try:
                self._teacher = teacher_targets(load_teacher(cfg.distill, data.paths),
                                                data.train.indices).to(self.device)
            except DataError as e:
                raise TrainingError(f"--distill: {e}") from None
        self.distill_map = None  # --distill-mode feature: the learned map from embeddings to the teacher's space
        self._start_emb: np.ndarray | None = None  # the starting network's embeddings, for step 0 only
        if self._teacher is not None and cfg.distill_mode == "feature":
            self.distill_map = nn.Linear(self.model.embedding_dim, self._teacher.shape[1], bias=False).to(self.device)
            head_params += list(self.distill_map.parameters())
        self.optimizer = _make_optimizer(cfg, params, head_params)
        self.step = 0
        self.samples = 0
        self._loss_fn, self._miner = self._make_loss()
        self._batches = None
        self._sampler = None  # built once; reseeded from (seed, step) before every draw
        if cfg.loss == "pair":
            from iznet.sampling.pairs import UniformPairSampler

            self._sampler = UniformPairSampler(data.train.labels, positive_fraction=0.5, seed=cfg.seed)
        elif cfg.uniform_triplets:
            from iznet.sampling.triplets import UniformTripletSampler

            self._sampler = UniformTripletSampler(data.train.labels, seed=cfg.seed)
        else:
            self._batches = _Batches(data.train.labels, cfg.p, cfg.k, cfg.seed, cfg.singletons,
                                     cfg.people_weight)
        self._lookalikes: np.ndarray | None = None  # set at step 0 (after imprinting) or by resume
        self._rehearsal = self._rehearse_batches = None
        if cfg.rehearse:
            from iznet.engine.data import build_train_data

            try:
                self._rehearsal = build_train_data(cfg.rehearse, device=data.images.device, seed=cfg.seed)
            except DataError as e:
                raise TrainingError(f"--rehearse {cfg.rehearse}: {e}") from None
            self._rehearse_batches = _Batches(self._rehearsal.train.labels, cfg.rehearse_p, cfg.k, cfg.seed + 1)
        self._snapshot_left = sorted(int(s) for s in cfg.snapshot_at)
        self._snapshot_idx = self._snapshot_set()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    # ----------------------------------------------------------------------------------------- setup
    def _make_loss(self):
        cfg = self.cfg
        if cfg.loss == "triplet":
            from iznet.losses import TripletLoss
            from iznet.mining import create_miner

            miner = None
            if cfg.mining != "uniform":
                kw = {"margin": cfg.margin} if cfg.mining in ("semi-hard", "random-hard") else {}
                miner = create_miner(cfg.mining, **kw)
            return TripletLoss(margin=cfg.margin), miner
        if cfg.loss == "cosface":
            return None, None
        if cfg.loss == "contrastive":
            from iznet.losses import ContrastiveLoss

            return ContrastiveLoss(margin=cfg.margin if cfg.margin != 0.2 else 1.0), None
        from iznet.losses import PairClassificationLoss

        return PairClassificationLoss(), None

    def _snapshot_set(self) -> np.ndarray:
        """A fixed set of training images (up to ``snapshot_people`` people × 20) for snapshots."""
        if not self._snapshot_left:
            return np.zeros(0, np.int64)
        labels = self.data.train.labels
        counts = np.bincount(labels)
        people = np.argsort(-counts, kind="stable")[: self.cfg.snapshot_people]
        pos = np.concatenate([np.flatnonzero(labels == c)[:20] for c in people])
        return pos

    # ----------------------------------------------------------------------------------------- steps
    def _train_step(self) -> dict:
        cfg, data = self.cfg, self.data
        step = self.step
        gen = _step_generator(cfg.seed, step)
        for g in self.optimizer.param_groups:  # a head warm-up keeps the network's learning rate at 0 first
            g["lr"] = 0.0 if g.get("network") and step < cfg.head_warmup else _lr_at(cfg, step)
        train_idx = data.train.indices
        labels_np = data.train.labels
        stats: dict[str, Any] = {}
        clock = _PhaseClock(self.device, self.cfg.profile)
        if self._sampler is not None:
            self._sampler.rng = np.random.default_rng(_step_seed(cfg.seed, step))
        if cfg.loss == "pair":
            pairs, same = self._sampler.sample(cfg.pair_batch)
            pos = np.concatenate([pairs[:, 0], pairs[:, 1]])
        elif cfg.uniform_triplets:
            trip = self._sampler.sample(cfg.p * cfg.k // 3)
            pos = trip.reshape(-1)  # a0 p0 n0 a1 p1 n1 ...
        else:
            pos = self._batches.at(step)
        img_idx = torch.as_tensor(train_idx[pos], device=data.images.device)
        batch = data.images[img_idx]
        labels = torch.as_tensor(labels_np[pos], device=self.device)
        if self._rehearse_batches is not None:  # the base's people, labelled after the group's
            reh = self._rehearsal
            rpos = self._rehearse_batches.at(step)
            batch = torch.cat([batch, reh.images[torch.as_tensor(reh.train.indices[rpos], device=reh.images.device)]])
            offset = len(data.train.classes)
            labels = torch.cat([labels, torch.as_tensor(reh.train.labels[rpos] + offset, device=self.device)])
            pos = np.concatenate([pos, rpos])
        clock.lap("sample")
        x = augment_batch(batch, self.size, cfg.augment, gen).to(self.device)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        clock.lap("augment")
        self._train_mode()
        with autocast(self.device, cfg.bf16, cfg.cpu_bf16):
            emb = self.model(x)
        emb = emb.float()
        clock.lap("forward")
        if cfg.loss == "pair":
            n = len(same)
            logits = self.head(emb[:n], emb[n:])
            target = torch.as_tensor(same, dtype=torch.float32, device=self.device)
            loss = self._loss_fn(logits, target)
            stats["pair_acc"] = float(((logits > 0) == target.bool()).float().mean())
        elif cfg.loss == "triplet":
            if cfg.mining == "uniform":
                m = len(pos) // 3
                ar = torch.arange(m, device=self.device) * 3
                tup = (ar, ar + 1, ar + 2)
            else:
                tup = self._miner(emb, labels)
            clock.lap("mine")
            loss = self._loss_fn(emb, labels, tup)
            st = getattr(self._loss_fn, "last_stats", {}) or {}
            stats["triplets"] = int(st.get("num_triplets", len(tup[0])))
            stats["active_share"] = float(st.get("active_share", float("nan")))
        elif cfg.loss == "contrastive":
            loss = self._loss_fn(emb, labels)
        if self.id_loss is not None:
            id_loss = self.id_loss(emb, labels)
            stats["id_loss"] = float(id_loss.detach())
            stats["id_acc"] = self.id_loss.last_stats["id_acc"]
            loss = id_loss if cfg.loss == "cosface" else loss + cfg.id_weight * id_loss
        if self._teacher is not None:
            from iznet.engine.distill import feature_distill_loss, similarity_distill_loss

            tgt = self._teacher[img_idx.to(self.device)]
            d_loss = (feature_distill_loss(emb, tgt, self.distill_map.weight) if self.distill_map is not None
                      else similarity_distill_loss(emb, tgt))
            stats["distill"] = float(d_loss.detach())
            loss = loss + cfg.distill_weight * d_loss
        if not torch.isfinite(loss):
            raise TrainingError(
                f"loss became {loss.item()} at step {step} (lr {_lr_at(cfg, step):.3g}); lower --lr, "
                f"leave --cpu-bf16 off, or resume from {self.run_dir / 'last.pt'}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        loss_value = float(loss.detach())  # waits for the device
        clock.lap("backward")
        self.step += 1
        self.samples += len(pos)
        return {"event": "step", "step": self.step, "samples": self.samples, "loss": loss_value,
                "lr": _lr_at(cfg, step), **stats, "t": clock.laps}

    def evaluate(self, pairs: PairSet, threshold: float | None = None) -> dict:
        dist = pair_distances(self.model, self.data.images, pairs, self.size, self.device,
                              self.cfg.bf16, self.cfg.tta)
        same = pairs.same.astype(bool)
        from iznet.eval.verification import accuracy_at, auc, best_threshold

        thr, acc = best_threshold(dist, same)
        out = {"best_acc": acc, "best_threshold": thr, "auc": auc(dist, same),
               "mean_same": float(dist[same].mean()), "mean_diff": float(dist[~same].mean())}
        if threshold is not None:
            out["acc_at_threshold"] = accuracy_at(dist, same, threshold)
            out["threshold"] = threshold
        out["_dist"] = dist
        return out

    # ----------------------------------------------------------------------------------- checkpoints
    def _model_kwargs(self) -> dict:
        kw = dict(self.cfg.model_kwargs)
        return kw

    def save_last(self) -> Path:
        state = {"step": self.step, "samples": self.samples, "optimizer": self.optimizer.state_dict(),
                 "config": self.cfg.to_dict()}
        if self.head is not None:
            state["head"] = self.head.state_dict()
        if self.id_loss is not None:
            state["id_loss"] = self.id_loss.state_dict()
        if self._lookalikes is not None:
            state["lookalikes"] = torch.as_tensor(self._lookalikes)
        if self.distill_map is not None:
            state["distill_map"] = self.distill_map.state_dict()
        path = save_checkpoint(self.run_dir / "last.pt", kind="embedder", model=self.cfg.model,
                               model_kwargs=self._model_kwargs(), state_dict=self.model.state_dict(),
                               meta={**self.meta, "step": self.step}, train_state=state)
        self.on_event({"event": "checkpoint", "step": self.step, "path": str(path)})
        return path

    def _save_model(self, name: str, extra: dict) -> Path:
        meta = {**self.meta, "config": self.cfg.to_dict(), "tta": self.cfg.tta, "input_size": self.size,
                "crop": self.data.info.get("crop", "box"), **extra}
        cal = self._held_out_calibration()
        if cal is not None:
            meta["calibration"] = cal
        return save_checkpoint(self.run_dir / name, kind="embedder", model=self.cfg.model,
                               model_kwargs=self._model_kwargs(), state_dict=self.model.state_dict(), meta=meta)

    def _held_out_calibration(self) -> dict | None:
        """The unknown-face rule for this model, chosen on the group's held-out photos (None: keep the
        inherited one; see ``TrainConfig.calibrate_far``)."""
        held, far = self.data.held_out, self.cfg.calibrate_far
        if held is None or far <= 0 or len(held.indices) == 0 or len(self.data.train.classes) < 2:
            return None
        from iznet.eval.openset import held_out_calibration

        train = self.data.train
        emb_t = embed_images(self.model, self.data.images, train.indices, self.size, self.device,
                             self.cfg.bf16, self.cfg.tta)
        emb_h = embed_images(self.model, self.data.images, held.indices, self.size, self.device,
                             self.cfg.bf16, self.cfg.tta)
        cal = held_out_calibration(emb_t, train.labels, emb_h, held.labels, far, self.cfg.calibrate_stranger_far)
        if not math.isfinite(cal["threshold"]):
            return None
        inherited = self.meta.get("calibration") or {}
        cal["source"] = (f"held-out photos of {self.data.spec} ({cal['n_probes']} photos of {cal['n_people']} "
                         f"people, never trained on; right / wrong / unknown {cal['right']:.3f} / "
                         f"{cal['wrong']:.3f} / {cal['unknown']:.3f} at it)")
        for key in ("gallery_far", "margin"):  # the rest of the inherited rule stays
            if inherited.get(key) is not None:
                cal[key] = inherited[key]
        return cal

    def _train_mode(self) -> None:
        self.model.train()
        if self._frozen:  # frozen blocks keep their batch-norm statistics too
            for name, mod in self.model.named_modules():
                if name and f"{name}.".startswith(self._frozen):
                    mod.eval()

    def resume(self, path: str | Path) -> None:
        ck = load_checkpoint(path, kind="embedder")
        ts = ck.get("train_state")
        if ts is None:
            raise TrainingError(f"{path} holds no training state; resume needs a run's last.pt")
        if ck["model"] != self.cfg.model:
            raise TrainingError(f"{path} is a {ck['model']} run, this run trains {self.cfg.model}")
        if (self.id_loss is not None) != ("id_loss" in ts):
            had = "with" if "id_loss" in ts else "without"
            raise TrainingError(f"{path} was trained {had} the identity term (--id-weight / --loss cosface); "
                                f"resume it with the settings it was started with")
        was = (ts.get("config") or {}).get("freeze_through", "") or ""
        if was != self.cfg.freeze_through:
            raise TrainingError(f"{path} was trained with --freeze-through {was or '(none)'}, this run asks for "
                                f"{self.cfg.freeze_through or '(none)'}; resume it with the settings it was "
                                "started with")
        if (self.distill_map is not None) != ("distill_map" in ts):
            had = "with" if "distill_map" in ts else "without"
            raise TrainingError(f"{path} was trained {had} --distill-mode feature; resume it with the settings it "
                                "was started with")
        self.model.load_state_dict(ck["state_dict"])
        self.optimizer.load_state_dict(ts["optimizer"])
        if self.head is not None and "head" in ts:
            self.head.load_state_dict(ts["head"])
        if self.id_loss is not None:
            self.id_loss.load_state_dict(ts["id_loss"])
        if self.distill_map is not None:
            self.distill_map.load_state_dict(ts["distill_map"])
        if (self.cfg.lookalike_group > 1) != ("lookalikes" in ts):
            had = "with" if "lookalikes" in ts else "without"
            raise TrainingError(f"{path} was trained {had} look-alike groups (--lookalike-group); resume it with "
                                "the settings it was started with")
        if "lookalikes" in ts:
            was = int((ts.get("config") or {}).get("lookalike_refresh", 0) or 0)
            if was != self.cfg.lookalike_refresh:
                raise TrainingError(f"{path} was trained with --lookalike-refresh {was}, this run asks for "
                                    f"{self.cfg.lookalike_refresh}; resume it with the settings it was started with")
            self._set_lookalikes(ts["lookalikes"].cpu().numpy())
        self.step = int(ts["step"])
        self.samples = int(ts["samples"])
        self._snapshot_left = [s for s in self._snapshot_left if s > self.samples]

    def _start_embeddings(self) -> np.ndarray:
        """The starting network's embeddings of the training images (no augmentation, no flip), once."""
        if self._start_emb is None:
            tr = self.data.train
            self._start_emb = embed_images(self.model, self.data.images, tr.indices, self.size, self.device,
                                           self.cfg.bf16, tta=False)
        return self._start_emb

    @torch.no_grad()
    def fit_distill_map(self) -> dict:
        """Start the feature distillation's map at the orthogonal Procrustes fit of the starting network's
        embeddings of the training images to their teacher targets (deterministic; a resumed run loads the map
        from its checkpoint instead). Returns a ``distill_map`` event: images used, mean cosine to the targets
        through the map."""
        from iznet.engine.distill import procrustes_map

        idx = torch.as_tensor(self.data.train.indices, device=self._teacher.device)
        emb = torch.as_tensor(self._start_embeddings(), dtype=torch.float32, device=self._teacher.device)
        tgt = self._teacher[idx]
        r = procrustes_map(emb, tgt)
        self.distill_map.weight.copy_(r.t().to(self.distill_map.weight.dtype))
        cos = torch.nn.functional.cosine_similarity(torch.nn.functional.normalize(emb, dim=1) @ r, tgt, dim=1)
        return {"event": "distill_map", "images": int(len(idx)), "cos_start": float(cos.mean())}

    @torch.no_grad()
    def imprint_class_directions(self) -> dict:
        """Weight imprinting: each training person's class direction becomes the normalised mean of the
        starting network's embeddings of their pictures (no augmentation, no flip). People without a picture
        in the split keep their random direction. Deterministic, so a resumed run (which loads the directions
        from its checkpoint instead) takes the same steps.

        Returns:
            an ``imprint`` event: classes set, pictures used, mean cosine of a picture to its own direction and
            to the nearest other one.
        """
        tr = self.data.train
        emb = self._start_embeddings()
        n = self.id_loss.num_classes
        sums = np.zeros((n, emb.shape[1]), np.float64)
        np.add.at(sums, tr.labels, emb)
        norms = np.linalg.norm(sums, axis=1)
        have = norms > 0
        w = self.id_loss.weight
        w[torch.as_tensor(np.flatnonzero(have), device=w.device)] = torch.as_tensor(
            sums[have] / norms[have, None], dtype=w.dtype, device=w.device)
        cos = torch.as_tensor(emb, device=w.device) @ torch.nn.functional.normalize(w, dim=1).t()
        labels = torch.as_tensor(tr.labels, device=w.device)
        own = cos.gather(1, labels[:, None])[:, 0]
        other = cos.scatter(1, labels[:, None], -2.0).amax(1)
        return {"event": "imprint", "classes": int(have.sum()), "images": int(len(tr.indices)),
                "cos_own": float(own.mean()), "cos_nearest_other": float(other.mean()),
                "own_is_nearest": float((own > other).float().mean())}

    def _set_lookalikes(self, table: np.ndarray) -> None:
        """Use look-alike groups from now on: ``table`` (classes x M) lists each person's nearest others."""
        cfg = self.cfg
        self._lookalikes = np.asarray(table, dtype=np.int64)
        self._batches = _Batches(self.data.train.labels, cfg.p, cfg.k, cfg.seed, cfg.singletons, cfg.people_weight,
                                 lookalikes=self._lookalikes, group=cfg.lookalike_group)

    def build_lookalikes(self) -> dict:
        """The look-alike table from the identity term's class directions as they are now (at step 0, after
        imprinting: the starting network's centroids), kept until the next refresh (``lookalike_refresh``) or
        for the whole run, and saved in ``last.pt``. Returns an event."""
        from iznet.sampling.batches import lookalike_table

        w = self.id_loss.weight.detach().float().cpu().numpy()
        table = lookalike_table(w, m=4 * self.cfg.lookalike_group + 4)
        self._set_lookalikes(table)
        u = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
        people = self._batches.sampler.people
        cos1 = np.einsum("ij,ij->i", u[people], u[table[people, 0]])
        return {"event": "lookalikes", "step": self.step, "classes": int(len(table)),
                "neighbours": int(table.shape[1]),
                "group": self.cfg.lookalike_group, "cos_nearest_median": float(np.median(cos1))}

    def _snapshot(self) -> None:
        emb = embed_images(self.model, self.data.images, self.data.train.indices[self._snapshot_idx],
                           self.size, self.device, self.cfg.bf16, tta=False)
        labels = self.data.train.labels[self._snapshot_idx]
        out = self.run_dir / "snapshots" / f"samples_{self.samples:09d}.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        names = np.array([self.data.train.classes[l] for l in labels])
        np.savez_compressed(out, embeddings=emb, labels=labels, names=names, samples=self.samples,
                            step=self.step)
        self.on_event({"event": "snapshot", "samples": self.samples, "path": str(out)})

    # ------------------------------------------------------------------------------------------ run
    def fit(self, stop_after: int | None = None) -> dict:
        """Train until ``cfg.steps`` (or ``stop_after`` steps, to simulate an interruption)."""
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.run_dir / "config.json", {"config": cfg.to_dict(), "data": self.data.spec,
                                                  "data_info": self.data.info, "meta": self.meta})
        metrics_f = open(self.run_dir / "metrics.jsonl", "a")
        t0 = time.perf_counter()
        self._step_events: list[dict] = []
        self._fit_start_samples = self.samples  # a resumed run times only the samples of this fit
        end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
        last_eval: dict = {}
        try:
            if self.step == 0 and self.id_loss is not None and cfg.id_init == "centroids":
                ev = self.imprint_class_directions()
                metrics_f.write(json.dumps(ev) + "\n")
                self.on_event(ev)
            if self.step == 0 and self.distill_map is not None:
                ev = self.fit_distill_map()
                metrics_f.write(json.dumps(ev) + "\n")
                self.on_event(ev)
            self._start_emb = None  # only the first step uses it
            if self.step == 0 and self.cfg.lookalike_group > 1 and self._lookalikes is None:
                ev = self.build_lookalikes()
                metrics_f.write(json.dumps(ev) + "\n")
                self.on_event(ev)
            if self.step == 0 and self._snapshot_left and self._snapshot_left[0] == 0:
                self._snapshot()
                self._snapshot_left.pop(0)
            start_step = self.step
            t_warm = None  # the first steps are slow (kernel selection): time the rate after them
            while self.step < end:
                if cfg.lookalike_refresh and self.step and self.step % cfg.lookalike_refresh == 0:
                    # before this step's draw (each step reaches here once), so a run resumed at this step
                    # rebuilds the same table
                    ev = self.build_lookalikes()
                    metrics_f.write(json.dumps(ev) + "\n")
                    self.on_event(ev)
                ev = self._train_step()
                ev["time"] = time.perf_counter() - t0
                if cfg.time_budget > 0 and self.step == start_step + 10:
                    t_warm = ev["time"]
                if cfg.time_budget > 0 and self.step == start_step + 40:
                    end = self._fit_budget(ev["time"], 30 / max(ev["time"] - t_warm, 1e-9), end)
                metrics_f.write(json.dumps(ev) + "\n")
                self._step_events.append(ev)
                self.on_event(ev)
                while self._snapshot_left and self.samples >= self._snapshot_left[0]:
                    self._snapshot()
                    self._snapshot_left.pop(0)
                if cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == cfg.steps):
                    r = self.evaluate(self.data.dev_pairs)
                    r.pop("_dist")
                    last_eval = {"event": "eval", "step": self.step, "samples": self.samples,
                                 **{f"dev_{k}": v for k, v in r.items()}}
                    metrics_f.write(json.dumps(last_eval) + "\n")
                    metrics_f.flush()
                    self.on_event(last_eval)
                    if cfg.keep_best and r["auc"] > self._best_auc:
                        self._best_auc = float(r["auc"])
                        self._save_model("best.pt", {"best": {"step": self.step, "dev": r}})
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_last()
        finally:
            metrics_f.close()
        elapsed = time.perf_counter() - t0
        self.save_last()
        if self.step < cfg.steps:
            return {"stopped_at": self.step}
        return self._finish(elapsed, last_eval)

    def _fit_budget(self, elapsed: float, rate: float, end: int) -> int:
        """Lower the step count so the run ends within ``cfg.time_budget`` seconds (recorded)."""
        cfg = self.cfg
        fit = int(self.step + (cfg.time_budget - elapsed) * rate)
        if fit < cfg.steps:
            _logger.info("time budget %.0f s: %d steps instead of %d", cfg.time_budget, fit, cfg.steps)
            self.meta["steps_requested"] = cfg.steps
            cfg.steps = max(fit, cfg.warmup_steps + 1, self.step + 1)
            write_json(self.run_dir / "config.json", {"config": cfg.to_dict(), "data": self.data.spec,
                                                      "data_info": self.data.info, "meta": self.meta})
        return min(end, cfg.steps)

    def _finish(self, elapsed: float, last_eval: dict) -> dict:
        dev = self.evaluate(self.data.dev_pairs)
        dev.pop("_dist")
        summary: dict[str, Any] = {"steps": self.step, "samples": self.samples, "train_seconds": elapsed,
                                   "samples_per_second": (self.samples - self._fit_start_samples)
                                   / max(elapsed, 1e-9),
                                   "step_phases": phase_shares(self._step_events),
                                   "dev": dev, "data": self.data.spec, "data_info": self.data.info}
        if self.data.test_pairs is not None:
            test = self.evaluate(self.data.test_pairs, threshold=dev["best_threshold"])
            dist = test.pop("_dist")
            np.savez_compressed(self.run_dir / "test_pairs.npz", dist=dist,
                                same=self.data.test_pairs.same.astype(bool))
            summary["test"] = test
            write_json(self.run_dir / "test.json", test)
        self._save_model("model.pt", {"summary": summary})
        write_json(self.run_dir / "summary.json", summary)
        self.on_event({"event": "done", **summary})
        return summary
