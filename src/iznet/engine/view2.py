"""LFW View 2, "unrestricted, no outside data", trained: one embedder per fold, on the LFW people outside it.

:func:`train_folds` trains fold ``k``'s model on ``lfw:fold=k`` (a share of those people held out as
development people) into ``OUT/fold{k}/``; its ``test_pairs.npz`` holds the distances of fold k's 600 pairs,
which :func:`iznet.eval.view2.aggregate` turns into the 10-fold table. A fold already trained (its
``summary.json`` exists) is skipped; one with a ``last.pt`` and no summary resumes from it exactly.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

from iznet.engine.config import TrainConfig
from iznet.errors import ModelError, TrainingError


def train_folds(out: str | Path, folds: list[int], cfg: TrainConfig, *, pack: str | Path, data_root: str | Path,
                device: str | None = None, command: str = "",
                on_fold: Callable[[dict], None] | None = None) -> list[dict]:
    """Train the models of ``folds``; fold ``k`` uses seed ``cfg.seed + k`` for its training and its split.

    Args:
        out: the run folder.
        folds: the fold numbers (0..9).
        cfg: the training configuration of every fold (its ``seed`` is the run's base seed).
        pack, data_root: the LFW pack (``iznet pack lfw``) and the folder holding ``lfw/`` with its pair files.
        device: default CUDA when present.
        command: recorded in each fold's checkpoints.
        on_fold: receives ``{"fold", "skipped"}`` or ``{"fold", "resumed_from", "summary", "seconds"}``.

    Returns:
        One dict per fold, as given to ``on_fold``.

    Raises:
        TrainingError: a bad configuration (before any data is read), or a ``last.pt`` that cannot be resumed.
    """
    from iznet.engine.data import build_train_data
    from iznet.engine.train import Trainer
    from iznet.utils.device import default_device

    cfg.validate()
    out, dev = Path(out), default_device(device)
    emit = on_fold or (lambda e: None)
    done = []
    for k in folds:
        run = out / f"fold{k}"
        if (run / "summary.json").is_file():
            done.append({"fold": k, "skipped": True})
            emit(done[-1])
            continue
        t0 = time.time()
        fold_cfg = dataclasses.replace(cfg, seed=cfg.seed + k)
        data = build_train_data(f"lfw:fold={k}", pack=pack, data_root=data_root, device=dev, seed=cfg.seed + k)
        trainer = Trainer(fold_cfg, data, run, device=dev,
                          meta={"command": command, "protocol": "lfw-view2-unrestricted"})
        resumed = None
        if (run / "last.pt").is_file():
            try:
                trainer.resume(run / "last.pt")
            except (ModelError, TrainingError) as e:
                raise TrainingError(f"fold {k}: cannot resume: {e}; delete {run / 'last.pt'} to train the fold "
                                    "again") from None
            resumed = trainer.step
        summary = trainer.fit()
        done.append({"fold": k, "resumed_from": resumed, "summary": summary, "seconds": time.time() - t0})
        emit(done[-1])
    return done
