"""``iznet train``: train an embedder (triplet, contrastive, pair classification or CosFace identities)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from iznet.cli.app import app
from iznet.engine.config import TrainConfig

_D = TrainConfig()  # the defaults of every option below


@app.command("train")
def train(
    data: str = typer.Option(..., "--data", help="lfw:view1 | lfw:fold=K | lfw:all | FOLDER | PACK.pt"),
    out: Path = typer.Option(..., "--out", "-o", help="run folder (config, metrics, checkpoints)"),
    model: Optional[str] = typer.Option(None, help="registered model name (see `iznet models`) [default: nn4, or "
                                        "the --init checkpoint's model]"),
    input_size: Optional[int] = typer.Option(None, help="override the model's input size"),
    head: Optional[str] = typer.Option(None, "--head", help="NN2-family embedding head: avg (global average "
                                       "pool) | gdc (a learned weight per channel and position; starts as avg, "
                                       "so --init from an avg model keeps its function)"),
    loss: str = typer.Option(_D.loss, help="triplet | contrastive | pair | cosface"),
    mining: str = typer.Option(_D.mining, help="uniform | all | hard | semi-hard | random-hard | batch-hard"),
    margin: float = typer.Option(_D.margin, help="triplet margin alpha (squared distances)"),
    pair_metric: str = typer.Option(_D.pair_metric, help="pair classifier metric: abs | chi2"),
    p: int = typer.Option(_D.p, help="people per batch"),
    k: int = typer.Option(_D.k, help="images per person"),
    singletons: int = typer.Option(_D.singletons, help="images of people with a single image added to each P×K batch, "
                                           "as negatives only (they are left out otherwise)"),
    people_weight: str = typer.Option(_D.people_weight, help="how often batches visit each person: uniform (once "
                                                      "per epoch) | images | sqrt (∝ n or √n images)"),
    lookalike_group: int = typer.Option(_D.lookalike_group, "--lookalike-group",
                                        help="people per look-alike group in a P×K batch: a drawn person and "
                                        "the nearest others by the imprinted class directions (needs --id-init "
                                        "centroids); 1: plain batches"),
    lookalike_refresh: int = typer.Option(_D.lookalike_refresh, "--lookalike-refresh",
                                          help="rebuild the look-alike groups from the identity term's class "
                                          "directions every this many steps (0: keep the step-0 table)"),
    pair_batch: int = typer.Option(_D.pair_batch, help="pairs per batch (loss=pair)"),
    id_weight: float = typer.Option(_D.id_weight, help="weight of a CosFace identity term over all training people, "
                                              "added to the triplet or contrastive loss (0: off)"),
    id_scale: float = typer.Option(_D.id_scale, help="CosFace scale s (loss=cosface or --id-weight)"),
    id_margin: float = typer.Option(_D.id_margin, help="CosFace cosine margin m (loss=cosface or --id-weight)"),
    id_init: str = typer.Option(_D.id_init, "--id-init", help="the identity term's class directions at the "
                                "start: random | centroids (each person's mean embedding under the starting "
                                "network; for fine-tunes with --init)"),
    optimizer: str = typer.Option(_D.optimizer, help="sgd | adagrad | adamw"),
    lr: float = typer.Option(_D.lr),
    weight_decay: float = typer.Option(_D.weight_decay),
    schedule: str = typer.Option(_D.schedule, help="cosine | step | constant"),
    warmup: int = typer.Option(_D.warmup_steps, help="warm-up steps"),
    steps: int = typer.Option(_D.steps),
    seed: int = typer.Option(_D.seed),
    eval_every: int = typer.Option(_D.eval_every, help="dev evaluation every N steps (0: only at the end)"),
    checkpoint_every: int = typer.Option(_D.checkpoint_every),
    snapshot_at: str = typer.Option("", help="comma-separated sample counts for embedding snapshots"),
    pack: Optional[Path] = typer.Option(None, help="LFW pack from `iznet pack lfw` (faster)"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="folder holding lfw/"),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: cuda when present)"),
    no_bf16: bool = typer.Option(False, "--no-bf16", help="disable bf16 autocast on CUDA"),
    cpu_bf16: bool = typer.Option(False, "--cpu-bf16", help="bf16 autocast of CPU training steps: about 1.7x "
                                                            "faster on CPUs with native bf16 (AVX512-BF16, "
                                                            "AMX), slower elsewhere"),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last",
                                                 help="channels_last input batches (default: on for the "
                                                      "CPU, off on CUDA)"),
    resume: Optional[Path] = typer.Option(None, help="a run's last.pt to continue from"),
    time_budget: float = typer.Option(_D.time_budget, help="seconds; lowers --steps after 30 steps so training "
                                                "ends in time (the steps run are recorded)"),
    profile: bool = typer.Option(False, "--profile", help="synchronise the GPU between the phases of a step "
                                                          "so their times (summary.json step_phases) are exact"),
    init: Optional[str] = typer.Option(None, "--init", help="fine-tune: start from this embedder checkpoint's "
                                       "weights ('bundled': the shipped embedder); use a low --lr"),
    freeze_trunk: bool = typer.Option(False, "--freeze-trunk", help="with --init: train only the embedding head "
                                      "(the trunk's weights and batch-norm statistics stay fixed)"),
    freeze_through: Optional[str] = typer.Option(None, "--freeze-through", help="with --init: keep the network's "
                                                 "blocks up to and including this one fixed (e.g. inception_3c)"),
    head_warmup: int = typer.Option(0, "--head-warmup", min=0, help="the first N steps train only the loss's "
                                    "own head (the identity term's directions), the network's weights fixed"),
    keep_best: bool = typer.Option(False, "--keep-best", help="save best.pt at each dev evaluation that beats "
                                   "the best dev AUC so far (early stopping; with --eval-every)"),
    calibrate_far: float = typer.Option(_D.calibrate_far, "--calibrate-far", min=0.0, max=0.99,
                                        help="a group's run stores an unknown-face threshold that names at most "
                                        "this share of its held-out photos as another person (0: keep the "
                                        "inherited rule; docs/training.md)"),
    calibrate_strangers: float = typer.Option(_D.calibrate_stranger_far, "--calibrate-strangers", min=0.0, max=0.99,
                                              help="and at most this share of them named when their person "
                                              "is left out of the gallery (strangers)"),
    rehearse: Optional[str] = typer.Option(None, "--rehearse", help="fine-tune with rehearsal: every batch also "
                                           "holds --rehearse-p people of this pack (e.g. the collection the base "
                                           "learned), so the base's people stay apart"),
    rehearse_p: int = typer.Option(_D.rehearse_p, "--rehearse-p", help="people per batch drawn from --rehearse"),
    distill: Optional[Path] = typer.Option(None, "--distill", help="a teacher's descriptors of the training "
                                           "pack (scripts/teacher_descriptors.py): each batch's similarities are "
                                           "pulled towards the teacher's (docs/training.md)"),
    distill_weight: float = typer.Option(_D.distill_weight, "--distill-weight", help="weight of that term"),
    distill_mode: str = typer.Option(_D.distill_mode, "--distill-mode", help="similarity (each batch's cosines "
                                     "towards the teacher's) | feature (each embedding, through a learned linear "
                                     "map, towards its image's teacher descriptor)"),
    augment: str = typer.Option("default", "--augment", help="default (mild box jitter, flips, brightness) | "
                                "photo (wider box jitter, colour, blur, JPEG; docs/training.md)"),
    dev_people: Optional[Path] = typer.Option(None, "--dev-people", help="a collection pack's development people: "
                                              "a text file, one name a line (e.g. another run's, written by "
                                              "scripts/dev_people.py), held out instead of a random 5%"),
) -> None:
    """Train an embedder and write a run folder with config, metrics, checkpoints and model.pt."""
    from tqdm import tqdm

    from iznet.engine.data import build_train_data
    from iznet.engine.train import TrainConfig, Trainer
    from iznet.errors import TrainingError
    from iznet.utils.device import cpu_bf16_warning, default_device

    kwargs = {"input_size": input_size} if input_size else {}
    if head is not None:
        kwargs["head"] = head
    if freeze_trunk and not init:
        raise TrainingError("--freeze-trunk needs --init (a trunk to keep)")
    if freeze_through and not init:
        raise TrainingError("--freeze-through needs --init (blocks to keep)")
    if freeze_through and freeze_trunk:
        raise TrainingError("--freeze-through and --freeze-trunk: choose one (--freeze-trunk freezes every block)")
    if model is None:
        model = "nn4"
        if init:
            from iznet.utils.checkpoint import load_checkpoint
            from iznet.errors import ModelError
            from iznet.utils.assets import default_embedder_spec

            try:
                ck = load_checkpoint(default_embedder_spec() if init == "bundled" else init, kind="embedder")
            except ModelError as e:
                raise TrainingError(f"--init {init}: {e}") from None
            model = ck["model"]
            kwargs = {**ck.get("model_kwargs", {}), **kwargs}
    try:
        snaps = [int(s) for s in snapshot_at.split(",") if s.strip()]
    except ValueError:
        raise TrainingError(f"--snapshot-at {snapshot_at!r}: give sample counts like 0,5000,20000") from None
    cfg = TrainConfig(model=model, model_kwargs=kwargs, loss=loss, mining=mining, margin=margin,
                      pair_metric=pair_metric, p=p, k=k, singletons=singletons, pair_batch=pair_batch,
                      lookalike_group=lookalike_group, lookalike_refresh=lookalike_refresh,
                      people_weight=people_weight, id_weight=id_weight, id_scale=id_scale, id_margin=id_margin,
                      id_init=id_init,
                      optimizer=optimizer, lr=lr,
                      weight_decay=weight_decay, schedule=schedule, warmup_steps=warmup, steps=steps,
                      seed=seed, bf16=not no_bf16, cpu_bf16=cpu_bf16,
                      channels_last=channels_last, eval_every=eval_every, checkpoint_every=checkpoint_every,
                      snapshot_at=snaps, time_budget=time_budget, profile=profile, init=init or "",
                      freeze_trunk=freeze_trunk, freeze_through=freeze_through or "", keep_best=keep_best,
                      head_warmup=head_warmup,
                      calibrate_far=calibrate_far,
                      calibrate_stranger_far=calibrate_strangers,
                      rehearse=rehearse or "", rehearse_p=rehearse_p,
                      distill=str(distill) if distill else "", distill_weight=distill_weight,
                      distill_mode=distill_mode)
    from iznet.engine.config import augment_preset

    try:
        cfg.augment = augment_preset(augment)
    except ValueError as e:
        raise TrainingError(str(e)) from None
    cfg.validate()
    dev = default_device(device)
    if (warning := cpu_bf16_warning(dev, cpu_bf16)) is not None:
        typer.echo(warning, err=True)
    size_hint = 112
    names = None
    if dev_people is not None:
        from iznet.engine.data import read_people_list

        names = read_people_list(dev_people)
    td = build_train_data(data, pack=pack, data_root=data_root, device=dev, seed=seed, size=size_hint,
                          dev_people=names)
    if dev_people is not None:
        td.info["dev_people_file"] = str(dev_people)
    typer.echo(f"data {data}: {json.dumps(td.info)}", err=True)
    bar = tqdm(total=steps, desc="train", unit="step", file=sys.stderr, dynamic_ncols=True)

    def on_event(ev: dict) -> None:
        if ev["event"] == "step":
            if bar.total != trainer.cfg.steps:
                bar.total = trainer.cfg.steps
            bar.update(1)
            post = {"loss": f"{ev['loss']:.4f}"}
            if "active_share" in ev:
                post["active"] = f"{ev['active_share']:.2f}"
            if "id_acc" in ev:
                post["id_acc"] = f"{ev['id_acc']:.2f}"
            if "pair_acc" in ev:
                post["pair_acc"] = f"{ev['pair_acc']:.2f}"
            bar.set_postfix(post, refresh=False)
        elif ev["event"] == "eval":
            bar.write(f"step {ev['step']}: dev accuracy {ev['dev_best_acc']:.4f}  AUC {ev['dev_auc']:.4f}")
        elif ev["event"] == "imprint":
            bar.write(f"class directions from {ev['images']} pictures of {ev['classes']} people: a picture's "
                      f"cosine to its own {ev['cos_own']:.3f}, to the nearest other {ev['cos_nearest_other']:.3f}")
        elif ev["event"] == "distill_map":
            bar.write(f"teacher map fitted on {ev['images']} pictures: mean cosine to the teacher {ev['cos_start']:.3f}")

    trainer = Trainer(cfg, td, out, device=dev, on_event=on_event,
                      meta={"command": "iznet " + " ".join(shlex.quote(a) for a in sys.argv[1:])})
    if resume:
        trainer.resume(resume)
        bar.update(trainer.step)
    summary = trainer.fit()
    bar.close()
    line = f"done: {summary['samples']} samples, {summary['samples_per_second']:.0f} samples/s; " \
           f"dev accuracy {summary['dev']['best_acc']:.4f}"
    if "test" in summary:
        line += f"; test accuracy {summary['test']['acc_at_threshold']:.4f} (threshold from dev)"
    typer.echo(line)
    phases = summary.get("step_phases") or {}
    if phases.get("share"):
        typer.echo("step time: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in phases["share"].items())
                   + f" of {1000 * phases['seconds_per_step']:.0f} ms")
    typer.echo(f"model: {out / 'model.pt'}")
