"""What defines a training run (:class:`TrainConfig`, :class:`AugmentConfig`), apart from the code that runs
it, so the command line reads its defaults from here without importing torch."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from iznet.errors import TrainingError

@dataclass
class AugmentConfig:
    """Ranges of the random transforms (all default to mild, face-preserving values)."""

    scale: tuple[float, float] = (0.9, 1.1)  # zoom factor (>1 zooms in)
    shift: float = 0.06  # max translation as a share of the image side
    rotate_deg: float = 8.0
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    grayscale_p: float = 0.05
    saturation: float = 0.0  # colour saturation factor drawn from 1 ± this
    blur_p: float = 0.0  # share of images blurred
    blur_sigma: tuple[float, float] = (0.4, 1.6)  # Gaussian sigma in output pixels
    jpeg_p: float = 0.0  # share of images re-compressed as JPEG
    jpeg_quality: tuple[int, int] = (25, 85)


#: Named settings for ``iznet train --augment``: "default" (the mild transforms above) and "photo" (a wider
#: jitter of the face box, colour, blur and JPEG, as in pictures from phones, the web and old scans).
AUGMENT_PRESETS = {
    "default": {},
    "photo": {"scale": (0.85, 1.15), "shift": 0.08, "rotate_deg": 10.0, "grayscale_p": 0.1,
              "saturation": 0.3, "blur_p": 0.25, "jpeg_p": 0.3},
}


def augment_preset(name: str) -> AugmentConfig:
    if name not in AUGMENT_PRESETS:
        raise ValueError(f"unknown augmentation {name!r}: choose one of {', '.join(AUGMENT_PRESETS)}")
    return AugmentConfig(**AUGMENT_PRESETS[name])


LOSSES = ("triplet", "contrastive", "pair", "cosface")
MININGS = ("uniform", "all", "hard", "semi-hard", "random-hard", "batch-hard")
OPTIMIZERS = ("sgd", "adagrad", "adamw")
SCHEDULES = ("cosine", "step", "constant")
DISTILL_MODES = ("similarity", "feature")
ID_INITS = ("random", "centroids")


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults follow the write-up where it gives one."""

    model: str = "nn4"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: str = "triplet"
    mining: str = "semi-hard"
    margin: float = 0.2  # FaceNet's alpha (squared distances); contrastive margin when loss=contrastive
    pair_metric: str = "abs"  # DeepFace head: weighted |f1-f2| ("abs") or chi-square ("chi2")
    p: int = 32  # people per batch
    k: int = 4  # images per person
    singletons: int = 0  # images of people with one image added to each P×K batch, as negatives only
    # How often P×K batches visit each person: "uniform" (each once per epoch), "images" or "sqrt"
    # (drawn per batch ∝ n_i or √n_i; iznet.sampling.batches).
    people_weight: str = "uniform"
    # People per look-alike group in P×K batches (iznet.sampling.batches: a drawn person and the nearest
    # others by the imprinted class directions; needs id_init "centroids"); 1: plain batches.
    lookalike_group: int = 1
    # Rebuild that table from the identity term's class directions as they are every this many steps (0: the
    # table built at step 0 is kept for the whole run).
    lookalike_refresh: int = 0
    pair_batch: int = 64  # pairs per batch for loss=pair
    # Identity term (iznet.losses.CosFaceLoss) over all training people: its weight next to the triplet or
    # contrastive loss (0: off; loss=cosface uses it alone with weight 1), scale s and cosine margin m.
    id_weight: float = 0.0
    id_scale: float = 30.0
    id_margin: float = 0.35
    # Where the identity term's class directions start: "random", or "centroids" (weight imprinting: each
    # person's mean embedding under the starting network, so a fine-tune's identity term is informative from
    # its first step instead of spending thousands of steps finding directions).
    id_init: str = "random"
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_steps: int = 100
    steps: int = 2000
    seed: int = 0
    bf16: bool = True  # bf16 autocast of the training steps on CUDA
    # bf16 autocast of the training steps on the CPU too. Off by default: it pays only on CPUs with native
    # bf16 (AVX512-BF16 or AMX; about 1.7x over fp32 channels_last for NN4-small on such a CPU, docs/training.md)
    # and is slower where bf16 is emulated. Dev/test embeddings stay fp32 on the CPU either way.
    cpu_bf16: bool = False
    eval_every: int = 250
    checkpoint_every: int = 500
    snapshot_at: list[int] = field(default_factory=list)  # sample counts for embedding snapshots
    snapshot_people: int = 12
    tta: bool = True  # flip test-time augmentation for dev/test evaluation
    time_budget: float = 0.0  # seconds; >0: after 40 steps, lower `steps` so training ends in time
    # channels_last input batches. None: on for the CPU (oneDNN's convolutions run about 1.7x faster in that
    # layout, docs/training.md), off on CUDA, where with bf16 autocast it made NN2 gradients explode (max
    # |grad| 7e8 by step 3 on an H100, scripts/debug_nan.py) while plain NCHW trained normally.
    channels_last: bool | None = None
    # Time each phase of a step (sampling, augmentation, forward, mining, loss+backward+update) with a
    # device synchronisation at every boundary, so GPU times are exact (slower; CPU times are exact anyway).
    profile: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Fine-tuning: start from an embedder checkpoint's weights (its model must be ``model``), optionally with
    # the trunk frozen (its weights and batch-norm statistics fixed; only the embedding head trains).
    init: str = ""
    freeze_trunk: bool = False
    # Fine-tuning: freeze the network's first blocks, up to and including this child of ``model.features``
    # (weights and batch-norm statistics fixed); the later blocks and the head train, and steps skip the
    # frozen blocks' backward pass. "" : nothing frozen.
    freeze_through: str = ""
    # A probe first: for the first N steps only the loss's own head learns (the identity term's class
    # directions, the pair classifier); the network's weights stay (their batch-norm statistics follow the
    # batches). A stage from a trained network starts with freshly imprinted directions. 0: none.
    head_warmup: int = 0
    # Early stopping: at every dev evaluation that beats the best dev AUC so far, save the model as best.pt.
    keep_best: bool = False
    # A group's run (a folder or a group pack: each person's last photos held out) stores in best.pt and
    # model.pt an unknown-face threshold chosen on the held-out photos: at most ``calibrate_far`` of them named
    # as another person, at most ``calibrate_stranger_far`` named when their person is left out of the gallery
    # (iznet.eval.openset.held_out_calibration); calibrate_far 0 keeps the inherited rule.
    calibrate_far: float = 0.02
    calibrate_stranger_far: float = 0.1
    # Rehearsal against forgetting (fine-tuning): every P×K batch also holds ``rehearse_p`` people × K images
    # of the training people of this data spec (e.g. the collection pack the base model learned), labelled
    # apart from the group's people, so the loss keeps the base's people apart while the group is learned.
    rehearse: str = ""
    rehearse_p: int = 8
    # A teacher's descriptors of the training pack's images (scripts/teacher_descriptors.py): each batch's
    # cosine similarities are pulled towards the teacher's (iznet.engine.distill), with this weight. "": none.
    # distill_mode "feature": instead each embedding, through a learned linear map started at the orthogonal
    # Procrustes fit of the starting network's embeddings to the teacher's, is pulled towards its own image's
    # teacher descriptor (1 - cosine).
    distill: str = ""
    distill_weight: float = 1.0
    distill_mode: str = "similarity"

    def validate(self) -> None:
        def bad(what, value, allowed):
            raise TrainingError(f"unknown {what} {value!r}: choose one of {', '.join(allowed)}")

        if self.loss not in LOSSES:
            bad("loss", self.loss, LOSSES)
        if self.mining not in MININGS:
            bad("mining", self.mining, MININGS)
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", self.optimizer, OPTIMIZERS)
        if self.schedule not in SCHEDULES:
            bad("schedule", self.schedule, SCHEDULES)
        if self.steps < 1 or self.p < 2 or self.k < 1 or self.lr <= 0:
            raise TrainingError("steps must be >= 1, p >= 2, k >= 1 and lr > 0")
        from iznet.sampling.batches import PEOPLE_WEIGHTS

        if self.people_weight not in PEOPLE_WEIGHTS:
            bad("people weight", self.people_weight, PEOPLE_WEIGHTS)
        if self.singletons < 0:
            raise TrainingError(f"singletons must be >= 0, got {self.singletons}")
        if self.singletons and (self.loss == "pair" or self.uniform_triplets):
            raise TrainingError("singletons are added to P×K batches; they do not apply to loss 'pair' or "
                                "mining 'uniform' (which sample pairs and triplets directly)")
        if isinstance(self.lookalike_group, bool) or not isinstance(self.lookalike_group, int) \
                or not 1 <= self.lookalike_group <= self.p:
            raise TrainingError(f"lookalike_group must be an int from 1 to p={self.p}, got {self.lookalike_group!r}")
        if isinstance(self.lookalike_refresh, bool) or not isinstance(self.lookalike_refresh, int) \
                or self.lookalike_refresh < 0:
            raise TrainingError(f"lookalike_refresh must be an int >= 0 (steps), got {self.lookalike_refresh!r}")
        if self.lookalike_refresh and self.lookalike_group < 2:
            raise TrainingError("--lookalike-refresh rebuilds the look-alike table: it needs --lookalike-group 2 "
                                "or more")
        if self.lookalike_group > 1 and (self.loss == "pair" or self.uniform_triplets or self.id_init != "centroids"):
            raise TrainingError("look-alike groups (--lookalike-group) are P×K batches of people near each other by "
                                "the identity term's imprinted directions: they need --id-init centroids (with "
                                "--id-weight > 0 or --loss cosface) and online mining")
        if not (math.isfinite(self.id_weight) and self.id_weight >= 0):
            raise TrainingError(f"id_weight must be >= 0, got {self.id_weight}")
        if self.id_weight and (self.loss in ("pair", "cosface") or self.uniform_triplets):
            raise TrainingError("the identity term (--id-weight) is added to P×K batches of loss 'triplet' "
                                "(with online mining) or 'contrastive'; loss 'cosface' is that term alone")
        if self.rehearse and (self.loss == "pair" or self.uniform_triplets or self.uses_id_loss):
            raise TrainingError("rehearsal (--rehearse) adds people to P×K batches of loss 'triplet' with online "
                                "mining or 'contrastive', without the identity term")
        if not (math.isfinite(self.distill_weight) and self.distill_weight > 0):
            raise TrainingError(f"distill_weight must be > 0, got {self.distill_weight}")
        if self.distill_mode not in DISTILL_MODES:
            bad("distill mode", self.distill_mode, DISTILL_MODES)
        if self.distill_mode != "similarity" and not self.distill:
            raise TrainingError(f"--distill-mode {self.distill_mode} needs a teacher file: give --distill FILE "
                                "(scripts/teacher_descriptors.py makes one)")
        if self.distill and self.rehearse:
            raise TrainingError("--distill and --rehearse: the teacher describes the training pack only, not the "
                                "rehearsed one; choose one")
        if self.rehearse and self.rehearse_p < 2:
            raise TrainingError(f"rehearse_p must be >= 2 people per batch, got {self.rehearse_p}")
        if not (0 <= self.calibrate_far < 1 and 0 <= self.calibrate_stranger_far < 1):
            raise TrainingError(f"calibrate_far and calibrate_stranger_far must be in [0, 1), got "
                                f"{self.calibrate_far} and {self.calibrate_stranger_far}")
        if self.id_init not in ID_INITS:
            bad("id init", self.id_init, ID_INITS)
        if self.id_init != "random" and not self.uses_id_loss:
            raise TrainingError(f"id_init {self.id_init!r} sets the identity term's class directions; it needs "
                                "--id-weight > 0 or --loss cosface")
        if isinstance(self.head_warmup, bool) or not isinstance(self.head_warmup, int) \
                or not 0 <= self.head_warmup < max(1, self.steps):
            raise TrainingError(f"head_warmup must be an int from 0 to steps - 1, got {self.head_warmup!r}")
        if self.head_warmup and not (self.uses_id_loss or self.loss == "pair"):
            raise TrainingError("--head-warmup trains the loss's own head first (the identity term or the pair "
                                "classifier): it needs --id-weight > 0, --loss cosface or --loss pair")
        if self.uses_id_loss and not (self.id_scale > 0 and 0 <= self.id_margin < 1):
            raise TrainingError(f"id_scale must be > 0 and id_margin in [0, 1), got {self.id_scale}, {self.id_margin}")

    @property
    def uniform_triplets(self) -> bool:
        """Whether triplets are drawn by the uniform triplet sampler instead of mined in P×K batches."""
        return self.loss == "triplet" and self.mining == "uniform"

    @property
    def uses_id_loss(self) -> bool:
        """Whether the run trains the identity term (loss=cosface, or id_weight > 0)."""
        return self.loss == "cosface" or self.id_weight > 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        aug = AugmentConfig(**d.pop("augment", {}))
        for f in dataclasses.fields(aug):
            if isinstance(getattr(aug, f.name), list):
                setattr(aug, f.name, tuple(getattr(aug, f.name)))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TrainingError(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(augment=aug, **d)
