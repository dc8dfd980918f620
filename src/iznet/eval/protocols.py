"""Evaluation protocols: LFW verification (View 2, View 1) and closed/open-set identification.

LFW View 2 ("unrestricted, no outside data"): for each of the 10 person-disjoint folds, an embedder
that learns from data (``needs_fit``) is fitted on every image of the LFW people who are not in that
fold, then embeds the fold's 600 pairs. Accuracy: the threshold of fold k maximises accuracy on the
other nine folds. AUC, EER and VAL at FAR=1e-3 are computed on all 6000 pairs pooled; VAL is also
given in k-fold form (threshold from the other folds).

LFW View 1 (quick): fit on the people outside ``pairsDevTest``; the accuracy threshold is chosen on
the ``pairsDevTrain`` distances, never on the test pairs, and applied to ``pairsDevTest``.

Images come from an LFW pack (:mod:`iznet.data.pack`, fast) or, without one, from the LFW folder,
cropped with :func:`iznet.data.crops.lfw_crop` at the embedder's ``input_size``.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from iznet.errors import DataError
from iznet.eval.identification import PROTOTYPES, closed_set_identification, first_k_split, open_set_rejection
from iznet.eval.verification import split_report, verification_report
from iznet.recognize.embedder import Embedder

_logger = logging.getLogger(__name__)

PROTOCOLS = ("view2", "view1")


def _load_pack(source: Any):
    """A Pack object as is, or load one from a path."""
    if source is None:
        return None
    if isinstance(source, (str, Path)):
        from iznet.data.pack import load_pack

        return load_pack(source)
    return source


def _parallel(fn: Callable[[Any], np.ndarray], items: Sequence[Any], workers: int = 4) -> list[np.ndarray]:
    # JPEG decoding and cv2 resizing release the GIL, so threads overlap them
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(fn, items, chunksize=64))


def _stack_hwc(arrays: list[np.ndarray]) -> torch.Tensor:
    """List of (S, S, 3) uint8 -> uint8 (N, 3, S, S)."""
    if not arrays:
        raise DataError("no images to load")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


class _LfwImages:
    """uint8 crops of LFW images, looked up by ``"Name/Name_NNNN.jpg"``; each image is read once."""

    def __init__(self, lfw, pack, size: int):
        self.lfw, self.pack, self.size = lfw, pack, int(size)
        self.rows: dict[str, int] = {}
        self.bank: torch.Tensor | None = None

    @property
    def description(self) -> str:
        if self.pack is not None:
            where = getattr(self.pack, "path", None)
            return f"pack {where} ({self.pack.size}px crops)" if where else f"pack ({self.pack.size}px crops)"
        return f"folder {self.lfw.images_dir} (lfw_crop at {self.size}px)"

    def preload(self, relpaths: Sequence[str]) -> None:
        new = [r for r in dict.fromkeys(relpaths) if r not in self.rows]
        if not new:
            return
        if self.pack is not None:
            idx = [self.pack.index_of(r) for r in new]
            imgs = self.pack.decode(np.asarray(idx, dtype=np.int64), device="cpu")
        else:
            from iznet.data.crops import lfw_crop
            from iznet.data.images import load_image

            def one(rel: str) -> np.ndarray:
                name, _, fname = rel.partition("/")
                return lfw_crop(load_image(self.lfw.images_dir / name / fname), self.size)

            imgs = _stack_hwc(_parallel(one, new))
        start = 0 if self.bank is None else self.bank.shape[0]
        self.bank = imgs if self.bank is None else torch.cat([self.bank, imgs])
        self.rows.update({r: start + i for i, r in enumerate(new)})

    def get(self, relpaths: Sequence[str]) -> torch.Tensor:
        self.preload(relpaths)
        return self.bank[torch.as_tensor([self.rows[r] for r in relpaths], dtype=torch.long)]


def _pair_keys(lfw, pairs) -> tuple[list[str], list[str], np.ndarray]:
    a = [lfw.relpath(p.name1, p.idx1) for p in pairs]
    b = [lfw.relpath(p.name2, p.idx2) for p in pairs]
    return a, b, np.array([p.same for p in pairs], dtype=bool)


def _pair_distances(embedder: Embedder, images: _LfwImages, lfw, pairs,
                    batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances (P,) and same flags (P,) of ``pairs``; each distinct image embedded once."""
    a, b, same = _pair_keys(lfw, pairs)
    uniq = list(dict.fromkeys(a + b))
    emb = embedder.embed(images.get(uniq), batch_size=batch_size)
    row = {r: i for i, r in enumerate(uniq)}
    ia = np.array([row[r] for r in a])
    ib = np.array([row[r] for r in b])
    return np.linalg.norm(emb[ia] - emb[ib], axis=1).astype(np.float64), same


def _fit_on_people(embedder: Embedder, images: _LfwImages, lfw, people: Sequence[str]) -> Embedder:
    keys, labels = [], []
    for label, name in enumerate(people):
        for i in range(1, lfw.people[name] + 1):
            keys.append(lfw.relpath(name, i))
            labels.append(label)
    _logger.info("fitting %s on %d images of %d people", embedder.name, len(keys), len(people))
    return embedder.fit(images.get(keys), np.asarray(labels, dtype=np.int64))


def evaluate_lfw(embedder: Embedder, images_source: Any = None, protocol: str = "view2",
                 data_root: str | Path | None = None, *, far: float = 1e-3, batch_size: int = 256) -> dict[str, Any]:
    """LFW verification under View 2 (10 folds) or View 1 (dev train/test).

    Args:
        embedder: what to measure; fitted per fold when ``embedder.needs_fit``.
        images_source: an LFW pack (object or path); None reads the LFW folder.
        protocol: ``"view2"`` or ``"view1"``.
        data_root: the LFW folder or a data root holding ``lfw/`` (default: the data root).
        far: target FAR of the VAL numbers.
        batch_size: images per forward pass.

    Returns:
        :meth:`VerificationResult.to_dict` with ``extra`` holding the embedder, images, fitting and
        timing.
    """
    from iznet.data.lfw import LFW, find_lfw, load_view1, load_view2, view1_train_people, view2_train_people

    if protocol not in PROTOCOLS:
        raise DataError(f"unknown LFW protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    t0 = time.perf_counter()
    root = find_lfw(data_root)
    lfw = LFW(root)
    images = _LfwImages(lfw, _load_pack(images_source), embedder.input_size)
    extra: dict[str, Any] = {"embedder": embedder.describe(), "lfw": str(root), "images": images.description}

    if protocol == "view2":
        folds = load_view2(root)
        lfw.check_pairs(folds)
        if embedder.needs_fit:
            dists, sames, fit_sizes = [], [], []
            for k, fold in enumerate(folds):
                people = view2_train_people(lfw, folds, k)
                fitted = _fit_on_people(embedder, images, lfw, people)
                fit_sizes.append(len(people))
                d, s = _pair_distances(fitted, images, lfw, fold, batch_size)
                dists.append(d)
                sames.append(s)
            extra["fit"] = {"on": "all images of the LFW people outside the fold", "people_per_fold": fit_sizes}
            extra["embedder"] = fitted.describe()
            dist, same = np.concatenate(dists), np.concatenate(sames)
        else:
            dist, same = _pair_distances(embedder, images, lfw, [p for f in folds for p in f], batch_size)
            extra["fit"] = None
        fold_ids = np.repeat(np.arange(len(folds)), [len(f) for f in folds])
        extra["seconds"] = round(time.perf_counter() - t0, 2)
        return verification_report(dist, same, fold_ids, protocol="lfw-view2", far=far, extra=extra).to_dict()

    train_pairs, test_pairs = load_view1(root)
    lfw.check_pairs([train_pairs, test_pairs])
    fitted = embedder
    if embedder.needs_fit:
        people = view1_train_people(lfw, test_pairs)
        fitted = _fit_on_people(embedder, images, lfw, people)
        extra["fit"] = {"on": "all images of the LFW people outside pairsDevTest", "people": len(people)}
        extra["embedder"] = fitted.describe()
    else:
        extra["fit"] = None
    dtr, s_tr = _pair_distances(fitted, images, lfw, train_pairs, batch_size)
    dte, s_te = _pair_distances(fitted, images, lfw, test_pairs, batch_size)
    extra["threshold_from"] = "pairsDevTrain"
    extra["seconds"] = round(time.perf_counter() - t0, 2)
    return split_report(dtr, s_tr, dte, s_te, protocol="lfw-view1", far=far, extra=extra).to_dict()


def _resize_square(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if min(img.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def load_identity_images(source: Any, size: int) -> tuple[torch.Tensor, np.ndarray, list[str], str]:
    """Face crops of an identity folder or pack, grouped by person in sorted path order.

    Args:
        source: a folder ``root/<person>/<image>`` (crops; resized to ``size`` when they differ),
            a pack object, or a pack file.
        size: side of the crops read from a folder.

    Returns:
        images uint8 (N, 3, S, S), labels (N,) int64, class names, a description of the source.
    """
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        from iznet.data.datasets import IdentityFolder
        from iznet.data.images import load_image

        ds = IdentityFolder(source)
        shapes = set()

        def one(p: Path) -> np.ndarray:
            img = load_image(p)
            shapes.add(img.shape[:2])
            return _resize_square(img, size)

        imgs = _stack_hwc(_parallel(one, ds.paths))
        if any(h != w for h, w in shapes):
            _logger.warning("%s holds non-square images; they were stretched to %dx%d", source, size, size)
        return imgs, ds.labels.copy(), list(ds.classes), f"folder {source}"
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise DataError(f"{source} is neither an identity folder nor a pack file")
    pack = _load_pack(source)
    labels = np.asarray(pack.labels, dtype=np.int64)
    order = np.array(sorted(range(labels.size), key=lambda i: (int(labels[i]), str(pack.paths[i]))), dtype=np.int64)
    imgs = pack.decode(order, device="cpu")
    return imgs, labels[order], list(pack.classes), f"pack {getattr(pack, 'path', source)}"


def evaluate_identification(embedder: Embedder, folder_or_pack: Any, k: int = 5, fit_people: Any = None, *,
                            prototypes: Sequence[str] = PROTOTYPES, open_set_far: float | None = None,
                            seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
    """Closed-set (and optionally open-set) identification on a set of people.

    Per person the first ``k`` images in sorted path order are enrolled; the rest are probes.
    An embedder that needs fitting is fitted on the enrolment images only (the probes stay unseen),
    unless ``fit_people`` names another folder or pack of people to fit on; people of that set whose
    name is also in the evaluated set are left out of the fit (matched by folder name).

    Args:
        embedder: what to measure.
        folder_or_pack: identity folder, pack object or pack file.
        k: images enrolled per person.
        fit_people: optional folder/pack of other people to fit a baseline on.
        prototypes: prototype kinds for rank-1.
        open_set_far: also run :func:`open_set_rejection` at this target FAR (seeded half unknown).
        seed: seed of the known/unknown split.
        batch_size: images per forward pass.

    Returns:
        :func:`closed_set_identification`'s dict plus ``open_set`` (or None), ``embedder``, ``data``
        and ``fit``.
    """
    t0 = time.perf_counter()
    images, labels, classes, desc = load_identity_images(folder_or_pack, embedder.input_size)
    enrol, _ = first_k_split(labels, k)
    fit_desc = None
    if embedder.needs_fit:
        if fit_people is None:
            embedder = embedder.fit(images[torch.as_tensor(enrol)], labels[enrol])
            fit_desc = f"enrolment images only ({enrol.size})"
        else:
            fimgs, flabels, fclasses, fdesc = load_identity_images(fit_people, embedder.input_size)
            shared = set(fclasses) & set(classes)
            keep = np.array([fclasses[y] not in shared for y in flabels.tolist()], dtype=bool)
            if shared:
                _logger.warning("leaving out of the fit set %d people who are also evaluated (e.g. %s)",
                                len(shared), sorted(shared)[0])
            if not keep.any():
                raise DataError(f"{fit_people}: every person there is also in the evaluation set; nothing to fit on")
            embedder = embedder.fit(fimgs[torch.as_tensor(keep)], flabels[keep])
            fit_desc = (f"{fdesc} ({int(keep.sum())} images; {len(shared)} people shared with the evaluation set "
                        "left out)")
    emb = embedder.embed(images, batch_size=batch_size)
    out = closed_set_identification(emb, labels, k, prototypes)
    out["open_set"] = (open_set_rejection(emb, labels, k, far=open_set_far, seed=seed)
                       if open_set_far is not None else None)
    if out["open_set"] is not None:
        out["open_set"]["known"] = [classes[i] for i in out["open_set"]["known"]]
        out["open_set"]["unknown"] = [classes[i] for i in out["open_set"]["unknown"]]
    out.update(embedder=embedder.describe(), data=desc, fit=fit_desc, seconds=round(time.perf_counter() - t0, 2))
    return out
